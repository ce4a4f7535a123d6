//! Listings over hash-partitioned tables: every node is asked for its own entries of the
//! bucket in key order ([`TableRequest::ListLocal`]), the answers are merged by key keeping
//! the newest version (the register merge), and the S3 grouping rules are applied exactly as
//! the single-node store applies them (`store::listing`).
//!
//! A key lives on N nodes, so the listing tolerates up to N − W nodes that are down or fail
//! to answer: every acknowledged write is on W replicas, so at least one of them answers.

use std::collections::VecDeque;

use futures_util::future::join_all;
use ring::NodeId;
use s3api::backend::{ListPage, ListQuery, ObjectSummary, UploadInfo, UploadsPage, UploadsQuery};
use s3api::{S3Error, S3Result};

use super::schemas::{bucket_scoped_key, ObjectEntry, UploadEntry, UploadsSchema};
use super::schemas::{BucketEntry, BucketsSchema, ObjectsSchema};
use super::{unavailable, Inner};
use crate::cluster::{Crdt, TableRequest, TableResponse, TableSchema};
use crate::rpc::Payload;
use crate::store::codec::{self, Record};
use crate::store::records::datetime_from_millis;

/// Entries asked of one node per request.
const MAX_BATCH: usize = 1000;

/// Keys are UTF-8, which never contains this byte: `prefix + SKIP_ALL` sorts after every key
/// that starts with `prefix` and before every other key greater than `prefix`.
const SKIP_ALL: u8 = 0xFF;

/// The common prefix `key` rolls up into: `prefix` plus the text up to and including the
/// first `delimiter` after it.
fn common_prefix<'k>(key: &'k str, prefix: &str, delimiter: &str) -> Option<&'k str> {
    let rest = key.strip_prefix(prefix)?;
    let at = rest.find(delimiter)?;
    Some(&key[..prefix.len() + at + delimiter.len()])
}

/// The encoded key just after every key of `base` starting with `prefix`.
fn past(base: &[u8], prefix: &str) -> Vec<u8> {
    let mut out = base.to_vec();
    out.extend_from_slice(prefix.as_bytes());
    out.push(SKIP_ALL);
    out
}

fn concat(base: &[u8], tail: &str) -> Vec<u8> {
    let mut out = base.to_vec();
    out.extend_from_slice(tail.as_bytes());
    out
}

/// One node's position in a merged scan.
struct NodeCursor {
    node: NodeId,
    buffered: VecDeque<(Vec<u8>, Vec<u8>)>,
    /// The largest key asked past (exclusive start of the next request).
    after: Option<Vec<u8>>,
    exhausted: bool,
}

/// A scan of one table's entries under a key prefix across every node, in key order.
struct MergedScan<'a> {
    inner: &'a Inner,
    table: &'static str,
    prefix: Vec<u8>,
    batch: usize,
    cursors: Vec<NodeCursor>,
    /// Nodes down or failed so far, with why.
    failures: Vec<String>,
}

