//! Anti-entropy: replicas of a table compare Merkle trees and exchange what differs, so
//! entries that no write, hint or read repair brought to a replica still reach it.
//!
//! # Map
//!
//! - [`tree`]: the Merkle tree over one replica group's entries (16-ary over BLAKE3 prefixes
//!   of the keys, so two replicas' trees align without exchanging keys).
//! - [`groups`]: replica groups (ring ranges with the same owners) and the scans of the local
//!   store that build trees and collect leaves.
//! - [`protocol`]: [`AeRequest`] and [`AeResponse`].
//! - `sync`: the initiator's side of one group's exchange; `responder`: the other side, with
//!   its sessions; both are methods of [`AntiEntropy`].
//! - [`transport`]: the [`AeTransport`] seam and [`RpcAeTransport`].
//! - [`worker`]: [`AntiEntropyWorker`], which runs rounds on a schedule.
//!
//! # A round
//!
//! For each registered table, the node scans its copy once and builds one tree per group it
//! belongs to. For each group it picks the first live owner after itself in the group's
//! sorted owner list (the next one if that call fails) and syncs with it: roots equal → done
//! in one message; otherwise descend where hashes differ, fetch the peer's entries of the
//! differing leaves (at most [`AntiEntropyConfig::max_leaves_per_group`] per round), merge
//! them here, push back what the peer lacks or holds older. Merging is the table's CRDT merge,
//! so the newer version wins on both sides and the exchange is idempotent.
//!
//! Syncing with the successor links a group's owners in a cycle. With N = 3 the cycle is a
//! triangle and its three exchanges, run one after another in any order, leave the three
//! copies equal: the second exchange always shares an owner with the first, so after it two
//! owners hold everything, and the third exchange reaches the remaining one. Hence one round
//! on each node, one node after the other and without failures, converges every group
//! (the tests check this); larger groups, or rounds that overlap, may need a few more rounds.
//! A failed or down successor is replaced by the next live owner, and the failure reported.
//!
//! # Cost
//!
//! Trees are built on demand, not maintained on every write: a round scans each registered
//! table once on the initiator, and a responder scans its copy for each `Open` (one per
//! group and peer) and each `FetchLeaves`, decoding every entry to find its ring position.
//! Scans run on tokio's blocking pool. At the default ten-minute interval this is cheap for
//! metadata tables of a few million entries; beyond that, keeping per-group trees updated by
//! `LocalStore::merge` is the next step.

pub mod groups;
pub mod protocol;
mod responder;
mod sync;
pub mod transport;
pub mod tree;
pub mod worker;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use futures_util::stream::{self, StreamExt};
use ring::NodeId;

use self::groups::{build_local_trees, Owners, RegisteredTable};
use self::protocol::KeyedEntry;
use self::responder::Sessions;
use crate::cluster::error::TableError;
use crate::cluster::schema::{Replication, TableSchema};
use crate::cluster::system::TableSystem;
use crate::rpc::{Caller, RpcHandler};
use crate::store::codec::CodecError;
use crate::store::kv::KvError;

// Until the node wires anti-entropy in, only the tests use some of these short paths.
#[allow(unused_imports)]
pub use self::protocol::{AeRequest, AeResponse};
#[allow(unused_imports)]
pub use self::transport::{AddressBook, AeTransport, RpcAeTransport};
pub use self::worker::AntiEntropyWorker;

