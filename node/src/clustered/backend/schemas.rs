//! The replicated tables behind the S3 data path and their entries.
//!
//! Every entry carries its own key (tables find an entry's key from the entry) and one or
//! more last-writer-wins registers, so merging is the register merge. Keys of the objects
//! and uploads tables start with the bucket name and a NUL byte (bucket names never contain
//! one): the encoding preserves (bucket, key) byte order, which is what lets a node scan one
//! bucket's entries in key order for listings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cluster::{Crdt, Lww, TableSchema};
use crate::store::codec::Record;
use crate::store::records::{BucketRecord, LiveVersion, PartRecord, UploadRecord};

/// `bucket` + NUL + `rest`: the order-preserving key layout of bucket-scoped tables.
pub(crate) fn bucket_scoped_key(bucket: &str, rest: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(bucket.len() + 1 + rest.len());
    out.extend_from_slice(bucket.as_bytes());
    out.push(0);
    out.extend_from_slice(rest.as_bytes());
    out
}

/// One bucket (a tombstone once deleted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketEntry {
    /// The bucket's global name.
    pub name: String,
    /// Its creation record.
    pub record: Lww<BucketRecord>,
}

impl Crdt for BucketEntry {
    fn merge(&mut self, other: &Self) {
        self.record.merge(&other.record);
    }
}

impl Record for BucketEntry {
    const FORMAT_VERSION: u8 = 1;
    const NAME: &'static str = "cluster bucket";
}

/// Buckets: a full copy on every node, read locally.
pub struct BucketsSchema;

// No `tombstoned_since`: bucket tombstones are kept. The table is a full copy written at a
// majority, so a safe purge would need every node of the layout up and acknowledging, and
// the deletion's stamp was decided by the name's Paxos log, whose instances stay anyway.
// Deleted bucket names are few and their tombstones tiny.
impl TableSchema for BucketsSchema {
    const TABLE_NAME: &'static str = "s3.buckets";
    type Entry = BucketEntry;
    type Key = String;

    fn key_of(entry: &BucketEntry) -> String {
        entry.name.clone()
    }

    fn encode_key(key: &String) -> Vec<u8> {
        key.as_bytes().to_vec()
    }
}

/// The newest version of one object (a tombstone once deleted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectEntry {
    /// The bucket holding the object.
    pub bucket: String,
    /// The object's key.
    pub key: String,
    /// The version; its stamp's uuid names the version in block references.
    pub version: Lww<LiveVersion>,
}

impl Crdt for ObjectEntry {
    fn merge(&mut self, other: &Self) {
        self.version.merge(&other.version);
    }
}

impl Record for ObjectEntry {
    const FORMAT_VERSION: u8 = 1;
    const NAME: &'static str = "cluster object";
}

/// Objects: sharded by (bucket, key).
pub struct ObjectsSchema;

impl TableSchema for ObjectsSchema {
    const TABLE_NAME: &'static str = "s3.objects";
    type Entry = ObjectEntry;
    type Key = (String, String);

    fn key_of(entry: &ObjectEntry) -> (String, String) {
        (entry.bucket.clone(), entry.key.clone())
    }

    fn encode_key((bucket, key): &(String, String)) -> Vec<u8> {
        bucket_scoped_key(bucket, key)
    }

    /// A deleted object: its register is a tombstone.
    fn tombstoned_since(entry: &ObjectEntry) -> Option<u64> {
        tombstone_millis(&entry.version)
    }
}

/// One multipart upload in progress (a tombstone once completed or aborted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadEntry {
    /// The bucket of the object being uploaded.
    pub bucket: String,
    /// The object's key.
    pub key: String,
    /// The upload's id.
    pub upload_id: String,
    /// The upload's settings.
    pub upload: Lww<UploadRecord>,
}

impl Crdt for UploadEntry {
    fn merge(&mut self, other: &Self) {
        self.upload.merge(&other.upload);
    }
}

impl Record for UploadEntry {
    const FORMAT_VERSION: u8 = 1;
    const NAME: &'static str = "cluster upload";
}

/// Uploads: sharded by (bucket, key, upload id), encoded `bucket NUL key NUL id` so that a
/// bucket's uploads list by key, then id, like the single-node store.
pub struct UploadsSchema;

impl TableSchema for UploadsSchema {
    const TABLE_NAME: &'static str = "s3.uploads";
    type Entry = UploadEntry;
    type Key = (String, String, String);

    fn key_of(entry: &UploadEntry) -> (String, String, String) {
        (
            entry.bucket.clone(),
            entry.key.clone(),
            entry.upload_id.clone(),
        )
    }

