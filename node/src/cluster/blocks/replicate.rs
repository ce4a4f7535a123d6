//! The coordinator's side of a block put (quorum fan-out with handoff) and get (replica by
//! replica, verified, with read repair).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ring::NodeId;
use tokio::sync::mpsc;

use super::local::{check_hash, LocalRead};
use super::protocol::{BlockRequest, BlockResponse};
use super::service::BlockService;
use super::{block_position, failure, BlockError, BlockHash};
use crate::cluster::error::ReplicaFailure;
use crate::cluster::table::QuorumPolicy;
use crate::rpc::Payload;

/// What happened to the put for one owner.
enum ReplicaPut {
    Stored,
    Handed { holder: NodeId, owner_error: String },
    Failed(String),
}

/// The put's data shared by the per-owner tasks.
struct SharedPut {
    hash: BlockHash,
    data: Bytes,
    /// Nodes after the preference list not yet holding a handoff for another owner.
    unused_holders: Mutex<VecDeque<NodeId>>,
}

/// Sends the block to every owner; returns once W of them (or counted handoffs) have it.
pub(super) async fn put(
    service: &Arc<BlockService>,
    hash: BlockHash,
    data: Bytes,
) -> Result<(), BlockError> {
    if let Err(err) = check_hash(&hash, &data) {
        tracing::debug!(error = %err, "refusing to put a block under the wrong hash");
        return Err(BlockError::HashMismatch {
            expected: hex::encode(hash),
            actual: blake3::hash(&data).to_hex().to_string(),
        });
    }
    let ring = service.liveness().ring();
    let position = block_position(&hash);
    let owners = service.replicas_of(&hash);
    if owners.is_empty() {
        return Err(BlockError::EmptyRing {
            layout_version: ring.version(),
        });
    }
    let write_quorum = service.config().write_quorum.clamp(1, owners.len());
    let handoffs_count = service.config().policy == QuorumPolicy::Sloppy;
    let shared = Arc::new(SharedPut {
        hash,
        data,
        unused_holders: Mutex::new(ring.handoff_candidates(position).into()),
    });
    let (sender, mut outcomes) = mpsc::unbounded_channel();
    for owner in owners {
        let (service, shared, sender) = (Arc::clone(service), Arc::clone(&shared), sender.clone());
        tokio::spawn(async move {
            let outcome = put_one(&service, &owner, &shared).await;
            // The coordinator may have answered already; the copy happened regardless.
            let _ = sender.send((owner, outcome));
        });
    }
    drop(sender);

    let (mut succeeded, mut failures) = (0, Vec::new());
    while let Some((owner, outcome)) = outcomes.recv().await {
        match outcome {
            ReplicaPut::Stored => succeeded += 1,
            ReplicaPut::Handed { .. } if handoffs_count => succeeded += 1,
            ReplicaPut::Handed {
                holder,
                owner_error,
            } => failures.push(failure(
                &owner,
                format!("{owner_error} (block handed to {holder})"),
            )),
            ReplicaPut::Failed(reason) => failures.push(failure(&owner, reason)),
        }
        if succeeded >= write_quorum {
            return Ok(());
        }
    }
    Err(BlockError::WriteQuorum {
        hash: hex::encode(hash),
        needed: write_quorum,
        succeeded,
        failures,
    })
}

/// Stores the block on `owner`, or failing that, hands it to a node that holds it for them.
async fn put_one(service: &BlockService, owner: &NodeId, shared: &SharedPut) -> ReplicaPut {
    let owner_error = if service.liveness().is_up(owner) {
        let request = BlockRequest::Put {
            hash: shared.hash,
            data: Payload::from(&shared.data[..]),
        };
        match service.call(owner, request).await {
            Ok(BlockResponse::Done) => return ReplicaPut::Stored,
            Ok(other) => format!("unexpected answer {other:?}"),
            Err(reason) => reason,
        }
    } else {
        "marked down".to_owned()
    };
    let mut errors = vec![owner_error.clone()];
    while let Some(holder) = next_holder(service, shared) {
        let request = BlockRequest::StoreHandoff {
            owner: owner.clone(),
            hash: shared.hash,
            data: Payload::from(&shared.data[..]),
        };
        match service.call(&holder, request).await {
            Ok(BlockResponse::Done) => {
                return ReplicaPut::Handed {
                    holder,
                    owner_error,
                }
            }
            Ok(other) => errors.push(format!("handoff to {holder}: unexpected answer {other:?}")),
            Err(reason) => errors.push(format!("handoff to {holder}: {reason}")),
        }
    }
    if errors.len() == 1 {
        errors.push("no node available to hold the block for it".to_owned());
    }
    ReplicaPut::Failed(errors.join("; "))
}

