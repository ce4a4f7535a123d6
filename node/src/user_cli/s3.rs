//! The S3 operations the user commands need, over [`super::http`]: path-style URLs, SigV4
//! with `UNSIGNED-PAYLOAD` (bodies stream from disk and are never hashed up front), the session
//! token of temporary credentials, and S3 error documents turned into `Code: Message` errors.

use std::time::{Duration, SystemTime};

use super::answers::{
    parse_bucket_list, parse_error_document, parse_object_list, BucketEntry, ListPage,
};
use super::http::{bytes_body, empty_body, percent_encode, HttpClient, RequestBody};
use super::resolve::Keys;
use super::xml;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, ETAG};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use s3api::auth::signer::{presign_v4_with_token, sign_v4};
use s3api::auth::SecretKey;

/// Error documents are short; a longer body is not one.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Listing and other XML answers are bounded (1000 keys of at most 1 KiB each, plus markup).
const XML_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// Why an S3 request failed.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// The server refused it with an S3 error document (or a bare status for HEAD).
    #[error("{code}: {message} ({method} {resource}: HTTP {status})")]
    Service {
        /// The HTTP status.
        status: StatusCode,
        /// The S3 error code (`NoSuchBucket`, `AccessDenied`, …).
        code: String,
        /// The server's message.
        message: String,
        /// The request method.
        method: Method,
        /// `/bucket/key` of the request.
        resource: String,
    },
    /// The request could not be sent or its answer not received.
    #[error("{method} {url} failed")]
    Transport {
        /// The request method.
        method: Method,
        /// The full URL.
        url: String,
        /// hyper's error (its source chain says why: refused, TLS, …).
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// The answer's body broke off or was too large.
    #[error("reading the answer to {method} {resource}: {message}")]
    Body {
        /// The request method.
        method: Method,
        /// `/bucket/key` of the request.
        resource: String,
        /// What went wrong.
        message: String,
    },
    /// The answer was HTTP-valid but not what S3 promises (bad XML, missing ETag, …).
    #[error("{0}")]
    Unexpected(String),
}

/// A signed client for one S3 endpoint and identity.
pub struct S3Client {
    http: HttpClient,
    /// `scheme://host[:port]`, no trailing slash.
    endpoint: String,
    region: String,
    keys: Keys,
    secret: SecretKey,
}

/// `/bucket` or `/bucket/key` (key percent-encoded as it goes on the wire), or `/`.
fn resource(bucket: Option<&str>, key: Option<&str>) -> String {
    match (bucket, key) {
        (Some(bucket), Some(key)) => format!("/{bucket}/{}", percent_encode(key, true)),
        (Some(bucket), None) => format!("/{bucket}"),
        _ => "/".to_string(),
    }
}

/// Builds a query string from pairs (values percent-encoded).
pub fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| {
            if value.is_empty() {
                name.to_string()
            } else {
                format!("{name}={}", percent_encode(value, false))
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The error code S3 implies for a body-less refusal (HEAD answers have no body).
fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::FORBIDDEN => "AccessDenied",
        StatusCode::BAD_REQUEST => "BadRequest",
        StatusCode::CONFLICT => "Conflict",
        _ => "HttpError",
    }
}

impl S3Client {
    /// A client for `endpoint` signing as `keys` in `region`.
    pub fn new(http: HttpClient, endpoint: &str, region: &str, keys: Keys) -> S3Client {
        let secret = SecretKey::new(keys.secret_access_key.clone());
        S3Client {
            http,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            region: region.to_string(),
            keys,
            secret,
        }
    }

    fn url(&self, resource: &str, query: &str) -> String {
        if query.is_empty() {
            format!("{}{resource}", self.endpoint)
        } else {
            format!("{}{resource}?{query}", self.endpoint)
        }
    }

    /// Sends one signed request; returns the response if its status is 2xx, else the S3 error.
    pub async fn send(
        &self,
        method: Method,
        bucket: Option<&str>,
        key: Option<&str>,
        query: &str,
        extra_headers: &[(HeaderName, String)],
        body: Option<(RequestBody, u64)>,
    ) -> Result<Response<Incoming>, S3Error> {
        let resource = resource(bucket, key);
        let url = self.url(&resource, query);
        let uri: Uri = url
            .parse()
            .map_err(|err| S3Error::Unexpected(format!("invalid request URL {url}: {err}")))?;
        let (body, length) = match body {
            Some((body, length)) => (body, Some(length)),
            None if method == Method::PUT || method == Method::POST => (empty_body(), Some(0)),
            None => (empty_body(), None),
        };
        let mut request = Request::new(body);
        *request.method_mut() = method.clone();
        *request.uri_mut() = uri.clone();
        let headers = request.headers_mut();
        if let Some(length) = length {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
        }
        for (name, value) in extra_headers {
            let value = HeaderValue::from_str(value)
                .map_err(|_| S3Error::Unexpected(format!("invalid {name} header value")))?;
            headers.insert(name.clone(), value);
        }
        if let Some(token) = &self.keys.session_token {
            let value = HeaderValue::from_str(token).map_err(|_| {
                S3Error::Unexpected("the session token is not a valid header value".to_string())
            })?;
            headers.insert(HeaderName::from_static("x-amz-security-token"), value);
        }
        sign_v4(
            &method,
            &uri,
            headers,
            "UNSIGNED-PAYLOAD",
            &self.keys.access_key_id,
            &self.secret,
            &self.region,
            SystemTime::now(),
        );
        let response = self
            .http
            .request(request)
            .await
            .map_err(|source| S3Error::Transport {
                method: method.clone(),
                url: url.clone(),
                source,
            })?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(refusal(response, method, &resource).await)
    }

