//! The S3 front end as one async function: request in, response out.
//!
//! [`S3Service::handle`] gives every request an id, resolves bucket and key, authenticates,
//! names the operation, checks the caller may run it ([`crate::enforce`]) and hands it to
//! [`crate::handlers`]. Whatever fails becomes AWS's XML
//! error body here, in one place. With an observer ([`S3Service::with_observer`]) every request
//! also yields one [`RequestRecord`] when its response body is over (see [`crate::observe`]).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, DATE, SERVER};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};

use crate::auth::{self, CredentialProvider};
use crate::backend::S3Backend;
use crate::body::RequestBody;
use crate::cors;
use crate::enforce;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::handlers::{self, RequestHead};
use crate::observe::{
    CountingBody, ObservedBody, PeerAddr, RecordEmitter, RequestObserver, RequestRecord,
};
use crate::router::{self, Query};
use crate::sts;

/// The body of every response: a buffer, or an object streaming out of the backend.
pub type ResponseBody = http_body_util::combinators::UnsyncBoxBody<Bytes, S3Error>;

/// Total size of request headers above which AWS answers `RequestHeaderSectionTooLarge`.
const MAX_HEADER_BYTES: usize = 8 * 1024;

/// Settings of the S3 front end.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// The region reported by GetBucketLocation and `x-amz-bucket-region`.
    pub region: String,
    /// With a root domain, `bucket.ROOT` Host headers select the bucket (virtual-host style).
    pub root_domain: Option<String>,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            region: "us-east-1".into(),
            root_domain: None,
        }
    }
}

/// The S3 service over a storage backend and a credential source.
pub struct S3Service<B, C> {
    backend: Arc<B>,
    credentials: Arc<C>,
    config: Arc<S3Config>,
    observer: Option<Arc<dyn RequestObserver>>,
}

impl<B, C> Clone for S3Service<B, C> {
    fn clone(&self) -> Self {
        S3Service {
            backend: self.backend.clone(),
            credentials: self.credentials.clone(),
            config: self.config.clone(),
            observer: self.observer.clone(),
        }
    }
}

