//! The cluster secret: shared by every node, proven on every connection, never sent.

use std::fmt;

use hmac::{Hmac, KeyInit};
use sha2::Sha256;

use super::RpcError;

/// Shortest secret accepted: 16 bytes (128 bits if random) keeps guessing it out of reach.
pub const MIN_SECRET_LEN: usize = 16;

/// The key every node of one cluster shares. Its `Debug` never shows it, and its bytes are
/// overwritten when it is dropped.
#[derive(Clone)]
pub struct ClusterSecret(Vec<u8>);

impl ClusterSecret {
    /// Wraps `bytes`, refusing secrets shorter than [`MIN_SECRET_LEN`].
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, RpcError> {
        let bytes = bytes.into();
        if bytes.len() < MIN_SECRET_LEN {
            return Err(RpcError::WeakSecret {
                len: bytes.len(),
                min: MIN_SECRET_LEN,
            });
        }
        Ok(Self(bytes))
    }

    /// An HMAC-SHA256 instance keyed by this secret.
    pub(crate) fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC accepts keys of any length")
    }
}

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterSecret(<redacted>)")
    }
}

impl Drop for ClusterSecret {
    fn drop(&mut self) {
        // Best effort without a zeroize dependency: black_box keeps the stores from being
        // optimised away as dead writes.
        self.0.fill(0);
        std::hint::black_box(&self.0);
    }
}
