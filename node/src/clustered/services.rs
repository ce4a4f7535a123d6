//! The data-plane services of a clustered node: block replication (with its handoff worker
//! and a periodic scrub) and anti-entropy (with its scheduled rounds), all speaking through
//! the node's one RPC client and answered on its one RPC port.
//!
//! # The block directory
//!
//! The [`BlockService`] works on the same `DATA_DIR/blocks` directory as the local store,
//! through the store's own [`BlockStore`] (shared, not opened twice), so the file count the
//! store reports includes replicas and both write through one temp directory. Because that
//! directory now also holds replicas referenced only by other nodes' records, the node opens
//! its store with [`crate::store::StoreConfig::sweep_unreferenced_blocks`] off in cluster
//! mode and instead runs the cluster's block GC ([`BlockService::collect_garbage`]) every
//! [`ClusterOptions::block_gc_interval`]: it deletes a block only once the block-reference
//! table says no object version uses it (the S3 path records references on every commit
//! and releases them on overwrite, delete and multipart completion) and both that change
//! and the file are older than [`ClusterOptions::block_gc_grace`], which covers uploads
//! whose blocks are written before their references.
//!
//! Handoff records live in the cluster's table store (`cluster/tables`), beside the hints.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ring::Layout;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::antientropy::{AntiEntropy, AntiEntropyConfig, AntiEntropyWorker};
use crate::cluster::blocks::refs::BlockGcReport;
use crate::cluster::blocks::refs::{BlockRefTable, BlockRefsSchema};
use crate::cluster::blocks::{BlockConfig, BlockHandoffWorker, BlockService, ScrubReport};
use crate::cluster::liveness::Liveness;
use crate::cluster::rebalance::{RebalanceWorker, Rebalancer};
use crate::cluster::schema::Replication;
use crate::cluster::wire::{NodeAeTransport, NodeRequest, NodeResponse, NodeRpcHandler};
use crate::cluster::TableSystem;
use crate::rpc::RpcClient;
use crate::store::blocks::BlockStore;
use crate::store::kv::KvStore;

/// How often held blocks are offered to their owners (as for table hints).
const BLOCK_HANDOFF_INTERVAL: Duration = Duration::from_secs(10);
/// Longest wait for one anti-entropy call: a responder scans its copy of a table to answer
/// `Open`, so allow far more than a single-key call.
const ANTI_ENTROPY_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause before retrying a rebalance pass that could not reach every new owner.
const REBALANCE_RETRY: Duration = Duration::from_secs(10);

/// Tunables of the clustered node's background services.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Pause between scheduled anti-entropy rounds.
    pub anti_entropy_interval: Duration,
    /// Pause between block scrubs (the first runs one interval after start).
    pub scrub_interval: Duration,
    /// Pause between block garbage collections (the first runs one interval after start).
    pub block_gc_interval: Duration,
    /// How long an unreferenced block is kept, from its last reference change and its file's
    /// last write, before GC deletes it; must exceed the longest upload.
    pub block_gc_grace: Duration,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            anti_entropy_interval: AntiEntropyConfig::default().interval,
            // Daily: a scrub reads every block file (throttled by `BlockConfig::scrub_pause`),
            // and reads and read repair catch most rot in between.
            scrub_interval: Duration::from_secs(24 * 3600),
            block_gc_interval: Duration::from_secs(3600),
            block_gc_grace: Duration::from_secs(3600),
        }
    }
}

/// The latest scrub's outcome.
#[derive(Debug, Clone)]
pub(crate) struct ScrubRecord {
    pub(crate) finished_at: SystemTime,
    /// The report, or why the pass failed as a whole.
    pub(crate) outcome: Result<ScrubReport, String>,
}

/// The latest block GC's outcome.
#[derive(Debug, Clone)]
pub(crate) struct BlockGcRecord {
    pub(crate) finished_at: SystemTime,
    /// The report, or why the pass failed as a whole.
    pub(crate) outcome: Result<BlockGcReport, String>,
}

/// Block replication and anti-entropy of one node, and their workers.
pub(crate) struct DataPlane {
    pub(crate) blocks: Arc<BlockService>,
    pub(crate) block_refs: BlockRefTable,
    pub(crate) anti_entropy: Arc<AntiEntropy>,
    /// Moves sharded tables and blocks after layout changes; more tables are added to it
    /// with [`Rebalancer::add_table`].
    pub(crate) rebalancer: Arc<Rebalancer>,
    /// The workers; taken (and so stopped) by [`DataPlane::stop`].
    workers: Mutex<Option<Workers>>,
    pub(crate) last_scrub: Arc<Mutex<Option<ScrubRecord>>>,
    last_block_gc: Arc<Mutex<Option<BlockGcRecord>>>,
}

struct Workers {
    _handoffs: BlockHandoffWorker,
    _anti_entropy: AntiEntropyWorker,
    _rebalance: RebalanceWorker,
    scrub: JoinHandle<()>,
    block_gc: JoinHandle<()>,
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.scrub.abort();
        self.block_gc.abort();
    }
}

/// What [`DataPlane::start`] needs from the node.
pub(crate) struct DataPlaneSetup {
    pub(crate) tables: Arc<TableSystem>,
    pub(crate) liveness: Arc<dyn Liveness>,
    pub(crate) client: RpcClient<NodeRequest, NodeResponse>,
    pub(crate) kv: Arc<dyn KvStore>,
    pub(crate) block_store: Arc<BlockStore>,
    pub(crate) handler: Arc<NodeRpcHandler>,
    /// Layout versions as the membership view reports them (its `subscribe`).
    pub(crate) layouts: watch::Receiver<Arc<Layout>>,
    pub(crate) options: ClusterOptions,
}

