//! Forgetting old deletions: the purge of tombstones from the sharded tables, Garage-style.
//!
//! A delete is written as a tombstone (an [`super::Lww`] register without value) so that it
//! wins over older versions still travelling through hints, read repair and anti-entropy.
//! Kept forever, tombstones would grow every table with everything ever deleted. Once a
//! deletion is older than a grace period, [`purge_tombstones`] deletes it from every replica,
//! without letting an older version come back.
//!
//! # One pass over one table
//!
//! The pass walks this node's own copy of the table ([`Table::local_scan`], page by page) and
//! purges an entry when all of these hold:
//! - the whole entry is a deletion ([`TableSchema::tombstoned_since`]) older than the grace;
//! - this node is the FIRST owner of the key under the current ring, so one node drives the
//!   purge of each key;
//! - no rebalance is in progress ([`TableSystem::previous_ring`] is `None`): during one,
//!   copies also sit on nodes outside the preference list;
//! - every owner of the key is up.
//!
//! Then, for that key:
//! 1. the tombstone goes to every owner with the ordinary [`TableRequest::Merge`], and every
//!    one must acknowledge it (durably): from then on no owner holds anything older;
//! 2. [`TableRequest::PurgeIfEqual`] goes to the other owners, then to this node: each one
//!    deletes its copy only if it is still byte for byte the tombstone, compared under the
//!    lock that merges take, so a write that reached it in between survives. This node's
//!    copy goes last, so that when a peer fails the key is still found by the next pass.
//!
//! Any failure skips the key and the next pass tries again; repeating both steps is harmless
//! (a `Merge` puts the tombstone back on an owner that already dropped it, to be dropped
//! again). Full-copy tables are not purged: every node of the layout would have to be up and
//! acknowledge, and their deletions (buckets) are few.
//!
//! # What the grace period protects against
//!
//! After a purge nothing newer remains to beat an older version of the key, so a copy of one
//! held outside the owners' tables would come back as if new:
//! - a hinted write held for an owner by another node and replayed only after the purge
//!   (a hint normally reaches its owner seconds after the owner answers again);
//! - a read repair or anti-entropy exchange that read an older version before step 1 and
//!   delivers it after step 2 (bounded by call timeouts: seconds).
//!
//! Both need a version older than the tombstone to be still in flight a full grace period
//! after the deletion, so the grace must be far longer than hint replay and any outage the
//! cluster is expected to ride out: [`DEFAULT_GRACE`] is 24 hours. As with Cassandra's
//! `gc_grace_seconds`, a node that was down or cut off for longer than the grace must be
//! wiped (table store and hints) and added again, not simply restarted: its hints and stale
//! copies could resurrect deleted entries.
//!
//! Peers that do not know [`TableRequest::PurgeIfEqual`] (an older version during a rolling
//! upgrade) fail to decode it; the key is counted as failed and kept.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::{join_all, BoxFuture};
use ring::NodeId;

use super::error::TableError;
use super::protocol::{TableRequest, TableResponse};
use super::schema::{Replication, TableSchema};
use super::system::TableSystem;
use super::table::Table;
use crate::rpc::Payload;
use crate::store::codec;

#[cfg(test)]
mod tests;

/// How long a deletion is kept before it may be purged: far longer than hint replay and than
/// the outages the cluster rides out without re-adding a node (see the module doc).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);

/// Entries read from the local copy per page of the scan.
const SCAN_PAGE: usize = 256;

/// What one pass over one table did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Entries of this node's copy looked at.
    pub scanned: u64,
    /// Of those, entries that are wholly a deletion.
    pub tombstones: u64,
    /// Deletions kept because they are younger than the grace period.
    pub in_grace: u64,
    /// Deletions purged from every owner.
    pub purged: u64,
    /// Deletions dropped by some owners only: another owner (possibly this node) held a
    /// different version by the time it was asked and kept it.
    pub superseded: u64,
    /// Old deletions left to the key's first owner, another node.
    pub skipped_not_first_owner: u64,
    /// Old deletions not tried because an owner is down or a rebalance is in progress.
    pub skipped_unhealthy: u64,
    /// Old deletions whose purge failed on the way (a call failed or answered oddly); they
    /// are tried again by the next pass.
    pub failed: u64,
}

/// Purges, from every owner, the deletions of `table` older than `grace` whose first owner
/// is this node (one pass; see the module doc for the rule). Returns what it did; an error
/// means this node's own copy could not be read, and the pass stopped there.
///
/// Full-copy tables are left alone: the report is empty.
pub async fn purge_tombstones<S: TableSchema>(
    table: &Table<S>,
    grace: Duration,
) -> Result<PurgeReport, TableError> {
    purge_in_pages(table, grace, SCAN_PAGE).await
}

