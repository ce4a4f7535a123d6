//! What one workload reports, and the target beside it.

use serde::Serialize;
use serde_json::{Map, Value};

use super::rss::RssSpan;
use super::runner::Measured;
use super::stats::{round3, LatencySummary};

/// Bytes in a MiB, for throughput figures.
pub const MIB: f64 = 1024.0 * 1024.0;

/// The figure a workload should reach (from the issue).
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// At least this many operations a second.
    MinOpsPerSec(f64),
    /// At least this many MiB a second.
    MinMibPerSec(f64),
    /// Done within this many seconds.
    MaxSeconds(f64),
    /// The node's peak resident memory stays at or below this many MiB.
    MaxNodeRssMib(f64),
}

impl Target {
    fn describe(self) -> String {
        match self {
            Target::MinOpsPerSec(min) => format!(">= {min} ops/s"),
            Target::MinMibPerSec(min) => format!(">= {min} MiB/s"),
            Target::MaxSeconds(max) => format!("<= {max} s"),
            Target::MaxNodeRssMib(max) => format!("node peak RSS <= {max} MiB"),
        }
    }

    /// Whether the report reaches the target (`None` when it cannot tell).
    fn met_by(self, report: &WorkloadReport) -> Option<bool> {
        match self {
            Target::MinOpsPerSec(min) => Some(report.ops_per_sec >= min),
            Target::MinMibPerSec(min) => report.mib_per_sec.map(|mib| mib >= min),
            Target::MaxSeconds(max) => Some(report.seconds <= max),
            Target::MaxNodeRssMib(max) => report.node_peak_rss_mib.map(|mib| mib <= max),
        }
    }
}

/// One workload's line in the JSON report.
#[derive(Debug, Serialize)]
pub struct WorkloadReport {
    /// Workload name (`put-4k`, ...).
    pub workload: &'static str,
    /// Concurrent clients.
    pub concurrency: usize,
    /// Size of each object, for data workloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_bytes: Option<u64>,
    /// Successful operations.
    pub ops: u64,
    /// Wall time of the measured phase.
    pub seconds: f64,
    /// Successful operations per second.
    pub ops_per_sec: f64,
    /// Payload throughput, for data workloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mib_per_sec: Option<f64>,
    /// Operation latency percentiles.
    pub latency_ms: LatencySummary,
    /// Failed operations (a valid run has none).
    pub errors: u64,
    /// The node's VmRSS when the workload began, when `--node-pid` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_start_rss_mib: Option<f64>,
    /// The node's peak VmRSS during the workload, when `--node-pid` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_peak_rss_mib: Option<f64>,
    /// The target for this workload.
    pub target: String,
    /// Whether the target was reached (absent for `--quick` runs, whose sizes differ).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meets_target: Option<bool>,
    /// Workload-specific figures (setup time, second phase, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// The first failure, if any; printed to stderr as well.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    #[serde(skip)]
    target_kind: Option<Target>,
}

impl WorkloadReport {
    /// A report from a measured phase; `object_bytes` marks a data workload (MiB/s shown).
    pub fn new(
        workload: &'static str,
        concurrency: usize,
        object_bytes: Option<u64>,
        measured: Measured,
        target: Target,
    ) -> WorkloadReport {
        let seconds = measured.elapsed.as_secs_f64();
        let per_second = |amount: f64| {
            if seconds > 0.0 {
                round3(amount / seconds)
            } else {
                0.0
            }
        };
        WorkloadReport {
            workload,
            concurrency,
            object_bytes,
            ops: measured.ops,
            seconds: round3(seconds),
            ops_per_sec: per_second(measured.ops as f64),
            mib_per_sec: object_bytes.map(|_| per_second(measured.bytes as f64 / MIB)),
            latency_ms: measured.latencies.summary(),
            errors: measured.errors,
            node_start_rss_mib: None,
            node_peak_rss_mib: None,
            target: target.describe(),
            meets_target: None,
            extra: Map::new(),
            first_error: measured.first_error,
            target_kind: Some(target),
        }
    }

    /// Adds a workload-specific figure.
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> WorkloadReport {
        self.extra.insert(name.to_string(), value.into());
        self
    }

    /// Records the node's memory and judges the target (unless the run was scaled down).
    pub fn finish(&mut self, node_rss: Option<RssSpan>, full_scale: bool) {
        self.node_start_rss_mib = node_rss.and_then(|span| span.start_mib).map(round3);
        self.node_peak_rss_mib = node_rss.map(|span| round3(span.peak_mib));
        if full_scale {
            self.meets_target = self.target_kind.and_then(|target| target.met_by(self));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rss(peak_mib: f64) -> RssSpan {
        RssSpan {
            start_mib: Some(10.0),
            peak_mib,
        }
    }

    #[test]
    fn throughput_and_target() {
        let measured = Measured {
            ops: 20,
            bytes: 20 * 1024 * 1024,
            elapsed: Duration::from_secs(2),
            ..Measured::default()
        };
        let mut report = WorkloadReport::new(
            "put-1m",
            8,
            Some(1024 * 1024),
            measured,
            Target::MinMibPerSec(300.0),
        );
        report.finish(Some(rss(50.0)), true);
        assert_eq!(report.ops_per_sec, 10.0);
        assert_eq!(report.mib_per_sec, Some(10.0));
        assert_eq!(report.meets_target, Some(false));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["target"], ">= 300 MiB/s");
        assert_eq!(json["node_peak_rss_mib"], 50.0);
    }

    #[test]
    fn rss_target_needs_a_sample() {
        let mut report = WorkloadReport::new(
            "big-2g",
            1,
            None,
            Measured::default(),
            Target::MaxNodeRssMib(200.0),
        );
        report.finish(None, true);
        assert_eq!(report.meets_target, None);
        report.finish(Some(rss(150.0)), true);
        assert_eq!(report.meets_target, Some(true));
    }
}
