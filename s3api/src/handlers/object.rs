//! PutObject, GetObject, HeadObject, DeleteObject.

use http::{HeaderMap, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};

use super::{attrs_from_headers, empty_response, new_object_acl, set_header, RequestHead};
use crate::auth::CredentialProvider;
use crate::backend::{ObjectInfo, ObjectReader, S3Backend};
use crate::body::RequestBody;
use crate::conditional::{check_read_conditions, etag_list_matches, http_date};
use crate::enforce::RequestAccess;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::range::parse_range;
use crate::service::ResponseBody;

/// The largest object a single PUT may carry (AWS's limit).
pub(super) const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// The decoded length a client announced, checked against the single-PUT limit.
pub(super) fn check_declared_length(head: &RequestHead) -> S3Result<()> {
    let declared = head
        .header("x-amz-decoded-content-length")
        .or_else(|| head.header("content-length"));
    match declared.map(str::parse::<u64>) {
        None if head.header("transfer-encoding").is_some() => {
            Err(S3Error::from(S3ErrorCode::MissingContentLength))
        }
        Some(Ok(len)) if len > MAX_PUT_SIZE => Err(S3Error::from(S3ErrorCode::EntityTooLarge)
            .with_detail("ProposedSize", len.to_string())
            .with_detail("MaxSizeAllowed", MAX_PUT_SIZE.to_string())),
        Some(Err(_)) => Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            "Content-Length is not a number",
        )),
        _ => Ok(()),
    }
}

pub(super) async fn put_object<B, RB>(
    backend: &B,
    creds: &dyn CredentialProvider,
    head: &RequestHead,
    access: &RequestAccess,
    body: RB,
) -> S3Result<Response<ResponseBody>>
where
    B: S3Backend,
    RB: RequestBody,
{
    let (bucket, key) = (head.bucket()?, head.key()?);
    check_declared_length(head)?;
    let mut attrs = attrs_from_headers(head.headers())?;
    attrs.acl = Some(new_object_acl(creds, head.headers(), access)?);
    if let Some(condition) = head.header("if-none-match") {
        // Conditional create: refuse when a matching object already exists.
        match backend.head_object(bucket, key).await {
            Ok(existing) if etag_list_matches(condition, &existing.etag) => {
                return Err(S3ErrorCode::PreconditionFailed.into())
            }
            Ok(_) => {}
            Err(err) if err.code == S3ErrorCode::NoSuchKey => {}
            Err(err) => return Err(err),
        }
    }
    let mut body = head.object_body(body)?;
    let info = backend.put_object(bucket, key, attrs, &mut body).await?;
    let mut response = empty_response(StatusCode::OK)?;
    write_etag_and_checksum(response.headers_mut(), &info);
    Ok(response)
}

pub(super) async fn head_object<B: S3Backend>(
    backend: &B,
    head: &RequestHead,
) -> S3Result<Response<ResponseBody>> {
    let info = backend.head_object(head.bucket()?, head.key()?).await?;
    Ok(match plan_read(head, &info)? {
        ReadPlan::NotModified(response) => response,
        ReadPlan::Send(mut response, range) => {
            response.headers_mut().insert(
                http::header::CONTENT_LENGTH,
                (range.end - range.start).into(),
            );
            response
        }
    })
}

pub(super) async fn get_object<B: S3Backend>(
    backend: &B,
    head: &RequestHead,
) -> S3Result<Response<ResponseBody>> {
    if head.query.has("partNumber") {
        return Err(S3Error::new(
            S3ErrorCode::NotImplemented,
            "GetObject by partNumber is not implemented by this server",
        ));
    }
    let reader = backend.get_object(head.bucket()?, head.key()?).await?;
    let (response, range) = match plan_read(head, reader.info())? {
        ReadPlan::NotModified(response) => return Ok(response),
        ReadPlan::Send(response, range) => (response, range),
    };
    let len = range.end - range.start;
    let stream = reader.into_stream(range);
    let body = StreamBody::new(futures_util::StreamExt::map(stream, |chunk| {
        chunk.map(http_body::Frame::data)
    }));
    let (mut parts, _) = response.into_parts();
    parts
        .headers
        .insert(http::header::CONTENT_LENGTH, len.into());
    Ok(Response::from_parts(parts, body.boxed_unsync()))
}

