//! In-process clusters with real TLS RPC: each node has its own sled store, table system,
//! table RPC server and anti-entropy RPC server. Every test is bounded in time.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ring::{Layout, NodeId, NodeInfo, Ring};
use serde::{Deserialize, Serialize};

use super::groups::local_groups;
use super::{AddressBook, AntiEntropy, AntiEntropyConfig, RoundReport, RpcAeTransport};
use crate::cluster::local::entry_key;
use crate::cluster::{
    Crdt, Lww, Replication, Stamp, StaticLiveness, SystemConfig, Table, TableSchema, TableSystem,
};
use crate::rpc::{ClusterSecret, RpcConfig, RpcServer};
use crate::store::codec::{self, Record};
use crate::store::kv::{KvStore, SledKv, Table as KvTable};

mod budget;

const TEST_BOUND: Duration = Duration::from_secs(90);
const SETTLE_BOUND: Duration = Duration::from_secs(20);
const TABLE: &str = "ae_notes";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Note {
    key: String,
    register: Lww<String>,
}

impl Crdt for Note {
    fn merge(&mut self, other: &Self) {
        self.register.merge(&other.register);
    }
}

impl Record for Note {
    const FORMAT_VERSION: u8 = 1;
    const NAME: &'static str = "ae note";
}

struct Notes;

impl TableSchema for Notes {
    const TABLE_NAME: &'static str = TABLE;
    type Entry = Note;
    type Key = String;

    fn key_of(entry: &Note) -> String {
        entry.key.clone()
    }

    fn encode_key(key: &String) -> Vec<u8> {
        key.as_bytes().to_vec()
    }
}

static NEXT_HLC: AtomicU64 = AtomicU64::new(1_000);

/// A version of `key` newer than every version made before it.
fn note(key: &str, value: &str) -> Note {
    Note {
        key: key.to_owned(),
        register: Lww::new(
            Stamp::new(NEXT_HLC.fetch_add(1, Ordering::Relaxed), 7),
            value.to_owned(),
        ),
    }
}

struct AeNode {
    id: NodeId,
    liveness: Arc<StaticLiveness>,
    kv: Arc<dyn KvStore>,
    table: Table<Notes>,
    engine: Arc<AntiEntropy>,
    _table_server: RpcServer,
    ae_server: Option<RpcServer>,
    _dir: tempfile::TempDir,
}

impl AeNode {
    /// Deletes `key` from this node's store, behind the table's back.
    fn forget(&self, key: &str) {
        self.kv
            .remove(KvTable::Replicated, &entry_key(TABLE, key.as_bytes()))
            .unwrap();
    }

    /// Overwrites this node's copy of the entry's key with `entry`, even if older.
    fn overwrite(&self, entry: &Note) {
        let db_key = entry_key(TABLE, entry.key.as_bytes());
        let bytes = codec::encode(entry).unwrap();
        self.kv
            .insert(KvTable::Replicated, &db_key, &bytes)
            .unwrap();
    }

    fn group_count(&self) -> usize {
        local_groups(
            &self.liveness_ring(),
            Replication::DEFAULT_SHARDED,
            &self.id,
        )
        .len()
    }

    fn liveness_ring(&self) -> Arc<Ring> {
        use crate::cluster::Liveness;
        self.liveness.ring()
    }
}

struct AeCluster {
    nodes: Vec<AeNode>,
}

fn rpc_config() -> RpcConfig {
    RpcConfig {
        connect_timeout: Duration::from_secs(1),
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        ..RpcConfig::default()
    }
}

impl AeCluster {
    /// `count` nodes, one zone, N = 3, W = 2, R = 2, default anti-entropy settings.
    async fn start(count: usize) -> AeCluster {
        AeCluster::start_with(count, AntiEntropyConfig::default()).await
    }

