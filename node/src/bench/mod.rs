//! `mucura bench`: drives an S3 endpoint with concurrent keep-alive clients and prints one JSON
//! report on stdout (progress and errors go to stderr).
//!
//! [`args`] holds the flags and the [`args::Scale`] they imply; [`client`] signs and sends
//! requests; [`payload`] makes distinct bodies from one random buffer; [`runner`] runs an
//! operation from N workers and tallies it ([`stats`] for latency); [`workloads`] defines each
//! workload and its target; [`report`] shapes the output; [`rss`] samples the node's memory and
//! [`disk`] sizes its metadata.

mod args;
mod client;
mod disk;
mod payload;
mod report;
mod rss;
mod runner;
mod stats;
mod workloads;

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

pub use args::BenchArgs;
use args::{Scale, Workload};
use client::S3Client;
use payload::Payload;
use report::WorkloadReport;
use rss::RssSampler;
use s3api::auth::SecretKey;
use workloads::Bench;

/// The JSON document printed on stdout.
#[derive(Serialize)]
struct RunReport<'a> {
    endpoint: &'a str,
    bucket: &'a str,
    /// Every key this run wrote starts with it.
    key_prefix: &'a str,
    quick: bool,
    seconds_per_workload: f64,
    node_pid: Option<u32>,
    /// Highest node VmRSS seen in any workload.
    node_peak_rss_mib: Option<f64>,
    /// Growth of `DATA_DIR/meta` per object during put-4k, minus the inline payload.
    metadata_bytes_per_small_object: Option<f64>,
    workloads: &'a [WorkloadReport],
}

/// Runs the workloads the flags ask for and prints the report; fails if any operation failed.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let scale = Scale::from_args(&args);
    let client = S3Client::new(
        &args.endpoint,
        &args.bucket,
        &args.access_key,
        SecretKey::new(args.secret_key.clone()),
        &args.region,
    );
    client
        .ensure_bucket()
        .await
        .with_context(|| format!("creating bucket {} at {}", args.bucket, args.endpoint))?;
    let bench = Bench::new(client, Payload::new()?, scale.clone());
    let mut selected = args.workloads.clone();
    selected.sort_unstable();
    selected.dedup();

    let mut reports = Vec::with_capacity(selected.len());
    let mut metadata_bytes_per_small_object = None;
    for workload in selected {
        eprintln!("mucura bench: running {}", workload.name());
        let meta_dir = match (&args.data_dir, workload) {
            (Some(data_dir), Workload::Put4k) => Some(data_dir.join("meta")),
            _ => None,
        };
        let meta_before = match &meta_dir {
            Some(dir) => Some(meta_size(dir).await?),
            None => None,
        };
        let sampler = args.node_pid.map(RssSampler::start);
        let mut report = workloads::run_workload(&bench, workload).await;
        let node_rss = match sampler {
            Some(sampler) => sampler.finish().await,
            None => None,
        };
        report.finish(node_rss, !args.quick);
        // Only a clean run's growth means anything per object.
        if let (Some(dir), Some(before), 0) = (&meta_dir, meta_before, report.errors) {
            let grown = meta_size(dir).await?.saturating_sub(before) as f64;
            let objects = report.ops.max(1) as f64;
            let per_object = grown / objects - scale.small_object as f64;
            metadata_bytes_per_small_object = Some(stats::round3(per_object));
        }
        log_report(&report);
        reports.push(report);
    }

    let node_peak_rss_mib = reports
        .iter()
        .filter_map(|report| report.node_peak_rss_mib)
        .reduce(f64::max);
    let document = RunReport {
        endpoint: &args.endpoint,
        bucket: &args.bucket,
        key_prefix: &bench.prefix,
        quick: args.quick,
        seconds_per_workload: scale.duration.as_secs_f64(),
        node_pid: args.node_pid,
        node_peak_rss_mib,
        metadata_bytes_per_small_object,
        workloads: &reports,
    };
    println!("{}", serde_json::to_string_pretty(&document)?);

    let failed: Vec<&str> = reports
        .iter()
        .filter(|report| report.errors > 0)
        .map(|report| report.workload)
        .collect();
    if !failed.is_empty() {
        anyhow::bail!("operations failed in: {}", failed.join(", "));
    }
    Ok(())
}

async fn meta_size(dir: &Path) -> anyhow::Result<u64> {
    disk::tree_size_async(dir.to_path_buf())
        .await
        .with_context(|| format!("measuring {}", dir.display()))
}

/// One progress line on stderr, plus the first error if there was one.
fn log_report(report: &WorkloadReport) {
    let throughput = match report.mib_per_sec {
        Some(mib) => format!("{mib} MiB/s"),
        None => format!("{} ops/s", report.ops_per_sec),
    };
    eprintln!(
        "mucura bench: {}: {} ops in {} s, {throughput}, p50 {} ms, p99 {} ms, {} errors",
        report.workload,
        report.ops,
        report.seconds,
        report.latency_ms.p50,
        report.latency_ms.p99,
        report.errors
    );
    if let Some(err) = &report.first_error {
        eprintln!("mucura bench: {}: first error: {err}", report.workload);
    }
}
