//! [`TableSystem`]: one per node. It owns the local copy of every replicated table, the
//! registry of table types, and the RPC client; it answers peers' table requests (it is the
//! node's [`RpcHandler`] for the table protocol) and sends this node's requests, short-cutting
//! the network when the target is this node.
//!
//! Outgoing calls go through a [`TableTransport`]. [`TableSystem::new`] makes its own
//! `RpcClient<TableRequest, TableResponse>` (a server speaking only the table protocol, as in
//! the tests); the running node uses [`TableSystem::with_transport`] with its shared
//! `RpcClient<NodeRequest, NodeResponse>` (see [`super::wire`]), so tables, gossip and the
//! other protocols share one port and one connection per peer.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use ring::{NodeId, Ring};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::TableError;
use super::liveness::Liveness;
use super::local::{HintRecord, LocalStore};
use super::protocol::{TableRequest, TableResponse};
use super::schema::EntryMerger;
use super::table::TableCounters;
use crate::rpc::{Caller, ClusterSecret, Payload, RpcClient, RpcConfig, RpcError, RpcHandler};
use crate::store::kv::KvStore;

/// Tunables of the table system.
#[derive(Debug, Clone)]
pub struct SystemConfig {
    /// Longest wait for one replica's answer (connecting included). A replica slower than
    /// this counts as failed for the operation and its write goes to a hint.
    pub call_timeout: Duration,
    /// Connection settings of the RPC client.
    pub rpc: RpcConfig,
    /// One read in this many asks every replica (for read repair) instead of just a read
    /// quorum; 1 asks every replica every time. Reads whose quorum disagrees always go on to
    /// ask every replica, and anti-entropy covers the rest.
    pub full_read_every: u64,
    /// How long a read waits for its first replicas before also asking the next one (a slow
    /// or frozen replica not yet known to be down).
    pub speculative_read_after: Duration,
}

impl Default for SystemConfig {
    fn default() -> Self {
        SystemConfig {
            // A metadata merge is one sled write and one shared fsync: milliseconds on a
            // healthy node. Two seconds tolerates a loaded disk without letting one stuck
            // replica hold a client request for long.
            call_timeout: Duration::from_secs(2),
            rpc: RpcConfig::default(),
            // Asking R = 2 of 3 replicas instead of all 3 saves one RPC per read (a third of
            // a small GET's or HEAD's cost in a cluster); every 8th read still repairs all.
            full_read_every: 8,
            // A metadata read is a sled lookup: well under a millisecond on a healthy node.
            speculative_read_after: Duration::from_millis(50),
        }
    }
}

/// How the table system sends a request to a peer and gets its answer, within `timeout`.
pub trait TableTransport: Send + Sync + 'static {
    /// Starts the call; the future owns everything it needs.
    fn call(
        &self,
        peer: SocketAddr,
        request: TableRequest,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<TableResponse, RpcError>>;
}

