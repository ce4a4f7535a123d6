//! Block handoff, the delivering half: push blocks held for a down owner to it once it
//! answers, then forget them (and drop the copy, unless this node owns the block itself).
//!
//! A record is removed only after the owner acknowledged a durable write, so a crash at any
//! point loses nothing; a block delivered twice is stored once (files are named by content).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::local::{Handoff, LocalRead};
use super::protocol::{BlockRequest, BlockResponse};
use super::service::BlockService;
use super::{BlockError, BlockHash};
use crate::rpc::Payload;
use ring::NodeId;

/// What one handoff pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandoffReport {
    /// Blocks acknowledged by their owner; their records are deleted.
    pub delivered: usize,
    /// Blocks not tried: their owner is marked down or failed earlier in this pass.
    pub waiting: usize,
    /// Deliveries that failed (owner unreachable, or the held copy unreadable).
    pub failed: usize,
}

impl BlockService {
    /// Tries once to deliver every block this node holds for another node.
    pub async fn replay_handoffs(&self) -> Result<HandoffReport, BlockError> {
        let handoffs = self.blocking(|local| local.handoffs()).await?;
        let mut report = HandoffReport::default();
        // One failure per owner and pass: a dead owner costs one timeout, not one per block.
        let mut unreachable = HashSet::new();
        for handoff in handoffs {
            if unreachable.contains(&handoff.owner) || !self.liveness().is_up(&handoff.owner) {
                report.waiting += 1;
                continue;
            }
            match self.deliver(&handoff).await {
                Ok(()) => {
                    self.counters().count_handoff_delivered();
                    report.delivered += 1;
                }
                Err(reason) => {
                    tracing::debug!(owner = %handoff.owner, %reason, "block handoff failed; retrying later");
                    unreachable.insert(handoff.owner.clone());
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    /// The blocks this node holds for other nodes, as (owner, block hash).
    pub async fn pending_handoffs(&self) -> Result<Vec<(NodeId, BlockHash)>, BlockError> {
        let handoffs = self.blocking(|local| local.handoffs()).await?;
        Ok(handoffs
            .into_iter()
            .map(|handoff| (handoff.owner, handoff.hash))
            .collect())
    }

    /// Pushes one held block to its owner and forgets the record.
    async fn deliver(&self, handoff: &Handoff) -> Result<(), String> {
        let hash = handoff.hash;
        let data = match self.blocking(move |local| local.read_verified(&hash)).await {
            Ok(LocalRead::Intact(data)) => data,
            // The held copy rotted: fetching it elsewhere is anti-entropy's job; the
            // record stays so the operator sees it.
            Ok(LocalRead::Corrupt) => return Err("held copy is corrupt".into()),
            Ok(LocalRead::Missing) => return Err("held copy is missing".into()),
            Err(err) => return Err(err.to_string()),
        };
        let request = BlockRequest::Put {
            hash,
            data: Payload::new(data),
        };
        match self.call(&handoff.owner, request).await? {
            BlockResponse::Done => {}
            other => return Err(format!("unexpected answer {other:?}")),
        }
        let keep_copy = self
            .replicas_of(&hash)
            .contains(&self.liveness().local_id());
        let finished = handoff.clone();
        self.blocking(move |local| local.finish_handoff(&finished, keep_copy))
            .await
            .map_err(|err| err.to_string())?;
        self.local().flush().await.map_err(|err| err.to_string())
    }
}

/// A background task running [`BlockService::replay_handoffs`] every `interval`. Stops when
/// dropped.
pub struct BlockHandoffWorker {
    task: JoinHandle<()>,
    delivered_total: Arc<Mutex<u64>>,
}

impl BlockHandoffWorker {
    /// Starts the worker on the current tokio runtime.
    pub fn spawn(service: Arc<BlockService>, interval: Duration) -> BlockHandoffWorker {
        let delivered_total = Arc::new(Mutex::new(0));
        let counter = Arc::clone(&delivered_total);
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            // A slow pass (owners timing out) must not be followed by a burst of passes.
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match service.replay_handoffs().await {
                    Ok(report) => {
                        *counter.lock().unwrap_or_else(|poison| poison.into_inner()) +=
                            report.delivered as u64;
                    }
                    Err(err) => tracing::warn!(error = %err, "block handoff pass failed"),
                }
            }
        });
        BlockHandoffWorker {
            task,
            delivered_total,
        }
    }

    /// Blocks delivered since the worker started.
    pub fn delivered_total(&self) -> u64 {
        *self
            .delivered_total
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Drop for BlockHandoffWorker {
    fn drop(&mut self) {
        self.task.abort();
    }
}
