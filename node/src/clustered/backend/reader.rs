//! [`ClusterReader`]: streams an object's bytes from replicated blocks, only the blocks that
//! overlap the requested range, with a little read-ahead.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{future, stream, StreamExt};
use s3api::backend::{ByteStream, ObjectInfo, ObjectReader};

use super::unavailable;
use crate::cluster::blocks::BlockService;
use crate::store::reader::segments;
use crate::store::records::BodyLayout;

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
                // Within one block, whose length is a u32.
                let offset = segment.offset as usize;
                let end = offset + segment.len;
                if data.len() < end {
                    // The hash matched, so the record's length is what is wrong.
                    return Ok(data.slice(offset.min(data.len())..));
                }
                Ok(data.slice(offset..end))
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
