//! `mucura cp`: uploads (single PUT, or multipart above a threshold with parts sent
//! concurrently) and downloads, of one file or a whole tree, streamed between disk and network
//! so memory stays bounded whatever the file size.

use std::io::IsTerminal;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use futures_util::{stream, StreamExt, TryStreamExt};
use http::header::CONTENT_LENGTH;
use http_body_util::BodyExt;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::http::FileBody;
use super::location::{Location, S3Url};
use super::s3::S3Client;

/// S3 allows at most this many parts per upload: larger files get larger parts.
const MAX_PARTS: u64 = 10_000;

/// S3's smallest part (all but the last).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// How the transfers are cut and shown.
#[derive(Debug, Clone)]
pub struct TransferOptions {
    /// Files larger than this are uploaded in parts.
    pub multipart_threshold: u64,
    /// The part size (raised when a file would need more than 10 000 parts).
    pub part_size: u64,
    /// Parts (or files, recursively) in flight at once: enough to fill a link despite
    /// per-request latency, few enough that a laptop upload does not time out.
    pub concurrency: usize,
    /// Show a progress bar (only on a terminal).
    pub progress: bool,
}

/// One file to move.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Job {
    local: PathBuf,
    remote: S3Url,
    size: u64,
}

/// Runs `cp SRC DST`.
pub async fn copy(
    client: &S3Client,
    source: Location,
    destination: Location,
    recursive: bool,
    options: &TransferOptions,
) -> Result<()> {
    match (source, destination) {
        (Location::Local(local), Location::S3(remote)) => {
            let jobs = upload_jobs(&local, &remote, recursive)?;
            let progress = progress_bar(options, jobs.iter().map(|job| job.size).sum());
            run_jobs(&jobs, options, |job| {
                let progress = progress.clone();
                async move {
                    upload_file(client, &job, options, progress.as_ref()).await?;
                    announce(
                        progress.as_ref(),
                        &format!("upload: {} to {}", job.local.display(), job.remote),
                    );
                    Ok(())
                }
            })
            .await?;
            finish(progress);
            Ok(())
        }
        (Location::S3(remote), Location::Local(local)) => {
            let jobs = download_jobs(client, &remote, &local, recursive).await?;
            let progress = progress_bar(options, jobs.iter().map(|job| job.size).sum());
            run_jobs(&jobs, options, |job| {
                let progress = progress.clone();
                async move {
                    download_file(client, &job, progress.as_ref()).await?;
                    announce(
                        progress.as_ref(),
                        &format!("download: {} to {}", job.remote, job.local.display()),
                    );
                    Ok(())
                }
            })
            .await?;
            finish(progress);
            Ok(())
        }
        (Location::S3(_), Location::S3(_)) => {
            bail!("copying between two S3 locations is not supported: download and upload")
        }
        (Location::Local(_), Location::Local(_)) => {
            bail!("one of SRC and DST must be an S3 URL (s3://BUCKET/KEY)")
        }
    }
}

async fn run_jobs<'a, F, Fut>(jobs: &'a [Job], options: &TransferOptions, one: F) -> Result<()>
where
    F: Fn(Job) -> Fut,
    Fut: std::future::Future<Output = Result<()>> + 'a,
{
    // Large files already run their parts concurrently: files one after the other then.
    let files_at_once = if jobs
        .iter()
        .any(|job| job.size > options.multipart_threshold)
    {
        1
    } else {
        options.concurrency.max(1)
    };
    stream::iter(jobs.iter().cloned().map(one))
        .buffer_unordered(files_at_once)
        .try_collect::<Vec<()>>()
        .await
        .map(|_| ())
}

fn progress_bar(options: &TransferOptions, total: u64) -> Option<ProgressBar> {
    if !options.progress || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}

fn announce(progress: Option<&ProgressBar>, line: &str) {
    // Per-file lines only accompany the bar: without a terminal, cp is quiet.
    if let Some(bar) = progress {
        bar.println(line);
    }
}

fn finish(progress: Option<ProgressBar>) {
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
}

/// The key a local file goes to: `DST` itself, or `DST/` + the file name when DST names a
/// bucket or ends with `/`.
fn upload_key(remote: &S3Url, file: &Path) -> Result<String> {
    if remote.key.is_empty() || remote.key.ends_with('/') {
        let name = file
            .file_name()
            .and_then(|name| name.to_str())
            .with_context(|| format!("{} has no UTF-8 file name", file.display()))?;
        Ok(format!("{}{name}", remote.key))
    } else {
        Ok(remote.key.clone())
    }
}

