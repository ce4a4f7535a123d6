//! `mucura admin …`: operator commands over a node's admin API.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use ring::{Layout, NodeInfo};

use admin::api::{AccountStatus, CreateKeyRequest, CreateUserRequest, UpdateUserRequest};
use admin::client::{AdminClient, ClientError};
use admin::usage::{UsageAnswer, UsageQuery};
use http::StatusCode;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

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
    /// Create, list, show, update, disable, enable and delete users (JSON).
    #[command(subcommand)]
    User(UserCommand),
    /// Create, list, disable, enable, rotate and delete access keys (JSON).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Objects and bytes stored per user and bucket, with the users' quotas (a table, or
    /// JSON with --json). In a cluster the figures trail writes by a few seconds.
    Usage {
        /// Only this user (the owner of the buckets counted).
        #[arg(long)]
        user: Option<String>,
        /// Only this bucket.
        #[arg(long)]
        bucket: Option<String>,
        /// Print the API's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user (`{"user": …}`); it signs requests once it has a key.
    Create {
        /// The user id: 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit.
        #[arg(long)]
        id: String,
        /// A name for humans (default: the id).
        #[arg(long)]
        display_name: Option<String>,
        /// The X.509 subject DN of the user's certificate.
        #[arg(long)]
        subject_dn: Option<String>,
        /// Most bytes the user may store.
        #[arg(long)]
        quota_bytes: Option<u64>,
        /// Most objects the user may store.
        #[arg(long)]
        quota_objects: Option<u64>,
        /// When the user stops being accepted (RFC 3339, e.g. 2027-01-31T00:00:00Z).
        #[arg(long, value_parser = parse_rfc3339_millis)]
        expires: Option<u64>,
    },
    /// List the users (`{"users": […]}`).
    List,
    /// Show a user and its keys (`{"user": …, "keys": […]}`).
    Show {
        /// The user id.
        #[arg(long)]
        id: String,
    },
    /// Change a user's name, subject DN, quotas or expiry (`{"user": …}`); what is not
    /// named stays as it is.
    Update(UpdateUserArgs),
    /// Refuse every request signed with the user's keys until enabled again.
    Disable {
        /// The user id.
        #[arg(long)]
        id: String,
    },
    /// Accept the user's keys again.
    Enable {
        /// The user id.
        #[arg(long)]
        id: String,
    },
    /// End every temporary credential (STS session) the user holds now; its keys stay.
    RevokeSessions {
        /// The user id.
        #[arg(long)]
        id: String,
    },
    /// Delete the user and its keys; its buckets and objects stay, and its id is never
    /// reused.
    Delete {
        /// The user id.
        #[arg(long)]
        id: String,
    },
}

/// The options of `user update`: each attribute may be set, or (the optional ones)
/// cleared with the matching `--clear-…`/`--no-…` flag.
#[derive(Args)]
struct UpdateUserArgs {
    /// The user id.
    #[arg(long)]
    id: String,
    /// A new name for humans.
    #[arg(long)]
    display_name: Option<String>,
    /// A new X.509 subject DN.
    #[arg(long, conflicts_with = "clear_subject_dn")]
    subject_dn: Option<String>,
    /// Remove the subject DN.
    #[arg(long)]
    clear_subject_dn: bool,
    /// A new byte quota.
    #[arg(long, conflicts_with = "no_quota_bytes")]
    quota_bytes: Option<u64>,
    /// Lift the byte quota.
    #[arg(long)]
    no_quota_bytes: bool,
    /// A new object quota.
    #[arg(long, conflicts_with = "no_quota_objects")]
    quota_objects: Option<u64>,
    /// Lift the object quota.
    #[arg(long)]
    no_quota_objects: bool,
    /// A new expiry, in the future (RFC 3339).
    #[arg(long, value_parser = parse_rfc3339_millis, conflicts_with = "no_expiry")]
    expires: Option<u64>,
    /// Make the user never expire.
    #[arg(long)]
    no_expiry: bool,
}

