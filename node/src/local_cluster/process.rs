//! The node processes of a local cluster: spawning with a log file and no inherited
//! credentials, and stopping them (SIGTERM, then SIGKILL after a grace period).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::config::cluster::CLUSTER_SECRET_ENV;
use crate::credentials::{ACCESS_KEY_ENV, SECRET_KEY_ENV};

/// How long the nodes get to stop after SIGTERM before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// One `mucura serve` child.
pub struct NodeProcess {
    id: String,
    child: Child,
    log: PathBuf,
}

impl NodeProcess {
    /// Starts `argv` with stdout and stderr appended to `log`. The credential and secret
    /// variables are removed from its environment: it must run from its files alone, as its
    /// `argv` in cluster.json promises.
    pub fn spawn(id: &str, argv: &[String], log: &Path) -> Result<NodeProcess> {
        let (program, arguments) = argv
            .split_first()
            .context("a node's command line is empty")?;
        let output = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let errors = output
            .try_clone()
            .with_context(|| format!("opening {}", log.display()))?;
        let child = Command::new(program)
            .args(arguments)
            .env_remove(ACCESS_KEY_ENV)
            .env_remove(SECRET_KEY_ENV)
            .env_remove(CLUSTER_SECRET_ENV)
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            .spawn()
            .with_context(|| format!("starting node {id} ({program})"))?;
        Ok(NodeProcess {
            id: id.to_owned(),
            child,
            log: log.to_owned(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The node's log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Its exit status if it has exited (reaping it), else `None`.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        self.child
            .try_wait()
            .with_context(|| format!("checking on node {}", self.id))
    }

    fn terminate(&mut self) {
        let pid = i32::try_from(self.child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            // The child may have exited already (ESRCH): nothing to do then.
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
    }
}

/// All children of the local cluster. Dropping it kills any still running (error paths);
/// [`Children::stop_all`] is the graceful way.
#[derive(Default)]
pub struct Children {
    nodes: Vec<NodeProcess>,
}

impl Children {
    /// Adds a started node.
    pub fn push(&mut self, node: NodeProcess) {
        self.nodes.push(node);
    }

    /// The nodes, in start order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut NodeProcess> {
        self.nodes.iter_mut()
    }

    /// SIGTERM to every running node, then waits up to [`STOP_GRACE`] for them all; the ones
    /// still running then are killed. Every child is reaped.
    pub async fn stop_all(&mut self) {
        for node in &mut self.nodes {
            if matches!(node.exited(), Ok(None)) {
                node.terminate();
            }
        }
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        loop {
            let mut running = 0;
            for node in &mut self.nodes {
                running += usize::from(matches!(node.exited(), Ok(None)));
            }
            if running == 0 || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for node in &mut self.nodes {
            if matches!(node.exited(), Ok(None)) {
                tracing::warn!(node = %node.id, "did not stop within {STOP_GRACE:?}: killing it");
                let _ = node.child.kill();
                let _ = node.child.wait();
            }
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if matches!(node.exited(), Ok(None)) {
                let _ = node.child.kill();
                let _ = node.child.wait();
            }
        }
    }
}
