//! Rebalancing after a layout change: moving entries and blocks to the nodes that gained
//! ranges, and dropping them from the nodes that lost them.
//!
//! # What is implemented (push from the old owners)
//!
//! Every node sees every layout version, so instead of new owners asking old owners to list
//! a range, each *old* holder of a moved range pushes what it holds there to the range's
//! gained nodes ([`ring::RangeMove::gained_by`], cut to the table's or blocks' N) with the
//! ordinary `Merge` (tables) and `Put` (blocks) requests. Both are answered only once the
//! receiver made the data durable: that answer is the "confirm" step. Since entries are
//! CRDTs and blocks are content-addressed, pushes from several old holders of one range are
//! idempotent merges. No new protocol variant was needed.
//!
//! A range is *synced* (on this node) once every entry and block this node held in it was
//! acknowledged by every gained node. Only then, and only if this node is no longer among
//! the range's new owners, does it delete its copies (a table entry only if it is still the
//! version that was pushed, so a late write is pushed again on the next pass instead of
//! lost). A failed push leaves the range unsynced and nothing dropped; the
//! [`RebalanceWorker`] retries until every range is synced or a newer layout arrives.
//!
//! # Reads during the move
//!
//! - Table reads ([`super::Table::get`]) ask the N new owners as usual; when their merged
//!   answer is "absent" and a previous ring is set ([`TableSystem::set_previous_ring`]),
//!   they also read the previous layout's owners of the key (plain reads, no read repair,
//!   so a dropped copy is not written back) and merge what those hold. The
//!   [`RebalanceWorker`] sets the previous ring when a new layout arrives and clears it a
//!   grace period after this node's pass completed. Old owners keep their copies until the
//!   gained owners confirmed theirs, so some node always answers.
//! - Block reads ([`super::blocks::BlockService::get_block`]) try the owners and then every
//!   other node of the current ring (handoff candidates); when none has the block and a
//!   previous ring is set, they also try the previous owners outside the current ring (a
//!   node being removed), verifying the hash, without repair.
//! - Both re-read the current owners once when the previous owners miss too: the key may
//!   have moved, and its old copies been dropped, between the two reads.
//!
//! Full-copy tables are not rebalanced here (anti-entropy brings a new member up to date).

mod fallback;
mod pass;
mod worker;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::blocks::BlockService;
use super::error::TableError;
use super::schema::TableSchema;
use super::system::TableSystem;
use crate::store::codec;

pub(crate) use self::fallback::{read_previous_block_owners, read_previous_owners};
pub use self::worker::RebalanceWorker;

/// Progress of this node's part of the latest rebalance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebalanceStatus {
    /// The layout version being rebalanced to (0 before any change was seen).
    pub layout_version: u64,
    /// Moved ranges this node held data of under the previous layout.
    pub ranges_total: u64,
    /// Of those, ranges whose data every gained owner confirmed.
    pub ranges_synced: u64,
    /// Table entries pushed to gained owners (and confirmed) so far.
    pub entries_moved: u64,
    /// Blocks pushed to gained owners (and confirmed) so far.
    pub blocks_moved: u64,
    /// Entries and blocks deleted here because this node no longer owns them.
    pub dropped: u64,
}

impl RebalanceStatus {
    /// Whether every moved range of this node is synced.
    pub fn is_complete(&self) -> bool {
        self.ranges_synced == self.ranges_total
    }
}

/// Why a rebalance pass did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RebalanceError {
    /// Reading or deleting local data failed.
    #[error("local storage: {0}")]
    Local(String),
    /// Some ranges could not be pushed; they stay unsynced and are retried.
    #[error("{unsynced} of {total} moved ranges not synced: {first_failure}")]
    Incomplete {
        /// Ranges left unsynced.
        unsynced: u64,
        /// Ranges of this node in the move.
        total: u64,
        /// The first push failure, for the log.
        first_failure: String,
    },
}

impl From<TableError> for RebalanceError {
    fn from(err: TableError) -> Self {
        RebalanceError::Local(err.to_string())
    }
}

/// Finds the ring position of an encoded entry of one table.
type PositionOf = Arc<dyn Fn(&[u8]) -> Result<u64, TableError> + Send + Sync>;

/// A sharded table the rebalancer moves.
#[derive(Clone)]
pub(crate) struct MovedTable {
    name: &'static str,
    replicas: usize,
    position_of: PositionOf,
}

/// Moves this node's share of tables and blocks after layout changes. One per node.
pub struct Rebalancer {
    system: Arc<TableSystem>,
    blocks: Option<Arc<BlockService>>,
    block_replicas: usize,
    tables: Mutex<Vec<MovedTable>>,
    status: Mutex<RebalanceStatus>,
    /// The layout version of the current rebalance and its ranges (start, end) synced so far.
    synced: Mutex<(u64, HashSet<(u64, u64)>)>,
}

impl Rebalancer {
    /// A rebalancer for the tables of `system` (none until [`Rebalancer::add_table`]) and,
    /// when given, the blocks of `blocks` kept on `block_replicas` nodes each.
    pub fn new(
        system: Arc<TableSystem>,
        blocks: Option<Arc<BlockService>>,
        block_replicas: usize,
    ) -> Arc<Rebalancer> {
        Arc::new(Rebalancer {
            system,
            blocks,
            block_replicas,
            tables: Mutex::new(Vec::new()),
            status: Mutex::new(RebalanceStatus::default()),
            synced: Mutex::new((0, HashSet::new())),
        })
    }

    /// Adds table `S`, sharded on `replicas` nodes per key, to what is moved.
    pub fn add_table<S: TableSchema>(&self, replicas: usize) {
        let position_of: PositionOf = Arc::new(|encoded: &[u8]| {
            let entry: S::Entry = codec::decode(encoded)?;
            Ok(S::hash_key(&S::key_of(&entry)))
        });
        let table = MovedTable {
            name: S::TABLE_NAME,
            replicas,
            position_of,
        };
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        tables.retain(|known| known.name != table.name);
        tables.push(table);
    }

    /// Progress of the latest rebalance (for admin status and metrics).
    pub fn status(&self) -> RebalanceStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sets (or clears) the previous ring that table and block reads fall back to.
    pub fn set_previous_ring(&self, ring: Option<Arc<ring::Ring>>) {
        if let Some(blocks) = &self.blocks {
            blocks.set_previous_ring(ring.clone());
        }
        self.system.set_previous_ring(ring);
    }

    fn tables(&self) -> Vec<MovedTable> {
        self.tables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn update_status(&self, change: impl FnOnce(&mut RebalanceStatus)) {
        change(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }
}
