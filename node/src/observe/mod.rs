//! What a node tells its operators about the requests it serves.
//!
//! - [`metrics`]: Prometheus counters and histograms of S3 requests, gauges of storage and
//!   disk, rendered for `GET /metrics` on the admin port.
//! - [`access_log`]: one JSON line per request in `DATA_DIR/logs/access.log`, rotated by size
//!   ([`log_file`] does the rotation).
//!
//! s3api's service hands every finished request to a [`NodeObserver`] (its
//! [`RequestObserver`]), which feeds both.

pub mod access_log;
mod log_file;
pub mod metrics;

use std::sync::Arc;

use s3api::observe::{RequestObserver, RequestRecord};

use access_log::AccessLog;
use metrics::Metrics;

/// Feeds every finished S3 request to the metrics and the access log.
pub struct NodeObserver {
    metrics: Arc<Metrics>,
    access_log: AccessLog,
}

impl NodeObserver {
    /// An observer reporting to `metrics` and `access_log`.
    pub fn new(metrics: Arc<Metrics>, access_log: AccessLog) -> NodeObserver {
        NodeObserver {
            metrics,
            access_log,
        }
    }
}

impl RequestObserver for NodeObserver {
    fn observe(&self, record: &RequestRecord) {
        self.metrics.observe_request(record);
        self.access_log.record(record);
    }
}

#[cfg(test)]
mod tests;
