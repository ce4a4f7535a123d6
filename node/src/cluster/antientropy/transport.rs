//! How an initiator reaches other replicas: the [`AeTransport`] seam.
//!
//! [`RpcAeTransport`] sends [`AeRequest`]s on their own RPC client, to addresses given by an
//! [`AddressBook`]. A node that serves one combined RPC protocol implements
//! [`AeTransport`] over its combined client instead, and routes incoming anti-entropy
//! requests to [`super::AntiEntropy::handle_request`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use ring::NodeId;

use super::protocol::{AeRequest, AeResponse};
use crate::rpc::{ClusterSecret, RpcClient, RpcConfig, RpcError};

/// Sends one anti-entropy request to a node and returns its answer. A
/// [`AeResponse::Failed`] answer, an unknown address and every transport error come back as
/// `Err` with a readable reason.
pub trait AeTransport: Send + Sync + 'static {
    /// Sends `request` to `node`.
    fn call<'a>(
        &'a self,
        node: &'a NodeId,
        request: AeRequest,
    ) -> BoxFuture<'a, Result<AeResponse, String>>;
}

/// Where a node's anti-entropy endpoint listens.
pub type AddressBook = Arc<dyn Fn(&NodeId) -> Option<SocketAddr> + Send + Sync>;

/// [`AeTransport`] over a dedicated [`RpcClient`].
pub struct RpcAeTransport {
    client: RpcClient<AeRequest, AeResponse>,
    addresses: AddressBook,
    call_timeout: Duration,
}

impl RpcAeTransport {
    /// A transport of node `local` proving `secret`, finding peers through `addresses`, and
    /// giving each call at most `call_timeout` (a responder scans its copy of the table to
    /// answer `Open`, so allow more than for a single-key call).
    pub fn new(
        secret: ClusterSecret,
        local: &NodeId,
        rpc: RpcConfig,
        call_timeout: Duration,
        addresses: AddressBook,
    ) -> Result<RpcAeTransport, RpcError> {
        Ok(RpcAeTransport {
            client: RpcClient::new(secret, local.as_str(), rpc)?,
            addresses,
            call_timeout,
        })
    }
}

impl AeTransport for RpcAeTransport {
    fn call<'a>(
        &'a self,
        node: &'a NodeId,
        request: AeRequest,
    ) -> BoxFuture<'a, Result<AeResponse, String>> {
        Box::pin(async move {
            let addr =
                (self.addresses)(node).ok_or_else(|| "no anti-entropy address known".to_owned())?;
            match self.client.call(addr, &request, self.call_timeout).await {
                Ok(AeResponse::Failed(reason)) => Err(reason),
                Ok(answer) => Ok(answer),
                Err(err) => Err(err.to_string()),
            }
        })
    }
}
