//! ListObjects and ListMultipartUploads over ordered range scans.
//!
//! Both walk one bucket's key range from the right starting point. With a delimiter, a key
//! that contains it after the prefix rolls up into a common prefix; once that prefix is
//! emitted the scan jumps past every key that shares it (a new range scan starting at the
//! prefix's successor) instead of reading them, so a directory of a million files costs one
//! seek. Listings read only the head of each object record (size, ETag, date), never bodies.

use std::ops::Bound;

use s3api::backend::{ListPage, ListQuery, ObjectSummary, UploadInfo, UploadsPage, UploadsQuery};

use super::codec::{decode, decode_head};
use super::error::StoreError;
use super::keys::{bucket_prefix, split_upload_key};
use super::kv::{prefix_end, Table};
use super::records::{datetime_from_millis, HeadState, ObjectHead, ObjectRecord, UploadRecord};
use super::Inner;

/// The common prefix `key` rolls up into: `prefix` plus the text up to and including the first
/// `delimiter` after it.
fn common_prefix<'k>(key: &'k str, prefix: &str, delimiter: &str) -> Option<&'k str> {
    let rest = key.strip_prefix(prefix)?;
    let at = rest.find(delimiter)?;
    Some(&key[..prefix.len() + at + delimiter.len()])
}

fn concat(base: &[u8], tail: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(base.len() + tail.len());
    out.extend_from_slice(base);
    out.extend_from_slice(tail.as_bytes());
    out
}

/// Where a scan that must skip every key starting with `prefix` resumes; `None`: nowhere.
fn past_prefix(base: &[u8], prefix: &str) -> Option<Bound<Vec<u8>>> {
    prefix_end(&concat(base, prefix)).map(Bound::Included)
}

