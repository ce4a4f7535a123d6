//! The node's one RPC vocabulary: every cluster protocol travels in [`NodeRequest`] /
//! [`NodeResponse`] over a single [`crate::rpc::RpcServer`] per node, dispatched by
//! [`NodeRpcHandler`].
//!
//! Why one enum: one port and one connection pool per peer pair carry gossip, table and (next)
//! block and anti-entropy traffic, so peers authenticate once and operators open one port.
//! Each protocol keeps its own request type; this module only wraps and unwraps them:
//!
//! - membership calls peers through [`super::membership::RpcGossipTransport`] over an
//!   `RpcClient<NodeRequest, NodeResponse>`, using the `From`/`TryFrom` conversions below;
//! - the table system calls peers through the same client as a
//!   [`super::system::TableTransport`] (the blanket implementation for `RpcClient` uses the
//!   same conversions).
//!
//! bincode encodes enum variants by index: new protocols are appended at the END of both
//! enums, and existing variants never change shape without a bump of the RPC wire version.

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use super::membership::{GossipRequest, GossipResponse, MembershipHandle};
use super::protocol::{TableRequest, TableResponse};
use super::system::TableSystem;
use crate::rpc::{Caller, RpcHandler};

/// A request from one node to another, of any cluster protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeRequest {
    /// Membership: heartbeats, gossip, layout pulls.
    Gossip(GossipRequest),
    /// Replicated tables: merges, reads, hints.
    Table(TableRequest),
    // Block transfer (`Blocks(..)`) and anti-entropy (`AntiEntropy(..)`) variants are added
    // here, at the end, in that order, together with their `NodeResponse` counterparts and a
    // dispatch arm in `NodeRpcHandler::handle`.
}

/// The answer to a [`NodeRequest`]: always the variant of the request's protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeResponse {
    /// Answer to [`NodeRequest::Gossip`].
    Gossip(GossipResponse),
    /// Answer to [`NodeRequest::Table`].
    Table(TableResponse),
    // `Blocks(..)` and `AntiEntropy(..)` go here, at the end, matching `NodeRequest`.
}

impl NodeResponse {
    /// The protocol's name, for error messages.
    fn protocol(&self) -> &'static str {
        match self {
            NodeResponse::Gossip(_) => "gossip",
            NodeResponse::Table(_) => "table",
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

/// Answers every cluster protocol on the node's RPC port.
///
/// It exists before the services it dispatches to, because the server must be bound first
/// (membership announces the bound address): [`NodeRpcHandler::attach_membership`] and
/// [`NodeRpcHandler::attach_tables`] connect them; until then requests get a refusal in their
/// protocol's own terms, which callers treat like any failed call.
#[derive(Default)]
pub struct NodeRpcHandler {
    membership: OnceLock<MembershipHandle>,
    tables: OnceLock<Arc<TableSystem>>,
}

impl fmt::Debug for NodeRpcHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeRpcHandler")
            .field("membership", &self.membership.get().is_some())
            .field("tables", &self.tables.get().is_some())
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
}

impl RpcHandler for NodeRpcHandler {
    type Request = NodeRequest;
    type Response = NodeResponse;

    async fn handle(&self, caller: &Caller, request: NodeRequest) -> NodeResponse {
        match request {
            NodeRequest::Gossip(request) => NodeResponse::Gossip(match self.membership.get() {
                Some(membership) => membership.handle_gossip(&caller.node_id, request).await,
                None => GossipResponse::Refused("membership is still starting".to_owned()),
            }),
            NodeRequest::Table(request) => NodeResponse::Table(match self.tables.get() {
                Some(tables) => tables.handle_request(request).await,
                None => TableResponse::Failed("the table system is still starting".to_owned()),
            }),
        }
    }
}