impl DataPlane {
    /// Creates the services, attaches them to the RPC handler and starts their workers.
    pub(crate) fn start(setup: DataPlaneSetup) -> anyhow::Result<DataPlane> {
        let block_config = BlockConfig::default();
        let blocks = BlockService::with_transport(
            Arc::clone(&setup.liveness),
            setup.block_store,
            setup.kv,
            Arc::new(setup.client.clone()),
            block_config.clone(),
        );
        setup.handler.attach_blocks(Arc::clone(&blocks));
        // References are placed like their blocks, with the same N and W.
        let refs_replication = Replication::Sharded {
            n: block_config.replicas,
            write_quorum: block_config.write_quorum,
            read_quorum: block_config.write_quorum,
        };
        let block_refs = BlockRefTable::new(Arc::clone(&setup.tables), refs_replication)?;

        let anti_entropy = AntiEntropy::new(
            Arc::clone(&setup.tables),
            Arc::new(NodeAeTransport::new(
                setup.client,
                setup.liveness,
                ANTI_ENTROPY_CALL_TIMEOUT,
            )),
            AntiEntropyConfig {
                interval: setup.options.anti_entropy_interval,
                ..AntiEntropyConfig::default()
            },
        );
        anti_entropy.register::<BlockRefsSchema>(refs_replication);
        setup.handler.attach_anti_entropy(Arc::clone(&anti_entropy));
        let rebalancer = Rebalancer::new(
            Arc::clone(&setup.tables),
            Some(Arc::clone(&blocks)),
            block_config.replicas,
        );
        rebalancer.add_table::<BlockRefsSchema>(block_config.replicas);

        let last_scrub = Arc::new(Mutex::new(None));
        let last_block_gc = Arc::new(Mutex::new(None));
        let workers = Workers {
            _handoffs: BlockHandoffWorker::spawn(Arc::clone(&blocks), BLOCK_HANDOFF_INTERVAL),
            _anti_entropy: AntiEntropyWorker::spawn(Arc::clone(&anti_entropy)),
            _rebalance: RebalanceWorker::spawn(
                Arc::clone(&rebalancer),
                setup.layouts,
                REBALANCE_RETRY,
            ),
            scrub: tokio::spawn(scrub_periodically(
                Arc::clone(&blocks),
                setup.options.scrub_interval,
                Arc::clone(&last_scrub),
            )),
            block_gc: tokio::spawn(collect_garbage_periodically(
                Arc::clone(&blocks),
                block_refs.clone(),
                BlockGcSchedule {
                    interval: setup.options.block_gc_interval,
                    grace: setup.options.block_gc_grace,
                },
                Arc::clone(&last_block_gc),
            )),
        };
        Ok(DataPlane {
            blocks,
            block_refs,
            anti_entropy,
            rebalancer,
            workers: Mutex::new(Some(workers)),
            last_scrub,
            last_block_gc,
        })
    }

    /// Stops the workers; later calls do nothing.
    pub(crate) fn stop(&self) {
        drop(
            self.workers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take(),
        );
    }

    /// The latest scrub's outcome, if any ran.
    pub(crate) fn last_scrub(&self) -> Option<ScrubRecord> {
        self.last_scrub
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The latest block GC's outcome, if any ran.
    pub(crate) fn last_block_gc(&self) -> Option<BlockGcRecord> {
        self.last_block_gc
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// Scrubs the local block files every `interval`, the first time one interval after start
/// (a node just started has better things to do with its disk), until aborted.
async fn scrub_periodically(
    blocks: Arc<BlockService>,
    interval: Duration,
    last: Arc<Mutex<Option<ScrubRecord>>>,
) {
    loop {
        tokio::time::sleep(interval).await;
        let outcome = blocks.scrub_local().await.map_err(|err| err.to_string());
        match &outcome {
            Ok(report) => tracing::info!(
                checked = report.checked,
                corrupt = report.corrupt,
                repaired = report.repaired,
                "block scrub finished"
            ),
            Err(err) => tracing::warn!("block scrub failed: {err}"),
        }
        *last.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(ScrubRecord {
            finished_at: SystemTime::now(),
            outcome,
        });
    }
}

/// When block GC runs and what it spares.
struct BlockGcSchedule {
    interval: Duration,
    grace: Duration,
}

/// Collects unreferenced blocks every `schedule.interval`, the first time one interval
/// after start, until aborted.
async fn collect_garbage_periodically(
    blocks: Arc<BlockService>,
    refs: BlockRefTable,
    schedule: BlockGcSchedule,
    last: Arc<Mutex<Option<BlockGcRecord>>>,
) {
    loop {
        tokio::time::sleep(schedule.interval).await;
        let outcome = blocks
            .collect_garbage(&refs, schedule.grace)
            .await
            .map_err(|err| err.to_string());
        match &outcome {
            Ok(report) => tracing::info!(
                owned = report.owned,
                removed = report.removed,
                in_grace = report.in_grace,
                unreadable = report.unreadable,
                "block GC finished"
            ),
            Err(err) => tracing::warn!("block GC failed: {err}"),
        }
        *last.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(BlockGcRecord {
            finished_at: SystemTime::now(),
            outcome,
        });
    }
}
