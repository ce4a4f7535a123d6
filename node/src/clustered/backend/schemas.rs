//! The replicated tables behind the S3 data path and their entries.
//!
//! Every entry carries its own key (tables find an entry's key from the entry) and one or
//! more last-writer-wins registers, so merging is the register merge. Keys of the objects
//! and uploads tables start with the bucket name and a NUL byte (bucket names never contain
//! one): the encoding preserves (bucket, key) byte order, which is what lets a node scan one
//! bucket's entries in key order for listings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use s3api::access::Acl;

use crate::cluster::{Crdt, Lww, Stamp, TableSchema};
use crate::store::codec::{decode_payload, CodecError, Record};
use crate::store::legacy::{BucketRecordV1, LiveVersionV1, UploadRecordV1};
use crate::store::records::{LiveVersion, PartRecord, UploadRecord, LEGACY_OWNER};

/// `bucket` + NUL + `rest`: the order-preserving key layout of bucket-scoped tables.
pub(crate) fn bucket_scoped_key(bucket: &str, rest: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(bucket.len() + 1 + rest.len());
    out.extend_from_slice(bucket.as_bytes());
    out.push(0);
    out.extend_from_slice(rest.as_bytes());
    out
}

/// A bucket's creation: when, and by whom (its owner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketCreation {
    /// Creation time, Unix milliseconds.
    pub created_ms: i64,
    /// The creator's user id.
    pub owner: String,
}

/// One bucket (a tombstone once deleted): its creation and its permissions, each field a
/// last-writer-wins register of its own, so an ACL change and a policy change made at the
/// same time through different nodes both survive.
///
/// ACL, policy and CORS registers older than the creation belong to an earlier bucket of the
/// same name and are ignored ([`BucketEntry::acl`], [`BucketEntry::policy`],
/// [`BucketEntry::cors`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketEntry {
    /// The bucket's global name.
    pub name: String,
    /// Its creation.
    pub record: Lww<BucketCreation>,
    /// The ACL set at creation or by PutBucketAcl; `None` until one reaches this copy (a copy
    /// learned from the name's agreed log has none yet): private to the owner meanwhile.
    pub acl: Option<Lww<Acl>>,
    /// The policy document; a tombstone once deleted.
    pub policy: Option<Lww<String>>,
    /// The CORS configuration (validated, canonical XML); a tombstone once deleted.
    pub cors: Option<Lww<String>>,
}

impl BucketEntry {
    /// The bucket's ACL now: the newest one set since the creation, else private.
    pub fn acl(&self) -> Option<Acl> {
        let creation = self.record.value.as_ref()?;
        let current = self
            .acl
            .as_ref()
            .filter(|acl| acl.stamp >= self.record.stamp)
            .and_then(|acl| acl.value.clone());
        Some(current.unwrap_or_else(|| Acl::private(&creation.owner)))
    }

    /// The bucket's policy now, if one was set since the creation and not deleted.
    pub fn policy(&self) -> Option<&str> {
        self.policy
            .as_ref()
            .filter(|policy| policy.stamp >= self.record.stamp)
            .and_then(|policy| policy.value.as_deref())
    }

    /// The bucket's CORS configuration now, if one was set since the creation and not deleted.
    pub fn cors(&self) -> Option<&str> {
        self.cors
            .as_ref()
            .filter(|cors| cors.stamp >= self.record.stamp)
            .and_then(|cors| cors.value.as_deref())
    }
}

/// Merges an optional register: a register beats its absence.
fn merge_optional<T: Clone>(mine: &mut Option<Lww<T>>, theirs: &Option<Lww<T>>) {
    match (mine.as_mut(), theirs) {
        (Some(mine), Some(theirs)) => mine.merge(theirs),
        (None, Some(theirs)) => *mine = Some(theirs.clone()),
        (_, None) => {}
    }
}

impl Crdt for BucketEntry {
    fn merge(&mut self, other: &Self) {
        self.record.merge(&other.record);
        merge_optional(&mut self.acl, &other.acl);
        merge_optional(&mut self.policy, &other.policy);
        merge_optional(&mut self.cors, &other.cors);
    }
}

/// [`BucketEntry`] version 1: creation time only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BucketEntryV1 {
    name: String,
    record: Lww<BucketRecordV1>,
}

