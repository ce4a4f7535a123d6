//! A keep-alive HTTP/1.1 S3 client for the benchmark: path-style URLs, every request signed with
//! SigV4 over `UNSIGNED-PAYLOAD` so the client never hashes bodies.

use std::convert::Infallible;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, ETAG};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use s3api::auth::signer::sign_v4;
use s3api::auth::SecretKey;

/// The body type every benchmark request carries.
pub type RequestBody = BoxBody<Bytes, Infallible>;

/// How much of an error response's body is kept for the report: S3 error documents are short.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Idle keep-alive connections kept per host: more than the largest worker count (16 workers
/// plus the seeding phases), so no workload ever reconnects.
const MAX_IDLE_CONNECTIONS: usize = 64;

/// Why one benchmark request failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The server answered with a status other than 2xx.
    #[error("{method} {path}: HTTP {status}: {body}")]
    Status {
        method: Method,
        path: String,
        status: StatusCode,
        body: String,
    },
    /// The request could not be sent or its response head not received.
    #[error("{method} {path}: {source}")]
    Transport {
        method: Method,
        path: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// The response body broke off.
    #[error("{method} {path}: reading the response body: {message}")]
    Body {
        method: Method,
        path: String,
        message: String,
    },
    /// The request URI could not be built (endpoint or key not URI-safe).
    #[error("invalid request URI {uri}: {source}")]
    Uri {
        uri: String,
        #[source]
        source: http::uri::InvalidUri,
    },
    /// The operation did not finish in time (a stalled server).
    #[error("no answer within {seconds} s")]
    Timeout { seconds: u64 },
    /// The response was well-formed HTTP but not what the operation promises.
    #[error("{path}: {message}")]
    Unexpected { path: String, message: String },
}

/// A signed S3 client bound to one endpoint and bucket.
pub struct S3Client {
    http: Client<HttpConnector, RequestBody>,
    /// `scheme://host:port` without a trailing slash.
    endpoint: String,
    bucket: String,
    access_key: String,
    secret: SecretKey,
    region: String,
}

/// A successful response with its body read.
pub struct Answer {
    /// Response headers (ETag, Content-Length, ...).
    pub headers: http::HeaderMap,
    /// The body itself when it was asked for, else empty.
    pub body: Bytes,
}

impl S3Client {
    /// A client for `bucket` at `endpoint` (e.g. `http://127.0.0.1:9000`).
    pub fn new(
        endpoint: &str,
        bucket: &str,
        access_key: &str,
        secret: SecretKey,
        region: &str,
    ) -> S3Client {
        let mut connector = HttpConnector::new();
        // Small requests must not wait for Nagle's algorithm to flush them.
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(MAX_IDLE_CONNECTIONS)
            .build(connector);
        S3Client {
            http,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            bucket: bucket.to_string(),
            access_key: access_key.to_string(),
            secret,
            region: region.to_string(),
        }
    }

    /// The bucket's path, or an object's when `key` is given (keys are percent-encoded).
    fn path(&self, key: Option<&str>) -> String {
        match key {
            Some(key) => format!("/{}/{}", self.bucket, percent_encode(key, true)),
            None => format!("/{}", self.bucket),
        }
    }

    /// Sends one signed request and returns the response head if its status is 2xx.
    ///
    /// `query` is already encoded (`a=b&c=d`, or empty); `content_length` is sent whenever the
    /// method carries a body.
    pub async fn send(
        &self,
        method: Method,
        key: Option<&str>,
        query: &str,
        body: Option<(RequestBody, u64)>,
    ) -> Result<Response<Incoming>, RequestError> {
        let path = self.path(key);
        let uri_text = if query.is_empty() {
            format!("{}{path}", self.endpoint)
        } else {
            format!("{}{path}?{query}", self.endpoint)
        };
        let uri: Uri = uri_text.parse().map_err(|source| RequestError::Uri {
            uri: uri_text.clone(),
            source,
        })?;
        let (body, content_length) = match body {
            Some((body, len)) => (body, Some(len)),
            None if method == Method::PUT || method == Method::POST => (empty_body(), Some(0)),
            None => (empty_body(), None),
        };
        let mut request = Request::new(body);
        *request.method_mut() = method.clone();
        *request.uri_mut() = uri.clone();
        let headers = request.headers_mut();
        if let Some(len) = content_length {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        }
        sign_v4(
            &method,
            &uri,
            headers,
            "UNSIGNED-PAYLOAD",
            &self.access_key,
            &self.secret,
            &self.region,
            SystemTime::now(),
        );
        let response =
            self.http
                .request(request)
                .await
                .map_err(|source| RequestError::Transport {
                    method: method.clone(),
                    path: path.clone(),
                    source,
                })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body = match Limited::new(response.into_body(), ERROR_BODY_LIMIT)
            .collect()
            .await
        {
            Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
            Err(err) => format!("(body unreadable: {err})"),
        };
        Err(RequestError::Status {
            method,
            path,
            status,
            body,
        })
    }

