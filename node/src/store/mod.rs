//! The local storage engine of a node: metadata in one key-value database, object bytes in
//! content-addressed block files.
//!
//! Map of the module:
//! - [`kv`]: the only module that knows `sled`; a narrow [`kv::KvStore`] trait with tables
//!   (buckets, objects, uploads, parts), range scans, transactions and flush.
//! - [`codec`]: version byte + bincode for every record; [`records`]: the records, including
//!   the last-writer-wins object register ([`records::Crdt`]); [`keys`]: key layouts.
//! - [`blocks`]: block files (temp → fsync → rename); [`ingest`]: streams a body into blocks.
//! - [`objects`], [`reader`], [`multipart`], [`listing`], [`buckets`]: the S3 operations.
//! - [`gc`]: mark-and-sweep of unreferenced blocks; [`error`]: failures and their S3 mapping.
//!
//! A PUT flows: bucket check → [`ingest`] (blocks written and fsynced, directories fsynced) →
//! a transaction merges the new version into the object register → the database is flushed →
//! the client gets its answer. Nothing becomes visible before the record commits, and nothing
//! is acknowledged before it is durable.

pub(crate) mod blocks;
mod buckets;
pub(crate) mod codec;
mod error;
mod gc;
mod hlc;
mod ingest;
mod keys;
pub(crate) mod kv;
pub(crate) mod legacy;
mod listing;
mod multipart;
mod objects;
pub(crate) mod reader;
pub(crate) mod records;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use s3api::access::Acl;
use s3api::backend::{
    BucketInfo, BucketPermissions, ChecksumAlgorithm, ListPage, ListQuery, ObjectAttrs, ObjectInfo,
    PartInfo, PartsPage, S3Backend, UploadsPage, UploadsQuery,
};
use s3api::body::ObjectBody;
use s3api::S3Result;

use blocks::{BlockIo, BlockStore, OsBlockIo};
use codec::decode_head;
use hlc::HybridClock;
use kv::{KvStore, KvTxn, SledKv, Table};
use records::{HeadState, ObjectHead, ObjectRecord, VersionStamp};

use crate::usage::counters::BucketCounters;
use crate::usage::quota::BucketUsage;
use crate::usage::{QuotaGuard, Usage, UsageError, UsageView};

pub use error::StoreError;
pub use gc::GcReport;
pub use reader::StoreReader;

/// Block size for object bodies: large enough that per-block overhead (a file, a hash, a
/// record entry) is small, small enough that three blocks per request fit comfortably in RAM.
const DEFAULT_BLOCK_SIZE: usize = 1024 * 1024;
/// Bodies up to this size live in the metadata record: one write, no block file.
const DEFAULT_INLINE_THRESHOLD: usize = 8 * 1024;
/// How long unreferenced blocks, temp files and tombstones are kept: longer than any upload
/// takes between writing its first block and committing its record.
const DEFAULT_GC_GRACE: Duration = Duration::from_secs(3600);

/// Where and how a [`Store`] keeps its data.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Root directory: `meta/` (database) and `blocks/` live below it.
    pub data_dir: PathBuf,
    /// This node's id, part of every version stamp it issues.
    pub node_id: u64,
    /// Size of the blocks bodies are cut into.
    pub block_size: usize,
    /// Bodies up to this many bytes are stored inside the metadata record.
    pub inline_threshold: usize,
    /// Minimum age before GC deletes an unreferenced block, temp file or tombstone.
    pub gc_grace: Duration,
    /// Whether GC deletes block files no local record references. A clustered node turns
    /// it off: its block directory also holds replicas that only other nodes' records
    /// reference, which the cluster's block-reference table collects instead.
    pub sweep_unreferenced_blocks: bool,
}

impl StoreConfig {
    /// Defaults: node id 0, 1 MiB blocks, 8 KiB inline threshold, 1 h GC grace.
    pub fn new(data_dir: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig {
            data_dir: data_dir.into(),
            node_id: 0,
            block_size: DEFAULT_BLOCK_SIZE,
            inline_threshold: DEFAULT_INLINE_THRESHOLD,
            gc_grace: DEFAULT_GC_GRACE,
            sweep_unreferenced_blocks: true,
        }
    }
}

