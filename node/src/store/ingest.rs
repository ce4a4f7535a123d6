//! Streaming a request body into block files with bounded memory.
//!
//! The body is cut into `block_size` pieces. Each full piece is hashed and written by a blocking
//! task while the next one is read (and MD5-summed by [`ObjectBody`]); at most
//! [`MAX_BLOCKS_IN_FLIGHT`] writes run per request, so one request holds at most that many
//! blocks plus the one being filled. Nothing here touches metadata: the caller commits the
//! record only after [`ingest`] returned, i.e. after every block is durable.

use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use s3api::backend::ChecksumAlgorithm;
use s3api::body::ObjectBody;
use tokio::task::JoinHandle;

use super::blocks::{BlockStore, StoredBlock};
use super::error::StoreError;
use super::records::{BlockRef, BodyLayout};

/// Block writes that may run concurrently for one request: two keeps the disk busy while the
/// next block is read, and bounds memory to three blocks per request.
const MAX_BLOCKS_IN_FLIGHT: usize = 2;

/// A body that is fully received, verified and durable in block files (or small enough to be
/// kept inline).
pub struct Ingested {
    pub size: u64,
    pub md5: [u8; 16],
    pub checksum: Option<(ChecksumAlgorithm, String)>,
    pub layout: BodyLayout,
}

type PendingWrite = JoinHandle<Result<StoredBlock, StoreError>>;

/// Collects finished block writes in body order.
struct Writer {
    blocks: Arc<BlockStore>,
    pending: VecDeque<PendingWrite>,
    written: Vec<BlockRef>,
    dirs_to_sync: BTreeSet<PathBuf>,
}

impl Writer {
    async fn submit(&mut self, data: Bytes) -> Result<(), StoreError> {
        if self.pending.len() >= MAX_BLOCKS_IN_FLIGHT {
            self.finish_oldest().await?;
        }
        let blocks = Arc::clone(&self.blocks);
        self.pending.push_back(tokio::task::spawn_blocking(move || {
            blocks.write_block(&data)
        }));
        Ok(())
    }

    async fn finish_oldest(&mut self) -> Result<(), StoreError> {
        if let Some(handle) = self.pending.pop_front() {
            let stored = handle.await??;
            self.written.push(stored.block);
            self.dirs_to_sync.insert(stored.dir);
        }
        Ok(())
    }

    /// Waits for every write, then makes the renames durable.
    async fn finish(&mut self) -> Result<Vec<BlockRef>, StoreError> {
        while !self.pending.is_empty() {
            self.finish_oldest().await?;
        }
        let blocks = Arc::clone(&self.blocks);
        let dirs = std::mem::take(&mut self.dirs_to_sync);
        tokio::task::spawn_blocking(move || blocks.sync_dirs(&dirs)).await??;
        Ok(std::mem::take(&mut self.written))
    }

    /// Waits for writes still running after a failure, so no work of a failed request
    /// outlives it; their outcome no longer matters.
    async fn abandon(&mut self) {
        for handle in self.pending.drain(..) {
            let _ = handle.await;
        }
    }
}

/// Receives `body` completely. Bodies of at most `inline_limit` bytes (when given) stay in
/// memory and come back as [`BodyLayout::Inline`]; all others are written as blocks.
///
/// On error, the writes still running are awaited; blocks already written stay on disk
/// unreferenced until garbage collection removes them.
pub async fn ingest(
    blocks: &Arc<BlockStore>,
    body: &mut ObjectBody,
    block_size: usize,
    inline_limit: Option<usize>,
) -> Result<Ingested, StoreError> {
    let mut writer = Writer {
        blocks: Arc::clone(blocks),
        pending: VecDeque::new(),
        written: Vec::new(),
        dirs_to_sync: BTreeSet::new(),
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
) -> Result<Ingested, StoreError> {
    let mut filling = BytesMut::new();
    let mut started_blocks = false;
    let mut size: u64 = 0;
    while let Some(mut chunk) = body.chunk().await? {
        size += chunk.len() as u64;
        while !chunk.is_empty() {
            if filling.is_empty() && chunk.len() >= block_size {
                // Whole blocks straight from the received buffer, without copying.
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
