//! Replication of content-addressed blocks across the cluster.
//!
//! # Map of the module
//!
//! - [`protocol`]: the block RPC messages ([`BlockRequest`], [`BlockResponse`]); the
//!   [`BlockService`] is their [`crate::rpc::RpcHandler`].
//! - [`service`]: [`BlockService`], one per node, over the node's local
//!   [`crate::store::blocks::BlockStore`]: `put_block`, `get_block`, the request handler.
//! - [`local`]: blocking file work (verified writes, verified reads, moving corrupt files
//!   aside) and the persisted list of blocks held for another node (block handoffs).
//! - [`replicate`]: the quorum fan-out of a put and the replica-by-replica read with read
//!   repair.
//! - [`handoff`]: delivering held blocks to their owners ([`BlockHandoffWorker`]).
//! - [`resync`]: fetching referenced blocks this node owns but lacks (the resync queue).
//! - [`scrub`]: re-hashing every local block file and repairing corrupt ones
//!   ([`ScrubReport`]).
//! - [`refs`]: the block-reference table ([`BlockRefs`], [`BlockRefTable`]) and the GC pass
//!   that deletes blocks no object version references any more.
//!
//! # Placement
//!
//! A block lives on the first N nodes of the preference list of its ring position, the first
//! 8 bytes of its BLAKE3 hash read big-endian ([`block_position`]). Its reference entry is
//! placed by the same position, so a block's owners also own its references and can decide
//! GC from data they hold.
//!
//! # A put
//!
//! `put_block(hash, bytes)` checks the hash, then sends `Put` to every owner at once (the
//! coordinator stores its own copy without the network). Each owner re-hashes what it
//! received and refuses a mismatch, so a transfer corrupted on the way is never stored under
//! the wrong name. An owner that is down or fails is replaced by the next healthy node after
//! the preference list, which stores the block and a durable handoff record naming the owner
//! (`StoreHandoff`); under [`QuorumPolicy::Sloppy`] that counts toward W. The holder's
//! [`BlockHandoffWorker`] pushes the block to the owner once it answers, then forgets the
//! record (and its copy, if it does not own the block itself).
//!
//! # A get
//!
//! `get_block(hash)` reads the local file first if this node is an owner, then asks the
//! owners in preference order, then the handoff candidates. Every answer is re-hashed: bytes
//! that do not match are skipped and reported, and once good bytes are found they are
//! written back to each replica that answered badly (and to the local file if it was the
//! corrupt one): read repair.
//!
//! # Scrub
//!
//! [`BlockService::scrub_local`] re-hashes every block file, sleeping between blocks so it
//! never saturates the disk. A file whose content does not match its name is moved aside into
//! `blocks/corrupt/` (kept for inspection, never served) and fetched again from another
//! replica.

mod handoff;
mod local;
pub mod protocol;
pub mod refs;
mod replicate;
pub mod resync;
pub mod scrub;
pub mod service;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ring::NodeId;

use super::error::ReplicaFailure;
use super::table::QuorumPolicy;
use crate::rpc::RpcConfig;
use crate::store::StoreError;

// Until the node wires block replication in, only the tests use some of these short paths.
#[allow(unused_imports)]
pub use self::{
    handoff::{BlockHandoffWorker, HandoffReport},
    protocol::{BlockRequest, BlockResponse},
    refs::{BlockGcReport, BlockRefTable, BlockRefs, BlockRefsSchema},
    resync::ResyncReport,
    scrub::ScrubReport,
    service::BlockService,
};

/// A BLAKE3 hash naming a block.
pub type BlockHash = [u8; 32];

/// The ring position of a block: the first 8 bytes of its hash, big-endian.
pub fn block_position(hash: &BlockHash) -> u64 {
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&hash[..8]);
    u64::from_be_bytes(prefix)
}

/// Running totals of what this node's block work met since it started: puts that missed
/// their write quorum, gets that found no intact copy, and held blocks delivered to their
/// owners. One per node (on the [`BlockService`]), plain atomics so counting costs no lock on
/// the data path; the cluster status and `/metrics` read them.
#[derive(Debug, Default)]
pub struct BlockCounters {
    put_quorum_failures: AtomicU64,
    get_failures: AtomicU64,
    handoffs_delivered: AtomicU64,
}

