//! The identity records as stored: users, access keys and sealed secrets, and the rules for
//! their ids.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::store::codec::{decode_payload, CodecError, Record};

/// The id of the built-in root user, whose key lives in `root-credentials.toml`.
pub const ROOT_USER: &str = "root";
/// Longest user id.
pub const MAX_USER_ID_LEN: usize = 64;
/// Prefix of every access key id (root's included).
pub const ACCESS_KEY_PREFIX: &str = "MK";
/// Length of an access key id, as AWS's.
pub const ACCESS_KEY_LEN: usize = 20;
/// Length of a secret key, as AWS's.
pub const SECRET_KEY_LEN: usize = 40;
/// Longest display name or subject DN accepted.
pub const MAX_TEXT_LEN: usize = 1024;

/// Whether a user or key may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Accepted (until it expires).
    Active,
    /// Refused until enabled again.
    Disabled,
    /// A deleted user: refused for good, hidden from listings, and its id never given to
    /// anyone else, since buckets and grants still name it. Keys are removed, never deleted
    /// this way.
    Deleted,
}

/// One user of the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user id (`[a-z0-9][a-z0-9._-]{0,63}`).
    pub id: String,
    /// A name for humans.
    pub display_name: String,
    /// The X.509 subject DN of the user's certificate, if registered.
    pub subject_dn: Option<String>,
    /// Whether the user's keys are accepted.
    pub status: Status,
    /// Most bytes the user may store.
    pub quota_bytes: Option<u64>,
    /// Most objects the user may store.
    pub quota_objects: Option<u64>,
    /// Unix milliseconds from which the user is refused.
    pub expires_at: Option<u64>,
    /// Unix milliseconds of the creation.
    pub created_at: u64,
    /// Unix milliseconds before which no session token of this user is accepted: raising it
    /// to now revokes every outstanding temporary credential at once. 0 revokes nothing.
    pub sessions_not_before: u64,
}

impl User {
    /// Whether requests on behalf of the user are accepted at `now` (Unix milliseconds).
    pub fn is_usable_at(&self, now: u64) -> bool {
        self.status == Status::Active && !expired(self.expires_at, now)
    }
}

impl Record for User {
    const FORMAT_VERSION: u8 = 2;
    const NAME: &'static str = "user";

    fn decode_older(version: u8, payload: &[u8]) -> Option<Result<Self, CodecError>> {
        (version == 1).then(|| decode_payload::<UserV1>(Self::NAME, payload).map(User::from))
    }
}

/// A user as format version 1 stored it (before session revocation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserV1 {
    pub id: String,
    pub display_name: String,
    pub subject_dn: Option<String>,
    pub status: Status,
    pub quota_bytes: Option<u64>,
    pub quota_objects: Option<u64>,
    pub expires_at: Option<u64>,
    pub created_at: u64,
}

impl From<UserV1> for User {
    fn from(old: UserV1) -> User {
        User {
            id: old.id,
            display_name: old.display_name,
            subject_dn: old.subject_dn,
            status: old.status,
            quota_bytes: old.quota_bytes,
            quota_objects: old.quota_objects,
            expires_at: old.expires_at,
            created_at: old.created_at,
            sessions_not_before: 0,
        }
    }
}

/// A secret encrypted with the identity key (see [`super::sealing`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// The random ChaCha20-Poly1305 nonce it was sealed with.
    pub nonce: [u8; 12],
    /// The encrypted secret followed by the 16-byte authentication tag.
    pub ciphertext: Vec<u8>,
}

/// One access key: an id, its sealed secret and the user it acts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    /// The access key id ([`ACCESS_KEY_PREFIX`] and upper-case letters or digits).
    pub id: String,
    /// The secret, sealed with the key id as associated data.
    pub secret: SealedSecret,
    /// The id of the user the key acts for.
    pub user: String,
    /// [`Status::Active`] or [`Status::Disabled`].
    pub status: Status,
    /// Unix milliseconds from which the key is refused.
    pub expires_at: Option<u64>,
    /// Unix milliseconds of the creation.
    pub created_at: u64,
}

impl AccessKey {
    /// Whether requests signed with the key are accepted at `now`, its user aside.
    pub fn is_usable_at(&self, now: u64) -> bool {
        self.status == Status::Active && !expired(self.expires_at, now)
    }
}

impl Record for AccessKey {
    const FORMAT_VERSION: u8 = 1;
    const NAME: &'static str = "access key";
}

fn expired(expires_at: Option<u64>, now: u64) -> bool {
    expires_at.is_some_and(|expiry| now >= expiry)
}

/// Checks a user id: 1 to 64 characters of `[a-z0-9._-]`, starting with a letter or digit
/// (ids appear in logs, ARNs and policies, so they stay plain).
pub fn validate_user_id(id: &str) -> Result<(), String> {
    let mut chars = id.chars();
    let valid = chars
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first.is_ascii_digit())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        && id.len() <= MAX_USER_ID_LEN;
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid user id {id:?}: use 1 to {MAX_USER_ID_LEN} characters of a-z, 0-9, '.', '_' \
             and '-', starting with a letter or digit"
        ))
    }
}

/// Whether `id` has the shape of an access key id (checked before any lookup, so junk ids
/// cost no database read).
pub fn looks_like_access_key(id: &str) -> bool {
    id.len() == ACCESS_KEY_LEN
        && id.starts_with(ACCESS_KEY_PREFIX)
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// A new random access key id: [`ACCESS_KEY_PREFIX`] and 18 characters of `[A-Z0-9]`.
pub fn new_access_key_id() -> Result<String, getrandom::Error> {
    const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let tail = random_string(UPPER_ALNUM, ACCESS_KEY_LEN - ACCESS_KEY_PREFIX.len())?;
    Ok(format!("{ACCESS_KEY_PREFIX}{tail}"))
}

/// A new random secret key: 40 characters of `[A-Za-z0-9]` (238 bits), safe in shells and
/// config files.
pub fn new_secret_key() -> Result<String, getrandom::Error> {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    random_string(ALNUM, SECRET_KEY_LEN)
}

/// `len` characters drawn uniformly from `alphabet` (rejection sampling: no modulo bias).
pub(crate) fn random_string(alphabet: &[u8], len: usize) -> Result<String, getrandom::Error> {
    // The largest multiple of the alphabet size that fits in a byte; bytes above it are
    // redrawn.
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(len);
    let mut pool = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut pool)?;
        for &byte in &pool {
            if out.len() == len {
                break;
            }
            if usize::from(byte) < limit {
                out.push(char::from(alphabet[usize::from(byte) % alphabet.len()]));
            }
        }
    }
    Ok(out)
}

/// The current time in Unix milliseconds.
pub fn now_millis() -> u64 {
    unix_millis(SystemTime::now())
}

/// A time in Unix milliseconds (0 before the epoch), as records store times.
pub fn unix_millis(at: SystemTime) -> u64 {
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}