    /// Sends a request and reads the whole response body: for the small XML answers of bucket
    /// and multipart operations.
    pub async fn call(
        &self,
        method: Method,
        key: Option<&str>,
        query: &str,
        body: Option<(RequestBody, u64)>,
    ) -> Result<Answer, RequestError> {
        let response = self.send(method.clone(), key, query, body).await?;
        let headers = response.headers().clone();
        let collected = response
            .into_body()
            .collect()
            .await
            .map_err(|err| RequestError::Body {
                method,
                path: self.path(key),
                message: err.to_string(),
            })?;
        let body = collected.to_bytes();
        Ok(Answer { headers, body })
    }

    /// Reads an object and throws its bytes away, returning how many arrived.
    pub async fn get_discard(&self, key: &str) -> Result<u64, RequestError> {
        let response = self.send(Method::GET, Some(key), "", None).await?;
        let mut body = response.into_body();
        let mut received: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|err| RequestError::Body {
                method: Method::GET,
                path: self.path(Some(key)),
                message: err.to_string(),
            })?;
            if let Some(data) = frame.data_ref() {
                received += data.len() as u64;
            }
        }
        Ok(received)
    }

    /// Reads an object and fails unless exactly `expected` bytes arrive.
    pub async fn get_exact(&self, key: &str, expected: u64) -> Result<u64, RequestError> {
        let received = self.get_discard(key).await?;
        self.check_length(key, "GET body", expected, received)
    }

    /// HEADs an object and fails unless its Content-Length is `expected`.
    pub async fn head_exact(&self, key: &str, expected: u64) -> Result<u64, RequestError> {
        let answer = self.call(Method::HEAD, Some(key), "", None).await?;
        let announced = answer
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        self.check_length(key, "HEAD Content-Length", expected, announced)?;
        Ok(0)
    }

    /// PUTs an object and returns its ETag (as sent, quotes included).
    pub async fn put(
        &self,
        key: &str,
        query: &str,
        body: RequestBody,
        len: u64,
    ) -> Result<String, RequestError> {
        let answer = self
            .call(Method::PUT, Some(key), query, Some((body, len)))
            .await?;
        answer
            .headers
            .get(ETAG)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| self.unexpected(Some(key), "PUT answered without an ETag"))
    }

    /// Creates the bucket unless it exists already.
    pub async fn ensure_bucket(&self) -> Result<(), RequestError> {
        match self.call(Method::HEAD, None, "", None).await {
            Ok(_) => Ok(()),
            Err(RequestError::Status {
                status: StatusCode::NOT_FOUND,
                ..
            }) => self.call(Method::PUT, None, "", None).await.map(|_| ()),
            Err(err) => Err(err),
        }
    }

    /// An [`RequestError::Unexpected`] about `key` (or the bucket).
    pub fn unexpected(&self, key: Option<&str>, message: impl Into<String>) -> RequestError {
        RequestError::Unexpected {
            path: self.path(key),
            message: message.into(),
        }
    }

    fn check_length(
        &self,
        key: &str,
        what: &str,
        expected: u64,
        got: u64,
    ) -> Result<u64, RequestError> {
        if got == expected {
            Ok(got)
        } else {
            Err(self.unexpected(
                Some(key),
                format!("{what}: expected {expected} bytes, got {got}"),
            ))
        }
    }
}

/// An empty request body.
pub fn empty_body() -> RequestBody {
    Empty::new().boxed()
}

/// URI percent-encoding, shared with the user commands' client.
pub use crate::user_cli::http::percent_encode;
