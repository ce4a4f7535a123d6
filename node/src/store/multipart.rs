//! Multipart uploads: create, upload part, complete, abort, list parts.
//!
//! Parts are always stored as blocks and recorded under (upload id, part number); completing
//! concatenates the chosen parts' block lists into one object version and, in the same
//! transaction, removes the upload and its parts. The completed version remembers its upload
//! id, so a client that repeats Complete (e.g. after a lost response) gets the same answer.

use md5::{Digest, Md5};
use s3api::backend::{ChecksumAlgorithm, ObjectAttrs, ObjectInfo, PartInfo, PartsPage};
use s3api::body::ObjectBody;
use s3api::{S3Error, S3ErrorCode};

use super::buckets::{require_bucket_in, time_now_millis};
use super::codec::{decode, encode};
use super::error::StoreError;
use super::ingest::ingest;
use super::keys::{
    is_valid_upload_id, new_upload_id, object_key, part_key, part_number_of, upload_key,
};
use super::kv::{prefix_end, scan_prefix, KvTxn, Table, WriteBatch};
use super::objects::{check_key, merge_in};
use super::records::{
    datetime_from_millis, BodyLayout, LiveVersion, ObjectRecord, ObjectState, PartRecord,
    UploadRecord,
};
use super::Inner;
use crate::usage::Usage;

/// S3's minimum size of every part but the last.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// S3's largest part number.
const MAX_PART_NUMBER: u32 = 10_000;

fn no_such_upload(upload_id: &str) -> StoreError {
    StoreError::Rejected(
        S3Error::from(S3ErrorCode::NoSuchUpload).with_detail("UploadId", upload_id),
    )
}

fn invalid_part(part_number: u32) -> StoreError {
    StoreError::Rejected(
        S3Error::from(S3ErrorCode::InvalidPart).with_detail("PartNumber", part_number.to_string()),
    )
}

/// Reads the upload record inside a transaction, `NoSuchUpload` if absent.
fn upload_in(txn: &dyn KvTxn, upload_key: &[u8], id: &str) -> Result<UploadRecord, StoreError> {
    match txn.get(Table::Uploads, upload_key)? {
        Some(bytes) => Ok(decode(&bytes)?),
        None => Err(no_such_upload(id)),
    }
}

/// The parts of a completed upload, checked against the client's list.
struct Assembled {
    size: u64,
    etag: String,
    blocks: Vec<super::records::BlockRef>,
}

fn assemble(
    txn: &dyn KvTxn,
    upload_id: &str,
    parts: &[(u32, String)],
) -> Result<Assembled, StoreError> {
    let mut md5s = Md5::new();
    let mut assembled = Assembled {
        size: 0,
        etag: String::new(),
        blocks: Vec::new(),
    };
    for (index, (number, etag)) in parts.iter().enumerate() {
        let bytes = txn
            .get(Table::Parts, &part_key(upload_id, *number))?
            .ok_or_else(|| invalid_part(*number))?;
        let part: PartRecord = decode(&bytes)?;
        let wanted = etag.trim().trim_matches('"');
        if !wanted.eq_ignore_ascii_case(&hex::encode(part.md5)) {
            return Err(invalid_part(*number));
        }
        if index + 1 < parts.len() && part.size < MIN_PART_SIZE {
            let err = S3Error::from(S3ErrorCode::EntityTooSmall)
                .with_detail("PartNumber", number.to_string())
                .with_detail("ProposedSize", part.size.to_string())
                .with_detail("MinSizeAllowed", MIN_PART_SIZE.to_string());
            return Err(StoreError::Rejected(err));
        }
        md5s.update(part.md5);
        assembled.size += part.size;
        assembled.blocks.extend_from_slice(&part.blocks);
    }
    assembled.etag = format!("{}-{}", hex::encode(md5s.finalize()), parts.len());
    Ok(assembled)
}

