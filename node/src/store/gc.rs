//! Garbage collection of block files, temp files and old tombstones (mark and sweep).
//!
//! Mark: the hashes referenced by every live object record and every stored part. Sweep: block
//! files not marked and not modified for `gc_grace` are deleted; so are temp files older than
//! the grace period, and tombstones whose deletion is older than it.
//!
//! The grace period is what makes this safe against concurrent writes: a PUT writes (or, for a
//! block that already exists, touches) its block files before it commits the record that
//! references them, so a block written or reused by an upload still in flight is always recent.
//! The remaining window — a block reused by a PUT between this sweep reading its mtime and
//! deleting it — needs a PUT whose body took longer than the grace period to start reusing a
//! long-unreferenced block; keep the grace far above request timeouts.
//!
//! [`super::StoreConfig::sweep_unreferenced_blocks`] turns the block sweep off: in cluster
//! mode the block directory also holds replicas other nodes' records reference, so this
//! node's records alone cannot say a block is garbage.
//!
//! A later milestone replaces the full mark phase with a block-reference table partitioned by
//! block hash (refcounts updated in the same transactions as the records), which the block
//! owners consult in the cluster; this whole-store scan is the single-node version of it.

use std::collections::HashSet;
use std::fs;
use std::ops::Bound;
use std::time::SystemTime;

use super::codec::decode;
use super::error::StoreError;
use super::kv::Table;
use super::records::{ObjectRecord, PartRecord};
use super::Inner;

/// What one garbage collection did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Distinct block hashes referenced by objects and parts.
    pub referenced_blocks: u64,
    /// Block files deleted.
    pub blocks_removed: u64,
    /// Unreferenced block files kept because they are younger than the grace period.
    pub blocks_in_grace: u64,
    /// Stale temp files deleted.
    pub temp_files_removed: u64,
    /// Tombstones dropped from the objects table.
    pub tombstones_purged: u64,
}

/// Runs one collection (blocking).
pub(super) fn collect(inner: &Inner) -> Result<GcReport, StoreError> {
    let mut report = GcReport::default();
    let now = SystemTime::now();
    let grace = inner.config.gc_grace;
    let is_old = |modified: SystemTime| now.duration_since(modified).is_ok_and(|age| age >= grace);

    let referenced = mark(inner, &mut report)?;
    report.referenced_blocks = referenced.len() as u64;

    // Without the sweep (cluster mode) the mark still purges tombstones and temp files go;
    // blocks are left to the cluster's block-reference GC.
    if inner.config.sweep_unreferenced_blocks {
        let mut doomed = Vec::new();
        inner.blocks.for_each_block(|file| {
            if referenced.contains(&file.hash) {
                return;
            }
            if is_old(file.modified) {
                doomed.push(file);
            } else {
                report.blocks_in_grace += 1;
            }
        })?;
        for file in &doomed {
            inner.blocks.remove_block(file)?;
            report.blocks_removed += 1;
        }
    }

    let temp_dir = inner.blocks.tmp_dir();
    let entries = fs::read_dir(temp_dir).map_err(|e| StoreError::io("listing temp files", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io("listing temp files", e))?;
        let modified = entry
            .metadata()
            .and_then(|m| m.modified())
            .map_err(|e| StoreError::io("reading temp file mtime", e))?;
        if is_old(modified) {
            match fs::remove_file(entry.path()) {
                Ok(()) => report.temp_files_removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("removing temp file", e)),
            }
        }
    }
    Ok(report)
}

/// Collects referenced block hashes and purges expired tombstones on the way.
fn mark(inner: &Inner, report: &mut GcReport) -> Result<HashSet<[u8; 32]>, StoreError> {
    let mut referenced = HashSet::new();
    let grace_millis = i64::try_from(inner.config.gc_grace.as_millis()).unwrap_or(i64::MAX);
    let now_millis = super::buckets::time_now_millis();
    // Parts before objects: CompleteMultipartUpload moves block references from parts to an
    // object, so scanning in this order sees every reference at least once.
    for item in inner.kv.scan_from(Table::Parts, Bound::Unbounded) {
        let (_, value) = item?;
        let part: PartRecord = decode(&value)?;
        referenced.extend(part.blocks.iter().map(|b| b.hash));
    }
    for item in inner.kv.scan_from(Table::Objects, Bound::Unbounded) {
        let (storage_key, value) = item?;
        let record: ObjectRecord = decode(&value)?;
        match record.live() {
            Some(live) => referenced.extend(live.body.blocks().iter().map(|b| b.hash)),
            None => {
                let expired = now_millis.saturating_sub(record.stamp.millis()) >= grace_millis;
                if expired && inner.purge_tombstone(&storage_key, record.stamp)? {
                    report.tombstones_purged += 1;
                }
            }
        }
    }
    Ok(referenced)
}
