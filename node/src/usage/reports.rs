//! How a cluster agrees on usage: every node publishes its per-(bucket, replica group)
//! figures into a full-copy table ([`ReportsSchema`], one entry per bucket and node), and
//! any node computes the cluster-wide usage from its local copy of that table
//! ([`ClusterUsageView`]): for each group, the median of its members' figures (a member
//! that published nothing for the bucket counts 0), summed over the groups.
//!
//! Why the median: after a write acknowledged by W of N owners, a majority of the group
//! holds it, so the median moves with acknowledged writes and ignores one lagging or one
//! leading replica (a write still in flight, or a node that missed writes while down).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::counters::Usage;
use super::local::{group_id, LocalObjectCounters};
use super::quota::{BucketUsage, UsageView};
use super::traffic::{Traffic, TrafficCounters};
use super::UsageError;
use crate::cluster::{Crdt, Lww, Replication, Stamp, StampClock, Table, TableSchema, TableSystem};
use crate::clustered::backend::schemas::{bucket_scoped_key, BucketEntry, BucketsSchema};
use crate::store::codec::Record;

/// How often a node publishes the buckets whose figures changed: the main part of how far
/// the cluster-wide figures lag behind writes.
pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(2);

/// How often the worker looks for a new layout: figures counted under an old ring miss
/// keys this node has just gained, so the recount should follow a layout change quickly.
/// Reading the ring is an `Arc` clone: polling costs nothing.
const RING_POLL: Duration = Duration::from_millis(200);

/// Reports written at once: each is a full-copy write to every node, so a burst of
/// changed buckets (after a recount) goes out in parallel without flooding the peers.
const PUBLISH_CONCURRENCY: usize = 16;

/// Entries read per local scan step.
const SCAN_PAGE: usize = 1000;

/// One group's figures as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupUsage {
    /// The group's members (sorted node ids): the key's owners.
    pub members: Vec<String>,
    /// Objects and bytes of the bucket this node holds in that group.
    pub usage: Usage,
}

/// What one node counts of one bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketReport {
    /// The layout version the figures were counted under.
    pub ring_version: u64,
    /// Per group; empty when the node holds nothing of the bucket.
    pub groups: Vec<GroupUsage>,
    /// The requests this node answered for the bucket, ever.
    pub traffic: Traffic,
}

/// One node's report on one bucket, a last-writer-wins register written only by that node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportEntry {
    /// The bucket reported on.
    pub bucket: String,
    /// The reporting node's id.
    pub node: String,
    /// The newest report.
    pub report: Lww<BucketReport>,
}

impl Crdt for ReportEntry {
    fn merge(&mut self, other: &Self) {
        self.report.merge(&other.report);
    }
}

impl Record for ReportEntry {
    const FORMAT_VERSION: u8 = 1;
    const NAME: &'static str = "usage report";
}

/// Usage reports: a full copy on every node, so computing usage needs no round trip.
pub struct ReportsSchema;

impl TableSchema for ReportsSchema {
    const TABLE_NAME: &'static str = "usage.reports";
    type Entry = ReportEntry;
    type Key = (String, String);

    fn key_of(entry: &ReportEntry) -> (String, String) {
        (entry.bucket.clone(), entry.node.clone())
    }

    fn encode_key((bucket, node): &(String, String)) -> Vec<u8> {
        bucket_scoped_key(bucket, node)
    }
}

/// Publishes this node's figures and reads everyone's.
pub struct ClusterUsage {
    system: Arc<TableSystem>,
    reports: Table<ReportsSchema>,
    buckets: Table<BucketsSchema>,
    counters: Arc<LocalObjectCounters>,
    traffic: Arc<TrafficCounters>,
    /// Stamps this node's reports (node number: the ring hash of its id).
    clock: StampClock,
}

impl ClusterUsage {
    /// Over `system` (registers the reports table) with this node's `counters` and
    /// request counts (`traffic`).
    pub fn new(
        system: Arc<TableSystem>,
        counters: Arc<LocalObjectCounters>,
        traffic: Arc<TrafficCounters>,
    ) -> Result<ClusterUsage, UsageError> {
        let node_number = ring::hash_key(system.liveness().local_id().as_str().as_bytes());
        Ok(ClusterUsage {
            reports: Table::new(Arc::clone(&system), Replication::FullCopy)?,
            buckets: Table::new(Arc::clone(&system), Replication::FullCopy)?,
            system,
            counters,
            traffic,
            clock: StampClock::new(node_number),
        })
    }

