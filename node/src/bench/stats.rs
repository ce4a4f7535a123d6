//! Latency samples and their percentiles.
//!
//! Every operation's latency is kept: even 16 workers at tens of thousands of operations a
//! second for ten seconds make a few megabytes, and exact percentiles beat a histogram's
//! rounding at this scale.

use std::time::Duration;

use serde::Serialize;

/// Latencies of one workload's operations.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    samples: Vec<Duration>,
}

/// The percentiles a report shows, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct LatencySummary {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest operation.
    pub max: f64,
}

impl Latencies {
    /// Adds one operation's latency.
    pub fn record(&mut self, latency: Duration) {
        self.samples.push(latency);
    }

    /// Adds every sample of another worker.
    pub fn merge(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
    }

    /// The summary (zeros when nothing was recorded).
    pub fn summary(mut self) -> LatencySummary {
        self.samples.sort_unstable();
        LatencySummary {
            p50: millis(percentile(&self.samples, 0.50)),
            p99: millis(percentile(&self.samples, 0.99)),
            max: millis(self.samples.last().copied().unwrap_or_default()),
        }
    }
}

/// The nearest-rank percentile `q` (0..=1) of sorted samples.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn millis(duration: Duration) -> f64 {
    round3(duration.as_secs_f64() * 1000.0)
}

/// Rounds to three decimals, enough for a report and easier to read.
pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut latencies = Latencies::default();
        for ms in (1..=100).rev() {
            latencies.record(Duration::from_millis(ms));
        }
        let summary = latencies.summary();
        assert_eq!(summary.p50, 50.0);
        assert_eq!(summary.p99, 99.0);
        assert_eq!(summary.max, 100.0);
    }

    #[test]
    fn empty_summary_is_zero() {
        let summary = Latencies::default().summary();
        assert_eq!(
            summary,
            LatencySummary {
                p50: 0.0,
                p99: 0.0,
                max: 0.0
            }
        );
    }
}
