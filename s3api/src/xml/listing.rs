//! Object listings: ListObjects (v1), ListObjectsV2 and ListObjectVersions.
//!
//! Every string here is written as given. With `encoding-type=url` the caller passes keys,
//! prefixes, markers, delimiter and start-after already encoded by
//! [`url_encode_key`](super::url_encode_key) and sets `url_encoded`; nothing is encoded twice.

use super::writer::XmlWriter;
use super::{Owner, STORAGE_CLASS_STANDARD};
use crate::backend::ObjectSummary;

/// The answer to ListObjects v1 (`GET /bucket`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListBucketResultV1 {
    /// The bucket name.
    pub name: String,
    /// The prefix asked for (empty when none).
    pub prefix: String,
    /// The marker asked for (empty when none).
    pub marker: String,
    /// Where the next page starts; AWS sends it only when a delimiter was given and the page is
    /// truncated (without a delimiter clients continue from the last key).
    pub next_marker: Option<String>,
    /// The page size asked for.
    pub max_keys: usize,
    /// The delimiter asked for, if any.
    pub delimiter: Option<String>,
    /// Whether more keys follow.
    pub is_truncated: bool,
    /// True when the strings are URL-encoded; writes `<EncodingType>url</EncodingType>`.
    pub url_encoded: bool,
    /// The objects of this page, in key order.
    pub contents: Vec<ObjectSummary>,
    /// The common prefixes of this page, in order.
    pub common_prefixes: Vec<String>,
    /// The owner written in each `<Contents>` (v1 always shows it).
    pub owner: Owner,
}

impl ListBucketResultV1 {
    /// The XML document, `<ListBucketResult>`.
    pub fn to_xml(&self) -> String {
        XmlWriter::document("ListBucketResult", |w| {
            w.text("Name", &self.name);
            w.text("Prefix", &self.prefix);
            w.text("Marker", &self.marker);
            w.optional_text("NextMarker", self.next_marker.as_deref());
            w.scalar("MaxKeys", self.max_keys);
            w.optional_text("Delimiter", self.delimiter.as_deref());
            w.scalar("IsTruncated", self.is_truncated);
            write_encoding_type(w, self.url_encoded);
            for object in &self.contents {
                write_contents(w, object, Some(&self.owner));
            }
            w.common_prefixes(&self.common_prefixes);
        })
    }
}

/// The answer to ListObjectsV2 (`GET /bucket?list-type=2`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListBucketResultV2 {
    /// The bucket name.
    pub name: String,
    /// The prefix asked for (empty when none).
    pub prefix: String,
    /// The continuation token the request carried, echoed back.
    pub continuation_token: Option<String>,
    /// The token for the next page, present when truncated.
    pub next_continuation_token: Option<String>,
    /// The page size asked for.
    pub max_keys: usize,
    /// The delimiter asked for, if any.
    pub delimiter: Option<String>,
    /// The start-after the request carried, echoed back.
    pub start_after: Option<String>,
    /// True when the strings are URL-encoded; writes `<EncodingType>url</EncodingType>`.
    pub url_encoded: bool,
    /// Whether more keys follow.
    pub is_truncated: bool,
    /// The objects of this page, in key order.
    pub contents: Vec<ObjectSummary>,
    /// The common prefixes of this page, in order.
    pub common_prefixes: Vec<String>,
    /// Written in each `<Contents>` only when the request said `fetch-owner=true`.
    pub owner: Option<Owner>,
}

