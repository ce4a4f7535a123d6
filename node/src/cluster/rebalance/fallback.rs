//! Reads of keys and blocks whose new owners do not have them yet: ask the previous
//! layout's owners.

use bytes::Bytes;
use ring::NodeId;

use crate::cluster::blocks::protocol::{BlockRequest, BlockResponse};
use crate::cluster::blocks::{block_position, BlockHash, BlockService};

use crate::cluster::error::TableError;
use crate::cluster::protocol::{TableRequest, TableResponse};
use crate::cluster::schema::EntryMerger;
use crate::cluster::system::TableSystem;
use crate::rpc::Payload;

/// The merge of what the owners of `position` under the previous ring (set by the
/// rebalance worker while a layout change settles) hold for `key`, skipping `already_asked`;
/// `None` when no previous ring is set or none of them holds it. Plain reads, no read
/// repair: an old owner that already dropped the key must not get it back.
pub(crate) async fn read_previous_owners(
    system: &TableSystem,
    table: &'static str,
    key: &Payload,
    position: u64,
    replicas: usize,
    already_asked: &[NodeId],
    merger: &dyn EntryMerger,
) -> Result<Option<Vec<u8>>, TableError> {
    let Some(previous) = system.previous_ring() else {
        return Ok(None);
    };
    let old_owners: Vec<NodeId> = previous
        .preference_list(position)
        .iter()
        .take(replicas)
        .filter(|node| !already_asked.contains(node))
        .cloned()
        .collect();
    let mut merged: Option<Vec<u8>> = None;
    for node in old_owners {
        let request = TableRequest::Read {
            table: table.to_owned(),
            key: key.clone(),
        };
        // An old owner that does not answer is no worse than one that dropped the key.
        if let Ok(TableResponse::Entry(Some(entry))) = system.call(&node, request).await {
            if let Some(next) = merger.merge_encoded(merged.as_deref(), &entry.into_vec())? {
                merged = Some(next);
            }
        }
    }
    Ok(merged)
}

/// Block `hash` from a node of the previous ring (set while a layout change settles) that is
/// not in the current one, verified against the hash; `None` when there is no previous ring
/// or none of them has it. No repair: the new owners get it from the rebalance.
pub(crate) async fn read_previous_block_owners(
    service: &BlockService,
    hash: BlockHash,
) -> Option<Bytes> {
    let previous = service.previous_ring()?;
    let current = service.liveness().ring();
    // Nodes of the current ring were all asked already (owners, then handoff candidates).
    let old_owners: Vec<NodeId> = previous
        .preference_list(block_position(&hash))
        .iter()
        .take(service.config().replicas)
        .filter(|node| !current.nodes().contains(node))
        .cloned()
        .collect();
    for node in old_owners {
        if let Ok(BlockResponse::Block(Some(data))) =
            service.call(&node, BlockRequest::Get { hash }).await
        {
            if blake3::hash(&data).as_bytes() == &hash {
                return Some(Bytes::from(data.into_vec()));
            }
        }
    }
    None
}
