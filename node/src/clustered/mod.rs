//! Cluster mode of `mucura serve`: the control plane of one node.
//!
//! [`ClusterNode::start`] brings the services up in dependency order: the RPC server (bound
//! first, because peers must learn the address it actually got) → membership (this node's
//! [`NodeInfo`] with that address, the seeds, the persisted layout) → the [`TableSystem`]
//! with the membership view as its liveness → the hint-replay worker → the data plane
//! ([`services`]: block replication with its handoff worker and scrub, anti-entropy with its
//! scheduled rounds). Every layout version
//! the node learns is written to `DATA_DIR/cluster/layout.json` and loaded at the next start.
//! [`ClusterNode::shutdown`] stops them in reverse order.
//!
//! The S3 data path does not use any of this yet: each node serves its own local store.

pub mod backend;
pub mod files;
pub mod services;
mod status;
mod transport;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use ring::{Layout, NodeInfo};
use tokio::task::JoinHandle;

use crate::cluster::membership::{
    ApplyLayoutError, Membership, MembershipHandle, MembershipSetup, MembershipView,
    RpcGossipTransport,
};
use crate::cluster::wire::{NodeRequest, NodeResponse, NodeRpcHandler, RpcObserver};
use crate::cluster::{HintReplayWorker, SystemConfig, TableSystem};
use crate::config::ClusterConfig;
use crate::rpc::{RpcClient, RpcConfig, RpcServer};
use crate::store::blocks::BlockStore;
use crate::store::kv::{KvStore, SledKv};
use admin::api::ClusterApiError;

pub use self::services::ClusterOptions;
use self::services::{DataPlane, DataPlaneSetup};

use self::files::{LayoutFile, CLUSTER_DIR};
use self::transport::AuthFailureLogger;

/// How often held hints are offered to their owners. Ten seconds bounds how long a returning
/// node lags behind while keeping a pass (one sled scan) rare.
const HINT_REPLAY_INTERVAL: Duration = Duration::from_secs(10);

/// The running cluster services of one node.
pub struct ClusterNode {
    local: NodeInfo,
    /// Taken by [`ClusterNode::shutdown`].
    rpc: Mutex<Option<RpcServer>>,
    membership: MembershipHandle,
    view: MembershipView,
    tables: Arc<TableSystem>,
    kv: Arc<dyn KvStore>,
    /// Taken (and so stopped) by [`ClusterNode::shutdown`].
    hints: Mutex<Option<HintReplayWorker>>,
    data: DataPlane,
    layout_file: Arc<LayoutFile>,
    layout_saver: JoinHandle<()>,
    /// Answers the RPC port; kept to attach the metrics observer once they exist.
    handler: Arc<NodeRpcHandler>,
}

impl ClusterNode {
    /// Starts the cluster services of the node whose data lives in `data_dir`; `block_store`
    /// is the local store's block directory, which block replication shares (see
    /// [`services`]).
    pub async fn start(
        config: &ClusterConfig,
        data_dir: &Path,
        block_store: Arc<BlockStore>,
        options: ClusterOptions,
    ) -> Result<ClusterNode> {
        let cluster_dir = data_dir.join(CLUSTER_DIR);
        std::fs::create_dir_all(&cluster_dir)
            .with_context(|| format!("creating {}", cluster_dir.display()))?;
        let node_id = files::resolve_node_id(&cluster_dir, config.node_id.clone())?;
        let layout_file = Arc::new(LayoutFile::new(&cluster_dir));
        let stored_layout = layout_file.load()?;

        let handler = NodeRpcHandler::new();
        let rpc = RpcServer::bind(
            config.rpc_listen,
            config.secret.clone(),
            Arc::clone(&handler),
            RpcConfig::default(),
        )
        .await
        .context("starting the RPC server")?;
        let rpc_addr = rpc.local_addr();
        if rpc_addr.ip().is_unspecified() {
            tracing::warn!(
                %rpc_addr,
                "the RPC address is a wildcard: peers cannot reach this node at it; \
                 give --rpc-listen the address peers should use"
            );
        }
        let local = NodeInfo {
            id: node_id.clone(),
            rpc_addr: rpc_addr.to_string(),
            zone: config.zone.clone(),
            capacity: config.capacity,
        };

        // One client (one connection per peer) carries every protocol this node sends.
        let client: RpcClient<NodeRequest, NodeResponse> = RpcClient::new(
            config.secret.clone(),
            node_id.0.clone(),
            RpcConfig::default(),
        )
        .context("creating the RPC client")?;
        let gossip = RpcGossipTransport::new(client.clone(), tokio::runtime::Handle::current());
        let membership = Membership::start(
            MembershipSetup::new(local.clone(), config.seeds.clone(), stored_layout),
            Arc::new(AuthFailureLogger::new(gossip)),
        )
        .await
        .context("starting membership")?;
        handler.attach_membership(membership.clone());
        let view = membership.view();

        let kv_dir = cluster_dir.join("tables");
        let kv: Arc<dyn KvStore> = Arc::new(
            SledKv::open(&kv_dir)
                .with_context(|| format!("opening the table store {}", kv_dir.display()))?,
        );
        let tables = TableSystem::with_transport(
            Arc::new(view.clone()),
            Arc::clone(&kv),
            Arc::new(client.clone()),
            SystemConfig::default(),
        );
        handler.attach_tables(Arc::clone(&tables));
        let hints = HintReplayWorker::spawn(Arc::clone(&tables), HINT_REPLAY_INTERVAL);
        let data = DataPlane::start(DataPlaneSetup {
            tables: Arc::clone(&tables),
            liveness: Arc::new(view.clone()),
            client,
            kv: Arc::clone(&kv),
            block_store,
            handler: Arc::clone(&handler),
            layouts: view.subscribe(),
            options,
        })
        .context("starting block replication and anti-entropy")?;
        let layout_saver = tokio::spawn(save_layouts(view.clone(), Arc::clone(&layout_file)));
        Ok(ClusterNode {
            local,
            rpc: Mutex::new(Some(rpc)),
            membership,
            view,
            tables,
            kv,
            hints: Mutex::new(Some(hints)),
            data,
            layout_file,
            layout_saver,
            handler,
        })
    }

