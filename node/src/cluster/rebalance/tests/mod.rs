//! In-process clusters (real RPC on 127.0.0.1) holding a sharded table and blocks, moved by
//! the rebalancer when a node joins or leaves the layout, with a reader running throughout.

mod moves;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ring::{NodeId, Ring};

use super::Rebalancer;
use crate::cluster::blocks::{BlockConfig, BlockHash, BlockService};
use crate::cluster::testing::{
    bounded_by, next_stamp, note_table, one_zone_layout, test_block_config, LoopbackCluster,
    LoopbackOptions, Note,
};
use crate::cluster::{
    Lww, QuorumPolicy, Replication, StaticLiveness, Table, TableSchema, TableSystem,
};
use crate::rpc::RpcServer;

/// Upper bound for any one test.
const TEST_BOUND: Duration = Duration::from_secs(120);
/// Upper bound for replication of the initial data to show.
const SETTLE_BOUND: Duration = Duration::from_secs(30);
/// Entries and blocks the clusters hold.
const ENTRY_COUNT: usize = 300;
const BLOCK_COUNT: usize = 50;

note_table!(
    /// The sharded table the rebalancer moves.
    Items,
    "rebalance-items"
);

/// A new version of `key`, newer than every version made before it.
fn item(key: &str) -> Note {
    Note {
        key: key.to_owned(),
        register: Lww::new(next_stamp(3), format!("value of {key}")),
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
    _servers: (Option<RpcServer>, Option<RpcServer>),
    _dir: tempfile::TempDir,
}

/// Nodes `n0..n{count-1}` all running; which of them are in the layout is up to the ring.
struct RebalanceCluster {
    nodes: Vec<RebalanceNode>,
    ring: Arc<Ring>,
}

impl RebalanceCluster {
    /// `count` running nodes; the first layout (version 1) holds the first `members`.
    async fn start(count: usize, members: usize) -> RebalanceCluster {
        let block_config = BlockConfig {
            policy: QuorumPolicy::Sloppy,
            ..test_block_config()
        };
        let mut options =
            LoopbackOptions::new(count, "rebalance tests shared secret").with_blocks(block_config);
        options.members = members;
        let cluster = LoopbackCluster::start(options).await;
        let nodes = cluster
            .nodes
            .into_iter()
            .map(|mut node| {
                let blocks = node.take_blocks();
                let items =
                    Table::<Items>::new(node.system.clone(), Replication::DEFAULT_SHARDED).unwrap();
                let rebalancer =
                    Rebalancer::new(node.system.clone(), Some(blocks.service.clone()), 3);
                rebalancer.add_table::<Items>(3);
                RebalanceNode {
                    id: node.id,
                    table_view: node.table_view,
                    block_view: blocks.view,
                    system: node.system,
                    items,
                    blocks: blocks.service,
                    rebalancer,
                    _servers: (node.table_server, blocks.server),
                    _dir: node.dir,
                }
            })
            .collect();
        RebalanceCluster {
            nodes,
            ring: cluster.ring,
        }
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
async fn bounded(test: impl std::future::Future<Output = ()>) {
    bounded_by(TEST_BOUND, test).await;
}
