//! In-process clusters (real RPC on 127.0.0.1) holding a sharded table and blocks, moved by
//! the rebalancer when a node joins or leaves the layout, with a reader running throughout.

mod moves;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ring::{Layout, NodeId, NodeInfo, Ring};
use serde::{Deserialize, Serialize};

use super::Rebalancer;
use crate::cluster::blocks::{BlockConfig, BlockHash, BlockService};
use crate::cluster::{
    Crdt, Lww, QuorumPolicy, Replication, Stamp, StaticLiveness, SystemConfig, Table, TableSchema,
    TableSystem,
};
use crate::rpc::{ClusterSecret, RpcConfig, RpcServer};
use crate::store::blocks::{BlockStore, OsBlockIo};
use crate::store::codec::Record;
use crate::store::kv::{KvStore, SledKv};

/// Upper bound for any one test.
const TEST_BOUND: Duration = Duration::from_secs(120);
/// Upper bound for replication of the initial data to show.
const SETTLE_BOUND: Duration = Duration::from_secs(30);
/// Entries and blocks the clusters hold.
const ENTRY_COUNT: usize = 300;
const BLOCK_COUNT: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Item {
    key: String,
    register: Lww<String>,
}

impl Crdt for Item {
    fn merge(&mut self, other: &Self) {
        self.register.merge(&other.register);
    }
}

impl Record for Item {
    const FORMAT_VERSION: u8 = 1;
    const NAME: &'static str = "rebalance test item";
}

struct Items;

impl TableSchema for Items {
    const TABLE_NAME: &'static str = "rebalance-items";
    type Entry = Item;
    type Key = String;

    fn key_of(entry: &Item) -> String {
        entry.key.clone()
    }

    fn encode_key(key: &String) -> Vec<u8> {
        key.as_bytes().to_vec()
    }
}

static NEXT_HLC: AtomicU64 = AtomicU64::new(1_000);

fn item(key: &str) -> Item {
    Item {
        key: key.to_owned(),
        register: Lww::new(
            Stamp::new(NEXT_HLC.fetch_add(1, Ordering::Relaxed), 3),
            format!("value of {key}"),
        ),
    }
}

fn rpc_config() -> RpcConfig {
    RpcConfig {
        connect_timeout: Duration::from_secs(1),
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        ..RpcConfig::default()
    }
}

struct RebalanceNode {
    id: NodeId,
    table_view: Arc<StaticLiveness>,
    block_view: Arc<StaticLiveness>,
    system: Arc<TableSystem>,
    items: Table<Items>,
    blocks: Arc<BlockService>,
    rebalancer: Arc<Rebalancer>,
    _servers: (RpcServer, RpcServer),
    _dir: tempfile::TempDir,
}

/// Nodes `n0..n{count-1}` all running; which of them are in the layout is up to the ring.
struct RebalanceCluster {
    nodes: Vec<RebalanceNode>,
    ring: Arc<Ring>,
}

/// A one-zone layout of `members`, replication 3.
fn layout(version: u64, members: &[&NodeId]) -> Layout {
    let infos = members
        .iter()
        .map(|id| NodeInfo {
            id: (*id).clone(),
            rpc_addr: String::new(),
            zone: "z".into(),
            capacity: 1,
        })
        .collect();
    Layout::new(version, infos, 3).unwrap()
}

impl RebalanceCluster {
    /// `count` running nodes; the first layout (version 1) holds the first `members`.
    async fn start(count: usize, members: usize) -> RebalanceCluster {
        let ids: Vec<NodeId> = (0..count).map(|i| NodeId::new(format!("n{i}"))).collect();
        let ring = Arc::new(Ring::new(&layout(
            1,
            &ids.iter().take(members).collect::<Vec<_>>(),
        )));
        let secret = ClusterSecret::new("rebalance tests shared secret").unwrap();
        let block_config = BlockConfig {
            policy: QuorumPolicy::Sloppy,
            call_timeout: Duration::from_secs(2),
            rpc: rpc_config(),
            ..BlockConfig::default()
        };
        let table_config = SystemConfig {
            call_timeout: Duration::from_secs(2),
            rpc: rpc_config(),
            ..SystemConfig::default()
        };
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut nodes = Vec::new();
        for id in &ids {
            let dir = tempfile::tempdir().unwrap();
            let kv: Arc<dyn KvStore> = Arc::new(SledKv::open(&dir.path().join("meta")).unwrap());
            let store =
                Arc::new(BlockStore::open(dir.path().join("blocks"), Arc::new(OsBlockIo)).unwrap());
            let view = || {
                Arc::new(StaticLiveness::new(
                    id.clone(),
                    ring.clone(),
                    HashMap::new(),
                ))
            };
            let (table_view, block_view) = (view(), view());
            let system = TableSystem::new(
                table_view.clone(),
                kv.clone(),
                secret.clone(),
                table_config.clone(),
            )
            .unwrap();
            let blocks = BlockService::new(
                block_view.clone(),
                store,
                kv,
                secret.clone(),
                block_config.clone(),
            )
            .unwrap();
            let items = Table::<Items>::new(system.clone(), Replication::DEFAULT_SHARDED).unwrap();
            let rebalancer = Rebalancer::new(system.clone(), Some(blocks.clone()), 3);
            rebalancer.add_table::<Items>(3);
            let table_server =
                RpcServer::bind(loopback, secret.clone(), system.clone(), rpc_config())
                    .await
                    .unwrap();
            let block_server =
                RpcServer::bind(loopback, secret.clone(), blocks.clone(), rpc_config())
                    .await
                    .unwrap();
            nodes.push(RebalanceNode {
                id: id.clone(),
                table_view,
                block_view,
                system,
                items,
                blocks,
                rebalancer,
                _servers: (table_server, block_server),
                _dir: dir,
            });
        }
        for node in &nodes {
            for peer in &nodes {
                node.table_view
                    .set_addr(peer.id.clone(), peer._servers.0.local_addr());
                node.block_view
                    .set_addr(peer.id.clone(), peer._servers.1.local_addr());
            }
        }
        RebalanceCluster { nodes, ring }
    }

