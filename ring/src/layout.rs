//! The cluster layout: which nodes exist, where they live and how much they hold.
//!
//! A layout only changes through an operator's staged change, which bumps `version`. Liveness is
//! not part of it: a down node keeps its place and is covered by hinted handoff.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A node's stable identity, chosen by the operator (for example `"node-a1"`).
///
/// A string rather than a number: it reads well in logs and layout files, and ring tokens hash
/// its UTF-8 bytes, so placement never depends on a platform's integer width or on the order in
/// which nodes were listed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub String);

impl NodeId {
    /// Wraps an operator-chosen name.
    pub fn new(id: impl Into<String>) -> Self {
        NodeId(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for NodeId {
    fn from(id: &str) -> Self {
        NodeId(id.to_owned())
    }
}

impl From<String> for NodeId {
    fn from(id: String) -> Self {
        NodeId(id)
    }
}

/// One node of the layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Stable identity; the only field that decides where the node's tokens fall.
    pub id: NodeId,
    /// Address of the node's inter-node RPC endpoint (`host:port`).
    pub rpc_addr: String,
    /// Failure domain (rack, room, site). Preference lists spread replicas over distinct zones.
    pub zone: String,
    /// Relative weight, usually the usable bytes of the node's disks. Only ratios between nodes
    /// matter: a node with twice the capacity gets twice the virtual nodes. Must be > 0.
    pub capacity: u64,
}

/// A versioned cluster layout: the input from which every node builds the same [`crate::Ring`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Increases by one with each applied layout change; the newest version wins in gossip.
    pub version: u64,
    /// Member nodes, in any order (the ring does not depend on this order).
    pub nodes: Vec<NodeInfo>,
    /// Replication factor N: how many distinct nodes hold each key.
    pub replication: usize,
}

/// Why a layout was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// The layout lists no node at all.
    #[error("layout has no nodes")]
    NoNodes,
    /// A node id is the empty string.
    #[error("a node has an empty id")]
    EmptyNodeId,
    /// Two nodes share an id.
    #[error("node id {0} appears more than once")]
    DuplicateNodeId(NodeId),
    /// A node has capacity 0 and would own nothing.
    #[error("node {0} has capacity 0")]
    ZeroCapacity(NodeId),
    /// The replication factor is 0.
    #[error("replication factor must be at least 1")]
    ZeroReplication,
    /// Fewer nodes than replicas: no preference list could hold N distinct nodes.
    #[error("replication factor {replication} exceeds the {nodes} nodes of the layout")]
    ReplicationExceedsNodes {
        /// The requested replication factor.
        replication: usize,
        /// How many nodes the layout has.
        nodes: usize,
    },
}

impl Layout {
    /// Builds a layout and validates it.
    pub fn new(
        version: u64,
        nodes: Vec<NodeInfo>,
        replication: usize,
    ) -> Result<Layout, LayoutError> {
        let layout = Layout {
            version,
            nodes,
            replication,
        };
        layout.validate()?;
        Ok(layout)
    }

    /// Checks the invariants: at least one node, non-empty unique ids, capacity > 0, and
    /// 1 ≤ replication ≤ number of nodes. Call it on every layout that came from outside
    /// (operator input, gossip, disk) before building a ring from it.
    pub fn validate(&self) -> Result<(), LayoutError> {
        if self.nodes.is_empty() {
            return Err(LayoutError::NoNodes);
        }
        let mut seen = HashSet::with_capacity(self.nodes.len());
        for node in &self.nodes {
            if node.id.0.is_empty() {
                return Err(LayoutError::EmptyNodeId);
            }
            if !seen.insert(&node.id) {
                return Err(LayoutError::DuplicateNodeId(node.id.clone()));
            }
            if node.capacity == 0 {
                return Err(LayoutError::ZeroCapacity(node.id.clone()));
            }
        }
        if self.replication == 0 {
            return Err(LayoutError::ZeroReplication);
        }
        if self.replication > self.nodes.len() {
            return Err(LayoutError::ReplicationExceedsNodes {
                replication: self.replication,
                nodes: self.nodes.len(),
            });
        }
        Ok(())
    }

    /// The node with this id, if it is a member.
    pub fn node(&self, id: &NodeId) -> Option<&NodeInfo> {
        self.nodes.iter().find(|node| &node.id == id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn node(id: &str, capacity: u64) -> NodeInfo {
        NodeInfo {
            id: NodeId::from(id),
            rpc_addr: format!("{id}:7000"),
            zone: "z".into(),
            capacity,
        }
    }

    #[test]
    fn accepts_a_valid_layout() {
        let layout = Layout::new(1, vec![node("a", 1), node("b", 2)], 2).unwrap();
        assert_eq!(layout.node(&"b".into()).unwrap().capacity, 2);
        assert!(layout.node(&"c".into()).is_none());
    }

    #[test]
    fn rejects_each_broken_invariant() {
        let cases = [
            (vec![], 1, LayoutError::NoNodes),
            (vec![node("", 1)], 1, LayoutError::EmptyNodeId),
            (
                vec![node("a", 1), node("a", 1)],
                1,
                LayoutError::DuplicateNodeId("a".into()),
            ),
            (vec![node("a", 0)], 1, LayoutError::ZeroCapacity("a".into())),
            (vec![node("a", 1)], 0, LayoutError::ZeroReplication),
            (
                vec![node("a", 1)],
                3,
                LayoutError::ReplicationExceedsNodes {
                    replication: 3,
                    nodes: 1,
                },
            ),
        ];
        for (nodes, replication, expected) in cases {
            assert_eq!(Layout::new(1, nodes, replication), Err(expected));
        }
    }

    #[test]
    fn node_id_displays_as_its_name() {
        let id = NodeId::new("node-1");
        assert_eq!(id.to_string(), "node-1");
        assert_eq!(id.as_str(), "node-1");
    }
}
