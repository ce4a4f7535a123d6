//! Errors of the RPC layer, each naming the peer and what failed.

use std::net::SocketAddr;
use std::time::Duration;

/// Why an RPC call, connection or server could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// No connection could be opened (refused, unreachable, or still backing off after a
    /// recent failure).
    #[error("cannot connect to {peer}: {reason}")]
    Connect {
        /// The peer we tried to reach.
        peer: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// The TLS handshake failed (the peer is not a Mucura node, or speaks no TLS).
    #[error("TLS handshake with {peer} failed: {reason}")]
    Tls {
        /// The other end of the connection.
        peer: SocketAddr,
        /// What rustls or the socket reported.
        reason: String,
    },
    /// The cluster-secret proof failed: the two ends do not share the same secret, or a
    /// third party sits between them.
    #[error("authentication with {peer} failed: {reason}")]
    AuthFailed {
        /// The other end of the connection.
        peer: SocketAddr,
        /// Which proof failed and who noticed.
        reason: String,
    },
    /// The call did not complete within its timeout (the peer may still act on it).
    #[error("call to {peer} timed out after {after:?}")]
    Timeout {
        /// The peer called.
        peer: SocketAddr,
        /// The timeout that expired.
        after: Duration,
    },
    /// The connection died before the response arrived; the next call reconnects.
    #[error("connection to {peer} lost: {reason}")]
    ConnectionLost {
        /// The peer of the dead connection.
        peer: SocketAddr,
        /// Why the connection ended.
        reason: String,
    },
    /// A frame exceeds [`super::codec::MAX_FRAME`]; it was neither sent nor allocated.
    #[error("frame of {size} bytes for {peer} exceeds the {max}-byte limit")]
    FrameTooLarge {
        /// The peer the frame was for or from.
        peer: SocketAddr,
        /// The frame's size (or the size its header announced).
        size: u64,
        /// The limit.
        max: usize,
    },
    /// The peer sent something that is not a valid frame or message.
    #[error("protocol error with {peer}: {reason}")]
    Protocol {
        /// The other end of the connection.
        peer: SocketAddr,
        /// What was malformed.
        reason: String,
    },
    /// The peer received the request but could not handle it (for example it could not
    /// decode it, or its response would not fit in a frame).
    #[error("{peer} could not handle the request: {message}")]
    Remote {
        /// The peer that answered.
        peer: SocketAddr,
        /// The peer's explanation.
        message: String,
    },
    /// The server could not listen on its address.
    #[error("cannot listen for RPC on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
    /// The node's TLS identity or configuration could not be built.
    #[error("cannot set up RPC TLS: {0}")]
    TlsSetup(String),
    /// The node id a client would announce is longer than peers accept.
    #[error("node id of {len} bytes is longer than the {max} bytes peers accept")]
    NodeIdTooLong {
        /// Length given.
        len: usize,
        /// Maximum accepted.
        max: usize,
    },
    /// The cluster secret is too short to be a secret.
    #[error("the cluster secret has {len} bytes, at least {min} are required")]
    WeakSecret {
        /// Length given.
        len: usize,
        /// Minimum accepted.
        min: usize,
    },
}

impl RpcError {
    /// True when retrying the same call on a fresh connection may succeed: the connection or
    /// the peer failed, not the request itself.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. }
                | Self::Tls { .. }
                | Self::Timeout { .. }
                | Self::ConnectionLost { .. }
        )
    }
}
