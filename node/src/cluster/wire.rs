//! The node's one RPC vocabulary: every cluster protocol travels in [`NodeRequest`] /
//! [`NodeResponse`] over a single [`crate::rpc::RpcServer`] per node, dispatched by
//! [`NodeRpcHandler`].
//!
//! Why one enum: one port and one connection pool per peer pair carry gossip, table, block
//! and anti-entropy traffic, so peers authenticate once and operators open one port.
//! Each protocol keeps its own request type; this module only wraps and unwraps them:
//!
//! - membership calls peers through [`super::membership::RpcGossipTransport`] over an
//!   `RpcClient<NodeRequest, NodeResponse>`, using the `From`/`TryFrom` conversions below;
//! - the table system calls peers through the same client as a
//!   [`super::system::TableTransport`] (the blanket implementation for `RpcClient` uses the
//!   same conversions);
//! - the block service calls peers through it as a
//!   [`super::blocks::service::BlockTransport`] (blanket implementation, same conversions);
//! - anti-entropy calls peers through [`NodeAeTransport`], which implements
//!   [`super::antientropy::AeTransport`] over the same client.
//!
//! bincode encodes enum variants by index: new protocols are appended at the END of both
//! enums, and existing variants never change shape without a bump of the RPC wire version.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use ring::NodeId;
use serde::{Deserialize, Serialize};

use super::antientropy::{AeRequest, AeResponse, AeTransport, AntiEntropy};
use super::blocks::{BlockRequest, BlockResponse, BlockService};
use super::liveness::Liveness;
use super::membership::{GossipRequest, GossipResponse, MembershipHandle};
use super::protocol::{TableRequest, TableResponse};
use super::system::TableSystem;
use crate::rpc::{Caller, RpcClient, RpcHandler};

/// A request from one node to another, of any cluster protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeRequest {
    /// Membership: heartbeats, gossip, layout pulls.
    Gossip(GossipRequest),
    /// Replicated tables: merges, reads, hints.
    Table(TableRequest),
    /// Block replication: puts, gets, repairs, handoffs.
    Blocks(BlockRequest),
    /// Anti-entropy: Merkle-tree comparison and exchange of differing entries.
    AntiEntropy(AeRequest),
    // New protocols go here, at the end, with their `NodeResponse` counterparts.
}

/// The answer to a [`NodeRequest`]: always the variant of the request's protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeResponse {
    /// Answer to [`NodeRequest::Gossip`].
    Gossip(GossipResponse),
    /// Answer to [`NodeRequest::Table`].
    Table(TableResponse),
    /// Answer to [`NodeRequest::Blocks`].
    Blocks(BlockResponse),
    /// Answer to [`NodeRequest::AntiEntropy`].
    AntiEntropy(AeResponse),
}

impl NodeResponse {
    /// The protocol's name, for error messages.
    fn protocol(&self) -> &'static str {
        match self {
            NodeResponse::Gossip(_) => "gossip",
            NodeResponse::Table(_) => "table",
            NodeResponse::Blocks(_) => "block",
            NodeResponse::AntiEntropy(_) => "anti-entropy",
        }
    }
}

/// A peer answered with another protocol's response than the request's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a {expected} response, got a {got} response")]
pub struct WrongProtocol {
    /// The protocol of the request.
    pub expected: &'static str,
    /// The protocol of the answer.
    pub got: &'static str,
}

impl From<GossipRequest> for NodeRequest {
    fn from(request: GossipRequest) -> Self {
        NodeRequest::Gossip(request)
    }
}

impl From<TableRequest> for NodeRequest {
    fn from(request: TableRequest) -> Self {
        NodeRequest::Table(request)
    }
}

impl TryFrom<NodeResponse> for GossipResponse {
    type Error = WrongProtocol;

    fn try_from(response: NodeResponse) -> Result<Self, WrongProtocol> {
        match response {
            NodeResponse::Gossip(answer) => Ok(answer),
            other => Err(WrongProtocol {
                expected: "gossip",
                got: other.protocol(),
            }),
        }
    }
}

