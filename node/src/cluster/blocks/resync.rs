//! Block resync: fetch the blocks this node should hold but does not.
//!
//! Handoff and read repair restore a block on an owner only while someone remembers that
//! it is missing: the handoff holder (whose record dies with its disk) or a reader (who may
//! never come). The block-reference table does not forget: its entries live on the block's
//! own owners (placed by the block's hash), and anti-entropy keeps them complete on every
//! owner. So each node walks its own copy of the table, and every block that is still
//! referenced, is owned by this node under the current ring, and has no local file is
//! queued and fetched from another replica. Together with anti-entropy this bounds how long
//! a lost replica stays lost, whatever happened to hints and handoffs.
//!
//! Only a stat is done per referenced block; re-hashing file contents is the scrub's job.
//! Fetches run one at a time so a node catching up after a disk replacement does not swamp
//! its peers or its own disk; the next pass retries whatever failed.

use std::sync::Arc;

use super::refs::BlockRefTable;
use super::service::BlockService;
use super::{BlockError, BlockHash};

/// Reference entries read from the local table per page.
const SCAN_PAGE: usize = 1_000;
/// Per-block errors kept in a report (the counts are always complete).
const MAX_REPORTED_ERRORS: usize = 10;

/// What one resync pass found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResyncReport {
    /// Reference entries of this node's copy of the table that were examined.
    pub scanned: u64,
    /// Referenced blocks this node owns under the current ring.
    pub owned: u64,
    /// Of those, blocks without a local file (the resync queue).
    pub missing: u64,
    /// Missing blocks fetched from another replica and stored.
    pub fetched: u64,
    /// Missing blocks no replica could supply this time (retried next pass).
    pub failed: u64,
    /// The first few failures, as `hash: reason`.
    pub errors: Vec<String>,
}

impl BlockService {
    /// Walks this node's copy of the block-reference table, queues every referenced block
    /// this node owns but has no file for, and fetches the queue from other replicas. Fails
    /// only if the local table or block directory cannot be read; per-block failures are
    /// counted in the report.
    pub async fn resync_missing(
        self: &Arc<Self>,
        refs: &BlockRefTable,
    ) -> Result<ResyncReport, BlockError> {
        let local_id = self.liveness().local_id();
        let mut report = ResyncReport::default();
        let mut queue: Vec<BlockHash> = Vec::new();
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            let page = refs.table().local_scan(cursor.as_deref(), SCAN_PAGE)?;
            let Some((last_key, _)) = page.last() else {
                break;
            };
            cursor = Some(last_key.clone());
            for (_, entry) in page {
                report.scanned += 1;
                if !entry.is_referenced() || !self.replicas_of(&entry.hash).contains(&local_id) {
                    continue;
                }
                report.owned += 1;
                let hash = entry.hash;
                if self
                    .blocking(move |local| local.modified(&hash))
                    .await?
                    .is_none()
                {
                    queue.push(hash);
                }
            }
        }
        report.missing = queue.len() as u64;
        for hash in queue {
            match self.refetch(hash).await {
                Ok(()) => report.fetched += 1,
                Err(err) => {
                    report.failed += 1;
                    if report.errors.len() < MAX_REPORTED_ERRORS {
                        report.errors.push(format!("{}: {err}", hex::encode(hash)));
                    }
                }
            }
        }
        if report.missing > 0 {
            tracing::info!(
                missing = report.missing,
                fetched = report.fetched,
                failed = report.failed,
                "block resync restored missing replicas"
            );
        }
        Ok(report)
    }
}
