//! Multipart uploads over two sharded tables: uploads keyed by (bucket, key, upload id) and
//! their parts keyed by upload id (one entry per upload, a map of part registers).
//!
//! The checks and ETag rules are the single-node store's (`store::multipart`): parts listed
//! in ascending order (`InvalidPartOrder`), each present with its ETag (`InvalidPart`), all
//! but the last at least 5 MiB (`EntityTooSmall`), ETag = MD5 of the parts' MD5s + `-N`, and
//! a repeated Complete answers the object it made.

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use s3api::backend::{ChecksumAlgorithm, ObjectAttrs, ObjectInfo, PartInfo, PartsPage};
use s3api::body::ObjectBody;
use s3api::{S3Error, S3ErrorCode, S3Result};

use super::ingest::ingest;
use super::objects::check_key;
use super::schemas::{PartsEntry, UploadEntry};
use super::{millis_of_stamp, unavailable, Inner, BLOCK_SIZE};
use crate::cluster::{Lww, Stamp};
use crate::store::records::UploadRecord;
use crate::store::records::{datetime_from_millis, BodyLayout, LiveVersion, PartRecord};
use crate::usage::Usage;

/// S3's minimum size of every part but the last.
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// S3's largest part number.
const MAX_PART_NUMBER: u32 = 10_000;
/// Length of the upload ids this backend issues (hex).
const UPLOAD_ID_LEN: usize = 32;

fn no_such_upload(upload_id: &str) -> S3Error {
    S3Error::from(S3ErrorCode::NoSuchUpload).with_detail("UploadId", upload_id)
}

fn invalid_part(part_number: u32) -> S3Error {
    S3Error::from(S3ErrorCode::InvalidPart).with_detail("PartNumber", part_number.to_string())
}

/// The id block references use for one upload of a part.
fn part_version_id(upload_id: &str, part_number: u32, stamp: &Stamp) -> String {
    format!("part:{upload_id}:{part_number}:{}", hex::encode(stamp.uuid))
}

