//! [`BlockService`]: one per node. It owns the node's view of block placement, its local
//! block files and the block RPC client; it answers peers' block requests (it is the node's
//! [`RpcHandler`] for the block protocol) and coordinates puts and gets.
//!
//! Outgoing calls go through a [`BlockTransport`]. [`BlockService::new`] makes its own
//! `RpcClient<BlockRequest, BlockResponse>` (a server speaking only the block protocol, as in
//! the tests); the running node uses [`BlockService::with_transport`] with its shared
//! `RpcClient<NodeRequest, NodeResponse>` (see [`crate::cluster::wire`]).

use std::fmt::Display;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use ring::{NodeId, Ring};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::local::{LocalBlocks, LocalRead};
use super::protocol::{BlockRequest, BlockResponse};
use super::{block_position, replicate, BlockConfig, BlockCounters, BlockError, BlockHash};
use crate::cluster::liveness::Liveness;
use crate::rpc::{Caller, ClusterSecret, Payload, RpcClient, RpcError, RpcHandler};
use crate::store::blocks::BlockStore;
use crate::store::kv::KvStore;
use crate::store::StoreError;

/// How the block service sends a request to a peer and gets its answer, within `timeout`.
pub trait BlockTransport: Send + Sync + 'static {
    /// Starts the call; the future owns everything it needs.
    fn call(
        &self,
        peer: SocketAddr,
        request: BlockRequest,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<BlockResponse, RpcError>>;
}

