//! One-object workloads: a multipart upload and a single-request upload far larger than the
//! node's memory budget.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use http::Method;
use http_body_util::{BodyExt, Full};

use super::list::element_text;
use super::objects::setup_failed;
use super::Bench;
use crate::bench::client::RequestError;
use crate::bench::report::{Target, WorkloadReport, MIB};
use crate::bench::runner::{within, Measured};
use crate::bench::stats::{round3, Latencies};

/// Parts uploaded at once, as the issue asks.
const PARTS_IN_FLIGHT: usize = 4;

/// Longest a whole-object phase (a 1-2 GiB transfer) may take before it counts as failed:
/// minutes even at 10 MiB/s, yet a stalled server ends the run instead of hanging it.
const OBJECT_TIMEOUT: Duration = Duration::from_secs(600);

/// Uploads one object with CreateMultipartUpload, parallel UploadPart and Complete; the whole
/// sequence is the measured time. Each part is one operation.
pub async fn multipart(bench: &Arc<Bench>, target: Target) -> WorkloadReport {
    let total = bench.scale.multipart_total;
    let part_size = bench.scale.multipart_part;
    let key = format!("{}/multipart", bench.prefix);
    let started = Instant::now();
    match within(
        OBJECT_TIMEOUT,
        upload_multipart(bench, &key, total, part_size),
    )
    .await
    {
        Ok(mut measured) => {
            measured.elapsed = started.elapsed();
            let mut report = WorkloadReport::new(
                "multipart-1g",
                PARTS_IN_FLIGHT,
                Some(total),
                measured,
                target,
            )
            .with("part_bytes", part_size);
            match bench.client.head_exact(&key, total).await {
                Ok(_) => report,
                Err(err) => {
                    report.errors += 1;
                    report.first_error = Some(err.to_string());
                    report
                }
            }
        }
        Err(err) => setup_failed(
            "multipart-1g",
            PARTS_IN_FLIGHT,
            Some(total),
            target,
            err.to_string(),
        ),
    }
}

/// The multipart sequence; on a failed part the upload is aborted.
async fn upload_multipart(
    bench: &Arc<Bench>,
    key: &str,
    total: u64,
    part_size: u64,
) -> Result<Measured, RequestError> {
    let created = bench
        .client
        .call(Method::POST, Some(key), "uploads", None)
        .await?;
    let upload_id =
        element_text(&String::from_utf8_lossy(&created.body), "UploadId").ok_or_else(|| {
            bench
                .client
                .unexpected(Some(key), "no UploadId in the answer")
        })?;
    let encoded_id = crate::bench::client::percent_encode(&upload_id, false);
    let parts = total.div_ceil(part_size);
    let uploads = stream::iter(1..=parts)
        .map(|number| {
            let bench = Arc::clone(bench);
            let query = format!("partNumber={number}&uploadId={encoded_id}");
            let len = part_size.min(total - (number - 1) * part_size);
            async move {
                let started = Instant::now();
                let body = bench.payload.body(len);
                let etag = bench.client.put(key, &query, body, len).await?;
                Ok::<_, RequestError>((number, etag, started.elapsed(), len))
            }
        })
        .buffer_unordered(PARTS_IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    let mut measured = Measured::default();
    let mut latencies = Latencies::default();
    let mut completed = Vec::with_capacity(uploads.len());
    for upload in uploads {
        match upload {
            Ok((number, etag, latency, len)) => {
                latencies.record(latency);
                measured.ops += 1;
                measured.bytes += len;
                completed.push((number, etag));
            }
            Err(err) => {
                let abort = format!("uploadId={encoded_id}");
                // Best effort: the part's error is what the report needs.
                let _ = bench
                    .client
                    .call(Method::DELETE, Some(key), &abort, None)
                    .await;
                return Err(err);
            }
        }
    }
    completed.sort_unstable_by_key(|(number, _)| *number);
    let document = complete_document(&completed);
    let len = document.len() as u64;
    let body = Full::new(Bytes::from(document)).boxed();
    let query = format!("uploadId={encoded_id}");
    let answer = bench
        .client
        .call(Method::POST, Some(key), &query, Some((body, len)))
        .await?;
    // S3 may report a failed completion inside a 200 answer.
    let text = String::from_utf8_lossy(&answer.body);
    if text.contains("<Error>") {
        return Err(bench
            .client
            .unexpected(Some(key), format!("Complete answered {text}")));
    }
    measured.latencies = latencies;
    Ok(measured)
}

/// The CompleteMultipartUpload request document for parts in order.
fn complete_document(parts: &[(u64, String)]) -> String {
    let mut document = String::from("<CompleteMultipartUpload>");
    for (number, etag) in parts {
        let etag = etag.replace('&', "&amp;").replace('"', "&quot;");
        document.push_str(&format!(
            "<Part><PartNumber>{number}</PartNumber><ETag>{etag}</ETag></Part>"
        ));
    }
    document.push_str("</CompleteMultipartUpload>");
    document
}

/// PUTs one big object in a single streamed request, then GETs it back (length checked). The
/// measured phase is the PUT; the GET is reported beside it. The target is the node's memory.
pub async fn big_object(bench: &Arc<Bench>, target: Target) -> WorkloadReport {
    let size = bench.scale.big_object;
    let key = format!("{}/big", bench.prefix);
    let mut measured = Measured::default();
    let put_started = Instant::now();
    let put = bench
        .client
        .put(&key, "", bench.payload.body(size), size)
        .await;
    measured.elapsed = put_started.elapsed();
    measured.latencies.record(measured.elapsed);
    if let Err(err) = put {
        measured.errors = 1;
        measured.first_error = Some(err.to_string());
        return WorkloadReport::new("big-2g", 1, Some(size), measured, target);
    }
    measured.ops = 1;
    measured.bytes = size;
    let get_started = Instant::now();
    let get = within(OBJECT_TIMEOUT, bench.client.get_exact(&key, size)).await;
    let get_seconds = get_started.elapsed().as_secs_f64();
    let mut report = WorkloadReport::new("big-2g", 1, Some(size), measured, target)
        .with("get_seconds", round3(get_seconds))
        .with(
            "get_mib_per_sec",
            round3(size as f64 / MIB / get_seconds.max(1e-9)),
        );
    if let Err(err) = get {
        report.errors += 1;
        report.first_error = Some(err.to_string());
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_document_lists_parts_in_order() {
        let parts = vec![(1, "\"a\"".to_string()), (2, "\"b\"".to_string())];
        assert_eq!(
            complete_document(&parts),
            "<CompleteMultipartUpload>\
             <Part><PartNumber>1</PartNumber><ETag>&quot;a&quot;</ETag></Part>\
             <Part><PartNumber>2</PartNumber><ETag>&quot;b&quot;</ETag></Part>\
             </CompleteMultipartUpload>"
        );
    }
}
