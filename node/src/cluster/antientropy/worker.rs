//! [`AntiEntropyWorker`]: rounds on a schedule, status for operators, rounds on demand.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::{AntiEntropy, AntiEntropyStatus, RoundReport};

/// A background task running [`AntiEntropy::run_round`] every
/// [`super::AntiEntropyConfig::interval`]. Stops when dropped.
pub struct AntiEntropyWorker {
    engine: Arc<AntiEntropy>,
    task: JoinHandle<()>,
}

impl AntiEntropyWorker {
    /// Starts the worker on the current tokio runtime. The first round runs one interval
    /// after the start: a node just started has not yet heard who is up.
    pub fn spawn(engine: Arc<AntiEntropy>) -> AntiEntropyWorker {
        let interval = engine.config().interval;
        let runner = Arc::clone(&engine);
        let task = tokio::spawn(async move {
            let first = tokio::time::Instant::now() + interval;
            let mut ticks = tokio::time::interval_at(first, interval);
            // A round slower than the interval must not be followed by a burst of rounds.
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                runner.run_round().await;
            }
        });
        AntiEntropyWorker { engine, task }
    }

    /// Runs a round now (after any round in progress) and returns its report.
    pub async fn run_round_now(&self) -> RoundReport {
        self.engine.run_round().await
    }

    /// What anti-entropy has done so far.
    pub fn status(&self) -> AntiEntropyStatus {
        self.engine.status()
    }
}

impl Drop for AntiEntropyWorker {
    fn drop(&mut self) {
        self.task.abort();
    }
}
