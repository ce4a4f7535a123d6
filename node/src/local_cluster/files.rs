//! What `mucura local-cluster` keeps in its directory: `cluster.json` (the documented
//! contract), the cluster secret and the root credentials every node shares.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::credentials::{RootCredentials, CREDENTIALS_FILE};

/// The contract file: every node's pid, addresses, data dir and the command that restarts it.
pub const CLUSTER_FILE: &str = "cluster.json";
/// The cluster secret, passed to every node with `--cluster-secret-file`.
pub const SECRET_FILE: &str = "cluster-secret";

/// `DIR/cluster.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterFile {
    /// Root access key, valid on every node.
    pub access_key: String,
    /// Root secret key, valid on every node.
    pub secret_key: String,
    /// The nodes, node 1 (the seed of the others) first.
    pub nodes: Vec<NodeEntry>,
}

/// One node in [`ClusterFile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// Its cluster node id.
    pub id: String,
    /// Its process id (of the run that wrote the file).
    pub pid: u32,
    /// S3 endpoint, `127.0.0.1:PORT`.
    pub s3: String,
    /// Admin API, `127.0.0.1:PORT`.
    pub admin: String,
    /// Inter-node RPC, `127.0.0.1:PORT`.
    pub rpc: String,
    /// Its data directory.
    pub data_dir: String,
    /// The full command line that restarts it with the same identity and data (no
    /// environment needed: the secret and credentials are read from files).
    pub argv: Vec<String>,
}

impl ClusterFile {
    /// The file in `dir`, or `None` if there is none.
    pub fn load(dir: &Path) -> Result<Option<ClusterFile>> {
        let path = dir.join(CLUSTER_FILE);
        match std::fs::read(&path) {
            Ok(text) => serde_json::from_slice(&text)
                .with_context(|| format!("parsing {}", path.display()))
                .map(Some),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes the file into `dir` atomically (readers never see half of it).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).context("encoding cluster.json")?;
        let path = dir.join(CLUSTER_FILE);
        let temp = dir.join(format!("{CLUSTER_FILE}.tmp"));
        // It holds the root secret key: private, like the credentials files.
        match std::fs::remove_file(&temp) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err).with_context(|| format!("removing {}", temp.display())),
        }
        write_private(&temp, &json)?;
        std::fs::rename(&temp, &path).with_context(|| format!("writing {}", path.display()))
    }
}

/// The cluster secret file in `dir`, created (0600, 32 random bytes in hex) if missing.
pub fn ensure_secret(dir: &Path) -> Result<std::path::PathBuf> {
    let path = dir.join(SECRET_FILE);
    if !path.exists() {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|err| anyhow::anyhow!("no randomness for the cluster secret: {err}"))?;
        write_private(&path, format!("{}\n", hex::encode(secret)).as_bytes())?;
    }
    Ok(path)
}

/// The credentials shared by the cluster, kept in `dir` (generated once), and copied into
/// `data_dir` of every node before its first start, so a node restarted from its `argv`
/// without any environment serves the same keys.
pub fn ensure_credentials(dir: &Path) -> Result<RootCredentials> {
    let path = dir.join(CREDENTIALS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("parsing {}", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let credentials = RootCredentials {
                access_key: format!("MK{}", random_token(18)?.to_ascii_uppercase()),
                secret_key: random_token(40)?,
                admin_token: random_token(32)?,
            };
            write_credentials(&path, &credentials)?;
            Ok(credentials)
        }
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes `credentials` into the node's `data_dir` unless it has its own already.
pub fn install_credentials(data_dir: &Path, credentials: &RootCredentials) -> Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let path = data_dir.join(CREDENTIALS_FILE);
    if path.exists() {
        return Ok(());
    }
    write_credentials(&path, credentials)
}

fn write_credentials(path: &Path, credentials: &RootCredentials) -> Result<()> {
    let text = toml::to_string(credentials).context("encoding credentials")?;
    write_private(path, text.as_bytes())
}

/// Creates `path` with mode 0600 and `contents`, durably.
fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// A random string of `len` characters from [a-z0-9].
fn random_token(len: usize) -> Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|err| anyhow::anyhow!("no randomness: {err}"))?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_credentials_are_generated_once_private_and_installed() {
        let dir = tempfile::tempdir().unwrap();
        let secret = ensure_secret(dir.path()).unwrap();
        let first = std::fs::read_to_string(&secret).unwrap();
        assert!(first.trim().len() >= 32);
        ensure_secret(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let credentials = ensure_credentials(dir.path()).unwrap();
        let again = ensure_credentials(dir.path()).unwrap();
        assert_eq!(credentials.secret_key, again.secret_key);
        let data_dir = dir.path().join("node-1");
        install_credentials(&data_dir, &credentials).unwrap();
        let installed: RootCredentials =
            toml::from_str(&std::fs::read_to_string(data_dir.join(CREDENTIALS_FILE)).unwrap())
                .unwrap();
        assert_eq!(installed.access_key, credentials.access_key);
        assert_eq!(installed.admin_token, credentials.admin_token);
    }

    #[test]
    fn the_cluster_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ClusterFile::load(dir.path()).unwrap().is_none());
        let file = ClusterFile {
            access_key: "AK".into(),
            secret_key: "SK".into(),
            nodes: vec![NodeEntry {
                id: "node-1".into(),
                pid: 42,
                s3: "127.0.0.1:1".into(),
                admin: "127.0.0.1:2".into(),
                rpc: "127.0.0.1:3".into(),
                data_dir: "/d".into(),
                argv: vec!["mucura".into(), "serve".into()],
            }],
        };
        file.save(dir.path()).unwrap();
        file.save(dir.path()).unwrap();
        assert_eq!(ClusterFile::load(dir.path()).unwrap(), Some(file));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join(CLUSTER_FILE);
            let mode = std::fs::metadata(path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
