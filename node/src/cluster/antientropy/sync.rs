//! The initiator's side of one group's exchange with one peer.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use ring::{NodeId, Ring};

use super::groups::{collect_leaves, Owners, RegisteredTable};
use super::protocol::{AeRequest, AeResponse, KeyedEntry};
use super::tree::{entry_hash, MerkleTree, NodeHash, DEPTH, FANOUT};
use super::AntiEntropy;
use crate::rpc::Payload;

/// Inner nodes asked about per `Children` request: 256 × 16 hashes × 32 bytes = 128 KiB.
const NODES_PER_REQUEST: usize = 256;

/// What one group's exchange did.
pub(super) struct GroupOutcome {
    pub(super) in_sync: bool,
    pub(super) truncated: bool,
    pub(super) received: usize,
    pub(super) sent: usize,
}

/// Sends requests to one peer, counting them in the round's report.
struct Exchange<'a> {
    engine: &'a AntiEntropy,
    peer: &'a NodeId,
    messages: &'a mut usize,
}

impl Exchange<'_> {
    async fn call(&mut self, request: AeRequest) -> Result<AeResponse, String> {
        *self.messages += 1;
        self.engine.transport.call(self.peer, request).await
    }
}

fn unexpected(answer: &AeResponse) -> String {
    format!("unexpected answer {answer:?}")
}

impl AntiEntropy {
    /// Brings this node's and `peer`'s copies of group `owners` of `table` together, within
    /// the round's budget. `tree` is this node's tree of the group.
    pub(super) async fn sync_group(
        &self,
        table: &RegisteredTable,
        ring: &Arc<Ring>,
        owners: &Owners,
        tree: &MerkleTree,
        peer: &NodeId,
        messages: &mut usize,
    ) -> Result<GroupOutcome, String> {
        let mut exchange = Exchange {
            engine: self,
            peer,
            messages,
        };
        let opened = exchange
            .call(AeRequest::Open {
                table: table.name.to_owned(),
                owners: owners.clone(),
                layout_version: ring.version(),
                root: tree.root(),
            })
            .await?;
        let (session, root_children) = match opened {
            AeResponse::InSync => {
                return Ok(GroupOutcome {
                    in_sync: true,
                    truncated: false,
                    received: 0,
                    sent: 0,
                })
            }
            AeResponse::Diverged { session, children } => (session, children),
            other => return Err(unexpected(&other)),
        };
        let (leaves, truncated) = self
            .differing_leaves(&mut exchange, session, tree, root_children)
            .await?;
        let remote = fetch_leaves(&mut exchange, session, &leaves).await?;
        let received = self
            .merge_entries(table.name, remote.clone())
            .await
            .map_err(|err| format!("local merge: {err}"))?;
        let sent = self
            .push_back(
                &mut exchange,
                session,
                table,
                ring,
                owners,
                &leaves,
                &remote,
            )
            .await?;
        match exchange.call(AeRequest::Close { session }).await? {
            AeResponse::Closed => {}
            other => return Err(unexpected(&other)),
        }
        Ok(GroupOutcome {
            in_sync: false,
            truncated,
            received,
            sent,
        })
    }

    /// Descends from the root's children to the leaves whose hashes differ; at most
    /// `max_leaves_per_group` of them (the flag says whether some were left for later).
    async fn differing_leaves(
        &self,
        exchange: &mut Exchange<'_>,
        session: u64,
        tree: &MerkleTree,
        root_children: Vec<NodeHash>,
    ) -> Result<(BTreeSet<u32>, bool), String> {
        let budget = self.config.max_leaves_per_group.max(1);
        let mut differing = differing_children(0, &tree.children(0, 0), &root_children);
        let mut truncated = false;
        for level in 1..DEPTH {
            let mut next = Vec::new();
            for chunk in differing.chunks(NODES_PER_REQUEST) {
                if next.len() >= budget {
                    truncated = true;
                    break;
                }
                let answer = exchange
                    .call(AeRequest::Children {
                        session,
                        level,
                        nodes: chunk.to_vec(),
                    })
                    .await?;
                let AeResponse::Children(remote) = answer else {
                    return Err(unexpected(&answer));
                };
                if remote.len() != chunk.len() {
                    return Err(format!(
                        "asked for {} nodes' children, got {}",
                        chunk.len(),
                        remote.len()
                    ));
                }
                for (&node, remote_children) in chunk.iter().zip(&remote) {
                    let local_children = tree.children(level, node);
                    next.extend(differing_children(node, &local_children, remote_children));
                }
            }
            differing = next;
        }
        truncated |= differing.len() > budget;
        differing.truncate(budget);
        Ok((differing.into_iter().collect(), truncated))
    }

