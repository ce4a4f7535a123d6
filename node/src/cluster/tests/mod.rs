//! In-process clusters with real RPC on 127.0.0.1 (port 0): every node has its own sled
//! database in a temp dir, its own [`TableSystem`] and RPC server. Every test is bounded.

mod handoff;
mod replication;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ring::NodeId;

use super::testing::{
    bounded_by, eventually, next_stamp, note_table, serve_on, LoopbackCluster, LoopbackOptions,
    Note, SETTLE_BOUND,
};
use super::{Lww, QuorumPolicy, Replication, Table, TableSystem};
use crate::rpc::{ClusterSecret, RpcServer};

/// Upper bound for any one test.
const TEST_BOUND: Duration = Duration::from_secs(60);

note_table!(
    /// The sharded test table.
    Notes,
    "notes"
);

/// A new version of `key`, newer than every version made before it.
fn note(key: &str, value: &str) -> Note {
    Note {
        key: key.to_owned(),
        register: Lww::new(next_stamp(7), value.to_owned()),
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
        let mut options = LoopbackOptions::new(count, "cluster tests shared secret");
        options.system.full_read_every = full_read_every;
        let cluster = LoopbackCluster::start(options).await;
        let nodes = cluster
            .nodes
            .into_iter()
            .map(|node| TestNode {
                sharded: Table::<Notes>::new(
                    Arc::clone(&node.system),
                    Replication::DEFAULT_SHARDED,
                )
                .unwrap()
                .with_quorum_policy(policy),
                id: node.id,
                addr: node.table_addr,
                system: node.system,
                server: node.table_server,
                _dir: node.dir,
            })
            .collect();
        TestCluster {
            nodes,
            secret: cluster.secret,
        }
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
        let node = self.nodes.iter_mut().find(|node| &node.id == id).unwrap();
        node.server = Some(serve_on(node.addr, &self.secret, Arc::clone(&node.system)).await);
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
async fn bounded(test: impl std::future::Future<Output = ()>) {
    bounded_by(TEST_BOUND, test).await;
}
