//! [`ClusterReader`]: streams an object's bytes from replicated blocks, only the blocks that
//! overlap the requested range, with a little read-ahead.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{future, stream, StreamExt};
use s3api::backend::{ByteStream, ObjectInfo, ObjectReader};

use super::unavailable;
use crate::cluster::blocks::BlockService;
use crate::store::records::{BlockRef, BodyLayout};

/// Blocks fetched ahead of the one being sent: overlaps replica round trips with sending.
const READ_AHEAD_BLOCKS: usize = 2;

/// A readable object version of the cluster.
pub struct ClusterReader {
    info: ObjectInfo,
    layout: BodyLayout,
    blocks: Arc<BlockService>,
}

impl ClusterReader {
    pub(super) fn new(info: ObjectInfo, layout: BodyLayout, blocks: Arc<BlockService>) -> Self {
        ClusterReader {
            info,
            layout,
            blocks,
        }
    }
}

/// The part of one block that a range covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    hash: [u8; 32],
    offset: usize,
    len: usize,
}

/// The pieces of `blocks` that overlap `range` of their concatenation.
fn segments(blocks: &[BlockRef], range: &Range<u64>) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut block_start = 0u64;
    for block in blocks {
        let block_end = block_start + u64::from(block.len);
        let start = range.start.max(block_start);
        let end = range.end.min(block_end);
        if start < end {
            // Both lie within one block, whose length is a u32.
            out.push(Segment {
                hash: block.hash,
                offset: (start - block_start) as usize,
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

impl ObjectReader for ClusterReader {
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
        let service = self.blocks;
        let key = self.info.key;
        let reads = stream::iter(segments(&blocks, &range)).map(move |segment| {
            let service = Arc::clone(&service);
            async move {
                let data = service.get_block(segment.hash).await?;
                let end = segment.offset + segment.len;
                if data.len() < end {
                    // The hash matched, so the record's length is what is wrong.
                    return Ok(data.slice(segment.offset.min(data.len())..));
                }
                Ok(data.slice(segment.offset..end))
            }
        });
        let chunks = reads
            .buffered(READ_AHEAD_BLOCKS)
            // Stop after the first failure: the client sees a truncated body.
            .scan(false, move |failed, item| {
                if *failed {
                    return future::ready(None);
                }
                let item = item.map_err(|err: crate::cluster::blocks::BlockError| {
                    *failed = true;
                    tracing::error!(key = %key, error = %err, "object block unreadable");
                    unavailable("reading a block", err)
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
    }
}
