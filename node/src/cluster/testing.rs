//! Test harness shared by the cluster tests (`cluster::tests`, `tombstones`, `blocks`,
//! `rebalance`) and the clustered S3 backend tests: one place that builds in-process nodes
//! with real TLS RPC on 127.0.0.1 (port 0), a one-zone layout, and the bounded waits.
//!
//! [`LoopbackCluster::start`] builds the nodes; each test module wraps the
//! [`LoopbackNode`]s with the tables or services it exercises. Compiled only for tests.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ring::{Layout, NodeId, NodeInfo, Ring};
use serde::{Deserialize, Serialize};

use super::blocks::{BlockConfig, BlockService};
use super::{Crdt, Lww, Stamp, StaticLiveness, SystemConfig, TableSystem};
use crate::rpc::{ClusterSecret, RpcConfig, RpcHandler, RpcServer};
use crate::store::blocks::{BlockStore, OsBlockIo};
use crate::store::codec::Record;
use crate::store::kv::{KvStore, SledKv};

/// Upper bound for background work (detached writes, repairs, handoffs) to show.
pub(crate) const SETTLE_BOUND: Duration = Duration::from_secs(20);

/// The address every test server binds: loopback, port chosen by the system.
pub(crate) const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// RPC settings for tests: short connect timeout and short reconnect pauses, so a restarted
/// node is found again within a test's patience.
pub(crate) fn test_rpc_config() -> RpcConfig {
    RpcConfig {
        connect_timeout: Duration::from_secs(1),
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        ..RpcConfig::default()
    }
}

/// Serves `handler` on `addr` (port 0 picks one; a stopped node's old address restarts it)
/// with [`test_rpc_config`].
pub(crate) async fn serve_on<H: RpcHandler>(
    addr: SocketAddr,
    secret: &ClusterSecret,
    handler: Arc<H>,
) -> RpcServer {
    RpcServer::bind(addr, secret.clone(), handler, test_rpc_config())
        .await
        .unwrap()
}

/// Table-system settings for tests: 2 s calls over [`test_rpc_config`].
pub(crate) fn test_system_config() -> SystemConfig {
    SystemConfig {
        call_timeout: Duration::from_secs(2),
        rpc: test_rpc_config(),
        ..SystemConfig::default()
    }
}

/// Block-service settings for tests: 2 s calls over [`test_rpc_config`].
pub(crate) fn test_block_config() -> BlockConfig {
    BlockConfig {
        call_timeout: Duration::from_secs(2),
        rpc: test_rpc_config(),
        ..BlockConfig::default()
    }
}

/// Node ids `n0..n{count-1}`.
pub(crate) fn node_ids(count: usize) -> Vec<NodeId> {
    (0..count).map(|i| NodeId::new(format!("n{i}"))).collect()
}

/// A one-zone layout (zone `z`, capacity 1 each) of `members`, replication 3.
pub(crate) fn one_zone_layout(version: u64, members: &[&NodeId]) -> Layout {
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

/// The ring of layout version 1 over all of `ids` (see [`one_zone_layout`]).
pub(crate) fn one_zone_ring(ids: &[NodeId]) -> Arc<Ring> {
    let members: Vec<&NodeId> = ids.iter().collect();
    Arc::new(Ring::new(&one_zone_layout(1, &members)))
}

/// A hand-set liveness view of `ring` from `id`, with no addresses yet.
pub(crate) fn static_view(id: &NodeId, ring: &Arc<Ring>) -> Arc<StaticLiveness> {
    Arc::new(StaticLiveness::new(
        id.clone(),
        Arc::clone(ring),
        HashMap::new(),
    ))
}

/// Runs `test`, panicking if it takes longer than `limit`.
pub(crate) async fn bounded_by(limit: Duration, test: impl Future<Output = ()>) {
    tokio::time::timeout(limit, test)
        .await
        .expect("test exceeded its time bound");
}

/// Polls `condition` every 20 ms until it holds; panics after [`SETTLE_BOUND`].
pub(crate) async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    eventually_async(what, || std::future::ready(condition())).await;
}

/// Like [`eventually`], for a condition that has to await (a remote or disk check).
pub(crate) async fn eventually_async<F, Fut>(what: &str, mut condition: F)
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

/// The test tables' entry: a key and a last-writer-wins string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Note {
    /// The table key.
    pub(crate) key: String,
    /// The value, or a tombstone.
    pub(crate) register: Lww<String>,
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

/// Hybrid-clock values for test versions: strictly increasing across the test binary.
static NEXT_HLC: AtomicU64 = AtomicU64::new(1_000);

/// A stamp newer than every stamp this function made before, from node `node`.
pub(crate) fn next_stamp(node: u64) -> Stamp {
    Stamp::new(NEXT_HLC.fetch_add(1, Ordering::Relaxed), node)
}

