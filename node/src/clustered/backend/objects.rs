//! PUT, HEAD, GET and DELETE of single objects over the objects table and block service.

use std::collections::BTreeSet;

use s3api::access::Acl;
use s3api::backend::{ObjectAttrs, ObjectInfo};
use s3api::body::ObjectBody;
use s3api::{S3Error, S3ErrorCode, S3Result};

use super::ingest::ingest;
use super::reader::ClusterReader;
use super::schemas::{ObjectAclChange, ObjectEntry};
use super::{millis_of_stamp, unavailable, Inner, BLOCK_SIZE, INLINE_LIMIT};
use crate::cluster::{Lww, Stamp};
use crate::store::records::{BlockRef, LiveVersion};
use crate::usage::Usage;

/// S3's longest key, in bytes.
const MAX_KEY_LEN: usize = 1024;

pub(super) fn check_key(key: &str) -> S3Result<()> {
    if key.len() > MAX_KEY_LEN {
        return Err(S3Error::from(S3ErrorCode::KeyTooLongError));
    }
    Ok(())
}

fn no_such_key(key: &str) -> S3Error {
    S3Error::from(S3ErrorCode::NoSuchKey).with_detail("Key", key)
}

/// The id block references use for a version: its stamp's uuid in hex.
pub(super) fn version_id(stamp: &Stamp) -> String {
    hex::encode(stamp.uuid)
}

impl Inner {
    /// The object's current entry (quorum read, repaired in the background).
    pub(super) async fn object_entry(
        &self,
        bucket: &str,
        key: &str,
    ) -> S3Result<Option<ObjectEntry>> {
        self.objects
            .get(&(bucket.to_owned(), key.to_owned()))
            .await
            .map_err(|err| unavailable("reading the objects table", err))
    }

    /// The object's live version, `NoSuchKey` if absent or deleted.
    async fn live_version(&self, bucket: &str, key: &str) -> S3Result<LiveVersion> {
        self.require_bucket(bucket).await?;
        self.object_entry(bucket, key)
            .await?
            .and_then(|entry| entry.version.value)
            .ok_or_else(|| no_such_key(key))
    }

    /// The ACL of the object's live version (`None` if stored without one), `NoSuchKey` if
    /// absent or deleted.
    pub(super) async fn object_acl(&self, bucket: &str, key: &str) -> S3Result<Option<Acl>> {
        let entry = self
            .object_entry(bucket, key)
            .await?
            .filter(|entry| !entry.version.is_tombstone())
            .ok_or_else(|| no_such_key(key))?;
        Ok(entry.current_acl())
    }

    /// Gives the object's live version a new ACL: an ACL register naming that version, under
    /// a fresh stamp. If a newer version lands meanwhile, the change names an older version
    /// and no longer applies, as if the overwrite came after it.
    pub(super) async fn put_object_acl(&self, bucket: &str, key: &str, acl: &Acl) -> S3Result<()> {
        self.require_bucket(bucket).await?;
        let current = self
            .object_entry(bucket, key)
            .await?
            .filter(|entry| !entry.version.is_tombstone())
            .ok_or_else(|| no_such_key(key))?;
        self.observe(current.version.stamp.hlc);
        if let Some(change) = &current.acl {
            self.observe(change.stamp.hlc);
        }
        let change = ObjectAclChange {
            version: current.version.stamp,
            acl: acl.clone(),
        };
        let entry = ObjectEntry {
            acl: Some(Lww::new(self.new_stamp(), change)),
            ..current
        };
        self.objects
            .insert(&entry)
            .await
            .map_err(|err| unavailable("writing the objects table", err))
    }

