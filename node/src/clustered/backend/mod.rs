//! [`ClusterBackend`]: the S3 backend of a cluster node, over the replicated tables
//! ([`crate::cluster::Table`]) and replicated blocks ([`BlockService`]).
//!
//! Any node coordinates any request:
//! - bucket names are decided by single-decree Paxos among the nodes of the layout
//!   ([`buckets_paxos`]: creation is a majority compare-and-set, and a node whose copy lacks
//!   a bucket asks a majority before answering `NoSuchBucket`); the bucket records then live
//!   in a full-copy table read locally ([`schemas::BucketsSchema`]);
//! - objects in a sharded N=3/W=2/R=2 table keyed by (bucket, key), one last-writer-wins
//!   register per key stamped at commit with this node's hybrid clock ([`objects`]);
//! - bodies above 8 KiB in 1 MiB content-addressed blocks put on W replicas before the
//!   object entry is written, with block references recorded after it ([`objects`]);
//! - listings ask every node for its local entries of the bucket in key order and merge
//!   them ([`listing`]); multipart uploads are two more sharded tables ([`multipart`]).
//!
//! # Known gaps
//!
//! - A deleted bucket stays visible on a node whose full copy has not yet received the
//!   tombstone (deletion is last-writer-wins; creation is agreed, see [`buckets_paxos`]).
//! - Listings see entries held by replicas, not writes parked as hints on non-owners: with
//!   more than N − W nodes unavailable a listing fails (503) rather than risk missing keys.
//! - Block references of replaced versions are removed best effort; a failure only delays
//!   garbage collection of those blocks (it is logged). A part uploaded again under the
//!   same number replaces the earlier upload in the parts map, whose block references are
//!   then never released (those blocks are kept, not lost).

// Until `serve` wires the backend in, only the tests construct it.

mod buckets_paxos;
mod ingest;
mod listing;
mod multipart;
mod objects;
mod reader;
pub mod schemas;
#[cfg(test)]
mod tests;

use std::fmt::Display;
use std::sync::{Arc, OnceLock};

use s3api::access::Acl;
use s3api::backend::{
    BucketInfo, BucketPermissions, ChecksumAlgorithm, ListPage, ListQuery, ObjectAttrs, ObjectInfo,
    PartInfo, PartsPage, S3Backend, UploadsPage, UploadsQuery,
};
use s3api::body::ObjectBody;
use s3api::{S3Error, S3ErrorCode, S3Result};

use crate::cluster::blocks::{BlockRefTable, BlockService};
use crate::cluster::{Lww, Replication, Stamp, StampClock, Table, TableError, TableSystem};
use crate::store::records::datetime_from_millis;
use crate::usage::{QuotaGuard, Usage, UsageView};

use self::buckets_paxos::{BucketState, CreationOutcome};
pub use self::reader::ClusterReader;
use self::schemas::{
    BucketCreation, BucketEntry, BucketsSchema, ObjectsSchema, PartsSchema, UploadsSchema,
};

/// Bits of a hybrid-clock value below the milliseconds.
const HLC_COUNTER_BITS: u32 = 16;
/// Block size of object bodies and parts.
const BLOCK_SIZE: usize = 1024 * 1024;
/// Bodies up to this size live inside the object entry.
const INLINE_LIMIT: usize = 8 * 1024;

/// The S3 backend of one cluster node. Cheap to clone.
#[derive(Clone)]
pub struct ClusterBackend {
    inner: Arc<Inner>,
}

struct Inner {
    system: Arc<TableSystem>,
    buckets: Table<BucketsSchema>,
    objects: Table<ObjectsSchema>,
    uploads: Table<UploadsSchema>,
    parts: Table<PartsSchema>,
    blocks: Arc<BlockService>,
    refs: BlockRefTable,
    /// Stamps this node's versions (node number: the ring hash of its id).
    clock: StampClock,
    /// Replicas per object key (N) and acknowledgements per write (W), for listings.
    replicas: usize,
    write_quorum: usize,
    /// The owners' quotas and the usage they are checked against, once set
    /// ([`ClusterBackend::set_quota`]).
    quota: OnceLock<(Arc<QuotaGuard>, Arc<dyn UsageView>)>,
}

