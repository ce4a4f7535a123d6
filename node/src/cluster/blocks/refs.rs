//! The block-reference table: which object versions use a block, replicated like any table
//! and placed by the block's hash (so a block's owners own its references), and the GC pass
//! that deletes blocks nothing references any more.
//!
//! An entry maps each referencing version id to a last-writer-wins register whose tombstone
//! means "removed". Merging is per element, so an add and a remove of different versions on
//! different nodes both survive, and a re-add after a remove wins by its newer stamp.
//!
//! GC runs on each owner over its own files: a block is deleted only when its entry exists,
//! every reference in it is removed, and both the last removal and the file's mtime are
//! older than the grace period. A block without any entry (its upload failed before
//! references were written) is deleted once its file is older than the grace period. The
//! node decides when to run [`BlockService::collect_garbage`] (for example hourly, beside
//! the local store's GC); running it on several owners at once is safe, since each deletes
//! only its own copy and they decide from the same quorum-read entry.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::service::BlockService;
use super::{block_position, BlockError, BlockHash};
use crate::cluster::crdt::{Crdt, Lww, Stamp};
use crate::cluster::error::TableError;
use crate::cluster::schema::{Replication, TableSchema};
use crate::cluster::system::TableSystem;
use crate::cluster::table::Table;
use crate::store::codec::Record;

/// The references to one block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRefs {
    /// The block.
    pub hash: BlockHash,
    /// Referencing version id → present (a value) or removed (a tombstone).
    pub refs: BTreeMap<String, Lww<()>>,
}

impl BlockRefs {
    /// Whether any version still references the block.
    pub fn is_referenced(&self) -> bool {
        self.refs.values().any(|register| !register.is_tombstone())
    }

    /// Wall-clock milliseconds of the newest change to any reference.
    pub fn last_change_millis(&self) -> u64 {
        self.refs
            .values()
            .map(|register| register.stamp.hlc >> HLC_COUNTER_BITS)
            .max()
            .unwrap_or(0)
    }
}

impl Crdt for BlockRefs {
    /// Per-element last-writer-wins: a join of the two maps.
    fn merge(&mut self, other: &Self) {
        for (version, register) in &other.refs {
            self.refs
                .entry(version.clone())
                .and_modify(|mine| mine.merge(register))
                .or_insert_with(|| register.clone());
        }
    }
}

impl Record for BlockRefs {
    const FORMAT_VERSION: u8 = 1;
    const NAME: &'static str = "block refs";
}

/// The schema of the block-reference table.
pub struct BlockRefsSchema;

impl TableSchema for BlockRefsSchema {
    const TABLE_NAME: &'static str = "block_refs";
    type Entry = BlockRefs;
    type Key = BlockHash;

    fn key_of(entry: &BlockRefs) -> BlockHash {
        entry.hash
    }

    fn encode_key(key: &BlockHash) -> Vec<u8> {
        key.to_vec()
    }

    /// The block's own ring position, so references live on the block's owners.
    fn hash_key(key: &BlockHash) -> u64 {
        block_position(key)
    }

    /// Every reference removed. An entry without any reference records no deletion and is
    /// kept.
    fn tombstoned_since(entry: &BlockRefs) -> Option<u64> {
        if entry.refs.is_empty() || entry.is_referenced() {
            return None;
        }
        entry
            .refs
            .values()
            .map(|register| register.stamp.wall_millis())
            .max()
    }
}

/// The hybrid-clock counter width used by [`crate::cluster::crdt::Stamp::hlc`] values.
const HLC_COUNTER_BITS: u32 = 16;

/// Last stamp time issued in this process: keeps stamps of one node strictly increasing
/// even when the wall clock steps back.
static LAST_HLC: AtomicU64 = AtomicU64::new(0);

fn next_hlc() -> u64 {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_millis() as u64)
        .unwrap_or(0)
        << HLC_COUNTER_BITS;
    let mut next = 0;
    // The closure always returns Some, so this cannot fail.
    let _ = LAST_HLC.fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
        next = wall.max(last.saturating_add(1));
        Some(next)
    });
    next
}

/// The coordinator's handle on the block-reference table. Cheap to clone.
#[derive(Clone)]
pub struct BlockRefTable {
    table: Table<BlockRefsSchema>,
    node: u64,
}

