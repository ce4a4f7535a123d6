//! The read side of membership: a snapshot the actor republishes on every change, readable from
//! any thread without a message round trip.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use ring::{Layout, NodeId, NodeInfo, Ring};
use tokio::sync::watch;

use super::detector::NodeStatus;
use crate::cluster::liveness::Liveness;

/// Another node as this node currently sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerEntry {
    /// The node as it announced itself, or as the layout lists it if it never spoke to us.
    pub info: NodeInfo,
    /// `info.rpc_addr` parsed; `None` if it is not an `ip:port` (nodes are addressed by IP).
    pub addr: Option<SocketAddr>,
    /// Liveness as of the last heartbeat round or message.
    pub status: NodeStatus,
    /// Whether the node is a member of the current layout (or only discovered by gossip).
    pub in_layout: bool,
}

/// Everything membership knows at one moment. Immutable; a new one replaces it on change.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// This node.
    pub local: NodeInfo,
    /// The newest layout this node has.
    pub layout: Arc<Layout>,
    /// The ring of `layout`, built once per layout version.
    pub ring: Arc<Ring>,
    /// Every other node known, from the layout and from gossip, by id.
    pub peers: BTreeMap<NodeId, PeerEntry>,
}

impl Snapshot {
    /// Same layout version and same peers: publishing it again would tell readers nothing.
    pub(super) fn same_as(&self, other: &Snapshot) -> bool {
        self.layout.version == other.layout.version && self.peers == other.peers
    }
}

/// A cheap, cloneable, `Send + Sync` read handle on membership. Every read is a lock-free
/// look at the latest [`Snapshot`] (a `tokio::sync::watch` borrow held only for an `Arc`
/// clone), so the data path may call it per request.
#[derive(Debug, Clone)]
pub struct MembershipView {
    snapshots: watch::Receiver<Arc<Snapshot>>,
    layouts: watch::Receiver<Arc<Layout>>,
}

impl MembershipView {
    pub(super) fn new(
        snapshots: watch::Receiver<Arc<Snapshot>>,
        layouts: watch::Receiver<Arc<Layout>>,
    ) -> Self {
        Self { snapshots, layouts }
    }

    /// The whole current snapshot, for status pages and for reading several fields that must
    /// agree with each other.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshots.borrow())
    }

    /// The current layout.
    pub fn layout(&self) -> Arc<Layout> {
        Arc::clone(&self.snapshots.borrow().layout)
    }

    /// The ring of the current layout.
    pub fn ring(&self) -> Arc<Ring> {
        Arc::clone(&self.snapshots.borrow().ring)
    }

    /// This node's id.
    pub fn local_id(&self) -> NodeId {
        self.snapshots.borrow().local.id.clone()
    }

    /// The liveness of `node`: always `Up` for this node, `Down` for a node never heard of.
    pub fn status(&self, node: &NodeId) -> NodeStatus {
        let snapshot = self.snapshots.borrow();
        if *node == snapshot.local.id {
            return NodeStatus::Up;
        }
        snapshot
            .peers
            .get(node)
            .map_or(NodeStatus::Down, |peer| peer.status)
    }

    /// The RPC address of `node` (this node's own included), if known and an `ip:port`.
    pub fn addr(&self, node: &NodeId) -> Option<SocketAddr> {
        let snapshot = self.snapshots.borrow();
        if *node == snapshot.local.id {
            return snapshot.local.rpc_addr.parse().ok();
        }
        snapshot.peers.get(node).and_then(|peer| peer.addr)
    }

    /// A receiver that wakes on each new layout version (and not on liveness changes). It
    /// starts with the current layout marked as seen: `changed().await` waits for the next.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Layout>> {
        let mut layouts = self.layouts.clone();
        layouts.mark_unchanged();
        layouts
    }

    /// A receiver that wakes on every snapshot change (layout or liveness), for tests and
    /// status pages that wait for a condition.
    pub fn watch(&self) -> watch::Receiver<Arc<Snapshot>> {
        let mut snapshots = self.snapshots.clone();
        snapshots.mark_unchanged();
        snapshots
    }
}

/// Membership is the running node's [`Liveness`]: the replication engine reads it per request.
impl Liveness for MembershipView {
    /// Only `Up` counts: a `Suspect` peer has been silent for several heartbeats, and a write
    /// to it would more likely cost a timeout than land, so it goes to a hint instead (which
    /// hinted handoff replays if the peer was only slow).
    fn is_up(&self, node: &NodeId) -> bool {
        self.status(node) == NodeStatus::Up
    }

    fn addr(&self, node: &NodeId) -> Option<SocketAddr> {
        MembershipView::addr(self, node)
    }

    fn ring(&self) -> Arc<Ring> {
        MembershipView::ring(self)
    }

    fn local_id(&self) -> NodeId {
        MembershipView::local_id(self)
    }
}