/// Figures for the admin API and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Live (not deleted) objects.
    pub objects: u64,
    /// Buckets.
    pub buckets: u64,
    /// Block files on disk, referenced or not.
    pub blocks: u64,
    /// Bytes the metadata database occupies on disk.
    pub meta_size_on_disk: u64,
    /// Sum of the sizes of live objects.
    pub bytes: u64,
}

/// The local store. Cheap to clone; all clones share one database and block directory.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    config: StoreConfig,
    kv: Box<dyn KvStore>,
    blocks: Arc<BlockStore>,
    clock: HybridClock,
    live_objects: AtomicI64,
    live_bytes: AtomicI64,
    /// Exact per-bucket usage, kept with the two totals above.
    usage: BucketCounters,
    /// The owners' quotas, once the node sets a guard ([`Store::set_quota_guard`]).
    quota: OnceLock<Arc<QuotaGuard>>,
}

impl Store {
    /// Opens (or creates) the store in `config.data_dir`.
    pub fn open(config: StoreConfig) -> Result<Store, StoreError> {
        Store::open_with_io(config, Arc::new(OsBlockIo))
    }

    /// Opens the store with a custom block I/O layer (fault injection in tests).
    pub(crate) fn open_with_io(
        mut config: StoreConfig,
        io: Arc<dyn BlockIo>,
    ) -> Result<Store, StoreError> {
        // Block lengths are stored as u32, and an inline body must fit in one block.
        config.block_size = config.block_size.clamp(1, u32::MAX as usize);
        config.inline_threshold = config.inline_threshold.min(config.block_size);
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| StoreError::io("creating data dir", e))?;
        let kv = SledKv::open(&config.data_dir.join("meta"))?;
        let blocks = BlockStore::open(config.data_dir.join("blocks"), io)?;
        let inner = Inner {
            config,
            kv: Box::new(kv),
            blocks: Arc::new(blocks),
            clock: HybridClock::new(),
            live_objects: AtomicI64::new(0),
            live_bytes: AtomicI64::new(0),
            usage: BucketCounters::new(),
            quota: OnceLock::new(),
        };
        inner.load_counters()?;
        Ok(Store {
            inner: Arc::new(inner),
        })
    }

    /// Deletes unreferenced blocks and stale temp files and purges old tombstones.
    pub async fn collect_garbage(&self) -> Result<GcReport, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || gc::collect(&store.inner)).await?
    }

    /// The block directory, shared with the cluster's block replication (one `BlockStore`
    /// per directory keeps its file count and temp-file naming in one place).
    pub(crate) fn block_store(&self) -> Arc<BlockStore> {
        Arc::clone(&self.inner.blocks)
    }

    /// Makes every metadata write so far durable (failures are logged).
    pub async fn flush(&self) {
        if let Err(err) = self.inner.kv.flush().await {
            tracing::error!(error = %err, "flushing the metadata database failed");
        }
    }

    /// Enforces the bucket owners' quotas with `guard` from now on (set once; later calls
    /// are ignored).
    pub fn set_quota_guard(&self, guard: Arc<QuotaGuard>) {
        let _ = self.inner.quota.set(guard);
    }

    /// Current figures (object counts are maintained incrementally since open).
    pub fn stats(&self) -> StoreStats {
        let inner = &self.inner;
        let buckets = inner
            .kv
            .scan_from(Table::Buckets, std::ops::Bound::Unbounded)
            .count() as u64;
        StoreStats {
            objects: inner.live_objects.load(Ordering::Relaxed).max(0) as u64,
            buckets,
            blocks: inner.blocks.block_count(),
            meta_size_on_disk: inner.kv.size_on_disk().unwrap_or(0),
            bytes: inner.live_bytes.load(Ordering::Relaxed).max(0) as u64,
        }
    }
}

impl Inner {
    /// A fresh stamp for a version committed now.
    fn new_stamp(&self) -> VersionStamp {
        VersionStamp {
            hlc: self.clock.now(),
            node_id: self.config.node_id,
            uuid: *uuid::Uuid::new_v4().as_bytes(),
        }
    }