    pub(super) async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        attrs: ObjectAttrs,
        body: &mut ObjectBody,
    ) -> S3Result<ObjectInfo> {
        check_key(key)?;
        let bucket_entry = self.require_bucket(bucket).await?;
        let received = ingest(&self.blocks, body, BLOCK_SIZE, Some(INLINE_LIMIT)).await?;
        // Checked once the size is known; refused bodies' blocks are never referenced.
        let adding = Usage::object(received.size);
        let owner = self.check_quota(&bucket_entry, adding)?;
        let info = self
            .commit(bucket, key, |stamp| LiveVersion {
                size: received.size,
                etag: hex::encode(received.md5),
                last_modified_ms: millis_of_stamp(stamp),
                attrs,
                checksum: received.checksum,
                parts_count: None,
                upload_id: None,
                body: received.layout,
            })
            .await?;
        self.record_write(owner, adding);
        Ok(info)
    }

    /// Writes the version `build` makes (given its commit stamp) as the object's newest,
    /// references its blocks and releases the blocks of the version it replaces.
    pub(super) async fn commit(
        &self,
        bucket: &str,
        key: &str,
        build: impl FnOnce(&Stamp) -> LiveVersion,
    ) -> S3Result<ObjectInfo> {
        // Read first to learn which blocks the replaced version referenced and to move the
        // clock past its stamp (a node whose clock lags must still overwrite); a failed
        // read costs nothing but delayed garbage collection.
        let replaced = self.object_entry(bucket, key).await.ok().flatten();
        if let Some(old) = &replaced {
            self.observe(old.version.stamp.hlc);
        }
        let stamp = self.new_stamp();
        let live = build(&stamp);
        let info = live.info(key);
        let entry = ObjectEntry {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version: Lww::new(stamp, live),
            acl: None,
        };
        self.objects
            .insert(&entry)
            .await
            .map_err(|err| unavailable("writing the objects table", err))?;
        if let Some(live) = &entry.version.value {
            self.add_refs(version_id(&entry.version.stamp), live.body.blocks())
                .await?;
        }
        if let Some(old) = replaced.filter(|old| old.version.stamp < entry.version.stamp) {
            self.release_version(bucket, key, old.version);
        }
        Ok(info)
    }

    /// Records that `version` references each of `blocks`.
    pub(super) async fn add_refs(&self, version: String, blocks: &[BlockRef]) -> S3Result<()> {
        let version = [version];
        let hashes: BTreeSet<[u8; 32]> = blocks.iter().map(|block| block.hash).collect();
        for hash in hashes {
            self.refs
                .add_refs(hash, &version)
                .await
                .map_err(|err| unavailable("recording block references", err))?;
        }
        Ok(())
    }

    /// Removes, in the background, the references of `version` (of `object`, for the log)
    /// to `blocks`, which it no longer uses.
    pub(super) fn release_refs(&self, object: String, version: String, blocks: &[BlockRef]) {
        let hashes: BTreeSet<[u8; 32]> = blocks.iter().map(|block| block.hash).collect();
        if hashes.is_empty() {
            return;
        }
        let refs = self.refs.clone();
        let version = [version];
        tokio::spawn(async move {
            for hash in hashes {
                if let Err(err) = refs.remove_refs(hash, &version).await {
                    tracing::warn!(
                        object = %object,
                        block = %hex::encode(hash),
                        error = %err,
                        "could not release a block reference"
                    );
                }
            }
        });
    }

    /// Releases the blocks of a version that is no longer current.
    fn release_version(&self, bucket: &str, key: &str, old: Lww<LiveVersion>) {
        if let Some(live) = old.value {
            self.release_refs(
                format!("{bucket}/{key}"),
                version_id(&old.stamp),
                live.body.blocks(),
            );
        }
    }

    pub(super) async fn head_object(&self, bucket: &str, key: &str) -> S3Result<ObjectInfo> {
        Ok(self.live_version(bucket, key).await?.info(key))
    }

    pub(super) async fn get_object(&self, bucket: &str, key: &str) -> S3Result<ClusterReader> {
        let live = self.live_version(bucket, key).await?;
        Ok(ClusterReader::new(
            live.info(key),
            live.body,
            std::sync::Arc::clone(&self.blocks),
        ))
    }

    pub(super) async fn delete_object(&self, bucket: &str, key: &str) -> S3Result<()> {
        self.require_bucket(bucket).await?;
        let Some(current) = self.object_entry(bucket, key).await? else {
            return Ok(());
        };
        if current.version.is_tombstone() {
            return Ok(());
        }
        self.observe(current.version.stamp.hlc);
        let tombstone = ObjectEntry {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version: Lww::tombstone(self.new_stamp()),
            acl: None,
        };
        self.objects
            .insert(&tombstone)
            .await
            .map_err(|err| unavailable("writing the objects table", err))?;
        if current.version.stamp < tombstone.version.stamp {
            self.release_version(bucket, key, current.version);
        }
        Ok(())
    }
}