fn is_valid_upload_id(upload_id: &str) -> bool {
    upload_id.len() == UPLOAD_ID_LEN && upload_id.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Inner {
    /// The upload's record, `NoSuchUpload` if it never existed or has ended.
    async fn upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> S3Result<Option<UploadEntry>> {
        if !is_valid_upload_id(upload_id) {
            return Err(no_such_upload(upload_id));
        }
        self.uploads
            .get(&(bucket.to_owned(), key.to_owned(), upload_id.to_owned()))
            .await
            .map_err(|err| unavailable("reading the uploads table", err))
    }

    async fn live_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> S3Result<UploadRecord> {
        self.upload(bucket, key, upload_id)
            .await?
            .and_then(|entry| entry.upload.value)
            .ok_or_else(|| no_such_upload(upload_id))
    }

    async fn parts_of(&self, upload_id: &str) -> S3Result<BTreeMap<u32, PartRecord>> {
        Ok(self
            .part_registers(upload_id)
            .await?
            .into_iter()
            .filter_map(|(number, part)| Some((number, part.value?)))
            .collect())
    }

    /// Every part register of the upload (tombstones included).
    async fn part_registers(&self, upload_id: &str) -> S3Result<BTreeMap<u32, Lww<PartRecord>>> {
        let entry = self
            .parts
            .get(&upload_id.to_owned())
            .await
            .map_err(|err| unavailable("reading the parts table", err))?;
        Ok(entry.map(|entry| entry.parts).unwrap_or_default())
    }

    pub(super) async fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        attrs: ObjectAttrs,
        checksum_algorithm: Option<ChecksumAlgorithm>,
    ) -> S3Result<String> {
        check_key(key)?;
        self.require_bucket(bucket).await?;
        let upload_id = uuid::Uuid::new_v4().simple().to_string();
        let stamp = self.new_stamp();
        let entry = UploadEntry {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id: upload_id.clone(),
            upload: Lww::new(
                stamp,
                UploadRecord {
                    initiated_ms: millis_of_stamp(&stamp),
                    attrs,
                    checksum_algorithm,
                },
            ),
        };
        self.uploads
            .insert(&entry)
            .await
            .map_err(|err| unavailable("writing the uploads table", err))?;
        Ok(upload_id)
    }

    pub(super) async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: &mut ObjectBody,
    ) -> S3Result<PartInfo> {
        if !(1..=MAX_PART_NUMBER).contains(&part_number) {
            return Err(S3Error::new(
                S3ErrorCode::InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive",
            ));
        }
        let bucket_entry = self.require_bucket(bucket).await?;
        self.live_upload(bucket, key, upload_id).await?;
        let received = ingest(&self.blocks, body, BLOCK_SIZE, None).await?;
        // Parts are not counted as stored until completed, but a part that alone would
        // take the owner past the byte quota can never complete: refuse it now.
        let part_usage = Usage {
            objects: 0,
            bytes: i64::try_from(received.size).unwrap_or(i64::MAX),
        };
        self.check_quota(&bucket_entry, part_usage)?;
        let stamp = self.new_stamp();
        let record = PartRecord {
            md5: received.md5,
            size: received.size,
            last_modified_ms: millis_of_stamp(&stamp),
            checksum: received.checksum,
            blocks: received.layout.blocks().to_vec(),
        };
        // Referenced before the part is recorded, so block GC never sees a recorded part
        // whose blocks nothing references.
        self.add_refs(
            part_version_id(upload_id, part_number, &stamp),
            &record.blocks,
        )
        .await?;
        let info = PartInfo {
            part_number,
            etag: hex::encode(record.md5),
            size: record.size,
            last_modified: datetime_from_millis(record.last_modified_ms),
        };
        let entry = PartsEntry {
            upload_id: upload_id.to_owned(),
            parts: BTreeMap::from([(part_number, Lww::new(stamp, record))]),
        };
        self.parts
            .insert(&entry)
            .await
            .map_err(|err| unavailable("writing the parts table", err))?;
        Ok(info)
    }

    pub(super) async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> S3Result<ObjectInfo> {
        let bucket_entry = self.require_bucket(bucket).await?;
        if !is_valid_upload_id(upload_id) {
            return Err(no_such_upload(upload_id));
        }
        if parts.is_empty() {
            return Err(S3Error::from(S3ErrorCode::MalformedXML));
        }
        if parts.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
            return Err(S3Error::from(S3ErrorCode::InvalidPartOrder));
        }
        let Some(upload) = self.upload(bucket, key, upload_id).await? else {
            return Err(no_such_upload(upload_id));
        };
        let Some(record) = upload.upload.value.clone() else {
            return self.completed_before(bucket, key, upload_id, parts).await;
        };
        let stored = self.parts_of(upload_id).await?;
        let mut md5s = Md5::new();
        let mut size = 0u64;
        let mut blocks = Vec::new();
        for (index, (number, etag)) in parts.iter().enumerate() {
            let part = stored.get(number).ok_or_else(|| invalid_part(*number))?;
            let wanted = etag.trim().trim_matches('"');
            if !wanted.eq_ignore_ascii_case(&hex::encode(part.md5)) {
                return Err(invalid_part(*number));
            }
            if index + 1 < parts.len() && part.size < MIN_PART_SIZE {
                return Err(S3Error::from(S3ErrorCode::EntityTooSmall)
                    .with_detail("PartNumber", number.to_string())
                    .with_detail("ProposedSize", part.size.to_string())
                    .with_detail("MinSizeAllowed", MIN_PART_SIZE.to_string()));
            }
            md5s.update(part.md5);
            size += part.size;
            blocks.extend_from_slice(&part.blocks);
        }
        let etag = format!("{}-{}", hex::encode(md5s.finalize()), parts.len());
        // A refusal leaves the upload open (the client may abort it or free space).
        let adding = Usage::object(size);
        let owner = self.check_quota(&bucket_entry, adding)?;
        let info = self
            .commit(bucket, key, |stamp| LiveVersion {
                size,
                etag,
                last_modified_ms: millis_of_stamp(stamp),
                attrs: record.attrs,
                // Composite (checksum-of-checksums) values are not computed yet.
                checksum: None,
                parts_count: u32::try_from(parts.len()).ok(),
                upload_id: Some(upload_id.to_owned()),
                body: BodyLayout::Blocks(blocks),
            })
            .await?;
        self.record_write(owner, adding);
        self.end_upload(upload).await?;
        Ok(info)
    }

    /// Answers a Complete whose upload has ended: the same object if this upload produced
    /// the current version with as many parts, `NoSuchUpload` otherwise.
    async fn completed_before(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> S3Result<ObjectInfo> {
        let current = self.object_entry(bucket, key).await?;
        match current.and_then(|entry| entry.version.value) {
            Some(live)
                if live.upload_id.as_deref() == Some(upload_id)
                    && live.parts_count == u32::try_from(parts.len()).ok() =>
            {
                Ok(live.info(key))
            }
            _ => Err(no_such_upload(upload_id)),
        }
    }

    /// Tombstones the upload so it no longer lists nor accepts parts, then releases the
    /// parts' own block references (a completed object holds its own).
    async fn end_upload(&self, mut upload: UploadEntry) -> S3Result<()> {
        self.observe(upload.upload.stamp.hlc);
        upload.upload = Lww::tombstone(self.new_stamp());
        self.uploads
            .insert(&upload)
            .await
            .map_err(|err| unavailable("writing the uploads table", err))?;
        match self.part_registers(&upload.upload_id).await {
            Ok(parts) => {
                let object = format!("{}/{}", upload.bucket, upload.key);
                for (number, part) in parts {
                    if let Some(record) = part.value {
                        let version = part_version_id(&upload.upload_id, number, &part.stamp);
                        self.release_refs(object.clone(), version, &record.blocks);
                    }
                }
            }
            Err(err) => tracing::warn!(
                upload_id = %upload.upload_id,
                error = %err,
                "could not read the parts of an ended upload to release their blocks"
            ),
        }
        Ok(())
    }

    pub(super) async fn abort_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> S3Result<()> {
        self.require_bucket(bucket).await?;
        match self.upload(bucket, key, upload_id).await? {
            Some(upload) if !upload.upload.is_tombstone() => self.end_upload(upload).await,
            _ => Err(no_such_upload(upload_id)),
        }
    }

    pub(super) async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number_marker: u32,
        max_parts: usize,
    ) -> S3Result<PartsPage> {
        self.require_bucket(bucket).await?;
        self.live_upload(bucket, key, upload_id).await?;
        let mut page = PartsPage::default();
        for (number, part) in self.parts_of(upload_id).await? {
            if number <= part_number_marker {
                continue;
            }
            if page.parts.len() == max_parts {
                page.is_truncated = true;
                page.next_part_number_marker = page.parts.last().map(|p| p.part_number);
                break;
            }
            page.parts.push(PartInfo {
                part_number: number,
                etag: hex::encode(part.md5),
                size: part.size,
                last_modified: datetime_from_millis(part.last_modified_ms),
            });
        }
        Ok(page)
    }
}
