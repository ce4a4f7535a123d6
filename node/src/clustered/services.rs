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
use crate::cluster::blocks::{
    BlockConfig, BlockHandoffWorker, BlockService, ResyncReport, ScrubReport,
};
use crate::cluster::error::TableError;
use crate::cluster::liveness::Liveness;
use crate::cluster::rebalance::{RebalanceWorker, Rebalancer};
use crate::cluster::schema::Replication;
use crate::cluster::tombstones::{self, PurgeReport, TablePurge, TombstonePurger};
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
    /// Pause between tombstone purges of the sharded tables.
    pub tombstone_purge_interval: Duration,
    /// How old a deletion must be before its tombstone may be purged (on every replica at
    /// once); a node down longer than this must be wiped and re-added.
    pub tombstone_grace: Duration,
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
            tombstone_purge_interval: Duration::from_secs(3600),
            tombstone_grace: tombstones::DEFAULT_GRACE,
        }
    }
}

/// The outcome of the latest run of a background pass (scrub, block GC, block resync).
#[derive(Debug, Clone)]
pub(crate) struct PassRecord<R> {
    pub(crate) finished_at: SystemTime,
    /// The report, or why the pass failed as a whole.
    pub(crate) outcome: Result<R, String>,
}

/// The latest scrub's outcome.
pub(crate) type ScrubRecord = PassRecord<ScrubReport>;
/// The latest block GC's outcome.
pub(crate) type BlockGcRecord = PassRecord<BlockGcReport>;
/// The latest block resync's outcome.
pub(crate) type ResyncRecord = PassRecord<ResyncReport>;
/// The latest tombstone purge's outcome, table by table.
pub(crate) type PurgeRecord = PassRecord<Vec<(&'static str, PurgeReport)>>;

/// Where a background pass leaves its latest outcome, shared by its worker and the admin
/// API (which can also run the pass on demand). Cheap to clone.
pub(crate) struct LastPass<R>(Arc<Mutex<Option<PassRecord<R>>>>);

impl<R> Clone for LastPass<R> {
    fn clone(&self) -> Self {
        LastPass(Arc::clone(&self.0))
    }
}

impl<R: Clone> LastPass<R> {
    fn new() -> Self {
        LastPass(Arc::new(Mutex::new(None)))
    }

    /// The latest outcome, if the pass ever ran.
    pub(crate) fn get(&self) -> Option<PassRecord<R>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Records `outcome` as the latest, finished now, and returns the record.
    pub(crate) fn record(&self, outcome: Result<R, String>) -> PassRecord<R> {
        let record = PassRecord {
            finished_at: SystemTime::now(),
            outcome,
        };
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(record.clone());
        record
    }
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
    pub(crate) last_scrub: LastPass<ScrubReport>,
    pub(crate) last_block_gc: LastPass<BlockGcReport>,
    pub(crate) last_resync: LastPass<ResyncReport>,
    /// The sharded tables whose old tombstones this node purges; the S3 tables are added
    /// by the node.
    pub(crate) purger: Arc<TombstonePurger>,
    pub(crate) last_purge: LastPass<Vec<(&'static str, PurgeReport)>>,
}

struct Workers {
    _handoffs: BlockHandoffWorker,
    _anti_entropy: AntiEntropyWorker,
    _rebalance: RebalanceWorker,
    scrub: JoinHandle<()>,
    block_gc: JoinHandle<()>,
    resync: JoinHandle<()>,
    purge: JoinHandle<()>,
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.scrub.abort();
        self.block_gc.abort();
        self.resync.abort();
        self.purge.abort();
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

        let last_scrub = LastPass::new();
        let last_block_gc = LastPass::new();
        let last_resync = LastPass::new();
        let last_purge = LastPass::new();
        let purger = Arc::new(TombstonePurger::default());
        purger.add_table(block_refs.table().clone());
        let workers = Workers {
            _handoffs: BlockHandoffWorker::spawn(Arc::clone(&blocks), BLOCK_HANDOFF_INTERVAL),
            _anti_entropy: AntiEntropyWorker::spawn(Arc::clone(&anti_entropy)),
            _rebalance: RebalanceWorker::spawn(
                Arc::clone(&rebalancer),
                setup.layouts,
                REBALANCE_RETRY,
            ),
            scrub: {
                let blocks = Arc::clone(&blocks);
                spawn_periodic(
                    "block scrub",
                    setup.options.scrub_interval,
                    last_scrub.clone(),
                    move || {
                        let blocks = Arc::clone(&blocks);
                        async move { blocks.scrub_local().await }
                    },
                )
            },
            block_gc: {
                let (blocks, refs) = (Arc::clone(&blocks), block_refs.clone());
                let grace = setup.options.block_gc_grace;
                spawn_periodic(
                    "block GC",
                    setup.options.block_gc_interval,
                    last_block_gc.clone(),
                    move || {
                        let (blocks, refs) = (Arc::clone(&blocks), refs.clone());
                        async move { blocks.collect_garbage(&refs, grace).await }
                    },
                )
            },
            // Resync follows anti-entropy's rhythm: anti-entropy brings every owner the
            // references, resync then brings it the blocks they name.
            resync: {
                let (blocks, refs) = (Arc::clone(&blocks), block_refs.clone());
                spawn_periodic(
                    "block resync",
                    setup.options.anti_entropy_interval,
                    last_resync.clone(),
                    move || {
                        let (blocks, refs) = (Arc::clone(&blocks), refs.clone());
                        async move { blocks.resync_missing(&refs).await }
                    },
                )
            },
            purge: {
                let purger = Arc::clone(&purger);
                let grace = setup.options.tombstone_grace;
                spawn_periodic(
                    "tombstone purge",
                    setup.options.tombstone_purge_interval,
                    last_purge.clone(),
                    move || {
                        let purger = Arc::clone(&purger);
                        async move { purge_all_tables(&purger, grace).await }
                    },
                )
            },
        };
        Ok(DataPlane {
            blocks,
            block_refs,
            anti_entropy,
            rebalancer,
            workers: Mutex::new(Some(workers)),
            last_scrub,
            last_block_gc,
            last_resync,
            purger,
            last_purge,
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
}

/// One purge pass over every table of `purger`: the per-table reports, or the first
/// table's failure (the others still ran).
pub(crate) async fn purge_all_tables(
    purger: &TombstonePurger,
    grace: Duration,
) -> Result<Vec<(&'static str, PurgeReport)>, TableError> {
    let mut reports = Vec::new();
    let mut first_failure = None;
    for TablePurge { table, outcome } in purger.purge_all(grace).await {
        match outcome {
            Ok(report) => reports.push((table, report)),
            Err(err) => {
                tracing::warn!(table, "tombstone purge failed: {err}");
                first_failure.get_or_insert(err);
            }
        }
    }
    match first_failure {
        Some(err) => Err(err),
        None => Ok(reports),
    }
}

/// Runs `pass` every `interval`, the first time one interval after start (a node just
/// started has better things to do with its disk), recording each outcome in `last`, until
/// the task is aborted.
fn spawn_periodic<R, E, F, Fut>(
    what: &'static str,
    interval: Duration,
    last: LastPass<R>,
    mut pass: F,
) -> JoinHandle<()>
where
    R: Clone + std::fmt::Debug + Send + 'static,
    E: std::fmt::Display,
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<R, E>> + Send,
{
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let outcome = pass().await.map_err(|err| err.to_string());
            match &outcome {
                Ok(report) => tracing::info!(?report, "{what} finished"),
                Err(err) => tracing::warn!("{what} failed: {err}"),
            }
            last.record(outcome);
        }
    })
}
