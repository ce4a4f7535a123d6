//! What membership says on the wire: heartbeats that double as gossip, and layout pulls.
//!
//! These travel inside the RPC layer's frames, whose format-version byte covers them. bincode
//! encodes enum variants by index, so new variants go at the end and existing ones keep their
//! shape.

use ring::{Layout, NodeInfo};
use serde::{Deserialize, Serialize};

use super::detector::NodeStatus;

/// What one node knows about another, passed along in every heartbeat so that nodes which
/// share only a seed learn each other's addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerDigest {
    /// The peer as it announced itself (or as the layout lists it, if it never spoke).
    pub info: NodeInfo,
    /// The sender's own view of the peer's liveness. Advisory: a receiver never marks a peer
    /// up or down on hearsay, because reachability is not symmetric in a partial partition.
    pub status: NodeStatus,
}

/// A membership request from one node to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GossipRequest {
    /// The heartbeat, sent every heartbeat interval to every known peer and seed; answered
    /// with [`GossipResponse::Pong`].
    Ping {
        /// The sender, as it wants to be reached.
        from: NodeInfo,
        /// The version of the sender's layout; a receiver with an older one pulls the newer.
        layout_version: u64,
        /// Every other node the sender knows, with the liveness it sees.
        peers: Vec<PeerDigest>,
    },
    /// Asks for the receiver's current layout; answered with [`GossipResponse::Layout`].
    PullLayout,
}

/// The answer to a [`GossipRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GossipResponse {
    /// Answer to a ping.
    Pong {
        /// The answering node.
        from: NodeInfo,
        /// The version of the answerer's layout.
        layout_version: u64,
        /// The answerer's layout when it is newer than the pinger's, saving the pinger a pull.
        newer_layout: Option<Layout>,
        /// Every other node the answerer knows.
        peers: Vec<PeerDigest>,
    },
    /// Answer to [`GossipRequest::PullLayout`].
    Layout(Layout),
    /// The receiver would not handle the request; the text says why.
    Refused(String),
}