impl<B: S3Backend, C: CredentialProvider + 'static> S3Service<B, C> {
    /// A service answering for `backend`, trusting the keys `credentials` knows.
    pub fn new(backend: Arc<B>, credentials: Arc<C>, config: S3Config) -> Self {
        S3Service {
            backend,
            credentials,
            config: Arc::new(config),
            observer: None,
        }
    }

    /// The same service, reporting every finished request to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn RequestObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Answers one request. Never fails: errors become S3 error responses. The client's address
    /// is read from the request's [`PeerAddr`] extension when the server set one.
    pub async fn handle<RB>(&self, request: Request<RB>) -> Response<ResponseBody>
    where
        RB: RequestBody,
    {
        let request_id = new_request_id();
        let (parts, body) = request.into_parts();
        let is_head = parts.method == http::Method::HEAD;
        let resource = parts.uri.path().to_owned();
        let remote_addr = parts.extensions.get::<PeerAddr>().map(|peer| peer.0);
        let mut record =
            RequestRecord::arriving(request_id.clone(), parts.method.clone(), remote_addr);
        let bytes_in = Arc::new(AtomicU64::new(0));
        let body = CountingBody::new(body, bytes_in.clone());
        let expects_continue = expects_continue(&parts.headers);
        let sts = self.is_sts(&parts);
        // STS requests authenticate over their body, so they skip the S3 preparation: `Err`
        // holds an STS request's head, `Ok` what preparing an S3 request gave.
        let prepared = if sts {
            Err(parts)
        } else {
            Ok(self.prepare(parts, &request_id, &mut record))
        };
        // Created before the first await: a client hanging up drops this future, and the
        // emitter's drop still reports the request.
        let mut emitter = self
            .observer
            .as_ref()
            .map(|observer| RecordEmitter::new(observer.clone(), record, bytes_in));
        // CORS headers for a cross-origin request, decided once the bucket is read, added to
        // the answer whatever it is (errors included, so browser scripts can read them).
        let mut cors_headers = None;
        let response = match prepared {
            Err(parts) => {
                self.handle_sts(&parts, body, &request_id, &mut emitter)
                    .await
            }
            Ok(Ok((head, op))) => {
                tracing::debug!(op = op.name(), request_id, "request");
                let checked = match enforce::load_bucket(&*self.backend, &head, op).await {
                    Ok(bucket) => {
                        cors_headers = cors_for(&head, op, bucket.as_ref());
                        enforce::check_loaded(&*self.backend, &head, op, bucket).await
                    }
                    Err(err) => Err(err),
                };
                match checked {
                    Ok(access) => {
                        let credentials: &dyn CredentialProvider = &*self.credentials;
                        handlers::dispatch(
                            &*self.backend,
                            credentials,
                            &self.config,
                            &head,
                            &access,
                            op,
                            body,
                        )
                        .await
                    }
                    Err(err) => Err(err),
                }
            }
            Ok(Err(err)) => Err(err),
        };
        let mut response = response.unwrap_or_else(|err| {
            if let Some(record) = emitter.as_mut().and_then(RecordEmitter::record_mut) {
                record.error_code = Some(err.code.as_str());
            }
            if err.code == S3ErrorCode::InternalError {
                tracing::error!(request_id, resource, "{err}");
            } else {
                tracing::debug!(request_id, resource, "{err}");
            }
            if sts {
                return sts_error_response(&err, &request_id);
            }
            error_response(&err, &resource, &request_id, is_head)
        });
        // Answered without a `100 Continue` (empty body, or refused before the body was read):
        // see [`expects_continue`] for why the connection must not be reused.
        let close_connection =
            expects_continue.is_some_and(|empty| empty || !response.status().is_success());
        let headers = response.headers_mut();
        if let Some(cors_headers) = &cors_headers {
            cors_headers.apply(headers);
        }
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            headers.insert("x-amz-request-id", value.clone());
            headers.insert("x-amz-id-2", value);
        }
        headers.insert(SERVER, HeaderValue::from_static("Mucura"));
        if close_connection {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        if let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(SystemTime::now())) {
            headers.insert(DATE, date);
        }
        match emitter {
            Some(mut emitter) => {
                if let Some(record) = emitter.record_mut() {
                    record.status = response.status().as_u16();
                }
                response.map(|body| ObservedBody::new(body, emitter).boxed_unsync())
            }
            None => response,
        }
    }

    /// Whether the request is an STS call (`POST /` naming no bucket, [`crate::sts`]).
    fn is_sts(&self, parts: &http::request::Parts) -> bool {
        if parts.method != http::Method::POST || parts.uri.path() != "/" {
            return false;
        }
        let host = host_of(parts);
        let vhost_bucket = match (&host, &self.config.root_domain) {
            (Some(host), Some(root)) => router::virtual_host_bucket(host, root),
            _ => None,
        };
        sts::is_sts_request(&parts.method, vhost_bucket.as_deref())
    }

    /// Answers an STS call: its own authentication (over the form body), its own XML.
    async fn handle_sts<RB: RequestBody>(
        &self,
        parts: &http::request::Parts,
        body: RB,
        request_id: &str,
        emitter: &mut Option<RecordEmitter>,
    ) -> S3Result<Response<ResponseBody>> {
        let outcome = sts::handle(&*self.credentials, parts, body, request_id).await;
        if let Some(record) = emitter.as_mut().and_then(RecordEmitter::record_mut) {
            record.operation = Some(outcome.action.map_or("STS", sts::Action::name));
            if let Some(identity) = &outcome.identity {
                record.set_identity(identity);
            }
        }
        let xml = outcome.result?;
        Response::builder()
            .status(StatusCode::OK)
            .header(http::header::CONTENT_TYPE, "text/xml")
            .body(full_body(xml))
            .map_err(S3Error::internal)
    }

    /// Everything decided from the request head: target, identity, operation. What is learnt
    /// goes into `record` as it is learnt, so failed requests are reported as far as they got.
    fn prepare(
        &self,
        parts: http::request::Parts,
        request_id: &str,
        record: &mut RequestRecord,
    ) -> S3Result<(RequestHead, router::Operation)> {
        let header_bytes: usize = parts
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        if header_bytes > MAX_HEADER_BYTES {
            return Err(S3Error::new(
                S3ErrorCode::RequestHeaderSectionTooLarge,
                "Your request header section exceeds the maximum allowed size.",
            )
            .with_detail("MaxSizeAllowed", MAX_HEADER_BYTES.to_string()));
        }
        let host = host_of(&parts);
        let target = router::resolve_target(
            host.as_deref(),
            parts.uri.path(),
            self.config.root_domain.as_deref(),
        )?;
        record.bucket = target.bucket.clone();
        record.key = target.key.clone();
        let vhost_bucket = match (&host, &self.config.root_domain) {
            (Some(host), Some(root)) => router::virtual_host_bucket(host, root),
            _ => None,
        };
        let auth = auth::authenticate(
            &parts,
            vhost_bucket.as_deref(),
            &*self.credentials,
            SystemTime::now(),
        )?;
        // Anonymous requests go on: ACLs and bucket policies decide what they may do.
        record.set_identity(&auth.identity);
        let query = Query::parse(parts.uri.query());
        let op = router::operation(
            &parts.method,
            &target,
            &query,
            parts.headers.contains_key("x-amz-copy-source"),
        )?;
        record.operation = Some(op.name());
        Ok((
            RequestHead {
                parts,
                query,
                bucket: target.bucket,
                key: target.key,
                auth,
                request_id: request_id.to_owned(),
                host,
            },
            op,
        ))
    }
}