    /// Sends the peer this node's (now merged) entries of `leaves` that it lacks or holds in
    /// another version; returns how many changed its copy.
    #[allow(clippy::too_many_arguments)]
    async fn push_back(
        &self,
        exchange: &mut Exchange<'_>,
        session: u64,
        table: &RegisteredTable,
        ring: &Arc<Ring>,
        owners: &Owners,
        leaves: &BTreeSet<u32>,
        remote: &[KeyedEntry],
    ) -> Result<usize, String> {
        let remote_hashes: HashMap<&[u8], NodeHash> = remote
            .iter()
            .map(|(key, entry)| (&key[..], entry_hash(entry)))
            .collect();
        let kv = Arc::clone(&self.system.local().kv);
        let (scan_table, scan_ring) = (*table, Arc::clone(ring));
        let (scan_owners, scan_leaves) = (owners.clone(), leaves.clone());
        let local = tokio::task::spawn_blocking(move || {
            collect_leaves(&*kv, &scan_table, &scan_ring, &scan_owners, &scan_leaves)
        })
        .await
        .map_err(|err| format!("local scan: {err}"))?
        .map_err(|err| format!("local scan: {err}"))?;
        let to_push: Vec<KeyedEntry> = local
            .into_iter()
            .filter(|(_, key, entry)| remote_hashes.get(&key[..]) != Some(&entry_hash(entry)))
            .map(|(_, key, entry)| (Payload::new(key), Payload::new(entry)))
            .collect();
        let mut changed = 0;
        for batch in batches(to_push, self.config.message_bytes) {
            let answer = exchange
                .call(AeRequest::Push {
                    session,
                    entries: batch,
                })
                .await?;
            match answer {
                AeResponse::Pushed { changed: count } => changed += count as usize,
                other => return Err(unexpected(&other)),
            }
        }
        Ok(changed)
    }
}

/// Positions (in the next level) of the children of `node` whose hashes differ.
fn differing_children(node: u32, local: &[NodeHash], remote: &[NodeHash]) -> Vec<u32> {
    (0..FANOUT)
        .filter(|&i| local.get(i) != remote.get(i))
        .map(|i| node * FANOUT as u32 + i as u32)
        .collect()
}

/// Asks the peer for its entries of `leaves`, as many messages as the sizes need.
async fn fetch_leaves(
    exchange: &mut Exchange<'_>,
    session: u64,
    leaves: &BTreeSet<u32>,
) -> Result<Vec<KeyedEntry>, String> {
    let mut pending: Vec<u32> = leaves.iter().copied().collect();
    let mut entries = Vec::new();
    while !pending.is_empty() {
        let answer = exchange
            .call(AeRequest::FetchLeaves {
                session,
                leaves: pending.clone(),
            })
            .await?;
        let AeResponse::Entries {
            leaves_done,
            entries: mut batch,
        } = answer
        else {
            return Err(unexpected(&answer));
        };
        let done = leaves_done as usize;
        if done == 0 || done > pending.len() {
            return Err(format!("peer covered {done} of {} leaves", pending.len()));
        }
        entries.append(&mut batch);
        pending.drain(..done);
    }
    Ok(entries)
}

/// Splits entries into messages of about `message_bytes` each (at least one entry each).
fn batches(entries: Vec<KeyedEntry>, message_bytes: usize) -> Vec<Vec<KeyedEntry>> {
    let mut batches = Vec::new();
    let mut current = Vec::new();
    let mut size = 0;
    for (key, entry) in entries {
        let entry_size = key.len() + entry.len();
        if !current.is_empty() && size + entry_size > message_bytes {
            batches.push(std::mem::take(&mut current));
            size = 0;
        }
        size += entry_size;
        current.push((key, entry));
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}