impl ClusterBackend {
    /// The backend of the node `system` belongs to, storing metadata through `system`'s
    /// tables (objects, uploads and parts replicated as `replication`, normally
    /// [`Replication::DEFAULT_SHARDED`]) and bodies through `blocks`. Registers its tables
    /// with `system`, so peers' requests for them are answered from now on.
    pub fn new(
        system: Arc<TableSystem>,
        blocks: Arc<BlockService>,
        replication: Replication,
    ) -> Result<ClusterBackend, TableError> {
        let (replicas, write_quorum) = match replication {
            Replication::Sharded {
                n, write_quorum, ..
            } => (n, write_quorum),
            // Every node holds everything: any single answer covers every key.
            Replication::FullCopy => (usize::MAX, 1),
        };
        let node_number = ring::hash_key(system.liveness().local_id().as_str().as_bytes());
        let inner = Inner {
            buckets: Table::new(Arc::clone(&system), Replication::FullCopy)?,
            objects: Table::new(Arc::clone(&system), replication)?,
            uploads: Table::new(Arc::clone(&system), replication)?,
            parts: Table::new(Arc::clone(&system), replication)?,
            refs: BlockRefTable::new(Arc::clone(&system), replication)?,
            system,
            blocks,
            clock: StampClock::new(node_number),
            replicas,
            write_quorum,
            quota: OnceLock::new(),
        };
        Ok(ClusterBackend {
            inner: Arc::new(inner),
        })
    }

    /// Enforces the bucket owners' quotas with `guard` against the cluster-wide usage of
    /// `view` from now on (set once; later calls are ignored).
    pub fn set_quota(&self, guard: Arc<QuotaGuard>, view: Arc<dyn UsageView>) {
        let _ = self.inner.quota.set((guard, view));
    }
}

/// A replication failure as the client sees it: 503 with the diagnostics.
fn unavailable(what: &str, err: impl Display) -> S3Error {
    S3Error::new(S3ErrorCode::ServiceUnavailable, format!("{what}: {err}"))
}

fn no_such_bucket(name: &str) -> S3Error {
    S3Error::from(S3ErrorCode::NoSuchBucket).with_detail("BucketName", name)
}

impl Inner {
    /// A fresh stamp for a version committed now by this node.
    fn new_stamp(&self) -> Stamp {
        self.clock.next()
    }

    /// Refuses (`QuotaExceeded`) a write adding `adding` to the bucket of `entry` that
    /// would take its owner past a quota. Returns the owner for [`Inner::record_write`].
    fn check_quota(&self, entry: &BucketEntry, adding: Usage) -> S3Result<Option<String>> {
        let (Some((guard, view)), Some(creation)) = (self.quota.get(), &entry.record.value) else {
            return Ok(None);
        };
        guard.check(&**view, &creation.owner, adding)?;
        Ok(Some(creation.owner.clone()))
    }

    /// Tells the quota guard of a committed write it admitted.
    fn record_write(&self, owner: Option<String>, usage: Usage) {
        if let (Some((guard, _)), Some(owner)) = (self.quota.get(), owner) {
            guard.record(&owner, usage);
        }
    }

    /// Moves the clock past a stamp seen in stored data, so this node's next version wins.
    fn observe(&self, hlc: u64) {
        self.clock.observe(hlc);
    }

    /// The bucket's entry from this node's full copy, if it holds a live one.
    async fn known_bucket(&self, name: &str) -> S3Result<Option<BucketEntry>> {
        let entry = self
            .buckets
            .get(&name.to_owned())
            .await
            .map_err(|err| unavailable("reading the bucket table", err))?;
        Ok(entry.filter(|entry| !entry.record.is_tombstone()))
    }

    /// The bucket's live entry, `NoSuchBucket` if absent or deleted. When this node's copy
    /// has no live entry, the agreed log decides (a bucket just created elsewhere may not
    /// have reached this copy yet) and the learned creation is stored here; its ACL and
    /// policy arrive with the creator's write (private to the owner until then).
    async fn require_bucket(&self, name: &str) -> S3Result<BucketEntry> {
        if let Some(entry) = self.known_bucket(name).await? {
            return Ok(entry);
        }
        let BucketState::Exists { created, owner, .. } = self.agreed_state(name).await? else {
            return Err(no_such_bucket(name));
        };
        let creation = BucketCreation {
            created_ms: millis_of_stamp(&created),
            owner,
        };
        let entry = BucketEntry {
            name: name.to_owned(),
            record: Lww::new(created, creation),
            acl: None,
            policy: None,
            cors: None,
        };
        if let Err(err) = self.buckets.local_merge(&entry).await {
            // Only a cache of the agreed log: the next read asks the majority again.
            tracing::warn!(bucket = name, error = %err, "storing a learned bucket record");
        }
        Ok(entry)
    }

