//! POST Object: uploads from an HTML form (`multipart/form-data` to the bucket's URL).
//!
//! The fields before `file` are read into memory (at most [`MAX_FORM_FIELDS_BYTES`]), the
//! form's signature and policy are checked (see [`crate::post_policy`]), the signer (or an
//! anonymous caller, for unsigned forms) must be allowed `s3:PutObject` on the key, and then
//! the file streams into the backend: never buffered whole, its size checked against the
//! policy's `content-length-range` as it passes. Fields after `file` are ignored, as in AWS.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use multer::{Field, Multipart};

use super::object::MAX_PUT_SIZE;
use super::{attrs_from_headers, new_object_acl, RequestHead};
use crate::access::{Action, Principal};
use crate::auth::{uri_encode, CredentialProvider};
use crate::backend::{ByteStream, ObjectInfo, S3Backend};
use crate::body::{ObjectBody, RequestBody};
use crate::enforce::RequestAccess;
use crate::error::{xml_escape, S3Error, S3ErrorCode, S3Result};
use crate::post_policy::{verify_signature, FormFields};
use crate::router::MAX_KEY_LEN;
use crate::service::{empty_body, full_body, ResponseBody};
use crate::xml::XML_DECLARATION;

/// The most bytes the fields before `file` may hold together (AWS: 20 KB); they are read
/// into memory, so the bound protects the server from forms that never reach the file.
const MAX_FORM_FIELDS_BYTES: usize = 20 * 1024;

/// Form fields that become object headers, under their header name.
const HEADER_FIELDS: [(&str, &str); 7] = [
    ("acl", "x-amz-acl"),
    ("content-type", "content-type"),
    ("cache-control", "cache-control"),
    ("content-disposition", "content-disposition"),
    ("content-encoding", "content-encoding"),
    ("expires", "expires"),
    ("x-amz-storage-class", "x-amz-storage-class"),
];

/// Runs one POST Object request.
pub(super) async fn post_object<B, RB>(
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
    let bucket = head.bucket()?;
    let boundary = boundary_of(head)?;
    let stream = body
        .into_data_stream()
        .map_err(|err| std::io::Error::other(err.to_string()));
    let mut multipart = Multipart::new(stream, boundary);
    let (fields, file) = read_fields(&mut multipart).await?;
    let signer = verify_signature(&fields, creds)?;
    let mut size_range = (0, MAX_PUT_SIZE);
    let principal = match &signer {
        Some(signer) => {
            signer
                .policy
                .check_expiration(time::OffsetDateTime::now_utc())?;
            signer.policy.check_fields(&fields, bucket)?;
            if let Some((min, max)) = signer.policy.content_length_range() {
                size_range = (min, max.min(MAX_PUT_SIZE));
            }
            Principal::user(signer.credential.user.as_str())
        }
        None => Principal::Anonymous,
    };
    let headers = field_headers(&fields)?;
    let acl_condition = headers.get("x-amz-acl").and_then(|v| v.to_str().ok());
    let access = access.acting_as(principal, acl_condition.map(|acl| ("s3:x-amz-acl", acl)));
    let key = object_key(&fields, file.file_name())?;
    if !access.allows(Action::PutObject, Some(&key)) {
        return Err(S3ErrorCode::AccessDenied.into());
    }
    let mut attrs = attrs_from_headers(&headers)?;
    attrs.acl = Some(new_object_acl(creds, &headers, &access)?);
    let mut object = ObjectBody::from_stream(file_stream(file, size_range), None);
    let info = backend.put_object(bucket, &key, attrs, &mut object).await?;
    // The rest of the form (fields after the file) is not read.
    drop(multipart);
    respond(head, &fields, bucket, &info)
}

/// The multipart boundary; a POST to a bucket that is not a form is refused as AWS does.
fn boundary_of(head: &RequestHead) -> S3Result<String> {
    let content_type = head.header("content-type").unwrap_or_default();
    multer::parse_boundary(content_type).map_err(|_| {
        S3Error::new(
            S3ErrorCode::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold",
        )
        .with_detail(
            "Condition",
            "Bucket POST must be of the enclosure-type multipart/form-data",
        )
    })
}

