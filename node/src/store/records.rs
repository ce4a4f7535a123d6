//! The records kept in the metadata tables, and the merge rule of object records.
//!
//! Object records are last-writer-wins registers ([`Crdt`]): each holds one version (live or a
//! tombstone) and the version stamp it was committed with; merging two records keeps the one
//! with the larger stamp. Replication, repair and local commits all reduce to that merge.

use s3api::access::Acl;
use s3api::backend::{ChecksumAlgorithm, ObjectAttrs, ObjectInfo};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::codec::{decode_payload, CodecError, Record};
use super::hlc::millis_of;
use super::legacy;

/// A state-based CRDT. For all records `a`, `b`, `c` of one key, `merge` must be
/// - commutative: `a.merge(b) == b.merge(a)`,
/// - associative: `a.merge(b).merge(c) == a.merge(b.merge(c))`,
/// - idempotent: `a.merge(a) == a`,
///
/// so replicas that receive the same records in any order, any number of times, converge.
pub trait Crdt {
    /// The least upper bound of both states.
    fn merge(self, other: Self) -> Self;
}

/// Orders versions of one object: hybrid-logical-clock time of the commit, then the node that
/// committed, then a random id. Every version gets a fresh uuid, so two different versions never
/// share a stamp and the order is total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VersionStamp {
    /// Hybrid logical clock at commit time (see [`super::hlc`]).
    pub hlc: u64,
    /// The node that committed the version.
    pub node_id: u64,
    /// Random tie-breaker, unique per version.
    pub uuid: [u8; 16],
}

impl VersionStamp {
    /// Commit time in Unix milliseconds.
    pub fn millis(&self) -> i64 {
        i64::try_from(millis_of(self.hlc)).unwrap_or(i64::MAX)
    }
}

/// One content-addressed block of an object body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockRef {
    /// BLAKE3 hash of the block's bytes; names its file.
    pub hash: [u8; 32],
    /// Length in bytes (the last block of a body or of a part may be short).
    pub len: u32,
}

/// Where an object's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BodyLayout {
    /// Small bodies live inside the record. Encoded as one byte string (bincode writes it
    /// exactly as it wrote the sequence of bytes before, so stored records read unchanged),
    /// not byte by byte: a replica read of a 4 KiB object decodes and encodes it several
    /// times.
    Inline(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Larger bodies are the concatenation of these blocks.
    Blocks(Vec<BlockRef>),
}

impl BodyLayout {
    /// The blocks this body references (none for inline bodies).
    pub fn blocks(&self) -> &[BlockRef] {
        match self {
            BodyLayout::Inline(_) => &[],
            BodyLayout::Blocks(blocks) => blocks,
        }
    }
}

/// A readable version of an object. Keep `size`, `etag` and `last_modified_ms` first and in
/// this order: listing decodes only them (see [`LiveHead`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveVersion {
    pub size: u64,
    /// Hex MD5, or `hex-N` for multipart objects.
    pub etag: String,
    pub last_modified_ms: i64,
    pub attrs: ObjectAttrs,
    pub checksum: Option<(ChecksumAlgorithm, String)>,
    pub parts_count: Option<u32>,
    /// The multipart upload this version was completed from, to answer a repeated Complete.
    pub upload_id: Option<String>,
    pub body: BodyLayout,
}

impl LiveVersion {
    /// The S3 view of this version under `key`.
    pub fn info(&self, key: &str) -> ObjectInfo {
        ObjectInfo {
            key: key.to_string(),
            size: self.size,
            etag: self.etag.clone(),
            last_modified: datetime_from_millis(self.last_modified_ms),
            attrs: self.attrs.clone(),
            checksum: self.checksum.clone(),
            parts_count: self.parts_count,
        }
    }
}

/// The value of an object register.
// Records live briefly on the stack while decoded; boxing the common variant would cost an
// allocation per read to save space only for tombstones.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectState {
    Live(LiveVersion),
    /// Deleted at the stamp's time; hidden from reads and listings until purged.
    Tombstone,
}

/// An object register: the winning version and its stamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    pub stamp: VersionStamp,
    pub state: ObjectState,
}

