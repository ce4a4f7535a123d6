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
    /// A stable machine-readable code (`unauthorized`, `not_found`, `not_clustered`,
    /// `conflict`, `invalid`, `internal`).
    pub code: String,
    /// A sentence for humans.
    pub message: String,
}

/// A node's liveness as the answering node sees it (`Up` → `Suspect` → `Down` with silence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerLiveness {
    /// Heard from within the last few heartbeats (the answering node itself is always `Up`).
    Up,
    /// Silent for a few heartbeats.
    Suspect,
    /// Silent long enough to be treated as unreachable.
    Down,
}

/// One node in a [`ClusterStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNodeStatus {
    /// The node's id.
    pub id: String,
    /// Its failure domain.
    pub zone: String,
    /// Its capacity (bytes or relative weight).
    pub capacity: u64,
    /// Its inter-node RPC address.
    pub rpc_addr: String,
    /// Its liveness as the answering node sees it.
    pub status: PeerLiveness,
    /// Whether it is a member of the current layout (or only known through gossip).
    pub in_layout: bool,
    /// Whether it is the answering node.
    pub is_self: bool,
}

/// The cluster as one node sees it (`GET /v1/cluster/status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The answering node's id.
    pub node_id: String,
    /// The version of the layout it uses (0: no layout applied yet).
    pub layout_version: u64,
    /// The layout's replication factor.
    pub replication: usize,
    /// Every node it knows: the layout's members and nodes learnt through gossip.
    pub nodes: Vec<ClusterNodeStatus>,
    /// Writes this node holds for other nodes that were down (hinted handoff).
    pub pending_hints: u64,
    /// Blocks this node holds for other nodes that were down (block handoff).
    #[serde(default)]
    pub pending_block_handoffs: u64,
    /// What anti-entropy has done since the node started.
    #[serde(default)]
    pub anti_entropy: AntiEntropySummary,
    /// The latest block scrub, if one ran since the node started.
    #[serde(default)]
    pub last_scrub: Option<ScrubSummary>,
    /// Progress of this node's part of the latest rebalance (absent from older nodes).
    #[serde(default)]
    pub rebalance: Option<RebalanceSummary>,
    /// The latest block garbage collection, if one ran since the node started (absent from
    /// older nodes).
    #[serde(default)]
    pub last_block_gc: Option<BlockGcSummary>,
    /// The latest block resync, if one ran since the node started (absent from older
    /// nodes).
    #[serde(default)]
    pub last_block_resync: Option<ResyncSummary>,
    /// The latest purge of old tombstones, if one ran since the node started (absent from
    /// older nodes).
    #[serde(default)]
    pub last_tombstone_purge: Option<TombstonePurgeSummary>,
    /// Operations this node coordinated that could not reach their quorum, since it started
    /// (zero from older nodes).
    #[serde(default)]
    pub quorum_failures: QuorumFailureTotals,
    /// Hints this node delivered to their owners and deleted, since it started (zero from
    /// older nodes).
    #[serde(default)]
    pub hints_delivered_total: u64,
    /// Blocks this node held for other nodes and delivered to them, since it started (zero
    /// from older nodes).
    #[serde(default)]
    pub block_handoffs_delivered_total: u64,
}

/// Coordinated operations that failed for lack of replicas, since the node started (part of
/// [`ClusterStatus`]). An S3 request that met one answers 503; background work (usage
/// reports, rebalancing) counts here too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumFailureTotals {
    /// Metadata writes acknowledged by fewer than W replicas.
    pub table_writes: u64,
    /// Metadata reads answered by fewer than R replicas.
    pub table_reads: u64,
    /// Block puts acknowledged by fewer than W replicas.
    pub block_writes: u64,
    /// Block gets that found no intact copy on any replica.
    pub block_reads: u64,
}

/// This node's part of moving data after a layout change (part of [`ClusterStatus`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebalanceSummary {
    /// The layout version rebalanced to (0: no change seen since the node started).
    pub layout_version: u64,
    /// Moved ranges this node held data of under the previous layout.
    pub ranges_total: u64,
    /// Of those, ranges every new owner confirmed having.
    pub ranges_synced: u64,
    /// Table entries sent to new owners.
    pub entries_moved: u64,
    /// Blocks sent to new owners.
    pub blocks_moved: u64,
    /// Entries and blocks deleted here because this node no longer owns them.
    pub dropped: u64,
}

