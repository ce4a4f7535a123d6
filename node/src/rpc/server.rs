//! The answering side: accept, authenticate, and run requests through a handler.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::codec::{decode_body, encode_frame, pump_frames, read_frame, Frame};
use super::secret::ClusterSecret;
use super::{auth, tls, RpcConfig, RpcError};

/// Connections allowed to be in their TLS handshake or secret proof at once. Each is bounded
/// by [`RpcConfig::handshake_timeout`]; this cap keeps a flood of idle sockets from piling up
/// tasks and memory before they have proven anything. Real clusters open one connection per
/// peer, far below it.
const MAX_PENDING_HANDSHAKES: usize = 64;

/// Who sent a request: a node that proved the cluster secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The connection's remote address (the peer's ephemeral port, not its RPC address).
    pub addr: SocketAddr,
    /// The node id the peer announced, covered by its secret proof.
    pub node_id: String,
}

/// Answers requests; one instance serves all connections, concurrently.
pub trait RpcHandler: Send + Sync + 'static {
    /// What peers ask.
    type Request: DeserializeOwned + Send + 'static;
    /// What this node answers; failures the caller should see belong inside it.
    type Response: Serialize + Send + 'static;

    /// Handles one request from `caller`. Each request runs in its own task; a panic here
    /// leaves that one call to time out at the caller.
    fn handle(
        &self,
        caller: &Caller,
        request: Self::Request,
    ) -> impl Future<Output = Self::Response> + Send;
}

/// Counters of what the server has seen, for status pages and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections whose peer proved the cluster secret.
    pub authenticated: u64,
    /// Connections refused because a secret proof failed (either side's).
    pub auth_rejected: u64,
    /// Connections that failed TLS or timed out before authenticating.
    pub handshake_failed: u64,
    /// Authenticated connections closed for a malformed or oversized frame.
    pub protocol_errors: u64,
}

#[derive(Default)]
struct Counters {
    authenticated: AtomicU64,
    auth_rejected: AtomicU64,
    handshake_failed: AtomicU64,
    protocol_errors: AtomicU64,
}

/// A listening RPC endpoint. Dropping it (or [`RpcServer::shutdown`]) stops accepting and
/// closes every connection, abandoning requests in progress.
pub struct RpcServer {
    local_addr: SocketAddr,
    counters: Arc<Counters>,
    /// `None` only after [`RpcServer::shutdown`] took it.
    accept_task: Option<JoinHandle<()>>,
}

impl RpcServer {
    /// Listens on `addr` (port 0 picks a free port) and serves peers that prove `secret`.
    pub async fn bind<H: RpcHandler>(
        addr: SocketAddr,
        secret: ClusterSecret,
        handler: Arc<H>,
        config: RpcConfig,
    ) -> Result<Self, RpcError> {
        let acceptor = TlsAcceptor::from(tls::server_config()?);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| RpcError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| RpcError::Bind { addr, source })?;
        let counters = Arc::new(Counters::default());
        let context = Arc::new(ServerContext {
            acceptor,
            secret,
            config,
            counters: Arc::clone(&counters),
            handshakes: Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES)),
        });
        let accept_task = tokio::spawn(accept_loop(listener, context, handler));
        Ok(Self {
            local_addr,
            counters,
            accept_task: Some(accept_task),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A snapshot of the server's counters.
    pub fn stats(&self) -> ServerStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ServerStats {
            authenticated: read(&self.counters.authenticated),
            auth_rejected: read(&self.counters.auth_rejected),
            handshake_failed: read(&self.counters.handshake_failed),
            protocol_errors: read(&self.counters.protocol_errors),
        }
    }

    /// Stops listening and closes all connections; returns once the port is released.
    pub async fn shutdown(mut self) {
        if let Some(accept_task) = self.accept_task.take() {
            accept_task.abort();
            // Cancellation is the expected outcome; waiting for it means the listener and
            // the connection set have been dropped.
            let _ = accept_task.await;
        }
    }
}

impl Drop for RpcServer {
    fn drop(&mut self) {
        if let Some(accept_task) = &self.accept_task {
            accept_task.abort();
        }
    }
}

/// What every connection task needs besides the handler.
struct ServerContext {
    acceptor: TlsAcceptor,
    secret: ClusterSecret,
    config: RpcConfig,
    counters: Arc<Counters>,
    handshakes: Arc<Semaphore>,
}

/// Accepts until aborted; dropping the `JoinSet` with it aborts every connection.
async fn accept_loop<H: RpcHandler>(
    listener: TcpListener,
    context: Arc<ServerContext>,
    handler: Arc<H>,
) {
    let mut connections = JoinSet::new();
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: pause instead of spinning.
                tracing::warn!(error = %err, "RPC accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let Ok(permit) = Arc::clone(&context.handshakes).try_acquire_owned() else {
            tracing::warn!(%peer, "too many RPC handshakes in progress; dropping connection");
            continue;
        };
        connections.spawn(serve_connection(
            tcp,
            peer,
            Arc::clone(&context),
            Arc::clone(&handler),
            permit,
        ));
    }
}

