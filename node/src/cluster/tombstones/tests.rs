//! Tombstone purges in in-process clusters: every node has its own sled store and table
//! system; calls between nodes go through an in-memory network that encodes each request
//! and answer as the RPC layer does (bincode), and that can fail calls or slip a write in
//! before a purge request. Every test is bounded.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bincode::Options;
use futures_util::future::BoxFuture;
use ring::NodeId;

use super::*;
use crate::cluster::blocks::BlockRefs;
use crate::cluster::blocks::BlockRefsSchema;
use crate::cluster::crdt::HLC_COUNTER_BITS;
use crate::cluster::testing::{bounded_by, node_ids, note_table, one_zone_ring, Note};
use crate::cluster::{
    Liveness, Lww, Stamp, StaticLiveness, SystemConfig, TableSchema, TableTransport,
};
use crate::rpc::RpcError;
use crate::store::kv::{KvStore, SledKv};

const TEST_BOUND: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// When `entry` was deleted (its tombstone's wall clock), if it is a tombstone.
fn tombstoned_since(entry: &Note) -> Option<u64> {
    entry
        .register
        .is_tombstone()
        .then(|| entry.register.stamp.wall_millis())
}

note_table!(
    /// A sharded table whose deletions may be purged.
    Notes,
    "purge_notes",
    tombstoned_since = tombstoned_since
);

note_table!(
    /// The same entries as a full-copy table.
    Settings,
    "purge_settings",
    tombstoned_since = tombstoned_since
);

/// Keeps hybrid-clock values of one test binary distinct within a millisecond.
static NEXT_COUNTER: AtomicU64 = AtomicU64::new(0);

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A stamp written `age` ago.
fn stamp_aged(age: Duration) -> Stamp {
    let wall = now_millis() - age.as_millis() as u64;
    let counter = NEXT_COUNTER.fetch_add(1, Ordering::Relaxed) % (1 << HLC_COUNTER_BITS);
    Stamp::new((wall << HLC_COUNTER_BITS) | counter, 7)
}

fn deleted(key: &str, age: Duration) -> Note {
    Note {
        key: key.to_owned(),
        register: Lww::tombstone(stamp_aged(age)),
    }
}

fn written(key: &str, value: &str, age: Duration) -> Note {
    Note {
        key: key.to_owned(),
        register: Lww::new(stamp_aged(age), value.to_owned()),
    }
}

/// Which requests the network lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Merge,
    Purge,
}

fn step_of(request: &TableRequest) -> Option<Step> {
    match request {
        TableRequest::Merge { .. } => Some(Step::Merge),
        TableRequest::PurgeIfEqual { .. } => Some(Step::Purge),
        _ => None,
    }
}

/// Delivers calls to the addressed node's table system, in memory.
#[derive(Default)]
struct MemoryNetwork {
    nodes: RwLock<HashMap<SocketAddr, Weak<TableSystem>>>,
    /// Calls of this step to this address fail as if the connection dropped.
    broken: Mutex<Vec<(SocketAddr, Step)>>,
    /// Merged into the node at this address just before the first purge request reaches it.
    slipped_write: Mutex<Option<(SocketAddr, Note)>>,
}

impl MemoryNetwork {
    fn break_calls(&self, addr: SocketAddr, step: Step) {
        self.broken.lock().unwrap().push((addr, step));
    }

    fn repair(&self) {
        self.broken.lock().unwrap().clear();
    }

