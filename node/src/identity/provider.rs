//! The S3 side: which access keys sign requests, and for whom.

use std::sync::Arc;

use s3api::auth::{Credential, SecretKey};

use super::records::{looks_like_access_key, now_millis};
use super::sealing::Sealer;
use super::store::IdentityStore;

/// Resolves the access keys of users (the root key is [`crate::credentials::KeyRing`]'s).
/// Cheap to clone.
#[derive(Clone)]
pub struct UserKeys {
    store: Arc<dyn IdentityStore>,
    sealer: Arc<Sealer>,
}

impl UserKeys {
    /// Keys from `store`, whose secrets `sealer` opens.
    pub fn new(store: Arc<dyn IdentityStore>, sealer: Arc<Sealer>) -> UserKeys {
        UserKeys { store, sealer }
    }

    /// The credential of `access_key` now; see [`UserKeys::lookup_at`].
    pub fn lookup(&self, access_key: &str) -> Option<Credential> {
        self.lookup_at(access_key, now_millis())
    }

    /// The credential of `access_key` at `now` (Unix milliseconds): only an active,
    /// unexpired key of an active, unexpired user has one. Anything else, including a store
    /// or sealing failure (logged), is `None`, which S3 answers with `InvalidAccessKeyId`.
    pub fn lookup_at(&self, access_key: &str, now: u64) -> Option<Credential> {
        if !looks_like_access_key(access_key) {
            return None;
        }
        let key = match self.store.key(access_key) {
            Ok(Some(key)) => key,
            Ok(None) => return None,
            Err(err) => {
                tracing::warn!(access_key, "reading the access key: {err}");
                return None;
            }
        };
        if !key.is_usable_at(now) {
            return None;
        }
        match self.store.user(&key.user) {
            Ok(Some(user)) if user.is_usable_at(now) => {}
            Ok(_) => return None,
            Err(err) => {
                tracing::warn!(access_key, user = %key.user, "reading the key's user: {err}");
                return None;
            }
        }
        match self.sealer.open(&key.id, &key.secret) {
            Ok(secret) => Some(Credential {
                access_key: key.id,
                secret: SecretKey::new(secret),
                user: key.user,
            }),
            Err(err) => {
                tracing::warn!(access_key, "{err}");
                None
            }
        }
    }
}
