//! The block protocol: what nodes ask each other about block files.
//!
//! bincode encodes enum variants by index: add new variants at the end and never reshape
//! existing ones without bumping the RPC wire version.

use serde::{Deserialize, Serialize};

use super::BlockHash;
use crate::rpc::Payload;
use ring::NodeId;

/// A request from a coordinator (or handoff holder, or scrubbing node) to a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockRequest {
    /// Liveness probe; answered with [`BlockResponse::Pong`].
    Ping,
    /// Store `data` as block `hash` (the receiver re-hashes it and refuses a mismatch);
    /// answered with [`BlockResponse::Done`] once the file is durable. A block already
    /// present is not rewritten.
    Put {
        /// BLAKE3 hash of `data`.
        hash: BlockHash,
        /// The block's bytes.
        data: Payload,
    },
    /// Like `Put`, but an existing file is re-hashed first and replaced if corrupt (read
    /// repair after this node answered bad bytes).
    Repair {
        /// BLAKE3 hash of `data`.
        hash: BlockHash,
        /// The block's bytes.
        data: Payload,
    },
    /// Read block `hash`; answered with [`BlockResponse::Block`] (`None` if absent). The
    /// receiver sends its file as it is: the caller verifies the hash.
    Get {
        /// The wanted block.
        hash: BlockHash,
    },
    /// Hold block `hash` for `owner`, which is down, and push it there when it returns;
    /// answered with [`BlockResponse::Done`] once the block and the handoff record are
    /// durable.
    StoreHandoff {
        /// The replica the block was meant for.
        owner: NodeId,
        /// BLAKE3 hash of `data`.
        hash: BlockHash,
        /// The block's bytes.
        data: Payload,
    },
    /// Whether the receiver holds an intact copy of block `hash` (re-hashed, not sent back);
    /// answered with [`BlockResponse::Held`]. For the debug view of where a key's blocks
    /// live.
    Holds {
        /// The block asked about.
        hash: BlockHash,
    },
}

/// The answer to a [`BlockRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockResponse {
    /// Answer to [`BlockRequest::Ping`].
    Pong,
    /// The block (and any handoff record) is durable.
    Done,
    /// The receiver's copy of the block, or `None` if it holds none.
    Block(Option<Payload>),
    /// The receiver could not do what was asked; the text says why.
    Failed(String),
    /// Answer to [`BlockRequest::Holds`]: whether the receiver has an intact copy.
    Held(bool),
}
