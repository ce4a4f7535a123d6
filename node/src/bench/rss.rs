//! The node's resident memory, sampled from `/proc/PID/status` while a workload runs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How often VmRSS is read: short enough to catch a buffer that lives for one request of a
/// large upload, cheap enough (one small procfs read) not to disturb the measurement.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(20);

/// A background task recording the peak VmRSS of one process.
pub struct RssSampler {
    start_kib: Option<u64>,
    peak_kib: Arc<AtomicU64>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    pid: u32,
}

impl RssSampler {
    /// Starts sampling `pid` every [`SAMPLE_INTERVAL`].
    pub fn start(pid: u32) -> RssSampler {
        let start_kib = vm_rss_kib(pid);
        let peak_kib = Arc::new(AtomicU64::new(start_kib.unwrap_or(0)));
        let (stop, mut stopped) = oneshot::channel();
        let peak = Arc::clone(&peak_kib);
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticks.tick() => {
                        if let Some(kib) = vm_rss_kib(pid) {
                            peak.fetch_max(kib, Ordering::Relaxed);
                        }
                    }
                }
            }
        });
        RssSampler {
            start_kib,
            peak_kib,
            stop,
            task,
            pid,
        }
    }

    /// Stops sampling and returns the memory at the start and the peak (`None` if the process
    /// was never readable).
    pub async fn finish(self) -> Option<RssSpan> {
        // The task may already have ended; either way it is done once awaited.
        let _ = self.stop.send(());
        let _ = self.task.await;
        if let Some(kib) = vm_rss_kib(self.pid) {
            self.peak_kib.fetch_max(kib, Ordering::Relaxed);
        }
        match self.peak_kib.load(Ordering::Relaxed) {
            0 => None,
            peak_kib => Some(RssSpan {
                start_mib: self.start_kib.map(kib_to_mib),
                peak_mib: kib_to_mib(peak_kib),
            }),
        }
    }
}

/// The node's resident memory over one workload, in MiB.
#[derive(Debug, Clone, Copy)]
pub struct RssSpan {
    /// When the workload began (what earlier workloads left behind: caches, allocator).
    pub start_mib: Option<f64>,
    /// The highest sample.
    pub peak_mib: f64,
}

fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The current VmRSS of `pid` in KiB, or `None` if it cannot be read.
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss_kib(&status)
}

fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vm_rss_line() {
        let status = "Name:\tmucura\nVmPeak:\t  900 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss_kib(status), Some(12345));
        assert_eq!(parse_vm_rss_kib("Name:\tx\n"), None);
    }

    #[tokio::test]
    async fn samples_this_process() {
        let sampler = RssSampler::start(std::process::id());
        tokio::time::sleep(SAMPLE_INTERVAL * 3).await;
        let span = sampler.finish().await.unwrap();
        assert!(span.peak_mib > 1.0, "peak {} MiB", span.peak_mib);
        assert!(span.start_mib.unwrap() <= span.peak_mib);
    }
}
