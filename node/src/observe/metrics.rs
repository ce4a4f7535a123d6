//! The node's Prometheus metrics, in one explicit [`Registry`] per node (no process globals,
//! so tests and several nodes in one process stay apart).
//!
//! Request figures are updated as requests finish ([`Metrics::observe_request`]); storage and
//! disk gauges are refreshed when Prometheus scrapes ([`Metrics::refresh_gauges`]), since
//! nothing reads them in between.

mod cluster;

use std::io;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use admin::api::ClusterStatus;
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};
use s3api::observe::RequestRecord;

use self::cluster::ClusterMetrics;

use crate::store::StoreStats;

/// Latency buckets from 0.5 ms (a cached HEAD) to 60 s (a large object over a slow link).
const DURATION_BUCKETS_SECONDS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// Label value for requests that failed before an operation was named.
const UNKNOWN_OPERATION: &str = "unknown";

/// Free and total bytes of the file system holding a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    /// Bytes available to unprivileged writers.
    pub free_bytes: u64,
    /// Size of the file system.
    pub total_bytes: u64,
}

/// Asks the kernel (statvfs) how much room the file system holding `dir` has.
pub fn disk_space(dir: &Path) -> io::Result<DiskSpace> {
    let stat = rustix::fs::statvfs(dir)?;
    Ok(DiskSpace {
        free_bytes: stat.f_bavail.saturating_mul(stat.f_frsize),
        total_bytes: stat.f_blocks.saturating_mul(stat.f_frsize),
    })
}

/// Every metric family of a node.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    received_bytes: IntCounter,
    sent_bytes: IntCounter,
    errors: IntCounterVec,
    access_log_dropped: IntCounter,
    access_log_write_errors: IntCounter,
    objects: IntGauge,
    buckets: IntGauge,
    blocks: IntGauge,
    object_bytes: IntGauge,
    metadata_disk_bytes: IntGauge,
    disk_free_bytes: IntGaugeVec,
    disk_total_bytes: IntGaugeVec,
    /// The cluster families, once [`Metrics::enable_cluster`] registered them.
    cluster: OnceLock<ClusterMetrics>,
}