    /// Like [`AeCluster::start`], with anti-entropy tuned by `config`.
    async fn start_with(count: usize, ae_config: AntiEntropyConfig) -> AeCluster {
        let ids: Vec<NodeId> = (0..count).map(|i| NodeId::new(format!("n{i}"))).collect();
        let infos = ids
            .iter()
            .map(|id| NodeInfo {
                id: id.clone(),
                rpc_addr: String::new(),
                zone: "z".into(),
                capacity: 1,
            })
            .collect();
        let ring = Arc::new(Ring::new(&Layout::new(1, infos, 3).unwrap()));
        let secret = ClusterSecret::new("anti-entropy tests shared secret").unwrap();
        let ae_addrs: Arc<RwLock<HashMap<NodeId, SocketAddr>>> = Arc::default();
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut nodes = Vec::new();
        for id in &ids {
            let dir = tempfile::tempdir().unwrap();
            let kv: Arc<dyn KvStore> = Arc::new(SledKv::open(&dir.path().join("meta")).unwrap());
            let liveness = Arc::new(StaticLiveness::new(
                id.clone(),
                Arc::clone(&ring),
                HashMap::new(),
            ));
            let config = SystemConfig {
                call_timeout: Duration::from_secs(2),
                rpc: rpc_config(),
                ..SystemConfig::default()
            };
            let system =
                TableSystem::new(liveness.clone(), Arc::clone(&kv), secret.clone(), config)
                    .unwrap();
            let table =
                Table::<Notes>::new(Arc::clone(&system), Replication::DEFAULT_SHARDED).unwrap();
            let book = Arc::clone(&ae_addrs);
            let addresses: AddressBook =
                Arc::new(move |node: &NodeId| book.read().unwrap().get(node).copied());
            let transport = RpcAeTransport::new(
                secret.clone(),
                id,
                rpc_config(),
                Duration::from_secs(5),
                addresses,
            )
            .unwrap();
            let engine =
                AntiEntropy::new(Arc::clone(&system), Arc::new(transport), ae_config.clone());
            engine.register::<Notes>(Replication::DEFAULT_SHARDED);
            let table_server = RpcServer::bind(loopback, secret.clone(), system, rpc_config())
                .await
                .unwrap();
            let ae_server =
                RpcServer::bind(loopback, secret.clone(), Arc::clone(&engine), rpc_config())
                    .await
                    .unwrap();
            ae_addrs
                .write()
                .unwrap()
                .insert(id.clone(), ae_server.local_addr());
            nodes.push(AeNode {
                id: id.clone(),
                liveness,
                kv,
                table,
                engine,
                _table_server: table_server,
                ae_server: Some(ae_server),
                _dir: dir,
            });
        }
        let table_addrs: Vec<(NodeId, SocketAddr)> = nodes
            .iter()
            .map(|node| (node.id.clone(), node._table_server.local_addr()))
            .collect();
        for node in &nodes {
            for (id, addr) in &table_addrs {
                node.liveness.set_addr(id.clone(), *addr);
            }
        }
        AeCluster { nodes }
    }

    fn node(&self, id: &NodeId) -> &AeNode {
        self.nodes.iter().find(|node| &node.id == id).unwrap()
    }

    fn owners(&self, key: &str) -> Vec<NodeId> {
        self.nodes[0].table.replicas_of(&key.to_owned())
    }

    /// Writes `count` keys through the table API and waits until all three owners of each
    /// hold it (the third replica's write finishes after the quorum answered).
    async fn write_all(&self, count: usize) -> BTreeMap<String, Note> {
        let mut expected = BTreeMap::new();
        for i in 0..count {
            let entry = note(&format!("key{i:04}"), "v1");
            self.nodes[i % self.nodes.len()]
                .table
                .insert(&entry)
                .await
                .unwrap();
            expected.insert(entry.key.clone(), entry);
        }
        let deadline = tokio::time::Instant::now() + SETTLE_BOUND;
        while self.mismatches(&expected) > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "writes never settled"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        expected
    }

    /// (node, key) pairs where an owner lacks the expected entry or a non-owner holds one.
    fn mismatches(&self, expected: &BTreeMap<String, Note>) -> usize {
        let mut wrong = 0;
        for (key, entry) in expected {
            let owners = self.owners(key);
            for node in &self.nodes {
                let held = node.table.local_get(key).unwrap();
                let want = owners.contains(&node.id).then(|| entry.clone());
                wrong += usize::from(held != want);
            }
        }
        wrong
    }

    /// One round on each node, one after the other, in id order.
    async fn round_everywhere(&self) -> Vec<RoundReport> {
        let mut reports = Vec::new();
        for node in &self.nodes {
            reports.push(node.engine.run_round().await);
        }
        reports
    }
}

