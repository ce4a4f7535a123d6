//! Timed PUT, GET and HEAD of fixed-size objects.

use std::sync::Arc;

use super::{Bench, SizeClass};
use crate::bench::report::{Target, WorkloadReport};
use crate::bench::runner::{run_ops, Measured, Until};

/// Writes objects `first..` of a class from the class's concurrency until `until`, and records
/// them as written.
async fn put_objects(bench: &Arc<Bench>, class: SizeClass, until: Until) -> Measured {
    let first = bench.written(class);
    let shared = Arc::clone(bench);
    let measured = run_ops(class.concurrency(), until, move |_, sequence| {
        let bench = Arc::clone(&shared);
        async move {
            let key = bench.key(class, first + sequence);
            let len = bench.size(class);
            let body = bench.payload.body(len);
            bench.client.put(&key, "", body, len).await.map(|_| len)
        }
    })
    .await;
    bench.add_written(class, measured.attempted());
    measured
}

/// Makes sure a GET or HEAD workload has objects to read; returns how many exist.
async fn ensure_objects(bench: &Arc<Bench>, class: SizeClass) -> Result<u64, String> {
    if bench.written(class) == 0 {
        let seeded = put_objects(bench, class, Until::Count(class.seed_count())).await;
        if let Some(err) = seeded.first_error {
            return Err(format!("seeding {} objects: {err}", class.key_segment()));
        }
    }
    Ok(bench.written(class))
}

/// The PUT workload of a size class: distinct keys for the configured duration.
pub async fn put(bench: &Arc<Bench>, class: SizeClass, target: Target) -> WorkloadReport {
    let measured = put_objects(bench, class, Until::Elapsed(bench.scale.duration)).await;
    WorkloadReport::new(
        put_name(class),
        class.concurrency(),
        Some(bench.size(class)),
        measured,
        target,
    )
}

/// The GET workload of a size class: cycles over the written objects, reading and discarding
/// each body and checking its length.
pub async fn get(bench: &Arc<Bench>, class: SizeClass, target: Target) -> WorkloadReport {
    let name = get_name(class);
    let size = bench.size(class);
    let existing = match ensure_objects(bench, class).await {
        Ok(existing) => existing,
        Err(err) => return setup_failed(name, class.concurrency(), Some(size), target, err),
    };
    let shared = Arc::clone(bench);
    let measured = run_ops(
        class.concurrency(),
        Until::Elapsed(bench.scale.duration),
        move |_, sequence| {
            let bench = Arc::clone(&shared);
            async move {
                let key = bench.key(class, sequence % existing);
                bench.client.get_exact(&key, size).await
            }
        },
    )
    .await;
    WorkloadReport::new(name, class.concurrency(), Some(size), measured, target)
        .with("objects_read_from", existing)
}

/// HEADs of the small objects, checking each Content-Length.
pub async fn head(bench: &Arc<Bench>, target: Target) -> WorkloadReport {
    let class = SizeClass::Small;
    let size = bench.size(class);
    let existing = match ensure_objects(bench, class).await {
        Ok(existing) => existing,
        Err(err) => return setup_failed("head", class.concurrency(), None, target, err),
    };
    let shared = Arc::clone(bench);
    let measured = run_ops(
        class.concurrency(),
        Until::Elapsed(bench.scale.duration),
        move |_, sequence| {
            let bench = Arc::clone(&shared);
            async move {
                let key = bench.key(class, sequence % existing);
                bench.client.head_exact(&key, size).await
            }
        },
    )
    .await;
    WorkloadReport::new("head", class.concurrency(), None, measured, target)
        .with("objects_read_from", existing)
}

/// A report for a workload whose preparation failed: one error, nothing measured.
pub fn setup_failed(
    name: &'static str,
    concurrency: usize,
    object_bytes: Option<u64>,
    target: Target,
    error: String,
) -> WorkloadReport {
    let measured = Measured {
        errors: 1,
        first_error: Some(error),
        ..Measured::default()
    };
    WorkloadReport::new(name, concurrency, object_bytes, measured, target)
}

fn put_name(class: SizeClass) -> &'static str {
    match class {
        SizeClass::Small => "put-4k",
        SizeClass::Medium => "put-1m",
        SizeClass::Large => "put-64m",
    }
}

fn get_name(class: SizeClass) -> &'static str {
    match class {
        SizeClass::Small => "get-4k",
        SizeClass::Medium => "get-1m",
        SizeClass::Large => "get-64m",
    }
}
