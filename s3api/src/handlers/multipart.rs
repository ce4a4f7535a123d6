//! Multipart uploads: create, upload part, complete, abort, list parts, list uploads.

use http::{Response, StatusCode};

use super::bucket::owner;
use super::object::check_declared_length;
use super::{
    attrs_from_headers, empty_response, new_object_acl, read_small_body, xml_response, RequestHead,
};
use crate::auth::CredentialProvider;
use crate::backend::{ChecksumAlgorithm, S3Backend, UploadsQuery};
use crate::body::RequestBody;
use crate::enforce::RequestAccess;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::service::ResponseBody;
use crate::xml::{
    self, url_encode_key, CompleteMultipartUploadResult, InitiateMultipartUploadResult,
    ListMultipartUploadsResult, ListPartsResult,
};

/// S3 allows part numbers 1 to 10,000.
const MAX_PART_NUMBER: u32 = 10_000;
/// Default and largest page of ListParts and ListMultipartUploads.
const MAX_PAGE: usize = 1000;

fn upload_id(head: &RequestHead) -> S3Result<String> {
    head.query
        .get("uploadId")
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| S3ErrorCode::NoSuchUpload.into())
}

/// The upload id and part number of UploadPart / UploadPartCopy.
pub(super) fn part_target(head: &RequestHead) -> S3Result<(String, u32)> {
    let number = head.query_number::<u32>("partNumber")?.unwrap_or(0);
    if !(1..=MAX_PART_NUMBER).contains(&number) {
        return Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive",
        )
        .with_detail("ArgumentName", "partNumber"));
    }
    Ok((upload_id(head)?, number))
}

/// A page size parameter: default 1000, capped at 1000.
fn page_size(head: &RequestHead, name: &str) -> S3Result<usize> {
    Ok(head
        .query_number::<usize>(name)?
        .map_or(MAX_PAGE, |n| n.min(MAX_PAGE)))
}

pub(super) async fn create<B: S3Backend>(
    backend: &B,
    creds: &dyn CredentialProvider,
    head: &RequestHead,
    access: &RequestAccess,
) -> S3Result<Response<ResponseBody>> {
    let (bucket, key) = (head.bucket()?, head.key()?);
    let mut attrs = attrs_from_headers(head.headers())?;
    // Stored with the upload, applied to the object the upload completes into.
    attrs.acl = Some(new_object_acl(creds, head.headers(), access)?);
    let checksum = match head.header("x-amz-checksum-algorithm") {
        None => None,
        Some(name) => Some(ChecksumAlgorithm::parse(name).ok_or_else(|| {
            S3Error::new(
                S3ErrorCode::InvalidRequest,
                "Checksum algorithm provided is unsupported.",
            )
        })?),
    };
    let upload_id = backend
        .create_multipart_upload(bucket, key, attrs, checksum)
        .await?;
    xml_response(
        InitiateMultipartUploadResult {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id,
        }
        .to_xml(),
    )
}

pub(super) async fn upload_part<B, RB>(
    backend: &B,
    head: &RequestHead,
    body: RB,
) -> S3Result<Response<ResponseBody>>
where
    B: S3Backend,
    RB: RequestBody,
{
    let (bucket, key) = (head.bucket()?, head.key()?);
    let (upload_id, part_number) = part_target(head)?;
    check_declared_length(head)?;
    let mut body = head.object_body(body)?;
    let part = backend
        .upload_part(bucket, key, &upload_id, part_number, &mut body)
        .await?;
    let mut response = empty_response(StatusCode::OK)?;
    super::set_header(
        response.headers_mut(),
        "etag",
        &format!("\"{}\"", part.etag),
    );
    if let Some((algorithm, value)) = body.checksum() {
        let name = format!("x-amz-checksum-{}", algorithm.as_str().to_ascii_lowercase());
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::try_from(name),
            http::HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    Ok(response)
}

pub(super) async fn complete<B, RB>(
    backend: &B,
    head: &RequestHead,
    body: RB,
) -> S3Result<Response<ResponseBody>>
where
    B: S3Backend,
    RB: RequestBody,
{
    let (bucket, key) = (head.bucket()?, head.key()?);
    let upload_id = upload_id(head)?;
    let document = read_small_body(head, body).await?;
    let parts = xml::parse_complete_multipart_upload(&document)?;
    let info = backend
        .complete_multipart_upload(bucket, key, &upload_id, &parts)
        .await?;
    let host = head.host.as_deref().unwrap_or("localhost");
    xml_response(
        CompleteMultipartUploadResult {
            location: format!("http://{host}/{bucket}/{}", url_encode_key(key)),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            etag: info.etag,
        }
        .to_xml(),
    )
}

pub(super) async fn abort<B: S3Backend>(
    backend: &B,
    head: &RequestHead,
) -> S3Result<Response<ResponseBody>> {
    let upload_id = upload_id(head)?;
    backend
        .abort_multipart_upload(head.bucket()?, head.key()?, &upload_id)
        .await?;
    empty_response(StatusCode::NO_CONTENT)
}

pub(super) async fn list_parts<B: S3Backend>(
    backend: &B,
    access: &RequestAccess,
    head: &RequestHead,
) -> S3Result<Response<ResponseBody>> {
    let (bucket, key) = (head.bucket()?, head.key()?);
    let upload_id = upload_id(head)?;
    let marker = head.query_number::<u32>("part-number-marker")?.unwrap_or(0);
    let max_parts = page_size(head, "max-parts")?;
    let page = backend
        .list_parts(bucket, key, &upload_id, marker, max_parts)
        .await?;
    xml_response(
        ListPartsResult {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id,
            part_number_marker: marker,
            next_part_number_marker: page.next_part_number_marker,
            max_parts,
            is_truncated: page.is_truncated,
            parts: page.parts,
            owner: owner(access),
        }
        .to_xml(),
    )
}

pub(super) async fn list_uploads<B: S3Backend>(
    backend: &B,
    access: &RequestAccess,
    head: &RequestHead,
) -> S3Result<Response<ResponseBody>> {
    let bucket = head.bucket()?;
    let url_encoded = head.query.get("encoding-type") == Some("url");
    let encode = |s: &str| {
        if url_encoded {
            url_encode_key(s)
        } else {
            s.to_owned()
        }
    };
    let query = UploadsQuery {
        prefix: head.query.get("prefix").unwrap_or_default().to_owned(),
        delimiter: head
            .query
            .get("delimiter")
            .filter(|d| !d.is_empty())
            .map(str::to_owned),
        key_marker: head.query.get("key-marker").map(str::to_owned),
        upload_id_marker: head.query.get("upload-id-marker").map(str::to_owned),
        max_uploads: page_size(head, "max-uploads")?,
    };
    let mut page = backend.list_multipart_uploads(bucket, &query).await?;
    for upload in &mut page.uploads {
        upload.key = encode(&upload.key);
    }
    xml_response(
        ListMultipartUploadsResult {
            bucket: bucket.to_owned(),
            key_marker: encode(query.key_marker.as_deref().unwrap_or_default()),
            upload_id_marker: query.upload_id_marker.clone().unwrap_or_default(),
            next_key_marker: page.next_key_marker.as_deref().map(encode),
            next_upload_id_marker: page.next_upload_id_marker,
            prefix: encode(&query.prefix),
            delimiter: query.delimiter.as_deref().map(encode),
            max_uploads: query.max_uploads,
            is_truncated: page.is_truncated,
            uploads: page.uploads,
            common_prefixes: page.common_prefixes.iter().map(|p| encode(p)).collect(),
            url_encoded,
            owner: owner(access),
        }
        .to_xml(),
    )
}
