//! Mutual proof of the cluster secret, bound to the TLS session.
//!
//! ```text
//! client                                              server
//!   ClientHello { nonce_c, node_id }          -->
//!                                             <--     ServerProof { nonce_s, mac_s }
//!   checks mac_s; ClientProof { mac_c }       -->     (or Verdict { accepted: false })
//!                                             <--     checks mac_c; Verdict { accepted }
//! ```
//!
//! `mac_x = HMAC-SHA256(secret, role_x | binding | nonce_c | nonce_s | node_id)` where
//! `binding` is exported from the TLS session ([`super::tls::session_binding`]). Fresh nonces
//! on both sides stop replays, distinct role labels stop a proof being reflected back, and the
//! binding stops a man in the middle from relaying proofs between its two TLS sessions. The
//! side that finds a bad proof says so before closing, so both ends report a clear
//! [`RpcError::AuthFailed`] instead of one of them seeing a bare disconnect. Handshake frames
//! use request id [`HANDSHAKE_ID`].

use std::net::SocketAddr;

use hmac::Mac;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};

use super::codec::{decode_body, read_frame_within, write_frame, FrameError, HANDSHAKE_ID};
use super::secret::ClusterSecret;
use super::tls::BINDING_LEN;
use super::RpcError;

/// Length of each side's random challenge.
const NONCE_LEN: usize = 32;

/// Longest node id a client may announce; ids are names, not payloads.
pub const MAX_NODE_ID_LEN: usize = 256;

/// Largest handshake frame: the hello with the longest node id fits with room to spare, and
/// a peer that has proven nothing cannot make us buffer more.
const MAX_HANDSHAKE_FRAME: usize = 1024;

const SERVER_ROLE: &[u8] = b"mucura-rpc server proof v1";
const CLIENT_ROLE: &[u8] = b"mucura-rpc client proof v1";

/// The handshake's messages, in the order they are sent.
#[derive(Debug, Serialize, Deserialize)]
enum AuthMessage {
    ClientHello {
        nonce: [u8; NONCE_LEN],
        node_id: String,
    },
    ServerProof {
        nonce: [u8; NONCE_LEN],
        proof: Vec<u8>,
    },
    ClientProof {
        proof: Vec<u8>,
    },
    Verdict {
        accepted: bool,
    },
}

/// What both proofs cover besides the role.
struct Transcript<'a> {
    binding: &'a [u8; BINDING_LEN],
    client_nonce: [u8; NONCE_LEN],
    server_nonce: [u8; NONCE_LEN],
    node_id: &'a str,
}

impl Transcript<'_> {
    fn mac(&self, secret: &ClusterSecret, role: &[u8]) -> hmac::Hmac<sha2::Sha256> {
        let mut mac = secret.mac();
        mac.update(role);
        mac.update(self.binding);
        mac.update(&self.client_nonce);
        mac.update(&self.server_nonce);
        mac.update(&(self.node_id.len() as u32).to_be_bytes());
        mac.update(self.node_id.as_bytes());
        mac
    }

    fn prove(&self, secret: &ClusterSecret, role: &[u8]) -> Vec<u8> {
        self.mac(secret, role).finalize().into_bytes().to_vec()
    }

    /// Constant-time check of the other side's proof.
    fn verify(&self, secret: &ClusterSecret, role: &[u8], proof: &[u8]) -> bool {
        self.mac(secret, role).verify_slice(proof).is_ok()
    }
}

fn random_nonce(peer: SocketAddr) -> Result<[u8; NONCE_LEN], RpcError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|err| RpcError::AuthFailed {
        peer,
        reason: format!("no randomness for the challenge: {err}"),
    })?;
    Ok(nonce)
}

async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    message: &AuthMessage,
    peer: SocketAddr,
) -> Result<(), RpcError> {
    write_frame(stream, HANDSHAKE_ID, message)
        .await
        .map_err(|err| err.at(peer))
}

