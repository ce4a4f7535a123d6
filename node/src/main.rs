//! `mucura`: one binary for the storage node, its operator commands and its benchmark.
//!
//! - `serve` starts a node: [`config`] merges flags and file, [`credentials`] finds the root
//!   keys, [`store`] opens the local engine (sled metadata + block files), [`server`] runs the
//!   S3 endpoint (s3api's service over the store) and the admin API until SIGINT/SIGTERM.
//!   With `--rpc-listen` the node also joins a cluster: [`clustered`] runs the control plane
//!   (RPC server, membership, replicated-table system, hint replay, block replication,
//!   anti-entropy); S3 stays node-local.
//! - `admin …` ([`admin_cli`]) talks to a node's admin API.
//! - `local-cluster` ([`local_cluster`]) runs N `serve` children on loopback as one cluster.
//! - `ls`, `cp`, `rm`, `share`, `mb`, `rb`, `login`, `register`, `env`, `credential-process`
//!   ([`user_cli`]) are the user's S3 and grid-login commands.

mod admin_cli;
mod bench;
#[allow(dead_code)]
mod cluster;
mod clustered;
mod config;
mod credentials;
mod grid;
mod identity;
mod local_cluster;
mod node;
mod observe;
#[allow(dead_code)]
mod rpc;
mod server;
mod store;
mod usage;
mod user_cli;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use config::{ClusterFlags, FileConfig, FlagConfig, NodeConfig};

/// Mucura: a personal file repository for every user of a data centre, over S3.
#[derive(Parser)]
#[command(name = "mucura", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a storage node (with no flags: one node, data in ./mucura-data, S3 on 127.0.0.1:9000).
    Serve(Box<ServeArgs>),
    /// Operator commands against a node's admin API.
    Admin(admin_cli::AdminArgs),
    /// Drive an S3 endpoint and print throughput, latency and memory as JSON.
    Bench(bench::BenchArgs),
    /// Run a cluster of N nodes on loopback (child processes), until Ctrl-C or SIGTERM.
    LocalCluster(local_cluster::LocalClusterArgs),
    /// User commands (ls, cp, rm, share, mb, rb, login, register, env, credential-process).
    #[command(flatten)]
    User(user_cli::UserCommand),
}

#[derive(Args)]
struct ServeArgs {
    /// TOML file with the same settings as the flags (flags win).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Directory for metadata and block files.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address of the S3 endpoint.
    #[arg(long)]
    s3_listen: Option<SocketAddr>,
    /// Address of the admin API (health, status).
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// Region reported to clients.
    #[arg(long)]
    region: Option<String>,
    /// Domain for virtual-host style requests (`bucket.DOMAIN`).
    #[arg(long)]
    root_domain: Option<String>,
    /// Cluster mode: address of the inter-node RPC endpoint, also announced to peers.
    /// Without it the node runs alone.
    #[arg(long)]
    rpc_listen: Option<SocketAddr>,
    /// This node's id in the cluster (default: generated once, kept in the data dir).
    #[arg(long)]
    node_id: Option<String>,
    /// This node's failure domain (rack, room, site) [default: default].
    #[arg(long)]
    zone: Option<String>,
    /// This node's capacity: bytes (`500G`, `4T`) or a relative weight [default: 1].
    #[arg(long)]
    capacity: Option<String>,
    /// RPC address of a node to contact at start (repeatable).
    #[arg(long = "seed")]
    seeds: Vec<SocketAddr>,
    /// File holding the secret shared by all nodes (at least 16 bytes); or set
    /// MUCURA_CLUSTER_SECRET.
    #[arg(long)]
    cluster_secret_file: Option<PathBuf>,
    /// Seconds between scheduled anti-entropy rounds (tests and benchmarks).
    #[arg(long, hide = true, value_name = "SECONDS")]
    anti_entropy_interval: Option<u64>,
    /// Seconds between cluster block GC passes (tests use short ones).
    #[arg(long, hide = true, value_name = "SECONDS")]
    block_gc_interval: Option<u64>,
    /// Seconds an unreferenced block is kept before cluster block GC deletes it.
    #[arg(long, hide = true, value_name = "SECONDS")]
    block_gc_grace: Option<u64>,
    /// Seconds between tombstone purges of the sharded tables (tests use short ones).
    #[arg(long, hide = true, value_name = "SECONDS")]
    tombstone_purge_interval: Option<u64>,
    /// Seconds a deletion is kept before its tombstone may be purged from every replica.
    #[arg(long, hide = true, value_name = "SECONDS")]
    tombstone_grace: Option<u64>,
    #[command(flatten)]
    grid: GridArgs,
}