impl TryFrom<NodeResponse> for TableResponse {
    type Error = WrongProtocol;

    fn try_from(response: NodeResponse) -> Result<Self, WrongProtocol> {
        match response {
            NodeResponse::Table(answer) => Ok(answer),
            other => Err(WrongProtocol {
                expected: "table",
                got: other.protocol(),
            }),
        }
    }
}

impl From<BlockRequest> for NodeRequest {
    fn from(request: BlockRequest) -> Self {
        NodeRequest::Blocks(request)
    }
}

impl From<AeRequest> for NodeRequest {
    fn from(request: AeRequest) -> Self {
        NodeRequest::AntiEntropy(request)
    }
}

impl TryFrom<NodeResponse> for BlockResponse {
    type Error = WrongProtocol;

    fn try_from(response: NodeResponse) -> Result<Self, WrongProtocol> {
        match response {
            NodeResponse::Blocks(answer) => Ok(answer),
            other => Err(WrongProtocol {
                expected: "block",
                got: other.protocol(),
            }),
        }
    }
}

impl TryFrom<NodeResponse> for AeResponse {
    type Error = WrongProtocol;

    fn try_from(response: NodeResponse) -> Result<Self, WrongProtocol> {
        match response {
            NodeResponse::AntiEntropy(answer) => Ok(answer),
            other => Err(WrongProtocol {
                expected: "anti-entropy",
                got: other.protocol(),
            }),
        }
    }
}

/// [`AeTransport`] over the node's shared RPC client: finds peers through the cluster view
/// and gives each call `call_timeout` (a responder scans its copy of a table to answer
/// `Open`, so this is longer than a single-key call's).
pub struct NodeAeTransport {
    client: RpcClient<NodeRequest, NodeResponse>,
    liveness: Arc<dyn Liveness>,
    call_timeout: Duration,
}

impl NodeAeTransport {
    /// A transport sending through `client` to the addresses `liveness` knows.
    pub fn new(
        client: RpcClient<NodeRequest, NodeResponse>,
        liveness: Arc<dyn Liveness>,
        call_timeout: Duration,
    ) -> NodeAeTransport {
        NodeAeTransport {
            client,
            liveness,
            call_timeout,
        }
    }
}

impl AeTransport for NodeAeTransport {
    fn call<'a>(
        &'a self,
        node: &'a NodeId,
        request: AeRequest,
    ) -> BoxFuture<'a, Result<AeResponse, String>> {
        Box::pin(async move {
            let addr = self
                .liveness
                .addr(node)
                .ok_or_else(|| "no RPC address known".to_owned())?;
            let request = NodeRequest::AntiEntropy(request);
            let response = self
                .client
                .call(addr, &request, self.call_timeout)
                .await
                .map_err(|err| err.to_string())?;
            match AeResponse::try_from(response).map_err(|err| err.to_string())? {
                AeResponse::Failed(reason) => Err(reason),
                answer => Ok(answer),
            }
        })
    }
}

/// Told about every request the node's RPC server answered (the node's metrics).
pub trait RpcObserver: Send + Sync {
    /// A request of `protocol` was answered after `elapsed`; `ok` is false when the answer
    /// was a refusal or failure.
    fn observe_rpc(&self, protocol: &'static str, ok: bool, elapsed: Duration);
}

/// Answers every cluster protocol on the node's RPC port.
///
/// It exists before the services it dispatches to, because the server must be bound first
/// (membership announces the bound address): the `attach_*` methods connect them; until then requests get a refusal in their
/// protocol's own terms, which callers treat like any failed call.
#[derive(Default)]
pub struct NodeRpcHandler {
    membership: OnceLock<MembershipHandle>,
    tables: OnceLock<Arc<TableSystem>>,
    blocks: OnceLock<Arc<BlockService>>,
    anti_entropy: OnceLock<Arc<AntiEntropy>>,
    observer: OnceLock<Arc<dyn RpcObserver>>,
}

impl fmt::Debug for NodeRpcHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeRpcHandler")
            .field("membership", &self.membership.get().is_some())
            .field("tables", &self.tables.get().is_some())
            .field("blocks", &self.blocks.get().is_some())
            .field("anti_entropy", &self.anti_entropy.get().is_some())
            .finish()
    }
}