/// [`purge_tombstones`] reading `page_size` local entries at a time.
async fn purge_in_pages<S: TableSchema>(
    table: &Table<S>,
    grace: Duration,
    page_size: usize,
) -> Result<PurgeReport, TableError> {
    let mut report = PurgeReport::default();
    if !matches!(table.replication(), Replication::Sharded { .. }) {
        return Ok(report);
    }
    let system = table.system();
    let local = system.liveness().local_id();
    let grace_millis = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let page = table.local_scan(cursor.as_deref(), page_size)?;
        let last_page = page.len() < page_size;
        cursor = page.last().map(|(key, _)| key.clone());
        let now_millis = unix_millis_now();
        for (key, entry) in page {
            report.scanned += 1;
            let Some(deleted_at) = S::tombstoned_since(&entry) else {
                continue;
            };
            report.tombstones += 1;
            // A stamp from a clock ahead of ours counts as brand new.
            if now_millis.saturating_sub(deleted_at) < grace_millis {
                report.in_grace += 1;
                continue;
            }
            let owners = table.replicas_of(&S::key_of(&entry));
            if owners.first() != Some(&local) {
                report.skipped_not_first_owner += 1;
                continue;
            }
            let rebalancing = system.previous_ring().is_some();
            if rebalancing || !owners.iter().all(|owner| system.liveness().is_up(owner)) {
                report.skipped_unhealthy += 1;
                continue;
            }
            let purge = KeyPurge {
                system,
                table: S::TABLE_NAME,
                key: Payload::new(key),
                entry: Payload::new(codec::encode(&entry)?),
                owners: &owners,
                local: &local,
            };
            match purge.run().await {
                Ok(true) => report.purged += 1,
                Ok(false) => report.superseded += 1,
                Err(reason) => {
                    tracing::debug!(table = S::TABLE_NAME, %reason, "tombstone purge of a key failed");
                    report.failed += 1;
                }
            }
        }
        if last_page {
            return Ok(report);
        }
    }
}

/// The purge of one key's tombstone from all of its owners.
struct KeyPurge<'a> {
    system: &'a TableSystem,
    table: &'static str,
    key: Payload,
    /// The tombstone, encoded as this node's format encodes it (what every owner stores
    /// after merging it, unless it holds something newer).
    entry: Payload,
    /// The key's owners, this node first.
    owners: &'a [NodeId],
    local: &'a NodeId,
}

impl KeyPurge<'_> {
    /// Runs both steps. `Ok(true)`: every owner deleted its copy; `Ok(false)`: some owner
    /// held another version and kept it; `Err`: a call failed, with the reason.
    async fn run(&self) -> Result<bool, String> {
        let merges = self.owners.iter().map(|owner| {
            let request = TableRequest::Merge {
                table: self.table.to_owned(),
                key: self.key.clone(),
                entry: self.entry.clone(),
            };
            async move { (owner, self.system.call(owner, request).await) }
        });
        for (owner, answer) in join_all(merges).await {
            match answer {
                Ok(TableResponse::Done) => {}
                Ok(other) => return Err(format!("{owner} answered {other:?} to the merge")),
                Err(reason) => return Err(format!("merge on {owner}: {reason}")),
            }
        }
        // A layout change during the merges: owners may be moving; leave it to a later pass.
        if self.system.previous_ring().is_some() {
            return Err("a rebalance started".to_owned());
        }
        let peers = self.owners.iter().filter(|owner| *owner != self.local);
        let mut all_deleted = true;
        for deleted in join_all(peers.map(|owner| self.purge_on(owner))).await {
            all_deleted &= deleted?;
        }
        Ok(self.purge_on(self.local).await? && all_deleted)
    }

    /// Asks `owner` to delete its copy if it is still the tombstone; whether it did.
    async fn purge_on(&self, owner: &NodeId) -> Result<bool, String> {
        let request = TableRequest::PurgeIfEqual {
            table: self.table.to_owned(),
            key: self.key.clone(),
            entry: self.entry.clone(),
        };
        match self.system.call(owner, request).await {
            Ok(TableResponse::Purged(deleted)) => Ok(deleted),
            Ok(other) => Err(format!("{owner} answered {other:?} to the purge")),
            Err(reason) => Err(format!("purge on {owner}: {reason}")),
        }
    }
}

fn unix_millis_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// One table's pass, as run by [`TombstonePurger::purge_all`].
type TablePass =
    Arc<dyn Fn(Duration) -> BoxFuture<'static, Result<PurgeReport, TableError>> + Send + Sync>;

/// The outcome of one table's pass in [`TombstonePurger::purge_all`].
#[derive(Debug)]
pub struct TablePurge {
    /// The table's name.
    pub table: &'static str,
    /// What the pass did, or why it stopped.
    pub outcome: Result<PurgeReport, TableError>,
}

/// The sharded tables one node purges tombstones from, so the node runs one call per
/// period for all of them. Cheap to share behind an `Arc`.
#[derive(Default)]
pub struct TombstonePurger {
    tables: Mutex<Vec<(&'static str, TablePass)>>,
}

impl TombstonePurger {
    /// Adds `table` to what [`TombstonePurger::purge_all`] purges (replacing an earlier
    /// handle on the same table). Full-copy tables are accepted and never purged.
    pub fn add_table<S: TableSchema>(&self, table: Table<S>) {
        let pass: TablePass = Arc::new(move |grace| {
            let table = table.clone();
            Box::pin(async move { purge_tombstones(&table, grace).await })
        });
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        tables.retain(|(name, _)| *name != S::TABLE_NAME);
        tables.push((S::TABLE_NAME, pass));
    }

    /// Runs one [`purge_tombstones`] pass over every added table in turn, each with `grace`.
    pub async fn purge_all(&self, grace: Duration) -> Vec<TablePurge> {
        let tables = self
            .tables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut outcomes = Vec::with_capacity(tables.len());
        for (table, pass) in tables {
            outcomes.push(TablePurge {
                table,
                outcome: pass(grace).await,
            });
        }
        outcomes
    }
}
