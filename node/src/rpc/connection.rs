//! One authenticated, multiplexed client connection to a peer.
//!
//! Callers encode their request, take an in-flight permit, register a oneshot channel under a
//! fresh request id and queue the frame. A writer task drains the queue into the socket; a
//! reader task hands each response body to the channel registered under its id, whatever the
//! order responses come back in. When either task stops, the connection is marked closed and
//! every registered channel is dropped, so all pending callers learn at once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, ReadHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::AbortHandle;
use tokio_rustls::TlsConnector;

use super::codec::{decode_body, encode_frame, pump_frames, read_frame};
use super::secret::ClusterSecret;
use super::{auth, tls, RpcError};

/// Pending calls and the connection's fate, shared by callers and the two tasks.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Callers waiting for a response, by request id.
    waiting: HashMap<u64, oneshot::Sender<Vec<u8>>>,
    /// Set once, when the connection dies: why.
    closed: Option<String>,
    /// The reader and writer tasks, stopped when the connection closes.
    tasks: Vec<AbortHandle>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind; keep using it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Marks the connection dead, fails every pending call and stops both tasks.
    fn close(&self, reason: String) {
        let (waiting, tasks) = {
            let mut state = self.lock();
            if state.closed.is_none() {
                state.closed = Some(reason);
            }
            (
                std::mem::take(&mut state.waiting),
                std::mem::take(&mut state.tasks),
            )
        };
        drop(waiting);
        for task in tasks {
            task.abort();
        }
    }

    fn close_reason(&self) -> String {
        self.lock()
            .closed
            .clone()
            .unwrap_or_else(|| "connection closed".to_string())
    }
}

/// Removes a call's registration if the call ends early (timeout, cancellation).
struct Registration<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.shared.lock().waiting.remove(&self.id);
    }
}

/// An open connection to one peer, shared by all concurrent calls to it.
pub struct Connection {
    peer: SocketAddr,
    shared: Arc<Shared>,
    outgoing: mpsc::Sender<Vec<u8>>,
    /// Back-pressure: bounds requests outstanding on this connection.
    in_flight: Arc<Semaphore>,
    next_id: AtomicU64,
}

impl Connection {
    /// Connects to `peer`, runs TLS and the secret proof, and starts the two tasks.
    pub async fn open(
        peer: SocketAddr,
        connector: &TlsConnector,
        secret: &ClusterSecret,
        node_id: &str,
        max_in_flight: usize,
    ) -> Result<Self, RpcError> {
        let tcp = TcpStream::connect(peer)
            .await
            .map_err(|err| RpcError::Connect {
                peer,
                reason: err.to_string(),
            })?;
        // Small request frames must not wait for Nagle's timer.
        tcp.set_nodelay(true).map_err(|err| RpcError::Connect {
            peer,
            reason: format!("cannot disable Nagle: {err}"),
        })?;
        let mut stream = connector
            .connect(tls::server_name(), tcp)
            .await
            .map_err(|err| RpcError::Tls {
                peer,
                reason: err.to_string(),
            })?;
        let binding = tls::session_binding(stream.get_ref().1).map_err(|err| RpcError::Tls {
            peer,
            reason: format!("cannot export keying material: {err}"),
        })?;
        auth::authenticate_to_server(&mut stream, &binding, secret, node_id, peer).await?;

        let (reader, writer) = tokio::io::split(stream);
        let max_in_flight = max_in_flight.max(1);
        let (outgoing, queue) = mpsc::channel(max_in_flight);
        let shared = Arc::new(Shared::default());
        let reader_task = tokio::spawn(read_responses(reader, Arc::clone(&shared)));
        let writer_shared = Arc::clone(&shared);
        let writer_task = tokio::spawn(async move {
            let reason = match pump_frames(writer, queue).await {
                Ok(()) => "connection dropped".to_string(),
                Err(err) => format!("write failed: {err}"),
            };
            writer_shared.close(reason);
        });
        {
            let mut state = shared.lock();
            state.tasks.push(reader_task.abort_handle());
            state.tasks.push(writer_task.abort_handle());
            // A task may have died before its handle was stored; stop the survivor too.
            if state.closed.is_some() {
                for task in state.tasks.drain(..) {
                    task.abort();
                }
            }
        }
        Ok(Self {
            peer,
            shared,
            outgoing,
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            next_id: AtomicU64::new(1),
        })
    }

    /// Fails every pending call with `reason` and closes the socket.
    pub fn close(&self, reason: &str) {
        self.shared.close(reason.to_string());
    }

    /// False once the connection has died; the pool then replaces it.
    pub fn is_open(&self) -> bool {
        self.shared.lock().closed.is_none()
    }

    /// Sends `request` and waits for its response (no timeout here: the caller adds one).
    pub async fn call<Req, Resp>(&self, request: &Req) -> Result<Resp, RpcError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let peer = self.peer;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = encode_frame(id, request).map_err(|err| err.at(peer))?;
        let _permit = self.in_flight.acquire().await.map_err(|_| self.lost())?;
        let (sender, receiver) = oneshot::channel();
        let _registration = {
            let mut state = self.shared.lock();
            if state.closed.is_some() {
                drop(state);
                return Err(self.lost());
            }
            state.waiting.insert(id, sender);
            Registration {
                shared: &self.shared,
                id,
            }
        };
        self.outgoing.send(frame).await.map_err(|_| self.lost())?;
        let body = receiver.await.map_err(|_| self.lost())?;
        let reply: Result<Resp, String> = decode_body(&body).map_err(|err| err.at(peer))?;
        reply.map_err(|message| RpcError::Remote { peer, message })
    }

    fn lost(&self) -> RpcError {
        RpcError::ConnectionLost {
            peer: self.peer,
            reason: self.shared.close_reason(),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared
            .close("connection dropped by its pool".to_string());
    }
}

/// Routes each response body to the caller waiting under its id until the stream ends.
async fn read_responses<S: AsyncRead>(reader: ReadHalf<S>, shared: Arc<Shared>) {
    let mut reader = reader;
    let reason = loop {
        match read_frame(&mut reader).await {
            Ok(Some(frame)) => {
                let waiter = shared.lock().waiting.remove(&frame.id);
                // No waiter: the call timed out or was cancelled; drop the late answer.
                if let Some(waiter) = waiter {
                    let _ = waiter.send(frame.body);
                }
            }
            Ok(None) => break "the peer closed the connection".to_string(),
            Err(err) => break err.to_string(),
        }
    };
    shared.close(reason);
}
