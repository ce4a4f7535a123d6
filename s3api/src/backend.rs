//! The storage side of the S3 protocol: the trait a node implements and the values that cross it.
//!
//! s3api parses, authenticates and checks integrity; the backend only stores and finds. Errors
//! come back as [`S3Error`] values already carrying the S3 code the client must see.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;
use time::OffsetDateTime;

use crate::access::Acl;
use crate::body::ObjectBody;
use crate::error::S3Result;

/// A stream of object bytes flowing out of the backend (GET) or between layers.
pub type ByteStream = Pin<Box<dyn Stream<Item = S3Result<Bytes>> + Send + 'static>>;

/// A bucket as listed by ListBuckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketInfo {
    /// The bucket's global name.
    pub name: String,
    /// When CreateBucket succeeded.
    pub created: OffsetDateTime,
    /// The user id of the bucket's creator, who owns it.
    pub owner: String,
}

/// Who owns a bucket and what its owner let others do: everything access control needs to
/// know about a bucket, read once per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketPermissions {
    /// The bucket owner's user id.
    pub owner: String,
    /// The bucket's ACL.
    pub acl: Acl,
    /// The bucket policy document as PutBucketPolicy stored it (already validated), if any.
    pub policy: Option<String>,
    /// The bucket's CORS configuration as PutBucketCors stored it (validated, canonical
    /// XML), if any. Read with the permissions so that answering a cross-origin request costs
    /// no extra read.
    pub cors: Option<String>,
}

/// An additional checksum algorithm a client may ask for (`x-amz-checksum-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    /// The name S3 uses in headers (`x-amz-checksum-<lowercase>`) and XML (`ChecksumCRC32`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    /// Parses `CRC32`, `crc32c`, … as sent in `x-amz-checksum-algorithm` or trailer names.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "CRC32" => Some(ChecksumAlgorithm::Crc32),
            "CRC32C" => Some(ChecksumAlgorithm::Crc32c),
            "SHA1" => Some(ChecksumAlgorithm::Sha1),
            "SHA256" => Some(ChecksumAlgorithm::Sha256),
            _ => None,
        }
    }
}

/// The headers a client sets on an object and gets back on GET/HEAD.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectAttrs {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<String>,
    /// `x-amz-meta-*` pairs: lowercase name without the prefix, value as sent (UTF-8 kept).
    pub user_metadata: Vec<(String, String)>,
    /// The object's ACL, whose owner is the uploader. Never written as a header; it travels
    /// with the other attributes so that every write path (PUT, copy, multipart) stores it.
    /// `None` for objects stored before ACLs existed: those are private to the bucket owner.
    pub acl: Option<Acl>,
}

/// What the backend knows about one stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// The entity tag without quotes: hex MD5, or `hex-N` for multipart objects.
    pub etag: String,
    /// Commit time, millisecond precision.
    pub last_modified: OffsetDateTime,
    pub attrs: ObjectAttrs,
    /// The verified additional checksum the object was uploaded with, if any (base64 value).
    pub checksum: Option<(ChecksumAlgorithm, String)>,
    /// Number of parts for objects made by CompleteMultipartUpload.
    pub parts_count: Option<u32>,
}

/// A readable object: its metadata now, its bytes when asked.
pub trait ObjectReader: Send + 'static {
    /// Metadata of the version being read.
    fn info(&self) -> &ObjectInfo;
    /// The bytes in `range` (already validated against the size; may be empty).
    fn into_stream(self, range: Range<u64>) -> ByteStream;
}

/// Parameters of one listing page (v1 and v2 share them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Return only keys (and common prefixes) strictly greater than this.
    pub start_after: Option<String>,
    /// 0..=1000.
    pub max_keys: usize,
}

/// One object in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub last_modified: OffsetDateTime,
}

/// One listing page, keys and common prefixes each in byte order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    pub objects: Vec<ObjectSummary>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// The last key or common prefix returned, when truncated: where the next page starts after.
    pub next_marker: Option<String>,
}

/// A part stored for a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    pub part_number: u32,
    pub etag: String,
    pub size: u64,
    pub last_modified: OffsetDateTime,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadInfo {
    pub key: String,
    pub upload_id: String,
    pub initiated: OffsetDateTime,
}

/// One page of ListParts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartsPage {
    pub parts: Vec<PartInfo>,
    pub is_truncated: bool,
    pub next_part_number_marker: Option<u32>,
}

