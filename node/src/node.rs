//! A running node: opens storage, starts the S3 and admin listeners, the garbage collector,
//! the metrics and the access log, and stops them all on a signal. In cluster mode it also
//! starts the cluster control plane ([`crate::clustered`]) before announcing itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use admin::api::{
    AccountStatus, ClusterApiError, ClusterStatus, CreateKeyRequest, CreateUserRequest, DeletedKey,
    DeletedUser, IdentityApiError, KeyAnswer, KeyList, NewAccessKey, UserAnswer, UserList,
};
use anyhow::{Context, Result};
use s3api::backend::S3Backend;
use s3api::service::{S3Config, S3Service};
use tokio::sync::watch;

use crate::cluster::{Replication, Table, TableSchema};
use crate::clustered::backend::schemas::{
    BucketsSchema, ObjectsSchema, PartsSchema, UploadsSchema,
};
use crate::clustered::backend::ClusterBackend;
use crate::clustered::{ClusterNode, ClusterOptions};
use crate::config::NodeConfig;
use crate::credentials::{KeyRing, Origin, RootCredentials};
use crate::grid::listener::GridListener;
use crate::identity::{Identities, IdentityAdmin, IdentityStore};
use crate::observe::access_log::{
    self, AccessLogConfig, AccessLogCounters, AdminRecord, AuditSink, ADMIN_TOKEN_ACTOR,
};
use crate::observe::metrics::{self, Metrics};
use crate::observe::NodeObserver;
use crate::server;
use crate::store::{Store, StoreConfig, StoreStats};
use crate::usage::admin::usage_answer;
use crate::usage::local::LocalObjectCounters;
use crate::usage::reports::{ClusterUsage, ReportsSchema};
use crate::usage::traffic::{TrafficCounters, TrafficObserver};
use crate::usage::{QuotaGuard, UsageView};
use admin::usage::{UsageAnswer, UsageQuery};

/// How often unreferenced blocks are looked for. Collection itself waits for the store's grace
/// period, so this only bounds how long garbage lingers.
const GC_INTERVAL: Duration = Duration::from_secs(600);