impl Metrics {
    /// Registers every family in a fresh registry; records the process start time and version.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let metric = IntCounter::new(name, help)?;
            registry.register(Box::new(metric.clone()))?;
            Ok(metric)
        };
        let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
            let metric = IntGauge::new(name, help)?;
            registry.register(Box::new(metric.clone()))?;
            Ok(metric)
        };
        let disk_gauge = |name: &str, help: &str| -> Result<IntGaugeVec, prometheus::Error> {
            let metric = IntGaugeVec::new(Opts::new(name, help), &["dir"])?;
            registry.register(Box::new(metric.clone()))?;
            Ok(metric)
        };

        let requests = IntCounterVec::new(
            Opts::new(
                "mucura_s3_requests_total",
                "S3 requests finished, by operation and HTTP status.",
            ),
            &["operation", "status"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "mucura_s3_request_duration_seconds",
                "Time from request arrival until its response body ended, by operation.",
            )
            .buckets(DURATION_BUCKETS_SECONDS.to_vec()),
            &["operation"],
        )?;
        registry.register(Box::new(request_duration.clone()))?;
        let errors = IntCounterVec::new(
            Opts::new(
                "mucura_s3_errors_total",
                "S3 error responses (and responses cut short by an error), by S3 error code.",
            ),
            &["code"],
        )?;
        registry.register(Box::new(errors.clone()))?;

        let start_time = Gauge::new(
            "mucura_process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds.",
        )?;
        registry.register(Box::new(start_time.clone()))?;
        start_time.set(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |since| since.as_secs_f64()),
        );
        let build_info = IntGaugeVec::new(
            Opts::new(
                "mucura_build_info",
                "Always 1; the label names the version of the running binary.",
            ),
            &["version"],
        )?;
        registry.register(Box::new(build_info.clone()))?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);

        Ok(Metrics {
            requests,
            request_duration,
            received_bytes: counter(
                "mucura_s3_received_bytes_total",
                "Request body bytes read from S3 clients.",
            )?,
            sent_bytes: counter(
                "mucura_s3_sent_bytes_total",
                "Response body bytes sent to S3 clients.",
            )?,
            errors,
            access_log_dropped: counter(
                "mucura_access_log_dropped_total",
                "Access log lines dropped because the writer could not keep up.",
            )?,
            access_log_write_errors: counter(
                "mucura_access_log_write_errors_total",
                "Failed writes or rotations of the access log (lines were lost).",
            )?,
            objects: gauge(
                "mucura_objects",
                "Live objects stored on this node (in a cluster: whose metadata this node \
                 holds as an owner).",
            )?,
            buckets: gauge("mucura_buckets", "Buckets known to this node.")?,
            blocks: gauge("mucura_blocks", "Block files on this node's disk.")?,
            object_bytes: gauge(
                "mucura_object_bytes",
                "Sum of the sizes of the live objects counted by mucura_objects.",
            )?,
            metadata_disk_bytes: gauge(
                "mucura_metadata_disk_bytes",
                "Bytes the metadata database occupies on disk.",
            )?,
            disk_free_bytes: disk_gauge(
                "mucura_disk_free_bytes",
                "Bytes available to the node on the file system of a data dir.",
            )?,
            disk_total_bytes: disk_gauge(
                "mucura_disk_total_bytes",
                "Size of the file system of a data dir.",
            )?,
            registry,
            cluster: OnceLock::new(),
        })
    }

    /// Registers the cluster families (cluster mode only); later calls do nothing.
    pub fn enable_cluster(&self) -> Result<(), prometheus::Error> {
        if self.cluster.get().is_none() {
            let families = ClusterMetrics::register(&self.registry)?;
            // Only the node's start-up calls this, so no second registration can race.
            let _ = self.cluster.set(families);
        }
        Ok(())
    }

    /// Sets the cluster families from `status`; does nothing unless they are enabled.
    pub fn refresh_cluster(&self, status: &ClusterStatus) {
        if let Some(cluster) = self.cluster.get() {
            cluster.refresh(status);
        }
    }

    /// Counts one finished S3 request.
    pub fn observe_request(&self, record: &RequestRecord) {
        let operation = record.operation.unwrap_or(UNKNOWN_OPERATION);
        let status = record.status.to_string();
        self.requests
            .with_label_values(&[operation, status.as_str()])
            .inc();
        self.request_duration
            .with_label_values(&[operation])
            .observe(record.duration.as_secs_f64());
        self.received_bytes.inc_by(record.bytes_in);
        self.sent_bytes.inc_by(record.bytes_out);
        if let Some(code) = record.error_code {
            self.errors.with_label_values(&[code]).inc();
        }
    }

    /// Counter of access log lines dropped under load (shared with the access log).
    pub fn access_log_dropped(&self) -> IntCounter {
        self.access_log_dropped.clone()
    }

    /// Counter of failed access log writes (shared with the access log).
    pub fn access_log_write_errors(&self) -> IntCounter {
        self.access_log_write_errors.clone()
    }

    /// Sets the storage gauges, and the disk gauges of `data_dir` when its space is known.
    pub fn refresh_gauges(&self, stats: &StoreStats, data_dir: &Path, disk: Option<DiskSpace>) {
        self.objects.set(saturating_i64(stats.objects));
        self.buckets.set(saturating_i64(stats.buckets));
        self.blocks.set(saturating_i64(stats.blocks));
        self.object_bytes.set(saturating_i64(stats.bytes));
        self.metadata_disk_bytes
            .set(saturating_i64(stats.meta_size_on_disk));
        if let Some(disk) = disk {
            let dir = data_dir.display().to_string();
            self.disk_free_bytes
                .with_label_values(&[dir.as_str()])
                .set(saturating_i64(disk.free_bytes));
            self.disk_total_bytes
                .with_label_values(&[dir.as_str()])
                .set(saturating_i64(disk.total_bytes));
        }
    }

    /// Every family in the text exposition format 0.0.4.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut text = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut text)?;
        String::from_utf8(text).map_err(|err| prometheus::Error::Msg(err.to_string()))
    }
}

