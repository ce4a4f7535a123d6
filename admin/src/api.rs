//! The JSON documents of the admin API.

use serde::{Deserialize, Serialize};

/// What one node reports about itself (`GET /v1/status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node's id in the cluster layout.
    pub node_id: String,
    /// The `mucura` version serving.
    pub version: String,
    /// Seconds since the node started.
    pub uptime_seconds: u64,
    /// Where the node keeps its data.
    pub data_dir: String,
    /// The S3 endpoint address.
    pub s3_listen: String,
    /// Local storage figures.
    pub storage: StorageStatus,
}

/// Local storage figures of one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageStatus {
    pub buckets: u64,
    pub objects: u64,
    /// Sum of the sizes of live objects.
    pub object_bytes: u64,
    /// Block files on disk.
    pub blocks: u64,
    /// Size of the metadata database on disk.
    pub metadata_bytes: u64,
}

/// The body of every admin API error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// A stable machine-readable code (`unauthorized`, `not_found`, `internal`).
    pub code: String,
    /// A sentence for humans.
    pub message: String,
}