    /// Runs `body` as one transaction over the metadata tables (it may run more than once).
    fn transact<T>(
        &self,
        body: impl FnMut(&dyn KvTxn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // A transaction may wait on sled's locks; on the multi-thread runtime tell tokio this
        // worker blocks, so two waiting transactions cannot stall every other request.
        let multi_thread = tokio::runtime::Handle::try_current().is_ok_and(|handle| {
            handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        });
        if multi_thread {
            tokio::task::block_in_place(|| kv::transaction(&*self.kv, body))
        } else {
            kv::transaction(&*self.kv, body)
        }
    }

    /// Awaits durability of all writes so far.
    async fn flush(&self) -> Result<(), StoreError> {
        Ok(self.kv.flush().await?)
    }

    /// Counts live objects and bytes and moves the clock past every stored stamp.
    fn load_counters(&self) -> Result<(), StoreError> {
        let mut per_bucket: std::collections::HashMap<String, Usage> = Default::default();
        let mut total = Usage::default();
        for item in self
            .kv
            .scan_from(Table::Objects, std::ops::Bound::Unbounded)
        {
            let (storage_key, value) = item?;
            let head: ObjectHead = decode_head::<ObjectRecord, _>(&value)?;
            self.clock.observe(head.stamp.hlc);
            if let HeadState::Live(live) = head.state {
                let usage = Usage::object(live.size);
                total.add(usage);
                let bucket_len = storage_key.iter().position(|b| *b == 0).unwrap_or(0);
                let bucket = String::from_utf8_lossy(&storage_key[..bucket_len]).into_owned();
                per_bucket.entry(bucket).or_default().add(usage);
            }
        }
        self.live_objects.store(total.objects, Ordering::Relaxed);
        self.live_bytes.store(total.bytes, Ordering::Relaxed);
        self.usage.replace(per_bucket);
        Ok(())
    }

    /// Refuses (`QuotaExceeded`) a write adding `adding` to `bucket` that would take its
    /// owner past a quota. Returns the owner to [`Inner::record_write`] after the commit,
    /// or `None` when no guard is set.
    fn check_quota(&self, bucket: &str, adding: Usage) -> Result<Option<String>, StoreError> {
        let Some(guard) = self.quota.get() else {
            return Ok(None);
        };
        let owner = self.bucket_permissions(bucket)?.owner;
        guard
            .check(self, &owner, adding)
            .map_err(StoreError::Rejected)?;
        Ok(Some(owner))
    }

    /// Tells the quota guard of a committed write it admitted.
    fn record_write(&self, owner: Option<String>, usage: Usage) {
        if let (Some(guard), Some(owner)) = (self.quota.get(), owner) {
            guard.record(&owner, usage);
        }
    }

    /// Accounts for the register of `bucket`'s key changing from `before` to `after`;
    /// returns the change.
    fn count_change(
        &self,
        bucket: &str,
        before: Option<&ObjectRecord>,
        after: Option<&ObjectRecord>,
    ) -> Usage {
        let figures = |record: Option<&ObjectRecord>| {
            Usage::of_live(record.and_then(ObjectRecord::live).map(|live| live.size))
        };
        let delta = Usage::delta(figures(before), figures(after));
        self.live_objects
            .fetch_add(delta.objects, Ordering::Relaxed);
        self.live_bytes.fetch_add(delta.bytes, Ordering::Relaxed);
        self.usage.apply(bucket, delta);
        delta
    }
}

/// The single node's usage is exact: the counters move at every commit.
impl UsageView for Inner {
    fn buckets(&self) -> Result<Vec<BucketUsage>, UsageError> {
        let buckets = self
            .list_buckets()
            .map_err(|err| UsageError::Store(err.to_string()))?;
        Ok(buckets
            .into_iter()
            .map(|info| BucketUsage {
                usage: self.usage.bucket(&info.name),
                bucket: info.name,
                owner: info.owner,
                traffic: Default::default(),
            })
            .collect())
    }

    fn lag(&self) -> Duration {
        Duration::ZERO
    }
}

impl UsageView for Store {
    fn buckets(&self) -> Result<Vec<BucketUsage>, UsageError> {
        self.inner.buckets()
    }

    fn lag(&self) -> Duration {
        self.inner.lag()
    }
}

impl S3Backend for Store {
    type Reader = StoreReader;