    fn encode_key((bucket, key, upload_id): &(String, String, String)) -> Vec<u8> {
        let mut out = bucket_scoped_key(bucket, key);
        out.push(0);
        out.extend_from_slice(upload_id.as_bytes());
        out
    }

    /// A completed or aborted upload: its register is a tombstone.
    fn tombstoned_since(entry: &UploadEntry) -> Option<u64> {
        tombstone_millis(&entry.upload)
    }
}

/// The parts of one upload: a map of registers, merged part by part (a CRDT map).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartsEntry {
    /// The upload the parts belong to.
    pub upload_id: String,
    /// Part number → the newest upload of that part.
    pub parts: BTreeMap<u32, Lww<PartRecord>>,
}

impl Crdt for PartsEntry {
    fn merge(&mut self, other: &Self) {
        for (number, part) in &other.parts {
            match self.parts.get_mut(number) {
                Some(mine) => mine.merge(part),
                None => {
                    self.parts.insert(*number, part.clone());
                }
            }
        }
    }
}

impl Record for PartsEntry {
    const FORMAT_VERSION: u8 = 1;
    const NAME: &'static str = "cluster parts";
}

/// Parts: sharded by upload id.
pub struct PartsSchema;

// No `tombstoned_since`: completing or aborting an upload tombstones the upload entry and
// releases the parts' block references, but leaves the part registers live, so a parts
// entry is never a whole deletion. Ended uploads' parts entries therefore stay; forgetting
// them needs the upload's end written into (or derived for) the parts entry first.
impl TableSchema for PartsSchema {
    const TABLE_NAME: &'static str = "s3.parts";
    type Entry = PartsEntry;
    type Key = String;

    fn key_of(entry: &PartsEntry) -> String {
        entry.upload_id.clone()
    }

    fn encode_key(key: &String) -> Vec<u8> {
        key.as_bytes().to_vec()
    }
}

/// The wall-clock milliseconds of `register`'s write if it is a tombstone.
fn tombstone_millis<T>(register: &Lww<T>) -> Option<u64> {
    register
        .is_tombstone()
        .then(|| register.stamp.wall_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Stamp;

    fn part(size: u64) -> PartRecord {
        PartRecord {
            md5: [size as u8; 16],
            size,
            last_modified_ms: 0,
            checksum: None,
            blocks: Vec::new(),
        }
    }

    #[test]
    fn parts_merge_part_by_part_in_any_order() {
        let older = Lww::new(Stamp::new(1, 1), part(1));
        let newer = Lww::new(Stamp::new(2, 2), part(2));
        let a = PartsEntry {
            upload_id: "u".into(),
            parts: BTreeMap::from([(1, older.clone()), (3, older.clone())]),
        };
        let b = PartsEntry {
            upload_id: "u".into(),
            parts: BTreeMap::from([(1, newer.clone()), (2, older.clone())]),
        };
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, ba);
        assert_eq!(ab.parts[&1], newer);
        assert_eq!(ab.parts.len(), 3);
        let mut again = ab.clone();
        again.merge(&b);
        assert_eq!(again, ab);
    }

    #[test]
    fn objects_and_uploads_are_tombstoned_since_their_deletion() {
        let deleted_at = 1_700_000_000_000u64;
        let stamp = Stamp::new(
            (deleted_at << crate::cluster::crdt::HLC_COUNTER_BITS) | 3,
            1,
        );
        let object = |version| ObjectEntry {
            bucket: "b".into(),
            key: "k".into(),
            version,
        };
        let live = LiveVersion {
            size: 0,
            etag: String::new(),
            last_modified_ms: 0,
            attrs: Default::default(),
            checksum: None,
            parts_count: None,
            upload_id: None,
            body: crate::store::records::BodyLayout::Inline(Vec::new()),
        };
        assert_eq!(
            ObjectsSchema::tombstoned_since(&object(Lww::tombstone(stamp))),
            Some(deleted_at)
        );
        assert_eq!(
            ObjectsSchema::tombstoned_since(&object(Lww::new(stamp, live))),
            None
        );
        let upload = UploadEntry {
            bucket: "b".into(),
            key: "k".into(),
            upload_id: "u".into(),
            upload: Lww::tombstone(stamp),
        };
        assert_eq!(UploadsSchema::tombstoned_since(&upload), Some(deleted_at));
    }

    #[test]
    fn object_keys_sort_by_bucket_then_key() {
        let encode = |b: &str, k: &str| ObjectsSchema::encode_key(&(b.into(), k.into()));
        assert!(encode("a", "z") < encode("ab", ""));
        assert!(encode("a", "b") < encode("a", "b/c"));
        assert!(encode("a", "b/c") < encode("a", "c"));
        assert_ne!(encode("a", "bc"), encode("ab", "c"));
    }
}