/// A prefix as a directory: empty, or ending with `/`.
fn directory_prefix(key: &str) -> String {
    if key.is_empty() || key.ends_with('/') {
        key.to_string()
    } else {
        format!("{key}/")
    }
}

fn upload_jobs(local: &Path, remote: &S3Url, recursive: bool) -> Result<Vec<Job>> {
    let metadata =
        std::fs::metadata(local).with_context(|| format!("cannot read {}", local.display()))?;
    if !metadata.is_dir() {
        return Ok(vec![Job {
            local: local.to_path_buf(),
            remote: remote.with_key(upload_key(remote, local)?),
            size: metadata.len(),
        }]);
    }
    if !recursive {
        bail!("{} is a directory: use -r to copy it", local.display());
    }
    let prefix = directory_prefix(&remote.key);
    let mut files = Vec::new();
    walk(local, &mut files)?;
    files
        .into_iter()
        .map(|(path, size)| {
            let relative = path
                .strip_prefix(local)
                .with_context(|| format!("{} is outside {}", path.display(), local.display()))?;
            let parts = relative
                .components()
                .map(|part| {
                    part.as_os_str()
                        .to_str()
                        .with_context(|| format!("{} has no UTF-8 name", path.display()))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Job {
                remote: remote.with_key(format!("{prefix}{}", parts.join("/"))),
                local: path,
                size,
            })
        })
        .collect()
}

/// Every regular file under `dir` (symbolic links to files followed, to directories not:
/// a link cycle must not make cp loop), sorted.
fn walk(dir: &Path, files: &mut Vec<(PathBuf, u64)>) -> Result<()> {
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("cannot list {}", dir.display()))?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = entry.path();
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot read {}", path.display()))?;
        if kind.is_dir() {
            walk(&path, files)?;
        } else {
            let metadata = std::fs::metadata(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if metadata.is_file() {
                files.push((path, metadata.len()));
            }
        }
    }
    Ok(())
}

/// Where a key under `prefix` lands below `root`; `None` for a key that would escape it
/// (`..`, absolute, empty components) or is a folder marker.
fn local_path_for(root: &Path, prefix: &str, key: &str) -> Option<PathBuf> {
    let relative = key.strip_prefix(prefix)?;
    if relative.is_empty() || relative.ends_with('/') {
        return None;
    }
    let mut path = root.to_path_buf();
    for part in relative.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.contains('\\') {
            return None;
        }
        let component = Path::new(part);
        if !matches!(component.components().next(), Some(Component::Normal(_))) {
            return None;
        }
        path.push(part);
    }
    Some(path)
}

async fn download_jobs(
    client: &S3Client,
    remote: &S3Url,
    local: &Path,
    recursive: bool,
) -> Result<Vec<Job>> {
    if !recursive {
        if remote.key.is_empty() || remote.key.ends_with('/') {
            bail!("{remote} names a bucket or prefix: use -r to copy everything under it");
        }
        let size = client
            .existing_object_size(&remote.bucket, &remote.key)
            .await?;
        let target = if local.is_dir() || local.to_string_lossy().ends_with('/') {
            local.join(remote.file_name())
        } else {
            local.to_path_buf()
        };
        return Ok(vec![Job {
            local: target,
            remote: remote.clone(),
            size,
        }]);
    }
    let prefix = directory_prefix(&remote.key);
    let listing = client.list_all(&remote.bucket, &prefix, None).await?;
    let mut jobs = Vec::new();
    for object in listing.objects {
        match local_path_for(local, &prefix, &object.key) {
            Some(path) => jobs.push(Job {
                local: path,
                remote: remote.with_key(object.key),
                size: object.size,
            }),
            None if object.key.ends_with('/') && object.size == 0 => {}
            None => eprintln!(
                "warning: skipping s3://{}/{}: not a safe local file name",
                remote.bucket, object.key
            ),
        }
    }
    Ok(jobs)
}

/// The part size actually used for a file: at least the configured one, large enough to stay
/// within [`MAX_PARTS`].
pub fn effective_part_size(size: u64, configured: u64) -> u64 {
    configured.max(MIN_PART_SIZE).max(size.div_ceil(MAX_PARTS))
}

async fn open_at(path: &Path, offset: u64) -> Result<tokio::fs::File> {
    let mut file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    if offset > 0 {
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .with_context(|| format!("cannot seek in {}", path.display()))?;
    }
    Ok(file)
}

