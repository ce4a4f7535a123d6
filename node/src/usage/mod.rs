//! Usage accounting and quotas: how many objects and bytes each bucket (and so each bucket
//! owner) stores, and refusing writes that would take an owner past their quota.
//!
//! # Map of the module
//!
//! - [`counters`]: [`Usage`] (objects, bytes, signed so it also carries changes) and the
//!   single node's exact per-bucket [`counters::BucketCounters`], which the store updates
//!   at every commit of an object register (the delta between the old and new register).
//! - [`local`]: a cluster node's counters per (bucket, replica group), derived from its
//!   *local* copy of the objects table through the table's change observer, rebuilt from a
//!   scan at startup and on layout changes.
//! - [`reports`]: the cluster's agreement: each node publishes its figures into the
//!   full-copy `usage.reports` table; the usage of a bucket is, per replica group, the
//!   median of the owners' figures, summed ([`reports::ClusterUsageView`] is
//!   [`reports::ClusterUsage`]).
//! - [`quota`]: [`quota::QuotaGuard`], the write-time check against the bucket owner's
//!   `quota_bytes` / `quota_objects`, over a [`quota::UsageView`] (single node or cluster).
//! - [`traffic`]: requests by class and bytes in/out per bucket, counted on the S3 request
//!   path by the node that answered (published with the reports in a cluster and summed).
//! - [`admin`]: the admin API's `GET /v1/usage` answer.
//!
//! # Flow of a PUT with a quota
//!
//! The backend learns the bucket owner (it reads the bucket anyway), ingests the body,
//! then asks the guard whether the owner's usage plus the new object stays within the
//! quota; a refusal answers `403 QuotaExceeded` and commits nothing (the ingested blocks
//! are garbage for GC). After the commit the backend records the write with the guard, so
//! the next check on this node counts it before the usage figures do.

pub mod admin;
pub mod counters;
pub mod local;
pub mod quota;
pub mod reports;
#[cfg(test)]
mod tests;
pub mod traffic;

pub use self::counters::Usage;
pub use self::quota::{QuotaGuard, UsageView};

use crate::cluster::TableError;
use crate::store::codec::CodecError;

/// Why usage could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// A replicated table (local copy or publication) failed.
    #[error(transparent)]
    Table(#[from] TableError),
    /// A stored record does not decode.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The single node's store failed.
    #[error("store: {0}")]
    Store(String),
    /// Anything else (a background task failed).
    #[error("{0}")]
    Internal(String),
}