impl<'a> MergedScan<'a> {
    /// A scan of `table` under `prefix` strictly after `after`, asking `batch` entries at a
    /// time of every node of the ring that is up.
    fn new(
        inner: &'a Inner,
        table: &'static str,
        prefix: Vec<u8>,
        after: Option<Vec<u8>>,
        batch: usize,
    ) -> S3Result<MergedScan<'a>> {
        let liveness = inner.system.liveness();
        let mut scan = MergedScan {
            inner,
            table,
            prefix,
            batch: batch.clamp(1, MAX_BATCH),
            cursors: Vec::new(),
            failures: Vec::new(),
        };
        for node in liveness.ring().nodes() {
            if liveness.is_up(node) {
                scan.cursors.push(NodeCursor {
                    node: node.clone(),
                    buffered: VecDeque::new(),
                    after: after.clone(),
                    exhausted: false,
                });
            } else {
                scan.failures.push(format!("{node}: marked down"));
            }
        }
        scan.check_coverage()?;
        Ok(scan)
    }

    /// Fails once so many nodes are missing that some acknowledged write may be unseen.
    fn check_coverage(&self) -> S3Result<()> {
        let tolerated = self
            .inner
            .replicas
            .saturating_sub(self.inner.write_quorum)
            .min((self.cursors.len() + self.failures.len()).saturating_sub(1));
        if self.failures.len() > tolerated {
            return Err(unavailable(
                "listing needs more nodes than are reachable",
                self.failures.join("; "),
            ));
        }
        Ok(())
    }

    /// Refills every cursor whose buffer ran empty, concurrently.
    async fn refill(&mut self) -> S3Result<()> {
        let wanted: Vec<usize> = (0..self.cursors.len())
            .filter(|&i| self.cursors[i].buffered.is_empty() && !self.cursors[i].exhausted)
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let calls = wanted.iter().map(|&i| {
            let cursor = &self.cursors[i];
            let request = TableRequest::ListLocal {
                table: self.table.to_owned(),
                prefix: Payload::new(self.prefix.clone()),
                start_after: cursor.after.clone().map(Payload::new),
                limit: self.batch as u32,
            };
            self.inner.system.call(&cursor.node, request)
        });
        let answers = join_all(calls).await;
        let mut failed = Vec::new();
        for (&i, answer) in wanted.iter().zip(answers) {
            let cursor = &mut self.cursors[i];
            match answer {
                Ok(TableResponse::Entries(entries)) => {
                    cursor.exhausted = entries.len() < self.batch;
                    cursor.buffered.extend(
                        entries
                            .into_iter()
                            .map(|(key, entry)| (key.into_vec(), entry.into_vec())),
                    );
                    if let Some((last, _)) = cursor.buffered.back() {
                        cursor.after = Some(last.clone());
                    }
                }
                Ok(other) => failed.push((i, format!("unexpected answer {other:?}"))),
                Err(reason) => failed.push((i, reason)),
            }
        }
        for (i, reason) in failed.into_iter().rev() {
            let cursor = self.cursors.remove(i);
            self.failures.push(format!("{}: {reason}", cursor.node));
        }
        self.check_coverage()
    }

    /// The next key and every node's encoded entry for it; `None` at the end.
    async fn next(&mut self) -> S3Result<Option<(Vec<u8>, Vec<Vec<u8>>)>> {
        self.refill().await?;
        let Some(smallest) = self
            .cursors
            .iter()
            .filter_map(|cursor| cursor.buffered.front().map(|(key, _)| key))
            .min()
            .cloned()
        else {
            return Ok(None);
        };
        let mut copies = Vec::new();
        for cursor in &mut self.cursors {
            if cursor
                .buffered
                .front()
                .is_some_and(|(key, _)| *key == smallest)
            {
                if let Some((_, entry)) = cursor.buffered.pop_front() {
                    copies.push(entry);
                }
            }
        }
        Ok(Some((smallest, copies)))
    }

    /// Continues strictly after `after`, skipping everything up to it.
    fn skip_to(&mut self, after: Vec<u8>) {
        for cursor in &mut self.cursors {
            while cursor
                .buffered
                .front()
                .is_some_and(|(key, _)| *key <= after)
            {
                cursor.buffered.pop_front();
            }
            if cursor.buffered.is_empty()
                && !cursor.exhausted
                && cursor.after.as_ref().is_none_or(|asked| *asked < after)
            {
                cursor.after = Some(after.clone());
            }
        }
    }
}

/// The merge of every node's copy of one entry.
fn merge_copies<E: Crdt + Record>(copies: &[Vec<u8>]) -> S3Result<Option<E>> {
    let mut merged: Option<E> = None;
    for bytes in copies {
        let entry: E = codec::decode(bytes).map_err(S3Error::internal)?;
        match merged.as_mut() {
            Some(current) => current.merge(&entry),
            None => merged = Some(entry),
        }
    }
    Ok(merged)
}

