//! Cluster families, registered only in cluster mode and refreshed at scrape time from the
//! node's [`ClusterStatus`] (the same figures `GET /v1/cluster/status` reports).
//!
//! The status carries running totals; the `_total` families are counters that follow them
//! (a total that went down, as after a restart of its source, resets the counter, which
//! Prometheus' `rate` understands).

use std::time::Duration;

use admin::api::{ClusterStatus, PeerLiveness};
use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// The cluster's metric families.
pub(super) struct ClusterMetrics {
    layout_version: IntGauge,
    node_up: GaugeVec,
    hints_pending: IntGauge,
    block_handoffs_pending: IntGauge,
    hints_delivered: IntCounter,
    block_handoffs_delivered: IntCounter,
    quorum_failures: IntCounterVec,
    anti_entropy_rounds: IntCounter,
    anti_entropy_repaired: IntCounter,
    rebalance_ranges: IntGaugeVec,
    rebalance_moved: IntCounterVec,
    rpc_requests: IntCounterVec,
    rpc_duration: HistogramVec,
}

impl ClusterMetrics {
    /// Registers every cluster family in `registry`.
    pub(super) fn register(registry: &Registry) -> Result<ClusterMetrics, prometheus::Error> {
        fn registered<M: prometheus::core::Collector + Clone + 'static>(
            registry: &Registry,
            metric: M,
        ) -> Result<M, prometheus::Error> {
            registry.register(Box::new(metric.clone()))?;
            Ok(metric)
        }
        let rpc_duration = HistogramVec::new(
            HistogramOpts::new(
                "mucura_rpc_request_duration_seconds",
                "Time this node's RPC server took to answer a peer's request, by protocol.",
            )
            .buckets(super::DURATION_BUCKETS_SECONDS.to_vec()),
            &["protocol"],
        )?;
        let quorum_failures = IntCounterVec::new(
            Opts::new(
                "mucura_cluster_quorum_failures_total",
                "Operations this node coordinated that could not reach their quorum (an S3 request meeting one answers 503), by op (write, read) and kind (table: metadata, block: block data).",
            ),
            &["op", "kind"],
        )?;
        // Every series exists from the start at 0, so `increase()` and alerts see the first
        // failure instead of a series appearing.
        for (op, kind) in QUORUM_FAILURE_SERIES {
            quorum_failures.with_label_values(&[op, kind]);
        }
        Ok(ClusterMetrics {
            quorum_failures: registered(registry, quorum_failures)?,
            hints_delivered: registered(
                registry,
                IntCounter::new(
                    "mucura_cluster_hints_delivered_total",
                    "Hinted table writes this node delivered to their returning owner and deleted.",
                )?,
            )?,
            block_handoffs_delivered: registered(
                registry,
                IntCounter::new(
                    "mucura_cluster_block_handoffs_delivered_total",
                    "Blocks this node held for an unreachable owner and delivered to it once it returned.",
                )?,
            )?,
            rpc_requests: registered(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "mucura_rpc_requests_total",
                        "Peer requests this node's RPC server answered, by protocol and outcome (ok, failed).",
                    ),
                    &["protocol", "outcome"],
                )?,
            )?,
            rpc_duration: registered(registry, rpc_duration)?,
            layout_version: registered(
                registry,
                IntGauge::new(
                    "mucura_cluster_layout_version",
                    "Version of the cluster layout this node uses (0: none applied).",
                )?,
            )?,
            node_up: registered(
                registry,
                GaugeVec::new(
                    Opts::new(
                        "mucura_cluster_node_up",
                        "Liveness of each known node as this node sees it: 1 up, 0.5 suspect, 0 down.",
                    ),
                    &["node"],
                )?,
            )?,
            hints_pending: registered(
                registry,
                IntGauge::new(
                    "mucura_cluster_hints_pending",
                    "Table writes this node holds for unreachable owners (hinted handoff).",
                )?,
            )?,
            block_handoffs_pending: registered(
                registry,
                IntGauge::new(
                    "mucura_cluster_block_handoffs_pending",
                    "Blocks this node holds for unreachable owners.",
                )?,
            )?,
            anti_entropy_rounds: registered(
                registry,
                IntCounter::new(
                    "mucura_cluster_anti_entropy_rounds_total",
                    "Anti-entropy rounds this node ran.",
                )?,
            )?,
            anti_entropy_repaired: registered(
                registry,
                IntCounter::new(
                    "mucura_cluster_anti_entropy_repaired_total",
                    "Table entries anti-entropy repaired between replicas.",
                )?,
            )?,
            rebalance_ranges: registered(
                registry,
                IntGaugeVec::new(
                    Opts::new(
                        "mucura_cluster_rebalance_ranges",
                        "Ranges this node must hand over in the latest rebalance: all of them, and those synced.",
                    ),
                    &["state"],
                )?,
            )?,
            rebalance_moved: registered(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "mucura_cluster_rebalance_moved_total",
                        "Table entries and blocks this node pushed to new owners in rebalances.",
                    ),
                    &["kind"],
                )?,
            )?,
        })
    }

    /// Sets every family from `status`.
    pub(super) fn refresh(&self, status: &ClusterStatus) {
        self.layout_version
            .set(super::saturating_i64(status.layout_version));
        // Forget nodes no longer known, so a removed node's series ends.
        self.node_up.reset();
        for node in &status.nodes {
            self.node_up
                .with_label_values(&[node.id.as_str()])
                .set(liveness_value(&node.status));
        }
        self.hints_pending
            .set(super::saturating_i64(status.pending_hints));
        self.block_handoffs_pending
            .set(super::saturating_i64(status.pending_block_handoffs));
        follow(&self.hints_delivered, status.hints_delivered_total);
        follow(
            &self.block_handoffs_delivered,
            status.block_handoffs_delivered_total,
        );
        let failures = &status.quorum_failures;
        let totals = [
            failures.table_writes,
            failures.table_reads,
            failures.block_writes,
            failures.block_reads,
        ];
        for ((op, kind), total) in QUORUM_FAILURE_SERIES.into_iter().zip(totals) {
            follow(&self.quorum_failures.with_label_values(&[op, kind]), total);
        }
        follow(&self.anti_entropy_rounds, status.anti_entropy.rounds);
        follow(
            &self.anti_entropy_repaired,
            status.anti_entropy.entries_repaired_total,
        );
        let rebalance = status.rebalance.clone().unwrap_or_default();
        self.rebalance_ranges
            .with_label_values(&["total"])
            .set(super::saturating_i64(rebalance.ranges_total));
        self.rebalance_ranges
            .with_label_values(&["synced"])
            .set(super::saturating_i64(rebalance.ranges_synced));
        follow(
            &self.rebalance_moved.with_label_values(&["entries"]),
            rebalance.entries_moved,
        );
        follow(
            &self.rebalance_moved.with_label_values(&["blocks"]),
            rebalance.blocks_moved,
        );
    }
}

