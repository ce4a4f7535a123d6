//! In-process clusters with real RPC on 127.0.0.1 (port 0): every node has its own sled
//! database in a temp dir, its own [`TableSystem`] and RPC server. Every test is bounded.

mod handoff;
mod replication;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ring::{Layout, NodeId, NodeInfo, Ring};
use serde::{Deserialize, Serialize};

use super::{
    Crdt, Lww, QuorumPolicy, Replication, Stamp, StaticLiveness, SystemConfig, Table, TableSchema,
    TableSystem,
};
use crate::rpc::{ClusterSecret, RpcConfig, RpcServer};
use crate::store::codec::Record;
use crate::store::kv::{KvStore, SledKv};

/// Upper bound for any one test.
const TEST_BOUND: Duration = Duration::from_secs(60);
/// Upper bound for background work (detached writes, repairs, hint replay) to show.
const SETTLE_BOUND: Duration = Duration::from_secs(20);

/// The test table's entry: a key and a last-writer-wins string.
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
    const NAME: &'static str = "note";
}

struct Notes;

impl TableSchema for Notes {
    const TABLE_NAME: &'static str = "notes";
    type Entry = Note;
    type Key = String;

    fn key_of(entry: &Note) -> String {
        entry.key.clone()
    }

    fn encode_key(key: &String) -> Vec<u8> {
        key.as_bytes().to_vec()
    }
}

/// Hybrid-clock values for test versions: strictly increasing across the test binary.
static NEXT_HLC: AtomicU64 = AtomicU64::new(1_000);

/// A new version of `key`, newer than every version made before it.
fn note(key: &str, value: &str) -> Note {
    let hlc = NEXT_HLC.fetch_add(1, Ordering::Relaxed);
    Note {
        key: key.to_owned(),
        register: Lww::new(Stamp::new(hlc, 7), value.to_owned()),
    }
}

fn value_of(entry: &Option<Note>) -> Option<&str> {
    entry
        .as_ref()
        .and_then(|note| note.register.value.as_deref())
}

struct TestNode {
    id: NodeId,
    addr: SocketAddr,
    system: Arc<TableSystem>,
    sharded: Table<Notes>,
    server: Option<RpcServer>,
    _dir: tempfile::TempDir,
}

struct TestCluster {
    nodes: Vec<TestNode>,
    secret: ClusterSecret,
}

fn rpc_config() -> RpcConfig {
    RpcConfig {
        connect_timeout: Duration::from_secs(1),
        // Short pauses so a restarted node is found again within a test's patience.
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        ..RpcConfig::default()
    }
}

impl TestCluster {
    /// `count` nodes `n0..`, one zone, replication 3; the sharded table is N=3, W=2, R=2
    /// with `policy`.
    async fn start(count: usize, policy: QuorumPolicy) -> TestCluster {
        // Every read asks every replica, so read repair is deterministic in most tests.
        TestCluster::start_with(count, policy, 1).await
    }

    /// Like [`TestCluster::start`], with one read in `full_read_every` asking every replica
    /// (see `SystemConfig::full_read_every`).
    async fn start_with(count: usize, policy: QuorumPolicy, full_read_every: u64) -> TestCluster {
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
        let secret = ClusterSecret::new("cluster tests shared secret").unwrap();
        let config = SystemConfig {
            call_timeout: Duration::from_secs(2),
            rpc: rpc_config(),
            full_read_every,
            ..SystemConfig::default()
        };
        let mut nodes = Vec::new();
        let mut livenesses = Vec::new();
        for id in &ids {
            let dir = tempfile::tempdir().unwrap();
            let kv: Arc<dyn KvStore> = Arc::new(SledKv::open(&dir.path().join("meta")).unwrap());
            let liveness = Arc::new(StaticLiveness::new(
                id.clone(),
                Arc::clone(&ring),
                HashMap::new(),
            ));
            let system =
                TableSystem::new(liveness.clone(), kv, secret.clone(), config.clone()).unwrap();
            let sharded = Table::<Notes>::new(Arc::clone(&system), Replication::DEFAULT_SHARDED)
                .unwrap()
                .with_quorum_policy(policy);
            let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
            let server =
                RpcServer::bind(loopback, secret.clone(), Arc::clone(&system), rpc_config())
                    .await
                    .unwrap();
            nodes.push(TestNode {
                id: id.clone(),
                addr: server.local_addr(),
                system,
                sharded,
                server: Some(server),
                _dir: dir,
            });
            livenesses.push(liveness);
        }
        for liveness in &livenesses {
            for node in &nodes {
                liveness.set_addr(node.id.clone(), node.addr);
            }
        }
        TestCluster { nodes, secret }
    }

    fn node(&self, id: &NodeId) -> &TestNode {
        self.nodes.iter().find(|node| &node.id == id).unwrap()
    }

    /// The first node that does not own `key` (to coordinate from outside its replicas).
    fn outsider(&self, key: &str) -> &TestNode {
        let owners = self.nodes[0].sharded.replicas_of(&key.to_owned());
        self.nodes
            .iter()
            .find(|node| !owners.contains(&node.id))
            .unwrap()
    }

    fn owners(&self, key: &str) -> Vec<NodeId> {
        self.nodes[0].sharded.replicas_of(&key.to_owned())
    }

    /// Stops `id`'s RPC server: the node's storage survives, its port is released.
    async fn stop(&mut self, id: &NodeId) {
        let node = self.nodes.iter_mut().find(|node| &node.id == id).unwrap();
        node.server.take().unwrap().shutdown().await;
    }

    /// Restarts `id`'s RPC server on the address it had.
    async fn restart(&mut self, id: &NodeId) {
        let secret = self.secret.clone();
        let node = self.nodes.iter_mut().find(|node| &node.id == id).unwrap();
        let server = RpcServer::bind(node.addr, secret, Arc::clone(&node.system), rpc_config())
            .await
            .unwrap();
        node.server = Some(server);
    }

    /// Hints held anywhere in the cluster, as (holder, owner).
    fn hints(&self) -> Vec<(NodeId, NodeId)> {
        let mut all = Vec::new();
        for node in &self.nodes {
            for hint in node.system.pending_hints().unwrap() {
                all.push((node.id.clone(), hint.owner));
            }
        }
        all
    }
}

/// Runs `test` under [`TEST_BOUND`].
async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("test exceeded its time bound");
}

/// Polls `condition` every 20 ms until it holds; panics after [`SETTLE_BOUND`].
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + SETTLE_BOUND;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
