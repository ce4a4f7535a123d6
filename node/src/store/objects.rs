//! Single-object operations: put, head, get, delete — and the register merge they share.
//!
//! A version's stamp is taken inside the commit transaction, i.e. after its body is durable,
//! so of two racing PUTs the one that finishes last wins. The write itself is a merge
//! ([`Crdt::merge`]) with whatever the register holds, so an older version arriving late (from
//! a slow local PUT or, later, from a peer) can never replace a newer one.

use s3api::access::Acl;
use s3api::backend::{ObjectAttrs, ObjectInfo};
use s3api::body::ObjectBody;
use s3api::{S3Error, S3ErrorCode};

use super::buckets::require_bucket_in;
use super::codec::{decode, encode};
use super::error::StoreError;
use super::ingest::ingest;
use super::keys::object_key;
use super::kv::{KvTxn, Table};
use super::reader::StoreReader;
use super::records::{Crdt, LiveVersion, ObjectRecord, ObjectState, VersionStamp};
use super::Inner;
use crate::usage::Usage;

/// S3's limit on key length, in UTF-8 bytes.
const MAX_KEY_BYTES: usize = 1024;

/// What a commit changed in one object register.
pub(super) struct Merged {
    /// The register before the commit.
    pub before: Option<ObjectRecord>,
    /// The register after the commit (the newer of the old and the committed record).
    pub after: ObjectRecord,
}

/// Merges `incoming` into the register at `storage_key` inside `txn`, writing only if it
/// changes the register.
pub(super) fn merge_in(
    txn: &dyn KvTxn,
    storage_key: &[u8],
    incoming: ObjectRecord,
) -> Result<Merged, StoreError> {
    let before = match txn.get(Table::Objects, storage_key)? {
        Some(bytes) => Some(decode::<ObjectRecord>(&bytes)?),
        None => None,
    };
    let after = match &before {
        Some(old) => old.clone().merge(incoming),
        None => incoming,
    };
    if before.as_ref() != Some(&after) {
        txn.insert(Table::Objects, storage_key, &encode(&after)?)?;
    }
    Ok(Merged { before, after })
}

pub(super) fn check_key(key: &str) -> Result<(), StoreError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(StoreError::rejected(S3ErrorCode::KeyTooLongError));
    }
    Ok(())
}

pub(super) fn no_such_key(key: &str) -> StoreError {
    StoreError::Rejected(S3Error::from(S3ErrorCode::NoSuchKey).with_detail("Key", key))
}