    async fn deliver(
        &self,
        peer: SocketAddr,
        request: TableRequest,
    ) -> Result<TableResponse, RpcError> {
        let wire = bincode::DefaultOptions::new();
        let request: TableRequest = wire
            .deserialize(&wire.serialize(&request).unwrap())
            .unwrap();
        let lost = |reason: &str| RpcError::ConnectionLost {
            peer,
            reason: reason.to_owned(),
        };
        let step = step_of(&request);
        if step.is_some_and(|step| self.broken.lock().unwrap().contains(&(peer, step))) {
            return Err(lost("broken by the test"));
        }
        let target = self
            .nodes
            .read()
            .unwrap()
            .get(&peer)
            .and_then(Weak::upgrade)
            .ok_or_else(|| lost("no such node"))?;
        if step == Some(Step::Purge) {
            let slipped = {
                let mut slot = self.slipped_write.lock().unwrap();
                match slot.take() {
                    Some((addr, note)) if addr == peer => Some(note),
                    other => {
                        *slot = other;
                        None
                    }
                }
            };
            if let Some(note) = slipped {
                let key = Notes::encode_key(&note.key);
                let encoded = codec::encode(&note).unwrap();
                target
                    .merge_local(Notes::TABLE_NAME, &key, &encoded)
                    .await
                    .unwrap();
            }
        }
        let response = target.handle_request(request).await;
        Ok(wire
            .deserialize(&wire.serialize(&response).unwrap())
            .unwrap())
    }
}

struct MemoryTransport(Arc<MemoryNetwork>);

impl TableTransport for MemoryTransport {
    fn call(
        &self,
        peer: SocketAddr,
        request: TableRequest,
        _timeout: Duration,
    ) -> BoxFuture<'static, Result<TableResponse, RpcError>> {
        let network = Arc::clone(&self.0);
        Box::pin(async move { network.deliver(peer, request).await })
    }
}

struct TestNode {
    id: NodeId,
    addr: SocketAddr,
    liveness: Arc<StaticLiveness>,
    system: Arc<TableSystem>,
    notes: Table<Notes>,
    _dir: tempfile::TempDir,
}

struct TestCluster {
    nodes: Vec<TestNode>,
    network: Arc<MemoryNetwork>,
}

impl TestCluster {
    /// `count` nodes `n0..`, one zone, replication 3; the notes table is N=3, W=2, R=2.
    fn start(count: usize) -> TestCluster {
        let ids = node_ids(count);
        let ring = one_zone_ring(&ids);
        let addrs: HashMap<NodeId, SocketAddr> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                (
                    id.clone(),
                    SocketAddr::from(([127, 0, 0, 1], 20_000 + i as u16)),
                )
            })
            .collect();
        let network = Arc::new(MemoryNetwork::default());
        let nodes: Vec<TestNode> = ids
            .iter()
            .map(|id| {
                let dir = tempfile::tempdir().unwrap();
                let kv: Arc<dyn KvStore> =
                    Arc::new(SledKv::open(&dir.path().join("meta")).unwrap());
                let liveness = Arc::new(StaticLiveness::new(
                    id.clone(),
                    Arc::clone(&ring),
                    addrs.clone(),
                ));
                let system = TableSystem::with_transport(
                    liveness.clone(),
                    kv,
                    Arc::new(MemoryTransport(Arc::clone(&network))),
                    SystemConfig::default(),
                );
                let notes =
                    Table::<Notes>::new(Arc::clone(&system), Replication::DEFAULT_SHARDED).unwrap();
                TestNode {
                    id: id.clone(),
                    addr: addrs[id],
                    liveness,
                    system,
                    notes,
                    _dir: dir,
                }
            })
            .collect();
        for node in &nodes {
            network
                .nodes
                .write()
                .unwrap()
                .insert(node.addr, Arc::downgrade(&node.system));
        }
        TestCluster { nodes, network }
    }

    fn node(&self, id: &NodeId) -> &TestNode {
        self.nodes.iter().find(|node| &node.id == id).unwrap()
    }

    /// The owners of `key`, first owner first.
    fn owners(&self, key: &str) -> Vec<NodeId> {
        self.nodes[0].notes.replicas_of(&key.to_owned())
    }

    /// The first owner of `key`: the node that drives its purge.
    fn first_owner(&self, key: &str) -> &TestNode {
        self.node(&self.owners(key)[0])
    }

    /// Merges `note` into the copies of `on` only.
    async fn place(&self, note: &Note, on: &[NodeId]) {
        for id in on {
            self.node(id).notes.local_merge(note).await.unwrap();
        }
    }

    /// What each owner of `key` holds, in owner order.
    fn copies(&self, key: &str) -> Vec<Option<Note>> {
        self.owners(key)
            .iter()
            .map(|id| self.node(id).notes.local_get(&key.to_owned()).unwrap())
            .collect()
    }

    /// One purge pass on every node; the reports summed.
    async fn purge_everywhere(&self, grace: Duration) -> PurgeReport {
        let mut total = PurgeReport::default();
        for node in &self.nodes {
            let report = purge_tombstones(&node.notes, grace).await.unwrap();
            add(&mut total, &report);
        }
        total
    }
}