    async fn list_buckets(&self) -> S3Result<Vec<BucketInfo>> {
        let entries = self.local_buckets()?;
        Ok(entries
            .into_iter()
            .filter_map(|entry| {
                let creation = entry.record.value?;
                Some(BucketInfo {
                    name: entry.name,
                    created: datetime_from_millis(creation.created_ms),
                    owner: creation.owner,
                })
            })
            .collect())
    }

    async fn create_bucket(&self, name: &str, acl: &Acl) -> S3Result<()> {
        let taken = |owner: &str| {
            let code = if owner == acl.owner {
                S3ErrorCode::BucketAlreadyOwnedByYou
            } else {
                S3ErrorCode::BucketAlreadyExists
            };
            Err(S3Error::from(code).with_detail("BucketName", name))
        };
        if let Some(existing) = self.known_bucket(name).await? {
            if let Some(creation) = &existing.record.value {
                return taken(&creation.owner);
            }
        }
        let stamp = match self.agree_creation(name, &acl.owner).await? {
            CreationOutcome::Created(stamp) => stamp,
            CreationOutcome::Taken { owner } => return taken(&owner),
        };
        let creation = BucketCreation {
            created_ms: millis_of_stamp(&stamp),
            owner: acl.owner.clone(),
        };
        let entry = BucketEntry {
            name: name.to_owned(),
            record: Lww::new(stamp, creation),
            acl: Some(Lww::new(stamp, acl.clone())),
            policy: None,
            cors: None,
        };
        // The creation is decided and durable on a majority; the record is a copy that
        // readers lacking it rebuild from the agreed log, so a failed write is no failure
        // (the bucket then stays private until an ACL is set again).
        if let Err(err) = self.buckets.insert(&entry).await {
            tracing::warn!(bucket = name, error = %err, "writing a created bucket's record");
        }
        Ok(())
    }

    /// The bucket's owner, ACL, policy and CORS configuration, from this node's copy.
    async fn bucket_permissions(&self, name: &str) -> S3Result<BucketPermissions> {
        let entry = self.require_bucket(name).await?;
        let owner = entry
            .record
            .value
            .as_ref()
            .map(|creation| creation.owner.clone())
            .ok_or_else(|| no_such_bucket(name))?;
        Ok(BucketPermissions {
            acl: entry.acl().unwrap_or_else(|| Acl::private(&owner)),
            policy: entry.policy().map(str::to_owned),
            cors: entry.cors().map(str::to_owned),
            owner,
        })
    }

    /// Writes one permission register of a live bucket under a fresh stamp (newer than the
    /// creation, so it applies); the other registers travel unchanged and merge as no-ops.
    async fn update_bucket(
        &self,
        name: &str,
        change: impl FnOnce(&mut BucketEntry, Stamp),
    ) -> S3Result<()> {
        let mut entry = self.require_bucket(name).await?;
        let registers = [
            Some(entry.record.stamp),
            entry.acl.as_ref().map(|acl| acl.stamp),
            entry.policy.as_ref().map(|policy| policy.stamp),
            entry.cors.as_ref().map(|cors| cors.stamp),
        ];
        for stamp in registers.into_iter().flatten() {
            self.observe(stamp.hlc);
        }
        change(&mut entry, self.new_stamp());
        self.buckets
            .insert(&entry)
            .await
            .map_err(|err| unavailable("writing the bucket table", err))
    }

    async fn head_bucket(&self, name: &str) -> S3Result<BucketInfo> {
        let entry = self.require_bucket(name).await?;
        let creation = entry.record.value.ok_or_else(|| no_such_bucket(name))?;
        Ok(BucketInfo {
            name: name.to_owned(),
            created: datetime_from_millis(creation.created_ms),
            owner: creation.owner,
        })
    }

    async fn delete_bucket(&self, name: &str) -> S3Result<()> {
        self.require_bucket(name).await?;
        let one = ListQuery {
            max_keys: 1,
            ..ListQuery::default()
        };
        let objects = self.list_objects(name, &one).await?;
        let uploads = self
            .list_uploads(
                name,
                &UploadsQuery {
                    max_uploads: 1,
                    ..UploadsQuery::default()
                },
            )
            .await?;
        if !objects.objects.is_empty()
            || !objects.common_prefixes.is_empty()
            || !uploads.uploads.is_empty()
        {
            return Err(S3Error::from(S3ErrorCode::BucketNotEmpty).with_detail("BucketName", name));
        }
        let Some(stamp) = self.agree_deletion(name).await? else {
            return Err(no_such_bucket(name));
        };
        let entry = BucketEntry {
            name: name.to_owned(),
            record: Lww::tombstone(stamp),
            // A later bucket of the name ignores these registers (they predate its creation).
            acl: None,
            policy: None,
            cors: None,
        };
        self.buckets
            .insert(&entry)
            .await
            .map_err(|err| unavailable("writing the bucket table", err))
    }
}