impl BlockCounters {
    /// Counts one put that fewer than W owners (or counted holders) acknowledged.
    pub(crate) fn count_put_quorum_failure(&self) {
        self.put_quorum_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one get that found the block intact on no replica.
    pub(crate) fn count_get_failure(&self) {
        self.get_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one held block its owner acknowledged (its handoff record is deleted).
    pub(crate) fn count_handoff_delivered(&self) {
        self.handoffs_delivered.fetch_add(1, Ordering::Relaxed);
    }

    /// Puts that could not reach their write quorum.
    pub fn put_quorum_failures(&self) -> u64 {
        self.put_quorum_failures.load(Ordering::Relaxed)
    }

    /// Gets (for clients; scrub repairs are not counted) that found no intact copy: a block
    /// read needs one good replica, so this is its read quorum failing.
    pub fn get_failures(&self) -> u64 {
        self.get_failures.load(Ordering::Relaxed)
    }

    /// Held blocks delivered to their owners.
    pub fn handoffs_delivered(&self) -> u64 {
        self.handoffs_delivered.load(Ordering::Relaxed)
    }
}

/// Tunables of block replication.
#[derive(Debug, Clone)]
pub struct BlockConfig {
    /// Replicas per block (N); capped by the ring's preference-list length.
    pub replicas: usize,
    /// Acknowledgements a put needs (W).
    pub write_quorum: usize,
    /// Whether a block held for a down owner counts toward W.
    pub policy: QuorumPolicy,
    /// Longest wait for one replica's answer to one block call (1 MiB on a LAN takes
    /// milliseconds; a loaded disk's fsync can take a second).
    pub call_timeout: Duration,
    /// Pause between two blocks of a scrub, so it never hogs the disk.
    pub scrub_pause: Duration,
    /// Connection settings of the block RPC client.
    pub rpc: RpcConfig,
}

impl Default for BlockConfig {
    fn default() -> Self {
        BlockConfig {
            replicas: 3,
            write_quorum: 2,
            policy: QuorumPolicy::Sloppy,
            call_timeout: Duration::from_secs(5),
            // 1 MiB blocks every 10 ms is at most ~100 MiB/s of reads: a background share
            // of one disk, and a full scrub of 100 GiB in well under a day.
            scrub_pause: Duration::from_millis(10),
            rpc: RpcConfig::default(),
        }
    }
}

/// Why a block operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// The bytes given to `put_block` do not hash to the hash given with them.
    #[error("block content hashes to {actual}, not to its name {expected}")]
    HashMismatch {
        /// The hash the block was named by (hex).
        expected: String,
        /// The hash of the bytes (hex).
        actual: String,
    },
    /// Too few replicas stored the block.
    #[error(
        "block {hash} write quorum not reached: {succeeded} of {needed} needed; failures: {}",
        Failures(failures)
    )]
    WriteQuorum {
        /// The block (hex).
        hash: String,
        /// Acknowledgements required (W).
        needed: usize,
        /// Acknowledgements that counted.
        succeeded: usize,
        /// Each owner that failed, with its error (and its hint's, if one was tried).
        failures: Vec<ReplicaFailure>,
    },
    /// No replica returned the block's bytes intact.
    #[error(
        "block {hash} not found intact on any replica; tried: {}",
        Failures(tried)
    )]
    NotFound {
        /// The block (hex).
        hash: String,
        /// Every node asked and what it answered.
        tried: Vec<ReplicaFailure>,
    },
    /// The ring has no nodes.
    #[error("the ring of layout version {layout_version} has no nodes")]
    EmptyRing {
        /// Version of the layout the ring was built from.
        layout_version: u64,
    },
    /// The local block store or metadata engine failed.
    #[error("local block storage: {0}")]
    Local(#[from] StoreError),
    /// This node's copy of the block-reference table could not be read.
    #[error("block references: {0}")]
    Table(#[from] super::error::TableError),
}

/// Displays failures as `node: reason; node: reason`.
struct Failures<'a>(&'a [ReplicaFailure]);

impl std::fmt::Display for Failures<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (index, failure) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", failure.node, failure.reason)?;
        }
        Ok(())
    }
}

/// A failure of `node` with `reason`.
fn failure(node: &NodeId, reason: impl Into<String>) -> ReplicaFailure {
    ReplicaFailure {
        node: node.clone(),
        reason: reason.into(),
    }
}
