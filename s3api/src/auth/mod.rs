//! Request authentication: SigV4 (header, presigned query, streaming payloads) and SigV2
//! (header, query), plus the client-side signer our own tools use.
//!
//! INTERFACE SKELETON — being implemented (see sigv4.rs, sigv2.rs, chunked.rs, signer.rs).

use std::time::SystemTime;

use crate::error::S3Result;

/// A secret access key: compared in constant time, never printed.
#[derive(Clone)]
pub struct SecretKey(String);

impl SecretKey {
    /// Wraps a secret string.
    pub fn new(secret: impl Into<String>) -> Self {
        SecretKey(secret.into())
    }
    /// The secret, for computing signatures only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(****)")
    }
}

/// A known access key and whom it belongs to.
#[derive(Debug, Clone)]
pub struct Credential {
    pub access_key: String,
    pub secret: SecretKey,
    /// The user the key acts for.
    pub user: String,
}

/// Where secrets for access keys come from (deny by default: unknown keys are `None`).
pub trait CredentialProvider: Send + Sync {
    /// The credential for an access key id, or `None` if the key is unknown.
    fn lookup(&self, access_key: &str) -> Option<Credential>;
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// No signature at all.
    Anonymous,
    /// A verified signature by this access key.
    User { access_key: String, user: String },
}

/// What remains to be verified in the body after the headers authenticated.
#[derive(Debug, Clone)]
pub enum PayloadCheck {
    /// Nothing beyond Content-MD5 / checksums (SigV2, anonymous, UNSIGNED-PAYLOAD).
    Unsigned,
    /// The body's SHA-256 must equal this lowercase hex digest.
    Sha256(String),
    /// `aws-chunked` body, each chunk signed (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]).
    SignedChunks(chunked::ChunkSigningContext),
    /// `aws-chunked` body without chunk signatures (STREAMING-UNSIGNED-PAYLOAD-TRAILER).
    UnsignedChunks,
}

/// The outcome of authenticating a request's head.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub identity: Identity,
    pub payload: PayloadCheck,
}

pub mod chunked;
pub mod signer;
pub mod sigv2;
pub mod sigv4;

/// Authenticates a request head. `vhost_bucket` is the bucket taken from the Host header for
/// virtual-host style requests (SigV2 signs it as part of the resource).
pub fn authenticate(
    _parts: &http::request::Parts,
    _vhost_bucket: Option<&str>,
    _creds: &dyn CredentialProvider,
    _now: SystemTime,
) -> S3Result<Authenticated> {
    todo!("being implemented")
}
