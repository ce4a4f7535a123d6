//! The calling side: a pool of one multiplexed connection per peer.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::connection::Connection;
use super::secret::ClusterSecret;
use super::{tls, RpcConfig, RpcError};

/// Calls peers: `RpcClient<Request, Response>` sends `Request`s and decodes `Response`s.
///
/// Connections are opened on first use, shared by every concurrent call to the same peer, and
/// replaced on the next call after they die. After a failed connection attempt the peer is
/// not tried again before a backoff pause (doubling from [`RpcConfig::backoff_initial`] up to
/// [`RpcConfig::backoff_max`]); calls in that window fail at once with
/// [`RpcError::Connect`], which lets a coordinator move on to another replica. Cloning is
/// cheap and shares the pool.
pub struct RpcClient<Req, Resp> {
    inner: Arc<Inner>,
    _messages: PhantomData<fn(&Req) -> Resp>,
}

impl<Req, Resp> Clone for RpcClient<Req, Resp> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            _messages: PhantomData,
        }
    }
}

struct Inner {
    connector: TlsConnector,
    secret: ClusterSecret,
    node_id: String,
    config: RpcConfig,
    peers: Mutex<HashMap<SocketAddr, Arc<PeerSlot>>>,
}

/// One peer's connection, or the memory of why it could not be opened.
#[derive(Default)]
struct PeerSlot {
    // An async lock: calls arriving while a connection is being opened wait for that one
    // instead of opening their own.
    state: tokio::sync::Mutex<PeerState>,
}

#[derive(Default)]
struct PeerState {
    connection: Option<Arc<Connection>>,
    failed_attempts: u32,
    retry_at: Option<Instant>,
    last_error: String,
}

impl<Req, Resp> RpcClient<Req, Resp>
where
    Req: Serialize + Send + Sync,
    Resp: DeserializeOwned + Send,
{
    /// A client that proves `secret` to servers and introduces itself as `node_id`.
    pub fn new(
        secret: ClusterSecret,
        node_id: impl Into<String>,
        config: RpcConfig,
    ) -> Result<Self, RpcError> {
        let node_id = node_id.into();
        if node_id.len() > super::auth::MAX_NODE_ID_LEN {
            return Err(RpcError::NodeIdTooLong {
                len: node_id.len(),
                max: super::auth::MAX_NODE_ID_LEN,
            });
        }
        Ok(Self {
            inner: Arc::new(Inner {
                connector: TlsConnector::from(tls::client_config()?),
                secret,
                node_id,
                config,
                peers: Mutex::new(HashMap::new()),
            }),
            _messages: PhantomData,
        })
    }

    /// Sends `request` to `peer` and waits for its response, for at most `timeout` in total
    /// (connecting, waiting for an in-flight slot and the round trip included).
    ///
    /// On [`RpcError::Timeout`] or [`RpcError::ConnectionLost`] the peer may still carry the
    /// request out: retry only idempotent requests.
    pub async fn call(
        &self,
        peer: SocketAddr,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, RpcError> {
        let attempt = async {
            let connection = self.connection(peer).await?;
            connection.call(request).await
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| RpcError::Timeout {
                peer,
                after: timeout,
            })?
    }

    /// Closes the pooled connection to `peer` (if any) and forgets its backoff, for example
    /// when membership learns the peer restarted. Calls in flight on it fail with
    /// [`RpcError::ConnectionLost`].
    pub async fn disconnect(&self, peer: SocketAddr) {
        let slot = self.lock_peers().remove(&peer);
        if let Some(slot) = slot {
            if let Some(connection) = slot.state.lock().await.connection.take() {
                connection.close("disconnected by the local node");
            }
        }
    }

    fn lock_peers(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Arc<PeerSlot>>> {
        // The map holds plain data; a panic elsewhere while holding it leaves it usable.
        self.inner
            .peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The open connection to `peer`, opening one if there is none or it died.
    async fn connection(&self, peer: SocketAddr) -> Result<Arc<Connection>, RpcError> {
        let slot = Arc::clone(self.lock_peers().entry(peer).or_default());
        let mut state = slot.state.lock().await;
        if let Some(connection) = &state.connection {
            if connection.is_open() {
                return Ok(Arc::clone(connection));
            }
        }
        state.connection = None;
        if let Some(retry_at) = state.retry_at {
            let now = Instant::now();
            if now < retry_at {
                return Err(RpcError::Connect {
                    peer,
                    reason: format!(
                        "{} (next attempt in {:?})",
                        state.last_error,
                        retry_at - now
                    ),
                });
            }
        }
        let config = &self.inner.config;
        let opening = Connection::open(
            peer,
            &self.inner.connector,
            &self.inner.secret,
            &self.inner.node_id,
            config.max_in_flight_per_peer,
        );
        let opened = match tokio::time::timeout(config.connect_timeout, opening).await {
            Ok(result) => result,
            Err(_) => Err(RpcError::Connect {
                peer,
                reason: format!("no connection within {:?}", config.connect_timeout),
            }),
        };
        match opened {
            Ok(connection) => {
                let connection = Arc::new(connection);
                *state = PeerState {
                    connection: Some(Arc::clone(&connection)),
                    ..PeerState::default()
                };
                Ok(connection)
            }
            Err(err) => {
                state.failed_attempts = state.failed_attempts.saturating_add(1);
                let pause = backoff(config, state.failed_attempts);
                state.retry_at = Some(Instant::now() + pause);
                state.last_error = err.to_string();
                tracing::debug!(%peer, error = %err, ?pause, "RPC connection attempt failed");
                Err(err)
            }
        }
    }
}

/// Pause before attempt `failed_attempts + 1`: doubling from the initial pause, capped.
fn backoff(config: &RpcConfig, failed_attempts: u32) -> Duration {
    let doublings = failed_attempts.saturating_sub(1).min(16);
    config
        .backoff_initial
        .saturating_mul(1u32 << doublings)
        .min(config.backoff_max)
}