/// Why building or serving a tree failed locally.
#[derive(Debug, thiserror::Error)]
pub enum AntiEntropyError {
    /// A table operation (decoding, merging) failed.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The local metadata engine failed.
    #[error("local table storage: {0}")]
    Kv(#[from] KvError),
    /// An entry could not be decoded.
    #[error("entry encoding: {0}")]
    Codec(#[from] CodecError),
    /// A blocking scan task died.
    #[error("background scan failed: {0}")]
    Scan(String),
}

/// Tunables of anti-entropy.
#[derive(Debug, Clone)]
pub struct AntiEntropyConfig {
    /// Pause between rounds of [`AntiEntropyWorker`]. Ten minutes: writes, hints and read
    /// repair keep replicas equal almost always; this only catches what they missed, and a
    /// round scans every table once.
    pub interval: Duration,
    /// Most differing leaves one group exchanges per round; the rest waits for the next
    /// round. Bounds a round's work when a replica comes back empty.
    pub max_leaves_per_group: usize,
    /// Target size of one message of entries (fetched or pushed); well under the RPC frame
    /// limit of 4 MiB so one large entry still fits.
    pub message_bytes: usize,
}

impl Default for AntiEntropyConfig {
    fn default() -> Self {
        AntiEntropyConfig {
            interval: Duration::from_secs(600),
            // A quarter of the 4096 leaves: a wiped replica is rebuilt in four rounds at most
            // per group, each round moving a bounded amount.
            max_leaves_per_group: 1024,
            message_bytes: 1024 * 1024,
        }
    }
}

/// One group's sync that failed, or a table that could not be scanned (`peer` `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncFailure {
    /// The table.
    pub table: String,
    /// The group's owners (empty when the whole table failed).
    pub owners: Vec<NodeId>,
    /// The peer the exchange was with.
    pub peer: Option<NodeId>,
    /// What went wrong.
    pub reason: String,
}

/// What one round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundReport {
    /// When the round started.
    pub started_at: SystemTime,
    /// How long it took.
    pub duration: Duration,
    /// Groups compared with a peer (successfully).
    pub groups_compared: usize,
    /// Of those, groups whose roots were equal.
    pub groups_in_sync: usize,
    /// Groups with more differing leaves than one round exchanges.
    pub groups_truncated: usize,
    /// Groups no other owner could be synced with (all down or all failed).
    pub groups_unsynced: usize,
    /// Entries that changed this node's copy.
    pub entries_received: usize,
    /// Entries that changed a peer's copy.
    pub entries_sent: usize,
    /// Requests this node sent.
    pub messages_sent: usize,
    /// Each failed exchange; a failure never stops the round.
    pub errors: Vec<SyncFailure>,
}

impl RoundReport {
    fn starting_now() -> RoundReport {
        RoundReport {
            started_at: SystemTime::now(),
            duration: Duration::ZERO,
            groups_compared: 0,
            groups_in_sync: 0,
            groups_truncated: 0,
            groups_unsynced: 0,
            entries_received: 0,
            entries_sent: 0,
            messages_sent: 0,
            errors: Vec::new(),
        }
    }

    /// Entries repaired on either side.
    pub fn entries_repaired(&self) -> usize {
        self.entries_received + self.entries_sent
    }
}

/// What anti-entropy has done since the node started (for `admin status`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AntiEntropyStatus {
    /// Rounds completed.
    pub rounds: u64,
    /// Entries repaired (both directions) over all rounds.
    pub entries_repaired_total: u64,
    /// The latest round's report.
    pub last_round: Option<RoundReport>,
}

/// Anti-entropy of one node: runs rounds as initiator and answers peers as responder (its
/// [`RpcHandler`]). Shared (`Arc`) by the worker and the RPC server.
pub struct AntiEntropy {
    system: Arc<TableSystem>,
    transport: Arc<dyn AeTransport>,
    tables: RwLock<Vec<RegisteredTable>>,
    sessions: Sessions,
    config: AntiEntropyConfig,
    /// Serialises rounds (scheduled and on demand): two at once would only double the work.
    round_lock: tokio::sync::Mutex<()>,
    status: Mutex<AntiEntropyStatus>,
}

impl AntiEntropy {
    /// Anti-entropy for the tables of `system`, reaching peers through `transport`.
    pub fn new(
        system: Arc<TableSystem>,
        transport: Arc<dyn AeTransport>,
        config: AntiEntropyConfig,
    ) -> Arc<AntiEntropy> {
        Arc::new(AntiEntropy {
            system,
            transport,
            tables: RwLock::new(Vec::new()),
            sessions: Sessions::new(),
            config,
            round_lock: tokio::sync::Mutex::new(()),
            status: Mutex::new(AntiEntropyStatus::default()),
        })
    }

    /// Covers table `S`, replicated as `replication` (the same as its [`crate::cluster::Table`],
    /// which must exist so that `system` can merge its entries). Registering again replaces.
    pub fn register<S: TableSchema>(&self, replication: Replication) {
        let table = RegisteredTable::of::<S>(replication);
        let mut tables = self.tables.write().unwrap_or_else(|p| p.into_inner());
        tables.retain(|known| known.name != table.name);
        tables.push(table);
    }

    /// The tunables in force.
    pub fn config(&self) -> &AntiEntropyConfig {
        &self.config
    }

