//! The anti-entropy protocol between two replicas of a group.
//!
//! The initiator sends its root with [`AeRequest::Open`]; equal roots end the exchange in
//! that one message. Otherwise the responder keeps its tree in a session and the initiator
//! descends level by level ([`AeRequest::Children`]) where the hashes differ, fetches the
//! responder's entries of the differing leaves ([`AeRequest::FetchLeaves`]), merges them,
//! and pushes back whatever the responder lacks or holds older ([`AeRequest::Push`]).
//!
//! bincode encodes enum variants by index: add new variants at the end and never reshape
//! existing ones without bumping the RPC wire version.

use serde::{Deserialize, Serialize};

use super::tree::NodeHash;
use crate::rpc::Payload;
use ring::NodeId;

/// An encoded key and its encoded entry.
pub type KeyedEntry = (Payload, Payload);

/// A request from the replica running a round (initiator) to another replica of the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AeRequest {
    /// Compare the group's roots. Answered with [`AeResponse::InSync`] or
    /// [`AeResponse::Diverged`].
    Open {
        /// The table's name.
        table: String,
        /// The group's owners, sorted by id.
        owners: Vec<NodeId>,
        /// The layout version both sides must place keys by.
        layout_version: u64,
        /// The initiator's root hash.
        root: NodeHash,
    },
    /// The child hashes of inner nodes at `level`; answered with [`AeResponse::Children`].
    Children {
        /// The session [`AeResponse::Diverged`] opened.
        session: u64,
        /// Level of the nodes asked about (1 is just below the root).
        level: u8,
        /// Their positions in that level.
        nodes: Vec<u32>,
    },
    /// The responder's entries in these leaves, as many leaves (in the given order) as fit
    /// in one message; answered with [`AeResponse::Entries`].
    FetchLeaves {
        /// The session.
        session: u64,
        /// Leaf positions.
        leaves: Vec<u32>,
    },
    /// Merge these entries (of the session's group); answered with [`AeResponse::Pushed`].
    Push {
        /// The session.
        session: u64,
        /// The entries.
        entries: Vec<KeyedEntry>,
    },
    /// The initiator is done; the responder drops the session. Answered with
    /// [`AeResponse::Closed`].
    Close {
        /// The session.
        session: u64,
    },
}

/// The answer to an [`AeRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AeResponse {
    /// The roots are equal: nothing to do.
    InSync,
    /// The roots differ; the responder keeps its tree under `session`.
    Diverged {
        /// Names the session in further requests.
        session: u64,
        /// The responder's hashes of the root's children.
        children: Vec<NodeHash>,
    },
    /// For each node asked about, in order, its child hashes.
    Children(Vec<Vec<NodeHash>>),
    /// Entries of the first `leaves_done` leaves asked for.
    Entries {
        /// How many of the requested leaves these entries cover (at least one).
        leaves_done: u32,
        /// The entries.
        entries: Vec<KeyedEntry>,
    },
    /// The push was merged durably.
    Pushed {
        /// Entries that changed the responder's copy.
        changed: u32,
    },
    /// The session is gone.
    Closed,
    /// The responder could not do what was asked; the text says why.
    Failed(String),
}