    /// Sends a request and reads its (bounded) body.
    pub async fn call(
        &self,
        method: Method,
        bucket: Option<&str>,
        key: Option<&str>,
        query: &str,
        body: Option<(RequestBody, u64)>,
    ) -> Result<(HeaderMap, Bytes), S3Error> {
        let response = self
            .send(method.clone(), bucket, key, query, &[], body)
            .await?;
        let headers = response.headers().clone();
        let body = Limited::new(response.into_body(), XML_BODY_LIMIT)
            .collect()
            .await
            .map_err(|err| S3Error::Body {
                method,
                resource: decode_resource(&resource(bucket, key)),
                message: err.to_string(),
            })?
            .to_bytes();
        Ok((headers, body))
    }

    /// ListBuckets.
    pub async fn list_buckets(&self) -> Result<Vec<BucketEntry>, S3Error> {
        let (_, body) = self.call(Method::GET, None, None, "", None).await?;
        parse_bucket_list(&body)
    }

    /// One page of ListObjectsV2.
    pub async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        token: Option<&str>,
    ) -> Result<ListPage, S3Error> {
        let mut pairs = vec![("list-type", "2")];
        if !prefix.is_empty() {
            pairs.push(("prefix", prefix));
        }
        if let Some(delimiter) = delimiter {
            pairs.push(("delimiter", delimiter));
        }
        if let Some(token) = token {
            pairs.push(("continuation-token", token));
        }
        let (_, body) = self
            .call(Method::GET, Some(bucket), None, &query(&pairs), None)
            .await?;
        parse_object_list(&body)
    }

    /// Every object (and, with a delimiter, every common prefix) under `prefix`.
    pub async fn list_all(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
    ) -> Result<ListPage, S3Error> {
        let mut all = ListPage::default();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .list_page(bucket, prefix, delimiter, token.as_deref())
                .await?;
            all.objects.extend(page.objects);
            all.prefixes.extend(page.prefixes);
            match page.next_token {
                Some(next) => token = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// HEAD an object: its size, or `None` when it does not exist.
    pub async fn object_size(&self, bucket: &str, key: &str) -> Result<Option<u64>, S3Error> {
        match self
            .call(Method::HEAD, Some(bucket), Some(key), "", None)
            .await
        {
            Ok((headers, _)) => Ok(headers
                .get(CONTENT_LENGTH)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse().ok())),
            Err(S3Error::Service {
                status: StatusCode::NOT_FOUND,
                ..
            }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The size of an object that must exist. HEAD answers carry no error document, so a
    /// missing object is asked again with GET to tell `NoSuchBucket` from `NoSuchKey`.
    pub async fn existing_object_size(&self, bucket: &str, key: &str) -> Result<u64, S3Error> {
        if let Some(size) = self.object_size(bucket, key).await? {
            return Ok(size);
        }
        // Normally fails with the precise error; an object that appeared meanwhile is fine.
        let response = self.get(bucket, key).await?;
        response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| S3Error::Unexpected(format!("GET /{bucket}/{key}: no Content-Length")))
    }

    /// PUT an object (or a part, with its `query`); returns the ETag.
    pub async fn put(
        &self,
        bucket: &str,
        key: &str,
        query: &str,
        body: RequestBody,
        length: u64,
    ) -> Result<String, S3Error> {
        let (headers, _) = self
            .call(
                Method::PUT,
                Some(bucket),
                Some(key),
                query,
                Some((body, length)),
            )
            .await?;
        headers
            .get(ETAG)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| S3Error::Unexpected(format!("PUT /{bucket}/{key}: no ETag")))
    }

    /// CreateMultipartUpload; returns the upload id.
    pub async fn create_multipart(&self, bucket: &str, key: &str) -> Result<String, S3Error> {
        let (_, body) = self
            .call(Method::POST, Some(bucket), Some(key), "uploads", None)
            .await?;
        let root = xml::parse(&body)
            .map_err(|err| S3Error::Unexpected(format!("CreateMultipartUpload: {err}")))?;
        root.child_text("UploadId")
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                S3Error::Unexpected("CreateMultipartUpload answered no UploadId".to_string())
            })
    }

    /// CompleteMultipartUpload with `(part number, ETag)` in order.
    pub async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<(), S3Error> {
        let mut document = String::from("<CompleteMultipartUpload>");
        for (number, etag) in parts {
            document.push_str(&format!(
                "<Part><PartNumber>{number}</PartNumber><ETag>{}</ETag></Part>",
                xml::escape(etag)
            ));
        }
        document.push_str("</CompleteMultipartUpload>");
        let length = document.len() as u64;
        let (_, body) = self
            .call(
                Method::POST,
                Some(bucket),
                Some(key),
                &query(&[("uploadId", upload_id)]),
                Some((bytes_body(document), length)),
            )
            .await?;
        // S3 may fail a completion after answering 200: the error is then in the body.
        if let Some((code, message)) = parse_error_document(&body) {
            return Err(S3Error::Service {
                status: StatusCode::OK,
                code,
                message,
                method: Method::POST,
                resource: format!("/{bucket}/{key}"),
            });
        }
        Ok(())
    }

    /// AbortMultipartUpload (best effort after a failed upload).
    pub async fn abort_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), S3Error> {
        self.call(
            Method::DELETE,
            Some(bucket),
            Some(key),
            &query(&[("uploadId", upload_id)]),
            None,
        )
        .await
        .map(|_| ())
    }

    /// GET an object: the response, its body still to be streamed.
    pub async fn get(&self, bucket: &str, key: &str) -> Result<Response<Incoming>, S3Error> {
        self.send(Method::GET, Some(bucket), Some(key), "", &[], None)
            .await
    }

    /// DELETE an object.
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), S3Error> {
        self.call(Method::DELETE, Some(bucket), Some(key), "", None)
            .await
            .map(|_| ())
    }

    /// CreateBucket.
    pub async fn create_bucket(&self, bucket: &str) -> Result<(), S3Error> {
        self.call(Method::PUT, Some(bucket), None, "", None)
            .await
            .map(|_| ())
    }

    /// DeleteBucket.
    pub async fn delete_bucket(&self, bucket: &str) -> Result<(), S3Error> {
        self.call(Method::DELETE, Some(bucket), None, "", None)
            .await
            .map(|_| ())
    }

    /// A presigned GET URL of an object, valid for `expires`.
    pub fn presign_get(&self, bucket: &str, key: &str, expires: Duration) -> anyhow::Result<Uri> {
        let url = self.url(&resource(Some(bucket), Some(key)), "");
        let uri: Uri = url
            .parse()
            .map_err(|err| anyhow::anyhow!("invalid URL {url}: {err}"))?;
        presign_v4_with_token(
            &Method::GET,
            &uri,
            &self.keys.access_key_id,
            &self.secret,
            self.keys.session_token.as_deref(),
            &self.region,
            SystemTime::now(),
            expires,
        )
        .map_err(|err| anyhow::anyhow!("cannot presign {url}: {}", err.message))
    }
}

