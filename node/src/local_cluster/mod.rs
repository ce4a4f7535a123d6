//! `mucura local-cluster --nodes N --dir DIR`: a whole cluster on one machine, for trying
//! Mucura out, for the cluster tests and for the benchmarks.
//!
//! It starts N `mucura serve` children (this same binary) on free loopback ports, each with
//! its data in `DIR/node-I` and its log in `DIR/node-I.log`, node 2..N seeded with node 1;
//! waits for their `/health`; applies a layout of all N nodes (one zone each, replication
//! `min(3, N)` unless `--replication` says otherwise) through node 1's admin API; waits
//! until every node uses it and sees every node Up; then writes `DIR/cluster.json` (see
//! [`files::ClusterFile`]) and prints the endpoints and credentials. Ctrl-C or SIGTERM
//! stops every child (SIGTERM, then SIGKILL after 10 s) and exits 0.
//!
//! Every node reads the cluster secret (`DIR/cluster-secret`) and the shared root
//! credentials (copied into its data dir before its first start) from files, so each
//! node's `argv` in `cluster.json` restarts it as-is, with no environment. Running the
//! command again on the same DIR restarts the same nodes with the same ids and data dirs,
//! on the same ports where they are free (the RPC port must be: it is in the layout).

mod files;
mod process;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use ring::{Layout, NodeId, NodeInfo};

use admin::api::PeerLiveness;
use admin::client::AdminClient;

use self::files::{ClusterFile, NodeEntry};
use self::process::{Children, NodeProcess};
use crate::credentials::RootCredentials;

/// How long a node may take to answer `/health`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the cluster may take to agree on the layout and see everyone Up.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between two polls of the nodes' admin APIs.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Flags of `mucura local-cluster`.
#[derive(Args)]
pub struct LocalClusterArgs {
    /// Number of nodes (ignored when DIR already holds a cluster: its nodes restart).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Directory for the nodes' data, logs, the secret and cluster.json.
    #[arg(long)]
    dir: PathBuf,
    /// Replication factor of the layout [default: min(3, nodes)].
    #[arg(long)]
    replication: Option<usize>,
    /// Seconds between anti-entropy rounds on every node (passed to `serve`).
    #[arg(long, hide = true, value_name = "SECONDS")]
    anti_entropy_interval: Option<u64>,
}

/// One node's planned identity and addresses.
struct NodePlan {
    id: String,
    data_dir: PathBuf,
    s3: SocketAddr,
    admin: SocketAddr,
    rpc: SocketAddr,
    argv: Vec<String>,
}

/// Runs the cluster until Ctrl-C or SIGTERM.
pub async fn run(args: LocalClusterArgs) -> Result<()> {
    if args.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let dir = args
        .dir
        .canonicalize()
        .with_context(|| format!("resolving {}", args.dir.display()))?;
    let previous = ClusterFile::load(&dir)?;
    if let Some(previous) = &previous {
        if previous.nodes.len() != args.nodes {
            tracing::warn!(
                "{} holds a cluster of {} nodes: restarting those (ignoring --nodes {})",
                dir.display(),
                previous.nodes.len(),
                args.nodes
            );
        }
    }
    let secret_file = files::ensure_secret(&dir)?;
    let credentials = files::ensure_credentials(&dir)?;
    let binary = std::env::current_exe().context("finding the mucura binary")?;
    let plans = plan_nodes(&args, &dir, previous.as_ref(), &binary, &secret_file)?;

    let mut children = Children::default();
    let outcome = tokio::select! {
        started = start_cluster(&plans, &credentials, &dir, &args, &mut children) => started,
        signal = crate::server::shutdown_signal() => {
            signal.and_then(|()| Err(anyhow::anyhow!("interrupted while starting the cluster")))
        }
    };
    if let Err(err) = outcome {
        children.stop_all().await;
        return Err(err);
    }
    announce(&plans, &credentials, &dir);
    let waited = crate::server::shutdown_signal().await;
    println!("stopping {} nodes", plans.len());
    children.stop_all().await;
    waited
}