/// Runs a node until SIGINT or SIGTERM; `cluster_options` tunes the cluster services in
/// cluster mode.
pub async fn run(config: NodeConfig, cluster_options: ClusterOptions) -> Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let (root, origin) = RootCredentials::load_or_create(&config.data_dir)?;
    let mut store_config = StoreConfig::new(config.data_dir.clone());
    store_config.node_id = config.node_id;
    // In a cluster the block directory also holds other nodes' replicas, which no local
    // record references: the local sweep would delete them (see `clustered::services`).
    store_config.sweep_unreferenced_blocks = config.cluster.is_none();
    let store = Store::open(store_config)
        .with_context(|| format!("opening storage in {}", config.data_dir.display()))?;

    let s3_listener = server::bind(config.s3_listen).await?;
    let admin_listener = server::bind(config.admin_listen).await?;
    let s3_addr = s3_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    let cluster = match &config.cluster {
        Some(cluster_config) => Some(Arc::new(
            ClusterNode::start(
                cluster_config,
                &config.data_dir,
                store.block_store(),
                cluster_options,
            )
            .await?,
        )),
        None => None,
    };
    // The S3 URL grid clients are told to use with the credentials they get.
    let public_s3_url = config
        .grid
        .as_ref()
        .and_then(|grid| grid.public_s3_url.clone())
        .unwrap_or_else(|| format!("http://{s3_addr}"));
    let grid_listener = match &config.grid {
        Some(grid) => Some(GridListener::bind(grid, public_s3_url).await?),
        None => None,
    };
    announce(&config, &root, origin, s3_addr, admin_addr);
    if let Some(grid) = &grid_listener {
        println!("  grid (X.509):  https://{}", grid.local_addr()?);
    }
    if let Some(cluster) = &cluster {
        announce_cluster(cluster);
    }

    let metrics = Arc::new(Metrics::new().context("registering metrics")?);
    if cluster.is_some() {
        metrics
            .enable_cluster()
            .context("registering cluster metrics")?;
    }
    if let Some(cluster) = &cluster {
        cluster.attach_rpc_observer(metrics.clone());
    }
    let (access_log, access_log_writer) = access_log::start(
        AccessLogConfig::new(&config.data_dir),
        &config.node_id.to_string(),
        AccessLogCounters {
            dropped: metrics.access_log_dropped(),
            write_errors: metrics.access_log_write_errors(),
        },
    )
    .context("starting the access log writer")?;
    // Requests by class and bytes in/out per bucket, for usage accounting.
    let traffic = Arc::new(TrafficCounters::open(&config.data_dir));
    let observer: Arc<dyn s3api::observe::RequestObserver> = Arc::new(TrafficObserver::new(
        Arc::new(NodeObserver::new(metrics.clone(), access_log.clone())),
        traffic.clone(),
    ));

    let s3_config = S3Config {
        region: config.region.clone(),
        root_domain: config.root_domain.clone(),
    };
    // Users and their keys: replicated tables in a cluster, the local engine otherwise.
    let identities = match (&cluster, &config.cluster) {
        (Some(cluster), Some(cluster_config)) => Identities::open_cluster(
            cluster.tables(),
            cluster.anti_entropy(),
            &cluster_config.secret,
        ),
        _ => Identities::open_single(&config.data_dir),
    }
    .context("opening the users and access keys")?;
    let certificate_sessions = config
        .grid
        .as_ref()
        .map(|grid| grid.sessions)
        .unwrap_or_default();
    let keys = Arc::new(
        KeyRing::new(&root).with_user_keys(
            identities
                .user_keys()
                .with_certificate_policy(certificate_sessions),
        ),
    );
    // One admin side for the admin API and grid registration, so one node's identity
    // writes stay serialised.
    let identity_admin =
        Arc::new(identities.admin(Arc::new(access_log.clone()), root.access_key.clone()));
    // Quotas are the bucket owner's, checked against the exact counters of a single node
    // or the cluster's published usage (see `crate::usage`).
    let quota = Arc::new(QuotaGuard::new(identities.store()));
    // The cluster's S3 backend and usage accounting (in cluster mode), and the usage view.
    type ClusterS3 = Option<(ClusterBackend, Arc<ClusterUsage>)>;
    let (cluster_s3, usage_view): (ClusterS3, Arc<dyn UsageView>) = match &cluster {
        Some(cluster) => {
            let backend = cluster_backend(cluster)?;
            let usage = cluster_usage(cluster, Arc::clone(&traffic))?;
            backend.set_quota(Arc::clone(&quota), usage.clone());
            (Some((backend, usage.clone())), usage)
        }
        None => {
            store.set_quota_guard(Arc::clone(&quota));
            (None, Arc::new(store.clone()))
        }
    };
    let status = Arc::new(NodeStatusSource {
        store: store.clone(),
        config: config.clone(),
        s3_addr,
        started: Instant::now(),
        metrics,
        cluster: cluster.clone(),
        identity: identity_admin.clone(),
        audit: access_log,
        usage: UsageSource {
            view: usage_view,
            users: identities.store(),
            exact: cluster.is_none(),
            cluster: cluster_s3.as_ref().map(|(_, usage)| usage.clone()),
            local_traffic: cluster.is_none().then(|| traffic.clone()),
        },
    });
    let admin_token: Arc<str> = Arc::from(root.admin_token.as_str());

    let (stop_tx, stop_rx) = watch::channel(false);
    let grid_task;
    let s3_task = match cluster_s3 {
        // In a cluster, S3 reads and writes go through the replicated tables and blocks.
        Some((backend, usage)) => {
            tokio::spawn(usage.run(stop_rx.clone()));
            let s3 = S3Service::new(Arc::new(backend), keys, s3_config).with_observer(observer);
            grid_task = spawn_grid(grid_listener, &s3, &identity_admin, &stop_rx);
            spawn_s3(s3_listener, s3, stop_rx.clone())
        }
        None => {
            let s3 =
                S3Service::new(Arc::new(store.clone()), keys, s3_config).with_observer(observer);
            grid_task = spawn_grid(grid_listener, &s3, &identity_admin, &stop_rx);
            spawn_s3(s3_listener, s3, stop_rx.clone())
        }
    };
    let admin_task = tokio::spawn(server::serve(
        admin_listener,
        move |request| {
            let status = status.clone();
            let token = admin_token.clone();
            async move { admin::server::handle(&*status, &token, request).await }
        },
        stop_rx.clone(),
    ));
    let traffic_task = tokio::spawn(traffic.run(stop_rx.clone()));
    let gc_task = tokio::spawn(collect_garbage_periodically(store.clone(), stop_rx));

    server::shutdown_signal().await?;
    tracing::info!("shutting down: finishing in-flight requests");
    let _ = stop_tx.send(true);
    s3_task.await.context("S3 listener task")??;
    admin_task.await.context("admin listener task")??;
    if let Some(grid_task) = grid_task {
        grid_task.await.context("grid listener task")??;
    }
    gc_task.await.context("garbage collector task")?;
    traffic_task.await.context("request counters task")?;
    if let Some(cluster) = &cluster {
        cluster.shutdown().await;
    }
    access_log_writer.close().await;
    store.flush().await;
    tracing::info!("stopped");
    Ok(())
}

