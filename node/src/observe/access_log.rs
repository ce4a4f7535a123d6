//! The access log: one JSON line per S3 request in `DATA_DIR/logs/access.log`, rotated by size
//! (`access.log.1` is the newest old file). Operator actions on the admin API (users, keys)
//! are logged in the same file, one line each with an `admin.…` operation and the actor
//! ([`AdminRecord`], written through [`AuditSink`]).
//!
//! Requests never wait for the disk: [`AccessLog::record`] formats the line and offers it to a
//! bounded queue; when the queue is full the line is dropped and counted
//! (`mucura_access_log_dropped_total`). A dedicated thread (not a runtime worker, so a slow or
//! full disk stalls nothing else) drains the queue into a [`RotatingFile`], flushes every
//! second and on shutdown. Write failures are logged once per outage and counted
//! (`mucura_access_log_write_errors_total`); the writer keeps going and recovers when the disk
//! does.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use prometheus::IntCounter;
use s3api::observe::RequestRecord;
use serde::Serialize;
use time::macros::format_description;
use time::OffsetDateTime;

use super::log_file::RotatingFile;

/// Directory below the data dir that holds the access log.
pub const LOG_DIR: &str = "logs";
/// Name of the file being written.
pub const ACCESS_LOG_FILE: &str = "access.log";
/// Rotation size: a day of a moderately busy node (~200 000 requests of ~300 bytes).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Rotated files kept besides the current one (`access.log.1` … `access.log.8`).
pub const DEFAULT_KEEP_FILES: usize = 8;
/// Lines queued for the writer: a few seconds of a busy node's requests, at most ~5 MiB of
/// memory, enough to ride out a slow disk without dropping lines.
const DEFAULT_QUEUE_LINES: usize = 16 * 1024;
/// Lines reach the file (not fsync) within this time, so `tail -f` and tests see them.
const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Where and how the access log is written.
#[derive(Debug, Clone)]
pub struct AccessLogConfig {
    /// Directory of `access.log` and its rotated files.
    pub dir: PathBuf,
    /// Size at which the current file is rotated.
    pub max_file_bytes: u64,
    /// Rotated files kept.
    pub keep_files: usize,
    /// Capacity of the queue between requests and the writer.
    pub queue_lines: usize,
    /// How often written lines are flushed to the file.
    pub flush_interval: Duration,
}

impl AccessLogConfig {
    /// The defaults for a node whose data lives in `data_dir`.
    pub fn new(data_dir: &Path) -> AccessLogConfig {
        AccessLogConfig {
            dir: data_dir.join(LOG_DIR),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            keep_files: DEFAULT_KEEP_FILES,
            queue_lines: DEFAULT_QUEUE_LINES,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
        }
    }
}

enum Message {
    Line(String),
    Shutdown,
}

/// The request side of the access log: cheap to clone, never blocks.
#[derive(Clone)]
pub struct AccessLog {
    sender: SyncSender<Message>,
    node: Arc<str>,
    dropped: IntCounter,
}

/// The writer thread; [`AccessLogWriter::close`] drains, flushes and stops it.
pub struct AccessLogWriter {
    sender: SyncSender<Message>,
    thread: Option<JoinHandle<()>>,
}

/// Counters the access log reports to (registered in the node's metrics).
#[derive(Clone)]
pub struct AccessLogCounters {
    /// Lines dropped because the queue was full.
    pub dropped: IntCounter,
    /// Failed writes, flushes or rotations.
    pub write_errors: IntCounter,
}

/// Starts the writer thread for the log of node `node`.
pub fn start(
    config: AccessLogConfig,
    node: &str,
    counters: AccessLogCounters,
) -> io::Result<(AccessLog, AccessLogWriter)> {
    let (sender, receiver) = mpsc::sync_channel(config.queue_lines.max(1));
    let file = RotatingFile::new(
        config.dir,
        ACCESS_LOG_FILE,
        config.max_file_bytes,
        config.keep_files,
    );
    let write_errors = counters.write_errors;
    let flush_interval = config.flush_interval;
    let thread = thread::Builder::new()
        .name("access-log".into())
        .spawn(move || run_writer(receiver, file, flush_interval, write_errors))?;
    let log = AccessLog {
        sender: sender.clone(),
        node: Arc::from(node),
        dropped: counters.dropped,
    };
    let writer = AccessLogWriter {
        sender,
        thread: Some(thread),
    };
    Ok((log, writer))
}

impl AccessLog {
    /// Queues the line of one finished request; drops (and counts) it if the queue is full.
    pub fn record(&self, record: &RequestRecord) {
        let Some(line) = format_line(&self.node, record) else {
            self.dropped.inc();
            return;
        };
        match self.sender.try_send(Message::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.dropped.inc(),
        }
    }
}

impl AccessLogWriter {
    /// Writes every line queued so far, flushes the file and stops the thread.
    pub async fn close(self) {
        if let Err(err) = tokio::task::spawn_blocking(move || self.close_blocking()).await {
            tracing::error!("closing the access log: {err}");
        }
    }

    /// [`AccessLogWriter::close`] for callers outside the runtime.
    pub fn close_blocking(mut self) {
        // Blocks while the queue is full, which the writer is emptying.
        let _ = self.sender.send(Message::Shutdown);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the access log writer thread panicked");
            }
        }
    }
}