/// Anti-entropy since the node started (part of [`ClusterStatus`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AntiEntropySummary {
    /// Rounds completed.
    pub rounds: u64,
    /// Entries repaired (in either direction) over all rounds.
    pub entries_repaired_total: u64,
    /// The latest round.
    pub last_round: Option<AntiEntropyRound>,
}

/// One anti-entropy round (`POST /v1/cluster/anti-entropy` answers with it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AntiEntropyRound {
    /// When it started, in milliseconds since the Unix epoch.
    pub started_at_unix_ms: u64,
    /// How long it took.
    pub duration_ms: u64,
    /// Replica groups compared with a peer.
    pub groups_compared: u64,
    /// Of those, groups that were already equal.
    pub groups_in_sync: u64,
    /// Groups no other owner could be reached for.
    pub groups_unsynced: u64,
    /// Entries that changed this node's copy or a peer's.
    pub entries_repaired: u64,
    /// Failed exchanges.
    pub errors: u64,
    /// The first failure, for operators.
    pub first_error: Option<String>,
}

/// One block scrub (part of [`ClusterStatus`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubSummary {
    /// When it finished, in milliseconds since the Unix epoch.
    pub finished_at_unix_ms: u64,
    /// Block files re-hashed.
    pub checked: u64,
    /// Files found corrupt (moved aside).
    pub corrupt: u64,
    /// Corrupt blocks fetched again from a replica.
    pub repaired: u64,
    /// Corrupt blocks no replica could supply.
    pub unrepaired: u64,
    /// Per-block errors, or 1 if the pass itself failed.
    pub errors: u64,
}

/// One block resync pass (part of [`ClusterStatus`]): referenced blocks this node owns but
/// had no file for, fetched from other replicas.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResyncSummary {
    /// When it finished, in milliseconds since the Unix epoch.
    pub finished_at_unix_ms: u64,
    /// Block-reference entries of this node examined.
    pub scanned: u64,
    /// Referenced blocks this node owns.
    pub owned: u64,
    /// Of those, blocks without a local file.
    pub missing: u64,
    /// Missing blocks fetched from another replica.
    pub fetched: u64,
    /// Missing blocks no replica could supply (retried next pass).
    pub failed: u64,
    /// The first failure (or why the pass failed as a whole), for operators.
    #[serde(default)]
    pub first_error: Option<String>,
}

/// One purge of old tombstones from the sharded tables, driven by this node for the keys it
/// is the first owner of (part of [`ClusterStatus`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TombstonePurgeSummary {
    /// When it finished, in milliseconds since the Unix epoch.
    pub finished_at_unix_ms: u64,
    /// Entries of this node examined, all tables together.
    pub scanned: u64,
    /// Deletions found older than the grace period.
    pub tombstones: u64,
    /// Tombstones removed from every replica.
    pub purged: u64,
    /// Tombstones kept because a replica could not be reached or refused (retried later).
    pub failed: u64,
    /// Why the pass failed as a whole, if it did.
    #[serde(default)]
    pub error: Option<String>,
}

/// One block garbage collection pass (part of [`ClusterStatus`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockGcSummary {
    /// When it finished, in milliseconds since the Unix epoch.
    pub finished_at_unix_ms: u64,
    /// Local blocks this node owns that were considered.
    pub owned: u64,
    /// Blocks deleted.
    pub removed: u64,
    /// Blocks kept because an object version references them.
    pub referenced: u64,
    /// Unreferenced blocks kept because they are younger than the grace period.
    pub in_grace: u64,
    /// Blocks kept because their references could not be read.
    pub unreadable: u64,
    /// Why the pass failed as a whole, if it did.
    #[serde(default)]
    pub error: Option<String>,
}