fn announce(
    config: &NodeConfig,
    root: &RootCredentials,
    origin: Origin,
    s3_addr: std::net::SocketAddr,
    admin_addr: std::net::SocketAddr,
) {
    println!("Mucura node serving");
    println!(
        "  S3 endpoint:   http://{s3_addr}  (region {})",
        config.region
    );
    println!("  admin API:     http://{admin_addr}  (GET /health, /v1/status, /metrics)");
    println!("  data dir:      {}", config.data_dir.display());
    println!("  access key:    {}", root.access_key);
    match origin {
        Origin::Environment => println!("  secret key:    (from MUCURA_ROOT_SECRET_KEY)"),
        Origin::Stored | Origin::Generated => {
            println!("  secret key:    {}", root.secret_key);
        }
    }
    println!(
        "  admin token:   see {}",
        config
            .data_dir
            .join(crate::credentials::CREDENTIALS_FILE)
            .display()
    );
}

fn announce_cluster(cluster: &ClusterNode) {
    let local = cluster.local();
    let layout = cluster.layout();
    println!(
        "  cluster mode:  node {} (zone {}, capacity {})",
        local.id, local.zone, local.capacity
    );
    println!("  RPC endpoint:  {}", local.rpc_addr);
    println!(
        "  layout:        version {} with {} nodes{}",
        layout.version,
        layout.nodes.len(),
        if layout.version == 0 {
            " (apply one with `mucura admin layout …`)"
        } else {
            ""
        }
    );
}

/// The S3 backend of a cluster node: objects, uploads and parts sharded 3/2/2 over the ring,
/// buckets copied to every node, bodies in replicated blocks; every table is also registered
/// with anti-entropy.
fn cluster_backend(cluster: &ClusterNode) -> Result<ClusterBackend> {
    let replication = Replication::DEFAULT_SHARDED;
    let backend = ClusterBackend::new(
        Arc::clone(cluster.tables()),
        Arc::clone(cluster.blocks()),
        replication,
    )
    .context("registering the S3 tables")?;
    let anti_entropy = cluster.anti_entropy();
    anti_entropy.register::<BucketsSchema>(Replication::FullCopy);
    anti_entropy.register::<ObjectsSchema>(replication);
    anti_entropy.register::<UploadsSchema>(replication);
    anti_entropy.register::<PartsSchema>(replication);
    // Sharded tables also move to their new owners on layout changes (the full-copy bucket
    // table is every node's already; anti-entropy fills a newcomer's copy).
    if let Replication::Sharded { n, .. } = replication {
        let rebalancer = cluster.rebalancer();
        rebalancer.add_table::<ObjectsSchema>(n);
        rebalancer.add_table::<UploadsSchema>(n);
        rebalancer.add_table::<PartsSchema>(n);
        // Deleted objects and ended uploads leave tombstones; parts entries and buckets
        // are not purged (see `cluster::tombstones`).
        let purger = cluster.tombstone_purger();
        purger.add_table(
            Table::<ObjectsSchema>::new(Arc::clone(cluster.tables()), replication)
                .context("registering the objects table for tombstone purges")?,
        );
        purger.add_table(
            Table::<UploadsSchema>::new(Arc::clone(cluster.tables()), replication)
                .context("registering the uploads table for tombstone purges")?,
        );
    }
    Ok(backend)
}

