//! Runs one operation repeatedly from N concurrent workers and tallies what happened.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::RequestError;
use super::stats::Latencies;

/// After this many failures a worker gives up: one bad request is already a failed run, and a
/// dead endpoint should not be hammered for the whole workload.
const MAX_ERRORS_PER_WORKER: u64 = 100;

/// Longest one operation may take before it counts as failed: far beyond any healthy request
/// here (a 64 MiB PUT on a slow disk takes seconds), short enough that a stalled server ends
/// the run with an error instead of hanging it.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(120);

/// When the workers stop.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// Start no operation after this much time has passed.
    Elapsed(Duration),
    /// Run operations with sequence numbers `0..count`.
    Count(u64),
}

/// The outcome of one run of operations.
#[derive(Debug, Default)]
pub struct Measured {
    /// Operations that succeeded.
    pub ops: u64,
    /// Payload bytes the successful operations moved (as each operation reports).
    pub bytes: u64,
    /// Operations that failed.
    pub errors: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// Latency of every operation, failed ones included.
    pub latencies: Latencies,
    /// Wall time from the first start to the last finish.
    pub elapsed: Duration,
}

impl Measured {
    /// Number of sequence numbers consumed: every one was attempted.
    pub fn attempted(&self) -> u64 {
        self.ops + self.errors
    }

    fn absorb(&mut self, worker: Measured) {
        self.ops += worker.ops;
        self.bytes += worker.bytes;
        self.errors += worker.errors;
        if self.first_error.is_none() {
            self.first_error = worker.first_error;
        }
        self.latencies.merge(worker.latencies);
    }
}

/// Runs `op(worker, sequence)` from `workers` concurrent tasks until `until`.
///
/// Sequence numbers are handed out once each and without gaps, so an operation can derive its
/// key from its sequence number and a later workload can find every key that was written.
/// `op` returns the payload bytes it moved.
pub async fn run_ops<F, Fut>(workers: usize, until: Until, op: F) -> Measured
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, RequestError>> + Send + 'static,
{
    let op = Arc::new(op);
    let next_sequence = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(workers);
    for worker in 0..workers {
        let op = Arc::clone(&op);
        let next_sequence = Arc::clone(&next_sequence);
        tasks.push(tokio::spawn(async move {
            let mut tally = Measured::default();
            loop {
                // The clock is checked before a sequence number is taken, so every number
                // handed out is attempted.
                let sequence = match until {
                    Until::Elapsed(duration) if started.elapsed() >= duration => break,
                    Until::Elapsed(_) => next_sequence.fetch_add(1, Ordering::Relaxed),
                    Until::Count(count) => {
                        let sequence = next_sequence.fetch_add(1, Ordering::Relaxed);
                        if sequence >= count {
                            break;
                        }
                        sequence
                    }
                };
                let op_started = Instant::now();
                let outcome = within(OPERATION_TIMEOUT, op(worker, sequence)).await;
                tally.latencies.record(op_started.elapsed());
                match outcome {
                    Ok(bytes) => {
                        tally.ops += 1;
                        tally.bytes += bytes;
                    }
                    Err(err) => {
                        tally.errors += 1;
                        tally.first_error.get_or_insert_with(|| err.to_string());
                        if tally.errors >= MAX_ERRORS_PER_WORKER {
                            break;
                        }
                    }
                }
            }
            tally
        }));
    }
    let mut total = Measured::default();
    for task in tasks {
        match task.await {
            Ok(tally) => total.absorb(tally),
            Err(err) => {
                total.errors += 1;
                total
                    .first_error
                    .get_or_insert_with(|| format!("worker failed: {err}"));
            }
        }
    }
    total.elapsed = started.elapsed();
    total
}

/// Runs `operation`, failing with [`RequestError::Timeout`] if it takes longer than `limit`.
pub async fn within<T>(
    limit: Duration,
    operation: impl Future<Output = Result<T, RequestError>>,
) -> Result<T, RequestError> {
    tokio::time::timeout(limit, operation)
        .await
        .unwrap_or(Err(RequestError::Timeout {
            seconds: limit.as_secs(),
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn count_runs_every_sequence_once() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorder = Arc::clone(&seen);
        let measured = run_ops(4, Until::Count(50), move |_, sequence| {
            let recorder = Arc::clone(&recorder);
            async move {
                recorder.lock().unwrap().push(sequence);
                Ok(10)
            }
        })
        .await;
        assert_eq!(measured.ops, 50);
        assert_eq!(measured.bytes, 500);
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn elapsed_stops_and_counts_errors() {
        let measured = run_ops(
            2,
            Until::Elapsed(Duration::from_millis(30)),
            |_, sequence| async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                if sequence == 3 {
                    Err(RequestError::Unexpected {
                        path: "/b/k".into(),
                        message: "boom".into(),
                    })
                } else {
                    Ok(1)
                }
            },
        )
        .await;
        assert!(measured.ops > 2);
        assert_eq!(measured.errors, 1);
        assert_eq!(measured.first_error.as_deref(), Some("/b/k: boom"));
        assert!(measured.elapsed >= Duration::from_millis(30));
    }
}
