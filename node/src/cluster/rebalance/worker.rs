//! [`RebalanceWorker`]: runs rebalance passes whenever the layout changes.

use std::sync::Arc;
use std::time::Duration;

use ring::{Layout, Ring};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Rebalancer;

/// How many retry pauses reads keep consulting the previous owners after this node's pass
/// completed (the other nodes' passes, pushing to this node's gained ranges, may still run),
/// with a settling pass at each of them.
const PREVIOUS_RING_GRACE_PAUSES: u32 = 6;

/// Background task following layout versions; aborted when dropped.
pub struct RebalanceWorker {
    task: JoinHandle<()>,
}

/// What the worker waits for before looking at the layout again.
enum Wait {
    /// Nothing to do until the layout changes.
    Change,
    /// A pass was incomplete: retry after a pause (or at once towards a newer layout).
    Retry,
    /// This node's pass completed: stop consulting the previous ring after a grace period.
    Grace,
}

impl RebalanceWorker {
    /// Follows `layouts` (as given by the membership view's `subscribe`), starting from the
    /// layout current now. On every new version it sets the previous ring for reads
    /// ([`crate::cluster::TableSystem::set_previous_ring`]) and rebalances from the last
    /// layout whose rebalance completed here, retrying every `retry` until it completes or a
    /// newer version arrives; the previous ring is cleared a grace period after completion.
    pub fn spawn(
        rebalancer: Arc<Rebalancer>,
        mut layouts: watch::Receiver<Arc<Layout>>,
        retry: Duration,
    ) -> RebalanceWorker {
        // Taken before spawning: a layout sent before the task first runs is a change.
        let mut settled = Arc::new(Ring::new(&layouts.borrow_and_update()));
        let task = tokio::spawn(async move {
            let mut wait = Wait::Change;
            // The ring the last completed pass moved data away from, and how many settling
            // passes remain: a write that reached an old owner after its pass listed its data
            // (still in flight, or sent by a coordinator that had not seen the new layout yet)
            // is neither pushed nor dropped by that pass. Passes are idempotent, so the same
            // move is run again at each pause of the grace period to catch such late writes.
            let mut moved_from = Arc::clone(&settled);
            let mut settling_passes = 0;
            loop {
                let target = Arc::new(Ring::new(&layouts.borrow_and_update()));
                if target.version() != settled.version() {
                    rebalancer.set_previous_ring(Some(Arc::clone(&settled)));
                    wait = match rebalancer.rebalance(&settled, &target).await {
                        Ok(status) => {
                            tracing::info!(?status, "rebalance complete");
                            moved_from = std::mem::replace(&mut settled, target);
                            settling_passes = PREVIOUS_RING_GRACE_PAUSES;
                            Wait::Grace
                        }
                        Err(err) => {
                            tracing::warn!(%err, "rebalance pass incomplete, retrying");
                            Wait::Retry
                        }
                    };
                }
                let pause = match wait {
                    Wait::Change => None,
                    Wait::Retry | Wait::Grace => Some(retry),
                };
                let sleep = async {
                    match pause {
                        Some(pause) => tokio::time::sleep(pause).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = sleep => {
                        if let Wait::Grace = wait {
                            if let Err(err) = rebalancer.settle(&moved_from, &settled).await {
                                tracing::warn!(%err, "settling rebalance pass incomplete");
                            }
                            settling_passes = settling_passes.saturating_sub(1);
                            if settling_passes == 0 {
                                rebalancer.set_previous_ring(None);
                                wait = Wait::Change;
                            }
                        }
                    }
                    changed = layouts.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        RebalanceWorker { task }
    }
}

impl Drop for RebalanceWorker {
    fn drop(&mut self) {
        self.task.abort();
    }
}