/// The cluster's usage accounting: counters fed by every change of this node's copy of the
/// objects table (installed before the first count, which the worker runs at its start),
/// and the full-copy table every node publishes its figures into.
fn cluster_usage(
    cluster: &ClusterNode,
    traffic: Arc<TrafficCounters>,
) -> Result<Arc<ClusterUsage>> {
    let tables = cluster.tables();
    let replicas = match Replication::DEFAULT_SHARDED {
        Replication::Sharded { n, .. } => n,
        Replication::FullCopy => usize::MAX,
    };
    let counters = Arc::new(LocalObjectCounters::new(
        tables.liveness().local_id(),
        replicas,
        tables.liveness().ring(),
    ));
    tables
        .local()
        .observe(ObjectsSchema::TABLE_NAME, counters.clone());
    let usage = ClusterUsage::new(Arc::clone(tables), counters, traffic)
        .context("registering the usage reports table")?;
    cluster
        .anti_entropy()
        .register::<ReportsSchema>(Replication::FullCopy);
    Ok(Arc::new(usage))
}

/// Serves the grid listener, if there is one, until `stop` turns true.
fn spawn_grid<B: S3Backend>(
    listener: Option<GridListener>,
    s3: &S3Service<B, KeyRing>,
    registrar: &Arc<IdentityAdmin>,
    stop: &watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<Result<()>>> {
    let listener = listener?;
    Some(tokio::spawn(listener.serve(
        s3.clone(),
        registrar.clone(),
        stop.clone(),
    )))
}

/// Serves S3 over `backend` on `listener` until `stop` turns true.
fn spawn_s3<B: S3Backend>(
    listener: tokio::net::TcpListener,
    s3: S3Service<B, KeyRing>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Result<()>> {
    tokio::spawn(server::serve(
        listener,
        move |request| {
            let s3 = s3.clone();
            async move { s3.handle(request).await }
        },
        stop,
    ))
}

async fn collect_garbage_periodically(store: Store, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(GC_INTERVAL) => {}
            _ = stop.changed() => return,
        }
        match store.collect_garbage().await {
            Ok(report) => tracing::info!(?report, "block garbage collection"),
            Err(err) => tracing::warn!("block garbage collection failed: {err}"),
        }
    }
}

/// Answers the admin API's status questions from the store and the config.
struct NodeStatusSource {
    store: Store,
    config: NodeConfig,
    s3_addr: std::net::SocketAddr,
    started: Instant,
    metrics: Arc<Metrics>,
    /// The cluster control plane, in cluster mode.
    cluster: Option<Arc<ClusterNode>>,
    /// Users and access keys (`/v1/users…`, `/v1/keys…`).
    identity: Arc<IdentityAdmin>,
    /// Where admin actions are logged (the access log).
    audit: access_log::AccessLog,
    /// Usage per user and bucket (`/v1/usage`).
    usage: UsageSource,
}