impl NodeRpcHandler {
    /// A handler with nothing attached yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Routes gossip to `membership` from now on; later calls are ignored.
    pub fn attach_membership(&self, membership: MembershipHandle) {
        let _ = self.membership.set(membership);
    }

    /// Routes table requests to `tables` from now on; later calls are ignored.
    pub fn attach_tables(&self, tables: Arc<TableSystem>) {
        let _ = self.tables.set(tables);
    }

    /// Routes block requests to `blocks` from now on; later calls are ignored.
    pub fn attach_blocks(&self, blocks: Arc<BlockService>) {
        let _ = self.blocks.set(blocks);
    }

    /// Routes anti-entropy requests to `anti_entropy` from now on; later calls are ignored.
    pub fn attach_anti_entropy(&self, anti_entropy: Arc<AntiEntropy>) {
        let _ = self.anti_entropy.set(anti_entropy);
    }

    /// Reports every answered request to `observer` from now on; later calls are ignored.
    pub fn attach_observer(&self, observer: Arc<dyn RpcObserver>) {
        let _ = self.observer.set(observer);
    }
}

impl RpcHandler for NodeRpcHandler {
    type Request = NodeRequest;
    type Response = NodeResponse;

    async fn handle(&self, caller: &Caller, request: NodeRequest) -> NodeResponse {
        let started = Instant::now();
        let response = self.dispatch(caller, request).await;
        if let Some(observer) = self.observer.get() {
            let (protocol, ok) = outcome(&response);
            observer.observe_rpc(protocol, ok, started.elapsed());
        }
        response
    }
}

/// The protocol of `response` and whether it is an answer rather than a refusal or failure.
fn outcome(response: &NodeResponse) -> (&'static str, bool) {
    match response {
        NodeResponse::Gossip(answer) => ("gossip", !matches!(answer, GossipResponse::Refused(_))),
        NodeResponse::Table(answer) => ("table", !matches!(answer, TableResponse::Failed(_))),
        NodeResponse::Blocks(answer) => ("blocks", !matches!(answer, BlockResponse::Failed(_))),
        NodeResponse::AntiEntropy(answer) => {
            ("anti_entropy", !matches!(answer, AeResponse::Failed(_)))
        }
    }
}

impl NodeRpcHandler {
    /// Hands `request` to its protocol's service, or refuses it while that is starting.
    async fn dispatch(&self, caller: &Caller, request: NodeRequest) -> NodeResponse {
        match request {
            NodeRequest::Gossip(request) => NodeResponse::Gossip(match self.membership.get() {
                Some(membership) => membership.handle_gossip(&caller.node_id, request).await,
                None => GossipResponse::Refused("membership is still starting".to_owned()),
            }),
            NodeRequest::Table(request) => NodeResponse::Table(match self.tables.get() {
                Some(tables) => tables.handle_request(request).await,
                None => TableResponse::Failed("the table system is still starting".to_owned()),
            }),
            NodeRequest::Blocks(request) => NodeResponse::Blocks(match self.blocks.get() {
                Some(blocks) => blocks.handle_request(request).await,
                None => BlockResponse::Failed("the block service is still starting".to_owned()),
            }),
            NodeRequest::AntiEntropy(request) => {
                NodeResponse::AntiEntropy(match self.anti_entropy.get() {
                    Some(engine) => engine.handle_request(request).await,
                    None => AeResponse::Failed("anti-entropy is still starting".to_owned()),
                })
            }
        }
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
