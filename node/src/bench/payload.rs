//! Request bodies built from one random buffer, each object's content distinct.
//!
//! The store deduplicates blocks by content hash, so repeating one buffer would measure the
//! dedup path rather than the write path. Every chunk of every body therefore starts with a
//! prefix naming the run, the object and the chunk; the rest of the chunk is a cheap `Bytes`
//! slice of the shared buffer. Large bodies are streamed chunk by chunk and never held whole.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use futures_util::stream;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;

use super::client::RequestBody;

/// Size of each streamed chunk: the store's block size, so every stored block begins with a
/// distinct prefix.
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// Bodies up to this size are sent as one contiguous buffer (a copy this small is cheaper than
/// an extra frame).
const CONTIGUOUS_LIMIT: u64 = 64 * 1024;

/// Bytes of the distinguishing prefix: run nonce, object id, chunk index (each a `u64`).
const PREFIX_BYTES: usize = 24;

/// The source of every request body in a run.
pub struct Payload {
    random: Bytes,
    run_nonce: u64,
    next_object: AtomicU64,
}

impl Payload {
    /// Draws one chunk of random bytes and a nonce that makes this run's bodies unlike any
    /// earlier run's.
    pub fn new() -> anyhow::Result<Payload> {
        let mut random = vec![0u8; CHUNK_BYTES];
        getrandom::fill(&mut random).map_err(|err| anyhow::anyhow!("no randomness: {err}"))?;
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|err| anyhow::anyhow!("no randomness: {err}"))?;
        Ok(Payload {
            random: Bytes::from(random),
            run_nonce: u64::from_le_bytes(nonce),
            next_object: AtomicU64::new(0),
        })
    }

    /// A hex name for this run, to keep its keys apart from other runs'.
    pub fn run_id(&self) -> String {
        format!("{:016x}", self.run_nonce)
    }

    /// A fresh body of `len` bytes, unlike every other body of the run.
    pub fn body(&self, len: u64) -> RequestBody {
        let object = self.next_object.fetch_add(1, Ordering::Relaxed);
        if len <= CONTIGUOUS_LIMIT {
            let (prefix, rest) = split_chunk(&self.random, self.run_nonce, object, 0, len as usize);
            let mut contiguous = BytesMut::with_capacity(len as usize);
            contiguous.extend_from_slice(&prefix);
            contiguous.extend_from_slice(&rest);
            return Full::new(contiguous.freeze()).boxed();
        }
        let chunk = CHUNK_BYTES as u64;
        let chunks = len.div_ceil(chunk);
        let random = self.random.clone();
        let run_nonce = self.run_nonce;
        let frames = (0..chunks).flat_map(move |index| {
            let chunk_len = (len - index * chunk).min(chunk) as usize;
            let (prefix, rest) = split_chunk(&random, run_nonce, object, index, chunk_len);
            [prefix, rest]
                .into_iter()
                .filter(|bytes| !bytes.is_empty())
                .map(|bytes| Ok::<_, Infallible>(Frame::data(bytes)))
        });
        StreamBody::new(stream::iter(frames)).boxed()
    }
}

/// One chunk as (distinguishing prefix, slice of the random buffer); together `chunk_len` bytes.
fn split_chunk(
    random: &Bytes,
    run_nonce: u64,
    object: u64,
    index: u64,
    chunk_len: usize,
) -> (Bytes, Bytes) {
    let mut prefix = [0u8; PREFIX_BYTES];
    prefix[..8].copy_from_slice(&run_nonce.to_le_bytes());
    prefix[8..16].copy_from_slice(&object.to_le_bytes());
    prefix[16..].copy_from_slice(&index.to_le_bytes());
    let prefix_len = PREFIX_BYTES.min(chunk_len);
    let rest_end = chunk_len.min(random.len());
    (
        Bytes::copy_from_slice(&prefix[..prefix_len]),
        random.slice(prefix_len..rest_end),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(body: RequestBody) -> Bytes {
        body.collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn bodies_have_the_asked_length_and_differ() {
        let payload = Payload::new().unwrap();
        for len in [0u64, 10, 4096, 3 * 1024 * 1024 + 17] {
            let first = collect(payload.body(len)).await;
            let second = collect(payload.body(len)).await;
            assert_eq!(first.len() as u64, len);
            assert_eq!(second.len() as u64, len);
            if len > 0 {
                assert_ne!(first, second);
            }
        }
    }

    #[tokio::test]
    async fn every_block_of_a_large_body_is_distinct() {
        let payload = Payload::new().unwrap();
        let body = collect(payload.body(4 * CHUNK_BYTES as u64)).await;
        let blocks: std::collections::HashSet<&[u8]> = body.chunks(CHUNK_BYTES).collect();
        assert_eq!(blocks.len(), 4);
    }
}