/// The node's storage figures. In a cluster the local store holds no objects: objects and
/// bytes are what this node's replicas of the objects table account for (the usage
/// counters), and buckets are the live buckets of its full copy.
fn storage_stats(store: &Store, cluster: Option<&ClusterUsage>) -> StoreStats {
    let mut stats = store.stats();
    if let Some(usage) = cluster {
        let held = usage.counters().total();
        stats.objects = held.objects_u64();
        stats.bytes = held.bytes_u64();
        match usage.bucket_count() {
            Ok(buckets) => stats.buckets = buckets,
            Err(err) => tracing::warn!("counting buckets: {err}"),
        }
    }
    stats
}

/// What `GET /v1/usage` reads.
struct UsageSource {
    view: Arc<dyn UsageView>,
    users: Arc<dyn IdentityStore>,
    /// Whether the figures are exact (a single node).
    exact: bool,
    /// The cluster's accounting, in cluster mode (for this node's own figures in metrics).
    cluster: Option<Arc<ClusterUsage>>,
    /// A single node's request counts (a cluster's come with the reports).
    local_traffic: Option<Arc<TrafficCounters>>,
}

impl admin::server::AdminBackend for NodeStatusSource {
    async fn status(&self) -> Result<admin::api::NodeStatus, String> {
        let stats = storage_stats(&self.store, self.usage.cluster.as_deref());
        Ok(admin::api::NodeStatus {
            node_id: self.config.node_id.to_string(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_seconds: self.started.elapsed().as_secs(),
            data_dir: self.config.data_dir.display().to_string(),
            s3_listen: self.s3_addr.to_string(),
            storage: admin::api::StorageStatus {
                buckets: stats.buckets,
                objects: stats.objects,
                object_bytes: stats.bytes,
                blocks: stats.blocks,
                metadata_bytes: stats.meta_size_on_disk,
            },
        })
    }

    async fn metrics(&self) -> Result<String, String> {
        if let Some(cluster) = &self.cluster {
            // A status that cannot be read leaves the cluster figures of the last scrape.
            match cluster.status().await {
                Ok(status) => self.metrics.refresh_cluster(&status),
                Err(err) => tracing::warn!("cluster status for metrics: {err}"),
            }
        }
        let store = self.store.clone();
        let data_dir = self.config.data_dir.clone();
        let metrics = self.metrics.clone();
        let cluster_usage = self.usage.cluster.clone();
        // Counting buckets, sizing the database and statvfs touch the disk: off the runtime.
        tokio::task::spawn_blocking(move || {
            let disk = metrics::disk_space(&data_dir)
                .inspect_err(|err| tracing::warn!("statvfs {}: {err}", data_dir.display()))
                .ok();
            let stats = storage_stats(&store, cluster_usage.as_deref());
            metrics.refresh_gauges(&stats, &data_dir, disk);
            metrics.render().map_err(|err| err.to_string())
        })
        .await
        .map_err(|err| err.to_string())?
    }

    async fn cluster_status(&self) -> Result<ClusterStatus, ClusterApiError> {
        let cluster = self.cluster.as_ref().ok_or(ClusterApiError::NotClustered)?;
        cluster.status().await
    }

    async fn run_anti_entropy(&self) -> Result<admin::api::AntiEntropyRound, ClusterApiError> {
        let cluster = self.cluster.as_ref().ok_or(ClusterApiError::NotClustered)?;
        Ok(cluster.run_anti_entropy().await)
    }

    async fn run_scrub(&self) -> Result<admin::api::ScrubSummary, ClusterApiError> {
        let cluster = self.cluster.as_ref().ok_or(ClusterApiError::NotClustered)?;
        cluster.run_scrub().await
    }

    async fn run_resync(&self) -> Result<admin::api::ResyncSummary, ClusterApiError> {
        let cluster = self.cluster.as_ref().ok_or(ClusterApiError::NotClustered)?;
        cluster.run_resync().await
    }

    async fn locate_object(
        &self,
        bucket: String,
        key: String,
    ) -> Result<admin::api::LocateReport, ClusterApiError> {
        let cluster = self.cluster.as_ref().ok_or(ClusterApiError::NotClustered)?;
        cluster.locate_object(bucket, key).await
    }

    async fn cluster_layout(&self) -> Result<ring::Layout, ClusterApiError> {
        let cluster = self.cluster.as_ref().ok_or(ClusterApiError::NotClustered)?;
        Ok(cluster.layout())
    }

    async fn apply_cluster_layout(&self, layout: ring::Layout) -> Result<(), ClusterApiError> {
        let cluster = self.cluster.as_ref().ok_or(ClusterApiError::NotClustered)?;
        let version = layout.version.to_string();
        let outcome = cluster.apply_layout(layout).await;
        let (status, error_code) = match &outcome {
            Ok(()) => (200, None),
            Err(ClusterApiError::NotClustered) => (404, Some("not_clustered")),
            Err(ClusterApiError::Conflict(_)) => (409, Some("conflict")),
            Err(ClusterApiError::Invalid(_)) => (400, Some("invalid")),
            Err(ClusterApiError::Internal(_)) => (500, Some("internal")),
        };
        self.audit.record_admin(&AdminRecord {
            operation: "admin.layout.apply",
            actor: ADMIN_TOKEN_ACTOR,
            target: &version,
            user: None,
            status,
            error_code,
        });
        outcome
    }

    async fn create_user(
        &self,
        request: CreateUserRequest,
    ) -> Result<UserAnswer, IdentityApiError> {
        self.identity.create_user(request).await
    }

    async fn list_users(&self) -> Result<UserList, IdentityApiError> {
        self.identity.list_users()
    }

    async fn show_user(&self, id: String) -> Result<UserAnswer, IdentityApiError> {
        self.identity.show_user(&id)
    }

    async fn update_user(
        &self,
        id: String,
        request: admin::api::UpdateUserRequest,
    ) -> Result<UserAnswer, IdentityApiError> {
        self.identity.update_user(&id, request).await
    }

    async fn set_user_status(
        &self,
        id: String,
        status: AccountStatus,
    ) -> Result<UserAnswer, IdentityApiError> {
        self.identity.set_user_status(&id, status).await
    }

    async fn revoke_sessions(&self, id: String) -> Result<UserAnswer, IdentityApiError> {
        self.identity.revoke_sessions(&id).await
    }

    async fn delete_user(&self, id: String) -> Result<DeletedUser, IdentityApiError> {
        self.identity.delete_user(&id).await
    }

    async fn create_key(
        &self,
        user: String,
        request: CreateKeyRequest,
    ) -> Result<NewAccessKey, IdentityApiError> {
        self.identity.create_key(&user, request).await
    }

    async fn list_keys(&self, user: Option<String>) -> Result<KeyList, IdentityApiError> {
        self.identity.list_keys(user.as_deref())
    }

    async fn set_key_status(
        &self,
        key: String,
        status: AccountStatus,
    ) -> Result<KeyAnswer, IdentityApiError> {
        self.identity.set_key_status(&key, status).await
    }

    async fn rotate_key(&self, key: String) -> Result<NewAccessKey, IdentityApiError> {
        self.identity.rotate_key(&key).await
    }

    async fn delete_key(&self, key: String) -> Result<DeletedKey, IdentityApiError> {
        self.identity.delete_key(&key).await
    }

    async fn usage(&self, query: UsageQuery) -> Result<UsageAnswer, IdentityApiError> {
        let (view, users, exact) = (
            Arc::clone(&self.usage.view),
            Arc::clone(&self.usage.users),
            self.usage.exact,
        );
        let traffic = self.usage.local_traffic.clone();
        // Scans the bucket list (and, in a cluster, the usage reports): off the runtime.
        tokio::task::spawn_blocking(move || {
            usage_answer(&*view, traffic.as_deref(), &*users, &query, exact)
        })
        .await
        .map_err(|err| IdentityApiError::Internal(err.to_string()))?
    }
}
