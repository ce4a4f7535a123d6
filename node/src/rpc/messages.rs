//! What nodes ask each other: the cluster's RPC vocabulary.
//!
//! The transport ([`super::RpcClient`], [`super::RpcServer`]) is generic over its message
//! types; these are the ones the node speaks. bincode encodes an enum variant by its index,
//! so new variants go at the end of each enum and existing ones never change shape without a
//! bump of [`super::codec::WIRE_VERSION`]. Tables and keys are opaque here: the coordinator
//! decides what a table name and a key mean, the store decides how a value is laid out.

use serde::{Deserialize, Serialize};

use super::payload::Payload;

/// A BLAKE3 hash naming a content-addressed block.
pub type BlockHash = [u8; 32];

/// A request from one node to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Liveness probe; answered with [`Response::Pong`].
    Ping,
    /// Store `value` under `key` in metadata table `table`, merging with what is there.
    PutRecord {
        /// Which metadata table (objects, buckets, block references, …).
        table: String,
        /// The record's key within the table.
        key: Payload,
        /// The encoded record.
        value: Payload,
    },
    /// Read the record under `key` in `table`; answered with [`Response::Record`].
    GetRecord {
        /// Which metadata table.
        table: String,
        /// The record's key within the table.
        key: Payload,
    },
    /// Store one block; the receiver checks that `data` hashes to `hash`.
    PutBlock {
        /// BLAKE3 hash of `data`.
        hash: BlockHash,
        /// The block's bytes (at most one block, 1 MiB by default).
        data: Payload,
    },
    /// Read one block; answered with [`Response::Block`].
    GetBlock {
        /// BLAKE3 hash of the wanted block.
        hash: BlockHash,
    },
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Answer to [`Request::Ping`].
    Pong,
    /// The write was applied durably.
    Done,
    /// The record asked for, or `None` if this node holds none.
    Record(Option<Payload>),
    /// The block asked for, or `None` if this node holds none.
    Block(Option<Payload>),
    /// The receiving node could not do what was asked; the text says why.
    Failed(String),
}
