//! A running node: opens storage, starts the S3 and admin listeners, the garbage collector,
//! the metrics and the access log, and stops them all on a signal. In cluster mode it also
//! starts the cluster control plane ([`crate::clustered`]) before announcing itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use admin::api::{ClusterApiError, ClusterStatus};
use anyhow::{Context, Result};
use s3api::service::{S3Config, S3Service};
use tokio::sync::watch;

use crate::clustered::ClusterNode;
use crate::config::NodeConfig;
use crate::credentials::{KeyRing, Origin, RootCredentials};
use crate::observe::access_log::{self, AccessLogConfig, AccessLogCounters};
use crate::observe::metrics::{self, Metrics};
use crate::observe::NodeObserver;
use crate::server;
use crate::store::{Store, StoreConfig};

/// How often unreferenced blocks are looked for. Collection itself waits for the store's grace
/// period, so this only bounds how long garbage lingers.
const GC_INTERVAL: Duration = Duration::from_secs(600);

/// Runs a node until SIGINT or SIGTERM.
pub async fn run(config: NodeConfig) -> Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let (root, origin) = RootCredentials::load_or_create(&config.data_dir)?;
    let mut store_config = StoreConfig::new(config.data_dir.clone());
    store_config.node_id = config.node_id;
    let store = Store::open(store_config)
        .with_context(|| format!("opening storage in {}", config.data_dir.display()))?;

    let s3_listener = server::bind(config.s3_listen).await?;
    let admin_listener = server::bind(config.admin_listen).await?;
    let s3_addr = s3_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    let cluster = match &config.cluster {
        Some(cluster_config) => Some(Arc::new(
            ClusterNode::start(cluster_config, &config.data_dir).await?,
        )),
        None => None,
    };
    announce(&config, &root, origin, s3_addr, admin_addr);
    if let Some(cluster) = &cluster {
        announce_cluster(cluster);
    }

    let metrics = Arc::new(Metrics::new().context("registering metrics")?);
    let (access_log, access_log_writer) = access_log::start(
        AccessLogConfig::new(&config.data_dir),
        &config.node_id.to_string(),
        AccessLogCounters {
            dropped: metrics.access_log_dropped(),
            write_errors: metrics.access_log_write_errors(),
        },
    )
    .context("starting the access log writer")?;
    let observer = Arc::new(NodeObserver::new(metrics.clone(), access_log));

    let s3 = S3Service::new(
        Arc::new(store.clone()),
        Arc::new(KeyRing::new(&root)),
        S3Config {
            region: config.region.clone(),
            root_domain: config.root_domain.clone(),
            ..S3Config::default()
        },
    )
    .with_observer(observer);
    let status = Arc::new(NodeStatusSource {
        store: store.clone(),
        config: config.clone(),
        s3_addr,
        started: Instant::now(),
        metrics,
        cluster: cluster.clone(),
    });
    let admin_token: Arc<str> = Arc::from(root.admin_token.as_str());

    let (stop_tx, stop_rx) = watch::channel(false);
    let s3_task = tokio::spawn(server::serve(
        s3_listener,
        move |request| {
            let s3 = s3.clone();
            async move { s3.handle(request).await }
        },
        stop_rx.clone(),
    ));
    let admin_task = tokio::spawn(server::serve(
        admin_listener,
        move |request| {
            let status = status.clone();
            let token = admin_token.clone();
            async move { admin::server::handle(&*status, &token, request).await }
        },
        stop_rx.clone(),
    ));
    let gc_task = tokio::spawn(collect_garbage_periodically(store.clone(), stop_rx));

    server::shutdown_signal().await?;
    tracing::info!("shutting down: finishing in-flight requests");
    let _ = stop_tx.send(true);
    s3_task.await.context("S3 listener task")??;
    admin_task.await.context("admin listener task")??;
    gc_task.await.context("garbage collector task")?;
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
    println!(
        "  NOTE: S3 data is not yet replicated in this build: each node serves its own local \
         store; only membership and the cluster layout are shared."
    );
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
}

impl admin::server::AdminBackend for NodeStatusSource {
    async fn status(&self) -> Result<admin::api::NodeStatus, String> {
        let stats = self.store.stats();
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
        let store = self.store.clone();
        let data_dir = self.config.data_dir.clone();
        let metrics = self.metrics.clone();
        // Counting buckets, sizing the database and statvfs touch the disk: off the runtime.
        tokio::task::spawn_blocking(move || {
            let disk = metrics::disk_space(&data_dir)
                .inspect_err(|err| tracing::warn!("statvfs {}: {err}", data_dir.display()))
                .ok();
            metrics.refresh_gauges(&store.stats(), &data_dir, disk);
            metrics.render().map_err(|err| err.to_string())
        })
        .await
        .map_err(|err| err.to_string())?
    }

    async fn cluster_status(&self) -> Result<ClusterStatus, ClusterApiError> {
        let cluster = self.cluster.clone().ok_or(ClusterApiError::NotClustered)?;
        // Counting hints scans the table store: off the runtime.
        tokio::task::spawn_blocking(move || cluster.status())
            .await
            .map_err(|err| ClusterApiError::Internal(err.to_string()))?
    }

    async fn cluster_layout(&self) -> Result<ring::Layout, ClusterApiError> {
        let cluster = self.cluster.as_ref().ok_or(ClusterApiError::NotClustered)?;
        Ok(cluster.layout())
    }

    async fn apply_cluster_layout(&self, layout: ring::Layout) -> Result<(), ClusterApiError> {
        let cluster = self.cluster.as_ref().ok_or(ClusterApiError::NotClustered)?;
        cluster.apply_layout(layout).await
    }
}
