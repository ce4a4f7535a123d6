//! In-process clusters with real TLS RPC on 127.0.0.1 (port 0): every node has its own temp
//! dir (sled metadata and block files), a [`BlockService`] on its own RPC server, and a
//! table system (for the block-reference table) on another. Every test is bounded.

mod failures;
mod placement;
mod refs;
mod resync;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ring::NodeId;

use super::{BlockConfig, BlockHash, BlockRefTable, BlockService};
use crate::cluster::testing::{
    bounded_by, eventually_async as eventually, serve_on, test_block_config, test_rpc_config,
    LoopbackCluster, LoopbackNode, LoopbackOptions, SETTLE_BOUND,
};
use crate::cluster::{QuorumPolicy, Replication};
use crate::rpc::{ClusterSecret, RpcServer};

/// Upper bound for any one test.
const TEST_BOUND: Duration = Duration::from_secs(60);

struct BlockNode {
    id: NodeId,
    addr: SocketAddr,
    service: Arc<BlockService>,
    refs: BlockRefTable,
    server: Option<RpcServer>,
    _table_server: Option<RpcServer>,
    _dir: tempfile::TempDir,
}

impl BlockNode {
    /// The block side of `node`, with the block-reference table on its table system.
    fn wrap(mut node: LoopbackNode) -> BlockNode {
        let blocks = node.take_blocks();
        BlockNode {
            refs: BlockRefTable::new(Arc::clone(&node.system), Replication::DEFAULT_SHARDED)
                .unwrap(),
            id: node.id,
            addr: blocks.addr,
            service: blocks.service,
            server: blocks.server,
            _table_server: node.table_server,
            _dir: node.dir,
        }
    }
}

struct BlockCluster {
    nodes: Vec<BlockNode>,
    secret: ClusterSecret,
}

impl BlockCluster {
    /// `count` nodes `n0..`, one zone, N=3 W=2 with `policy`.
    async fn start(count: usize, policy: QuorumPolicy) -> BlockCluster {
        let block_config = BlockConfig {
            policy,
            scrub_pause: Duration::from_millis(1),
            ..test_block_config()
        };
        let options =
            LoopbackOptions::new(count, "block tests shared secret").with_blocks(block_config);
        let cluster = LoopbackCluster::start(options).await;
        BlockCluster {
            nodes: cluster.nodes.into_iter().map(BlockNode::wrap).collect(),
            secret: cluster.secret,
        }
    }

    fn node(&self, id: &NodeId) -> &BlockNode {
        self.nodes.iter().find(|node| &node.id == id).unwrap()
    }

    fn owners(&self, hash: &BlockHash) -> Vec<NodeId> {
        self.nodes[0].service.replicas_of(hash)
    }

    /// The nodes holding an intact copy of `hash`.
    async fn holders(&self, hash: BlockHash) -> Vec<NodeId> {
        let mut holders = Vec::new();
        for node in &self.nodes {
            if node.service.has_local(hash).await.unwrap() {
                holders.push(node.id.clone());
            }
        }
        holders
    }

    /// Stops `id`'s block server: its files survive, its port is released.
    async fn stop(&mut self, id: &NodeId) {
        let node = self.nodes.iter_mut().find(|node| &node.id == id).unwrap();
        node.server.take().unwrap().shutdown().await;
    }

    /// Restarts `id`'s block server on the address it had.
    async fn restart(&mut self, id: &NodeId) {
        let node = self.nodes.iter_mut().find(|node| &node.id == id).unwrap();
        node.server = Some(serve_on(node.addr, &self.secret, Arc::clone(&node.service)).await);
    }
}

/// A block (and its hash) whose owners include none of `excluded`; `seed` varies the content.
fn block_avoiding(cluster: &BlockCluster, excluded: &[&NodeId], seed: &str) -> (BlockHash, Bytes) {
    for attempt in 0.. {
        let data = Bytes::from(format!("{seed} block {attempt} ").repeat(2_000));
        let hash: BlockHash = blake3::hash(&data).into();
        let owners = cluster.owners(&hash);
        if excluded.iter().all(|node| !owners.contains(node)) {
            return (hash, data);
        }
    }
    unreachable!("the loop only ends by returning")
}

/// Runs `test` under [`TEST_BOUND`].
async fn bounded(test: impl std::future::Future<Output = ()>) {
    bounded_by(TEST_BOUND, test).await;
}