async fn receive<S: AsyncRead + Unpin>(
    stream: &mut S,
    peer: SocketAddr,
) -> Result<AuthMessage, RpcError> {
    let frame = read_frame_within(stream, MAX_HANDSHAKE_FRAME)
        .await
        .map_err(|err| err.at(peer))?
        .ok_or_else(|| RpcError::AuthFailed {
            peer,
            reason: "the peer closed the connection during authentication".to_string(),
        })?;
    decode_body(&frame.body).map_err(|err: FrameError| err.at(peer))
}

fn unexpected(peer: SocketAddr, message: &AuthMessage) -> RpcError {
    RpcError::Protocol {
        peer,
        reason: format!("unexpected handshake message {message:?}"),
    }
}

/// Client side: proves the secret to the server at `peer` as `node_id`, and checks that the
/// server knows it too.
pub async fn authenticate_to_server<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    binding: &[u8; BINDING_LEN],
    secret: &ClusterSecret,
    node_id: &str,
    peer: SocketAddr,
) -> Result<(), RpcError> {
    let client_nonce = random_nonce(peer)?;
    let hello = AuthMessage::ClientHello {
        nonce: client_nonce,
        node_id: node_id.to_string(),
    };
    send(stream, &hello, peer).await?;
    let (server_nonce, server_proof) = match receive(stream, peer).await? {
        AuthMessage::ServerProof { nonce, proof } => (nonce, proof),
        other => return Err(unexpected(peer, &other)),
    };
    let transcript = Transcript {
        binding,
        client_nonce,
        server_nonce,
        node_id,
    };
    if !transcript.verify(secret, SERVER_ROLE, &server_proof) {
        // Tell the server why we hang up; if even that fails, our own error is what matters.
        let _ = send(stream, &AuthMessage::Verdict { accepted: false }, peer).await;
        return Err(RpcError::AuthFailed {
            peer,
            reason: "the server did not prove knowledge of the cluster secret".to_string(),
        });
    }
    let proof = transcript.prove(secret, CLIENT_ROLE);
    send(stream, &AuthMessage::ClientProof { proof }, peer).await?;
    match receive(stream, peer).await? {
        AuthMessage::Verdict { accepted: true } => Ok(()),
        AuthMessage::Verdict { accepted: false } => Err(RpcError::AuthFailed {
            peer,
            reason: "the server rejected our proof: the cluster secrets differ".to_string(),
        }),
        other => Err(unexpected(peer, &other)),
    }
}

/// Server side: checks that the client at `peer` knows the secret, proving it in turn;
/// returns the node id the client announced (covered by its proof).
pub async fn authenticate_client<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    binding: &[u8; BINDING_LEN],
    secret: &ClusterSecret,
    peer: SocketAddr,
) -> Result<String, RpcError> {
    let (client_nonce, node_id) = match receive(stream, peer).await? {
        AuthMessage::ClientHello { nonce, node_id } => (nonce, node_id),
        other => return Err(unexpected(peer, &other)),
    };
    if node_id.len() > MAX_NODE_ID_LEN {
        return Err(RpcError::Protocol {
            peer,
            reason: format!("node id of {} bytes is too long", node_id.len()),
        });
    }
    let transcript = Transcript {
        binding,
        client_nonce,
        server_nonce: random_nonce(peer)?,
        node_id: &node_id,
    };
    let proof = transcript.prove(secret, SERVER_ROLE);
    let server_proof = AuthMessage::ServerProof {
        nonce: transcript.server_nonce,
        proof,
    };
    send(stream, &server_proof, peer).await?;
    let accepted = match receive(stream, peer).await? {
        AuthMessage::ClientProof { proof } => transcript.verify(secret, CLIENT_ROLE, &proof),
        AuthMessage::Verdict { accepted: false } => {
            return Err(RpcError::AuthFailed {
                peer,
                reason: "the client rejected our proof: the cluster secrets differ".to_string(),
            })
        }
        other => return Err(unexpected(peer, &other)),
    };
    send(stream, &AuthMessage::Verdict { accepted }, peer).await?;
    if accepted {
        Ok(node_id)
    } else {
        Err(RpcError::AuthFailed {
            peer,
            reason: format!("node {node_id:?} did not prove knowledge of the cluster secret"),
        })
    }
}