/// One line of the log. Field names are the log's public format: change them with care.
#[derive(Serialize)]
struct AccessLine<'a> {
    time: String,
    request_id: &'a str,
    node: &'a str,
    user: Option<&'a str>,
    access_key: Option<&'a str>,
    remote_addr: Option<String>,
    method: &'a str,
    operation: Option<&'a str>,
    bucket: Option<&'a str>,
    key: Option<&'a str>,
    status: u16,
    error_code: Option<&'a str>,
    bytes_in: u64,
    bytes_out: u64,
    duration_ms: f64,
}

/// The actor of admin actions authorised by the admin bearer token (the only way in today).
pub const ADMIN_TOKEN_ACTOR: &str = "admin-token";

/// One operator action on the admin API. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRecord<'a> {
    /// What was done, e.g. `admin.user.create`, `admin.key.rotate`.
    pub operation: &'static str,
    /// Who did it (see [`ADMIN_TOKEN_ACTOR`]).
    pub actor: &'a str,
    /// What it was done to: a user id, an access key id, a layout version.
    pub target: &'a str,
    /// The user concerned, when the target is a key.
    pub user: Option<&'a str>,
    /// The HTTP status answered.
    pub status: u16,
    /// The admin API error code, if it failed (`conflict`, `not_found`, …).
    pub error_code: Option<&'a str>,
}

/// Where admin actions are recorded: the access log, or a recorder in tests.
pub trait AuditSink: Send + Sync {
    /// Records one admin action; never blocks (a line that cannot be queued is dropped and
    /// counted like a request's).
    fn record_admin(&self, record: &AdminRecord<'_>);
}

impl AuditSink for AccessLog {
    fn record_admin(&self, record: &AdminRecord<'_>) {
        let Some(line) = format_admin_line(&self.node, SystemTime::now(), record) else {
            self.dropped.inc();
            return;
        };
        match self.sender.try_send(Message::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.dropped.inc(),
        }
    }
}

/// One admin line of the log; shares the request lines' names where they mean the same.
#[derive(Serialize)]
struct AdminLine<'a> {
    time: String,
    request_id: String,
    node: &'a str,
    operation: &'static str,
    actor: &'a str,
    target: &'a str,
    user: Option<&'a str>,
    status: u16,
    error_code: Option<&'a str>,
}

/// The JSON line of an admin action at `time`, newline included.
fn format_admin_line(node: &str, time: SystemTime, record: &AdminRecord<'_>) -> Option<String> {
    let line = AdminLine {
        time: format_time(time)?,
        request_id: uuid::Uuid::new_v4().simple().to_string(),
        node,
        operation: record.operation,
        actor: record.actor,
        target: record.target,
        user: record.user,
        status: record.status,
        error_code: record.error_code,
    };
    let mut text = serde_json::to_string(&line).ok()?;
    text.push('\n');
    Some(text)
}

/// `time` as the log writes it: UTC, milliseconds, `Z`.
fn format_time(time: SystemTime) -> Option<String> {
    OffsetDateTime::from(time)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .ok()
}

/// The JSON line of `record`, newline included.
fn format_line(node: &str, record: &RequestRecord) -> Option<String> {
    let time = format_time(record.time)?;
    let line = AccessLine {
        time,
        request_id: &record.request_id,
        node,
        user: record.user.as_deref(),
        access_key: record.access_key.as_deref(),
        remote_addr: record.remote_addr.map(|addr| addr.to_string()),
        method: record.method.as_str(),
        operation: record.operation,
        bucket: record.bucket.as_deref(),
        key: record.key.as_deref(),
        status: record.status,
        error_code: record.error_code,
        bytes_in: record.bytes_in,
        bytes_out: record.bytes_out,
        // Microsecond resolution is plenty, and keeps the numbers short.
        duration_ms: record.duration.as_micros() as f64 / 1000.0,
    };
    let mut text = serde_json::to_string(&line).ok()?;
    text.push('\n');
    Some(text)
}

/// The writer thread's loop: write lines as they come, flush on a timer, stop on shutdown.
fn run_writer(
    receiver: Receiver<Message>,
    mut file: RotatingFile,
    flush_interval: Duration,
    write_errors: IntCounter,
) {
    let mut health = WriteHealth {
        failing: false,
        errors: write_errors,
        path: file.path(),
    };
    let mut unflushed = false;
    let mut next_flush = Instant::now() + flush_interval;
    loop {
        let wait = next_flush.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(wait) {
            Ok(Message::Line(line)) => {
                health.report(file.write_line(line.as_bytes()));
                unflushed = true;
            }
            Ok(Message::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                health.report(file.flush());
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        if Instant::now() >= next_flush {
            if unflushed {
                health.report(file.flush());
                unflushed = false;
            }
            next_flush = Instant::now() + flush_interval;
        }
    }
}

/// Counts failures and logs the start and end of an outage (not every failed line: a full
/// disk would otherwise flood the node's log too).
struct WriteHealth {
    failing: bool,
    errors: IntCounter,
    path: PathBuf,
}

impl WriteHealth {
    fn report(&mut self, result: io::Result<()>) {
        match result {
            Ok(()) if self.failing => {
                self.failing = false;
                tracing::info!(path = %self.path.display(), "access log writable again");
            }
            Ok(()) => {}
            Err(err) => {
                self.errors.inc();
                if !self.failing {
                    self.failing = true;
                    tracing::warn!(
                        path = %self.path.display(),
                        "access log write failed, lines are lost until it recovers: {err}"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