impl BlockRefTable {
    /// The table on `system`, replicated as `replication` (normally the same N as blocks).
    pub fn new(
        system: Arc<TableSystem>,
        replication: Replication,
    ) -> Result<BlockRefTable, TableError> {
        let node = ring::hash_key(system.liveness().local_id().as_str().as_bytes());
        Ok(BlockRefTable {
            table: Table::new(system, replication)?,
            node,
        })
    }

    /// Records that each of `versions` references block `hash`.
    pub async fn add_refs(&self, hash: BlockHash, versions: &[String]) -> Result<(), TableError> {
        self.write(hash, versions, true).await
    }

    /// Records that none of `versions` references block `hash` any more.
    pub async fn remove_refs(
        &self,
        hash: BlockHash,
        versions: &[String],
    ) -> Result<(), TableError> {
        self.write(hash, versions, false).await
    }

    /// The references to `hash` (quorum read), if any were ever written.
    pub async fn get(&self, hash: &BlockHash) -> Result<Option<BlockRefs>, TableError> {
        self.table.get(hash).await
    }

    /// The underlying replicated table (for anti-entropy and the debug view).
    pub fn table(&self) -> &Table<BlockRefsSchema> {
        &self.table
    }

    async fn write(
        &self,
        hash: BlockHash,
        versions: &[String],
        present: bool,
    ) -> Result<(), TableError> {
        let refs = versions
            .iter()
            .map(|version| {
                let stamp = Stamp::new(next_hlc(), self.node);
                let register = if present {
                    Lww::new(stamp, ())
                } else {
                    Lww::tombstone(stamp)
                };
                (version.clone(), register)
            })
            .collect();
        self.table.insert(&BlockRefs { hash, refs }).await
    }
}

/// What one block GC pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockGcReport {
    /// Local blocks this node owns that were considered.
    pub owned: u64,
    /// Blocks deleted.
    pub removed: u64,
    /// Blocks kept because a version references them.
    pub referenced: u64,
    /// Unreferenced blocks kept because their last change or file is younger than the grace.
    pub in_grace: u64,
    /// Blocks skipped because their references could not be read (kept).
    pub unreadable: u64,
}

impl BlockService {
    /// Deletes local copies of blocks this node owns that no version references any more
    /// (see the module doc for the rule). Blocks held for another node are left to the
    /// handoff worker.
    pub async fn collect_garbage(
        self: &Arc<Self>,
        refs: &BlockRefTable,
        grace: Duration,
    ) -> Result<BlockGcReport, BlockError> {
        let local_id = self.liveness().local_id();
        let hashes = self.blocking(|local| local.list()).await?;
        let held: std::collections::HashSet<BlockHash> = self
            .pending_handoffs()
            .await?
            .into_iter()
            .map(|(_, hash)| hash)
            .collect();
        let now = SystemTime::now();
        let grace_millis = grace.as_millis() as u64;
        let now_millis = now
            .duration_since(UNIX_EPOCH)
            .map(|since| since.as_millis() as u64)
            .unwrap_or(0);
        let mut report = BlockGcReport::default();
        for hash in hashes {
            if held.contains(&hash) || !self.replicas_of(&hash).contains(&local_id) {
                continue;
            }
            report.owned += 1;
            let entry = match refs.get(&hash).await {
                Ok(entry) => entry,
                Err(err) => {
                    tracing::debug!(block = %hex::encode(hash), error = %err, "block GC cannot read references");
                    report.unreadable += 1;
                    continue;
                }
            };
            if entry.as_ref().is_some_and(BlockRefs::is_referenced) {
                report.referenced += 1;
                continue;
            }
            let refs_old = entry.as_ref().is_none_or(|entry| {
                now_millis.saturating_sub(entry.last_change_millis()) >= grace_millis
            });
            if !refs_old {
                report.in_grace += 1;
                continue;
            }
            // The mtime check and the removal happen together: a put of the same block
            // bumps the mtime, and the later the check, the smaller the window for it.
            let removed = self
                .blocking(move |local| {
                    let file_old = local.modified(&hash)?.is_some_and(|modified| {
                        SystemTime::now()
                            .duration_since(modified)
                            .unwrap_or_default()
                            >= grace
                    });
                    if file_old {
                        local.remove(&hash)?;
                    }
                    Ok(file_old)
                })
                .await?;
            if !removed {
                report.in_grace += 1;
                continue;
            }
            report.removed += 1;
        }
        Ok(report)
    }
}