impl Inner {
    /// Every bucket in this node's full copy of the buckets table.
    pub(super) fn local_buckets(&self) -> S3Result<Vec<BucketEntry>> {
        let mut entries = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let batch = self
                .system
                .local()
                .scan_prefix(BucketsSchema::TABLE_NAME, &[], after.as_deref(), MAX_BATCH)
                .map_err(|err| unavailable("reading the bucket table", err))?;
            let done = batch.len() < MAX_BATCH;
            for (key, bytes) in batch {
                entries.push(codec::decode(&bytes).map_err(S3Error::internal)?);
                after = Some(key);
            }
            if done {
                return Ok(entries);
            }
        }
    }

    /// One page of a bucket's live objects and common prefixes.
    pub(super) async fn list_objects(&self, bucket: &str, query: &ListQuery) -> S3Result<ListPage> {
        self.require_bucket(bucket).await?;
        let mut page = ListPage::default();
        if query.max_keys == 0 {
            return Ok(page);
        }
        let base = bucket_scoped_key(bucket, "");
        let delimiter = query.delimiter.as_deref().filter(|d| !d.is_empty());
        let after = query.start_after.as_deref().map(|after| {
            // A marker inside a common prefix means that whole prefix was already returned.
            match delimiter.and_then(|d| common_prefix(after, &query.prefix, d)) {
                Some(rolled_up) => past(&base, rolled_up),
                None => concat(&base, after),
            }
        });
        let mut scan = MergedScan::new(
            self,
            ObjectsSchema::TABLE_NAME,
            concat(&base, &query.prefix),
            after,
            query.max_keys + 1,
        )?;
        let mut last_emitted: Option<String> = None;
        while let Some((_, copies)) = scan.next().await? {
            let Some(entry) = merge_copies::<ObjectEntry>(&copies)? else {
                continue;
            };
            let Some(live) = entry.version.value else {
                continue;
            };
            if page.objects.len() + page.common_prefixes.len() == query.max_keys {
                page.is_truncated = true;
                break;
            }
            if let Some(rolled_up) =
                delimiter.and_then(|d| common_prefix(&entry.key, &query.prefix, d))
            {
                page.common_prefixes.push(rolled_up.to_owned());
                last_emitted = Some(rolled_up.to_owned());
                scan.skip_to(past(&base, rolled_up));
                continue;
            }
            page.objects.push(ObjectSummary {
                key: entry.key.clone(),
                size: live.size,
                etag: live.etag,
                last_modified: datetime_from_millis(live.last_modified_ms),
            });
            last_emitted = Some(entry.key);
        }
        if page.is_truncated {
            page.next_marker = last_emitted;
        }
        Ok(page)
    }

    /// One page of a bucket's uploads in progress: by key, then by upload id.
    pub(super) async fn list_uploads(
        &self,
        bucket: &str,
        query: &UploadsQuery,
    ) -> S3Result<UploadsPage> {
        self.require_bucket(bucket).await?;
        let mut page = UploadsPage::default();
        if query.max_uploads == 0 {
            return Ok(page);
        }
        let base = bucket_scoped_key(bucket, "");
        let delimiter = query.delimiter.as_deref().filter(|d| !d.is_empty());
        let after = query
            .key_marker
            .as_deref()
            .filter(|m| !m.is_empty())
            .map(|marker| {
                let upload_marker = query.upload_id_marker.as_deref().filter(|m| !m.is_empty());
                match delimiter.and_then(|d| common_prefix(marker, &query.prefix, d)) {
                    Some(rolled_up) => past(&base, rolled_up),
                    None => match upload_marker {
                        Some(id) => UploadsSchema::encode_key(&(
                            bucket.to_owned(),
                            marker.to_owned(),
                            id.to_owned(),
                        )),
                        // Only keys after the marker: skip all of its uploads.
                        None => past(&base, &format!("{marker}\0")),
                    },
                }
            });
        let mut scan = MergedScan::new(
            self,
            UploadsSchema::TABLE_NAME,
            concat(&base, &query.prefix),
            after,
            query.max_uploads + 1,
        )?;
        let mut last_emitted: Option<(String, Option<String>)> = None;
        while let Some((_, copies)) = scan.next().await? {
            let Some(entry) = merge_copies::<UploadEntry>(&copies)? else {
                continue;
            };
            let Some(upload) = entry.upload.value else {
                continue;
            };
            if page.uploads.len() + page.common_prefixes.len() == query.max_uploads {
                page.is_truncated = true;
                break;
            }
            if let Some(rolled_up) =
                delimiter.and_then(|d| common_prefix(&entry.key, &query.prefix, d))
            {
                page.common_prefixes.push(rolled_up.to_owned());
                last_emitted = Some((rolled_up.to_owned(), None));
                scan.skip_to(past(&base, rolled_up));
                continue;
            }
            page.uploads.push(UploadInfo {
                key: entry.key.clone(),
                upload_id: entry.upload_id.clone(),
                initiated: datetime_from_millis(upload.initiated_ms),
            });
            last_emitted = Some((entry.key, Some(entry.upload_id)));
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
    fn skipping_a_prefix_passes_exactly_its_keys() {
        let base = bucket_scoped_key("b", "");
        let skip = past(&base, "a/");
        assert!(concat(&base, "a/zzz\u{10FFFF}") < skip);
        assert!(concat(&base, "a/") < skip);
        assert!(concat(&base, "a0") > skip);
        assert!(concat(&base, "b") > skip);
        assert_eq!(common_prefix("a/b/c", "a/", "/"), Some("a/b/"));
    }
}