fn bound_key(bound: &Bound<Vec<u8>>) -> &[u8] {
    match bound {
        Bound::Included(key) | Bound::Excluded(key) => key,
        Bound::Unbounded => &[],
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, StoreError> {
    std::str::from_utf8(bytes).map_err(|_| StoreError::Corrupt("stored key is not UTF-8".into()))
}

impl Inner {
    /// One page of a bucket's live objects and common prefixes.
    pub(super) fn list_objects(
        &self,
        bucket: &str,
        query: &ListQuery,
    ) -> Result<ListPage, StoreError> {
        self.require_bucket(bucket)?;
        let mut page = ListPage::default();
        if query.max_keys == 0 {
            return Ok(page);
        }
        let base = bucket_prefix(bucket);
        let full_prefix = concat(&base, &query.prefix);
        let delimiter = query.delimiter.as_deref().filter(|d| !d.is_empty());
        let mut cursor = Some(Bound::Included(full_prefix.clone()));
        if let Some(after) = query.start_after.as_deref() {
            // A marker inside a common prefix means that whole prefix was already returned.
            let resume = match delimiter.and_then(|d| common_prefix(after, &query.prefix, d)) {
                Some(rolled_up) => past_prefix(&base, rolled_up),
                None => Some(Bound::Excluded(concat(&base, after))),
            };
            if resume
                .as_ref()
                .is_none_or(|resume| bound_key(resume) >= full_prefix.as_slice())
            {
                cursor = resume;
            }
        }
        let mut last_emitted: Option<String> = None;
        'scan: while let Some(start) = cursor.take() {
            for item in self.kv.scan_from(Table::Objects, start) {
                let (storage_key, value) = item?;
                if !storage_key.starts_with(&full_prefix) {
                    break 'scan;
                }
                let head: ObjectHead = decode_head::<ObjectRecord, _>(&value)?;
                let HeadState::Live(live) = head.state else {
                    continue;
                };
                let key = utf8(&storage_key[base.len()..])?;
                if page.objects.len() + page.common_prefixes.len() == query.max_keys {
                    page.is_truncated = true;
                    break 'scan;
                }
                if let Some(rolled_up) =
                    delimiter.and_then(|d| common_prefix(key, &query.prefix, d))
                {
                    page.common_prefixes.push(rolled_up.to_string());
                    last_emitted = Some(rolled_up.to_string());
                    cursor = past_prefix(&base, rolled_up);
                    continue 'scan;
                }
                page.objects.push(ObjectSummary {
                    key: key.to_string(),
                    size: live.size,
                    etag: live.etag,
                    last_modified: datetime_from_millis(live.last_modified_ms),
                });
                last_emitted = Some(key.to_string());
            }
        }
        if page.is_truncated {
            page.next_marker = last_emitted;
        }
        Ok(page)
    }

    /// One page of a bucket's uploads in progress: by key, then by initiation.
    pub(super) fn list_uploads(
        &self,
        bucket: &str,
        query: &UploadsQuery,
    ) -> Result<UploadsPage, StoreError> {
        self.require_bucket(bucket)?;
        let mut page = UploadsPage::default();
        if query.max_uploads == 0 {
            return Ok(page);
        }
        let base = bucket_prefix(bucket);
        let full_prefix = concat(&base, &query.prefix);
        let delimiter = query.delimiter.as_deref().filter(|d| !d.is_empty());
        let mut cursor = Some(Bound::Included(full_prefix.clone()));
        if let Some(marker) = query.key_marker.as_deref().filter(|m| !m.is_empty()) {
            let upload_marker = query.upload_id_marker.as_deref().filter(|m| !m.is_empty());
            let resume = match delimiter.and_then(|d| common_prefix(marker, &query.prefix, d)) {
                Some(rolled_up) => past_prefix(&base, rolled_up),
                None => match upload_marker {
                    Some(id) => Some(Bound::Excluded(concat(&base, &format!("{marker}\0{id}")))),
                    // Only keys after the marker: skip all of its uploads.
                    None => past_prefix(&base, &format!("{marker}\0")),
                },
            };
            if resume
                .as_ref()
                .is_none_or(|resume| bound_key(resume) >= full_prefix.as_slice())
            {
                cursor = resume;
            }
        }
        let mut last_emitted: Option<(String, Option<String>)> = None;
        'scan: while let Some(start) = cursor.take() {
            for item in self.kv.scan_from(Table::Uploads, start) {
                let (storage_key, value) = item?;
                if !storage_key.starts_with(&full_prefix) {
                    break 'scan;
                }
                let (key, upload_id) = split_upload_key(&storage_key[base.len()..])
                    .ok_or_else(|| StoreError::Corrupt("malformed upload key".into()))?;
                if page.uploads.len() + page.common_prefixes.len() == query.max_uploads {
                    page.is_truncated = true;
                    break 'scan;
                }
                if let Some(rolled_up) =
                    delimiter.and_then(|d| common_prefix(key, &query.prefix, d))
                {
                    page.common_prefixes.push(rolled_up.to_string());
                    last_emitted = Some((rolled_up.to_string(), None));
                    cursor = past_prefix(&base, rolled_up);
                    continue 'scan;
                }
                let record: UploadRecord = decode(&value)?;
                page.uploads.push(UploadInfo {
                    key: key.to_string(),
                    upload_id: upload_id.to_string(),
                    initiated: datetime_from_millis(record.initiated_ms),
                });
                last_emitted = Some((key.to_string(), Some(upload_id.to_string())));
            }
        }
        if page.is_truncated {
            if let Some((key, upload_id)) = last_emitted {
                page.next_key_marker = Some(key);
                page.next_upload_id_marker = upload_id;
            }
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefix_ends_at_the_first_delimiter_after_the_prefix() {
        assert_eq!(common_prefix("a/b/c", "", "/"), Some("a/"));
        assert_eq!(common_prefix("a/b/c", "a/", "/"), Some("a/b/"));
        assert_eq!(common_prefix("a//c", "a/", "/"), Some("a//"));
        assert_eq!(common_prefix("a/b", "a/b", "/"), None);
        assert_eq!(common_prefix("x/b", "a/", "/"), None);
        assert_eq!(common_prefix("été--x--y", "", "--"), Some("été--"));
    }
}
