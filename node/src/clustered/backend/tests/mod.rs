//! In-process 5-node clusters with real TLS RPC on 127.0.0.1, driving [`ClusterBackend`]
//! through the `S3Backend` trait. Each node has its own temp dir (sled metadata, block
//! files), a block service and a table system on their own RPC servers, and the backend.

mod buckets;
mod gc;
mod listing;
mod objects;

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use ring::NodeId;
use s3api::access::Acl;
use s3api::backend::{ObjectAttrs, ObjectInfo, ObjectReader, S3Backend};
use s3api::body::ObjectBody;
use s3api::{S3ErrorCode, S3Result};

use super::ClusterBackend;
use crate::cluster::testing::{bounded_by, test_block_config, LoopbackCluster, LoopbackOptions};
use crate::cluster::{Replication, StaticLiveness};
use crate::rpc::RpcServer;

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

impl TestCluster {
    async fn start(count: usize) -> TestCluster {
        let options = LoopbackOptions::new(count, "backend tests shared secret")
            .with_blocks(test_block_config());
        let cluster = LoopbackCluster::start(options).await;
        let mut nodes = Vec::new();
        let mut views = Vec::new();
        for mut node in cluster.nodes {
            let blocks = node.take_blocks();
            let backend = ClusterBackend::new(
                Arc::clone(&node.system),
                Arc::clone(&blocks.service),
                Replication::DEFAULT_SHARDED,
            )
            .unwrap();
            views.push(blocks.view);
            views.push(node.table_view);
            nodes.push(TestNode {
                id: node.id,
                backend,
                block_server: blocks.server,
                table_server: node.table_server,
                _dir: node.dir,
            });
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
async fn bounded(test: impl std::future::Future<Output = ()>) {
    bounded_by(TEST_BOUND, test).await;
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

/// The error code of a result that must be an error (a panic names the caller's line).
#[track_caller]
fn code<T: std::fmt::Debug>(result: S3Result<T>) -> S3ErrorCode {
    result.unwrap_err().code
}
