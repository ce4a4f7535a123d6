//! Streaming a request body into replicated blocks with bounded memory.
//!
//! Like the single-node `store::ingest`: the body is cut into 1 MiB blocks, each named by
//! its BLAKE3 hash and put on its replicas (W acknowledgements) by a task while the next
//! block is read; at most [`MAX_BLOCKS_IN_FLIGHT`] puts run per request. Nothing here writes
//! metadata: the caller commits the entry only after [`ingest`] returned.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use s3api::backend::ChecksumAlgorithm;
use s3api::body::ObjectBody;
use s3api::S3Result;
use tokio::task::JoinHandle;

use super::unavailable;
use crate::cluster::blocks::{BlockError, BlockService};
use crate::store::records::{BlockRef, BodyLayout};

/// Block puts that may run at once for one request: keeps the replicas busy while the next
/// block is read, and bounds memory to three blocks per request.
const MAX_BLOCKS_IN_FLIGHT: usize = 2;

/// A body fully received, verified and stored (on W replicas per block, or inline).
pub(super) struct Ingested {
    pub size: u64,
    pub md5: [u8; 16],
    pub checksum: Option<(ChecksumAlgorithm, String)>,
    pub layout: BodyLayout,
}

type PendingPut = JoinHandle<Result<BlockRef, BlockError>>;

struct Writer {
    blocks: Arc<BlockService>,
    pending: VecDeque<PendingPut>,
    written: Vec<BlockRef>,
}

impl Writer {
    async fn submit(&mut self, data: Bytes) -> S3Result<()> {
        if self.pending.len() >= MAX_BLOCKS_IN_FLIGHT {
            self.finish_oldest().await?;
        }
        let blocks = Arc::clone(&self.blocks);
        self.pending.push_back(tokio::spawn(async move {
            let hash: [u8; 32] = blake3::hash(&data).into();
            // Blocks are at most BLOCK_SIZE (1 MiB) long.
            let len = data.len() as u32;
            blocks.put_block(hash, data).await?;
            Ok(BlockRef { hash, len })
        }));
        Ok(())
    }

    async fn finish_oldest(&mut self) -> S3Result<()> {
        if let Some(handle) = self.pending.pop_front() {
            let block = handle
                .await
                .map_err(|err| unavailable("block put task failed", err))?
                .map_err(|err| unavailable("storing a block", err))?;
            self.written.push(block);
        }
        Ok(())
    }

    async fn finish(&mut self) -> S3Result<Vec<BlockRef>> {
        while !self.pending.is_empty() {
            self.finish_oldest().await?;
        }
        Ok(std::mem::take(&mut self.written))
    }

    /// Waits for puts still running after a failure, so no work of a failed request
    /// outlives it; their blocks stay unreferenced until garbage collection.
    async fn abandon(&mut self) {
        for handle in self.pending.drain(..) {
            let _ = handle.await;
        }
    }
}

/// Receives `body` completely. Bodies of at most `inline_limit` bytes (when given) come back
/// as [`BodyLayout::Inline`]; all others are stored as blocks of `block_size`.
pub(super) async fn ingest(
    blocks: &Arc<BlockService>,
    body: &mut ObjectBody,
    block_size: usize,
    inline_limit: Option<usize>,
) -> S3Result<Ingested> {
    let mut writer = Writer {
        blocks: Arc::clone(blocks),
        pending: VecDeque::new(),
        written: Vec::new(),
    };
    let result = receive(&mut writer, body, block_size, inline_limit).await;
    if result.is_err() {
        writer.abandon().await;
    }
    result
}

async fn receive(
    writer: &mut Writer,
    body: &mut ObjectBody,
    block_size: usize,
    inline_limit: Option<usize>,
) -> S3Result<Ingested> {
    let mut filling = BytesMut::new();
    let mut started_blocks = false;
    let mut size: u64 = 0;
    while let Some(mut chunk) = body.chunk().await? {
        size += chunk.len() as u64;
        while !chunk.is_empty() {
            if filling.is_empty() && chunk.len() >= block_size {
                started_blocks = true;
                writer.submit(chunk.split_to(block_size)).await?;
                continue;
            }
            let take = (block_size - filling.len()).min(chunk.len());
            filling.extend_from_slice(&chunk.split_to(take));
            if filling.len() == block_size {
                started_blocks = true;
                writer.submit(filling.split().freeze()).await?;
            }
        }
    }
    let stays_inline = !started_blocks && inline_limit.is_some_and(|limit| filling.len() <= limit);
    let layout = if stays_inline {
        BodyLayout::Inline(filling.to_vec())
    } else {
        if !filling.is_empty() {
            writer.submit(filling.freeze()).await?;
        }
        BodyLayout::Blocks(writer.finish().await?)
    };
    Ok(Ingested {
        size,
        md5: body.md5(),
        checksum: body.checksum(),
        layout,
    })
}
