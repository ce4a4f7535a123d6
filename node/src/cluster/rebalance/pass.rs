//! One rebalance pass: push this node's data in moved ranges to the gained owners, then drop
//! what this node no longer owns.

use std::collections::HashSet;

use futures_util::stream::{self, StreamExt};
use ring::{moved_ranges, NodeId, RangeMove, Ring};

use super::{MovedTable, RebalanceError, RebalanceStatus, Rebalancer};
use crate::cluster::blocks::protocol::{BlockRequest, BlockResponse};
use crate::cluster::blocks::{block_position, BlockHash};
use crate::cluster::local::entry_key;
use crate::cluster::protocol::{TableRequest, TableResponse};
use crate::rpc::Payload;
use crate::store::kv::Table as KvTable;

/// Entries listed per local scan step.
const SCAN_BATCH: usize = 512;
/// Pushes in flight at once per gained node.
const PUSH_CONCURRENCY: usize = 16;

/// What this node holds in one moved range, and whether pushing it all succeeded.
#[derive(Default)]
struct RangeWork {
    /// (table, encoded key, encoded entry) pushed to the gained table owners.
    entries: Vec<(MovedTable, Vec<u8>, Vec<u8>)>,
    /// Blocks pushed to the gained block owners.
    blocks: Vec<BlockHash>,
    failure: Option<String>,
}

/// The first `n` nodes of a preference list.
fn first(list: &[NodeId], n: usize) -> &[NodeId] {
    &list[..n.min(list.len())]
}

/// Nodes among the first `n` of the new list that were not among the first `n` of the old.
fn gained(range: &RangeMove, n: usize) -> Vec<NodeId> {
    let old = first(&range.from, n);
    first(&range.to, n)
        .iter()
        .filter(|node| !old.contains(node))
        .cloned()
        .collect()
}

/// Whether `node` held the range (among the first `n`) before but not after.
fn lost_by(range: &RangeMove, n: usize, node: &NodeId) -> bool {
    first(&range.from, n).contains(node) && !first(&range.to, n).contains(node)
}

/// Index of the range of `ranges` (ascending, disjoint) containing `position`.
fn range_of(ranges: &[RangeMove], position: u64) -> Option<usize> {
    let index = ranges.partition_point(|range| range.end < position);
    (index < ranges.len() && ranges[index].start <= position).then_some(index)
}

impl Rebalancer {
    /// Runs one pass for the change from `old` to `new`: pushes every entry and block this
    /// node holds in a moved range to the range's gained owners, marks a range synced once
    /// all of them confirmed, and then drops the range's data here if this node lost it.
    /// Ranges synced by an earlier pass for the same layout version are skipped. Returns the
    /// status after the pass, or `Incomplete` when some range must be retried.
    pub async fn rebalance(
        &self,
        old: &Ring,
        new: &Ring,
    ) -> Result<RebalanceStatus, RebalanceError> {
        self.run_pass(old, new, false).await
    }

    /// Runs the pass for `old` to `new` again over every moved range, synced or not: it
    /// pushes and drops what writes landed on this node after the first pass listed its data
    /// (an in-flight write, or one from a coordinator still on the old layout).
    pub async fn settle(&self, old: &Ring, new: &Ring) -> Result<RebalanceStatus, RebalanceError> {
        self.run_pass(old, new, true).await
    }

    async fn run_pass(
        &self,
        old: &Ring,
        new: &Ring,
        recheck_synced: bool,
    ) -> Result<RebalanceStatus, RebalanceError> {
        let local = self.system.liveness().local_id();
        let tables = self.tables();
        let widest = tables
            .iter()
            .map(|table| table.replicas)
            .chain(self.blocks.as_ref().map(|_| self.block_replicas))
            .max()
            .unwrap_or(0);
        let mine: Vec<RangeMove> = moved_ranges(old, new)
            .into_iter()
            .filter(|range| first(&range.from, widest).contains(&local))
            .collect();

        let already_synced = self.begin_version(new.version(), mine.len() as u64);
        let mut work: Vec<RangeWork> = (0..mine.len()).map(|_| RangeWork::default()).collect();
        self.collect_entries(&tables, &mine, &local, &mut work)?;
        self.collect_blocks(&mine, &local, &mut work).await?;

        for (range, work) in mine.iter().zip(work.iter_mut()) {
            if !recheck_synced && already_synced.contains(&(range.start, range.end)) {
                continue;
            }
            self.push_range(range, work).await;
            if work.failure.is_none() {
                self.drop_range(range, &local, work).await?;
                self.mark_synced(new.version(), range);
            }
        }

        let status = self.status();
        let failures: Vec<&String> = work.iter().filter_map(|w| w.failure.as_ref()).collect();
        match failures.first() {
            None => Ok(status),
            Some(first_failure) => Err(RebalanceError::Incomplete {
                unsynced: status.ranges_total - status.ranges_synced,
                total: status.ranges_total,
                first_failure: (*first_failure).clone(),
            }),
        }
    }

