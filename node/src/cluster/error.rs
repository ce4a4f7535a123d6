//! Failures of replicated-table operations. A quorum failure keeps what each replica did, so
//! an operator reading the log knows which nodes to look at.

use std::fmt;

use ring::NodeId;

use crate::store::codec::CodecError;
use crate::store::kv::KvError;

/// Why a table operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// Too few replicas answered; see [`QuorumError`] for each one's fate.
    #[error(transparent)]
    Quorum(#[from] QuorumError),
    /// The local metadata engine failed.
    #[error("local table storage: {0}")]
    Kv(#[from] KvError),
    /// An entry or hint could not be encoded or decoded.
    #[error("table entry encoding: {0}")]
    Codec(#[from] CodecError),
    /// A table was configured with impossible quorums.
    #[error("invalid replication for table {table}: {reason}")]
    InvalidReplication {
        /// The table's name.
        table: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A request named a table this node has not registered.
    #[error("unknown table {0:?}")]
    UnknownTable(String),
    /// A table name is empty or contains a NUL byte (NUL separates name and key on disk).
    #[error("invalid table name {0:?}")]
    InvalidTableName(String),
    /// The ring has no nodes, so no key has a replica.
    #[error("the ring of layout version {layout_version} has no nodes")]
    EmptyRing {
        /// Version of the layout the ring was built from.
        layout_version: u64,
    },
}

/// Whether a quorum failure happened on a write or a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// An insert.
    Write,
    /// A get.
    Read,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Write => "write",
            Operation::Read => "read",
        })
    }
}

/// What went wrong with one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaFailure {
    /// The replica (an owner of the key).
    pub node: NodeId,
    /// What its call, and any hinted write on its behalf, reported.
    pub reason: String,
}

/// Fewer replicas answered than the operation's quorum requires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{operation} quorum not reached on table {table}: {succeeded} of {needed} needed \
     replicas answered ({hinted} hinted writes placed); failures: {}",
    FailureList(failures)
)]
pub struct QuorumError {
    /// Read or write.
    pub operation: Operation,
    /// The table.
    pub table: &'static str,
    /// Answers required (W or R).
    pub needed: usize,
    /// Answers that counted toward the quorum.
    pub succeeded: usize,
    /// Writes held as hints for a failed owner (they reach it later, counted or not).
    pub hinted: usize,
    /// Each replica that failed, with its error.
    pub failures: Vec<ReplicaFailure>,
}

/// Displays failures as `node: reason; node: reason`.
struct FailureList<'a>(&'a [ReplicaFailure]);

impl fmt::Display for FailureList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
