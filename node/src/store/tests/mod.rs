//! Behaviour tests of the whole store through the `S3Backend` trait.

mod failures;
mod gc;
mod listing;
mod multipart;
mod objects;
mod sharing;

use std::ops::Range;

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use s3api::access::Acl;
use s3api::backend::{ObjectAttrs, ObjectReader, S3Backend};
use s3api::body::ObjectBody;
use s3api::{S3Error, S3ErrorCode, S3Result};

use super::{Store, StoreConfig};

/// Bucket every test store starts with.
const BUCKET: &str = "bkt";

/// Small blocks and inline threshold so that modest bodies exercise every layout.
fn small_config(dir: &std::path::Path) -> StoreConfig {
    StoreConfig {
        block_size: 1024,
        inline_threshold: 100,
        ..StoreConfig::new(dir)
    }
}

/// A store in a fresh temp dir with [`BUCKET`] created.
async fn new_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(small_config(dir.path())).unwrap();
    store.create_bucket(BUCKET, &root_acl()).await.unwrap();
    (dir, store)
}

/// Deterministic pseudo-random bytes (xorshift) that differ per `seed`, so no two blocks of
/// different bodies, or of one body, coincide by accident.
/// A private ACL for `user`: what CreateBucket gives a bucket by default.
fn acl_of(user: &str) -> Acl {
    Acl::private(user)
}

/// The root user's private ACL, for tests where ownership plays no part.
fn root_acl() -> Acl {
    acl_of("root")
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ u64::from(seed);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A trusted body delivered in uneven chunks.
fn body(data: &[u8]) -> ObjectBody {
    let chunks: Vec<S3Result<Bytes>> = data
        .chunks(777)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    ObjectBody::from_stream(Box::pin(stream::iter(chunks)), Some(data.len() as u64))
}

/// A body that delivers `data` and then fails, like a client that disconnects.
fn failing_body(data: &[u8]) -> ObjectBody {
    let mut chunks: Vec<S3Result<Bytes>> = data
        .chunks(500)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    chunks.push(Err(S3Error::from(S3ErrorCode::IncompleteBody)));
    ObjectBody::from_stream(Box::pin(stream::iter(chunks)), None)
}

async fn put(store: &Store, key: &str, data: &[u8]) -> s3api::backend::ObjectInfo {
    store
        .put_object(BUCKET, key, ObjectAttrs::default(), &mut body(data))
        .await
        .unwrap()
}

/// Reads `range` of an object, failing on any stream error.
async fn read_range(store: &Store, key: &str, range: Range<u64>) -> S3Result<Vec<u8>> {
    let reader = store.get_object(BUCKET, key).await?;
    let mut stream = reader.into_stream(range);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

async fn read_all(store: &Store, key: &str) -> S3Result<Vec<u8>> {
    let size = store.head_object(BUCKET, key).await?.size;
    read_range(store, key, 0..size).await
}

fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(data))
}

fn code<T: std::fmt::Debug>(result: S3Result<T>) -> S3ErrorCode {
    result.unwrap_err().code
}
