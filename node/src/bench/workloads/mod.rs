//! The workloads: what each one sends, how it is measured, and the target it is judged by.
//!
//! [`Bench`] holds what the workloads share: the client, the body source, the run's key prefix
//! and how many objects of each size class exist, so a GET workload reads what the PUT workload
//! before it wrote (or seeds its own objects when run alone).

mod large;
mod list;
mod objects;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::args::{Scale, Workload};
use super::client::S3Client;
use super::payload::Payload;
use super::report::{Target, WorkloadReport};

/// Object sizes with their own PUT and GET workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeClass {
    /// 4 KiB objects (stored inline in the metadata).
    Small,
    /// 1 MiB objects (one block).
    Medium,
    /// 64 MiB objects (many blocks).
    Large,
}

impl SizeClass {
    fn index(self) -> usize {
        match self {
            SizeClass::Small => 0,
            SizeClass::Medium => 1,
            SizeClass::Large => 2,
        }
    }

    fn key_segment(self) -> &'static str {
        match self {
            SizeClass::Small => "small",
            SizeClass::Medium => "medium",
            SizeClass::Large => "large",
        }
    }

    /// The concurrency for this size.
    fn concurrency(self) -> usize {
        match self {
            SizeClass::Small => 16,
            SizeClass::Medium => 8,
            SizeClass::Large => 2,
        }
    }

    /// Objects written before a GET workload that runs without its PUT workload: enough
    /// that reads do not all hit one object.
    fn seed_count(self) -> u64 {
        match self {
            SizeClass::Small => 1_000,
            SizeClass::Medium => 32,
            SizeClass::Large => 4,
        }
    }
}

/// State shared by every workload of a run.
pub struct Bench {
    /// The signed client.
    pub client: S3Client,
    /// Source of request bodies.
    pub payload: Payload,
    /// Sizes and durations.
    pub scale: Scale,
    /// Key prefix unique to this run.
    pub prefix: String,
    written: [AtomicU64; 3],
}

impl Bench {
    /// Shared state for a run whose keys all start with `bench/RUN_ID/`.
    pub fn new(client: S3Client, payload: Payload, scale: Scale) -> Arc<Bench> {
        let prefix = format!("bench/{}", payload.run_id());
        Arc::new(Bench {
            client,
            payload,
            scale,
            prefix,
            written: Default::default(),
        })
    }

    /// Key of object `index` of a size class.
    fn key(&self, class: SizeClass, index: u64) -> String {
        format!("{}/{}/{index:08}", self.prefix, class.key_segment())
    }

    /// Size of each object of a class.
    fn size(&self, class: SizeClass) -> u64 {
        match class {
            SizeClass::Small => self.scale.small_object,
            SizeClass::Medium => self.scale.medium_object,
            SizeClass::Large => self.scale.large_object,
        }
    }

    /// How many objects of a class exist (keys `0..written`).
    fn written(&self, class: SizeClass) -> u64 {
        self.written[class.index()].load(Ordering::Relaxed)
    }

    fn add_written(&self, class: SizeClass, count: u64) {
        self.written[class.index()].fetch_add(count, Ordering::Relaxed);
    }
}

/// Runs one workload and returns its report (node memory and target judgement not yet filled).
pub async fn run_workload(bench: &Arc<Bench>, workload: Workload) -> WorkloadReport {
    match workload {
        Workload::Put4k => {
            objects::put(bench, SizeClass::Small, Target::MinOpsPerSec(1_500.0)).await
        }
        Workload::Get4k => {
            objects::get(bench, SizeClass::Small, Target::MinOpsPerSec(5_000.0)).await
        }
        Workload::Head => objects::head(bench, Target::MinOpsPerSec(25_000.0)).await,
        Workload::List => list::run(bench, Target::MinOpsPerSec(500.0)).await,
        Workload::Put1m => {
            objects::put(bench, SizeClass::Medium, Target::MinMibPerSec(300.0)).await
        }
        Workload::Get1m => {
            objects::get(bench, SizeClass::Medium, Target::MinMibPerSec(1_000.0)).await
        }
        Workload::Put64m => {
            objects::put(bench, SizeClass::Large, Target::MinMibPerSec(350.0)).await
        }
        Workload::Get64m => {
            objects::get(bench, SizeClass::Large, Target::MinMibPerSec(1_000.0)).await
        }
        Workload::Multipart1g => large::multipart(bench, Target::MaxSeconds(3.5)).await,
        Workload::Big2g => large::big_object(bench, Target::MaxNodeRssMib(200.0)).await,
    }
}
