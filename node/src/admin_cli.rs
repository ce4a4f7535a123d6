//! `mucura admin …`: operator commands over a node's admin API.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use ring::{Layout, NodeInfo};

use admin::client::{AdminClient, ClientError};
use http::StatusCode;

use crate::config::cluster::{parse_capacity, validate_node_id, DEFAULT_ZONE};

/// Connection to the node and the command to run.
#[derive(Args)]
pub struct AdminArgs {
    /// Admin API of the node to ask.
    #[arg(
        long,
        env = "MUCURA_ADMIN_URL",
        default_value = "http://127.0.0.1:9001"
    )]
    admin_url: String,
    /// Bearer token (`admin_token` in the data dir's root-credentials.toml).
    #[arg(long, env = "MUCURA_ADMIN_TOKEN")]
    token: String,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Show the node's status and, in a cluster, the cluster as it sees it (JSON:
    /// `{"node": …, "cluster": … or null}`).
    Status,
    /// The cluster as the node sees it.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Show or change the cluster layout (which nodes, zones, capacities).
    #[command(subcommand)]
    Layout(LayoutCommand),
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Node id, layout version, every node's liveness, pending hints and block handoffs,
    /// the last anti-entropy round and scrub (JSON).
    Status,
    /// Run an anti-entropy round on the node now and print its report (JSON).
    AntiEntropy,
    /// Re-hash the node's block files now, repair corrupt ones from replicas, and print the
    /// report (JSON).
    Scrub,
    /// Fetch now every referenced block the node owns but lacks (after a lost disk or lost
    /// handoffs), and print the report (JSON). Runs by itself every anti-entropy interval.
    Resync,
    /// Show which nodes own an object's metadata and blocks and which hold a copy (JSON).
    Locate {
        /// The object's bucket.
        #[arg(long)]
        bucket: String,
        /// The object's key.
        #[arg(long)]
        key: String,
    },
}

#[derive(Subcommand)]
enum LayoutCommand {
    /// Print the layout the node uses (JSON, the format `apply` reads).
    Show,
    /// Apply a layout from a JSON file; its version must be the current version + 1.
    Apply {
        /// The layout file.
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Add one node to the current layout and apply it as the next version.
    AddNode {
        /// The new node's id (its `--node-id`).
        #[arg(long)]
        id: String,
        /// The new node's RPC address (its `--rpc-listen`).
        #[arg(long)]
        rpc: std::net::SocketAddr,
        /// Its failure domain.
        #[arg(long, default_value = DEFAULT_ZONE)]
        zone: String,
        /// Its capacity: bytes (`500G`) or a relative weight.
        #[arg(long, default_value = "1")]
        capacity: String,
        /// New replication factor (default: keep the current one).
        #[arg(long)]
        replication: Option<usize>,
    },
}

/// Runs one admin command, printing its result on stdout.
pub async fn run(args: AdminArgs) -> Result<()> {
    let client = AdminClient::new(args.admin_url, args.token);
    match args.command {
        AdminCommand::Status => {
            // One answer for operators: the node, and the cluster as it sees it when it is in
            // one (a single node answers the cluster routes with 404).
            let node = client.status().await?;
            let cluster = match client.cluster_status().await {
                Ok(cluster) => Some(cluster),
                Err(ClientError::Api { status, .. }) if status == StatusCode::NOT_FOUND => None,
                Err(err) => return Err(err.into()),
            };
            print_json(&serde_json::json!({ "node": node, "cluster": cluster }))
        }
        AdminCommand::Cluster(ClusterCommand::Status) => {
            print_json(&client.cluster_status().await?)
        }
        AdminCommand::Cluster(ClusterCommand::AntiEntropy) => {
            print_json(&client.run_anti_entropy().await?)
        }
        AdminCommand::Cluster(ClusterCommand::Scrub) => print_json(&client.run_scrub().await?),
        AdminCommand::Cluster(ClusterCommand::Resync) => print_json(&client.run_resync().await?),
        AdminCommand::Cluster(ClusterCommand::Locate { bucket, key }) => {
            print_json(&client.locate(&bucket, &key).await?)
        }
        AdminCommand::Layout(LayoutCommand::Show) => print_json(&client.cluster_layout().await?),
        AdminCommand::Layout(LayoutCommand::Apply { file }) => {
            let text = std::fs::read(&file)
                .with_context(|| format!("reading the layout file {}", file.display()))?;
            let layout: Layout = serde_json::from_slice(&text)
                .with_context(|| format!("parsing the layout file {}", file.display()))?;
            layout.validate().context("the layout is invalid")?;
            client.apply_cluster_layout(&layout).await?;
            println!("applied layout version {}", layout.version);
            Ok(())
        }
        AdminCommand::Layout(LayoutCommand::AddNode {
            id,
            rpc,
            zone,
            capacity,
            replication,
        }) => {
            let node = NodeInfo {
                id: validate_node_id(&id)?,
                rpc_addr: rpc.to_string(),
                zone,
                capacity: parse_capacity(&capacity)?,
            };
            let current = client.cluster_layout().await?;
            let next = with_node(current, node, replication)?;
            client.apply_cluster_layout(&next).await?;
            println!(
                "applied layout version {} ({} nodes, replication {})",
                next.version,
                next.nodes.len(),
                next.replication
            );
            Ok(())
        }
    }
}

/// The layout after `current` with `node` added: next version, replication changed if asked.
fn with_node(mut current: Layout, node: NodeInfo, replication: Option<usize>) -> Result<Layout> {
    if current.node(&node.id).is_some() {
        bail!(
            "node {} is already in layout version {}",
            node.id,
            current.version
        );
    }
    if let Some(existing) = current.nodes.iter().find(|n| n.rpc_addr == node.rpc_addr) {
        bail!(
            "node {} already uses RPC address {}",
            existing.id,
            node.rpc_addr
        );
    }
    current.nodes.push(node);
    current.version += 1;
    if let Some(replication) = replication {
        current.replication = replication;
    }
    current
        .validate()
        .context("the new layout would be invalid")?;
    Ok(current)
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::NodeId;

    fn node(id: &str, port: u16) -> NodeInfo {
        NodeInfo {
            id: NodeId::new(id),
            rpc_addr: format!("127.0.0.1:{port}"),
            zone: "z".into(),
            capacity: 1,
        }
    }

    #[test]
    fn adding_a_node_bumps_the_version_and_refuses_duplicates() {
        let empty = Layout {
            version: 0,
            nodes: Vec::new(),
            replication: 1,
        };
        let one = with_node(empty, node("a", 1), None).unwrap();
        assert_eq!((one.version, one.nodes.len()), (1, 1));
        let two = with_node(one.clone(), node("b", 2), Some(2)).unwrap();
        assert_eq!((two.version, two.replication), (2, 2));
        assert!(with_node(two.clone(), node("a", 3), None).is_err());
        assert!(with_node(two.clone(), node("c", 2), None).is_err());
        assert!(with_node(two, node("c", 3), Some(4)).is_err());
    }
}
