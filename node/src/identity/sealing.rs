//! Secrets at rest: each access key's secret is sealed with ChaCha20-Poly1305 under a key
//! derived from a master secret the metadata never contains (see the module doc of
//! [`super`] for why sealing and not hashing).

use std::io::Write;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::Mac;

use super::records::SealedSecret;
use super::IdentityError;
use crate::rpc::secret::ClusterSecret;

/// File in the data dir holding a single node's master secret (32 random bytes, mode 0600).
pub const MASTER_KEY_FILE: &str = "identity.key";
/// BLAKE3 key-derivation context of the sealing key. Changing it makes every stored secret
/// unreadable, so a new scheme gets a new context (and a new record version).
const SEALING_CONTEXT: &str = "mucura identity secrets v1";
/// BLAKE3 key-derivation context of the session token key ([`super::sessions`]): a key of
/// its own, so a sealed secret can never pass for a token or the reverse.
const TOKEN_CONTEXT: &str = "mucura session tokens v1";
/// Associated data of every session token (binds the format version).
const TOKEN_AAD: &[u8] = b"mucura session token v1";
/// Bytes of the nonce in front of a sealed token.
const NONCE_LEN: usize = 12;
/// What the cluster secret is turned into the master secret with (the secret type hands out
/// keyed MACs, never its bytes).
const CLUSTER_MASTER_LABEL: &[u8] = b"mucura identity master v1";
/// Length of a master secret generated for a single node.
const MASTER_LEN: usize = 32;

/// Seals and opens access key secrets. The key id is the associated data, so a sealed
/// secret copied onto another key's record does not open.
pub struct Sealer {
    cipher: ChaCha20Poly1305,
    tokens: ChaCha20Poly1305,
}

impl Sealer {
    /// A sealer whose key is `blake3::derive_key(SEALING_CONTEXT, master)`.
    pub fn from_master(master: &[u8]) -> Sealer {
        let key = blake3::derive_key(SEALING_CONTEXT, master);
        let token_key = blake3::derive_key(TOKEN_CONTEXT, master);
        Sealer {
            cipher: ChaCha20Poly1305::new(&Key::from(key)),
            tokens: ChaCha20Poly1305::new(&Key::from(token_key)),
        }
    }

    /// The sealer of a cluster: every node derives the same key from the cluster secret, so
    /// a key created through one node opens on all of them.
    pub fn for_cluster(secret: &ClusterSecret) -> Sealer {
        let mut mac = secret.mac();
        mac.update(CLUSTER_MASTER_LABEL);
        Sealer::from_master(&mac.finalize().into_bytes())
    }

    /// The sealer of a single node: its master secret is read from `DATA_DIR/identity.key`,
    /// created (32 random bytes, mode 0600) on first use.
    pub fn load_or_create(data_dir: &Path) -> Result<Sealer, IdentityError> {
        let path = data_dir.join(MASTER_KEY_FILE);
        let master = match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == MASTER_LEN => bytes,
            // Never replace a damaged file: the keys sealed under it would be lost for good.
            Ok(bytes) => {
                return Err(IdentityError::MasterKey(format!(
                    "{} holds {} bytes instead of {MASTER_LEN}; restore it from a backup",
                    path.display(),
                    bytes.len()
                )))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let mut master = vec![0u8; MASTER_LEN];
                getrandom::fill(&mut master)?;
                write_new_private_file(&path, &master).map_err(|err| {
                    IdentityError::MasterKey(format!("creating {}: {err}", path.display()))
                })?;
                master
            }
            Err(err) => {
                return Err(IdentityError::MasterKey(format!(
                    "reading {}: {err}",
                    path.display()
                )))
            }
        };
        Ok(Sealer::from_master(&master))
    }

    /// Seals `secret` for the key `key_id` under a fresh random nonce.
    pub fn seal(&self, key_id: &str, secret: &str) -> Result<SealedSecret, IdentityError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce)?;
        let payload = Payload {
            msg: secret.as_bytes(),
            aad: key_id.as_bytes(),
        };
        let ciphertext = self
            .cipher
            .encrypt(&Nonce::from(nonce), payload)
            .map_err(|_| IdentityError::Sealing(key_id.to_owned()))?;
        Ok(SealedSecret { nonce, ciphertext })
    }

    /// Opens the secret of key `key_id`; fails if it was sealed under another master or for
    /// another key, or was altered.
    pub fn open(&self, key_id: &str, sealed: &SealedSecret) -> Result<String, IdentityError> {
        let payload = Payload {
            msg: &sealed.ciphertext,
            aad: key_id.as_bytes(),
        };
        let plain = self
            .cipher
            .decrypt(&Nonce::from(sealed.nonce), payload)
            .map_err(|_| IdentityError::Unsealing(key_id.to_owned()))?;
        String::from_utf8(plain).map_err(|_| IdentityError::Unsealing(key_id.to_owned()))
    }
}

impl Sealer {
    /// Encrypts a session token's claims: a fresh nonce followed by the ciphertext and tag.
    pub fn seal_token(&self, claims: &[u8]) -> Result<Vec<u8>, IdentityError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)?;
        let payload = Payload {
            msg: claims,
            aad: TOKEN_AAD,
        };
        let ciphertext = self
            .tokens
            .encrypt(&Nonce::from(nonce), payload)
            .map_err(|_| IdentityError::Sealing("session token".to_owned()))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// The claims of a token [`Sealer::seal_token`] made with the same master secret;
    /// `None` for anything else (altered, truncated, another cluster's).
    pub fn open_token(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        let (nonce, ciphertext) = sealed.split_at_checked(NONCE_LEN)?;
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let payload = Payload {
            msg: ciphertext,
            aad: TOKEN_AAD,
        };
        self.tokens.decrypt(&Nonce::from(nonce), payload).ok()
    }
}

/// Creates `path` with `contents`, readable by the owner only; fails if it exists.
fn write_new_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}
