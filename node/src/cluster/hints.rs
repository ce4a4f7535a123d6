//! Hinted handoff, the delivering half: hand held writes to their owners once they answer,
//! then forget them.
//!
//! [`replay_hints`] is one pass over the hints this node holds; [`HintReplayWorker`] runs it
//! on a schedule and reports what it did. A hint is deleted only after its owner
//! acknowledged a durable merge, and only if no newer write was merged into the hint in the
//! meantime, so a crash at any point loses nothing (a hint delivered twice merges twice,
//! which changes nothing).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::error::TableError;
use super::protocol::{TableRequest, TableResponse};
use super::system::TableSystem;
use crate::rpc::Payload;

/// What one replay pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Hints acknowledged by their owner and deleted.
    pub delivered: usize,
    /// Hints acknowledged but kept, because a newer write joined them during the call.
    pub refreshed: usize,
    /// Hints not tried: their owner is marked down or failed earlier in this pass.
    pub waiting: usize,
    /// Hints whose delivery failed.
    pub failed: usize,
}

/// Tries to deliver every hint this node holds, once.
pub async fn replay_hints(system: &TableSystem) -> Result<ReplayReport, TableError> {
    let mut report = ReplayReport::default();
    // One failure per owner and pass: a dead owner costs one timeout, not one per hint.
    let mut unreachable = HashSet::new();
    for stored in system.local().hints()? {
        let owner = &stored.hint.owner;
        if unreachable.contains(owner) || !system.liveness().is_up(owner) {
            report.waiting += 1;
            continue;
        }
        let request = TableRequest::Merge {
            table: stored.hint.table.clone(),
            key: Payload::from(stored.hint.key.as_slice()),
            entry: Payload::from(stored.hint.entry.as_slice()),
        };
        match system.call(owner, request).await {
            Ok(TableResponse::Done) => {
                if system.local().remove_hint_if_unchanged(&stored)? {
                    system.counters().count_hint_delivered();
                    report.delivered += 1;
                } else {
                    report.refreshed += 1;
                }
            }
            outcome => {
                let reason = match outcome {
                    Err(reason) => reason,
                    Ok(other) => format!("unexpected answer {other:?}"),
                };
                tracing::debug!(%owner, %reason, "hint delivery failed; retrying later");
                unreachable.insert(owner.clone());
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

/// What the hint-replay worker reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerStatus {
    /// Passes completed since the worker started.
    pub rounds: u64,
    /// Hints delivered since the worker started.
    pub delivered_total: u64,
    /// The latest pass's figures.
    pub last_report: ReplayReport,
    /// Why the latest pass stopped early, if it did (for example a local storage error).
    pub last_error: Option<String>,
}

/// A background task running [`replay_hints`] every `interval`. Stops when dropped.
pub struct HintReplayWorker {
    task: JoinHandle<()>,
    status: Arc<Mutex<WorkerStatus>>,
}

impl HintReplayWorker {
    /// Starts the worker on the current tokio runtime.
    pub fn spawn(system: Arc<TableSystem>, interval: Duration) -> HintReplayWorker {
        let status = Arc::new(Mutex::new(WorkerStatus::default()));
        let reporter = Arc::clone(&status);
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            // A slow pass (owners timing out) must not be followed by a burst of catch-up
            // passes.
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let outcome = replay_hints(&system).await;
                let mut status = reporter.lock().unwrap_or_else(|poison| poison.into_inner());
                status.rounds += 1;
                match outcome {
                    Ok(report) => {
                        status.delivered_total += report.delivered as u64;
                        status.last_report = report;
                        status.last_error = None;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "hint replay pass failed");
                        status.last_error = Some(err.to_string());
                    }
                }
            }
        });
        HintReplayWorker { task, status }
    }

    /// A snapshot of what the worker has done.
    pub fn status(&self) -> WorkerStatus {
        self.status
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }
}

impl Drop for HintReplayWorker {
    fn drop(&mut self) {
        self.task.abort();
    }
}
