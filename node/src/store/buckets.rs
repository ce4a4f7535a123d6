//! Bucket operations: create, head, delete (only when empty), list, and the bucket's
//! permissions (owner, ACL, policy) and CORS configuration, which live in its record.

use std::ops::Bound;

use s3api::access::Acl;
use s3api::backend::{BucketInfo, BucketPermissions};
use s3api::S3ErrorCode;

use super::codec::{decode, decode_head, encode};
use super::error::StoreError;
use super::keys::bucket_prefix;
use super::kv::{scan_prefix, KvTxn, Table};
use super::records::{datetime_from_millis, BucketRecord, HeadState, ObjectHead, ObjectRecord};
use super::Inner;

impl Inner {
    /// All buckets, sorted by name (the table's order).
    pub(super) fn list_buckets(&self) -> Result<Vec<BucketInfo>, StoreError> {
        let mut out = Vec::new();
        for item in self.kv.scan_from(Table::Buckets, Bound::Unbounded) {
            let (name, value) = item?;
            let record: BucketRecord = decode(&value)?;
            let name = String::from_utf8(name.to_vec())
                .map_err(|_| StoreError::Corrupt("bucket name is not UTF-8".into()))?;
            out.push(BucketInfo {
                name,
                created: datetime_from_millis(record.created_ms),
                owner: record.owner,
            });
        }
        Ok(out)
    }

    /// Creates `name` owned by `acl.owner`; when it exists, `BucketAlreadyOwnedByYou` for
    /// the same owner and `BucketAlreadyExists` for anyone else.
    pub(super) async fn create_bucket(&self, name: &str, acl: &Acl) -> Result<(), StoreError> {
        let record = BucketRecord::new(time_now_millis(), acl.clone());
        let value = encode(&record)?;
        self.transact(|txn| {
            if let Some(existing) = txn.get(Table::Buckets, name.as_bytes())? {
                let existing: BucketRecord = decode(&existing)?;
                let code = if existing.owner == record.owner {
                    S3ErrorCode::BucketAlreadyOwnedByYou
                } else {
                    S3ErrorCode::BucketAlreadyExists
                };
                return Err(StoreError::rejected(code));
            }
            txn.insert(Table::Buckets, name.as_bytes(), &value)?;
            Ok(())
        })?;
        self.flush().await
    }

    /// The bucket's record; `NoSuchBucket` when absent.
    fn bucket_record(&self, name: &str) -> Result<BucketRecord, StoreError> {
        let value = self
            .kv
            .get(Table::Buckets, name.as_bytes())?
            .ok_or_else(|| no_such_bucket(name))?;
        Ok(decode(&value)?)
    }

    /// The bucket's info; `NoSuchBucket` when absent.
    pub(super) fn head_bucket(&self, name: &str) -> Result<BucketInfo, StoreError> {
        let record = self.bucket_record(name)?;
        Ok(BucketInfo {
            name: name.to_string(),
            created: datetime_from_millis(record.created_ms),
            owner: record.owner,
        })
    }

    /// The bucket's owner, ACL, policy and CORS configuration; `NoSuchBucket` when absent.
    pub(super) fn bucket_permissions(&self, name: &str) -> Result<BucketPermissions, StoreError> {
        let record = self.bucket_record(name)?;
        Ok(BucketPermissions {
            owner: record.owner,
            acl: record.acl,
            policy: record.policy,
            cors: record.cors,
        })
    }

    /// Rewrites the bucket's record with `change` applied, atomically.
    pub(super) async fn update_bucket(
        &self,
        name: &str,
        change: impl Fn(&mut BucketRecord),
    ) -> Result<(), StoreError> {
        self.transact(|txn| {
            let value = txn
                .get(Table::Buckets, name.as_bytes())?
                .ok_or_else(|| no_such_bucket(name))?;
            let mut record: BucketRecord = decode(&value)?;
            change(&mut record);
            txn.insert(Table::Buckets, name.as_bytes(), &encode(&record)?)?;
            Ok(())
        })?;
        self.flush().await
    }

    /// Deletes `name`: `NoSuchBucket` if absent, `BucketNotEmpty` while a live object or an
    /// upload remains. Tombstones do not count.
    pub(super) async fn delete_bucket(&self, name: &str) -> Result<(), StoreError> {
        self.head_bucket(name)?;
        let prefix = bucket_prefix(name);
        for item in scan_prefix(&*self.kv, Table::Objects, &prefix) {
            let (_, value) = item?;
            let head: ObjectHead = decode_head::<ObjectRecord, _>(&value)?;
            if matches!(head.state, HeadState::Live(_)) {
                return Err(StoreError::rejected(S3ErrorCode::BucketNotEmpty));
            }
        }
        if scan_prefix(&*self.kv, Table::Uploads, &prefix)
            .next()
            .is_some()
        {
            return Err(StoreError::rejected(S3ErrorCode::BucketNotEmpty));
        }
        self.kv.remove(Table::Buckets, name.as_bytes())?;
        self.flush().await
    }

    /// Fails with `NoSuchBucket` unless `bucket` exists (outside a transaction).
    pub(super) fn require_bucket(&self, bucket: &str) -> Result<(), StoreError> {
        match self.kv.get(Table::Buckets, bucket.as_bytes())? {
            Some(_) => Ok(()),
            None => Err(no_such_bucket(bucket)),
        }
    }
}

/// Fails with `NoSuchBucket` unless `bucket` exists, as part of a transaction (so a commit
/// racing a bucket deletion cannot land in a deleted bucket).
pub(super) fn require_bucket_in(txn: &dyn KvTxn, bucket: &str) -> Result<(), StoreError> {
    match txn.get(Table::Buckets, bucket.as_bytes())? {
        Some(_) => Ok(()),
        None => Err(no_such_bucket(bucket)),
    }
}

fn no_such_bucket(bucket: &str) -> StoreError {
    StoreError::Rejected(
        s3api::S3Error::from(S3ErrorCode::NoSuchBucket).with_detail("BucketName", bucket),
    )
}

/// Wall-clock Unix milliseconds for creation times that are not version stamps.
pub(super) fn time_now_millis() -> i64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}