    /// Resets the status when `version` is new; returns the ranges already synced for it.
    fn begin_version(&self, version: u64, ranges_total: u64) -> HashSet<(u64, u64)> {
        let mut synced = self.synced.lock().unwrap_or_else(|p| p.into_inner());
        if synced.0 != version {
            *synced = (version, HashSet::new());
            self.update_status(|status| {
                *status = RebalanceStatus {
                    layout_version: version,
                    ranges_total,
                    ..RebalanceStatus::default()
                }
            });
        }
        synced.1.clone()
    }

    fn mark_synced(&self, version: u64, range: &RangeMove) {
        let mut synced = self.synced.lock().unwrap_or_else(|p| p.into_inner());
        if synced.0 == version && synced.1.insert((range.start, range.end)) {
            self.update_status(|status| status.ranges_synced += 1);
        }
    }

    /// Sorts this node's entries of every table into the moved ranges it held them in.
    fn collect_entries(
        &self,
        tables: &[MovedTable],
        mine: &[RangeMove],
        local: &NodeId,
        work: &mut [RangeWork],
    ) -> Result<(), RebalanceError> {
        for table in tables {
            let mut after: Option<Vec<u8>> = None;
            loop {
                let batch = self.system.local().scan_prefix(
                    table.name,
                    &[],
                    after.as_deref(),
                    SCAN_BATCH,
                )?;
                let done = batch.len() < SCAN_BATCH;
                after = batch.last().map(|(key, _)| key.clone());
                for (key, entry) in batch {
                    let position = (table.position_of)(&entry)?;
                    if let Some(index) = range_of(mine, position) {
                        if first(&mine[index].from, table.replicas).contains(local) {
                            work[index].entries.push((table.clone(), key, entry));
                        }
                    }
                }
                if done {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Sorts this node's own blocks (not those held for a down owner) into moved ranges.
    async fn collect_blocks(
        &self,
        mine: &[RangeMove],
        local: &NodeId,
        work: &mut [RangeWork],
    ) -> Result<(), RebalanceError> {
        let Some(blocks) = &self.blocks else {
            return Ok(());
        };
        let (hashes, handoffs) = blocks
            .blocking(|local| Ok((local.list()?, local.handoffs()?)))
            .await
            .map_err(|err| RebalanceError::Local(err.to_string()))?;
        let held_for_others: HashSet<BlockHash> =
            handoffs.into_iter().map(|handoff| handoff.hash).collect();
        for hash in hashes {
            if held_for_others.contains(&hash) {
                continue;
            }
            if let Some(index) = range_of(mine, block_position(&hash)) {
                if first(&mine[index].from, self.block_replicas).contains(local) {
                    work[index].blocks.push(hash);
                }
            }
        }
        Ok(())
    }

    /// Pushes the range's entries and blocks to their gained owners; records the first
    /// failure in `work`.
    async fn push_range(&self, range: &RangeMove, work: &mut RangeWork) {
        // Collected first: a stream over iterator adapters holding closures makes the
        // future's auto traits fail to prove `Send` for `tokio::spawn`.
        let mut entry_pushes = Vec::new();
        for (table, key, entry) in &work.entries {
            for node in gained(range, table.replicas) {
                entry_pushes.push(self.push_entry(node, table.name, key.clone(), entry.clone()));
            }
        }
        let results: Vec<Result<(), String>> = stream::iter(entry_pushes)
            .buffer_unordered(PUSH_CONCURRENCY)
            .collect()
            .await;
        let pushed = results.iter().filter(|result| result.is_ok()).count() as u64;
        self.update_status(|status| status.entries_moved += pushed);
        let mut failure = results.into_iter().find_map(Result::err);

        let block_targets = gained(range, self.block_replicas);
        let mut block_pushes = Vec::new();
        for hash in &work.blocks {
            for node in &block_targets {
                block_pushes.push(self.push_block(node.clone(), *hash));
            }
        }
        let results: Vec<Result<(), String>> = stream::iter(block_pushes)
            .buffer_unordered(PUSH_CONCURRENCY)
            .collect()
            .await;
        let pushed = results.iter().filter(|result| result.is_ok()).count() as u64;
        self.update_status(|status| status.blocks_moved += pushed);
        failure = failure.or(results.into_iter().find_map(Result::err));
        work.failure = failure;
    }

    async fn push_entry(
        &self,
        node: NodeId,
        table: &'static str,
        key: Vec<u8>,
        entry: Vec<u8>,
    ) -> Result<(), String> {
        let request = TableRequest::Merge {
            table: table.to_owned(),
            key: Payload::new(key),
            entry: Payload::new(entry),
        };
        match self.system.call(&node, request).await {
            Ok(TableResponse::Done) => Ok(()),
            Ok(other) => Err(format!("{node}: unexpected answer {other:?}")),
            Err(reason) => Err(format!("{node}: {reason}")),
        }
    }

    async fn push_block(&self, node: NodeId, hash: BlockHash) -> Result<(), String> {
        let Some(blocks) = &self.blocks else {
            return Ok(());
        };
        let data = blocks
            .blocking(move |local| local.read_raw(&hash))
            .await
            .map_err(|err| format!("reading block {}: {err}", hex::encode(hash)))?;
        // Gone since listing: collected as garbage meanwhile, nothing left to move.
        let Some(data) = data else { return Ok(()) };
        let request = BlockRequest::Put {
            hash,
            data: Payload::new(data),
        };
        match blocks.call(&node, request).await {
            Ok(BlockResponse::Done) => Ok(()),
            Ok(other) => Err(format!("{node}: unexpected answer {other:?}")),
            Err(reason) => Err(format!("{node}: {reason}")),
        }
    }

    /// Deletes the range's data here when this node no longer owns it; every gained owner
    /// has confirmed it by now.
    async fn drop_range(
        &self,
        range: &RangeMove,
        local: &NodeId,
        work: &RangeWork,
    ) -> Result<(), RebalanceError> {
        let kv = &self.system.local().kv;
        let mut dropped = 0u64;
        for (table, key, pushed) in &work.entries {
            if !lost_by(range, table.replicas, local) {
                continue;
            }
            let db_key = entry_key(table.name, key);
            // A write that reached this node after the listing changed the entry: keep it,
            // the next pass pushes the newer version before dropping it.
            let current = kv
                .get(KvTable::Replicated, &db_key)
                .map_err(|err| RebalanceError::Local(err.to_string()))?;
            if current.as_deref() == Some(pushed.as_slice()) {
                kv.remove(KvTable::Replicated, &db_key)
                    .map_err(|err| RebalanceError::Local(err.to_string()))?;
                dropped += 1;
            }
        }
        if dropped > 0 {
            kv.flush()
                .await
                .map_err(|err| RebalanceError::Local(err.to_string()))?;
        }
        if let Some(blocks) = &self.blocks {
            if lost_by(range, self.block_replicas, local) && !work.blocks.is_empty() {
                let hashes = work.blocks.clone();
                let removed = blocks
                    .blocking(move |local| {
                        for hash in &hashes {
                            local.remove(hash)?;
                        }
                        Ok(hashes.len() as u64)
                    })
                    .await
                    .map_err(|err| RebalanceError::Local(err.to_string()))?;
                dropped += removed;
            }
        }
        self.update_status(|status| status.dropped += dropped);
        Ok(())
    }
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    fn node(id: &str) -> NodeId {
        NodeId::from(id)
    }

    #[test]
    fn gained_and_lost_look_at_the_first_n_only() {
        let range = RangeMove {
            start: 10,
            end: 20,
            from: vec![node("a"), node("b"), node("c")],
            to: vec![node("e"), node("a"), node("b")],
        };
        assert_eq!(gained(&range, 3), vec![node("e")]);
        assert_eq!(gained(&range, 1), vec![node("e")]);
        assert!(lost_by(&range, 3, &node("c")));
        assert!(!lost_by(&range, 3, &node("a")));
        assert!(lost_by(&range, 1, &node("a")));
    }

    #[test]
    fn range_of_finds_the_containing_range() {
        let range = |start, end| RangeMove {
            start,
            end,
            from: vec![],
            to: vec![],
        };
        let ranges = vec![range(0, 9), range(20, 29), range(30, 30)];
        assert_eq!(range_of(&ranges, 5), Some(0));
        assert_eq!(range_of(&ranges, 9), Some(0));
        assert_eq!(range_of(&ranges, 15), None);
        assert_eq!(range_of(&ranges, 30), Some(2));
        assert_eq!(range_of(&ranges, 31), None);
    }
}
