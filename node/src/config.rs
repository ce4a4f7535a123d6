//! Node configuration: command-line flags over a TOML file over built-in defaults.
//!
//! Cluster settings live in [`cluster`] (flags `--rpc-listen`, `--node-id`, …; the TOML
//! file's `[cluster]` table). Without an RPC address the node runs alone, as before.

pub mod cluster;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

pub use self::cluster::{ClusterConfig, ClusterFileConfig, ClusterFlags};

/// Where the embedded single-node default keeps its data.
pub const DEFAULT_DATA_DIR: &str = "mucura-data";
/// S3 on loopback, the port S3 tools commonly try first.
pub const DEFAULT_S3_LISTEN: &str = "127.0.0.1:9000";
/// The admin API (health, status) beside it.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9001";

/// Settings from a TOML file; every field is optional and flags win over it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub s3_listen: Option<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    pub region: Option<String>,
    pub root_domain: Option<String>,
    pub node_id: Option<u64>,
    /// Cluster mode settings (`[cluster]`).
    #[serde(default)]
    pub cluster: ClusterFileConfig,
}

impl FileConfig {
    /// Reads and parses a TOML config file.
    pub fn load(path: &Path) -> Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }
}

/// The settings a node runs with, after merging flags, file and defaults.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    pub s3_listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub region: String,
    pub root_domain: Option<String>,
    pub node_id: u64,
    /// `Some` in cluster mode (an RPC address was given).
    pub cluster: Option<ClusterConfig>,
    /// `Some` when the grid (X.509) listener runs (`--grid-listen`; flags only).
    pub grid: Option<crate::grid::listener::GridConfig>,
}

/// Values given on the command line (None when the flag was absent).
#[derive(Debug, Default, Clone)]
pub struct FlagConfig {
    pub data_dir: Option<PathBuf>,
    pub s3_listen: Option<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    pub region: Option<String>,
    pub root_domain: Option<String>,
    pub cluster: ClusterFlags,
}

impl NodeConfig {
    /// Flags first, then the file, then defaults.
    pub fn merge(flags: FlagConfig, file: FileConfig) -> Result<NodeConfig> {
        let parse = |s: &str| -> Result<SocketAddr> {
            s.parse()
                .with_context(|| format!("bad default address {s}"))
        };
        Ok(NodeConfig {
            data_dir: flags
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            s3_listen: match flags.s3_listen.or(file.s3_listen) {
                Some(addr) => addr,
                None => parse(DEFAULT_S3_LISTEN)?,
            },
            admin_listen: match flags.admin_listen.or(file.admin_listen) {
                Some(addr) => addr,
                None => parse(DEFAULT_ADMIN_LISTEN)?,
            },
            region: flags
                .region
                .or(file.region)
                .unwrap_or_else(|| "us-east-1".to_owned()),
            root_domain: flags.root_domain.or(file.root_domain),
            node_id: file.node_id.unwrap_or(1),
            cluster: cluster::merge(flags.cluster, file.cluster)?,
            grid: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        let file: FileConfig = toml::from_str(
            "data_dir = \"/srv/mucura\"\ns3_listen = \"0.0.0.0:9100\"\nregion = \"eu-west-1\"\n",
        )
        .unwrap();
        let flags = FlagConfig {
            s3_listen: Some("127.0.0.1:9200".parse().unwrap()),
            ..FlagConfig::default()
        };
        let config = NodeConfig::merge(flags, file).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/srv/mucura"));
        assert_eq!(config.s3_listen.port(), 9200);
        assert_eq!(config.admin_listen.port(), 9001);
        assert_eq!(config.region, "eu-west-1");
        assert!(config.cluster.is_none());
    }

    #[test]
    fn a_cluster_table_turns_cluster_mode_on() {
        let file: FileConfig = toml::from_str(
            "[cluster]\nrpc_listen = \"127.0.0.1:7000\"\nnode_id = \"n1\"\ncapacity = 2\n",
        )
        .unwrap();
        let flags = FlagConfig {
            cluster: ClusterFlags {
                secret_env: Some("0123456789abcdef".into()),
                ..ClusterFlags::default()
            },
            ..FlagConfig::default()
        };
        let cluster = NodeConfig::merge(flags, file).unwrap().cluster.unwrap();
        assert_eq!(cluster.node_id.unwrap().as_str(), "n1");
        assert_eq!(cluster.capacity, 2);
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<FileConfig>("data_dri = \"x\"").is_err());
    }
}