    fn ids(&self) -> Vec<NodeId> {
        self.nodes.iter().map(|node| node.id.clone()).collect()
    }

    /// Switches every node's view to `ring`.
    fn set_ring(&mut self, ring: Ring) {
        self.ring = Arc::new(ring);
        for node in &self.nodes {
            node.table_view.set_ring(self.ring.clone());
            node.block_view.set_ring(self.ring.clone());
        }
    }

    fn entry_owners(&self, key: &str) -> Vec<NodeId> {
        owners(&self.ring, Items::hash_key(&key.to_owned()))
    }

    fn block_owners(&self, hash: &BlockHash) -> Vec<NodeId> {
        owners(&self.ring, crate::cluster::blocks::block_position(hash))
    }

    /// Writes the entries and blocks through the first node and waits until every owner
    /// holds every one of them.
    async fn fill(&self) -> (Vec<String>, Vec<(BlockHash, Bytes)>) {
        let keys: Vec<String> = (0..ENTRY_COUNT).map(|i| format!("key-{i:04}")).collect();
        let writer = &self.nodes[0];
        for key in &keys {
            writer.items.insert(&item(key)).await.unwrap();
        }
        let mut blocks = Vec::new();
        for i in 0..BLOCK_COUNT {
            let data = Bytes::from(format!("block number {i} of the rebalance test").repeat(20));
            let hash = *blake3::hash(&data).as_bytes();
            writer.blocks.put_block(hash, data.clone()).await.unwrap();
            blocks.push((hash, data));
        }
        let deadline = tokio::time::Instant::now() + SETTLE_BOUND;
        while self.misplaced(&keys, &blocks).await > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "initial writes never settled"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (keys, blocks)
    }

    /// Copies held where the current ring does not place them, plus copies missing where it
    /// does.
    async fn misplaced(&self, keys: &[String], blocks: &[(BlockHash, Bytes)]) -> usize {
        let mut wrong = 0;
        for key in keys {
            let owners = self.entry_owners(key);
            for node in &self.nodes {
                let held = node.items.local_get(key).unwrap().is_some();
                wrong += usize::from(held != owners.contains(&node.id));
            }
        }
        for (hash, _) in blocks {
            let owners = self.block_owners(hash);
            for node in &self.nodes {
                let held = node.blocks.has_local(*hash).await.unwrap();
                wrong += usize::from(held != owners.contains(&node.id));
            }
        }
        wrong
    }
}

fn owners(ring: &Ring, position: u64) -> Vec<NodeId> {
    ring.preference_list(position)
        .iter()
        .take(3)
        .cloned()
        .collect()
}

/// Reads every key and block through every node of `readers` in turn until `stop`, panicking
/// on the first miss; returns the number of complete sweeps.
async fn read_everything_until(
    readers: Vec<(Table<Items>, Arc<BlockService>)>,
    keys: Vec<String>,
    blocks: Vec<(BlockHash, Bytes)>,
    stop: Arc<AtomicBool>,
) -> usize {
    let mut sweeps = 0;
    loop {
        for (round, (items, block_service)) in readers.iter().enumerate() {
            for key in keys.iter().skip(round % 2).step_by(2) {
                let read = items.get(key).await.unwrap();
                assert!(read.is_some(), "{key} unreadable during the rebalance");
            }
            for (hash, data) in blocks.iter().skip(round % 2).step_by(2) {
                let read = block_service.get_block(*hash).await;
                assert_eq!(read.as_ref().ok(), Some(data), "block unreadable: {read:?}");
            }
        }
        sweeps += 1;
        if stop.load(Ordering::Relaxed) {
            return sweeps;
        }
    }
}

/// Runs `test` under [`TEST_BOUND`].
async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("test exceeded its time bound");
}
