//! Cluster-mode settings: `--rpc-listen` turns cluster mode on; the other flags describe the
//! node to its peers and say how to find and prove membership of the cluster.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ring::NodeId;
use serde::Deserialize;

use crate::rpc::auth::MAX_NODE_ID_LEN;
use crate::rpc::secret::MIN_SECRET_LEN;
use crate::rpc::ClusterSecret;

/// Environment variable that may hold the cluster secret itself (instead of a file).
pub const CLUSTER_SECRET_ENV: &str = "MUCURA_CLUSTER_SECRET";
/// Failure domain of a node that names none.
pub const DEFAULT_ZONE: &str = "default";
/// Capacity of a node that names none: all such nodes weigh the same.
pub const DEFAULT_CAPACITY: u64 = 1;

/// The `[cluster]` table of the TOML file; the same settings as the cluster flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFileConfig {
    pub node_id: Option<String>,
    pub rpc_listen: Option<SocketAddr>,
    pub zone: Option<String>,
    pub capacity: Option<CapacitySetting>,
    #[serde(default)]
    pub seeds: Vec<SocketAddr>,
    pub secret_file: Option<PathBuf>,
}

/// A capacity in TOML: a number (`capacity = 4`) or text with a unit (`capacity = "4T"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CapacitySetting {
    /// A plain weight or byte count.
    Number(u64),
    /// A byte count with a binary unit, parsed by [`parse_capacity`].
    Text(String),
}

/// Cluster flags as given on the command line (None / empty when absent).
#[derive(Debug, Default, Clone)]
pub struct ClusterFlags {
    pub node_id: Option<String>,
    pub rpc_listen: Option<SocketAddr>,
    pub zone: Option<String>,
    pub capacity: Option<String>,
    pub seeds: Vec<SocketAddr>,
    pub secret_file: Option<PathBuf>,
    /// The value of [`CLUSTER_SECRET_ENV`], if set.
    pub secret_env: Option<String>,
}

/// How a node takes part in a cluster, after merging flags and file.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The id given by the operator; `None` means "the one stored in the data dir, or a new
    /// one" (see [`crate::clustered::identity`]).
    pub node_id: Option<NodeId>,
    /// Where the RPC server listens; also the address announced to peers.
    pub rpc_listen: SocketAddr,
    /// This node's failure domain.
    pub zone: String,
    /// This node's capacity (bytes or relative weight, > 0).
    pub capacity: u64,
    /// Addresses of nodes to contact at start.
    pub seeds: Vec<SocketAddr>,
    /// The secret every node of the cluster shares.
    pub secret: ClusterSecret,
}

/// Merges cluster flags over the file's `[cluster]` table. `Ok(None)` is single-node mode:
/// neither names an RPC address. Other cluster settings without one are refused, since the
/// operator evidently meant to run a cluster.
pub fn merge(flags: ClusterFlags, file: ClusterFileConfig) -> Result<Option<ClusterConfig>> {
    let Some(rpc_listen) = flags.rpc_listen.or(file.rpc_listen) else {
        let stray = [
            (
                "--node-id",
                flags.node_id.is_some() || file.node_id.is_some(),
            ),
            ("--zone", flags.zone.is_some() || file.zone.is_some()),
            (
                "--capacity",
                flags.capacity.is_some() || file.capacity.is_some(),
            ),
            ("--seed", !flags.seeds.is_empty() || !file.seeds.is_empty()),
            (
                "--cluster-secret-file",
                flags.secret_file.is_some() || file.secret_file.is_some(),
            ),
        ];
        if let Some((flag, _)) = stray.iter().find(|(_, given)| *given) {
            bail!("{flag} only applies in cluster mode: also give --rpc-listen ADDR");
        }
        return Ok(None);
    };
    let node_id = match flags.node_id.or(file.node_id) {
        Some(id) => Some(validate_node_id(&id)?),
        None => None,
    };
    let capacity = match (flags.capacity, file.capacity) {
        (Some(text), _) | (None, Some(CapacitySetting::Text(text))) => parse_capacity(&text)?,
        (None, Some(CapacitySetting::Number(number))) => parse_capacity(&number.to_string())?,
        (None, None) => DEFAULT_CAPACITY,
    };
    let secret_file = flags.secret_file.or(file.secret_file);
    let secret = load_secret(secret_file.as_deref(), flags.secret_env)?;
    let mut seeds = flags.seeds;
    if seeds.is_empty() {
        seeds = file.seeds;
    }
    Ok(Some(ClusterConfig {
        node_id,
        rpc_listen,
        zone: flags
            .zone
            .or(file.zone)
            .unwrap_or_else(|| DEFAULT_ZONE.to_owned()),
        capacity,
        seeds,
        secret,
    }))
}

/// Checks an operator-chosen node id: non-empty, printable, short enough for the RPC
/// handshake.
pub fn validate_node_id(id: &str) -> Result<NodeId> {
    if id.is_empty() || id.len() > MAX_NODE_ID_LEN {
        bail!(
            "node id must have 1 to {MAX_NODE_ID_LEN} bytes, got {}",
            id.len()
        );
    }
    if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        bail!("node id {id:?} must not contain spaces or control characters");
    }
    Ok(NodeId::new(id))
}