    /// This node's counters.
    pub fn counters(&self) -> &Arc<LocalObjectCounters> {
        &self.counters
    }

    /// Recounts from the local objects table if the layout changed since the last count
    /// (or nothing was counted yet).
    async fn recount_if_stale(self: &Arc<Self>) -> Result<(), UsageError> {
        let ring = self.system.liveness().ring();
        let (version, ready) = self.counters.ring_version();
        if !ready || version != ring.version() {
            let this = Arc::clone(self);
            let started = std::time::Instant::now();
            tokio::task::spawn_blocking(move || this.counters.rebuild(this.system.local(), ring))
                .await
                .map_err(|err| UsageError::Internal(err.to_string()))??;
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "usage counters recounted from the local objects table"
            );
        }
        Ok(())
    }

    /// Publishes the figures of the buckets that changed since the last publication.
    async fn publish(&self) -> Result<usize, UsageError> {
        use futures_util::StreamExt;

        let mut dirty = self.counters.take_dirty();
        dirty.extend(self.traffic.take_dirty());
        let outcomes: Vec<(String, bool)> = futures_util::stream::iter(dirty)
            .map(|bucket| async move {
                let outcome = self.publish_bucket(&bucket).await;
                if let Err(err) = &outcome {
                    tracing::debug!(bucket = %bucket, "publishing usage: {err}");
                }
                (bucket, outcome.is_ok())
            })
            .buffer_unordered(PUBLISH_CONCURRENCY)
            .collect()
            .await;
        let written = outcomes.iter().filter(|(_, ok)| *ok).count();
        let failed: Vec<String> = outcomes
            .into_iter()
            .filter_map(|(bucket, ok)| (!ok).then_some(bucket))
            .collect();
        if !failed.is_empty() {
            let count = failed.len();
            self.counters.mark_dirty(failed);
            return Err(UsageError::Internal(format!(
                "{count} usage reports could not be published (retried next round)"
            )));
        }
        Ok(written)
    }

    /// Writes this node's report on `bucket` to every node.
    async fn publish_bucket(&self, bucket: &str) -> Result<(), UsageError> {
        let node = self.system.liveness().local_id().as_str().to_owned();
        let key = (bucket.to_owned(), node);
        // After a restart, the new report must win over the one published before it even
        // if the wall clock went back.
        if let Ok(Some(previous)) = self.reports.local_get(&key) {
            self.clock.observe(previous.report.stamp.hlc);
        }
        let groups = self
            .counters
            .bucket(bucket)
            .into_iter()
            .map(|(members, usage)| GroupUsage { members, usage })
            .collect();
        let entry = ReportEntry {
            bucket: key.0,
            node: key.1,
            report: Lww::new(
                self.next_stamp(),
                BucketReport {
                    ring_version: self.counters.ring_version().0,
                    groups,
                    traffic: self.traffic.bucket(bucket),
                },
            ),
        };
        Ok(self.reports.insert(&entry).await?)
    }

    /// Until `stop` turns true: recounts within [`RING_POLL`] of a layout change and
    /// publishes changed figures every [`PUBLISH_INTERVAL`].
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut last_publish: Option<std::time::Instant> = None;
        loop {
            if let Err(err) = self.recount_if_stale().await {
                tracing::warn!("usage accounting: {err}");
            }
            if last_publish.is_none_or(|at| at.elapsed() >= PUBLISH_INTERVAL) {
                last_publish = Some(std::time::Instant::now());
                if let Err(err) = self.publish().await {
                    tracing::warn!("usage accounting: {err}");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(RING_POLL) => {}
                _ = stop.changed() => return,
            }
        }
    }

    fn next_stamp(&self) -> Stamp {
        self.clock.next()
    }

    /// How many live buckets this node's copy of the bucket table holds.
    pub fn bucket_count(&self) -> Result<u64, UsageError> {
        Ok(self.owners()?.len() as u64)
    }

    /// Every live bucket of this node's copy, with its owner.
    fn owners(&self) -> Result<BTreeMap<String, String>, UsageError> {
        let mut owners = BTreeMap::new();
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            let page = self.buckets.local_scan(cursor.as_deref(), SCAN_PAGE)?;
            let done = page.len() < SCAN_PAGE;
            for (key, entry) in page {
                let BucketEntry { name, record, .. } = entry;
                if let Some(creation) = record.value {
                    owners.insert(name, creation.owner);
                }
                cursor = Some(key);
            }
            if done {
                return Ok(owners);
            }
        }
    }

    /// Every report of this node's copy, by bucket.
    fn reports(&self) -> Result<HashMap<String, Vec<ReportEntry>>, UsageError> {
        let mut by_bucket: HashMap<String, Vec<ReportEntry>> = HashMap::new();
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            let page = self.reports.local_scan(cursor.as_deref(), SCAN_PAGE)?;
            let done = page.len() < SCAN_PAGE;
            for (key, entry) in page {
                by_bucket
                    .entry(entry.bucket.clone())
                    .or_default()
                    .push(entry);
                cursor = Some(key);
            }
            if done {
                return Ok(by_bucket);
            }
        }
    }
}

