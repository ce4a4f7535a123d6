//! Reading object bytes: only the blocks that overlap the requested range, off the async
//! threads, one `Bytes` per block, with one block of read-ahead.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{future, stream, StreamExt};
use s3api::backend::{ByteStream, ObjectInfo, ObjectReader};
use s3api::S3Error;

use super::blocks::BlockStore;
use super::error::StoreError;
use super::records::{BlockRef, BodyLayout};

/// Blocks read ahead of the one being sent: overlaps disk reads with the network.
const READ_AHEAD_BLOCKS: usize = 2;

/// A readable object version of the local store.
pub struct StoreReader {
    info: ObjectInfo,
    layout: BodyLayout,
    blocks: Arc<BlockStore>,
}

/// The part of one block that a range covers (shared with the cluster's reader).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) hash: [u8; 32],
    pub(crate) offset: u64,
    pub(crate) len: usize,
}

impl StoreReader {
    pub(super) fn new(info: ObjectInfo, layout: BodyLayout, blocks: Arc<BlockStore>) -> Self {
        StoreReader {
            info,
            layout,
            blocks,
        }
    }
}

/// The pieces of `blocks` that overlap `range` of their concatenation.
pub(crate) fn segments(blocks: &[BlockRef], range: &Range<u64>) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut block_start = 0u64;
    for block in blocks {
        let block_end = block_start + u64::from(block.len);
        let start = range.start.max(block_start);
        let end = range.end.min(block_end);
        if start < end {
            out.push(Segment {
                hash: block.hash,
                offset: start - block_start,
                // At most one block, and block lengths are u32.
                len: (end - start) as usize,
            });
        }
        if block_end >= range.end {
            break;
        }
        block_start = block_end;
    }
    out
}

impl ObjectReader for StoreReader {
    fn info(&self) -> &ObjectInfo {
        &self.info
    }

    fn into_stream(self, range: Range<u64>) -> ByteStream {
        let range = range.start.min(self.info.size)..range.end.min(self.info.size);
        if range.is_empty() {
            return Box::pin(stream::empty());
        }
        let blocks = match self.layout {
            BodyLayout::Inline(bytes) => {
                let bytes = Bytes::from(bytes).slice(range.start as usize..range.end as usize);
                return Box::pin(stream::once(future::ready(Ok(bytes))));
            }
            BodyLayout::Blocks(blocks) => blocks,
        };
        let store = self.blocks;
        let key = self.info.key;
        let reads = stream::iter(segments(&blocks, &range)).map(move |segment| {
            let store = Arc::clone(&store);
            async move {
                let read = move || store.read(&segment.hash, segment.offset, segment.len);
                match tokio::task::spawn_blocking(read).await {
                    Ok(result) => result,
                    Err(join_error) => Err(StoreError::from(join_error)),
                }
            }
        });
        let chunks = reads
            .buffered(READ_AHEAD_BLOCKS)
            // Stop after the first failure: the client sees a truncated body.
            .scan(false, move |failed, item| {
                if *failed {
                    return future::ready(None);
                }
                let item = item.map_err(|err| {
                    *failed = true;
                    tracing::error!(key = %key, error = %err, "object block unreadable");
                    S3Error::from(err)
                });
                future::ready(Some(item))
            });
        Box::pin(chunks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(tag: u8, len: u32) -> BlockRef {
        BlockRef {
            hash: [tag; 32],
            len,
        }
    }

    #[test]
    fn segments_cover_exactly_the_range() {
        let blocks = [block(1, 10), block(2, 10), block(3, 4)];
        let all = segments(&blocks, &(0..24));
        assert_eq!(all.len(), 3);
        assert_eq!(all.iter().map(|s| s.len).sum::<usize>(), 24);
        let middle = segments(&blocks, &(5..12));
        assert_eq!(
            middle,
            vec![
                Segment {
                    hash: [1; 32],
                    offset: 5,
                    len: 5
                },
                Segment {
                    hash: [2; 32],
                    offset: 0,
                    len: 2
                }
            ]
        );
        let tail = segments(&blocks, &(20..24));
        assert_eq!(tail.len(), 1);
        assert_eq!((tail[0].hash, tail[0].offset, tail[0].len), ([3; 32], 0, 4));
    }
}
