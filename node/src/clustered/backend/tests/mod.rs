//! In-process 5-node clusters with real TLS RPC on 127.0.0.1, driving [`ClusterBackend`]
//! through the `S3Backend` trait. Each node has its own temp dir (sled metadata, block
//! files), a block service and a table system on their own RPC servers, and the backend.

mod buckets;
mod gc;
mod listing;
mod objects;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use ring::{Layout, NodeId, NodeInfo, Ring};
use s3api::access::Acl;
use s3api::backend::{ObjectAttrs, ObjectInfo, ObjectReader, S3Backend};
use s3api::body::ObjectBody;
use s3api::{S3ErrorCode, S3Result};

use super::ClusterBackend;
use crate::cluster::blocks::{BlockConfig, BlockService};
use crate::cluster::{Replication, StaticLiveness, SystemConfig, TableSystem};
use crate::rpc::{ClusterSecret, RpcConfig, RpcServer};
use crate::store::blocks::{BlockStore, OsBlockIo};
use crate::store::kv::{KvStore, SledKv};

/// Upper bound for any one test.
const TEST_BOUND: Duration = Duration::from_secs(180);
/// Bucket the tests use.
const BUCKET: &str = "bkt";

struct TestNode {
    id: NodeId,
    backend: ClusterBackend,
    block_server: Option<RpcServer>,
    table_server: Option<RpcServer>,
    _dir: tempfile::TempDir,
}

/// A cluster of nodes `n0..` (A = n0, …, E = n4), one zone, N=3 W=2 R=2.
struct TestCluster {
    nodes: Vec<TestNode>,
    views: Vec<Arc<StaticLiveness>>,
}

fn rpc_config() -> RpcConfig {
    RpcConfig {
        connect_timeout: Duration::from_secs(1),
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        ..RpcConfig::default()
    }
}

impl TestCluster {
    async fn start(count: usize) -> TestCluster {
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
        let secret = ClusterSecret::new("backend tests shared secret").unwrap();
        let block_config = BlockConfig {
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
        let mut all_views = Vec::new();
        let mut addrs = Vec::new();
        for id in &ids {
            let dir = tempfile::tempdir().unwrap();
            let kv: Arc<dyn KvStore> = Arc::new(SledKv::open(&dir.path().join("meta")).unwrap());
            let store =
                Arc::new(BlockStore::open(dir.path().join("blocks"), Arc::new(OsBlockIo)).unwrap());
            // Blocks and tables answer on different ports, so each needs its own view.
            let view = || {
                Arc::new(StaticLiveness::new(
                    id.clone(),
                    Arc::clone(&ring),
                    HashMap::new(),
                ))
            };
            let (block_view, table_view) = (view(), view());
            let blocks = BlockService::new(
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
            let backend = ClusterBackend::new(
                Arc::clone(&system),
                Arc::clone(&blocks),
                Replication::DEFAULT_SHARDED,
            )
            .unwrap();
            let block_server = RpcServer::bind(loopback, secret.clone(), blocks, rpc_config())
                .await
                .unwrap();
            let table_server = RpcServer::bind(loopback, secret.clone(), system, rpc_config())
                .await
                .unwrap();
            addrs.push((block_server.local_addr(), table_server.local_addr()));
            all_views.push((block_view, table_view));
            nodes.push(TestNode {
                id: id.clone(),
                backend,
                block_server: Some(block_server),
                table_server: Some(table_server),
                _dir: dir,
            });
        }
        let mut views = Vec::new();
        for (block_view, table_view) in all_views {
            for (node, (block_addr, table_addr)) in nodes.iter().zip(&addrs) {
                block_view.set_addr(node.id.clone(), *block_addr);
                table_view.set_addr(node.id.clone(), *table_addr);
            }
            views.push(block_view);
            views.push(table_view);
        }
        TestCluster { nodes, views }
    }

    /// The backend of node `index` (0 = A … 4 = E).
    fn at(&self, index: usize) -> &ClusterBackend {
        &self.nodes[index].backend
    }

    /// Stops node `index`'s servers (its files survive) and marks it down everywhere, as
    /// failure detection would.
    async fn stop(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        node.block_server.take().unwrap().shutdown().await;
        node.table_server.take().unwrap().shutdown().await;
        for view in &self.views {
            view.set_up(&node.id, false);
        }
    }
}

/// Runs `test` under [`TEST_BOUND`].
async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("test exceeded its time bound");
}

/// Deterministic pseudo-random bytes that differ per `seed`.
/// A private ACL for `user`: what CreateBucket gives a bucket by default.
fn acl_of(user: &str) -> Acl {
    Acl::private(user)
}

/// The root user's private ACL, for tests where ownership plays no part.
fn root_acl() -> Acl {
    acl_of("root")
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ u64::from(seed);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A trusted body delivered in uneven chunks.
fn body(data: &[u8]) -> ObjectBody {
    let chunks: Vec<S3Result<Bytes>> = data
        .chunks(64 * 1024 + 7)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    ObjectBody::from_stream(Box::pin(stream::iter(chunks)), Some(data.len() as u64))
}

async fn put(backend: &ClusterBackend, key: &str, data: &[u8]) -> ObjectInfo {
    backend
        .put_object(BUCKET, key, ObjectAttrs::default(), &mut body(data))
        .await
        .unwrap()
}

async fn read_range(backend: &ClusterBackend, key: &str, range: Range<u64>) -> S3Result<Vec<u8>> {
    let reader = backend.get_object(BUCKET, key).await?;
    let mut stream = reader.into_stream(range);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

async fn read_all(backend: &ClusterBackend, key: &str) -> S3Result<Vec<u8>> {
    let size = backend.head_object(BUCKET, key).await?.size;
    read_range(backend, key, 0..size).await
}

fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(data))
}

fn code<T: std::fmt::Debug>(result: S3Result<T>) -> S3ErrorCode {
    result.unwrap_err().code
}