impl UpdateUserArgs {
    /// The API request: a value sets, a clearing flag sends `null`, neither leaves the
    /// field out.
    fn request(self) -> (String, UpdateUserRequest) {
        fn set_or_clear<T>(value: Option<T>, clear: bool) -> Option<Option<T>> {
            if clear {
                Some(None)
            } else {
                value.map(Some)
            }
        }
        let request = UpdateUserRequest {
            display_name: self.display_name,
            subject_dn: set_or_clear(self.subject_dn, self.clear_subject_dn),
            quota_bytes: set_or_clear(self.quota_bytes, self.no_quota_bytes),
            quota_objects: set_or_clear(self.quota_objects, self.no_quota_objects),
            expires_at_unix_ms: set_or_clear(self.expires, self.no_expiry),
        };
        (self.id, request)
    }
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create an access key for a user and print it with its secret, which is never shown
    /// again.
    Create {
        /// The user the key acts for.
        #[arg(long)]
        user: String,
        /// When the key stops being accepted (RFC 3339).
        #[arg(long, value_parser = parse_rfc3339_millis)]
        expires: Option<u64>,
    },
    /// List access keys, never their secrets (`{"keys": […]}`).
    List {
        /// Only this user's keys.
        #[arg(long)]
        user: Option<String>,
    },
    /// Refuse requests signed with the key until enabled again.
    Disable {
        /// The access key id.
        #[arg(long)]
        key: String,
    },
    /// Accept the key again.
    Enable {
        /// The access key id.
        #[arg(long)]
        key: String,
    },
    /// Create a new key for the same user, disable the old one, and print the new pair.
    Rotate {
        /// The access key id to replace.
        #[arg(long)]
        key: String,
    },
    /// Delete the key.
    Delete {
        /// The access key id.
        #[arg(long)]
        key: String,
    },
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
        AdminCommand::Usage { user, bucket, json } => {
            let answer = client.usage(&UsageQuery { user, bucket }).await?;
            if json {
                print_json(&answer)
            } else {
                print!("{}", usage_table(&answer));
                Ok(())
            }
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
        AdminCommand::User(command) => run_user(&client, command).await,
        AdminCommand::Key(command) => run_key(&client, command).await,
    }
}

/// Carries out a `user` command.
async fn run_user(client: &AdminClient, command: UserCommand) -> Result<()> {
    match command {
        UserCommand::Create {
            id,
            display_name,
            subject_dn,
            quota_bytes,
            quota_objects,
            expires,
        } => {
            let request = CreateUserRequest {
                id,
                display_name,
                subject_dn,
                quota_bytes,
                quota_objects,
                expires_at_unix_ms: expires,
            };
            print_json(&client.create_user(&request).await?)
        }
        UserCommand::List => print_json(&client.list_users().await?),
        UserCommand::Show { id } => print_json(&client.show_user(&id).await?),
        UserCommand::Update(args) => {
            let (id, request) = args.request();
            print_json(&client.update_user(&id, &request).await?)
        }
        UserCommand::Disable { id } => {
            print_json(&client.set_user_status(&id, AccountStatus::Disabled).await?)
        }
        UserCommand::Enable { id } => {
            print_json(&client.set_user_status(&id, AccountStatus::Active).await?)
        }
        UserCommand::RevokeSessions { id } => print_json(&client.revoke_sessions(&id).await?),
        UserCommand::Delete { id } => print_json(&client.delete_user(&id).await?),
    }
}

/// Carries out a `key` command.
async fn run_key(client: &AdminClient, command: KeyCommand) -> Result<()> {
    match command {
        KeyCommand::Create { user, expires } => {
            let request = CreateKeyRequest {
                expires_at_unix_ms: expires,
            };
            print_json(&client.create_key(&user, &request).await?)
        }
        KeyCommand::List { user } => print_json(&client.list_keys(user.as_deref()).await?),
        KeyCommand::Disable { key } => {
            print_json(&client.set_key_status(&key, AccountStatus::Disabled).await?)
        }
        KeyCommand::Enable { key } => {
            print_json(&client.set_key_status(&key, AccountStatus::Active).await?)
        }
        KeyCommand::Rotate { key } => print_json(&client.rotate_key(&key).await?),
        KeyCommand::Delete { key } => print_json(&client.delete_key(&key).await?),
    }
}

/// An RFC 3339 time as Unix milliseconds (times before 1970 are refused).
fn parse_rfc3339_millis(text: &str) -> Result<u64, String> {
    let time = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|err| format!("not an RFC 3339 time such as 2027-01-31T00:00:00Z: {err}"))?;
    u64::try_from(time.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| "times before 1970 are not accepted".to_owned())
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

