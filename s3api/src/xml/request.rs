//! Parsers for the XML request bodies S3 clients send.
//!
//! Each accepts the body with or without the S3 namespace (and with namespace prefixes),
//! ignores elements it does not use (such as the `Checksum*` elements of a completed part)
//! and answers MalformedXML for anything it cannot read. Text is kept as sent: quick-xml's
//! deserializer does not trim element content, so keys with surrounding spaces survive.

use serde::Deserialize;

use crate::error::{S3Error, S3ErrorCode, S3Result};

/// The most objects one DeleteObjects request may name; AWS refuses more with MalformedXML.
pub const MAX_DELETE_OBJECTS: usize = 1000;

/// What a DeleteObjects body asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteRequest {
    /// In quiet mode only failures are reported back.
    pub quiet: bool,
    /// The keys to delete, in request order, exactly as sent (spaces kept).
    pub keys: Vec<String>,
}

/// The root of a CompleteMultipartUpload body; the variant name is the root element's name.
#[derive(Deserialize)]
enum CompleteMultipartUploadDocument {
    CompleteMultipartUpload(CompletedParts),
}

#[derive(Deserialize)]
struct CompletedParts {
    #[serde(rename = "Part", default)]
    parts: Vec<CompletedPart>,
}

/// One `<Part>`; numbers are read as text so surrounding whitespace is tolerated.
#[derive(Deserialize)]
struct CompletedPart {
    #[serde(rename = "PartNumber")]
    part_number: String,
    #[serde(rename = "ETag")]
    etag: String,
}

#[derive(Deserialize)]
enum DeleteDocument {
    Delete(DeleteBody),
}

#[derive(Deserialize)]
struct DeleteBody {
    #[serde(rename = "Quiet")]
    quiet: Option<String>,
    #[serde(rename = "Object", default)]
    objects: Vec<ObjectIdentifier>,
}

/// One `<Object>`; a `<VersionId>` is accepted and not used, as buckets are unversioned.
#[derive(Deserialize)]
struct ObjectIdentifier {
    #[serde(rename = "Key")]
    key: String,
}

#[derive(Deserialize)]
enum CreateBucketConfigurationDocument {
    CreateBucketConfiguration(CreateBucketConfiguration),
}

#[derive(Deserialize)]
struct CreateBucketConfiguration {
    #[serde(rename = "LocationConstraint")]
    location_constraint: Option<String>,
}

/// Reads a CompleteMultipartUpload body into `(part number, ETag)` pairs in request order.
/// ETags come back without quotes; whether the order is ascending is left to the caller
/// (InvalidPartOrder). MalformedXML when unreadable or when no part is listed.
pub fn parse_complete_multipart_upload(body: &[u8]) -> S3Result<Vec<(u32, String)>> {
    let CompleteMultipartUploadDocument::CompleteMultipartUpload(document) = deserialize(body)?;
    if document.parts.is_empty() {
        return Err(malformed_xml());
    }
    document
        .parts
        .into_iter()
        .map(|part| {
            let number = part
                .part_number
                .trim()
                .parse::<u32>()
                .map_err(|_| malformed_xml())?;
            Ok((number, strip_quotes(part.etag.trim()).to_string()))
        })
        .collect()
}

/// Reads a DeleteObjects body. MalformedXML when unreadable, when no object is named, when an
/// object has no `<Key>`, or when more than [`MAX_DELETE_OBJECTS`] are named.
pub fn parse_delete_objects(body: &[u8]) -> S3Result<DeleteRequest> {
    let DeleteDocument::Delete(document) = deserialize(body)?;
    let quiet = match document.quiet.as_deref().map(str::trim) {
        None => false,
        Some(quiet) if quiet.eq_ignore_ascii_case("true") => true,
        Some(quiet) if quiet.eq_ignore_ascii_case("false") => false,
        Some(_) => return Err(malformed_xml()),
    };
    let count = document.objects.len();
    if count == 0 || count > MAX_DELETE_OBJECTS {
        return Err(malformed_xml());
    }
    let keys = document
        .objects
        .into_iter()
        .map(|object| object.key)
        .collect();
    Ok(DeleteRequest { quiet, keys })
}

/// Reads the optional CreateBucket body: the region named by `<LocationConstraint>`, or `None`
/// for an empty body, a missing or an empty constraint.
pub fn parse_create_bucket_configuration(body: &[u8]) -> S3Result<Option<String>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let CreateBucketConfigurationDocument::CreateBucketConfiguration(configuration) =
        deserialize(body)?;
    Ok(configuration
        .location_constraint
        .map(|region| region.trim().to_string())
        .filter(|region| !region.is_empty()))
}

/// Deserializes a UTF-8 body; any failure is MalformedXML.
fn deserialize<T: serde::de::DeserializeOwned>(body: &[u8]) -> S3Result<T> {
    let text = std::str::from_utf8(body).map_err(|_| malformed_xml())?;
    quick_xml::de::from_str(text).map_err(|_| malformed_xml())
}

fn malformed_xml() -> S3Error {
    S3Error::from(S3ErrorCode::MalformedXML)
}

/// `"abc"` → `abc`; an ETag sent without quotes is kept as it is.
fn strip_quotes(etag: &str) -> &str {
    etag.strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(etag)
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