impl ObjectRecord {
    /// The live version, if the object is not deleted.
    pub fn live(&self) -> Option<&LiveVersion> {
        match &self.state {
            ObjectState::Live(live) => Some(live),
            ObjectState::Tombstone => None,
        }
    }
}

impl Crdt for ObjectRecord {
    /// Last writer wins: the larger stamp. Stamps are unique per version, so equal stamps mean
    /// equal records and keeping either one is the same.
    fn merge(self, other: Self) -> Self {
        if other.stamp > self.stamp {
            other
        } else {
            self
        }
    }
}

/// Version 2 added the ACL to the attributes ([`ObjectAttrs::acl`]); version 1 records are
/// read as objects without an ACL (private to the bucket owner).
impl Record for ObjectRecord {
    const FORMAT_VERSION: u8 = 2;
    const NAME: &'static str = "object";
    const HEAD_COMPATIBLE_VERSIONS: &'static [u8] = &[1];

    fn decode_older(version: u8, payload: &[u8]) -> Option<Result<Self, CodecError>> {
        (version == 1)
            .then(|| decode_payload::<legacy::ObjectRecordV1>(Self::NAME, payload).map(Self::from))
    }
}

/// The leading fields of an [`ObjectRecord`], decoded by listings without the body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ObjectHead {
    pub stamp: VersionStamp,
    pub state: HeadState,
}

/// Mirrors [`ObjectState`] variant by variant.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub enum HeadState {
    Live(LiveHead),
    Tombstone,
}

/// Mirrors the first fields of [`LiveVersion`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LiveHead {
    pub size: u64,
    pub etag: String,
    pub last_modified_ms: i64,
}

/// The user id that owns buckets and objects stored before owners were recorded: the root
/// user, the only user there was.
pub const LEGACY_OWNER: &str = "root";

/// A bucket: when it was made, whose it is, and what others may do with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    pub created_ms: i64,
    /// The creator's user id.
    pub owner: String,
    /// The bucket's ACL.
    pub acl: Acl,
    /// The validated bucket policy document, if one is set.
    pub policy: Option<String>,
    /// The validated CORS configuration (canonical XML), if one is set.
    pub cors: Option<String>,
}

impl BucketRecord {
    /// A new bucket owned by `acl.owner`, without policy or CORS configuration.
    pub fn new(created_ms: i64, acl: Acl) -> BucketRecord {
        BucketRecord {
            created_ms,
            owner: acl.owner.clone(),
            acl,
            policy: None,
            cors: None,
        }
    }
}

/// Version 2 added owner, ACL and policy; version 1 buckets belong to [`LEGACY_OWNER`],
/// private, without policy. Version 3 added the CORS configuration; older buckets have none.
impl Record for BucketRecord {
    const FORMAT_VERSION: u8 = 3;
    const NAME: &'static str = "bucket";

    fn decode_older(version: u8, payload: &[u8]) -> Option<Result<Self, CodecError>> {
        match version {
            1 => Some(
                decode_payload::<legacy::BucketRecordV1>(Self::NAME, payload)
                    .map(|old| BucketRecord::new(old.created_ms, Acl::private(LEGACY_OWNER))),
            ),
            2 => {
                Some(decode_payload::<legacy::BucketRecordV2>(Self::NAME, payload).map(Self::from))
            }
            _ => None,
        }
    }
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub initiated_ms: i64,
    pub attrs: ObjectAttrs,
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
}

/// Version 2 added the ACL to the attributes, as for [`ObjectRecord`].
impl Record for UploadRecord {
    const FORMAT_VERSION: u8 = 2;
    const NAME: &'static str = "upload";

    fn decode_older(version: u8, payload: &[u8]) -> Option<Result<Self, CodecError>> {
        (version == 1)
            .then(|| decode_payload::<legacy::UploadRecordV1>(Self::NAME, payload).map(Self::from))
    }
}

/// One uploaded part; a re-upload of the same number replaces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    /// Binary MD5 of the part; its hex form is the part's ETag.
    pub md5: [u8; 16],
    pub size: u64,
    pub last_modified_ms: i64,
    pub checksum: Option<(ChecksumAlgorithm, String)>,
    /// Part bodies are always blocks, even small ones.
    pub blocks: Vec<BlockRef>,
}