/// Any RPC client whose requests can carry a [`BlockRequest`] and whose responses can be
/// turned back into a [`BlockResponse`]; `RpcClient<BlockRequest, BlockResponse>` included.
impl<Req, Resp> BlockTransport for RpcClient<Req, Resp>
where
    Req: From<BlockRequest> + Serialize + Send + Sync + 'static,
    Resp: DeserializeOwned + Send + 'static,
    BlockResponse: TryFrom<Resp>,
    <BlockResponse as TryFrom<Resp>>::Error: Display,
{
    fn call(
        &self,
        peer: SocketAddr,
        request: BlockRequest,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<BlockResponse, RpcError>> {
        let client = self.clone();
        Box::pin(async move {
            let response = RpcClient::call(&client, peer, &Req::from(request), timeout).await?;
            BlockResponse::try_from(response).map_err(|err| RpcError::Protocol {
                peer,
                reason: format!("unexpected answer to a block request: {err}"),
            })
        })
    }
}

/// The block-replication machinery of one node; shared (`Arc`) by the S3 layer, the RPC
/// server and the background workers.
pub struct BlockService {
    liveness: Arc<dyn Liveness>,
    local: Arc<LocalBlocks>,
    transport: Arc<dyn BlockTransport>,
    config: BlockConfig,
    /// The ring of the layout being rebalanced away from, while reads may still need it.
    previous_ring: RwLock<Option<Arc<Ring>>>,
    /// Quorum failures and handoff deliveries, for status and metrics.
    counters: BlockCounters,
}

impl BlockService {
    /// The service of node `liveness.local_id()`, over its block directory `store` and its
    /// metadata engine `kv` (where handoff records are kept), proving `secret` to peers.
    pub fn new(
        liveness: Arc<dyn Liveness>,
        store: Arc<BlockStore>,
        kv: Arc<dyn KvStore>,
        secret: ClusterSecret,
        config: BlockConfig,
    ) -> Result<Arc<BlockService>, RpcError> {
        let client: RpcClient<BlockRequest, BlockResponse> =
            RpcClient::new(secret, liveness.local_id().0, config.rpc.clone())?;
        Ok(Self::with_transport(
            liveness,
            store,
            kv,
            Arc::new(client),
            config,
        ))
    }

    /// Like [`BlockService::new`], but calling peers through `transport` (`config.rpc` is
    /// then the transport's business).
    pub fn with_transport(
        liveness: Arc<dyn Liveness>,
        store: Arc<BlockStore>,
        kv: Arc<dyn KvStore>,
        transport: Arc<dyn BlockTransport>,
        config: BlockConfig,
    ) -> Arc<BlockService> {
        Arc::new(BlockService {
            liveness,
            local: Arc::new(LocalBlocks::new(store, kv)),
            transport,
            config,
            previous_ring: RwLock::new(None),
            counters: BlockCounters::default(),
        })
    }

    /// Stores block `hash` on its owners; returns once W of them (or, under a sloppy quorum,
    /// handoff holders for them) have it durably. `data` must hash to `hash`.
    pub async fn put_block(
        self: &Arc<Self>,
        hash: BlockHash,
        data: Bytes,
    ) -> Result<(), BlockError> {
        let outcome = replicate::put(self, hash, data).await;
        if let Err(BlockError::WriteQuorum { .. }) = &outcome {
            self.counters.count_put_quorum_failure();
        }
        outcome
    }

    /// The bytes of block `hash`, verified against the hash; replicas found corrupt or
    /// missing it are repaired in the background.
    pub async fn get_block(self: &Arc<Self>, hash: BlockHash) -> Result<Bytes, BlockError> {
        let outcome = self.find_block(hash).await;
        if let Err(BlockError::NotFound { .. }) = &outcome {
            self.counters.count_get_failure();
        }
        outcome
    }

    /// [`BlockService::get_block`] without the counting (a rebalance's second look is part
    /// of the same read).
    async fn find_block(self: &Arc<Self>, hash: BlockHash) -> Result<Bytes, BlockError> {
        match replicate::get(self, hash, true).await {
            // During a rebalance the current ring's nodes may not have it yet.
            Err(BlockError::NotFound { .. }) if self.previous_ring().is_some() => {
                match crate::cluster::rebalance::read_previous_block_owners(self, hash).await {
                    Some(data) => Ok(data),
                    // Moved (and dropped by the old owners) between the two reads.
                    None => replicate::get(self, hash, true).await,
                }
            }
            found => found,
        }
    }

    /// What this node's block work met since it started (quorum failures, handoffs
    /// delivered).
    pub fn counters(&self) -> &BlockCounters {
        &self.counters
    }

    /// Sets (or clears) the ring whose owners reads try when no node of the current ring
    /// has a block: the rebalancer's previous layout, until its data has moved.
    pub fn set_previous_ring(&self, ring: Option<Arc<Ring>>) {
        *self
            .previous_ring
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = ring;
    }

    /// The ring set by [`BlockService::set_previous_ring`], if any.
    pub fn previous_ring(&self) -> Option<Arc<Ring>> {
        self.previous_ring
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    /// The nodes that own block `hash` under the current ring, primary first (for the debug
    /// view of where a block lives).
    pub fn replicas_of(&self, hash: &BlockHash) -> Vec<NodeId> {
        self.liveness
            .ring()
            .preference_list(block_position(hash))
            .iter()
            .take(self.config.replicas)
            .cloned()
            .collect()
    }

    /// Whether this node holds an intact copy of `hash` (for the debug view and tests).
    pub async fn has_local(&self, hash: BlockHash) -> Result<bool, StoreError> {
        let read = self
            .blocking(move |local| local.read_verified(&hash))
            .await?;
        Ok(matches!(read, LocalRead::Intact(_)))
    }

    /// Carries out `request` on this node.
    pub async fn handle_request(&self, request: BlockRequest) -> BlockResponse {
        let outcome = match request {
            BlockRequest::Ping => return BlockResponse::Pong,
            BlockRequest::Put { hash, data } => self
                .blocking(move |local| local.write_verified(&hash, &data))
                .await
                .map(|()| BlockResponse::Done),
            BlockRequest::Repair { hash, data } => self
                .blocking(move |local| local.repair(&hash, &data))
                .await
                .map(|replaced| {
                    if replaced {
                        tracing::warn!(block = %hex::encode(hash), "replaced a corrupt block file");
                    }
                    BlockResponse::Done
                }),
            BlockRequest::Get { hash } => self
                .blocking(move |local| local.read_raw(&hash))
                .await
                .map(|data| BlockResponse::Block(data.map(Payload::new))),
            BlockRequest::StoreHandoff { owner, hash, data } => {
                let stored = self
                    .blocking(move |local| local.store_handoff(&owner, &hash, &data))
                    .await;
                match stored {
                    Ok(()) => self.local.flush().await.map(|()| BlockResponse::Done),
                    Err(err) => Err(err),
                }
            }
            BlockRequest::Holds { hash } => self.has_local(hash).await.map(BlockResponse::Held),
        };
        outcome.unwrap_or_else(|err| BlockResponse::Failed(err.to_string()))
    }

    /// Sends `request` to `node` (or runs it here if `node` is this node). A `Failed` answer,
    /// an unknown address and every RPC error come back as `Err` with a readable reason.
    pub(crate) async fn call(
        &self,
        node: &NodeId,
        request: BlockRequest,
    ) -> Result<BlockResponse, String> {
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
            BlockResponse::Failed(reason) => Err(reason),
            answer => Ok(answer),
        }
    }

    /// Runs blocking file work on the blocking pool.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&LocalBlocks) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let local = Arc::clone(&self.local);
        tokio::task::spawn_blocking(move || work(&local)).await?
    }

    pub(crate) fn liveness(&self) -> &dyn Liveness {
        &*self.liveness
    }

    pub(crate) fn config(&self) -> &BlockConfig {
        &self.config
    }

    pub(crate) fn local(&self) -> &LocalBlocks {
        &self.local
    }
}

impl RpcHandler for BlockService {
    type Request = BlockRequest;
    type Response = BlockResponse;

    async fn handle(&self, _caller: &Caller, request: BlockRequest) -> BlockResponse {
        self.handle_request(request).await
    }
}