/// `mucura admin usage` as a table: one line per user, then one per bucket of theirs
/// (requests are summed over their classes; `--json` has them by class).
fn usage_table(answer: &UsageAnswer) -> String {
    let limit = |quota: Option<u64>| quota.map_or_else(|| "-".to_owned(), |q| q.to_string());
    let requests =
        |by_class: &std::collections::BTreeMap<String, u64>| -> u64 { by_class.values().sum() };
    let mut out = format!(
        "{:<24} {:<32} {:>10} {:>14} {:>12} {:>14} {:>10} {:>14} {:>14}\n",
        "USER",
        "BUCKET",
        "OBJECTS",
        "BYTES",
        "QUOTA_OBJ",
        "QUOTA_BYTES",
        "REQUESTS",
        "BYTES_IN",
        "BYTES_OUT"
    );
    for user in &answer.users {
        out.push_str(&format!(
            "{:<24} {:<32} {:>10} {:>14} {:>12} {:>14} {:>10} {:>14} {:>14}\n",
            user.user,
            "*",
            user.objects,
            user.bytes,
            limit(user.quota_objects),
            limit(user.quota_bytes),
            requests(&user.requests),
            user.bytes_in,
            user.bytes_out,
        ));
        for bucket in &user.buckets {
            out.push_str(&format!(
                "{:<24} {:<32} {:>10} {:>14} {:>12} {:>14} {:>10} {:>14} {:>14}\n",
                "",
                bucket.bucket,
                bucket.objects,
                bucket.bytes,
                "",
                "",
                requests(&bucket.requests),
                bucket.bytes_in,
                bucket.bytes_out,
            ));
        }
    }
    if !answer.exact {
        out.push_str("(cluster figures: eventually consistent, a few seconds behind writes)\n");
    }
    out
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

    /// `user update`'s options alone, parsed as the command line would be.
    #[derive(clap::Parser)]
    struct UpdateLine {
        #[command(flatten)]
        args: UpdateUserArgs,
    }

    fn update(line: &[&str]) -> Result<(String, UpdateUserRequest), clap::Error> {
        use clap::Parser;
        let line = std::iter::once("update").chain(line.iter().copied());
        UpdateLine::try_parse_from(line).map(|parsed| parsed.args.request())
    }

    #[test]
    fn update_flags_set_clear_or_leave_each_field() {
        let (id, request) = update(&[
            "--id",
            "al",
            "--quota-bytes",
            "10",
            "--no-quota-objects",
            "--clear-subject-dn",
            "--expires",
            "2027-01-31T00:00:00Z",
        ])
        .unwrap();
        assert_eq!(id, "al");
        assert_eq!(
            request,
            UpdateUserRequest {
                display_name: None,
                subject_dn: Some(None),
                quota_bytes: Some(Some(10)),
                quota_objects: Some(None),
                expires_at_unix_ms: Some(Some(1_801_353_600_000)),
            }
        );
        let (_, request) = update(&["--id", "al", "--display-name", "Al", "--no-expiry"]).unwrap();
        assert_eq!(request.display_name.as_deref(), Some("Al"));
        assert_eq!(request.expires_at_unix_ms, Some(None));
        assert_eq!(request.quota_bytes, None);
        // Setting and clearing the same field is a contradiction, not a guess.
        assert!(update(&["--id", "al", "--quota-bytes", "1", "--no-quota-bytes"]).is_err());
        assert!(update(&["--id", "al", "--subject-dn", "CN=a", "--clear-subject-dn"]).is_err());
        assert!(update(&[
            "--id",
            "al",
            "--expires",
            "2027-01-31T00:00:00Z",
            "--no-expiry"
        ])
        .is_err());
        assert!(update(&["--quota-bytes", "1"]).is_err());
    }

    #[test]
    fn expiry_times_are_rfc3339_in_milliseconds() {
        assert_eq!(
            parse_rfc3339_millis("2027-01-31T00:00:00.250Z").unwrap(),
            1_801_353_600_250
        );
        assert_eq!(
            parse_rfc3339_millis("1970-01-01T01:00:00+01:00").unwrap(),
            0
        );
        assert!(parse_rfc3339_millis("1969-12-31T23:59:59Z").is_err());
        assert!(parse_rfc3339_millis("tomorrow").is_err());
    }
}