/// Ids, data dirs, ports and command lines of the nodes: the previous run's where DIR
/// holds one, else new ones.
fn plan_nodes(
    args: &LocalClusterArgs,
    dir: &Path,
    previous: Option<&ClusterFile>,
    binary: &Path,
    secret_file: &Path,
) -> Result<Vec<NodePlan>> {
    let count = previous.map_or(args.nodes, |file| file.nodes.len());
    let mut plans: Vec<NodePlan> = Vec::with_capacity(count);
    for index in 0..count {
        let known = previous.map(|file| &file.nodes[index]);
        let id = known.map_or_else(|| format!("node-{}", index + 1), |node| node.id.clone());
        let data_dir = known.map_or_else(
            || dir.join(format!("node-{}", index + 1)),
            |node| PathBuf::from(&node.data_dir),
        );
        let rpc = match known {
            Some(node) => {
                let rpc: SocketAddr = node.rpc.parse().context("RPC address in cluster.json")?;
                if !port_is_free(rpc) {
                    bail!(
                        "node {id}'s RPC address {rpc} (in its layout) is in use: is another \
                         local-cluster running on {}?",
                        dir.display()
                    );
                }
                rpc
            }
            None => free_port()?,
        };
        let reuse = |text: Option<&String>| -> Result<SocketAddr> {
            match text.and_then(|text| text.parse().ok()) {
                Some(addr) if port_is_free(addr) => Ok(addr),
                _ => free_port(),
            }
        };
        let s3 = reuse(known.map(|node| &node.s3))?;
        let admin = reuse(known.map(|node| &node.admin))?;
        let mut argv = vec![
            binary.display().to_string(),
            "serve".to_owned(),
            "--data-dir".to_owned(),
            data_dir.display().to_string(),
            "--s3-listen".to_owned(),
            s3.to_string(),
            "--admin-listen".to_owned(),
            admin.to_string(),
            "--rpc-listen".to_owned(),
            rpc.to_string(),
            "--node-id".to_owned(),
            id.clone(),
            "--zone".to_owned(),
            format!("zone-{}", index + 1),
            "--cluster-secret-file".to_owned(),
            secret_file.display().to_string(),
        ];
        if let Some(first) = plans.first() {
            argv.extend(["--seed".to_owned(), first.rpc.to_string()]);
        }
        if let Some(seconds) = args.anti_entropy_interval {
            argv.extend(["--anti-entropy-interval".to_owned(), seconds.to_string()]);
        }
        plans.push(NodePlan {
            id,
            data_dir,
            s3,
            admin,
            rpc,
            argv,
        });
    }
    Ok(plans)
}

/// Starts the nodes, applies the layout if none is, waits for agreement, writes
/// cluster.json.
async fn start_cluster(
    plans: &[NodePlan],
    credentials: &RootCredentials,
    dir: &Path,
    args: &LocalClusterArgs,
    children: &mut Children,
) -> Result<()> {
    for plan in plans {
        files::install_credentials(&plan.data_dir, credentials)?;
        let log = dir.join(format!("{}.log", plan.id));
        children.push(NodeProcess::spawn(&plan.id, &plan.argv, &log)?);
    }
    let clients: Vec<AdminClient> = plans
        .iter()
        .map(|plan| AdminClient::new(format!("http://{}", plan.admin), &credentials.admin_token))
        .collect();
    for ((plan, client), child) in plans.iter().zip(&clients).zip(children.iter_mut()) {
        wait_ready(&plan.id, client, child).await?;
    }

    let first = &clients[0];
    let current = first.cluster_layout().await?;
    if current.version == 0 {
        let count = plans.len();
        let layout = Layout {
            version: 1,
            nodes: plans
                .iter()
                .enumerate()
                .map(|(index, plan)| NodeInfo {
                    id: NodeId::new(plan.id.clone()),
                    rpc_addr: plan.rpc.to_string(),
                    zone: format!("zone-{}", index + 1),
                    capacity: 1,
                })
                .collect(),
            replication: args.replication.unwrap_or(count.min(3)),
        };
        layout.validate().context("the local cluster's layout")?;
        first.apply_cluster_layout(&layout).await?;
    }
    wait_converged(plans, &clients).await?;

    let file = ClusterFile {
        access_key: credentials.access_key.clone(),
        secret_key: credentials.secret_key.clone(),
        nodes: plans
            .iter()
            .zip(children.iter_mut())
            .map(|(plan, child)| NodeEntry {
                id: plan.id.clone(),
                pid: child.pid(),
                s3: plan.s3.to_string(),
                admin: plan.admin.to_string(),
                rpc: plan.rpc.to_string(),
                data_dir: plan.data_dir.display().to_string(),
                argv: plan.argv.clone(),
            })
            .collect(),
    };
    file.save(dir)
}

