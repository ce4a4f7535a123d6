//! Inter-node RPC: authenticated, multiplexed request/response over TLS.
//!
//! # Map
//!
//! - [`codec`]: the wire frame (`u32` length, format-version byte, request id, bincode body) and
//!   the size limit every frame obeys on both sides.
//! - [`tls`]: a fresh self-signed certificate per process and the rustls configurations.
//!   Certificates are not what authenticates a peer; they only give us an encrypted channel.
//! - [`auth`]: after the TLS handshake both sides prove knowledge of the [`ClusterSecret`] with
//!   an HMAC-SHA256 challenge-response bound to the TLS session (keying-material exporter), so
//!   a man in the middle holding its own certificate cannot relay the proofs.
//! - [`server`]: [`RpcServer`] accepts connections and runs each request through an
//!   [`RpcHandler`], a bounded number at a time per connection.
//! - [`connection`]: one multiplexed client connection (a writer task and a reader task that
//!   routes responses to their callers by request id).
//! - [`client`]: [`RpcClient`], a pool with one lazily opened connection per peer, reconnection
//!   with backoff, and a timeout on every call.
//! - [`messages`]: the cluster's request and response types; [`payload::Payload`] carries
//!   opaque bytes (records, 1 MiB blocks) efficiently.
//!
//! # A call's path
//!
//! `RpcClient::call(peer, &request, timeout)` finds or opens the peer's connection (TCP, TLS,
//! secret proof), waits for one of the connection's in-flight permits (back-pressure), encodes
//! the request into one frame with a fresh request id, registers a oneshot channel under that
//! id and queues the frame for the writer task. The server reads the frame, waits for a
//! handler permit, decodes and hands the request to [`RpcHandler::handle`] in its own task and
//! queues the encoded `Result<Response, String>` under the same id. The client's reader task
//! hands the bytes to the waiting caller, which decodes them. If the connection dies, every
//! pending caller gets [`RpcError::ConnectionLost`] at once and the next call reconnects.
//!
//! Block transfer: a block (1 MiB by default) travels in one frame, which is the streamed
//! unit; a large object is many block calls, each under the same back-pressure.

pub mod auth;
pub mod client;
pub mod codec;
pub mod connection;
pub mod error;
pub mod messages;
pub mod payload;
pub mod secret;
pub mod server;
pub mod tls;

#[cfg(test)]
mod tests;

use std::time::Duration;

// Until the node wires the RPC layer in, only the tests use these short paths.
#[allow(unused_imports)]
pub use self::{
    client::RpcClient,
    error::RpcError,
    messages::{Request, Response},
    payload::Payload,
    secret::ClusterSecret,
    server::{Caller, RpcHandler, RpcServer},
};

/// Tunables shared by [`RpcClient`] and [`RpcServer`]; [`RpcConfig::default`] suits a LAN.
#[derive(Debug, Clone)]
pub struct RpcConfig {
    /// Longest time to open a connection (TCP + TLS + secret proof) before the call fails.
    pub connect_timeout: Duration,
    /// Longest time the server waits for a new connection's TLS handshake and secret proof;
    /// bounds what a silent or slow client can hold.
    pub handshake_timeout: Duration,
    /// Requests one client connection may have outstanding at once.
    pub max_in_flight_per_peer: usize,
    /// Requests the server runs at once for one connection; when all are busy it stops
    /// reading that connection, and TCP pushes back on the sender.
    pub max_concurrent_per_connection: usize,
    /// Pause after the first failed connection attempt; doubles with each further failure.
    pub backoff_initial: Duration,
    /// Longest pause between connection attempts to an unreachable peer.
    pub backoff_max: Duration,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            // Loopback or LAN connection setup takes milliseconds; 3 s still tolerates a peer
            // that is swapping or saturated, and each call's own timeout cuts in earlier.
            connect_timeout: Duration::from_secs(3),
            handshake_timeout: Duration::from_secs(5),
            // 64 lets a coordinator keep 64 S3 requests' replica calls moving at once to one
            // peer (small metadata calls are latency-bound, so concurrency is what gives
            // throughput), while capping buffered block data at 64 MiB per peer for 1 MiB
            // blocks (64 x 4 MiB at the frame limit).
            max_in_flight_per_peer: 64,
            max_concurrent_per_connection: 64,
            // Short first pause so a restarted peer is found again quickly; the cap keeps a
            // dead peer from being probed more than twice a second per caller node.
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
        }
    }
}