impl UsageView for ClusterUsage {
    fn buckets(&self) -> Result<Vec<BucketUsage>, UsageError> {
        let owners = self.owners()?;
        let mut reports = self.reports()?;
        let members: HashSet<String> = self
            .system
            .liveness()
            .ring()
            .nodes()
            .iter()
            .map(|id| id.as_str().to_owned())
            .collect();
        Ok(owners
            .into_iter()
            .map(|(bucket, owner)| {
                let entries = reports.remove(&bucket).unwrap_or_default();
                BucketUsage {
                    usage: aggregate(&entries, &members),
                    traffic: total_traffic(&entries),
                    bucket,
                    owner,
                }
            })
            .collect())
    }

    fn lag(&self) -> Duration {
        // A report reflects writes up to one interval old, and the median needs a second
        // member's report; the margin covers the full-copy write of the reports.
        PUBLISH_INTERVAL * 2 + Duration::from_secs(1)
    }
}

/// The cluster-wide usage of one bucket from every node's report on it: per group, the
/// (upper) median of its members' figures, a member without a figure counting 0; reports
/// of nodes outside the current layout are ignored.
pub fn aggregate(entries: &[ReportEntry], layout: &HashSet<String>) -> Usage {
    // group → (members, member → figures)
    let mut groups: HashMap<u64, (Vec<String>, HashMap<&str, Usage>)> = HashMap::new();
    for entry in entries {
        if !layout.contains(&entry.node) {
            continue;
        }
        let Some(report) = &entry.report.value else {
            continue;
        };
        for group in &report.groups {
            let (_, figures) = groups
                .entry(group_id(&group.members))
                .or_insert_with(|| (group.members.clone(), HashMap::new()));
            figures.insert(entry.node.as_str(), group.usage);
        }
    }
    let mut total = Usage::default();
    for (members, figures) in groups.values() {
        let mut objects: Vec<i64> = Vec::with_capacity(members.len());
        let mut bytes: Vec<i64> = Vec::with_capacity(members.len());
        for member in members.iter().filter(|member| layout.contains(*member)) {
            let usage = figures.get(member.as_str()).copied().unwrap_or_default();
            objects.push(usage.objects);
            bytes.push(usage.bytes);
        }
        total.add(Usage {
            objects: upper_median(&mut objects),
            bytes: upper_median(&mut bytes),
        });
    }
    total
}

/// The requests every node answered for one bucket (each counts its own, so they add up;
/// nodes that left the layout still count, their requests happened).
pub fn total_traffic(entries: &[ReportEntry]) -> Traffic {
    let mut total = Traffic::default();
    for report in entries
        .iter()
        .filter_map(|entry| entry.report.value.as_ref())
    {
        total.add(&report.traffic);
    }
    total
}

fn upper_median(values: &mut [i64]) -> i64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}
