//! Multipart upload documents: Create, Complete, ListParts and ListMultipartUploads.

use super::writer::XmlWriter;
use super::{Owner, STORAGE_CLASS_STANDARD};
use crate::backend::{PartInfo, UploadInfo};

/// The answer to CreateMultipartUpload (`POST /bucket/key?uploads`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitiateMultipartUploadResult {
    /// The bucket name.
    pub bucket: String,
    /// The object key.
    pub key: String,
    /// The new upload's id.
    pub upload_id: String,
}

impl InitiateMultipartUploadResult {
    /// The XML document, `<InitiateMultipartUploadResult>`.
    pub fn to_xml(&self) -> String {
        XmlWriter::document("InitiateMultipartUploadResult", |w| {
            w.text("Bucket", &self.bucket);
            w.text("Key", &self.key);
            w.text("UploadId", &self.upload_id);
        })
    }
}

/// The answer to CompleteMultipartUpload (`POST /bucket/key?uploadId=…`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompleteMultipartUploadResult {
    /// The URL of the new object (e.g. `http://host/bucket/key`).
    pub location: String,
    /// The bucket name.
    pub bucket: String,
    /// The object key.
    pub key: String,
    /// The object's ETag without quotes (`hex-N`); quoted when written.
    pub etag: String,
}

impl CompleteMultipartUploadResult {
    /// The XML document, `<CompleteMultipartUploadResult>`.
    pub fn to_xml(&self) -> String {
        XmlWriter::document("CompleteMultipartUploadResult", |w| {
            w.text("Location", &self.location);
            w.text("Bucket", &self.bucket);
            w.text("Key", &self.key);
            w.etag("ETag", &self.etag);
        })
    }
}

/// The answer to ListParts (`GET /bucket/key?uploadId=…`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPartsResult {
    /// The bucket name.
    pub bucket: String,
    /// The object key.
    pub key: String,
    /// The upload id.
    pub upload_id: String,
    /// The part-number-marker asked for (0 when none).
    pub part_number_marker: u32,
    /// The last part listed, where the next page starts after.
    pub next_part_number_marker: Option<u32>,
    /// The page size asked for.
    pub max_parts: usize,
    /// Whether more parts follow.
    pub is_truncated: bool,
    /// The parts of this page, ascending by number; ETags without quotes.
    pub parts: Vec<PartInfo>,
    /// Written as both `<Initiator>` and `<Owner>`.
    pub owner: Owner,
}

impl ListPartsResult {
    /// The XML document, `<ListPartsResult>`.
    pub fn to_xml(&self) -> String {
        XmlWriter::document("ListPartsResult", |w| {
            w.text("Bucket", &self.bucket);
            w.text("Key", &self.key);
            w.text("UploadId", &self.upload_id);
            w.scalar("PartNumberMarker", self.part_number_marker);
            if let Some(next) = self.next_part_number_marker {
                w.scalar("NextPartNumberMarker", next);
            }
            w.scalar("MaxParts", self.max_parts);
            w.scalar("IsTruncated", self.is_truncated);
            for part in &self.parts {
                w.element("Part", |w| {
                    w.scalar("PartNumber", part.part_number);
                    w.timestamp("LastModified", part.last_modified);
                    w.etag("ETag", &part.etag);
                    w.scalar("Size", part.size);
                });
            }
            w.owner("Initiator", &self.owner);
            w.owner("Owner", &self.owner);
            w.text("StorageClass", STORAGE_CLASS_STANDARD);
        })
    }
}

/// The answer to ListMultipartUploads (`GET /bucket?uploads`).
///
/// With `encoding-type=url` the caller passes keys, markers, prefix and delimiter already
/// encoded and sets `url_encoded`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListMultipartUploadsResult {
    /// The bucket name.
    pub bucket: String,
    /// The key-marker asked for (empty when none).
    pub key_marker: String,
    /// The upload-id-marker asked for (empty when none).
    pub upload_id_marker: String,
    /// Where the next page starts, when truncated.
    pub next_key_marker: Option<String>,
    /// The upload to start after in the next page, when truncated.
    pub next_upload_id_marker: Option<String>,
    /// The prefix asked for (empty when none).
    pub prefix: String,
    /// The delimiter asked for, if any.
    pub delimiter: Option<String>,
    /// The page size asked for.
    pub max_uploads: usize,
    /// Whether more uploads follow.
    pub is_truncated: bool,
    /// The uploads of this page, by key then initiation time.
    pub uploads: Vec<UploadInfo>,
    /// The common prefixes of this page, in order.
    pub common_prefixes: Vec<String>,
    /// True when the strings are URL-encoded; writes `<EncodingType>url</EncodingType>`.
    pub url_encoded: bool,
    /// Written as both `<Initiator>` and `<Owner>` of each upload.
    pub owner: Owner,
}

impl ListMultipartUploadsResult {
    /// The XML document, `<ListMultipartUploadsResult>`.
    pub fn to_xml(&self) -> String {
        XmlWriter::document("ListMultipartUploadsResult", |w| {
            w.text("Bucket", &self.bucket);
            w.text("KeyMarker", &self.key_marker);
            w.text("UploadIdMarker", &self.upload_id_marker);
            w.optional_text("NextKeyMarker", self.next_key_marker.as_deref());
            w.optional_text("NextUploadIdMarker", self.next_upload_id_marker.as_deref());
            w.text("Prefix", &self.prefix);
            w.optional_text("Delimiter", self.delimiter.as_deref());
            w.scalar("MaxUploads", self.max_uploads);
            w.scalar("IsTruncated", self.is_truncated);
            for upload in &self.uploads {
                w.element("Upload", |w| {
                    w.text("Key", &upload.key);
                    w.text("UploadId", &upload.upload_id);
                    w.owner("Initiator", &self.owner);
                    w.owner("Owner", &self.owner);
                    w.text("StorageClass", STORAGE_CLASS_STANDARD);
                    w.timestamp("Initiated", upload.initiated);
                });
            }
            w.common_prefixes(&self.common_prefixes);
            if self.url_encoded {
                w.text("EncodingType", "url");
            }
        })
    }
}

#[cfg(test)]
#[path = "multipart_tests.rs"]
mod tests;