/// Why a cluster route could not answer; each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterApiError {
    /// The node runs without `--rpc-listen` (404).
    #[error("not in cluster mode: start the node with --rpc-listen to use the cluster routes")]
    NotClustered,
    /// The layout does not follow the current one (409).
    #[error("{0}")]
    Conflict(String),
    /// The layout or request is malformed or invalid (400).
    #[error("{0}")]
    Invalid(String),
    /// The node failed (500).
    #[error("{0}")]
    Internal(String),
}

/// Where one object's metadata and blocks live (`GET /v1/cluster/locate?bucket=B&key=K`),
/// as the answering node found by asking each owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocateReport {
    /// The bucket asked about.
    pub bucket: String,
    /// The key asked about.
    pub key: String,
    /// Every owner of the object's metadata under the current ring, primary first.
    pub metadata: Vec<MetadataReplica>,
    /// The blocks of the newest version any owner holds (none for inline bodies, deletes
    /// and unknown keys), in body order.
    pub blocks: Vec<BlockLocation>,
    /// Hints for this key's metadata held by the answering node for owners that were down.
    pub hints_pending_for_key: u64,
}

/// One owner's copy of an object's metadata (part of [`LocateReport`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataReplica {
    /// The owner's node id.
    pub node: String,
    /// Whether the node is an owner under the current ring (always true today: only owners
    /// are listed).
    pub owner: bool,
    /// Whether it answered with a copy (a delete's tombstone counts as a copy).
    pub holds: bool,
    /// The hybrid logical clock of its copy's version, if it holds one.
    pub stamp: Option<u64>,
    /// Whether its copy is a delete.
    pub tombstone: bool,
    /// Why it could not be asked, if it could not.
    pub error: Option<String>,
}

/// One block of an object and its owners (part of [`LocateReport`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockLocation {
    /// BLAKE3 hash of the block, in hex (the name of its file under `blocks/`).
    pub hash: String,
    /// Every owner of the block under the current ring, primary first.
    pub owners: Vec<BlockReplica>,
}

/// One owner of a block (part of [`BlockLocation`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockReplica {
    /// The owner's node id.
    pub node: String,
    /// Whether it holds an intact copy (its file re-hashes to the block's hash).
    pub holds: bool,
    /// Why it could not be asked, if it could not.
    pub error: Option<String>,
}

/// Whether a user or an access key may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    /// Requests signed for it are accepted (until it expires).
    Active,
    /// Requests signed for it are refused; it can be enabled again.
    Disabled,
}

/// One user as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The user id (`[a-z0-9][a-z0-9._-]{0,63}`), what buckets and grants name.
    pub id: String,
    /// A name for humans.
    pub display_name: String,
    /// The X.509 subject DN of the user's certificate, if one is registered.
    pub subject_dn: Option<String>,
    /// Whether the user's keys are accepted.
    pub status: AccountStatus,
    /// Most bytes the user may store, if limited.
    pub quota_bytes: Option<u64>,
    /// Most objects the user may store, if limited.
    pub quota_objects: Option<u64>,
    /// When the user stops being accepted, in milliseconds since the Unix epoch.
    pub expires_at_unix_ms: Option<u64>,
    /// When the user was created, in milliseconds since the Unix epoch.
    pub created_at_unix_ms: u64,
}

/// `POST /v1/users`: the user to create (unknown fields are refused, so a misspelt option
/// is an error rather than silently ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// The new user's id.
    pub id: String,
    /// A name for humans (default: the id).
    #[serde(default)]
    pub display_name: Option<String>,
    /// The X.509 subject DN of the user's certificate.
    #[serde(default)]
    pub subject_dn: Option<String>,
    /// Most bytes the user may store.
    #[serde(default)]
    pub quota_bytes: Option<u64>,
    /// Most objects the user may store.
    #[serde(default)]
    pub quota_objects: Option<u64>,
    /// When the user stops being accepted, in milliseconds since the Unix epoch.
    #[serde(default)]
    pub expires_at_unix_ms: Option<u64>,
}

