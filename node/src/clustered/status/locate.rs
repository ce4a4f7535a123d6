//! The debug view of where one object lives (`GET /v1/cluster/locate`): which nodes own its
//! metadata and its blocks under the current ring, and which of them actually hold a copy.
//!
//! Every owner is asked directly (a table `Read`, a block `Holds`), never through a quorum,
//! so the answer shows missing replicas that reads would hide by repairing them.

use std::sync::Arc;

use admin::api::{BlockLocation, BlockReplica, ClusterApiError, LocateReport, MetadataReplica};
use futures_util::future::join_all;
use ring::NodeId;

use crate::cluster::blocks::protocol::{BlockRequest, BlockResponse};
use crate::cluster::blocks::BlockHash;
use crate::cluster::protocol::{TableRequest, TableResponse};
use crate::cluster::{Crdt, Replication, TableSchema};
use crate::clustered::backend::schemas::{ObjectEntry, ObjectsSchema};
use crate::clustered::ClusterNode;
use crate::rpc::Payload;
use crate::store::codec;

/// What one metadata owner answered.
struct OwnerCopy {
    node: NodeId,
    answer: Result<Option<ObjectEntry>, String>,
}

impl ClusterNode {
    /// Where object `key` of `bucket` has its metadata and blocks, asking every owner. The
    /// blocks listed are those of the newest version any owner holds.
    pub async fn locate_object(
        self: &Arc<Self>,
        bucket: String,
        key: String,
    ) -> Result<LocateReport, ClusterApiError> {
        let object_key = (bucket, key);
        let encoded_key = ObjectsSchema::encode_key(&object_key);
        let copies = self.ask_metadata_owners(&object_key, &encoded_key).await;

        let mut newest: Option<ObjectEntry> = None;
        for copy in &copies {
            if let Ok(Some(entry)) = &copy.answer {
                match &mut newest {
                    Some(merged) => merged.merge(entry),
                    None => newest = Some(entry.clone()),
                }
            }
        }
        let hashes: Vec<BlockHash> = newest
            .as_ref()
            .and_then(|entry| entry.version.value.as_ref())
            .map(|version| {
                version
                    .body
                    .blocks()
                    .iter()
                    .map(|block| block.hash)
                    .collect()
            })
            .unwrap_or_default();
        let blocks = join_all(hashes.into_iter().map(|hash| self.locate_block(hash))).await;

        let (bucket, key) = object_key;
        Ok(LocateReport {
            bucket,
            key,
            metadata: copies.into_iter().map(metadata_replica).collect(),
            blocks,
            hints_pending_for_key: self.hints_held_for(encoded_key).await?,
        })
    }

    /// Asks each owner of the object's metadata for its own copy, all at once.
    async fn ask_metadata_owners(
        &self,
        object_key: &(String, String),
        encoded_key: &[u8],
    ) -> Vec<OwnerCopy> {
        let owner_count = match Replication::DEFAULT_SHARDED {
            Replication::Sharded { n, .. } => n,
            Replication::FullCopy => usize::MAX,
        };
        let ring = self.tables.liveness().ring();
        let owners: Vec<NodeId> = ring
            .preference_list(ObjectsSchema::hash_key(object_key))
            .iter()
            .take(owner_count)
            .cloned()
            .collect();
        join_all(owners.into_iter().map(|node| async move {
            let request = TableRequest::Read {
                table: ObjectsSchema::TABLE_NAME.to_owned(),
                key: Payload::new(encoded_key.to_vec()),
            };
            let answer = match self.tables.call(&node, request).await {
                Ok(TableResponse::Entry(None)) => Ok(None),
                Ok(TableResponse::Entry(Some(bytes))) => {
                    codec::decode::<ObjectEntry>(&bytes.into_vec())
                        .map(Some)
                        .map_err(|err| format!("undecodable entry: {err}"))
                }
                Ok(other) => Err(format!("unexpected answer {other:?}")),
                Err(reason) => Err(reason),
            };
            OwnerCopy { node, answer }
        }))
        .await
    }

    /// Asks each owner of block `hash` whether it holds an intact copy.
    async fn locate_block(&self, hash: BlockHash) -> BlockLocation {
        let blocks = &self.data.blocks;
        let owners = join_all(
            blocks
                .replicas_of(&hash)
                .into_iter()
                .map(|node| async move {
                    let (holds, error) =
                        match blocks.call(&node, BlockRequest::Holds { hash }).await {
                            Ok(BlockResponse::Held(holds)) => (holds, None),
                            Ok(other) => (false, Some(format!("unexpected answer {other:?}"))),
                            Err(reason) => (false, Some(reason)),
                        };
                    BlockReplica {
                        node: node.to_string(),
                        holds,
                        error,
                    }
                }),
        )
        .await;
        BlockLocation {
            hash: hex::encode(hash),
            owners,
        }
    }

    /// How many hints this node holds for the object's metadata (one per absent owner).
    async fn hints_held_for(&self, encoded_key: Vec<u8>) -> Result<u64, ClusterApiError> {
        let tables = Arc::clone(&self.tables);
        let hints = tokio::task::spawn_blocking(move || tables.pending_hints())
            .await
            .map_err(|err| ClusterApiError::Internal(err.to_string()))?
            .map_err(|err| ClusterApiError::Internal(format!("reading the hint store: {err}")))?;
        Ok(hints
            .iter()
            .filter(|hint| hint.table == ObjectsSchema::TABLE_NAME && hint.key == encoded_key)
            .count() as u64)
    }
}

fn metadata_replica(copy: OwnerCopy) -> MetadataReplica {
    let node = copy.node.to_string();
    match copy.answer {
        Ok(entry) => MetadataReplica {
            node,
            owner: true,
            holds: entry.is_some(),
            stamp: entry.as_ref().map(|entry| entry.version.stamp.hlc),
            tombstone: entry.is_some_and(|entry| entry.version.is_tombstone()),
            error: None,
        },
        Err(reason) => MetadataReplica {
            node,
            owner: true,
            holds: false,
            stamp: None,
            tombstone: false,
            error: Some(reason),
        },
    }
}
