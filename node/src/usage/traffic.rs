//! Requests by class and bytes in/out per bucket ([`TrafficCounters`]), counted from the
//! S3 request path by [`TrafficObserver`], which wraps the node's request observer.
//!
//! Each node counts the requests it answered (no replication is involved, so the cluster's
//! figure is the sum over nodes, published with the usage reports). The counters are kept
//! in memory and saved to `DATA_DIR/usage-traffic.json` every [`SAVE_INTERVAL`] and at
//! shutdown: a crash loses at most that interval's counts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use s3api::observe::{RequestObserver, RequestRecord};
use serde::{Deserialize, Serialize};

/// How often changed counters are saved: bounds what a crash loses.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(10);

/// The file below the data dir the counters are saved in.
pub const TRAFFIC_FILE: &str = "usage-traffic.json";

/// Requests and bytes of one bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// Requests by class: `read` (Get*, Head*), `write` (Put*, Copy*, Create*, Upload*,
    /// Complete*, Post*), `list` (List*), `delete` (Delete*, Abort*), `other`.
    pub requests: BTreeMap<String, u64>,
    /// Request body bytes received.
    pub bytes_in: u64,
    /// Response body bytes sent.
    pub bytes_out: u64,
}

impl Traffic {
    /// Adds `other` (saturating).
    pub fn add(&mut self, other: &Traffic) {
        for (class, count) in &other.requests {
            let mine = self.requests.entry(class.clone()).or_default();
            *mine = mine.saturating_add(*count);
        }
        self.bytes_in = self.bytes_in.saturating_add(other.bytes_in);
        self.bytes_out = self.bytes_out.saturating_add(other.bytes_out);
    }
}

/// The class of an S3 operation (see [`Traffic::requests`]).
pub fn request_class(operation: &str) -> &'static str {
    const CLASSES: [(&str, &str); 11] = [
        ("Get", "read"),
        ("Head", "read"),
        ("List", "list"),
        ("Delete", "delete"),
        ("Abort", "delete"),
        ("Put", "write"),
        ("Copy", "write"),
        ("Create", "write"),
        ("Upload", "write"),
        ("Complete", "write"),
        ("Post", "write"),
    ];
    CLASSES
        .iter()
        .find(|(prefix, _)| operation.starts_with(prefix))
        .map_or("other", |(_, class)| class)
}

#[derive(Default)]
struct State {
    buckets: HashMap<String, Traffic>,
    /// Buckets changed since the last publication.
    dirty: HashSet<String>,
    /// Whether anything changed since the last save.
    unsaved: bool,
}

/// This node's request counters per bucket.
pub struct TrafficCounters {
    path: Option<PathBuf>,
    state: Mutex<State>,
}

impl TrafficCounters {
    /// Counters saved in `data_dir` (loading what an earlier run saved; an unreadable file
    /// is logged and counting starts from zero).
    pub fn open(data_dir: &Path) -> TrafficCounters {
        let path = data_dir.join(TRAFFIC_FILE);
        let buckets = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|err| {
                tracing::warn!(
                    "{}: unreadable, request counts restart: {err}",
                    path.display()
                );
                HashMap::new()
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(err) => {
                tracing::warn!("{}: {err}; request counts restart", path.display());
                HashMap::new()
            }
        };
        TrafficCounters {
            path: Some(path),
            state: Mutex::new(State {
                buckets,
                ..State::default()
            }),
        }
    }

    /// Counts one answered request.
    pub fn count(&self, record: &RequestRecord) {
        let Some(bucket) = &record.bucket else {
            return;
        };
        let class = request_class(record.operation.unwrap_or("other"));
        let mut state = self.lock();
        // Every request passes here under one lock: allocate only for a bucket or class
        // seen for the first time.
        if !state.buckets.contains_key(bucket.as_str()) {
            state.buckets.insert(bucket.clone(), Traffic::default());
        }
        if let Some(traffic) = state.buckets.get_mut(bucket.as_str()) {
            match traffic.requests.get_mut(class) {
                Some(count) => *count += 1,
                None => {
                    traffic.requests.insert(class.to_owned(), 1);
                }
            }
            traffic.bytes_in = traffic.bytes_in.saturating_add(record.bytes_in);
            traffic.bytes_out = traffic.bytes_out.saturating_add(record.bytes_out);
        }
        if !state.dirty.contains(bucket.as_str()) {
            state.dirty.insert(bucket.clone());
        }
        state.unsaved = true;
    }

    /// One bucket's counts.
    pub fn bucket(&self, bucket: &str) -> Traffic {
        self.lock().buckets.get(bucket).cloned().unwrap_or_default()
    }