/// Runs one connection from handshake to close, logging and counting how it ended.
async fn serve_connection<H: RpcHandler>(
    tcp: TcpStream,
    peer: SocketAddr,
    context: Arc<ServerContext>,
    handler: Arc<H>,
    handshake_permit: OwnedSemaphorePermit,
) {
    let counters = &context.counters;
    let handshake = tokio::time::timeout(
        context.config.handshake_timeout,
        handshake(tcp, peer, &context),
    )
    .await;
    drop(handshake_permit);
    let (stream, caller) = match handshake {
        Ok(Ok(session)) => session,
        Ok(Err(err @ RpcError::AuthFailed { .. })) => {
            counters.auth_rejected.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%peer, error = %err, "refused RPC connection");
            return;
        }
        Ok(Err(err)) => {
            counters.handshake_failed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, error = %err, "RPC handshake failed");
            return;
        }
        Err(_) => {
            counters.handshake_failed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "RPC handshake timed out");
            return;
        }
    };
    counters.authenticated.fetch_add(1, Ordering::Relaxed);
    let node_id = caller.node_id.clone();
    match serve_requests(stream, caller, handler, &context.config).await {
        Ok(()) => tracing::debug!(%peer, node = %node_id, "RPC connection closed"),
        Err(err @ RpcError::ConnectionLost { .. }) => {
            tracing::debug!(%peer, node = %node_id, error = %err, "RPC connection lost");
        }
        Err(err) => {
            counters.protocol_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%peer, node = %node_id, error = %err, "closed RPC connection");
        }
    }
}

/// TLS, then the secret proof.
async fn handshake(
    tcp: TcpStream,
    peer: SocketAddr,
    context: &ServerContext,
) -> Result<(TlsStream<TcpStream>, Caller), RpcError> {
    // Responses must not wait for Nagle's timer; failing to set it only costs latency.
    let _ = tcp.set_nodelay(true);
    let tls_error = |reason: String| RpcError::Tls { peer, reason };
    let mut stream = context
        .acceptor
        .accept(tcp)
        .await
        .map_err(|err| tls_error(err.to_string()))?;
    let binding = tls::session_binding(stream.get_ref().1)
        .map_err(|err| tls_error(format!("cannot export keying material: {err}")))?;
    let node_id = auth::authenticate_client(&mut stream, &binding, &context.secret, peer).await?;
    Ok((
        stream,
        Caller {
            addr: peer,
            node_id,
        },
    ))
}

/// Reads requests until the peer hangs up, running each in its own task.
///
/// A permit is taken before each read, so when `max_concurrent_per_connection` requests are
/// running the connection is not read, and TCP flow control slows the sender down.
async fn serve_requests<H: RpcHandler>(
    stream: TlsStream<TcpStream>,
    caller: Caller,
    handler: Arc<H>,
    config: &RpcConfig,
) -> Result<(), RpcError> {
    let peer = caller.addr;
    let caller = Arc::new(caller);
    let (mut reader, writer) = tokio::io::split(stream);
    let max_concurrent = config.max_concurrent_per_connection.max(1);
    let (responses, queue) = mpsc::channel(max_concurrent);
    let running = Arc::new(Semaphore::new(max_concurrent));
    // Dropping this set (on return, or when the server aborts us) stops the writer and every
    // handler still running for this connection.
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        // A write failure also shows up as a read failure below, which ends the connection.
        let _ = pump_frames(writer, queue).await;
    });
    loop {
        let permit =
            Arc::clone(&running)
                .acquire_owned()
                .await
                .map_err(|_| RpcError::ConnectionLost {
                    peer,
                    reason: "request permits closed".to_string(),
                })?;
        let Some(frame) = read_frame(&mut reader).await.map_err(|err| err.at(peer))? else {
            return Ok(());
        };
        while tasks.try_join_next().is_some() {}
        tasks.spawn(answer(
            Arc::clone(&handler),
            Arc::clone(&caller),
            frame,
            responses.clone(),
            permit,
        ));
    }
}

/// Decodes, handles and queues the answer to one request.
async fn answer<H: RpcHandler>(
    handler: Arc<H>,
    caller: Arc<Caller>,
    frame: Frame,
    responses: mpsc::Sender<Vec<u8>>,
    _permit: OwnedSemaphorePermit,
) {
    let reply: Result<H::Response, String> = match decode_body(&frame.body) {
        Ok(request) => Ok(handler.handle(&caller, request).await),
        Err(err) => Err(format!("cannot decode the request: {err}")),
    };
    let encoded = encode_frame(frame.id, &reply).or_else(|err| {
        let failure: Result<H::Response, String> = Err(format!("cannot send the response: {err}"));
        encode_frame(frame.id, &failure)
    });
    match encoded {
        // If the writer is gone the connection is closing; the caller learns that way.
        Ok(bytes) => {
            let _ = responses.send(bytes).await;
        }
        Err(err) => {
            tracing::error!(peer = %caller.addr, error = %err, "cannot encode an RPC error")
        }
    }
}