/// `PATCH /v1/users/{id}`: what to change; every field is optional and unknown fields are
/// refused, as for [`CreateUserRequest`].
///
/// A field left out keeps its value. For the optional attributes (subject DN, quotas,
/// expiry) `null` clears the value and a value replaces it, hence `Option<Option<…>>`:
/// `None` is "absent", `Some(None)` is `null`, `Some(Some(v))` is `v`. So
/// `{"quota_bytes": null, "quota_objects": 500}` lifts the byte quota, sets the object
/// quota and keeps the rest. A display name cannot be cleared (`null` is refused).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// The new name for humans (`null` is refused: every user has one).
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub display_name: Option<String>,
    /// The new X.509 subject DN; `null` removes it.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub subject_dn: Option<Option<String>>,
    /// The new byte quota; `null` lifts it.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub quota_bytes: Option<Option<u64>>,
    /// The new object quota; `null` lifts it.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub quota_objects: Option<Option<u64>>,
    /// The new expiry in milliseconds since the Unix epoch (in the future); `null` makes
    /// the user never expire.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at_unix_ms: Option<Option<u64>>,
}

impl UpdateUserRequest {
    /// Whether the request changes nothing (every field absent).
    pub fn is_empty(&self) -> bool {
        self == &UpdateUserRequest::default()
    }
}

/// Reads a field that is present and may not be `null` (plain `Option<T>` would read
/// `null` as absent, silently ignoring a request to clear what cannot be cleared).
fn not_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Reads a field that is present (serde only calls this then, `default` covers absence),
/// keeping `null` as `Some(None)` where plain `Option<Option<T>>` would fold it into `None`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The answer about one user (create, show, disable, enable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAnswer {
    /// The user.
    pub user: UserInfo,
    /// Its access keys, when the answer lists them (`GET /v1/users/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<AccessKeyInfo>>,
}

/// `GET /v1/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserList {
    /// Every user, by id.
    pub users: Vec<UserInfo>,
}

/// `DELETE /v1/users/{id}`: what was removed. The user's buckets and objects stay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedUser {
    /// The deleted user's id (never given to another user).
    pub deleted_user: String,
    /// The access keys deleted with it.
    pub deleted_keys: Vec<String>,
}

/// One access key as the admin API shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKeyInfo {
    /// The access key id (`MK` and 18 upper-case letters or digits).
    pub access_key: String,
    /// The user the key acts for.
    pub user: String,
    /// Whether requests signed with it are accepted.
    pub status: AccountStatus,
    /// When it stops being accepted, in milliseconds since the Unix epoch.
    pub expires_at_unix_ms: Option<u64>,
    /// When it was created, in milliseconds since the Unix epoch.
    pub created_at_unix_ms: u64,
}

/// `POST /v1/users/{id}/keys`: options of the new key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// When the key stops being accepted, in milliseconds since the Unix epoch.
    #[serde(default)]
    pub expires_at_unix_ms: Option<u64>,
}

/// A key just created (or rotated): the only answer that carries its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAccessKey {
    /// The access key id.
    pub access_key: String,
    /// The secret; the node keeps it sealed and never shows it again.
    pub secret_key: String,
    /// The user the key acts for.
    pub user: String,
    /// Always active when new.
    pub status: AccountStatus,
    /// When it stops being accepted, in milliseconds since the Unix epoch.
    pub expires_at_unix_ms: Option<u64>,
    /// When it was created, in milliseconds since the Unix epoch.
    pub created_at_unix_ms: u64,
    /// The key this one replaces, now disabled (rotation only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_key: Option<String>,
}

/// The answer about one access key (disable, enable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAnswer {
    /// The key.
    pub key: AccessKeyInfo,
}

/// `GET /v1/keys[?user=U]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyList {
    /// The keys, by user then id.
    pub keys: Vec<AccessKeyInfo>,
}

/// `DELETE /v1/keys/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedKey {
    /// The deleted key's id.
    pub deleted_key: String,
}

/// Why a user or key route could not answer; each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityApiError {
    /// The node keeps no users (501).
    #[error("this node does not manage users and access keys")]
    NotSupported,
    /// No such user or key (404).
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the current state: duplicate id, disabled user (409).
    #[error("{0}")]
    Conflict(String),
    /// The request is malformed or invalid (400).
    #[error("{0}")]
    Invalid(String),
    /// The node failed, e.g. too few replicas acknowledged (500).
    #[error("{0}")]
    Internal(String),
}