/// Waits until the node answers its admin API; fails if it exits first.
async fn wait_ready(id: &str, client: &AdminClient, child: &mut NodeProcess) -> Result<()> {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = child.exited()? {
            bail!(
                "node {id} exited with {status} before it was ready; see {}",
                child.log().display()
            );
        }
        match client.status().await {
            Ok(_) => return Ok(()),
            Err(err) if tokio::time::Instant::now() >= deadline => {
                bail!("node {id} not ready after {READY_TIMEOUT:?}: {err}")
            }
            Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
        }
    }
}

/// Waits until every node uses a layout (version ≥ 1) listing all of them, and sees all of
/// them Up.
async fn wait_converged(plans: &[NodePlan], clients: &[AdminClient]) -> Result<()> {
    let deadline = tokio::time::Instant::now() + CONVERGE_TIMEOUT;
    let mut last_problem;
    loop {
        last_problem = None;
        for (plan, client) in plans.iter().zip(clients) {
            let problem = match client.cluster_status().await {
                Err(err) => Some(err.to_string()),
                Ok(status) if status.layout_version == 0 => Some("no layout yet".to_owned()),
                Ok(status) => plans
                    .iter()
                    .find(|other| {
                        !status.nodes.iter().any(|node| {
                            node.id == other.id && node.in_layout && node.status == PeerLiveness::Up
                        })
                    })
                    .map(|other| format!("does not see {} Up in its layout", other.id)),
            };
            if let Some(problem) = problem {
                last_problem = Some(format!("node {}: {problem}", plan.id));
                break;
            }
        }
        let Some(problem) = last_problem else {
            return Ok(());
        };
        if tokio::time::Instant::now() >= deadline {
            bail!("the cluster did not converge within {CONVERGE_TIMEOUT:?}: {problem}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn announce(plans: &[NodePlan], credentials: &RootCredentials, dir: &Path) {
    println!("Mucura local cluster of {} nodes running", plans.len());
    for plan in plans {
        println!(
            "  {}: S3 http://{}  admin http://{}  RPC {}",
            plan.id, plan.s3, plan.admin, plan.rpc
        );
    }
    println!("  access key:   {}", credentials.access_key);
    println!("  secret key:   {}", credentials.secret_key);
    println!("  admin token:  {}", credentials.admin_token);
    println!(
        "  cluster file: {}",
        dir.join(files::CLUSTER_FILE).display()
    );
    println!("Ctrl-C stops every node.");
}

/// A loopback address with a port free right now, chosen below the kernel's ephemeral range.
///
/// The node binds it only once it has started, after its elders opened their connections to
/// each other; a port from the ephemeral range (what binding port 0 hands out) can meanwhile
/// become the local end of one of those connections, and the node then fails with "address
/// in use". Ports below the range are never picked for outgoing connections.
fn free_port() -> Result<SocketAddr> {
    let first_ephemeral = ephemeral_range_start().unwrap_or(32_768);
    let mut seed = [0u8; 2];
    for _ in 0..PORT_ATTEMPTS {
        getrandom::fill(&mut seed).map_err(|err| anyhow::anyhow!("no randomness: {err}"))?;
        let span = first_ephemeral.saturating_sub(LOWEST_PORT).max(1);
        let port = LOWEST_PORT + u16::from_le_bytes(seed) % span;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if port_is_free(addr) {
            return Ok(addr);
        }
    }
    // A crowded range: fall back to whatever the kernel hands out.
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    listener
        .local_addr()
        .context("finding a free loopback port")
}

/// Lowest port `free_port` picks (clear of the well-known and common service ports).
const LOWEST_PORT: u16 = 10_000;
/// Random ports tried before falling back to port 0.
const PORT_ATTEMPTS: usize = 64;

/// The first port of Linux's ephemeral range (`net.ipv4.ip_local_port_range`), if readable.
fn ephemeral_range_start() -> Option<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}

fn port_is_free(addr: SocketAddr) -> bool {
    TcpListener::bind(addr).is_ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_bindable_and_below_the_ephemeral_range() {
        let first_ephemeral = ephemeral_range_start().unwrap_or(32_768);
        for _ in 0..20 {
            let addr = free_port().unwrap();
            assert!(addr.ip().is_loopback());
            if first_ephemeral > LOWEST_PORT {
                assert!(
                    (LOWEST_PORT..first_ephemeral).contains(&addr.port()),
                    "{addr}"
                );
            }
            assert!(port_is_free(addr), "{addr}");
        }
    }
}