impl ClusterMetrics {
    /// Counts one answered peer request.
    pub(super) fn observe_rpc(&self, protocol: &str, ok: bool, elapsed: Duration) {
        let outcome = if ok { "ok" } else { "failed" };
        self.rpc_requests
            .with_label_values(&[protocol, outcome])
            .inc();
        self.rpc_duration
            .with_label_values(&[protocol])
            .observe(elapsed.as_secs_f64());
    }
}

/// The `(op, kind)` label pairs of `mucura_cluster_quorum_failures_total`, in the order of
/// the totals `refresh` reads them from.
const QUORUM_FAILURE_SERIES: [(&str, &str); 4] = [
    ("write", "table"),
    ("read", "table"),
    ("write", "block"),
    ("read", "block"),
];

fn liveness_value(status: &PeerLiveness) -> f64 {
    match status {
        PeerLiveness::Up => 1.0,
        PeerLiveness::Suspect => 0.5,
        PeerLiveness::Down => 0.0,
    }
}

/// Moves `counter` to `total`, resetting it first if the total went down.
fn follow(counter: &IntCounter, total: u64) {
    let current = counter.get();
    if total < current {
        counter.reset();
        counter.inc_by(total);
    } else {
        counter.inc_by(total - current);
    }
}

#[cfg(test)]
mod tests {
    use admin::api::{
        AntiEntropySummary, ClusterNodeStatus, ClusterStatus, PeerLiveness, QuorumFailureTotals,
        RebalanceSummary,
    };

    use crate::observe::metrics::Metrics;

    fn node(id: &str, status: PeerLiveness) -> ClusterNodeStatus {
        ClusterNodeStatus {
            id: id.to_owned(),
            zone: "z".into(),
            capacity: 1,
            rpc_addr: "127.0.0.1:1".into(),
            status,
            in_layout: true,
            is_self: id == "a",
        }
    }

    fn status(rounds: u64, entries_moved: u64) -> ClusterStatus {
        ClusterStatus {
            node_id: "a".into(),
            layout_version: 7,
            replication: 3,
            nodes: vec![
                node("a", PeerLiveness::Up),
                node("b", PeerLiveness::Suspect),
                node("c", PeerLiveness::Down),
            ],
            pending_hints: 4,
            pending_block_handoffs: 2,
            anti_entropy: AntiEntropySummary {
                rounds,
                entries_repaired_total: 11,
                last_round: None,
            },
            last_scrub: None,
            rebalance: Some(RebalanceSummary {
                layout_version: 7,
                ranges_total: 9,
                ranges_synced: 5,
                entries_moved,
                blocks_moved: 3,
                dropped: 0,
            }),
            last_block_gc: None,
            last_block_resync: None,
            last_tombstone_purge: None,
            quorum_failures: QuorumFailureTotals {
                table_writes: rounds,
                table_reads: 2,
                block_writes: 1,
                block_reads: 0,
            },
            hints_delivered_total: entries_moved / 10,
            block_handoffs_delivered_total: 6,
        }
    }