impl Inner {
    /// Streams `body` into blocks, then commits it as the newest version of `bucket`/`key`.
    pub(super) async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        attrs: ObjectAttrs,
        body: &mut ObjectBody,
    ) -> Result<ObjectInfo, StoreError> {
        check_key(key)?;
        self.require_bucket(bucket)?;
        let inline_limit = Some(self.config.inline_threshold);
        let received = ingest(&self.blocks, body, self.config.block_size, inline_limit).await?;
        // Checked once the size is known; refused bodies' blocks are garbage for GC.
        let owner = self.check_quota(bucket, Usage::object(received.size))?;
        let version = LiveVersion {
            size: received.size,
            etag: hex::encode(received.md5),
            last_modified_ms: 0, // set to the commit stamp's time below
            attrs,
            checksum: received.checksum,
            parts_count: None,
            upload_id: None,
            body: received.layout,
        };
        let (info, delta) = self.commit_live(bucket, key, version, |_| Ok(()))?;
        self.record_write(owner, delta);
        self.flush().await?;
        Ok(info)
    }

    /// Commits `version` under a fresh stamp, running `also` in the same transaction.
    /// Returns the new version's info and the change in the bucket's usage.
    pub(super) fn commit_live(
        &self,
        bucket: &str,
        key: &str,
        version: LiveVersion,
        also: impl Fn(&dyn KvTxn) -> Result<(), StoreError>,
    ) -> Result<(ObjectInfo, Usage), StoreError> {
        let storage_key = object_key(bucket, key);
        let (merged, info) = self.transact(|txn| {
            require_bucket_in(txn, bucket)?;
            let stamp = self.new_stamp();
            let live = LiveVersion {
                last_modified_ms: stamp.millis(),
                ..version.clone()
            };
            let info = live.info(key);
            let record = ObjectRecord {
                stamp,
                state: ObjectState::Live(live),
            };
            let merged = merge_in(txn, &storage_key, record)?;
            also(txn)?;
            Ok((merged, info))
        })?;
        let delta = self.count_change(bucket, merged.before.as_ref(), Some(&merged.after));
        Ok((info, delta))
    }

    /// The newest live version of `bucket`/`key`.
    fn live_version(&self, bucket: &str, key: &str) -> Result<LiveVersion, StoreError> {
        self.require_bucket(bucket)?;
        let bytes = self
            .kv
            .get(Table::Objects, &object_key(bucket, key))?
            .ok_or_else(|| no_such_key(key))?;
        match decode::<ObjectRecord>(&bytes)?.state {
            ObjectState::Live(live) => Ok(live),
            ObjectState::Tombstone => Err(no_such_key(key)),
        }
    }

    /// Metadata of the newest version.
    pub(super) fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectInfo, StoreError> {
        Ok(self.live_version(bucket, key)?.info(key))
    }

    /// A reader over the newest version; bytes are read when streamed.
    pub(super) fn get_object(&self, bucket: &str, key: &str) -> Result<StoreReader, StoreError> {
        let live = self.live_version(bucket, key)?;
        Ok(StoreReader::new(
            live.info(key),
            live.body,
            std::sync::Arc::clone(&self.blocks),
        ))
    }

    /// The ACL of the newest live version (`None` for objects stored without one).
    pub(super) fn object_acl(&self, bucket: &str, key: &str) -> Result<Option<Acl>, StoreError> {
        Ok(self.live_version(bucket, key)?.attrs.acl)
    }

    /// Replaces the ACL of the newest live version in place. The version keeps its stamp: an
    /// ACL is not a new version of the data (nothing else of the record changes, and the
    /// single-node store has no replica that could hold another record under that stamp).
    pub(super) async fn put_object_acl(
        &self,
        bucket: &str,
        key: &str,
        acl: &Acl,
    ) -> Result<(), StoreError> {
        let storage_key = object_key(bucket, key);
        self.transact(|txn| {
            require_bucket_in(txn, bucket)?;
            let bytes = txn
                .get(Table::Objects, &storage_key)?
                .ok_or_else(|| no_such_key(key))?;
            let mut record: ObjectRecord = decode(&bytes)?;
            let ObjectState::Live(live) = &mut record.state else {
                return Err(no_such_key(key));
            };
            live.attrs.acl = Some(acl.clone());
            txn.insert(Table::Objects, &storage_key, &encode(&record)?)?;
            Ok(())
        })?;
        self.flush().await
    }

    /// Replaces a live object by a tombstone; succeeds when there is nothing to delete.
    pub(super) async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.require_bucket(bucket)?;
        let storage_key = object_key(bucket, key);
        let merged = self.transact(|txn| {
            require_bucket_in(txn, bucket)?;
            let current = txn.get(Table::Objects, &storage_key)?;
            let is_live = match &current {
                Some(bytes) => decode::<ObjectRecord>(bytes)?.live().is_some(),
                None => false,
            };
            if !is_live {
                // Nothing visible to delete: writing a tombstone would only leave garbage.
                return Ok(None);
            }
            let tombstone = ObjectRecord {
                stamp: self.new_stamp(),
                state: ObjectState::Tombstone,
            };
            merge_in(txn, &storage_key, tombstone).map(Some)
        })?;
        if let Some(merged) = merged {
            self.count_change(bucket, merged.before.as_ref(), Some(&merged.after));
            self.flush().await?;
        }
        Ok(())
    }

    /// Removes the register at `storage_key` if it still is the tombstone stamped `stamp`.
    pub(super) fn purge_tombstone(
        &self,
        storage_key: &[u8],
        stamp: VersionStamp,
    ) -> Result<bool, StoreError> {
        self.transact(|txn| {
            let Some(bytes) = txn.get(Table::Objects, storage_key)? else {
                return Ok(false);
            };
            let record: ObjectRecord = decode(&bytes)?;
            if record.stamp != stamp || record.live().is_some() {
                return Ok(false);
            }
            txn.remove(Table::Objects, storage_key)?;
            Ok(true)
        })
    }
}