    async fn list_buckets(&self) -> S3Result<Vec<BucketInfo>> {
        Ok(self.inner.list_buckets()?)
    }

    async fn create_bucket(&self, name: &str, acl: &Acl) -> S3Result<()> {
        Ok(self.inner.create_bucket(name, acl).await?)
    }

    async fn head_bucket(&self, name: &str) -> S3Result<BucketInfo> {
        Ok(self.inner.head_bucket(name)?)
    }

    async fn delete_bucket(&self, name: &str) -> S3Result<()> {
        Ok(self.inner.delete_bucket(name).await?)
    }

    async fn bucket_permissions(&self, name: &str) -> S3Result<BucketPermissions> {
        Ok(self.inner.bucket_permissions(name)?)
    }

    async fn put_bucket_acl(&self, name: &str, acl: &Acl) -> S3Result<()> {
        let update = self
            .inner
            .update_bucket(name, |record| record.acl = acl.clone());
        Ok(update.await?)
    }

    async fn put_bucket_policy(&self, name: &str, policy: Option<&str>) -> S3Result<()> {
        let update = self.inner.update_bucket(name, |record| {
            record.policy = policy.map(str::to_owned);
        });
        Ok(update.await?)
    }

    async fn put_bucket_cors(&self, name: &str, cors: Option<&str>) -> S3Result<()> {
        let update = self.inner.update_bucket(name, |record| {
            record.cors = cors.map(str::to_owned);
        });
        Ok(update.await?)
    }

    async fn object_acl(&self, bucket: &str, key: &str) -> S3Result<Option<Acl>> {
        Ok(self.inner.object_acl(bucket, key)?)
    }

    async fn put_object_acl(&self, bucket: &str, key: &str, acl: &Acl) -> S3Result<()> {
        Ok(self.inner.put_object_acl(bucket, key, acl).await?)
    }

    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        attrs: ObjectAttrs,
        body: &mut ObjectBody,
    ) -> S3Result<ObjectInfo> {
        Ok(self.inner.put_object(bucket, key, attrs, body).await?)
    }

    async fn head_object(&self, bucket: &str, key: &str) -> S3Result<ObjectInfo> {
        Ok(self.inner.head_object(bucket, key)?)
    }

    async fn get_object(&self, bucket: &str, key: &str) -> S3Result<StoreReader> {
        Ok(self.inner.get_object(bucket, key)?)
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> S3Result<()> {
        Ok(self.inner.delete_object(bucket, key).await?)
    }

    async fn list_objects(&self, bucket: &str, query: &ListQuery) -> S3Result<ListPage> {
        let store = self.clone();
        let (bucket, query) = (bucket.to_string(), query.clone());
        let page = tokio::task::spawn_blocking(move || store.inner.list_objects(&bucket, &query))
            .await
            .map_err(StoreError::from)?;
        Ok(page?)
    }

    async fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        attrs: ObjectAttrs,
        checksum: Option<ChecksumAlgorithm>,
    ) -> S3Result<String> {
        let upload = self.inner.create_upload(bucket, key, attrs, checksum);
        Ok(upload.await?)
    }

    async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: &mut ObjectBody,
    ) -> S3Result<PartInfo> {
        let part = self
            .inner
            .upload_part(bucket, key, upload_id, part_number, body);
        Ok(part.await?)
    }

    async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> S3Result<ObjectInfo> {
        let object = self.inner.complete_upload(bucket, key, upload_id, parts);
        Ok(object.await?)
    }

    async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> S3Result<()> {
        Ok(self.inner.abort_upload(bucket, key, upload_id).await?)
    }

    async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number_marker: u32,
        max_parts: usize,
    ) -> S3Result<PartsPage> {
        let page = self
            .inner
            .list_parts(bucket, key, upload_id, part_number_marker, max_parts);
        Ok(page?)
    }

    async fn list_multipart_uploads(
        &self,
        bucket: &str,
        query: &UploadsQuery,
    ) -> S3Result<UploadsPage> {
        let store = self.clone();
        let (bucket, query) = (bucket.to_string(), query.clone());
        let page = tokio::task::spawn_blocking(move || store.inner.list_uploads(&bucket, &query))
            .await
            .map_err(StoreError::from)?;
        Ok(page?)
    }
}