impl Record for PartRecord {
    const FORMAT_VERSION: u8 = 1;
    const NAME: &'static str = "part";
}

/// Converts Unix milliseconds to a timestamp (the epoch if out of range).
pub fn datetime_from_millis(millis: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::super::codec::{decode, decode_head, encode};
    use super::*;

    fn stamp(hlc: u64, node_id: u64, tag: u8) -> VersionStamp {
        VersionStamp {
            hlc,
            node_id,
            uuid: [tag; 16],
        }
    }

    fn live(stamp: VersionStamp, etag: &str) -> ObjectRecord {
        ObjectRecord {
            stamp,
            state: ObjectState::Live(LiveVersion {
                size: 3,
                etag: etag.into(),
                last_modified_ms: stamp.millis(),
                attrs: ObjectAttrs::default(),
                checksum: None,
                parts_count: None,
                upload_id: None,
                body: BodyLayout::Inline(b"abc".to_vec()),
            }),
        }
    }

    fn tombstone(stamp: VersionStamp) -> ObjectRecord {
        ObjectRecord {
            stamp,
            state: ObjectState::Tombstone,
        }
    }

    /// Hand-made records whose stamps tie on clock and node in several ways.
    fn samples() -> Vec<ObjectRecord> {
        vec![
            live(stamp(10 << 16, 1, 1), "a"),
            live(stamp(10 << 16, 2, 1), "b"),
            tombstone(stamp(10 << 16, 2, 2)),
            live(stamp((10 << 16) + 1, 1, 0), "c"),
            tombstone(stamp(11 << 16, 0, 9)),
            live(stamp(9 << 16, 7, 7), "d"),
        ]
    }

    #[test]
    fn object_merge_is_commutative_associative_and_idempotent() {
        let records = samples();
        for a in &records {
            assert_eq!(a.clone().merge(a.clone()), *a);
            for b in &records {
                assert_eq!(a.clone().merge(b.clone()), b.clone().merge(a.clone()));
                for c in &records {
                    let left = a.clone().merge(b.clone()).merge(c.clone());
                    let right = a.clone().merge(b.clone().merge(c.clone()));
                    assert_eq!(left, right);
                }
            }
        }
    }

    #[test]
    fn merge_keeps_the_largest_stamp_whatever_the_order() {
        let records = samples();
        let newest = records.iter().max_by_key(|r| r.stamp).unwrap().clone();
        let forward = records.iter().cloned().reduce(Crdt::merge).unwrap();
        let backward = records.iter().rev().cloned().reduce(Crdt::merge).unwrap();
        assert_eq!(forward, newest);
        assert_eq!(backward, newest);
        assert!(newest.live().is_none(), "the newest sample is a tombstone");
    }

    #[test]
    fn head_decoding_matches_the_full_record() {
        let record = live(stamp(5 << 16, 1, 3), "etag-1");
        let bytes = encode(&record).unwrap();
        let full: ObjectRecord = decode(&bytes).unwrap();
        assert_eq!(full, record);
        let head: ObjectHead = decode_head::<ObjectRecord, _>(&bytes).unwrap();
        assert_eq!(head.stamp, record.stamp);
        assert_eq!(
            head.state,
            HeadState::Live(LiveHead {
                size: 3,
                etag: "etag-1".into(),
                last_modified_ms: 5
            })
        );
        let gone = encode(&tombstone(stamp(6 << 16, 1, 3))).unwrap();
        let head: ObjectHead = decode_head::<ObjectRecord, _>(&gone).unwrap();
        assert_eq!(head.state, HeadState::Tombstone);
    }

    /// The body layout as it was encoded before inline bodies became byte strings.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    enum ByteByByteLayout {
        Inline(Vec<u8>),
        Blocks(Vec<BlockRef>),
    }

    #[test]
    fn inline_bodies_encode_exactly_as_before() {
        let body: Vec<u8> = (0..=255u8).cycle().take(5_000).collect();
        let now = bincode::serialize(&BodyLayout::Inline(body.clone())).unwrap();
        let before = bincode::serialize(&ByteByByteLayout::Inline(body.clone())).unwrap();
        assert_eq!(now, before);
        let read: BodyLayout = bincode::deserialize(&before).unwrap();
        assert_eq!(read, BodyLayout::Inline(body));
    }
}
