//! In-process clusters with real TLS RPC on 127.0.0.1 (port 0): every node has its own temp
//! dir (sled metadata and block files), a [`BlockService`] on its own RPC server, and a
//! table system (for the block-reference table) on another. Every test is bounded.

mod failures;
mod placement;
mod refs;
mod resync;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ring::{Layout, NodeId, NodeInfo, Ring};

use super::{BlockConfig, BlockHash, BlockRefTable, BlockService};
use crate::cluster::{QuorumPolicy, Replication, StaticLiveness, SystemConfig, TableSystem};
use crate::rpc::{ClusterSecret, RpcConfig, RpcServer};
use crate::store::blocks::{BlockStore, OsBlockIo};
use crate::store::kv::{KvStore, SledKv};

/// Upper bound for any one test.
const TEST_BOUND: Duration = Duration::from_secs(60);
/// Upper bound for background work (detached copies, repairs, handoffs) to show.
const SETTLE_BOUND: Duration = Duration::from_secs(20);

struct BlockNode {
    id: NodeId,
    addr: SocketAddr,
    service: Arc<BlockService>,
    refs: BlockRefTable,
    server: Option<RpcServer>,
    _table_server: RpcServer,
    _dir: tempfile::TempDir,
}

struct BlockCluster {
    nodes: Vec<BlockNode>,
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

impl BlockCluster {
    /// `count` nodes `n0..`, one zone, N=3 W=2 with `policy`.
    async fn start(count: usize, policy: QuorumPolicy) -> BlockCluster {
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
        let secret = ClusterSecret::new("block tests shared secret").unwrap();
        let block_config = BlockConfig {
            policy,
            call_timeout: Duration::from_secs(2),
            scrub_pause: Duration::from_millis(1),
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
        let mut views = Vec::new();
        for id in &ids {
            let dir = tempfile::tempdir().unwrap();
            let kv: Arc<dyn KvStore> = Arc::new(SledKv::open(&dir.path().join("meta")).unwrap());
            let store =
                Arc::new(BlockStore::open(dir.path().join("blocks"), Arc::new(OsBlockIo)).unwrap());
            // Blocks and tables answer on different ports, so each needs its own view.
            let block_view = Arc::new(StaticLiveness::new(
                id.clone(),
                Arc::clone(&ring),
                HashMap::new(),
            ));
            let table_view = Arc::new(StaticLiveness::new(
                id.clone(),
                Arc::clone(&ring),
                HashMap::new(),
            ));
            let service = BlockService::new(
                block_view.clone(),
                store,
                Arc::clone(&kv),
                secret.clone(),
                block_config.clone(),
            )
            .unwrap();
            let system =
                TableSystem::new(table_view.clone(), kv, secret.clone(), table_config.clone())
                    .unwrap();
            let refs =
                BlockRefTable::new(Arc::clone(&system), Replication::DEFAULT_SHARDED).unwrap();
            let server =
                RpcServer::bind(loopback, secret.clone(), Arc::clone(&service), rpc_config())
                    .await
                    .unwrap();
            let table_server = RpcServer::bind(loopback, secret.clone(), system, rpc_config())
                .await
                .unwrap();
            views.push((block_view, table_view, table_server.local_addr()));
            nodes.push(BlockNode {
                id: id.clone(),
                addr: server.local_addr(),
                service,
                refs,
                server: Some(server),
                _table_server: table_server,
                _dir: dir,
            });
        }
        for (block_view, table_view, _) in &views {
            for (node, (_, _, table_addr)) in nodes.iter().zip(&views) {
                block_view.set_addr(node.id.clone(), node.addr);
                table_view.set_addr(node.id.clone(), *table_addr);
            }
        }
        BlockCluster { nodes, secret }
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
        let secret = self.secret.clone();
        let node = self.nodes.iter_mut().find(|node| &node.id == id).unwrap();
        let server = RpcServer::bind(node.addr, secret, Arc::clone(&node.service), rpc_config())
            .await
            .unwrap();
        node.server = Some(server);
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
async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("test exceeded its time bound");
}

/// Polls `condition` every 20 ms until it holds; panics after [`SETTLE_BOUND`].
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + SETTLE_BOUND;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