fn add(total: &mut PurgeReport, report: &PurgeReport) {
    total.scanned += report.scanned;
    total.tombstones += report.tombstones;
    total.in_grace += report.in_grace;
    total.purged += report.purged;
    total.superseded += report.superseded;
    total.skipped_not_first_owner += report.skipped_not_first_owner;
    total.skipped_unhealthy += report.skipped_unhealthy;
    total.failed += report.failed;
}

/// Runs `test` under [`TEST_BOUND`].
async fn bounded(test: impl std::future::Future<Output = ()>) {
    bounded_by(TEST_BOUND, test).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tombstone_older_than_the_grace_is_purged_from_all_three_replicas() {
    bounded(async {
        let cluster = TestCluster::start(4);
        let key = "old-delete";
        let owners = cluster.owners(key);
        cluster.place(&deleted(key, 2 * HOUR), &owners).await;

        let report = purge_tombstones(&cluster.first_owner(key).notes, HOUR)
            .await
            .unwrap();
        assert_eq!(
            report,
            PurgeReport {
                scanned: 1,
                tombstones: 1,
                purged: 1,
                ..PurgeReport::default()
            }
        );
        assert_eq!(cluster.copies(key), vec![None, None, None]);
        // The other owners had nothing left to look at.
        for id in &owners[1..] {
            let report = purge_tombstones(&cluster.node(id).notes, HOUR)
                .await
                .unwrap();
            assert_eq!(report, PurgeReport::default());
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tombstone_held_by_the_first_owner_alone_is_spread_then_purged() {
    bounded(async {
        let cluster = TestCluster::start(4);
        let key = "lonely-delete";
        let owners = cluster.owners(key);
        // The other owners still hold the live value the tombstone deleted.
        cluster.place(&written(key, "v1", 3 * HOUR), &owners).await;
        cluster.place(&deleted(key, 2 * HOUR), &owners[..1]).await;

        // The others are not first owners of a live entry: they leave it alone.
        let report = cluster.purge_everywhere(HOUR).await;
        assert_eq!((report.purged, report.failed), (1, 0));
        assert_eq!(cluster.copies(key), vec![None, None, None]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn young_tombstones_and_live_entries_are_kept() {
    bounded(async {
        let cluster = TestCluster::start(4);
        let (young, live) = ("young-delete", "live");
        let young_delete = deleted(young, Duration::from_secs(60));
        let old_write = written(live, "kept", 48 * HOUR);
        cluster.place(&young_delete, &cluster.owners(young)).await;
        cluster.place(&old_write, &cluster.owners(live)).await;

        let report = cluster.purge_everywhere(HOUR).await;
        assert_eq!(report.scanned, 6);
        assert_eq!((report.tombstones, report.in_grace), (3, 3));
        assert_eq!((report.purged, report.superseded, report.failed), (0, 0, 0));
        assert_eq!(cluster.copies(young), vec![Some(young_delete.clone()); 3]);

        // Without any grace the deletion goes, the live entry still stays.
        let report = cluster.purge_everywhere(Duration::ZERO).await;
        assert_eq!((report.purged, report.failed), (1, 0));
        assert_eq!(cluster.copies(young), vec![None, None, None]);
        assert_eq!(cluster.copies(live), vec![Some(old_write); 3]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_with_an_owner_down_or_a_rebalance_waits() {
    bounded(async {
        let cluster = TestCluster::start(4);
        let key = "waits";
        let owners = cluster.owners(key);
        let tombstone = deleted(key, 2 * HOUR);
        cluster.place(&tombstone, &owners).await;
        let driver = cluster.first_owner(key);

        driver.liveness.set_up(&owners[2], false);
        let report = purge_tombstones(&driver.notes, HOUR).await.unwrap();
        assert_eq!((report.skipped_unhealthy, report.purged), (1, 0));
        assert_eq!(cluster.copies(key), vec![Some(tombstone.clone()); 3]);

        driver.liveness.set_up(&owners[2], true);
        driver
            .system
            .set_previous_ring(Some(driver.liveness.ring()));
        let report = purge_tombstones(&driver.notes, HOUR).await.unwrap();
        assert_eq!((report.skipped_unhealthy, report.purged), (1, 0));
        assert_eq!(cluster.copies(key), vec![Some(tombstone); 3]);

        // Back to health, the next pass purges it.
        driver.system.set_previous_ring(None);
        let report = purge_tombstones(&driver.notes, HOUR).await.unwrap();
        assert_eq!((report.skipped_unhealthy, report.purged), (0, 1));
        assert_eq!(cluster.copies(key), vec![None, None, None]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_between_merge_and_purge_is_not_deleted() {
    bounded(async {
        let cluster = TestCluster::start(4);
        let key = "raced";
        let owners = cluster.owners(key);
        cluster.place(&deleted(key, 2 * HOUR), &owners).await;
        let rewrite = written(key, "back", Duration::ZERO);
        *cluster.network.slipped_write.lock().unwrap() =
            Some((cluster.node(&owners[1]).addr, rewrite.clone()));

        let report = purge_tombstones(&cluster.first_owner(key).notes, HOUR)
            .await
            .unwrap();
        assert_eq!((report.purged, report.superseded, report.failed), (0, 1, 0));
        assert_eq!(cluster.copies(key), vec![None, Some(rewrite.clone()), None]);

        // Later passes never touch the live version; reads and repair spread it as usual.
        let report = cluster.purge_everywhere(Duration::ZERO).await;
        assert_eq!((report.tombstones, report.purged), (0, 0));
        assert_eq!(
            cluster
                .node(&owners[1])
                .notes
                .local_get(&key.to_owned())
                .unwrap(),
            Some(rewrite)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_written_again_after_the_purge_stays() {
    bounded(async {
        let cluster = TestCluster::start(4);
        let key = "reborn";
        cluster
            .place(&deleted(key, 2 * HOUR), &cluster.owners(key))
            .await;
        assert_eq!(cluster.purge_everywhere(HOUR).await.purged, 1);

        let again = written(key, "again", Duration::ZERO);
        cluster.nodes[0].notes.insert(&again).await.unwrap();
        let report = cluster.purge_everywhere(Duration::ZERO).await;
        assert_eq!((report.tombstones, report.purged), (0, 0));
        let read = cluster.nodes[3].notes.get(&key.to_owned()).await.unwrap();
        assert_eq!(read, Some(again));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_calls_count_as_failed_and_keep_the_entry_until_a_later_pass() {
    bounded(async {
        let cluster = TestCluster::start(4);
        let key = "flaky";
        let owners = cluster.owners(key);
        let tombstone = deleted(key, 2 * HOUR);
        cluster.place(&tombstone, &owners).await;
        let driver = &cluster.first_owner(key).notes;

        // The merge cannot reach an owner: nothing is deleted anywhere.
        cluster
            .network
            .break_calls(cluster.node(&owners[1]).addr, Step::Merge);
        let report = purge_tombstones(driver, HOUR).await.unwrap();
        assert_eq!((report.failed, report.purged), (1, 0));
        assert_eq!(cluster.copies(key), vec![Some(tombstone.clone()); 3]);

        // The purge request cannot reach an owner: it and the driver keep the tombstone.
        cluster.network.repair();
        cluster
            .network
            .break_calls(cluster.node(&owners[2]).addr, Step::Purge);
        let report = purge_tombstones(driver, HOUR).await.unwrap();
        assert_eq!((report.failed, report.purged), (1, 0));
        assert_eq!(
            cluster.copies(key),
            vec![Some(tombstone.clone()), None, Some(tombstone)]
        );

        cluster.network.repair();
        let report = purge_tombstones(driver, HOUR).await.unwrap();
        assert_eq!((report.failed, report.purged), (0, 1));
        assert_eq!(cluster.copies(key), vec![None, None, None]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_pages_through_every_local_entry() {
    bounded(async {
        let cluster = TestCluster::start(4);
        let keys: Vec<String> = (0..9).map(|i| format!("paged-{i}")).collect();
        for key in &keys {
            cluster
                .place(&deleted(key, 2 * HOUR), &cluster.owners(key))
                .await;
        }
        let mut purged = 0;
        for node in &cluster.nodes {
            purged += purge_in_pages(&node.notes, HOUR, 2).await.unwrap().purged;
        }
        assert_eq!(purged, 9);
        for key in &keys {
            assert_eq!(cluster.copies(key), vec![None, None, None], "{key}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_purger_runs_every_added_table_and_leaves_full_copies_alone() {
    bounded(async {
        let cluster = TestCluster::start(3);
        let node = &cluster.nodes[0];
        let settings =
            Table::<Settings>::new(Arc::clone(&node.system), Replication::FullCopy).unwrap();
        let setting = deleted("setting", 2 * HOUR);
        settings.local_merge(&setting).await.unwrap();
        let key = (0..)
            .map(|i| format!("note-{i}"))
            .find(|key| cluster.owners(key)[0] == node.id)
            .unwrap();
        cluster
            .place(&deleted(&key, 2 * HOUR), &cluster.owners(&key))
            .await;

        let purger = TombstonePurger::default();
        purger.add_table(node.notes.clone());
        purger.add_table(settings.clone());
        let outcomes: BTreeMap<&str, PurgeReport> = purger
            .purge_all(HOUR)
            .await
            .into_iter()
            .map(|purge| (purge.table, purge.outcome.unwrap()))
            .collect();
        assert_eq!(outcomes.len(), 2);
        assert_eq!(outcomes[Notes::TABLE_NAME].purged, 1);
        assert_eq!(outcomes[Settings::TABLE_NAME], PurgeReport::default());
        assert_eq!(
            settings.local_get(&"setting".to_owned()).unwrap(),
            Some(setting)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_requests_for_unregistered_tables_are_refused() {
    bounded(async {
        let cluster = TestCluster::start(3);
        let system = &cluster.nodes[0].system;
        let answer = system
            .handle_request(TableRequest::PurgeIfEqual {
                table: "paxos_like_state".to_owned(),
                key: Payload::from(&b"k"[..]),
                entry: Payload::from(&b"v"[..]),
            })
            .await;
        assert!(matches!(answer, TableResponse::Failed(_)), "{answer:?}");
    })
    .await;
}

#[test]
fn block_refs_are_tombstoned_once_every_reference_is_removed() {
    let at = |millis: u64| Stamp::new(millis << HLC_COUNTER_BITS, 1);
    let refs = |registers: Vec<(&str, Lww<()>)>| BlockRefs {
        hash: [0; 32],
        refs: registers
            .into_iter()
            .map(|(version, register)| (version.to_owned(), register))
            .collect(),
    };
    let removed = refs(vec![
        ("a", Lww::tombstone(at(10))),
        ("b", Lww::tombstone(at(30))),
    ]);
    assert_eq!(BlockRefsSchema::tombstoned_since(&removed), Some(30));
    let still_used = refs(vec![
        ("a", Lww::tombstone(at(10))),
        ("b", Lww::new(at(5), ())),
    ]);
    assert_eq!(BlockRefsSchema::tombstoned_since(&still_used), None);
    assert_eq!(BlockRefsSchema::tombstoned_since(&refs(Vec::new())), None);
}