impl ListBucketResultV2 {
    /// The XML document, `<ListBucketResult>`; `KeyCount` counts keys and common prefixes.
    pub fn to_xml(&self) -> String {
        XmlWriter::document("ListBucketResult", |w| {
            w.text("Name", &self.name);
            w.text("Prefix", &self.prefix);
            w.optional_text("ContinuationToken", self.continuation_token.as_deref());
            w.optional_text(
                "NextContinuationToken",
                self.next_continuation_token.as_deref(),
            );
            w.scalar("KeyCount", self.contents.len() + self.common_prefixes.len());
            w.scalar("MaxKeys", self.max_keys);
            w.optional_text("Delimiter", self.delimiter.as_deref());
            w.optional_text("StartAfter", self.start_after.as_deref());
            write_encoding_type(w, self.url_encoded);
            w.scalar("IsTruncated", self.is_truncated);
            for object in &self.contents {
                write_contents(w, object, self.owner.as_ref());
            }
            w.common_prefixes(&self.common_prefixes);
        })
    }
}

/// The answer to ListObjectVersions (`GET /bucket?versions`) for an unversioned bucket: every
/// object is its only version, with version id `null` and marked latest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListVersionsResult {
    /// The bucket name.
    pub name: String,
    /// The prefix asked for (empty when none).
    pub prefix: String,
    /// The key-marker asked for (empty when none).
    pub key_marker: String,
    /// The version-id-marker asked for (empty when none).
    pub version_id_marker: String,
    /// Where the next page starts, when truncated.
    pub next_key_marker: Option<String>,
    /// The version to start after in the next page, when truncated (`null` here).
    pub next_version_id_marker: Option<String>,
    /// The page size asked for.
    pub max_keys: usize,
    /// The delimiter asked for, if any.
    pub delimiter: Option<String>,
    /// Whether more versions follow.
    pub is_truncated: bool,
    /// True when the strings are URL-encoded; writes `<EncodingType>url</EncodingType>`.
    pub url_encoded: bool,
    /// The objects of this page, in key order, each written as a `<Version>`.
    pub versions: Vec<ObjectSummary>,
    /// The common prefixes of this page, in order.
    pub common_prefixes: Vec<String>,
    /// The owner written in each `<Version>`.
    pub owner: Owner,
}

impl ListVersionsResult {
    /// The XML document, `<ListVersionsResult>`.
    pub fn to_xml(&self) -> String {
        XmlWriter::document("ListVersionsResult", |w| {
            w.text("Name", &self.name);
            w.text("Prefix", &self.prefix);
            w.text("KeyMarker", &self.key_marker);
            w.text("VersionIdMarker", &self.version_id_marker);
            w.optional_text("NextKeyMarker", self.next_key_marker.as_deref());
            w.optional_text(
                "NextVersionIdMarker",
                self.next_version_id_marker.as_deref(),
            );
            w.scalar("MaxKeys", self.max_keys);
            w.optional_text("Delimiter", self.delimiter.as_deref());
            w.scalar("IsTruncated", self.is_truncated);
            write_encoding_type(w, self.url_encoded);
            for object in &self.versions {
                w.element("Version", |w| {
                    w.text("Key", &object.key);
                    w.text("VersionId", "null");
                    w.scalar("IsLatest", true);
                    w.timestamp("LastModified", object.last_modified);
                    w.etag("ETag", &object.etag);
                    w.scalar("Size", object.size);
                    w.text("StorageClass", STORAGE_CLASS_STANDARD);
                    w.owner("Owner", &self.owner);
                });
            }
            w.common_prefixes(&self.common_prefixes);
        })
    }
}

fn write_encoding_type(w: &mut XmlWriter, url_encoded: bool) {
    if url_encoded {
        w.text("EncodingType", "url");
    }
}

fn write_contents(w: &mut XmlWriter, object: &ObjectSummary, owner: Option<&Owner>) {
    w.element("Contents", |w| {
        w.text("Key", &object.key);
        w.timestamp("LastModified", object.last_modified);
        w.etag("ETag", &object.etag);
        w.scalar("Size", object.size);
        w.text("StorageClass", STORAGE_CLASS_STANDARD);
        if let Some(owner) = owner {
            w.owner("Owner", owner);
        }
    });
}

#[cfg(test)]
#[path = "listing_tests.rs"]
mod tests;