    /// A snapshot of what anti-entropy has done.
    pub fn status(&self) -> AntiEntropyStatus {
        self.status
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    /// Runs one round over every registered table now (after any round in progress) and
    /// returns its report, which also becomes [`AntiEntropyStatus::last_round`].
    pub async fn run_round(&self) -> RoundReport {
        let _only_round = self.round_lock.lock().await;
        let clock = Instant::now();
        let mut report = RoundReport::starting_now();
        let tables = self.registered_tables();
        for table in &tables {
            self.sync_table(table, &mut report).await;
        }
        report.duration = clock.elapsed();
        if !report.errors.is_empty() {
            tracing::warn!(errors = report.errors.len(), first = ?report.errors[0], "anti-entropy round had failures");
        }
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        status.rounds += 1;
        status.entries_repaired_total += report.entries_repaired() as u64;
        status.last_round = Some(report.clone());
        report
    }

    fn registered_tables(&self) -> Vec<RegisteredTable> {
        self.tables
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    fn registered(&self, name: &str) -> Option<RegisteredTable> {
        self.registered_tables()
            .into_iter()
            .find(|table| table.name == name)
    }

    async fn sync_table(&self, table: &RegisteredTable, report: &mut RoundReport) {
        let liveness = self.system.liveness();
        let ring = liveness.ring();
        let local = liveness.local_id();
        let kv = Arc::clone(&self.system.local().kv);
        let (scan_table, scan_ring, scan_local) = (*table, Arc::clone(&ring), local.clone());
        let trees = tokio::task::spawn_blocking(move || {
            build_local_trees(&*kv, &scan_table, &scan_ring, &scan_local)
        })
        .await
        .map_err(|err| AntiEntropyError::Scan(err.to_string()))
        .and_then(|built| built);
        let trees = match trees {
            Ok(trees) => trees,
            Err(err) => {
                report.errors.push(SyncFailure {
                    table: table.name.to_owned(),
                    owners: Vec::new(),
                    peer: None,
                    reason: err.to_string(),
                });
                return;
            }
        };
        for (owners, tree) in trees {
            let peers: Vec<NodeId> = successors(&owners, &local)
                .into_iter()
                .filter(|peer| liveness.is_up(peer))
                .collect();
            let mut synced = false;
            for peer in peers {
                let outcome = self
                    .sync_group(
                        table,
                        &ring,
                        &owners,
                        &tree,
                        &peer,
                        &mut report.messages_sent,
                    )
                    .await;
                match outcome {
                    Ok(outcome) => {
                        report.groups_compared += 1;
                        report.groups_in_sync += usize::from(outcome.in_sync);
                        report.groups_truncated += usize::from(outcome.truncated);
                        report.entries_received += outcome.received;
                        report.entries_sent += outcome.sent;
                        synced = true;
                        break;
                    }
                    Err(reason) => report.errors.push(SyncFailure {
                        table: table.name.to_owned(),
                        owners: owners.clone(),
                        peer: Some(peer),
                        reason,
                    }),
                }
            }
            if !synced && owners.len() > 1 {
                report.groups_unsynced += 1;
            }
        }
    }
}

/// Local merges in flight at once: each waits for a flush, and concurrent flushes share one
/// fsync, so a batch of repairs costs a few fsyncs rather than one per entry.
const MERGE_CONCURRENCY: usize = 32;

impl AntiEntropy {
    /// Merges `entries` of `table` into this node's copy, durably; returns how many changed it.
    async fn merge_entries(
        &self,
        table: &'static str,
        entries: Vec<KeyedEntry>,
    ) -> Result<usize, TableError> {
        let system = &self.system;
        let results: Vec<Result<bool, TableError>> = stream::iter(entries)
            .map(|(key, entry)| async move { system.merge_local(table, &key, &entry).await })
            .buffer_unordered(MERGE_CONCURRENCY)
            .collect()
            .await;
        let mut changed = 0;
        for result in results {
            changed += usize::from(result?);
        }
        Ok(changed)
    }
}

/// The other owners in the order this node tries them: the ones after it in the sorted list,
/// then the ones before (wrapping around).
fn successors(owners: &Owners, local: &NodeId) -> Vec<NodeId> {
    let position = owners.iter().position(|owner| owner == local).unwrap_or(0);
    (1..owners.len())
        .map(|step| owners[(position + step) % owners.len()].clone())
        .filter(|owner| owner != local)
        .collect()
}

impl RpcHandler for AntiEntropy {
    type Request = AeRequest;
    type Response = AeResponse;

    async fn handle(&self, _caller: &Caller, request: AeRequest) -> AeResponse {
        self.handle_request(request).await
    }
}