/// Parses a capacity: a positive integer, optionally followed by a binary unit
/// (`K`, `M`, `G`, `T`, `P`, with or without `i`/`B`: `500G`, `4TiB`, `1024`).
pub fn parse_capacity(text: &str) -> Result<u64> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number: u64 = number
        .parse()
        .with_context(|| format!("capacity {text:?} must start with a whole number"))?;
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit.trim_end_matches('B').trim_end_matches('I');
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        "P" => 50,
        other => bail!("capacity {text:?} has an unknown unit {other:?} (use K, M, G, T or P)"),
    };
    let capacity = number
        .checked_mul(1u64 << shift)
        .with_context(|| format!("capacity {text:?} is too large"))?;
    if capacity == 0 {
        bail!("capacity must be greater than 0");
    }
    Ok(capacity)
}

/// Reads the cluster secret from `file` (trailing whitespace ignored, so `echo … > file`
/// works), else from the environment; cluster mode cannot start without one.
fn load_secret(file: Option<&Path>, env: Option<String>) -> Result<ClusterSecret> {
    let (bytes, origin) = match (file, env) {
        (Some(path), _) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("reading the cluster secret file {}", path.display()))?;
            (bytes, format!("file {}", path.display()))
        }
        (None, Some(value)) => (value.into_bytes(), format!("${CLUSTER_SECRET_ENV}")),
        (None, None) => bail!(
            "cluster mode needs a cluster secret shared by all nodes: give \
             --cluster-secret-file PATH or set {CLUSTER_SECRET_ENV} (at least {MIN_SECRET_LEN} bytes)"
        ),
    };
    let trimmed_len = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |last| last + 1);
    let mut bytes = bytes;
    bytes.truncate(trimmed_len);
    ClusterSecret::new(bytes).with_context(|| {
        format!("the cluster secret from {origin} is too short (at least {MIN_SECRET_LEN} bytes)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_rpc() -> ClusterFlags {
        ClusterFlags {
            rpc_listen: Some("127.0.0.1:7000".parse().unwrap()),
            secret_env: Some("0123456789abcdef".into()),
            ..ClusterFlags::default()
        }
    }

    #[test]
    fn without_an_rpc_address_the_node_is_single_and_cluster_flags_are_refused() {
        let single = merge(ClusterFlags::default(), ClusterFileConfig::default()).unwrap();
        assert!(single.is_none());
        let stray = ClusterFlags {
            seeds: vec!["127.0.0.1:7001".parse().unwrap()],
            ..ClusterFlags::default()
        };
        let err = merge(stray, ClusterFileConfig::default()).unwrap_err();
        assert!(err.to_string().contains("--rpc-listen"), "{err}");
    }

    #[test]
    fn cluster_mode_defaults_and_flags_over_file() {
        let file: ClusterFileConfig =
            toml::from_str("zone = \"rack-1\"\ncapacity = \"2G\"\nseeds = [\"10.0.0.1:7000\"]")
                .unwrap();
        let config = merge(with_rpc(), file).unwrap().unwrap();
        assert_eq!(config.zone, "rack-1");
        assert_eq!(config.capacity, 2 << 30);
        assert_eq!(config.seeds.len(), 1);
        assert!(config.node_id.is_none());
        let flags = ClusterFlags {
            zone: Some("rack-2".into()),
            capacity: Some("3".into()),
            ..with_rpc()
        };
        let config = merge(flags, ClusterFileConfig::default()).unwrap().unwrap();
        assert_eq!((config.zone.as_str(), config.capacity), ("rack-2", 3));
    }

    #[test]
    fn a_missing_or_short_secret_is_a_clear_error() {
        let no_secret = ClusterFlags {
            secret_env: None,
            ..with_rpc()
        };
        let err = merge(no_secret, ClusterFileConfig::default()).unwrap_err();
        assert!(err.to_string().contains("--cluster-secret-file"), "{err}");
        let short = ClusterFlags {
            secret_env: Some("short".into()),
            ..with_rpc()
        };
        let err = merge(short, ClusterFileConfig::default()).unwrap_err();
        assert!(format!("{err:#}").contains("too short"), "{err:#}");
    }

    #[test]
    fn secret_files_lose_their_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "fifteen-bytes!!\n").unwrap();
        let flags = ClusterFlags {
            secret_file: Some(path),
            ..with_rpc()
        };
        // 15 bytes once the newline is gone: too short.
        assert!(merge(flags, ClusterFileConfig::default()).is_err());
    }

    #[test]
    fn capacities_take_binary_units_and_refuse_nonsense() {
        assert_eq!(parse_capacity("1").unwrap(), 1);
        assert_eq!(parse_capacity("500G").unwrap(), 500 << 30);
        assert_eq!(parse_capacity("4TiB").unwrap(), 4 << 40);
        assert_eq!(parse_capacity("2 kb").unwrap(), 2048);
        for bad in ["0", "", "G", "12X", "99999999999P", "-1"] {
            assert!(parse_capacity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn node_ids_are_checked() {
        assert!(validate_node_id("node-a1").is_ok());
        assert!(validate_node_id("").is_err());
        assert!(validate_node_id("has space").is_err());
    }
}
