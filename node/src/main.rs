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

mod admin_cli;
mod bench;
#[allow(dead_code)]
mod cluster;
mod clustered;
mod config;
mod credentials;
// The grid (X.509 proxy) listener is built ahead of its wiring into the node (issue #6).
#[allow(dead_code)]
mod grid;
mod identity;
mod local_cluster;
mod node;
mod observe;
#[allow(dead_code)]
mod rpc;
mod server;
mod store;

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
    Serve(ServeArgs),
    /// Operator commands against a node's admin API.
    Admin(admin_cli::AdminArgs),
    /// Drive an S3 endpoint and print throughput, latency and memory as JSON.
    Bench(bench::BenchArgs),
    /// Run a cluster of N nodes on loopback (child processes), until Ctrl-C or SIGTERM.
    LocalCluster(local_cluster::LocalClusterArgs),
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
                node::run(NodeConfig::merge(flags, file)?, cluster_options).await
            }
            Command::Bench(args) => bench::run(args).await,
            Command::Admin(args) => admin_cli::run(args).await,
            Command::LocalCluster(args) => local_cluster::run(args).await,
        }
    })
}