fn next_holder(service: &BlockService, shared: &SharedPut) -> Option<NodeId> {
    let mut unused = shared
        .unused_holders
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    while let Some(candidate) = unused.pop_front() {
        if service.liveness().is_up(&candidate) {
            return Some(candidate);
        }
    }
    None
}

/// Finds intact bytes of `hash`: the local file first (if `use_local` and this node is an
/// owner), then the owners in preference order, then the nodes after them (which may hold
/// the block for a down owner). Replicas that answered corrupt bytes or nothing are repaired
/// in the background once good bytes are found.
pub(super) async fn get(
    service: &Arc<BlockService>,
    hash: BlockHash,
    use_local: bool,
) -> Result<Bytes, BlockError> {
    let ring = service.liveness().ring();
    let owners = service.replicas_of(&hash);
    if owners.is_empty() {
        return Err(BlockError::EmptyRing {
            layout_version: ring.version(),
        });
    }
    let local_id = service.liveness().local_id();
    let mut tried: Vec<ReplicaFailure> = Vec::new();
    // Owners to write the good bytes back to: those that answered corrupt bytes (`true`)
    // or nothing (`false`).
    let mut to_repair: Vec<(NodeId, bool)> = Vec::new();
    if use_local && owners.contains(&local_id) {
        match service
            .blocking(move |local| local.read_verified(&hash))
            .await
        {
            Ok(LocalRead::Intact(data)) => return Ok(Bytes::from(data)),
            Ok(LocalRead::Corrupt) => {
                tracing::warn!(block = %hex::encode(hash), "local block file is corrupt");
                tried.push(failure(&local_id, "local file is corrupt"));
                to_repair.push((local_id.clone(), true));
            }
            Ok(LocalRead::Missing) => {
                tried.push(failure(&local_id, "no local copy"));
                to_repair.push((local_id.clone(), false));
            }
            Err(err) => tried.push(failure(&local_id, format!("local read failed: {err}"))),
        }
    }
    let fallbacks = ring.handoff_candidates(block_position(&hash));
    let others = owners
        .iter()
        .chain(fallbacks.iter())
        .filter(|node| **node != local_id);
    let mut found = None;
    for node in others {
        if !service.liveness().is_up(node) {
            tried.push(failure(node, "marked down"));
            continue;
        }
        let is_owner = owners.contains(node);
        match service.call(node, BlockRequest::Get { hash }).await {
            Ok(BlockResponse::Block(Some(data))) => {
                if blake3::hash(&data).as_bytes() == &hash {
                    found = Some(data.into_vec());
                    break;
                }
                tracing::warn!(block = %hex::encode(hash), %node, "replica answered corrupt bytes");
                tried.push(failure(node, "answered bytes that do not match the hash"));
                to_repair.push((node.clone(), true));
            }
            Ok(BlockResponse::Block(None)) => {
                tried.push(failure(node, "does not hold the block"));
                if is_owner {
                    to_repair.push((node.clone(), false));
                }
            }
            Ok(other) => tried.push(failure(node, format!("unexpected answer {other:?}"))),
            Err(reason) => tried.push(failure(node, reason)),
        }
    }
    let Some(data) = found else {
        return Err(BlockError::NotFound {
            hash: hex::encode(hash),
            tried,
        });
    };
    let data = Bytes::from(data);
    if !to_repair.is_empty() {
        tokio::spawn(repair(Arc::clone(service), hash, data.clone(), to_repair));
    }
    Ok(data)
}

/// Writes good bytes back to replicas that answered corrupt bytes or nothing.
async fn repair(
    service: Arc<BlockService>,
    hash: BlockHash,
    data: Bytes,
    replicas: Vec<(NodeId, bool)>,
) {
    for (node, corrupt) in replicas {
        let payload = Payload::from(&data[..]);
        let request = if corrupt {
            BlockRequest::Repair {
                hash,
                data: payload,
            }
        } else {
            BlockRequest::Put {
                hash,
                data: payload,
            }
        };
        match service.call(&node, request).await {
            Ok(_) => {
                tracing::info!(block = %hex::encode(hash), %node, corrupt, "block read repair sent")
            }
            Err(reason) => {
                tracing::warn!(block = %hex::encode(hash), %node, %reason, "block read repair failed")
            }
        }
    }
}