/// STS's XML error response (AWS SDKs parse STS errors differently from S3's).
fn sts_error_response(err: &S3Error, request_id: &str) -> Response<ResponseBody> {
    Response::builder()
        .status(err.status())
        .header(http::header::CONTENT_TYPE, "text/xml")
        .body(full_body(sts::error_xml(err, request_id)))
        .unwrap_or_else(|_| Response::new(empty_body()))
}

/// The CORS headers an actual request gets from its bucket's configuration (preflights
/// are answered by their handler).
fn cors_for(
    head: &RequestHead,
    op: router::Operation,
    bucket: Option<&enforce::BucketGuard>,
) -> Option<cors::CorsHeaders> {
    if op == router::Operation::PreflightRequest {
        return None;
    }
    let stored = bucket?.cors.as_deref();
    cors::actual_response_headers(&head.parts.headers, &head.parts.method, stored)
}

/// For a request asking for `100 Continue`: whether its body is empty. `None` without the header.
///
/// When such a request is answered without a 100 (its body is empty, or it is refused before the
/// body is read), botocore (AWS CLI, boto3) keeps the final status it read while waiting for the
/// 100 on the pooled connection and misparses the *next* response on it: the client stalls until
/// the connection times out (boto/botocore#3755; every `aws s3 sync` of a tree with an empty file
/// hit it). Closing those connections after the answer costs one reconnect and gives the client
/// a fresh connection.
fn expects_continue(headers: &http::HeaderMap) -> Option<bool> {
    let expects_continue = headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let empty = headers
        .get(http::header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() == b"0");
    expects_continue.then_some(empty)
}

/// The Host header, or the URI authority for HTTP/2.
fn host_of(parts: &http::request::Parts) -> Option<String> {
    parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
}

/// A fresh request id: 16 upper-case hex digits, like AWS's.
fn new_request_id() -> String {
    let id = uuid::Uuid::new_v4();
    hex_upper(&id.as_bytes()[..8])
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The XML error response for `err` (no body for HEAD requests and 304).
pub fn error_response(
    err: &S3Error,
    resource: &str,
    request_id: &str,
    is_head: bool,
) -> Response<ResponseBody> {
    let status = err.status();
    let mut builder = Response::builder().status(status);
    if is_head || status == StatusCode::NOT_MODIFIED {
        builder = builder.header("x-amz-error-code", err.code.as_str());
        return builder
            .body(empty_body())
            .unwrap_or_else(|_| Response::new(empty_body()));
    }
    builder
        .header(http::header::CONTENT_TYPE, "application/xml")
        .body(full_body(err.to_xml(resource, request_id)))
        .unwrap_or_else(|_| Response::new(empty_body()))
}

/// An empty response body.
pub fn empty_body() -> ResponseBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A buffered response body.
pub fn full_body(data: impl Into<Bytes>) -> ResponseBody {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}