impl crate::cluster::wire::RpcObserver for Metrics {
    /// Counts the request in the RPC families; does nothing unless they are enabled.
    fn observe_rpc(&self, protocol: &'static str, ok: bool, elapsed: std::time::Duration) {
        if let Some(cluster) = self.cluster.get() {
            cluster.observe_rpc(protocol, ok, elapsed);
        }
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn record(
        operation: Option<&'static str>,
        status: u16,
        code: Option<&'static str>,
    ) -> RequestRecord {
        let mut record = RequestRecord::arriving("R".into(), http::Method::GET, None);
        record.operation = operation;
        record.status = status;
        record.error_code = code;
        record.bytes_in = 100;
        record.bytes_out = 7;
        record.duration = Duration::from_millis(3);
        record
    }

    /// The value of the sample line that starts with `series ` (exact labels, as rendered).
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|value| value.parse().ok())
    }

    #[test]
    fn request_families_move_with_observed_records() {
        let metrics = Metrics::new().unwrap();
        metrics.observe_request(&record(Some("PutObject"), 200, None));
        metrics.observe_request(&record(Some("PutObject"), 200, None));
        metrics.observe_request(&record(Some("GetObject"), 404, Some("NoSuchKey")));
        metrics.observe_request(&record(None, 403, Some("AccessDenied")));
        let text = metrics.render().unwrap();
        let requests =
            |labels: &str| sample(&text, &format!("mucura_s3_requests_total{{{labels}}}"));
        assert_eq!(requests(r#"operation="PutObject",status="200""#), Some(2.0));
        assert_eq!(requests(r#"operation="GetObject",status="404""#), Some(1.0));
        assert_eq!(requests(r#"operation="unknown",status="403""#), Some(1.0));
        assert_eq!(
            sample(&text, r#"mucura_s3_errors_total{code="NoSuchKey"}"#),
            Some(1.0)
        );
        assert_eq!(sample(&text, "mucura_s3_received_bytes_total"), Some(400.0));
        assert_eq!(sample(&text, "mucura_s3_sent_bytes_total"), Some(28.0));
        assert_eq!(
            sample(
                &text,
                r#"mucura_s3_request_duration_seconds_count{operation="PutObject"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"mucura_s3_request_duration_seconds_bucket{operation="PutObject",le="0.005"}"#
            ),
            Some(2.0)
        );
        assert!(text.contains("# TYPE mucura_s3_request_duration_seconds histogram"));
        assert!(text.contains(&format!(
            "mucura_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(sample(&text, "mucura_process_start_time_seconds").is_some_and(|t| t > 1.0e9));
    }

    #[test]
    fn gauges_show_the_figures_of_the_last_refresh() {
        let metrics = Metrics::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let disk = disk_space(dir.path()).unwrap();
        assert!(disk.total_bytes >= disk.free_bytes && disk.total_bytes > 0);
        let stats = StoreStats {
            objects: 5,
            buckets: 2,
            blocks: 9,
            meta_size_on_disk: 4096,
            bytes: 12345,
        };
        metrics.refresh_gauges(&stats, dir.path(), Some(disk));
        let text = metrics.render().unwrap();
        assert_eq!(sample(&text, "mucura_objects"), Some(5.0));
        assert_eq!(sample(&text, "mucura_buckets"), Some(2.0));
        assert_eq!(sample(&text, "mucura_blocks"), Some(9.0));
        assert_eq!(sample(&text, "mucura_object_bytes"), Some(12345.0));
        assert_eq!(sample(&text, "mucura_metadata_disk_bytes"), Some(4096.0));
        let label = format!("{{dir=\"{}\"}}", dir.path().display());
        assert_eq!(
            sample(&text, &format!("mucura_disk_total_bytes{label}")),
            Some(disk.total_bytes as f64)
        );
        assert!(sample(&text, &format!("mucura_disk_free_bytes{label}")).is_some());
    }

    #[test]
    fn registries_of_two_nodes_are_independent() {
        let first = Metrics::new().unwrap();
        let second = Metrics::new().unwrap();
        first.observe_request(&record(Some("HeadObject"), 200, None));
        let text = second.render().unwrap();
        assert!(!text.contains("HeadObject"));
    }
}
