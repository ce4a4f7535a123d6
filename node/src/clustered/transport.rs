//! Says plainly in the log when peers refuse this node's cluster secret.
//!
//! The RPC client reports a failed secret proof only as a call error, and membership treats
//! failed heartbeats as silence (trace level): a node started with the wrong secret would
//! otherwise sit alone with nothing in its log at the default level.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use crate::cluster::membership::{GossipRequest, GossipResponse, GossipTransport};
use crate::rpc::RpcError;

/// Longest a persistent authentication failure with one peer stays unreported: often
/// enough to be seen in a log tail, rare enough not to flood it at one heartbeat a second.
const REPEAT_WARNING_AFTER: Duration = Duration::from_secs(30);

/// A [`GossipTransport`] that logs authentication failures as warnings, once per peer and
/// [`REPEAT_WARNING_AFTER`].
pub struct AuthFailureLogger<T> {
    inner: T,
    last_warned: std::sync::Arc<Mutex<HashMap<SocketAddr, Instant>>>,
}

impl<T> AuthFailureLogger<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            last_warned: Default::default(),
        }
    }
}

impl<T: GossipTransport> GossipTransport for AuthFailureLogger<T> {
    fn exchange(
        &self,
        peer: SocketAddr,
        request: GossipRequest,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<GossipResponse, RpcError>> {
        let last_warned = std::sync::Arc::clone(&self.last_warned);
        self.inner
            .exchange(peer, request, timeout)
            .inspect(move |outcome| {
                let Err(err @ RpcError::AuthFailed { .. }) = outcome else {
                    return;
                };
                let now = Instant::now();
                let mut warned = last_warned
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                let due = warned
                    .get(&peer)
                    .is_none_or(|at| now.duration_since(*at) >= REPEAT_WARNING_AFTER);
                if due {
                    warned.insert(peer, now);
                    tracing::warn!(
                        %peer,
                        "cannot join the cluster through {peer}: {err}; check that every node \
                         uses the same cluster secret"
                    );
                }
            })
            .boxed()
    }
}
