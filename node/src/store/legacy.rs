//! Record layouts of earlier format versions, kept only to read what older nodes wrote (see
//! [`super::codec::Record::decode_older`]), with their conversion to the current layouts.

use s3api::access::Acl;
use s3api::backend::{ChecksumAlgorithm, ObjectAttrs};
use serde::{Deserialize, Serialize};

use super::records::{
    BodyLayout, BucketRecord, LiveVersion, ObjectRecord, ObjectState, UploadRecord, VersionStamp,
};

/// [`BucketRecord`] version 1: no owner, ACL or policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecordV1 {
    pub created_ms: i64,
}

/// [`BucketRecord`] version 2: owner, ACL and policy, no CORS configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecordV2 {
    pub created_ms: i64,
    pub owner: String,
    pub acl: Acl,
    pub policy: Option<String>,
}

impl From<BucketRecordV2> for BucketRecord {
    fn from(old: BucketRecordV2) -> BucketRecord {
        BucketRecord {
            created_ms: old.created_ms,
            owner: old.owner,
            acl: old.acl,
            policy: old.policy,
            cors: None,
        }
    }
}

/// [`ObjectAttrs`] before the ACL was added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectAttrsV1 {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<String>,
    pub user_metadata: Vec<(String, String)>,
}

impl From<ObjectAttrsV1> for ObjectAttrs {
    fn from(old: ObjectAttrsV1) -> ObjectAttrs {
        ObjectAttrs {
            content_type: old.content_type,
            content_encoding: old.content_encoding,
            content_disposition: old.content_disposition,
            content_language: old.content_language,
            cache_control: old.cache_control,
            expires: old.expires,
            user_metadata: old.user_metadata,
            acl: None,
        }
    }
}

/// [`LiveVersion`] with version 1 attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveVersionV1 {
    pub size: u64,
    pub etag: String,
    pub last_modified_ms: i64,
    pub attrs: ObjectAttrsV1,
    pub checksum: Option<(ChecksumAlgorithm, String)>,
    pub parts_count: Option<u32>,
    pub upload_id: Option<String>,
    pub body: BodyLayout,
}

impl From<LiveVersionV1> for LiveVersion {
    fn from(old: LiveVersionV1) -> LiveVersion {
        LiveVersion {
            size: old.size,
            etag: old.etag,
            last_modified_ms: old.last_modified_ms,
            attrs: old.attrs.into(),
            checksum: old.checksum,
            parts_count: old.parts_count,
            upload_id: old.upload_id,
            body: old.body,
        }
    }
}

/// [`ObjectState`] of version 1 records.
// Mirrors `ObjectState`, which allows the same.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectStateV1 {
    Live(LiveVersionV1),
    Tombstone,
}

/// [`ObjectRecord`] version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecordV1 {
    pub stamp: VersionStamp,
    pub state: ObjectStateV1,
}

impl From<ObjectRecordV1> for ObjectRecord {
    fn from(old: ObjectRecordV1) -> ObjectRecord {
        ObjectRecord {
            stamp: old.stamp,
            state: match old.state {
                ObjectStateV1::Live(live) => ObjectState::Live(live.into()),
                ObjectStateV1::Tombstone => ObjectState::Tombstone,
            },
        }
    }
}

/// [`UploadRecord`] version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecordV1 {
    pub initiated_ms: i64,
    pub attrs: ObjectAttrsV1,
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
}

impl From<UploadRecordV1> for UploadRecord {
    fn from(old: UploadRecordV1) -> UploadRecord {
        UploadRecord {
            initiated_ms: old.initiated_ms,
            attrs: old.attrs.into(),
            checksum_algorithm: old.checksum_algorithm,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::codec::{decode, decode_head, encode, Record};
    use super::*;
    use crate::store::records::{HeadState, ObjectHead, LEGACY_OWNER};

    impl Record for BucketRecordV1 {
        const FORMAT_VERSION: u8 = 1;
        const NAME: &'static str = "bucket";
    }

    impl Record for BucketRecordV2 {
        const FORMAT_VERSION: u8 = 2;
        const NAME: &'static str = "bucket";
    }

    impl Record for ObjectRecordV1 {
        const FORMAT_VERSION: u8 = 1;
        const NAME: &'static str = "object";
    }

    impl Record for UploadRecordV1 {
        const FORMAT_VERSION: u8 = 1;
        const NAME: &'static str = "upload";
    }

    fn attrs_v1() -> ObjectAttrsV1 {
        ObjectAttrsV1 {
            content_type: Some("text/plain".into()),
            content_encoding: None,
            content_disposition: None,
            content_language: None,
            cache_control: None,
            expires: None,
            user_metadata: vec![("k".into(), "v".into())],
        }
    }

    #[test]
    fn version_1_buckets_belong_to_root_and_are_private() {
        let bytes = encode(&BucketRecordV1 { created_ms: 1234 }).unwrap();
        let record: BucketRecord = decode(&bytes).unwrap();
        assert_eq!(record.created_ms, 1234);
        assert_eq!(record.owner, LEGACY_OWNER);
        assert_eq!(record.acl, s3api::access::Acl::private(LEGACY_OWNER));
        assert_eq!(record.policy, None);
        assert_eq!(record.cors, None);
    }

    #[test]
    fn version_2_buckets_keep_their_permissions_without_cors() {
        let acl = s3api::access::Acl::private("alice");
        let old = BucketRecordV2 {
            created_ms: 99,
            owner: "alice".into(),
            acl: acl.clone(),
            policy: Some("{}".into()),
        };
        let record: BucketRecord = decode(&encode(&old).unwrap()).unwrap();
        assert_eq!(record.owner, "alice");
        assert_eq!(record.acl, acl);
        assert_eq!(record.policy.as_deref(), Some("{}"));
        assert_eq!(record.cors, None);
    }

    #[test]
    fn version_1_objects_and_uploads_read_without_acl() {
        let stamp = VersionStamp {
            hlc: 5 << 16,
            node_id: 1,
            uuid: [3; 16],
        };
        let old = ObjectRecordV1 {
            stamp,
            state: ObjectStateV1::Live(LiveVersionV1 {
                size: 3,
                etag: "e".into(),
                last_modified_ms: 5,
                attrs: attrs_v1(),
                checksum: None,
                parts_count: None,
                upload_id: None,
                body: BodyLayout::Inline(b"abc".to_vec()),
            }),
        };
        let bytes = encode(&old).unwrap();
        let record: ObjectRecord = decode(&bytes).unwrap();
        let live = record.live().unwrap();
        assert_eq!(live.attrs.acl, None);
        assert_eq!(live.attrs.content_type.as_deref(), Some("text/plain"));
        assert_eq!(live.body, BodyLayout::Inline(b"abc".to_vec()));
        let head: ObjectHead = decode_head::<ObjectRecord, _>(&bytes).unwrap();
        assert!(matches!(head.state, HeadState::Live(ref h) if h.etag == "e"));

        let upload = encode(&UploadRecordV1 {
            initiated_ms: 9,
            attrs: attrs_v1(),
            checksum_algorithm: Some(ChecksumAlgorithm::Crc32),
        })
        .unwrap();
        let upload: UploadRecord = decode(&upload).unwrap();
        assert_eq!(upload.attrs.acl, None);
        assert_eq!(upload.checksum_algorithm, Some(ChecksumAlgorithm::Crc32));
    }
}