    /// Takes the buckets changed since the last call.
    pub fn take_dirty(&self) -> HashSet<String> {
        std::mem::take(&mut self.lock().dirty)
    }

    /// Writes the counters to their file if they changed (temp file, then rename, so a
    /// crash leaves the old or the new file whole).
    pub fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let snapshot = {
            let mut state = self.lock();
            if !state.unsaved {
                return Ok(());
            }
            state.unsaved = false;
            state.buckets.clone()
        };
        let text = serde_json::to_vec(&snapshot).map_err(std::io::Error::other)?;
        let temp = path.with_extension("json.tmp");
        std::fs::write(&temp, text)?;
        std::fs::rename(&temp, path)
    }

    /// Saves every [`SAVE_INTERVAL`] until `stop` turns true, and once more then.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            let stopping = tokio::select! {
                () = tokio::time::sleep(SAVE_INTERVAL) => false,
                _ = stop.changed() => true,
            };
            let this = Arc::clone(&self);
            match tokio::task::spawn_blocking(move || this.save()).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!("saving the request counters: {err}"),
                Err(err) => tracing::warn!("saving the request counters: {err}"),
            }
            if stopping {
                return;
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Plain counts: a panic elsewhere leaves them usable.
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// The node's request observer, also counting traffic per bucket.
pub struct TrafficObserver {
    inner: Arc<dyn RequestObserver>,
    traffic: Arc<TrafficCounters>,
}

impl TrafficObserver {
    /// Passes every record to `inner` and counts it in `traffic`.
    pub fn new(inner: Arc<dyn RequestObserver>, traffic: Arc<TrafficCounters>) -> Self {
        TrafficObserver { inner, traffic }
    }
}

impl RequestObserver for TrafficObserver {
    fn observe(&self, record: &RequestRecord) {
        self.traffic.count(record);
        self.inner.observe(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_fall_into_classes() {
        let cases = [
            ("GetObject", "read"),
            ("HeadBucket", "read"),
            ("ListObjectsV2", "list"),
            ("DeleteObjects", "delete"),
            ("AbortMultipartUpload", "delete"),
            ("PutObject", "write"),
            ("UploadPartCopy", "write"),
            ("CompleteMultipartUpload", "write"),
            ("PreflightRequest", "other"),
        ];
        for (operation, class) in cases {
            assert_eq!(request_class(operation), class, "{operation}");
        }
    }

    #[test]
    fn requests_are_counted_by_bucket_and_class() {
        let counters = TrafficCounters::open(tempfile::tempdir().unwrap().path());
        let record = |operation: &'static str, bucket: Option<&str>, bytes_in, bytes_out| {
            let mut record = RequestRecord::arriving("R".into(), http::Method::GET, None);
            record.operation = Some(operation);
            record.bucket = bucket.map(str::to_owned);
            record.bytes_in = bytes_in;
            record.bytes_out = bytes_out;
            record
        };
        counters.count(&record("GetObject", Some("b"), 0, 100));
        counters.count(&record("HeadObject", Some("b"), 0, 0));
        counters.count(&record("PutObject", Some("b"), 40, 0));
        counters.count(&record("PutObject", Some("c"), 7, 0));
        // ListBuckets names no bucket: nothing to count it against.
        counters.count(&record("ListBuckets", None, 0, 500));
        let b = counters.bucket("b");
        assert_eq!(b.requests.get("read"), Some(&2));
        assert_eq!(b.requests.get("write"), Some(&1));
        assert_eq!((b.bytes_in, b.bytes_out), (40, 100));
        assert_eq!(counters.bucket("c").bytes_in, 7);
        let dirty = counters.take_dirty();
        assert_eq!(dirty.len(), 2);
        assert!(dirty.contains("b") && dirty.contains("c"));
        assert!(counters.take_dirty().is_empty());
    }

    #[test]
    fn counts_survive_a_save_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let counters = TrafficCounters::open(dir.path());
        let mut traffic = Traffic::default();
        traffic.requests.insert("read".into(), 2);
        traffic.bytes_out = 10;
        counters.lock().buckets.insert("b".into(), traffic.clone());
        counters.lock().unsaved = true;
        counters.save().unwrap();
        assert_eq!(TrafficCounters::open(dir.path()).bucket("b"), traffic);
        // A corrupt file starts from zero rather than failing the node.
        std::fs::write(dir.path().join(TRAFFIC_FILE), b"{").unwrap();
        assert_eq!(
            TrafficCounters::open(dir.path()).bucket("b"),
            Traffic::default()
        );
    }
}