    /// Reports every request the RPC port answers to `observer` (the node's metrics).
    pub fn attach_rpc_observer(&self, observer: Arc<dyn RpcObserver>) {
        self.handler.attach_observer(observer);
    }

    /// This node as announced to peers.
    pub fn local(&self) -> &NodeInfo {
        &self.local
    }

    /// The replicated-table system (for the S3 backend's tables).
    // The accessors below are for the cluster S3 backend, which is not wired in yet.
    pub fn tables(&self) -> &Arc<TableSystem> {
        &self.tables
    }

    /// Block replication of this node.
    pub fn blocks(&self) -> &Arc<crate::cluster::blocks::BlockService> {
        &self.data.blocks
    }

    /// The block-reference table (registered with anti-entropy).
    #[allow(dead_code)]
    pub fn block_refs(&self) -> &crate::cluster::blocks::BlockRefTable {
        &self.data.block_refs
    }

    /// The tombstone purger of this node; add further sharded tables to it.
    pub fn tombstone_purger(&self) -> &crate::cluster::tombstones::TombstonePurger {
        &self.data.purger
    }

    /// Anti-entropy of this node; register further tables with it.
    pub fn anti_entropy(&self) -> &Arc<crate::cluster::AntiEntropy> {
        &self.data.anti_entropy
    }

    /// The rebalancer of this node: its progress ([`Rebalancer::status`]) and further
    /// sharded tables to move on layout changes ([`Rebalancer::add_table`]).
    ///
    /// [`Rebalancer::status`]: crate::cluster::rebalance::Rebalancer::status
    /// [`Rebalancer::add_table`]: crate::cluster::rebalance::Rebalancer::add_table
    pub fn rebalancer(&self) -> &Arc<crate::cluster::rebalance::Rebalancer> {
        &self.data.rebalancer
    }

    /// The layout this node uses.
    pub fn layout(&self) -> Layout {
        Layout::clone(&self.view.layout())
    }

    /// Applies an operator's layout (version must be current + 1), saves it and lets gossip
    /// spread it.
    pub async fn apply_layout(&self, layout: Layout) -> Result<(), ClusterApiError> {
        self.membership
            .apply_layout(layout.clone())
            .await
            .map_err(|err| match err {
                ApplyLayoutError::WrongVersion { .. } => ClusterApiError::Conflict(err.to_string()),
                ApplyLayoutError::Invalid(_) => ClusterApiError::Invalid(err.to_string()),
                ApplyLayoutError::RingBuildFailed | ApplyLayoutError::Stopped => {
                    ClusterApiError::Internal(err.to_string())
                }
            })?;
        // The watcher saves it too; saving here means the operator's answer implies it is
        // on disk.
        let file = Arc::clone(&self.layout_file);
        tokio::task::spawn_blocking(move || file.save(&layout))
            .await
            .map_err(|err| ClusterApiError::Internal(err.to_string()))?
            .map_err(|err| ClusterApiError::Internal(format!("{err:#}")))
    }

    /// Stops the services in reverse start order and flushes the table store. Later calls
    /// do nothing more than flush again.
    pub async fn shutdown(&self) {
        self.layout_saver.abort();
        self.data.stop();
        drop(take(&self.hints));
        self.membership.shutdown().await;
        if let Some(rpc) = take(&self.rpc) {
            rpc.shutdown().await;
        }
        if let Err(err) = self.kv.flush().await {
            tracing::warn!("flushing the table store: {err}");
        }
    }
}

/// Takes what `slot` holds; the lock is held only for the swap.
fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take()
}

/// Saves every new layout version membership installs, until aborted.
async fn save_layouts(view: MembershipView, file: Arc<LayoutFile>) {
    let mut layouts = view.subscribe();
    // The layout in use at start may be newer than the file (none saved yet): save it too.
    let mut layout = view.layout();
    loop {
        let saving = Arc::clone(&file);
        let version = layout.version;
        if version > 0 {
            match tokio::task::spawn_blocking(move || saving.save(&layout)).await {
                Ok(Ok(())) => tracing::debug!(version, "layout saved"),
                Ok(Err(err)) => tracing::error!(version, "cannot save the layout: {err:#}"),
                Err(err) => tracing::error!(version, "layout save task failed: {err}"),
            }
        }
        if layouts.changed().await.is_err() {
            return;
        }
        layout = Arc::clone(&layouts.borrow_and_update());
    }
}