/// Parameters of ListMultipartUploads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadsQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: Option<String>,
    pub upload_id_marker: Option<String>,
    pub max_uploads: usize,
}

/// One page of ListMultipartUploads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadsPage {
    pub uploads: Vec<UploadInfo>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_upload_id_marker: Option<String>,
}

/// The storage a node offers to the S3 front end. Every method is a complete S3 operation on
/// local or replicated state; implementations must be safe to call concurrently.
pub trait S3Backend: Send + Sync + 'static {
    /// The reader type returned by [`S3Backend::get_object`].
    type Reader: ObjectReader;

    /// Every bucket, sorted by name, whoever owns it (the caller filters).
    fn list_buckets(&self) -> impl Future<Output = S3Result<Vec<BucketInfo>>> + Send;
    /// Creates a bucket owned by `acl.owner` with that ACL. When the name is taken:
    /// `BucketAlreadyOwnedByYou` if the same user owns it, `BucketAlreadyExists` otherwise.
    fn create_bucket(&self, name: &str, acl: &Acl) -> impl Future<Output = S3Result<()>> + Send;
    /// `NoSuchBucket` if absent.
    fn head_bucket(&self, name: &str) -> impl Future<Output = S3Result<BucketInfo>> + Send;
    /// `BucketNotEmpty` while objects or uploads remain.
    fn delete_bucket(&self, name: &str) -> impl Future<Output = S3Result<()>> + Send;
    /// The bucket's owner, ACL and policy; `NoSuchBucket` if absent. Called for every request
    /// that names a bucket, so it must be cheap (a local read).
    fn bucket_permissions(
        &self,
        name: &str,
    ) -> impl Future<Output = S3Result<BucketPermissions>> + Send;
    /// Replaces the bucket's ACL (its owner stays).
    fn put_bucket_acl(&self, name: &str, acl: &Acl) -> impl Future<Output = S3Result<()>> + Send;
    /// Stores a validated policy document, or removes the policy with `None`.
    fn put_bucket_policy(
        &self,
        name: &str,
        policy: Option<&str>,
    ) -> impl Future<Output = S3Result<()>> + Send;
    /// Stores a validated CORS configuration document, or removes it with `None`.
    fn put_bucket_cors(
        &self,
        name: &str,
        cors: Option<&str>,
    ) -> impl Future<Output = S3Result<()>> + Send;
    /// The ACL of the object's newest version (`None`: stored before ACLs, private to the
    /// bucket owner); `NoSuchKey` if it does not exist.
    fn object_acl(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = S3Result<Option<Acl>>> + Send;
    /// Replaces the ACL of the object's newest version, keeping its data; `NoSuchKey` if it
    /// does not exist.
    fn put_object_acl(
        &self,
        bucket: &str,
        key: &str,
        acl: &Acl,
    ) -> impl Future<Output = S3Result<()>> + Send;

    /// Stores the body as the object's newest version once the body reports its end (which
    /// means every integrity check passed). Nothing is visible if any step fails.
    fn put_object(
        &self,
        bucket: &str,
        key: &str,
        attrs: ObjectAttrs,
        body: &mut ObjectBody,
    ) -> impl Future<Output = S3Result<ObjectInfo>> + Send;
    fn head_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = S3Result<ObjectInfo>> + Send;
    fn get_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = S3Result<Self::Reader>> + Send;
    /// Deletes the object; succeeds when it does not exist (S3 semantics).
    fn delete_object(&self, bucket: &str, key: &str) -> impl Future<Output = S3Result<()>> + Send;
    fn list_objects(
        &self,
        bucket: &str,
        query: &ListQuery,
    ) -> impl Future<Output = S3Result<ListPage>> + Send;

    fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        attrs: ObjectAttrs,
        checksum: Option<ChecksumAlgorithm>,
    ) -> impl Future<Output = S3Result<String>> + Send;
    fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: &mut ObjectBody,
    ) -> impl Future<Output = S3Result<PartInfo>> + Send;
    /// Assembles the listed parts (ascending, ETags matching) into the object. Completing an
    /// upload that already completed with the same parts answers the same object again.
    fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> impl Future<Output = S3Result<ObjectInfo>> + Send;
    fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = S3Result<()>> + Send;
    fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number_marker: u32,
        max_parts: usize,
    ) -> impl Future<Output = S3Result<PartsPage>> + Send;
    fn list_multipart_uploads(
        &self,
        bucket: &str,
        query: &UploadsQuery,
    ) -> impl Future<Output = S3Result<UploadsPage>> + Send;
}