/// Commit time of a stamp in Unix milliseconds.
fn millis_of_stamp(stamp: &Stamp) -> i64 {
    i64::try_from(stamp.hlc >> HLC_COUNTER_BITS).unwrap_or(i64::MAX)
}

impl S3Backend for ClusterBackend {
    type Reader = ClusterReader;

    async fn list_buckets(&self) -> S3Result<Vec<BucketInfo>> {
        self.inner.list_buckets().await
    }

    async fn create_bucket(&self, name: &str, acl: &Acl) -> S3Result<()> {
        self.inner.create_bucket(name, acl).await
    }

    async fn head_bucket(&self, name: &str) -> S3Result<BucketInfo> {
        self.inner.head_bucket(name).await
    }

    async fn delete_bucket(&self, name: &str) -> S3Result<()> {
        self.inner.delete_bucket(name).await
    }

    async fn bucket_permissions(&self, name: &str) -> S3Result<BucketPermissions> {
        self.inner.bucket_permissions(name).await
    }

    async fn put_bucket_acl(&self, name: &str, acl: &Acl) -> S3Result<()> {
        self.inner
            .update_bucket(name, |entry, stamp| {
                entry.acl = Some(Lww::new(stamp, acl.clone()));
            })
            .await
    }

    async fn put_bucket_policy(&self, name: &str, policy: Option<&str>) -> S3Result<()> {
        self.inner
            .update_bucket(name, |entry, stamp| {
                entry.policy = Some(match policy {
                    Some(text) => Lww::new(stamp, text.to_owned()),
                    None => Lww::tombstone(stamp),
                });
            })
            .await
    }

    async fn put_bucket_cors(&self, name: &str, cors: Option<&str>) -> S3Result<()> {
        self.inner
            .update_bucket(name, |entry, stamp| {
                entry.cors = Some(match cors {
                    Some(text) => Lww::new(stamp, text.to_owned()),
                    None => Lww::tombstone(stamp),
                });
            })
            .await
    }

    async fn object_acl(&self, bucket: &str, key: &str) -> S3Result<Option<Acl>> {
        self.inner.object_acl(bucket, key).await
    }

    async fn put_object_acl(&self, bucket: &str, key: &str, acl: &Acl) -> S3Result<()> {
        self.inner.put_object_acl(bucket, key, acl).await
    }

    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        attrs: ObjectAttrs,
        body: &mut ObjectBody,
    ) -> S3Result<ObjectInfo> {
        self.inner.put_object(bucket, key, attrs, body).await
    }

    async fn head_object(&self, bucket: &str, key: &str) -> S3Result<ObjectInfo> {
        self.inner.head_object(bucket, key).await
    }

    async fn get_object(&self, bucket: &str, key: &str) -> S3Result<ClusterReader> {
        self.inner.get_object(bucket, key).await
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> S3Result<()> {
        self.inner.delete_object(bucket, key).await
    }

    async fn list_objects(&self, bucket: &str, query: &ListQuery) -> S3Result<ListPage> {
        self.inner.list_objects(bucket, query).await
    }

    async fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        attrs: ObjectAttrs,
        checksum: Option<ChecksumAlgorithm>,
    ) -> S3Result<String> {
        self.inner.create_upload(bucket, key, attrs, checksum).await
    }

    async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: &mut ObjectBody,
    ) -> S3Result<PartInfo> {
        self.inner
            .upload_part(bucket, key, upload_id, part_number, body)
            .await
    }

    async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> S3Result<ObjectInfo> {
        self.inner
            .complete_upload(bucket, key, upload_id, parts)
            .await
    }

    async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> S3Result<()> {
        self.inner.abort_upload(bucket, key, upload_id).await
    }

    async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number_marker: u32,
        max_parts: usize,
    ) -> S3Result<PartsPage> {
        self.inner
            .list_parts(bucket, key, upload_id, part_number_marker, max_parts)
            .await
    }

    async fn list_multipart_uploads(
        &self,
        bucket: &str,
        query: &UploadsQuery,
    ) -> S3Result<UploadsPage> {
        self.inner.list_uploads(bucket, query).await
    }
}
