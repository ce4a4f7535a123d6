//! The cluster as this node sees it, for `GET /v1/cluster/status`, anti-entropy rounds and
//! block scrubs and resyncs on demand, for `POST /v1/cluster/anti-entropy`,
//! `POST /v1/cluster/scrub` and `POST /v1/cluster/resync`,
//! and the debug view of where an object lives ([`locate`]).

mod locate;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use admin::api::{
    AntiEntropyRound, AntiEntropySummary, BlockGcSummary, ClusterApiError, ClusterNodeStatus,
    ClusterStatus, PeerLiveness, QuorumFailureTotals, ResyncSummary, ScrubSummary,
    TombstonePurgeSummary,
};
use ring::NodeInfo;

use super::services::{BlockGcRecord, PurgeRecord, ResyncRecord, ScrubRecord};
use super::ClusterNode;
use crate::cluster::membership::NodeStatus;
use crate::cluster::{AntiEntropyStatus, Operation, RoundReport};

impl ClusterNode {
    /// This node's id, layout version, every known node with its liveness, the hints and
    /// blocks it holds for others, its latest anti-entropy round and scrub, and its running
    /// totals of quorum failures and delivered hints and blocks. Scans the
    /// hint and handoff records (on the blocking pool).
    pub async fn status(self: &Arc<Self>) -> Result<ClusterStatus, ClusterApiError> {
        let snapshot = self.view.snapshot();
        let local_id = &snapshot.local.id;
        // This node as the layout lists it, if it is a member (the operator's zone and
        // capacity are what placement uses), else as it announces itself.
        let me = snapshot
            .layout
            .node(local_id)
            .cloned()
            .unwrap_or_else(|| snapshot.local.clone());
        let mut nodes = vec![node_status(
            &me,
            NodeStatus::Up,
            snapshot.layout.node(local_id).is_some(),
            true,
        )];
        nodes.extend(
            snapshot
                .peers
                .values()
                .map(|peer| node_status(&peer.info, peer.status, peer.in_layout, false)),
        );
        let tables = Arc::clone(&self.tables);
        let pending_hints = tokio::task::spawn_blocking(move || tables.pending_hints())
            .await
            .map_err(|err| ClusterApiError::Internal(err.to_string()))?
            .map_err(|err| ClusterApiError::Internal(format!("reading the hint store: {err}")))?
            .len() as u64;
        let pending_block_handoffs = self
            .data
            .blocks
            .pending_handoffs()
            .await
            .map_err(|err| ClusterApiError::Internal(format!("reading block handoffs: {err}")))?
            .len() as u64;
        let (table_counters, block_counters) =
            (self.tables.counters(), self.data.blocks.counters());
        Ok(ClusterStatus {
            node_id: local_id.to_string(),
            layout_version: snapshot.layout.version,
            replication: snapshot.layout.replication,
            nodes,
            pending_hints,
            pending_block_handoffs,
            anti_entropy: anti_entropy_summary(&self.data.anti_entropy.status()),
            last_scrub: self.data.last_scrub.get().map(scrub_summary),
            rebalance: Some(rebalance_summary(self.rebalancer().status())),
            last_block_gc: self.data.last_block_gc.get().map(block_gc_summary),
            last_block_resync: self.data.last_resync.get().map(resync_summary),
            last_tombstone_purge: self.data.last_purge.get().map(purge_summary),
            quorum_failures: QuorumFailureTotals {
                table_writes: table_counters.quorum_failures(Operation::Write),
                table_reads: table_counters.quorum_failures(Operation::Read),
                block_writes: block_counters.put_quorum_failures(),
                block_reads: block_counters.get_failures(),
            },
            hints_delivered_total: table_counters.hints_delivered(),
            block_handoffs_delivered_total: block_counters.handoffs_delivered(),
        })
    }

    /// Runs an anti-entropy round now (after any in progress) and returns its report.
    pub async fn run_anti_entropy(&self) -> AntiEntropyRound {
        round_summary(&self.data.anti_entropy.run_round().await)
    }

    /// Scrubs this node's block files now (re-hash, repair corrupt ones from a replica),
    /// records the outcome as the latest scrub and returns it.
    pub async fn run_scrub(&self) -> Result<ScrubSummary, ClusterApiError> {
        let outcome = self.data.blocks.scrub_local().await;
        let record = self
            .data
            .last_scrub
            .record(outcome.map_err(|err| err.to_string()));
        match &record.outcome {
            Ok(_) => Ok(scrub_summary(record)),
            Err(reason) => Err(ClusterApiError::Internal(format!(
                "block scrub failed: {reason}"
            ))),
        }
    }

    /// Fetches now every referenced block this node owns but lacks, records the outcome as
    /// the latest resync and returns it.
    pub async fn run_resync(&self) -> Result<ResyncSummary, ClusterApiError> {
        let outcome = self.data.blocks.resync_missing(&self.data.block_refs).await;
        let record = self
            .data
            .last_resync
            .record(outcome.map_err(|err| err.to_string()));
        match &record.outcome {
            Ok(_) => Ok(resync_summary(record)),
            Err(reason) => Err(ClusterApiError::Internal(format!(
                "block resync failed: {reason}"
            ))),
        }
    }
}

fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|since| since.as_millis() as u64)
        .unwrap_or(0)
}

fn anti_entropy_summary(status: &AntiEntropyStatus) -> AntiEntropySummary {
    AntiEntropySummary {
        rounds: status.rounds,
        entries_repaired_total: status.entries_repaired_total,
        last_round: status.last_round.as_ref().map(round_summary),
    }
}

fn round_summary(report: &RoundReport) -> AntiEntropyRound {
    AntiEntropyRound {
        started_at_unix_ms: unix_millis(report.started_at),
        duration_ms: report.duration.as_millis() as u64,
        groups_compared: report.groups_compared as u64,
        groups_in_sync: report.groups_in_sync as u64,
        groups_unsynced: report.groups_unsynced as u64,
        entries_repaired: report.entries_repaired() as u64,
        errors: report.errors.len() as u64,
        first_error: report.errors.first().map(|failure| {
            let peer = failure
                .peer
                .as_ref()
                .map_or_else(|| "-".to_owned(), ToString::to_string);
            format!("table {} with {peer}: {}", failure.table, failure.reason)
        }),
    }
}

fn scrub_summary(record: ScrubRecord) -> ScrubSummary {
    let finished_at_unix_ms = unix_millis(record.finished_at);
    match record.outcome {
        Ok(report) => ScrubSummary {
            finished_at_unix_ms,
            checked: report.checked,
            corrupt: report.corrupt,
            repaired: report.repaired,
            unrepaired: report.unrepaired,
            errors: report.errors.len() as u64,
        },
        Err(_) => ScrubSummary {
            finished_at_unix_ms,
            errors: 1,
            ..ScrubSummary::default()
        },
    }
}

fn resync_summary(record: ResyncRecord) -> ResyncSummary {
    let finished_at_unix_ms = unix_millis(record.finished_at);
    match record.outcome {
        Ok(report) => ResyncSummary {
            finished_at_unix_ms,
            scanned: report.scanned,
            owned: report.owned,
            missing: report.missing,
            fetched: report.fetched,
            failed: report.failed,
            first_error: report.errors.into_iter().next(),
        },
        Err(reason) => ResyncSummary {
            finished_at_unix_ms,
            first_error: Some(reason),
            ..ResyncSummary::default()
        },
    }
}

fn purge_summary(record: PurgeRecord) -> TombstonePurgeSummary {
    let finished_at_unix_ms = unix_millis(record.finished_at);
    match record.outcome {
        Ok(tables) => tables.iter().fold(
            TombstonePurgeSummary {
                finished_at_unix_ms,
                ..TombstonePurgeSummary::default()
            },
            |mut sum, (_, report)| {
                sum.scanned += report.scanned;
                sum.tombstones += report.tombstones;
                sum.purged += report.purged;
                sum.failed += report.failed;
                sum
            },
        ),
        Err(reason) => TombstonePurgeSummary {
            finished_at_unix_ms,
            error: Some(reason),
            ..TombstonePurgeSummary::default()
        },
    }
}

fn block_gc_summary(record: BlockGcRecord) -> BlockGcSummary {
    let finished_at_unix_ms = unix_millis(record.finished_at);
    match record.outcome {
        Ok(report) => BlockGcSummary {
            finished_at_unix_ms,
            owned: report.owned,
            removed: report.removed,
            referenced: report.referenced,
            in_grace: report.in_grace,
            unreadable: report.unreadable,
            error: None,
        },
        Err(reason) => BlockGcSummary {
            finished_at_unix_ms,
            error: Some(reason),
            ..BlockGcSummary::default()
        },
    }
}

fn node_status(
    info: &NodeInfo,
    status: NodeStatus,
    in_layout: bool,
    is_self: bool,
) -> ClusterNodeStatus {
    ClusterNodeStatus {
        id: info.id.to_string(),
        zone: info.zone.clone(),
        capacity: info.capacity,
        rpc_addr: info.rpc_addr.clone(),
        status: match status {
            NodeStatus::Up => PeerLiveness::Up,
            NodeStatus::Suspect => PeerLiveness::Suspect,
            NodeStatus::Down => PeerLiveness::Down,
        },
        in_layout,
        is_self,
    }
}

/// The admin API's view of the rebalancer's progress.
fn rebalance_summary(
    status: crate::cluster::rebalance::RebalanceStatus,
) -> admin::api::RebalanceSummary {
    admin::api::RebalanceSummary {
        layout_version: status.layout_version,
        ranges_total: status.ranges_total,
        ranges_synced: status.ranges_synced,
        entries_moved: status.entries_moved,
        blocks_moved: status.blocks_moved,
        dropped: status.dropped,
    }
}