async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("test exceeded its time bound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_round_per_node_converges_diverged_replicas() {
    bounded(async {
        let cluster = AeCluster::start(5).await;
        let mut expected = cluster.write_all(500).await;
        // Every (owner, key) pair that ends without the newest entry; each needs one repair.
        let mut stale_pairs = 0;
        for i in 0..140 {
            let key = format!("key{i:04}");
            let owners = cluster.owners(&key);
            let owner = |index: usize| cluster.node(&owners[index % 3]);
            match i {
                // Lost on one replica.
                0..=39 => owner(i).forget(&key),
                // An update that reached one replica only (its hints were lost).
                40..=79 => {
                    let newer = note(&key, "v2");
                    owner(i).table.local_merge(&newer).await.unwrap();
                    expected.insert(key.clone(), newer);
                    stale_pairs += 1;
                }
                // An old version on one replica.
                80..=119 => owner(i).overwrite(&Note {
                    key: key.clone(),
                    register: Lww::new(Stamp::new(1, 9), "ancient".to_owned()),
                }),
                // Lost on two replicas.
                120..=129 => {
                    owner(i).forget(&key);
                    owner(i + 1).forget(&key);
                    stale_pairs += 1;
                }
                // A delete that reached one replica only.
                _ => {
                    let delete = Note {
                        key: key.clone(),
                        register: Lww::tombstone(Stamp::new(
                            NEXT_HLC.fetch_add(1, Ordering::Relaxed),
                            7,
                        )),
                    };
                    owner(i).table.local_merge(&delete).await.unwrap();
                    expected.insert(key.clone(), delete);
                    stale_pairs += 1;
                }
            }
            stale_pairs += 1;
        }
        // Keys written to one replica only, bypassing replication.
        for i in 500..520 {
            let entry = note(&format!("key{i:04}"), "lonely");
            let owners = cluster.owners(&entry.key);
            cluster
                .node(&owners[i % 3])
                .table
                .local_merge(&entry)
                .await
                .unwrap();
            expected.insert(entry.key.clone(), entry);
            stale_pairs += 2;
        }
        assert_eq!(cluster.mismatches(&expected), stale_pairs);

        let reports = cluster.round_everywhere().await;
        for (node, report) in cluster.nodes.iter().zip(&reports) {
            assert!(report.errors.is_empty(), "{}: {:?}", node.id, report.errors);
            assert_eq!(report.groups_compared, node.group_count(), "{}", node.id);
            assert_eq!(report.groups_truncated, 0);
        }
        let repaired: usize = reports.iter().map(RoundReport::entries_repaired).sum();
        assert_eq!(repaired, stale_pairs, "one repair per stale (owner, key)");
        assert_eq!(
            cluster.mismatches(&expected),
            0,
            "replicas did not converge"
        );

        // Identical replicas: one Open per group, answered InSync, nothing else.
        let again = cluster.round_everywhere().await;
        for (node, report) in cluster.nodes.iter().zip(&again) {
            assert!(report.errors.is_empty(), "{}: {:?}", node.id, report.errors);
            assert_eq!(report.groups_compared, node.group_count());
            assert_eq!(report.groups_in_sync, report.groups_compared);
            assert_eq!(report.messages_sent, report.groups_compared);
            assert_eq!(report.entries_repaired(), 0);
            let status = node.engine.status();
            assert_eq!(status.rounds, 2);
            assert_eq!(status.last_round.as_ref(), Some(report));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_peer_is_reported_and_the_other_groups_still_sync() {
    bounded(async {
        let mut cluster = AeCluster::start(5).await;
        let mut expected = cluster.write_all(100).await;
        let victim = cluster.nodes[2].id.clone();
        // Every key the victim does not own loses one replica; everything else stays.
        let mut lost = 0;
        for (key, _) in expected.clone() {
            let owners = cluster.owners(&key);
            if !owners.contains(&victim) {
                cluster.node(&owners[0]).forget(&key);
                lost += 1;
            }
        }
        let newer = note("key0001", "v2");
        let owners = cluster.owners(&newer.key);
        let holder = owners.iter().find(|id| **id != victim).unwrap();
        cluster
            .node(holder)
            .table
            .local_merge(&newer)
            .await
            .unwrap();
        expected.insert(newer.key.clone(), newer);

        // The victim's anti-entropy endpoint dies while membership still believes it up.
        let index = cluster.nodes.iter().position(|n| n.id == victim).unwrap();
        cluster.nodes[index]
            .ae_server
            .take()
            .unwrap()
            .shutdown()
            .await;

        let mut saw_failure = false;
        let mut repaired = 0;
        for node in cluster.nodes.iter().filter(|node| node.id != victim) {
            let report = node.engine.run_round().await;
            repaired += report.entries_repaired();
            for failure in &report.errors {
                assert_eq!(failure.peer.as_ref(), Some(&victim), "{failure:?}");
                assert!(failure.owners.contains(&victim));
            }
            saw_failure |= !report.errors.is_empty();
            // Groups whose first choice failed were synced with their other owner.
            assert_eq!(report.groups_compared, node.group_count(), "{}", node.id);
            assert_eq!(report.groups_unsynced, 0);
        }
        assert!(saw_failure, "no round tried the dead peer");
        assert!(
            repaired > lost,
            "{repaired} repairs for {lost} lost replicas and one update"
        );
        // Only the victim (which ran no round and could not be reached) may still lag.
        for (key, entry) in &expected {
            for owner in cluster.owners(key) {
                if owner != victim {
                    let held = cluster.node(&owner).table.local_get(key).unwrap();
                    assert_eq!(held.as_ref(), Some(entry), "{owner} {key}");
                }
            }
        }

        // Marked down, the victim is skipped without an error.
        for node in &cluster.nodes {
            node.liveness.set_up(&victim, false);
        }
        for node in cluster.nodes.iter().filter(|node| node.id != victim) {
            let report = node.engine.run_round().await;
            assert!(report.errors.is_empty(), "{}: {:?}", node.id, report.errors);
            assert_eq!(report.groups_compared, node.group_count());
        }
    })
    .await;
}