/// Reads the fields up to `file`; returns them with the file field, not yet read.
async fn read_fields(multipart: &mut Multipart<'static>) -> S3Result<(FormFields, Field<'static>)> {
    let mut fields = FormFields::default();
    let mut total = 0;
    loop {
        let Some(mut field) = multipart.next_field().await.map_err(form_error)? else {
            return Err(S3ErrorCode::IncorrectNumberOfFilesInPostRequest.into());
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name.eq_ignore_ascii_case("file") {
            return Ok((fields, field));
        }
        let mut value = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(form_error)? {
            total += chunk.len();
            if total > MAX_FORM_FIELDS_BYTES {
                return Err(S3Error::new(
                    S3ErrorCode::MaxPostPreDataLengthExceededError,
                    "Your POST request fields preceeding the upload file was too large.",
                )
                .with_detail("MaxPostPreDataLength", MAX_FORM_FIELDS_BYTES.to_string()));
            }
            value.extend_from_slice(&chunk);
        }
        let value = String::from_utf8(value).map_err(|_| {
            S3Error::new(
                S3ErrorCode::InvalidArgument,
                format!("The form field {name} is not valid UTF-8"),
            )
        })?;
        fields.insert(&name, value);
    }
}

/// The object key: the `key` field with `${filename}` replaced by the file's name.
fn object_key(fields: &FormFields, file_name: Option<&str>) -> S3Result<String> {
    let template = fields
        .get("key")
        .filter(|key| !key.is_empty())
        .ok_or_else(|| crate::post_policy::missing_field("key"))?;
    let key = template.replace("${filename}", file_name.unwrap_or_default());
    if key.len() > MAX_KEY_LEN {
        return Err(S3Error::from(S3ErrorCode::KeyTooLongError)
            .with_detail("Size", key.len().to_string())
            .with_detail("MaxSizeAllowed", MAX_KEY_LEN.to_string()));
    }
    if key.is_empty() {
        return Err(crate::post_policy::missing_field("key"));
    }
    Ok(key)
}

/// The fields that are object headers (`acl`, `Content-Type`, `x-amz-meta-*`, grants, …),
/// as the headers a PUT would carry, so PUT's parsing applies unchanged.
fn field_headers(fields: &FormFields) -> S3Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for (name, value) in fields.iter() {
        let header = HEADER_FIELDS
            .iter()
            .find(|(field, _)| *field == name)
            .map(|(_, header)| (*header).to_owned())
            .or_else(|| {
                (name.starts_with("x-amz-meta-") || name.starts_with("x-amz-grant-"))
                    .then(|| name.to_owned())
            });
        let Some(header) = header else {
            continue;
        };
        let invalid = || {
            S3Error::new(
                S3ErrorCode::InvalidArgument,
                format!("The form field {name} is not a valid header value"),
            )
        };
        let header = HeaderName::from_bytes(header.as_bytes()).map_err(|_| invalid())?;
        let value = HeaderValue::from_str(value).map_err(|_| invalid())?;
        headers.insert(header, value);
    }
    Ok(headers)
}

/// The file's bytes, refused once they exceed `max` (EntityTooLarge) or when they end
/// short of `min` (EntityTooSmall).
fn file_stream(file: Field<'static>, (min, max): (u64, u64)) -> ByteStream {
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let data = file.map(move |chunk| {
        let chunk = chunk.map_err(form_error)?;
        let len = chunk.len() as u64;
        let total = counter.fetch_add(len, Ordering::Relaxed) + len;
        if total > max {
            return Err(S3Error::from(S3ErrorCode::EntityTooLarge)
                .with_detail("ProposedSize", total.to_string())
                .with_detail("MaxSizeAllowed", max.to_string()));
        }
        Ok(chunk)
    });
    let end = futures_util::stream::once(async move {
        let total = received.load(Ordering::Relaxed);
        if total < min {
            return Err(S3Error::from(S3ErrorCode::EntityTooSmall)
                .with_detail("ProposedSize", total.to_string())
                .with_detail("MinSizeAllowed", min.to_string()));
        }
        Ok(Bytes::new())
    })
    .filter(|item| std::future::ready(!matches!(item, Ok(chunk) if chunk.is_empty())));
    Box::pin(data.chain(end))
}

fn form_error(err: multer::Error) -> S3Error {
    match err {
        multer::Error::StreamReadFailed(_) => S3ErrorCode::IncompleteBody.into(),
        _ => S3Error::new(
            S3ErrorCode::MalformedPOSTRequest,
            "The body of your POST request is not well-formed multipart/form-data.",
        ),
    }
}

/// The answer AWS gives: a 303 to `success_action_redirect` (with bucket, key and ETag in
/// its query), else `success_action_status` (200, 201 with a PostResponse document, or the
/// default 204).
fn respond(
    head: &RequestHead,
    fields: &FormFields,
    bucket: &str,
    info: &ObjectInfo,
) -> S3Result<Response<ResponseBody>> {
    let etag = format!("\"{}\"", info.etag);
    let host = head.host.as_deref().unwrap_or("localhost");
    let location = format!("http://{host}/{bucket}/{}", uri_encode(&info.key, false));
    let redirect = fields
        .get("success_action_redirect")
        .or_else(|| fields.get("redirect"))
        .filter(|url| {
            url.parse::<http::Uri>()
                .is_ok_and(|uri| uri.scheme().is_some())
        });
    let builder = Response::builder().header(http::header::ETAG, &etag);
    let response = if let Some(url) = redirect {
        let separator = if url.contains('?') { '&' } else { '?' };
        let target = format!(
            "{url}{separator}bucket={}&key={}&etag={}",
            uri_encode(bucket, true),
            uri_encode(&info.key, true),
            uri_encode(&etag, true)
        );
        builder
            .status(StatusCode::SEE_OTHER)
            .header(http::header::LOCATION, target)
            .body(empty_body())
    } else {
        let builder = builder.header(http::header::LOCATION, &location);
        match fields.get("success_action_status") {
            Some("200") => builder.status(StatusCode::OK).body(empty_body()),
            Some("201") => builder
                .status(StatusCode::CREATED)
                .header(http::header::CONTENT_TYPE, "application/xml")
                .body(full_body(post_response(
                    &location, bucket, &info.key, &etag,
                ))),
            _ => builder.status(StatusCode::NO_CONTENT).body(empty_body()),
        }
    };
    response.map_err(S3Error::internal)
}

/// The `PostResponse` document of a 201.
fn post_response(location: &str, bucket: &str, key: &str, etag: &str) -> String {
    format!(
        "{XML_DECLARATION}<PostResponse><Location>{}</Location><Bucket>{}</Bucket>\
         <Key>{}</Key><ETag>{}</ETag></PostResponse>",
        xml_escape(location),
        xml_escape(bucket),
        xml_escape(key),
        xml_escape(etag)
    )
}
