//! What the replication engine needs to know about the cluster right now: the ring of the
//! current layout, each node's RPC address, and who is believed up.
//!
//! Membership (gossip and heartbeats) implements [`Liveness`] in the running node;
//! [`StaticLiveness`] is a hand-set implementation for tests and single-process setups.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use ring::{NodeId, Ring};

/// The cluster view the coordinator consults on every operation. Implementations answer
/// from memory (no I/O): they are called on the request path.
pub trait Liveness: Send + Sync {
    /// Whether `node` is believed reachable. A node reported down is skipped at once (its
    /// writes go to a hint); a node reported up but unreachable costs one failed call.
    fn is_up(&self, node: &NodeId) -> bool;
    /// The RPC address of `node`, if known.
    fn addr(&self, node: &NodeId) -> Option<SocketAddr>;
    /// The ring of the current layout.
    fn ring(&self) -> Arc<Ring>;
    /// This node's id.
    fn local_id(&self) -> NodeId;
}

/// A [`Liveness`] whose answers are set by hand: every node with an address is up unless
/// marked down.
pub struct StaticLiveness {
    local: NodeId,
    state: RwLock<StaticState>,
}

struct StaticState {
    ring: Arc<Ring>,
    addrs: HashMap<NodeId, SocketAddr>,
    down: HashSet<NodeId>,
}

impl StaticLiveness {
    /// A view from node `local` of `ring`, with the given RPC addresses.
    pub fn new(
        local: NodeId,
        ring: Arc<Ring>,
        addrs: HashMap<NodeId, SocketAddr>,
    ) -> StaticLiveness {
        StaticLiveness {
            local,
            state: RwLock::new(StaticState {
                ring,
                addrs,
                down: HashSet::new(),
            }),
        }
    }

    /// Marks `node` up or down.
    pub fn set_up(&self, node: &NodeId, up: bool) {
        let mut state = self.write();
        if up {
            state.down.remove(node);
        } else {
            state.down.insert(node.clone());
        }
    }

    /// Records (or changes) the RPC address of `node`.
    pub fn set_addr(&self, node: NodeId, addr: SocketAddr) {
        self.write().addrs.insert(node, addr);
    }

    /// Replaces the ring (a new layout version).
    pub fn set_ring(&self, ring: Arc<Ring>) {
        self.write().ring = ring;
    }

    // The state is plain data, valid after any panic, so a poisoned lock is still usable.
    fn read(&self) -> RwLockReadGuard<'_, StaticState> {
        self.state
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, StaticState> {
        self.state
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Liveness for StaticLiveness {
    fn is_up(&self, node: &NodeId) -> bool {
        let state = self.read();
        (node == &self.local || state.addrs.contains_key(node)) && !state.down.contains(node)
    }

    fn addr(&self, node: &NodeId) -> Option<SocketAddr> {
        self.read().addrs.get(node).copied()
    }

    fn ring(&self) -> Arc<Ring> {
        Arc::clone(&self.read().ring)
    }

    fn local_id(&self) -> NodeId {
        self.local.clone()
    }
}
