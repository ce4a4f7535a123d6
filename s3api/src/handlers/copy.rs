//! CopyObject and UploadPartCopy: the source streams out of the backend and back in as a new
//! body, so copies of any size run in bounded memory and reuse the normal write path.

use http::Response;
use percent_encoding::percent_decode_str;

use super::object::write_etag_and_checksum;
use super::{attrs_from_headers, new_object_acl, xml_response, RequestHead};
use crate::auth::CredentialProvider;
use crate::backend::{ObjectInfo, ObjectReader, S3Backend};
use crate::body::ObjectBody;
use crate::conditional::check_copy_source_conditions;
use crate::enforce::RequestAccess;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::range::parse_copy_source_range;
use crate::router::MAX_KEY_LEN;
use crate::service::ResponseBody;
use crate::xml::{CopyObjectResult, CopyPartResult};

/// `x-amz-copy-source`: `bucket/key` or `/bucket/key`, URL-encoded, maybe `?versionId=`.
pub(crate) fn copy_source(head: &RequestHead) -> S3Result<(String, String)> {
    let invalid = |why: &str| {
        S3Error::new(
            S3ErrorCode::InvalidArgument,
            format!("Copy Source must mention the source bucket and key: sourcebucket/sourcekey ({why})"),
        )
        .with_detail("ArgumentName", "x-amz-copy-source")
    };
    let raw = head
        .header("x-amz-copy-source")
        .ok_or_else(|| invalid("missing"))?;
    let (path, version) = match raw.split_once("?versionId=") {
        Some((path, version)) => (path, Some(version)),
        None => (raw, None),
    };
    if version.is_some_and(|v| v != "null") {
        return Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            "Invalid version id specified",
        ));
    }
    let decoded = percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| invalid("not UTF-8"))?;
    let decoded = decoded.strip_prefix('/').unwrap_or(&decoded);
    match decoded.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
            if key.len() > MAX_KEY_LEN {
                return Err(S3ErrorCode::KeyTooLongError.into());
            }
            Ok((bucket.to_owned(), key.to_owned()))
        }
        _ => Err(invalid("no key")),
    }
}

/// Opens the copy source and checks its `x-amz-copy-source-if-*` conditions.
async fn open_source<B: S3Backend>(backend: &B, head: &RequestHead) -> S3Result<B::Reader> {
    let (bucket, key) = copy_source(head)?;
    let reader = backend.get_object(&bucket, &key).await?;
    check_copy_source_conditions(head.headers(), reader.info())?;
    Ok(reader)
}

pub(super) async fn copy_object<B: S3Backend>(
    backend: &B,
    creds: &dyn CredentialProvider,
    head: &RequestHead,
    access: &RequestAccess,
) -> S3Result<Response<ResponseBody>> {
    let (bucket, key) = (head.bucket()?, head.key()?);
    let reader = open_source(backend, head).await?;
    let source: ObjectInfo = reader.info().clone();
    let replace = match head.header("x-amz-metadata-directive") {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(_) => {
            return Err(S3Error::new(
                S3ErrorCode::InvalidArgument,
                "Unknown metadata directive.",
            ))
        }
    };
    let same_object = copy_source(head)? == (bucket.to_owned(), key.to_owned());
    if same_object && !replace {
        return Err(S3Error::new(
            S3ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself \
             without changing the object's metadata, storage class, website redirect location \
             or encryption attributes.",
        ));
    }
    let mut attrs = if replace {
        attrs_from_headers(head.headers())?
    } else {
        source.attrs.clone()
    };
    // A copy is a new object of the caller's: the source's ACL is not copied (as in AWS).
    attrs.acl = Some(new_object_acl(creds, head.headers(), access)?);
    let stream = reader.into_stream(0..source.size);
    let mut body = ObjectBody::from_stream(stream, Some(source.size));
    let info = backend.put_object(bucket, key, attrs, &mut body).await?;
    let mut response = xml_response(
        CopyObjectResult {
            last_modified: info.last_modified,
            etag: info.etag.clone(),
        }
        .to_xml(),
    )?;
    write_etag_and_checksum(response.headers_mut(), &info);
    Ok(response)
}

pub(super) async fn upload_part_copy<B: S3Backend>(
    backend: &B,
    head: &RequestHead,
) -> S3Result<Response<ResponseBody>> {
    let (bucket, key) = (head.bucket()?, head.key()?);
    let (upload_id, part_number) = super::multipart::part_target(head)?;
    let reader = open_source(backend, head).await?;
    let size = reader.info().size;
    let range = match head.header("x-amz-copy-source-range") {
        Some(value) => parse_copy_source_range(value, size)?,
        None => 0..size,
    };
    let len = range.end - range.start;
    let stream = reader.into_stream(range);
    let mut body = ObjectBody::from_stream(stream, Some(len));
    let part = backend
        .upload_part(bucket, key, &upload_id, part_number, &mut body)
        .await?;
    xml_response(
        CopyPartResult {
            last_modified: part.last_modified,
            etag: part.etag,
        }
        .to_xml(),
    )
}