/// What a GET or HEAD answers: a 304, or a head (200/206) and the byte range to send.
enum ReadPlan {
    NotModified(Response<ResponseBody>),
    Send(Response<ResponseBody>, std::ops::Range<u64>),
}

/// Evaluates conditions and range against the object and builds the response head.
fn plan_read(head: &RequestHead, info: &ObjectInfo) -> S3Result<ReadPlan> {
    if let Err(err) = check_read_conditions(head.headers(), info) {
        if err.code != S3ErrorCode::NotModified {
            return Err(err);
        }
        // A 304 carries validators only: a checksum header here makes SDKs try to verify an
        // empty body (boto3 fails on it).
        let mut response = empty_response(StatusCode::NOT_MODIFIED)?;
        set_header(
            response.headers_mut(),
            "etag",
            &format!("\"{}\"", info.etag),
        );
        set_header(
            response.headers_mut(),
            "last-modified",
            &http_date(info.last_modified),
        );
        return Ok(ReadPlan::NotModified(response));
    }
    let range = head
        .header("range")
        .and_then(parse_range)
        .map(|spec| spec.resolve(info.size))
        .transpose()?;
    let status = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut response = empty_response(status)?;
    let headers = response.headers_mut();
    write_object_headers(headers, info);
    set_header(headers, "accept-ranges", "bytes");
    if let Some(range) = &range {
        let content_range = format!("bytes {}-{}/{}", range.start, range.end - 1, info.size);
        set_header(headers, "content-range", &content_range);
    } else if head.header("x-amz-checksum-mode") == Some("ENABLED") {
        write_etag_and_checksum(headers, info);
    }
    apply_response_overrides(head, headers);
    Ok(ReadPlan::Send(response, range.unwrap_or(0..info.size)))
}

fn write_object_headers(headers: &mut HeaderMap, info: &ObjectInfo) {
    let attrs = &info.attrs;
    set_header(
        headers,
        "content-type",
        attrs
            .content_type
            .as_deref()
            .unwrap_or("binary/octet-stream"),
    );
    set_header(headers, "etag", &format!("\"{}\"", info.etag));
    set_header(headers, "last-modified", &http_date(info.last_modified));
    let optional = [
        ("content-encoding", &attrs.content_encoding),
        ("content-disposition", &attrs.content_disposition),
        ("content-language", &attrs.content_language),
        ("cache-control", &attrs.cache_control),
        ("expires", &attrs.expires),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            set_header(headers, name, value);
        }
    }
    for (name, value) in &attrs.user_metadata {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::try_from(format!("x-amz-meta-{name}")),
            http::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.insert(name, value);
        }
    }
    if let Some(parts) = info.parts_count {
        set_header(headers, "x-amz-mp-parts-count", &parts.to_string());
    }
}

/// `ETag` and, when the object has one, its `x-amz-checksum-*` header.
pub(super) fn write_etag_and_checksum(headers: &mut HeaderMap, info: &ObjectInfo) {
    set_header(headers, "etag", &format!("\"{}\"", info.etag));
    if let Some((algorithm, value)) = &info.checksum {
        let name = format!("x-amz-checksum-{}", algorithm.as_str().to_ascii_lowercase());
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::try_from(name),
            http::HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
}

/// `response-content-type=…` and friends replace the stored headers in this one answer.
fn apply_response_overrides(head: &RequestHead, headers: &mut HeaderMap) {
    const OVERRIDES: &[(&str, &str)] = &[
        ("response-content-type", "content-type"),
        ("response-content-language", "content-language"),
        ("response-expires", "expires"),
        ("response-cache-control", "cache-control"),
        ("response-content-disposition", "content-disposition"),
        ("response-content-encoding", "content-encoding"),
    ];
    for (param, header) in OVERRIDES {
        if let Some(value) = head.query.get(param) {
            if let Ok(value) = http::HeaderValue::from_bytes(value.as_bytes()) {
                headers.insert(*header, value);
            }
        }
    }
}

pub(super) async fn delete_object<B: S3Backend>(
    backend: &B,
    head: &RequestHead,
) -> S3Result<Response<ResponseBody>> {
    backend.delete_object(head.bucket()?, head.key()?).await?;
    empty_response(StatusCode::NO_CONTENT)
}
