//! Temporary credentials (STS): stateless session tokens.
//!
//! A session token is the sealed encoding of [`SessionClaims`]: the temporary access key id
//! and secret, the user, the long-term key it came from (none for certificate sessions), the
//! issue and expiry times and the limited-proxy flag, encrypted and authenticated with
//! ChaCha20-Poly1305 under a key derived from the identity master secret ([`Sealer`]). Every
//! node of a cluster derives the same key, so any node validates any token with no table to
//! replicate and no window after issue; nothing is stored per session.
//!
//! What keeps a stateless token honest is checked on every request, from the local copy of the
//! identity tables: the user must still be active and unexpired, the parent key (for
//! `AssumeRole` sessions) still active, and the token issued after the user's
//! `sessions_not_before`, which `mucura admin user revoke-sessions` raises to revoke all of a
//! user's outstanding tokens at once. A session can therefore never outlive its user, its
//! registration or its parent key, and acts with exactly its user's permissions.
//!
//! Rotating the token key means rotating the master secret (the cluster secret), which also
//! orphans sealed secrets (see [`super`]); tokens are short-lived, so the key is not rotated
//! on its own.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::records::{random_string, ACCESS_KEY_LEN};
use super::sealing::Sealer;
use super::IdentityError;
use crate::store::codec::{self, Record};

/// Prefix of temporary access key ids (long-term keys start with `MK`).
pub const SESSION_KEY_PREFIX: &str = "MS";

/// What a session token carries, sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// The temporary access key id requests are signed with.
    pub access_key: String,
    /// Its secret.
    pub secret: String,
    /// The user the session acts for.
    pub user: String,
    /// The long-term key `AssumeRole` was called with; `None` for certificate sessions.
    pub parent_key: Option<String>,
    /// Unix milliseconds of the issue.
    pub issued_at: u64,
    /// Unix milliseconds from which the session is refused.
    pub expires_at: u64,
    /// Whether the session came from a limited proxy.
    pub limited: bool,
}

impl Record for SessionClaims {
    const FORMAT_VERSION: u8 = 1;
    const NAME: &'static str = "session token";
}

/// A new temporary access key id: [`SESSION_KEY_PREFIX`] and 18 of `[A-Z0-9]`.
pub fn new_session_key_id() -> Result<String, getrandom::Error> {
    const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let tail = random_string(UPPER_ALNUM, ACCESS_KEY_LEN - SESSION_KEY_PREFIX.len())?;
    Ok(format!("{SESSION_KEY_PREFIX}{tail}"))
}

/// Whether `id` has the shape of a temporary access key id.
pub fn looks_like_session_key(id: &str) -> bool {
    id.len() == ACCESS_KEY_LEN
        && id.starts_with(SESSION_KEY_PREFIX)
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// The token for `claims`: URL-safe base64 of the sealed encoding (safe in headers, query
/// strings and shell variables).
pub fn seal_claims(sealer: &Sealer, claims: &SessionClaims) -> Result<String, IdentityError> {
    let encoded = codec::encode(claims)?;
    let sealed = sealer.seal_token(&encoded)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed))
}

/// The claims of a token this identity key sealed; `None` for anything else.
pub fn open_claims(sealer: &Sealer, token: &str) -> Option<SessionClaims> {
    // A token is a few hundred bytes; refuse to decode anything far larger.
    if token.len() > 4096 {
        return None;
    }
    let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim())
        .ok()?;
    let encoded = sealer.open_token(&sealed)?;
    codec::decode(&encoded).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn claims() -> SessionClaims {
        SessionClaims {
            access_key: new_session_key_id().unwrap(),
            secret: "s".repeat(40),
            user: "alice".into(),
            parent_key: Some("MKAAAAAAAAAAAAAAAAAA".into()),
            issued_at: 1_000,
            expires_at: 2_000,
            limited: false,
        }
    }

    #[test]
    fn tokens_round_trip_under_the_same_master_only() {
        let sealer = Sealer::from_master(b"master one");
        let claims = claims();
        let token = seal_claims(&sealer, &claims).unwrap();
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(open_claims(&sealer, &token), Some(claims.clone()));
        // The secret never shows in the token.
        assert!(!token.contains(&claims.secret));
        assert_eq!(
            open_claims(&Sealer::from_master(b"master two"), &token),
            None
        );
    }

    #[test]
    fn altered_or_junk_tokens_do_not_open() {
        let sealer = Sealer::from_master(b"master");
        let token = seal_claims(&sealer, &claims()).unwrap();
        let mut bytes = token.clone().into_bytes();
        let middle = bytes.len() / 2;
        bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(bytes).unwrap();
        for junk in [
            altered.as_str(),
            &token[..token.len() - 4],
            "",
            "not base64 !",
            "AAAA",
            &"A".repeat(5000),
        ] {
            assert_eq!(open_claims(&sealer, junk), None, "{junk:.40}");
        }
    }

    #[test]
    fn session_key_ids_are_told_from_long_term_ones() {
        let id = new_session_key_id().unwrap();
        assert!(looks_like_session_key(&id));
        assert!(!super::super::records::looks_like_access_key(&id));
        assert!(!looks_like_session_key("MKAAAAAAAAAAAAAAAAAA"));
        assert!(!looks_like_session_key("MSshort"));
    }
}