/// The [`S3Error::Service`] of a non-2xx answer: its error document, or for body-less answers
/// (HEAD) the code the status implies.
async fn refusal(response: Response<Incoming>, method: Method, resource: &str) -> S3Error {
    let status = response.status();
    let body = Limited::new(response.into_body(), ERROR_BODY_LIMIT)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let (code, message) = parse_error_document(&body).unwrap_or_else(|| {
        (
            code_for_status(status).to_string(),
            status.canonical_reason().unwrap_or("").to_string(),
        )
    });
    S3Error::Service {
        status,
        code,
        message,
        method,
        resource: decode_resource(resource),
    }
}

/// `/bucket/a%20b` → `/bucket/a b`, for messages.
fn decode_resource(resource: &str) -> String {
    let bytes = resource.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            if let Some(hex) = resource.get(index + 1..index + 3) {
                if let Ok(byte) = u8::from_str_radix(hex, 16) {
                    out.push(byte);
                    index += 3;
                    continue;
                }
            }
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn resources_and_queries_are_encoded_for_the_wire() {
        assert_eq!(resource(Some("b"), Some("a b/ü+")), "/b/a%20b/%C3%BC%2B");
        assert_eq!(decode_resource("/b/a%20b/%C3%BC%2B"), "/b/a b/ü+");
        assert_eq!(decode_resource("/b/100%"), "/b/100%");
        assert_eq!(resource(None, None), "/");
        assert_eq!(
            query(&[("list-type", "2"), ("prefix", "a b/"), ("uploads", "")]),
            "list-type=2&prefix=a%20b%2F&uploads"
        );
    }
}