/// The grid (X.509 certificate and proxy) listener's flags.
#[derive(Args)]
struct GridArgs {
    /// Address of the grid listener: mutual TLS with X.509 certificates and proxies, for
    /// registration and AssumeRoleWithCertificate. Off without it.
    #[arg(long, value_name = "ADDR")]
    grid_listen: Option<SocketAddr>,
    /// Grid CA directory: `HASH.0` CA certificates and `HASH.r0` CRLs.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/etc/grid-security/certificates"
    )]
    x509_ca_dir: PathBuf,
    /// PEM certificate (chain) of this host for the grid listener.
    #[arg(
        long,
        value_name = "PEM",
        default_value = "/etc/grid-security/hostcert.pem"
    )]
    grid_cert: PathBuf,
    /// PEM private key of this host for the grid listener.
    #[arg(
        long,
        value_name = "PEM",
        default_value = "/etc/grid-security/hostkey.pem"
    )]
    grid_key: PathBuf,
    /// Accept users of CAs that have no CRL in the CA directory (default: refuse them).
    #[arg(long)]
    grid_crl_optional: bool,
    /// Longest temporary credentials issued for a certificate, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 43_200)]
    grid_max_session: u64,
    /// Refuse limited proxies (default: accept them and mark their sessions).
    #[arg(long)]
    grid_reject_limited_proxies: bool,
    /// S3 URL announced to grid clients [default: http:// and the S3 listen address].
    #[arg(long, value_name = "URL")]
    public_s3_url: Option<String>,
    /// Seconds between re-reads of the CA directory (new CRLs and CAs take effect).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    grid_ca_reload_interval: u64,
}

impl GridArgs {
    fn into_config(self) -> Option<grid::listener::GridConfig> {
        let listen = self.grid_listen?;
        Some(grid::listener::GridConfig {
            listen,
            ca_dir: self.x509_ca_dir,
            certificate: self.grid_cert,
            key: self.grid_key,
            crl_optional: self.grid_crl_optional,
            sessions: identity::CertificateSessionPolicy {
                max_lifetime: Duration::from_secs(self.grid_max_session.max(1)),
                reject_limited: self.grid_reject_limited_proxies,
            },
            public_s3_url: self.public_s3_url,
            ca_reload_interval: Duration::from_secs(self.grid_ca_reload_interval.max(1)),
        })
    }
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MUCURA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => {
                let file = match &args.config {
                    Some(path) => FileConfig::load(path)?,
                    None => FileConfig::default(),
                };
                let flags = FlagConfig {
                    data_dir: args.data_dir,
                    s3_listen: args.s3_listen,
                    admin_listen: args.admin_listen,
                    region: args.region,
                    root_domain: args.root_domain,
                    cluster: ClusterFlags {
                        node_id: args.node_id,
                        rpc_listen: args.rpc_listen,
                        zone: args.zone,
                        capacity: args.capacity,
                        seeds: args.seeds,
                        secret_file: args.cluster_secret_file,
                        secret_env: std::env::var(config::cluster::CLUSTER_SECRET_ENV).ok(),
                    },
                };
                let mut cluster_options = clustered::ClusterOptions::default();
                if let Some(seconds) = args.anti_entropy_interval {
                    cluster_options.anti_entropy_interval = Duration::from_secs(seconds.max(1));
                }
                if let Some(seconds) = args.block_gc_interval {
                    cluster_options.block_gc_interval = Duration::from_secs(seconds.max(1));
                }
                if let Some(seconds) = args.block_gc_grace {
                    cluster_options.block_gc_grace = Duration::from_secs(seconds);
                }
                if let Some(seconds) = args.tombstone_purge_interval {
                    cluster_options.tombstone_purge_interval = Duration::from_secs(seconds.max(1));
                }
                if let Some(seconds) = args.tombstone_grace {
                    cluster_options.tombstone_grace = Duration::from_secs(seconds);
                }
                let mut config = NodeConfig::merge(flags, file)?;
                config.grid = args.grid.into_config();
                node::run(config, cluster_options).await
            }
            Command::Bench(args) => bench::run(args).await,
            Command::Admin(args) => admin_cli::run(args).await,
            Command::LocalCluster(args) => local_cluster::run(args).await,
            Command::User(command) => user_cli::run(command).await,
        }
    })
}
