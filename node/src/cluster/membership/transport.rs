//! How membership reaches peers and how peers reach it, over the node's RPC layer.
//!
//! Membership does not own the RPC vocabulary: the node may carry [`GossipRequest`] inside its
//! own request enum. [`RpcGossipTransport`] therefore works with any `RpcClient<Req, Resp>`
//! whose `Req` can be made from a gossip request and whose `Resp` can be turned back into a
//! gossip response (`RpcClient<GossipRequest, GossipResponse>` itself qualifies).

use std::fmt::Display;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::runtime::Handle;

use super::wire::{GossipRequest, GossipResponse};
use super::MembershipHandle;
use crate::rpc::{Caller, RpcClient, RpcError, RpcHandler};

/// Sends one gossip request to a peer and returns its answer, within `timeout`.
pub trait GossipTransport: Send + Sync + 'static {
    /// Starts the call; the future owns everything it needs.
    fn exchange(
        &self,
        peer: SocketAddr,
        request: GossipRequest,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<GossipResponse, RpcError>>;
}

/// A [`GossipTransport`] over an [`RpcClient`], running each call on `runtime`.
///
/// Why a runtime handle: the membership actor lives on a current-thread actix runtime, and
/// connections opened from there would run their reader and writer tasks on that one thread.
/// Spawning the calls on the node's multi-thread runtime keeps all socket work there, so the
/// client's connection pool can be shared with the data path.
pub struct RpcGossipTransport<Req, Resp> {
    client: RpcClient<Req, Resp>,
    runtime: Handle,
    _messages: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> RpcGossipTransport<Req, Resp> {
    /// Calls peers through `client`, spawning the calls on `runtime`.
    pub fn new(client: RpcClient<Req, Resp>, runtime: Handle) -> Self {
        Self {
            client,
            runtime,
            _messages: PhantomData,
        }
    }
}

impl<Req, Resp> GossipTransport for RpcGossipTransport<Req, Resp>
where
    Req: From<GossipRequest> + Serialize + Send + Sync + 'static,
    Resp: DeserializeOwned + Send + 'static,
    GossipResponse: TryFrom<Resp>,
    <GossipResponse as TryFrom<Resp>>::Error: Display,
{
    fn exchange(
        &self,
        peer: SocketAddr,
        request: GossipRequest,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<GossipResponse, RpcError>> {
        let client = self.client.clone();
        let call = self.runtime.spawn(async move {
            let response = client.call(peer, &Req::from(request), timeout).await?;
            GossipResponse::try_from(response).map_err(|err| RpcError::Protocol {
                peer,
                reason: format!("unexpected answer to a gossip request: {err}"),
            })
        });
        Box::pin(async move {
            call.await.map_err(|err| RpcError::ConnectionLost {
                peer,
                reason: format!("the gossip call's task ended early: {err}"),
            })?
        })
    }
}

/// An [`RpcHandler`] that answers gossip requests by handing them to a membership service,
/// for an RPC server that speaks nothing but gossip (tests, tools). It exists before the
/// membership it serves, because the server must be bound first to know its address:
/// [`GossipRpcHandler::attach`] connects the two; until then requests are refused.
#[derive(Default)]
pub struct GossipRpcHandler {
    membership: OnceLock<MembershipHandle>,
}

impl GossipRpcHandler {
    /// A handler with no membership attached yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Routes requests to `membership` from now on; later calls are ignored.
    pub fn attach(&self, membership: MembershipHandle) {
        let _ = self.membership.set(membership);
    }
}

impl RpcHandler for GossipRpcHandler {
    type Request = GossipRequest;
    type Response = GossipResponse;

    async fn handle(&self, caller: &Caller, request: GossipRequest) -> GossipResponse {
        match self.membership.get() {
            Some(membership) => membership.handle_gossip(&caller.node_id, request).await,
            None => GossipResponse::Refused("membership is still starting".to_string()),
        }
    }
}