/// Declares a test table schema over [`Note`] keyed by its string key; an optional
/// `tombstoned_since = path` hands purge eligibility to that function.
macro_rules! note_table {
    ($(#[$doc:meta])* $schema:ident, $name:literal $(, tombstoned_since = $since:path)?) => {
        $(#[$doc])*
        pub(crate) struct $schema;

        impl $crate::cluster::TableSchema for $schema {
            const TABLE_NAME: &'static str = $name;
            type Entry = $crate::cluster::testing::Note;
            type Key = String;

            fn key_of(entry: &$crate::cluster::testing::Note) -> String {
                entry.key.clone()
            }

            fn encode_key(key: &String) -> Vec<u8> {
                key.as_bytes().to_vec()
            }

            $(
                fn tombstoned_since(entry: &$crate::cluster::testing::Note) -> Option<u64> {
                    $since(entry)
                }
            )?
        }
    };
}
pub(crate) use note_table;

/// What [`LoopbackCluster::start`] builds.
pub(crate) struct LoopbackOptions {
    /// How many nodes run (`n0..`).
    pub(crate) count: usize,
    /// How many of them (the first ones) layout version 1 holds.
    pub(crate) members: usize,
    /// The cluster secret's text.
    pub(crate) secret: &'static str,
    /// Every node's table-system settings.
    pub(crate) system: SystemConfig,
    /// With `Some`, every node also runs a block service, on its own RPC server.
    pub(crate) blocks: Option<BlockConfig>,
}

impl LoopbackOptions {
    /// `count` nodes, all in the layout, tables only, [`test_system_config`].
    pub(crate) fn new(count: usize, secret: &'static str) -> LoopbackOptions {
        LoopbackOptions {
            count,
            members: count,
            secret,
            system: test_system_config(),
            blocks: None,
        }
    }

    /// Every node also runs a block service with `config`.
    pub(crate) fn with_blocks(mut self, config: BlockConfig) -> LoopbackOptions {
        self.blocks = Some(config);
        self
    }
}

/// A node's block service, its liveness view and its RPC server.
pub(crate) struct LoopbackBlocks {
    /// The block service's view (blocks answer on their own port).
    pub(crate) view: Arc<StaticLiveness>,
    /// The block service.
    pub(crate) service: Arc<BlockService>,
    /// The block RPC server (`None` while stopped by a test).
    pub(crate) server: Option<RpcServer>,
    /// The block server's address, kept across restarts.
    pub(crate) addr: SocketAddr,
}

/// One node: its temp dir (sled metadata under `meta`, blocks under `blocks`), its table
/// system on an RPC server, and optionally its block service.
pub(crate) struct LoopbackNode {
    /// The node id.
    pub(crate) id: NodeId,
    /// The table system's liveness view.
    pub(crate) table_view: Arc<StaticLiveness>,
    /// The table system.
    pub(crate) system: Arc<TableSystem>,
    /// The table RPC server (`None` while stopped by a test).
    pub(crate) table_server: Option<RpcServer>,
    /// The table server's address, kept across restarts.
    pub(crate) table_addr: SocketAddr,
    /// The block service, if the options asked for one.
    pub(crate) blocks: Option<LoopbackBlocks>,
    /// The node's files; removed when the node is dropped.
    pub(crate) dir: tempfile::TempDir,
}

impl LoopbackNode {
    /// Moves the block service out, for a test's own node type (panics if the cluster was
    /// started without blocks).
    pub(crate) fn take_blocks(&mut self) -> LoopbackBlocks {
        self.blocks.take().expect("started without blocks")
    }
}

/// Nodes built by [`LoopbackCluster::start`], with the ring and secret they share.
pub(crate) struct LoopbackCluster {
    /// The nodes, `n0` first.
    pub(crate) nodes: Vec<LoopbackNode>,
    /// The ring every view starts with.
    pub(crate) ring: Arc<Ring>,
    /// The shared cluster secret.
    pub(crate) secret: ClusterSecret,
}

impl LoopbackCluster {
    /// Starts the nodes `options` describes and gives every view every server's address.
    pub(crate) async fn start(options: LoopbackOptions) -> LoopbackCluster {
        let ids = node_ids(options.count);
        let members: Vec<&NodeId> = ids.iter().take(options.members).collect();
        let ring = Arc::new(Ring::new(&one_zone_layout(1, &members)));
        let secret = ClusterSecret::new(options.secret).unwrap();
        let mut nodes = Vec::new();
        for id in &ids {
            nodes.push(start_node(id, &ring, &secret, &options).await);
        }
        for node in &nodes {
            for peer in &nodes {
                node.table_view.set_addr(peer.id.clone(), peer.table_addr);
                if let (Some(blocks), Some(peer_blocks)) = (&node.blocks, &peer.blocks) {
                    blocks.view.set_addr(peer.id.clone(), peer_blocks.addr);
                }
            }
        }
        LoopbackCluster {
            nodes,
            ring,
            secret,
        }
    }
}

/// Builds node `id`: storage, table system and (optionally) block service, each served on
/// its own loopback port with its own view, since the two answer on different ports.
async fn start_node(
    id: &NodeId,
    ring: &Arc<Ring>,
    secret: &ClusterSecret,
    options: &LoopbackOptions,
) -> LoopbackNode {
    let dir = tempfile::tempdir().unwrap();
    let kv: Arc<dyn KvStore> = Arc::new(SledKv::open(&dir.path().join("meta")).unwrap());
    let blocks = match &options.blocks {
        Some(config) => {
            let store =
                Arc::new(BlockStore::open(dir.path().join("blocks"), Arc::new(OsBlockIo)).unwrap());
            let view = static_view(id, ring);
            let service = BlockService::new(
                view.clone(),
                store,
                Arc::clone(&kv),
                secret.clone(),
                config.clone(),
            )
            .unwrap();
            let server = serve_on(LOOPBACK, secret, Arc::clone(&service)).await;
            Some(LoopbackBlocks {
                view,
                service,
                addr: server.local_addr(),
                server: Some(server),
            })
        }
        None => None,
    };
    let table_view = static_view(id, ring);
    let system = TableSystem::new(
        table_view.clone(),
        kv,
        secret.clone(),
        options.system.clone(),
    )
    .unwrap();
    let table_server = serve_on(LOOPBACK, secret, Arc::clone(&system)).await;
    LoopbackNode {
        id: id.clone(),
        table_view,
        system,
        table_addr: table_server.local_addr(),
        table_server: Some(table_server),
        blocks,
        dir,
    }
}