impl Inner {
    /// Starts an upload and returns its id.
    pub(super) async fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        attrs: ObjectAttrs,
        checksum_algorithm: Option<ChecksumAlgorithm>,
    ) -> Result<String, StoreError> {
        check_key(key)?;
        let upload_id = new_upload_id(self.clock.now());
        let record = UploadRecord {
            initiated_ms: time_now_millis(),
            attrs,
            checksum_algorithm,
        };
        let value = encode(&record)?;
        let storage_key = upload_key(bucket, key, &upload_id);
        self.transact(|txn| {
            require_bucket_in(txn, bucket)?;
            txn.insert(Table::Uploads, &storage_key, &value)?;
            Ok(())
        })?;
        self.flush().await?;
        Ok(upload_id)
    }

    /// Stores one part (replacing an earlier upload of the same number).
    pub(super) async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: &mut ObjectBody,
    ) -> Result<PartInfo, StoreError> {
        if !(1..=MAX_PART_NUMBER).contains(&part_number) {
            return Err(StoreError::Rejected(S3Error::new(
                S3ErrorCode::InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive",
            )));
        }
        let storage_key = self.existing_upload_key(bucket, key, upload_id)?;
        let received = ingest(&self.blocks, body, self.config.block_size, None).await?;
        // Parts are not counted as stored until completed, but a part that alone would
        // take the owner past the byte quota can never complete: refuse it now.
        let part_usage = Usage {
            objects: 0,
            bytes: i64::try_from(received.size).unwrap_or(i64::MAX),
        };
        self.check_quota(bucket, part_usage)?;
        let record = PartRecord {
            md5: received.md5,
            size: received.size,
            last_modified_ms: time_now_millis(),
            checksum: received.checksum,
            blocks: received.layout.blocks().to_vec(),
        };
        let value = encode(&record)?;
        self.transact(|txn| {
            upload_in(txn, &storage_key, upload_id)?;
            txn.insert(Table::Parts, &part_key(upload_id, part_number), &value)?;
            Ok(())
        })?;
        self.flush().await?;
        Ok(PartInfo {
            part_number,
            etag: hex::encode(record.md5),
            size: record.size,
            last_modified: datetime_from_millis(record.last_modified_ms),
        })
    }

    /// The uploads-table key, after checking bucket and upload exist.
    fn existing_upload_key(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<u8>, StoreError> {
        self.require_bucket(bucket)?;
        if !is_valid_upload_id(upload_id) {
            return Err(no_such_upload(upload_id));
        }
        let storage_key = upload_key(bucket, key, upload_id);
        if self.kv.get(Table::Uploads, &storage_key)?.is_none() {
            return Err(no_such_upload(upload_id));
        }
        Ok(storage_key)
    }

    /// Turns the listed parts into the object's newest version.
    pub(super) async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<ObjectInfo, StoreError> {
        self.require_bucket(bucket)?;
        if !is_valid_upload_id(upload_id) {
            return Err(no_such_upload(upload_id));
        }
        if parts.is_empty() {
            return Err(StoreError::rejected(S3ErrorCode::MalformedXML));
        }
        if parts.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
            return Err(StoreError::rejected(S3ErrorCode::InvalidPartOrder));
        }
        let storage_key = upload_key(bucket, key, upload_id);
        let object_storage_key = object_key(bucket, key);
        let stale_parts = self.part_keys(upload_id)?;
        // The object's size is known once the parts are assembled: check the quota then,
        // outside the commit transaction (a refusal leaves the upload open). An assembly
        // that fails here fails the same way in the commit, which reports it.
        let sized = self.transact(|txn| match txn.get(Table::Uploads, &storage_key)? {
            Some(_) => assemble(txn, upload_id, parts).map(|assembled| Some(assembled.size)),
            None => Ok(None),
        });
        let owner = match sized {
            Ok(Some(size)) => self.check_quota(bucket, Usage::object(size))?,
            _ => None,
        };
        let outcome = self.transact(|txn| {
            require_bucket_in(txn, bucket)?;
            let upload = match txn.get(Table::Uploads, &storage_key)? {
                Some(bytes) => decode::<UploadRecord>(&bytes)?,
                None => return completed_before(txn, &object_storage_key, key, upload_id, parts),
            };
            let assembled = assemble(txn, upload_id, parts)?;
            let stamp = self.new_stamp();
            let live = LiveVersion {
                size: assembled.size,
                etag: assembled.etag,
                last_modified_ms: stamp.millis(),
                attrs: upload.attrs,
                // Composite (checksum-of-checksums) values are not computed yet.
                checksum: None,
                parts_count: u32::try_from(parts.len()).ok(),
                upload_id: Some(upload_id.to_string()),
                body: BodyLayout::Blocks(assembled.blocks),
            };
            let info = live.info(key);
            let record = ObjectRecord {
                stamp,
                state: ObjectState::Live(live),
            };
            let merged = merge_in(txn, &object_storage_key, record)?;
            txn.remove(Table::Uploads, &storage_key)?;
            for part in &stale_parts {
                txn.remove(Table::Parts, part)?;
            }
            Ok((info, Some(merged)))
        })?;
        let (info, merged) = outcome;
        if let Some(merged) = merged {
            let delta = self.count_change(bucket, merged.before.as_ref(), Some(&merged.after));
            self.record_write(owner, delta);
            // A part uploaded while we completed is unreachable now: drop its record.
            self.remove_parts(upload_id)?;
        }
        self.flush().await?;
        Ok(info)
    }

    /// Drops the upload and its parts; their blocks become garbage.
    pub(super) async fn abort_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), StoreError> {
        let storage_key = self.existing_upload_key(bucket, key, upload_id)?;
        self.transact(|txn| {
            upload_in(txn, &storage_key, upload_id)?;
            txn.remove(Table::Uploads, &storage_key)?;
            Ok(())
        })?;
        // After the upload is gone no part can be added (upload_part checks it in its
        // transaction), so this sweep leaves nothing behind.
        self.remove_parts(upload_id)?;
        self.flush().await
    }

    /// One page of the upload's parts, after `part_number_marker`.
    pub(super) fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number_marker: u32,
        max_parts: usize,
    ) -> Result<PartsPage, StoreError> {
        self.existing_upload_key(bucket, key, upload_id)?;
        let mut page = PartsPage::default();
        let start = match part_number_marker.checked_add(1) {
            Some(first) => part_key(upload_id, first),
            None => return Ok(page),
        };
        let end = prefix_end(upload_id.as_bytes());
        for item in self
            .kv
            .scan_from(Table::Parts, std::ops::Bound::Included(start))
        {
            let (storage_key, value) = item?;
            if end.as_deref().is_some_and(|end| *storage_key >= *end) {
                break;
            }
            let number = part_number_of(&storage_key)
                .ok_or_else(|| StoreError::Corrupt("short part key".into()))?;
            if page.parts.len() == max_parts {
                page.is_truncated = true;
                page.next_part_number_marker = page.parts.last().map(|p| p.part_number);
                break;
            }
            let part: PartRecord = decode(&value)?;
            page.parts.push(PartInfo {
                part_number: number,
                etag: hex::encode(part.md5),
                size: part.size,
                last_modified: datetime_from_millis(part.last_modified_ms),
            });
        }
        Ok(page)
    }

    fn part_keys(&self, upload_id: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        scan_prefix(&*self.kv, Table::Parts, upload_id.as_bytes())
            .map(|item| Ok(item?.0.to_vec()))
            .collect()
    }

    fn remove_parts(&self, upload_id: &str) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        for part in self.part_keys(upload_id)? {
            batch.remove(Table::Parts, part);
        }
        if !batch.is_empty() {
            self.kv.apply(batch)?;
        }
        Ok(())
    }
}

/// Answers a Complete whose upload is gone: the same object if this upload produced the
/// current version with as many parts, `NoSuchUpload` otherwise.
fn completed_before(
    txn: &dyn KvTxn,
    object_storage_key: &[u8],
    key: &str,
    upload_id: &str,
    parts: &[(u32, String)],
) -> Result<(ObjectInfo, Option<super::objects::Merged>), StoreError> {
    let current = match txn.get(Table::Objects, object_storage_key)? {
        Some(bytes) => decode::<ObjectRecord>(&bytes)?,
        None => return Err(no_such_upload(upload_id)),
    };
    match current.live() {
        Some(live)
            if live.upload_id.as_deref() == Some(upload_id)
                && live.parts_count == u32::try_from(parts.len()).ok() =>
        {
            Ok((live.info(key), None))
        }
        _ => Err(no_such_upload(upload_id)),
    }
}