    /// The value of the sample line that starts with `series ` (exact labels, as rendered).
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|value| value.parse().ok())
    }

    #[test]
    fn cluster_families_show_the_latest_status() {
        let metrics = Metrics::new().unwrap();
        metrics.enable_cluster().unwrap();
        metrics.enable_cluster().unwrap();
        metrics.refresh_cluster(&status(3, 100));
        metrics.refresh_cluster(&status(5, 120));
        let text = metrics.render().unwrap();
        assert_eq!(sample(&text, "mucura_cluster_layout_version"), Some(7.0));
        assert_eq!(
            sample(&text, r#"mucura_cluster_node_up{node="a"}"#),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, r#"mucura_cluster_node_up{node="b"}"#),
            Some(0.5)
        );
        assert_eq!(
            sample(&text, r#"mucura_cluster_node_up{node="c"}"#),
            Some(0.0)
        );
        assert_eq!(sample(&text, "mucura_cluster_hints_pending"), Some(4.0));
        assert_eq!(
            sample(&text, "mucura_cluster_block_handoffs_pending"),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, "mucura_cluster_anti_entropy_rounds_total"),
            Some(5.0)
        );
        assert!(text.contains("# TYPE mucura_cluster_anti_entropy_rounds_total counter"));
        assert_eq!(
            sample(&text, "mucura_cluster_anti_entropy_repaired_total"),
            Some(11.0)
        );
        assert_eq!(
            sample(&text, r#"mucura_cluster_rebalance_ranges{state="total"}"#),
            Some(9.0)
        );
        assert_eq!(
            sample(&text, r#"mucura_cluster_rebalance_ranges{state="synced"}"#),
            Some(5.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"mucura_cluster_rebalance_moved_total{kind="entries"}"#
            ),
            Some(120.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"mucura_cluster_rebalance_moved_total{kind="blocks"}"#
            ),
            Some(3.0)
        );

        assert!(text.contains("# TYPE mucura_cluster_quorum_failures_total counter"));
        let failures = |op: &str, kind: &str| {
            let series =
                format!(r#"mucura_cluster_quorum_failures_total{{kind="{kind}",op="{op}"}}"#);
            sample(&text, &series)
        };
        assert_eq!(failures("write", "table"), Some(5.0));
        assert_eq!(failures("read", "table"), Some(2.0));
        assert_eq!(failures("write", "block"), Some(1.0));
        // A kind that never failed is still there, at zero.
        assert_eq!(failures("read", "block"), Some(0.0));
        assert!(text.contains("# TYPE mucura_cluster_hints_delivered_total counter"));
        assert_eq!(
            sample(&text, "mucura_cluster_hints_delivered_total"),
            Some(12.0)
        );
        assert_eq!(
            sample(&text, "mucura_cluster_block_handoffs_delivered_total"),
            Some(6.0)
        );

        // A total that went down (its source restarted) resets the counter to it.
        metrics.refresh_cluster(&status(1, 120));
        let text = metrics.render().unwrap();
        assert_eq!(
            sample(&text, "mucura_cluster_anti_entropy_rounds_total"),
            Some(1.0)
        );
    }

    #[test]
    fn answered_peer_requests_are_counted_by_protocol_and_outcome() {
        use crate::cluster::wire::RpcObserver;
        use std::time::Duration;

        let metrics = Metrics::new().unwrap();
        metrics.enable_cluster().unwrap();
        metrics.observe_rpc("table", true, Duration::from_millis(2));
        metrics.observe_rpc("table", true, Duration::from_millis(3));
        metrics.observe_rpc("blocks", false, Duration::from_millis(1));
        let text = metrics.render().unwrap();
        assert_eq!(
            sample(
                &text,
                r#"mucura_rpc_requests_total{outcome="ok",protocol="table"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"mucura_rpc_requests_total{outcome="failed",protocol="blocks"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"mucura_rpc_request_duration_seconds_count{protocol="table"}"#
            ),
            Some(2.0)
        );
    }

    #[test]
    fn single_node_metrics_have_no_cluster_families() {
        let metrics = Metrics::new().unwrap();
        metrics.refresh_cluster(&status(1, 1));
        assert!(!metrics.render().unwrap().contains("mucura_cluster_"));
    }
}