/// [`BucketEntry`] version 2: owner, ACL and policy, no CORS register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BucketEntryV2 {
    name: String,
    record: Lww<BucketCreation>,
    acl: Option<Lww<Acl>>,
    policy: Option<Lww<String>>,
}

/// Version 2 added owner, ACL and policy; version 1 buckets belong to [`LEGACY_OWNER`].
/// Version 3 added the CORS register; older entries have none (a merge keeps a newer copy's).
impl Record for BucketEntry {
    const FORMAT_VERSION: u8 = 3;
    const NAME: &'static str = "cluster bucket";

    fn decode_older(version: u8, payload: &[u8]) -> Option<Result<Self, CodecError>> {
        match version {
            1 => Some(
                decode_payload::<BucketEntryV1>(Self::NAME, payload).map(|old| BucketEntry {
                    name: old.name,
                    record: Lww {
                        stamp: old.record.stamp,
                        value: old.record.value.map(|record| BucketCreation {
                            created_ms: record.created_ms,
                            owner: LEGACY_OWNER.to_owned(),
                        }),
                    },
                    acl: None,
                    policy: None,
                    cors: None,
                }),
            ),
            2 => Some(
                decode_payload::<BucketEntryV2>(Self::NAME, payload).map(|old| BucketEntry {
                    name: old.name,
                    record: old.record,
                    acl: old.acl,
                    policy: old.policy,
                    cors: None,
                }),
            ),
            _ => None,
        }
    }
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
    /// The newest PutObjectAcl; it applies only to the version it was made for.
    pub acl: Option<Lww<ObjectAclChange>>,
}

/// An ACL given to one version of an object after it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectAclChange {
    /// The stamp of the version the ACL is for.
    pub version: Stamp,
    /// The new ACL.
    pub acl: Acl,
}

impl ObjectEntry {
    /// The live version's ACL now: a later change made for this version, else the one it
    /// was written with (`None` for versions stored without one).
    pub fn current_acl(&self) -> Option<Acl> {
        let live = self.version.value.as_ref()?;
        let changed = self
            .acl
            .as_ref()
            .and_then(|change| change.value.as_ref())
            .filter(|change| change.version == self.version.stamp);
        match changed {
            Some(change) => Some(change.acl.clone()),
            None => live.attrs.acl.clone(),
        }
    }
}

impl Crdt for ObjectEntry {
    fn merge(&mut self, other: &Self) {
        self.version.merge(&other.version);
        merge_optional(&mut self.acl, &other.acl);
    }
}

/// [`ObjectEntry`] version 1: no ACL in the attributes, no ACL register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ObjectEntryV1 {
    bucket: String,
    key: String,
    version: Lww<LiveVersionV1>,
}

/// Version 2 added the ACL (in the attributes and as a register).
impl Record for ObjectEntry {
    const FORMAT_VERSION: u8 = 2;
    const NAME: &'static str = "cluster object";

    fn decode_older(version: u8, payload: &[u8]) -> Option<Result<Self, CodecError>> {
        (version == 1).then(|| {
            decode_payload::<ObjectEntryV1>(Self::NAME, payload).map(|old| ObjectEntry {
                bucket: old.bucket,
                key: old.key,
                version: Lww {
                    stamp: old.version.stamp,
                    value: old.version.value.map(LiveVersion::from),
                },
                acl: None,
            })
        })
    }
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

/// [`UploadEntry`] version 1: no ACL in the attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UploadEntryV1 {
    bucket: String,
    key: String,
    upload_id: String,
    upload: Lww<UploadRecordV1>,
}

/// Version 2 added the ACL of the object to be completed to the attributes.
impl Record for UploadEntry {
    const FORMAT_VERSION: u8 = 2;
    const NAME: &'static str = "cluster upload";

    fn decode_older(version: u8, payload: &[u8]) -> Option<Result<Self, CodecError>> {
        (version == 1).then(|| {
            decode_payload::<UploadEntryV1>(Self::NAME, payload).map(|old| UploadEntry {
                bucket: old.bucket,
                key: old.key,
                upload_id: old.upload_id,
                upload: Lww {
                    stamp: old.upload.stamp,
                    value: old.upload.value.map(UploadRecord::from),
                },
            })
        })
    }
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

