//! The table protocol: what nodes ask each other about replicated tables.
//!
//! Tables are named by string and entries travel encoded (their own format-version byte
//! first), so one handler serves every table and a node can hold hints for tables whose
//! types it only knows through the registry. bincode encodes enum variants by index: add new
//! variants at the end and never reshape existing ones without bumping the RPC wire version.

use serde::{Deserialize, Serialize};

use super::paxos::{PaxosRequest, PaxosResponse};
use crate::rpc::Payload;
use ring::NodeId;

/// A request from a coordinator (or hint holder) to a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableRequest {
    /// Liveness probe; answered with [`TableResponse::Pong`].
    Ping,
    /// Merge `entry` into the receiver's copy of `key`; answered with
    /// [`TableResponse::Done`] once durable.
    Merge {
        /// The table's name.
        table: String,
        /// The encoded partition key.
        key: Payload,
        /// The encoded entry.
        entry: Payload,
    },
    /// Read the receiver's copy of `key`; answered with [`TableResponse::Entry`].
    Read {
        /// The table's name.
        table: String,
        /// The encoded partition key.
        key: Payload,
    },
    /// Hold `entry` for `owner`, which is down, and hand it over when it returns; answered
    /// with [`TableResponse::Done`] once the hint is durable.
    StoreHint {
        /// The replica the write was meant for.
        owner: NodeId,
        /// The table's name.
        table: String,
        /// The encoded partition key.
        key: Payload,
        /// The encoded entry.
        entry: Payload,
    },
    /// List the receiver's own entries of `table` whose encoded key starts with `prefix`,
    /// in key byte order, strictly after `start_after` (when given), at most `limit` of
    /// them; answered with [`TableResponse::Entries`]. Used to list hash-partitioned tables
    /// by asking every node.
    ListLocal {
        /// The table's name.
        table: String,
        /// Prefix of the encoded keys wanted.
        prefix: Payload,
        /// Only encoded keys strictly greater than this.
        start_after: Option<Payload>,
        /// Most entries returned.
        limit: u32,
    },
    /// A Paxos message for the receiver's acceptor ([`super::paxos`]); answered with
    /// [`TableResponse::Paxos`].
    Paxos(PaxosRequest),
    /// Delete the receiver's copy of `key` if its encoded entry is exactly `entry` (the
    /// tombstone purge, [`super::tombstones`]); answered with [`TableResponse::Purged`].
    PurgeIfEqual {
        /// The table's name.
        table: String,
        /// The encoded partition key.
        key: Payload,
        /// The encoded entry the receiver's copy must equal byte for byte.
        entry: Payload,
    },
}

/// The answer to a [`TableRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableResponse {
    /// Answer to [`TableRequest::Ping`].
    Pong,
    /// The merge or hint is durable.
    Done,
    /// The receiver's encoded entry, or `None` if it holds none.
    Entry(Option<Payload>),
    /// The receiver could not do what was asked; the text says why.
    Failed(String),
    /// Answer to [`TableRequest::ListLocal`]: (encoded key, encoded entry) pairs in key
    /// order; fewer than `limit` means the receiver holds no more.
    Entries(Vec<(Payload, Payload)>),
    /// Answer to [`TableRequest::Paxos`].
    Paxos(PaxosResponse),
    /// Answer to [`TableRequest::PurgeIfEqual`]: whether the receiver deleted its copy
    /// (`false` when it held another version or none), durably.
    Purged(bool),
}
