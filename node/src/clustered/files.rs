//! What a clustered node keeps on disk besides its tables: its id (`cluster/node-id`) and the
//! newest layout it has learnt (`cluster/layout.json`). Both are written temp → fsync →
//! rename → fsync of the directory, so a crash leaves the old file or the new one, never half.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use ring::{Layout, NodeId};
use serde::{Deserialize, Serialize};

use crate::config::cluster::validate_node_id;

/// Subdirectory of the data dir for cluster state.
pub const CLUSTER_DIR: &str = "cluster";
/// The node's id, one line of text.
const NODE_ID_FILE: &str = "node-id";
/// The newest layout, as [`StoredLayout`] JSON.
const LAYOUT_FILE: &str = "layout.json";
/// Format of [`StoredLayout`]; older formats get a decoding branch when it changes.
const LAYOUT_FORMAT: u32 = 1;

/// The layout file's document: the layout with a format marker.
#[derive(Serialize, Deserialize)]
struct StoredLayout {
    format: u32,
    layout: Layout,
}

/// The node id to run with: the one the operator gave, else the one stored in `cluster_dir`,
/// else a new random one, stored for the next start. An id given that differs from the
/// stored one is refused: the data dir's tables and hints belong to the stored identity.
pub fn resolve_node_id(cluster_dir: &Path, given: Option<NodeId>) -> Result<NodeId> {
    let path = cluster_dir.join(NODE_ID_FILE);
    let stored = match std::fs::read_to_string(&path) {
        Ok(text) => Some(
            validate_node_id(text.trim())
                .with_context(|| format!("the node id stored in {}", path.display()))?,
        ),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    match (given, stored) {
        (Some(given), Some(stored)) if given != stored => bail!(
            "--node-id {given} differs from the id {stored} stored in {}: this data dir \
             belongs to node {stored} (use that id, or another data dir)",
            path.display()
        ),
        (_, Some(stored)) => Ok(stored),
        (Some(given), None) => {
            write_atomically(&path, format!("{given}\n").as_bytes())?;
            Ok(given)
        }
        (None, None) => {
            let mut random = [0u8; 6];
            getrandom::fill(&mut random)
                .map_err(|err| anyhow::anyhow!("no randomness for a node id: {err}"))?;
            let id = NodeId::new(format!("node-{}", hex::encode(random)));
            write_atomically(&path, format!("{id}\n").as_bytes())?;
            Ok(id)
        }
    }
}

/// The persisted layout of one node. Saves are serialised and never replace a newer version
/// with an older one, so the layout watcher and the admin route may both save.
pub struct LayoutFile {
    path: PathBuf,
    saved_version: Mutex<u64>,
}

impl LayoutFile {
    /// The layout file in `cluster_dir` (which must exist).
    pub fn new(cluster_dir: &Path) -> LayoutFile {
        LayoutFile {
            path: cluster_dir.join(LAYOUT_FILE),
            saved_version: Mutex::new(0),
        }
    }

    /// The stored layout, or `None` if there is none yet. A file that cannot be read or
    /// parsed is an error: starting without it would forget the cluster.
    pub fn load(&self) -> Result<Option<Layout>> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => {
                return Err(err).with_context(|| format!("reading {}", self.path.display()))
            }
        };
        let stored: StoredLayout = serde_json::from_slice(&text)
            .with_context(|| format!("parsing the layout in {}", self.path.display()))?;
        if stored.format != LAYOUT_FORMAT {
            bail!(
                "{} has layout format {}, this build reads format {LAYOUT_FORMAT}",
                self.path.display(),
                stored.format
            );
        }
        *self.lock() = stored.layout.version;
        Ok(Some(stored.layout))
    }

    /// Writes `layout` durably unless a newer or equal version is already saved. Blocking.
    pub fn save(&self, layout: &Layout) -> Result<()> {
        let mut saved = self.lock();
        if layout.version <= *saved {
            return Ok(());
        }
        let document = StoredLayout {
            format: LAYOUT_FORMAT,
            layout: layout.clone(),
        };
        let json = serde_json::to_vec_pretty(&document).context("encoding the layout")?;
        write_atomically(&self.path, &json)?;
        *saved = layout.version;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        // Holds a plain number; a panic elsewhere leaves it usable.
        self.saved_version
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Replaces `path` with `contents`: temp file, fsync, rename, fsync of the directory.
fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .with_context(|| format!("{} has no parent directory", path.display()))?;
    let temp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::NodeInfo;

    fn layout(version: u64) -> Layout {
        Layout {
            version,
            nodes: vec![NodeInfo {
                id: NodeId::new("a"),
                rpc_addr: "127.0.0.1:7000".into(),
                zone: "z".into(),
                capacity: 1,
            }],
            replication: 1,
        }
    }

    #[test]
    fn node_ids_are_generated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = resolve_node_id(dir.path(), None).unwrap();
        assert!(first.as_str().starts_with("node-"));
        assert_eq!(resolve_node_id(dir.path(), None).unwrap(), first);
        assert_eq!(
            resolve_node_id(dir.path(), Some(first.clone())).unwrap(),
            first
        );
        let err = resolve_node_id(dir.path(), Some(NodeId::new("other"))).unwrap_err();
        assert!(err.to_string().contains("belongs to node"), "{err}");
    }

    #[test]
    fn layouts_survive_a_restart_and_never_go_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = LayoutFile::new(dir.path());
        assert!(file.load().unwrap().is_none());
        file.save(&layout(2)).unwrap();
        file.save(&layout(1)).unwrap();
        let reopened = LayoutFile::new(dir.path());
        assert_eq!(reopened.load().unwrap().unwrap(), layout(2));
        std::fs::write(dir.path().join(LAYOUT_FILE), b"{ not json").unwrap();
        assert!(LayoutFile::new(dir.path()).load().is_err());
    }
}