    fn bucket(stamp: Stamp, owner: &str) -> BucketEntry {
        BucketEntry {
            name: "b".into(),
            record: Lww::new(
                stamp,
                BucketCreation {
                    created_ms: 1,
                    owner: owner.into(),
                },
            ),
            acl: None,
            policy: None,
            cors: None,
        }
    }

    #[test]
    fn bucket_permissions_merge_field_by_field_and_ignore_older_buckets() {
        let created = Stamp::new(10, 1);
        let mut acl_change = bucket(created, "alice");
        let public = s3api::access::CannedAcl::PublicRead.expand("alice", "alice");
        acl_change.acl = Some(Lww::new(Stamp::new(20, 2), public.clone()));
        let mut policy_change = bucket(created, "alice");
        policy_change.policy = Some(Lww::new(Stamp::new(15, 3), "{}".to_owned()));
        policy_change.cors = Some(Lww::new(Stamp::new(16, 3), "<CORS/>".to_owned()));
        let mut merged = acl_change.clone();
        merged.merge(&policy_change);
        let mut other_way = policy_change.clone();
        other_way.merge(&acl_change);
        assert_eq!(merged, other_way);
        assert_eq!(merged.acl(), Some(public));
        assert_eq!(merged.policy(), Some("{}"));
        assert_eq!(merged.cors(), Some("<CORS/>"));
        assert_eq!(bucket(created, "alice").acl(), Some(Acl::private("alice")));

        // Re-created by bob after a deletion: alice's registers are older and do not apply.
        let mut recreated = bucket(Stamp::new(30, 1), "bob");
        recreated.merge(&merged);
        assert_eq!(recreated.acl(), Some(Acl::private("bob")));
        assert_eq!(recreated.policy(), None);
        assert_eq!(recreated.cors(), None);
    }

    #[test]
    fn version_2_entries_decode_without_cors() {
        let old = BucketEntryV2 {
            name: "b".into(),
            record: Lww::new(
                Stamp::new(7, 1),
                BucketCreation {
                    created_ms: 7,
                    owner: "alice".into(),
                },
            ),
            acl: Some(Lww::new(Stamp::new(8, 1), Acl::private("alice"))),
            policy: Some(Lww::new(Stamp::new(9, 1), "{}".to_owned())),
        };
        let mut bytes = vec![2];
        bytes.extend(bincode_payload(&old));
        let entry: BucketEntry = crate::store::codec::decode(&bytes).unwrap();
        assert_eq!(entry.acl(), Some(Acl::private("alice")));
        assert_eq!(entry.policy(), Some("{}"));
        assert_eq!(entry.cors(), None);
    }

    #[test]
    fn version_1_entries_decode_with_the_legacy_owner() {
        let old = BucketEntryV1 {
            name: "b".into(),
            record: Lww::new(Stamp::new(7, 1), BucketRecordV1 { created_ms: 7 }),
        };
        let mut bytes = vec![1];
        bytes.extend(bincode_payload(&old));
        let entry: BucketEntry = crate::store::codec::decode(&bytes).unwrap();
        assert_eq!(entry.record.value.unwrap().owner, LEGACY_OWNER);
        assert_eq!(entry.acl, None);
    }

    /// The payload [`crate::store::codec::encode`] writes after the version byte.
    fn bincode_payload<T: Serialize>(value: &T) -> Vec<u8> {
        use bincode::Options;
        bincode::DefaultOptions::new()
            .reject_trailing_bytes()
            .serialize(value)
            .unwrap()
    }

    #[test]
    fn object_acl_changes_apply_to_the_version_they_name() {
        let version = Stamp::new(10, 1);
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
        let granted = Acl::private("bob");
        let mut entry = ObjectEntry {
            bucket: "b".into(),
            key: "k".into(),
            version: Lww::new(version, live.clone()),
            acl: Some(Lww::new(
                Stamp::new(11, 2),
                ObjectAclChange {
                    version,
                    acl: granted.clone(),
                },
            )),
        };
        assert_eq!(entry.current_acl(), Some(granted));
        entry.merge(&ObjectEntry {
            version: Lww::new(Stamp::new(12, 3), live),
            acl: None,
            ..entry.clone()
        });
        assert_eq!(entry.current_acl(), None);
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
            acl: None,
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