async fn upload_file(
    client: &S3Client,
    job: &Job,
    options: &TransferOptions,
    progress: Option<&ProgressBar>,
) -> Result<()> {
    let (bucket, key) = (&job.remote.bucket, &job.remote.key);
    if job.size <= options.multipart_threshold {
        let body = FileBody::new(open_at(&job.local, 0).await?, job.size, progress.cloned());
        client
            .put(
                bucket,
                key,
                "",
                http_body_util::BodyExt::boxed_unsync(body),
                job.size,
            )
            .await?;
        return Ok(());
    }
    let upload_id = client.create_multipart(bucket, key).await?;
    let result = upload_parts(client, job, &upload_id, options, progress).await;
    if let Err(err) = result {
        // Leave no orphaned parts behind: they would use space until someone aborts them.
        if let Err(abort) = client.abort_multipart(bucket, key, &upload_id).await {
            eprintln!(
                "warning: could not abort the upload of {}: {abort}",
                job.remote
            );
        }
        return Err(err);
    }
    Ok(())
}

/// Sends every part of `job` (`concurrency` at a time) and completes the upload.
async fn upload_parts(
    client: &S3Client,
    job: &Job,
    upload_id: &str,
    options: &TransferOptions,
    progress: Option<&ProgressBar>,
) -> Result<()> {
    let (bucket, key) = (&job.remote.bucket, &job.remote.key);
    let part_size = effective_part_size(job.size, options.part_size);
    let parts: Vec<(u32, u64, u64)> = (0..job.size.div_ceil(part_size))
        .map(|index| {
            let offset = index * part_size;
            // At most MAX_PARTS parts, so the number fits.
            let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
            (number, offset, part_size.min(job.size - offset))
        })
        .collect();
    let mut uploaded = stream::iter(
        parts
            .into_iter()
            .map(|(number, offset, length)| async move {
                let file = open_at(&job.local, offset).await?;
                let body = FileBody::new(file, length, progress.cloned());
                let query = super::s3::query(&[
                    ("partNumber", &number.to_string()),
                    ("uploadId", upload_id),
                ]);
                let etag = client
                    .put(bucket, key, &query, body.boxed_unsync(), length)
                    .await
                    .with_context(|| format!("part {number} of {}", job.remote))?;
                Ok::<_, anyhow::Error>((number, etag))
            }),
    )
    .buffer_unordered(options.concurrency.max(1))
    .try_collect::<Vec<_>>()
    .await?;
    uploaded.sort_by_key(|(number, _)| *number);
    client
        .complete_multipart(bucket, key, upload_id, &uploaded)
        .await?;
    Ok(())
}

/// The temporary name a download is written under until it is complete.
fn partial_name(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.mucura-partial"))
}

async fn download_file(client: &S3Client, job: &Job, progress: Option<&ProgressBar>) -> Result<()> {
    if let Some(dir) = job.local.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir)
            .await
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let partial = partial_name(&job.local);
    let result = fetch_into(client, job, &partial, progress).await;
    match result {
        Ok(()) => tokio::fs::rename(&partial, &job.local)
            .await
            .with_context(|| format!("cannot move the download to {}", job.local.display())),
        Err(err) => {
            let _ = tokio::fs::remove_file(&partial).await;
            Err(err)
        }
    }
}

async fn fetch_into(
    client: &S3Client,
    job: &Job,
    partial: &Path,
    progress: Option<&ProgressBar>,
) -> Result<()> {
    let response = client.get(&job.remote.bucket, &job.remote.key).await?;
    let announced: Option<u64> = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok());
    let mut file = tokio::fs::File::create(partial)
        .await
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let mut body = response.into_body();
    let mut received: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.with_context(|| format!("downloading {}", job.remote))?;
        if let Some(data) = frame.data_ref() {
            file.write_all(data)
                .await
                .with_context(|| format!("cannot write {}", partial.display()))?;
            received += data.len() as u64;
            if let Some(bar) = progress {
                bar.inc(data.len() as u64);
            }
        }
    }
    file.sync_all()
        .await
        .with_context(|| format!("cannot write {}", partial.display()))?;
    if let Some(expected) = announced {
        if expected != received {
            bail!(
                "{}: expected {expected} bytes, received {received}",
                job.remote
            );
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "transfer_tests.rs"]
mod tests;