/// Any RPC client whose requests can carry a [`TableRequest`] and whose responses can be
/// turned back into a [`TableResponse`]; `RpcClient<TableRequest, TableResponse>` included.
impl<Req, Resp> TableTransport for RpcClient<Req, Resp>
where
    Req: From<TableRequest> + Serialize + Send + Sync + 'static,
    Resp: DeserializeOwned + Send + 'static,
    TableResponse: TryFrom<Resp>,
    <TableResponse as TryFrom<Resp>>::Error: Display,
{
    fn call(
        &self,
        peer: SocketAddr,
        request: TableRequest,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<TableResponse, RpcError>> {
        let client = self.clone();
        Box::pin(async move {
            let response = RpcClient::call(&client, peer, &Req::from(request), timeout).await?;
            TableResponse::try_from(response).map_err(|err| RpcError::Protocol {
                peer,
                reason: format!("unexpected answer to a table request: {err}"),
            })
        })
    }
}

/// The replicated-table machinery of one node; shared (`Arc`) by its tables, the RPC server
/// and the hint-replay worker.
pub struct TableSystem {
    liveness: Arc<dyn Liveness>,
    local: LocalStore,
    transport: Arc<dyn TableTransport>,
    tables: RwLock<HashMap<String, Arc<dyn EntryMerger>>>,
    config: SystemConfig,
    /// The ring of the layout being rebalanced away from, while reads may still need it.
    previous_ring: RwLock<Option<Arc<Ring>>>,
    /// Reads coordinated so far, to pick every `full_read_every`-th for a full read.
    reads: AtomicU64,
    /// Quorum failures and hint deliveries, for status and metrics.
    counters: TableCounters,
}

impl TableSystem {
    /// The system of the node `liveness.local_id()`, storing into `kv` and proving `secret`
    /// to peers.
    pub fn new(
        liveness: Arc<dyn Liveness>,
        kv: Arc<dyn KvStore>,
        secret: ClusterSecret,
        config: SystemConfig,
    ) -> Result<Arc<TableSystem>, RpcError> {
        let client: RpcClient<TableRequest, TableResponse> =
            RpcClient::new(secret, liveness.local_id().0, config.rpc.clone())?;
        Ok(Self::with_transport(liveness, kv, Arc::new(client), config))
    }

    /// The system of the node `liveness.local_id()`, storing into `kv` and calling peers
    /// through `transport` (`config.rpc` is then the transport's business).
    pub fn with_transport(
        liveness: Arc<dyn Liveness>,
        kv: Arc<dyn KvStore>,
        transport: Arc<dyn TableTransport>,
        config: SystemConfig,
    ) -> Arc<TableSystem> {
        Arc::new(TableSystem {
            liveness,
            local: LocalStore::new(kv),
            transport,
            tables: RwLock::new(HashMap::new()),
            config,
            previous_ring: RwLock::new(None),
            reads: AtomicU64::new(0),
            counters: TableCounters::default(),
        })
    }

    /// The system's settings.
    pub(crate) fn config(&self) -> &SystemConfig {
        &self.config
    }

    /// Whether the read being started should ask every replica (see
    /// [`SystemConfig::full_read_every`]).
    pub(crate) fn full_read_due(&self) -> bool {
        let every = self.config.full_read_every.max(1);
        let this_read = self.reads.fetch_add(1, Ordering::Relaxed) + 1;
        this_read.is_multiple_of(every)
    }

    /// What this node's table work met since it started (quorum failures, hints delivered).
    pub fn counters(&self) -> &TableCounters {
        &self.counters
    }

    /// The cluster view this system works from.
    pub fn liveness(&self) -> &dyn Liveness {
        &*self.liveness
    }

    /// Sets (or clears) the ring whose owners reads consult when the current owners miss a
    /// key: the rebalancer's previous layout, until its data has moved.
    pub fn set_previous_ring(&self, ring: Option<Arc<Ring>>) {
        *self
            .previous_ring
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = ring;
    }

    /// The ring set by [`TableSystem::set_previous_ring`], if any.
    pub fn previous_ring(&self) -> Option<Arc<Ring>> {
        self.previous_ring
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    /// This node's copy of the tables and its hints.
    pub fn local(&self) -> &LocalStore {
        &self.local
    }

    /// The hints this node holds for other nodes (for status pages and tests).
    pub fn pending_hints(&self) -> Result<Vec<HintRecord>, TableError> {
        Ok(self
            .local
            .hints()?
            .into_iter()
            .map(|stored| stored.hint)
            .collect())
    }

    /// Makes `name` known to the request handler. Registering the same name again replaces
    /// the merger (two handles on one table share it).
    pub(crate) fn register(
        &self,
        name: &'static str,
        merger: Arc<dyn EntryMerger>,
    ) -> Result<(), TableError> {
        if name.is_empty() || name.contains('\0') {
            return Err(TableError::InvalidTableName(name.to_owned()));
        }
        self.tables
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(name.to_owned(), merger);
        Ok(())
    }

    fn merger(&self, table: &str) -> Result<Arc<dyn EntryMerger>, TableError> {
        self.tables
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(table)
            .cloned()
            .ok_or_else(|| TableError::UnknownTable(table.to_owned()))
    }

    /// Carries out `request` on this node.
    pub async fn handle_request(&self, request: TableRequest) -> TableResponse {
        let outcome = match request {
            TableRequest::Ping => return TableResponse::Pong,
            TableRequest::Merge { table, key, entry } => self
                .merge_local(&table, &key, &entry)
                .await
                .map(|_| TableResponse::Done),
            TableRequest::Read { table, key } => self.local.read(&table, &key).map(|entry| {
                // Reads of unknown tables are harmless (they find nothing), so they need no
                // registry lookup.
                TableResponse::Entry(entry.map(Payload::new))
            }),
            TableRequest::StoreHint {
                owner,
                table,
                key,
                entry,
            } => match self.merger(&table) {
                Ok(merger) => self
                    .local
                    .store_hint(&owner, &table, &key, &entry, &*merger)
                    .await
                    .map(|()| TableResponse::Done),
                Err(err) => Err(err),
            },
            TableRequest::ListLocal {
                table,
                prefix,
                start_after,
                limit,
            } => self
                .local
                .scan_prefix(&table, &prefix, start_after.as_deref(), limit as usize)
                .map(|entries| {
                    TableResponse::Entries(
                        entries
                            .into_iter()
                            .map(|(key, entry)| (Payload::new(key), Payload::new(entry)))
                            .collect(),
                    )
                }),
            TableRequest::Paxos(request) => super::paxos::acceptor::handle(&self.local, request)
                .await
                .map(TableResponse::Paxos),
            // Only registered tables: the Paxos acceptor's state lives under an unregistered
            // name and must never be deleted from outside.
            TableRequest::PurgeIfEqual { table, key, entry } => match self.merger(&table) {
                Ok(_) => self
                    .local
                    .remove_if_equal(&table, &key, &entry)
                    .await
                    .map(TableResponse::Purged),
                Err(err) => Err(err),
            },
        };
        outcome.unwrap_or_else(|err| TableResponse::Failed(err.to_string()))
    }

    /// Merges an encoded entry of `table` into this node's copy, durably.
    pub(crate) async fn merge_local(
        &self,
        table: &str,
        key: &[u8],
        entry: &[u8],
    ) -> Result<bool, TableError> {
        let merger = self.merger(table)?;
        self.local.merge(table, key, entry, &*merger).await
    }

    /// Sends `request` to `node` (or runs it here if `node` is this node). A `Failed` answer,
    /// an unknown address and every RPC error come back as `Err` with a readable reason.
    pub(crate) async fn call(
        &self,
        node: &NodeId,
        request: TableRequest,
    ) -> Result<TableResponse, String> {
        let response = if *node == self.liveness.local_id() {
            self.handle_request(request).await
        } else {
            let addr = self
                .liveness
                .addr(node)
                .ok_or_else(|| "no RPC address known".to_owned())?;
            self.transport
                .call(addr, request, self.config.call_timeout)
                .await
                .map_err(|err| err.to_string())?
        };
        match response {
            TableResponse::Failed(reason) => Err(reason),
            answer => Ok(answer),
        }
    }
}

impl RpcHandler for TableSystem {
    type Request = TableRequest;
    type Response = TableResponse;

    async fn handle(&self, _caller: &Caller, request: TableRequest) -> TableResponse {
        self.handle_request(request).await
    }
}
