//! The S3 side: which access keys sign requests, and for whom; and the temporary credentials
//! (STS sessions, [`super::sessions`]) issued to users and to holders of grid certificates.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use s3api::auth::{Credential, SecretKey, SessionTokenError};
use s3api::sts::{CertificateRequest, RoleRequest, Session};
use s3api::{S3Error, S3ErrorCode, S3Result};

use super::records::{
    looks_like_access_key, new_secret_key, now_millis, unix_millis, Status, User, ROOT_USER,
};
use super::registration::find_user_by_dn;
use super::sealing::Sealer;
use super::sessions::{
    looks_like_session_key, new_session_key_id, open_claims, seal_claims, SessionClaims,
};
use super::store::IdentityStore;

/// What certificate sessions may be: the grid listener's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificateSessionPolicy {
    /// The longest session `AssumeRoleWithCertificate` issues.
    pub max_lifetime: Duration,
    /// Whether limited proxies are refused (otherwise accepted and marked).
    pub reject_limited: bool,
}

impl Default for CertificateSessionPolicy {
    fn default() -> Self {
        CertificateSessionPolicy {
            max_lifetime: s3api::sts::MAX_DURATION,
            reject_limited: false,
        }
    }
}

/// Resolves the access keys of users (the root key is [`crate::credentials::KeyRing`]'s)
/// and issues and opens their session tokens. Cheap to clone.
#[derive(Clone)]
pub struct UserKeys {
    store: Arc<dyn IdentityStore>,
    sealer: Arc<Sealer>,
    certificates: CertificateSessionPolicy,
}

impl UserKeys {
    /// Keys from `store`, whose secrets `sealer` opens.
    pub fn new(store: Arc<dyn IdentityStore>, sealer: Arc<Sealer>) -> UserKeys {
        UserKeys {
            store,
            sealer,
            certificates: CertificateSessionPolicy::default(),
        }
    }

    /// The same keys, issuing certificate sessions under `policy`.
    pub fn with_certificate_policy(mut self, policy: CertificateSessionPolicy) -> UserKeys {
        self.certificates = policy;
        self
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
        self.usable_user(&key.user, now)?;
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

    /// Whether grants and policies may name `id`: a user that exists and was not deleted.
    /// Disabled and expired users may be named, since they can be enabled again. A store
    /// failure is an internal error: refusing the grant as "Invalid id" would blame the
    /// client for a fault of ours, and accepting it would skip the check.
    pub fn knows_user(&self, id: &str) -> S3Result<bool> {
        match self.store.user(id) {
            Ok(user) => Ok(user.is_some_and(|user| user.status != Status::Deleted)),
            Err(err) => {
                tracing::warn!(user = %id, "reading the user: {err}");
                Err(S3Error::internal("the user store could not be read"))
            }
        }
    }

    /// The user `id` if requests on its behalf are accepted at `now`.
    fn usable_user(&self, id: &str, now: u64) -> Option<User> {
        match self.store.user(id) {
            Ok(Some(user)) if user.is_usable_at(now) => Some(user),
            Ok(_) => None,
            Err(err) => {
                tracing::warn!(user = %id, "reading the user: {err}");
                None
            }
        }
    }

    /// The claims of a session token presented with `access_key`, if they still hold at
    /// `now`: see [`super::sessions`] for what is checked.
    pub fn session_at(
        &self,
        access_key: &str,
        token: &str,
        now: u64,
    ) -> Result<SessionClaims, SessionTokenError> {
        if !looks_like_session_key(access_key) {
            return Err(SessionTokenError::Invalid);
        }
        let claims = open_claims(&self.sealer, token).ok_or(SessionTokenError::Invalid)?;
        if claims.access_key != access_key {
            return Err(SessionTokenError::Invalid);
        }
        if now >= claims.expires_at {
            return Err(SessionTokenError::Expired);
        }
        let user = self
            .usable_user(&claims.user, now)
            .ok_or(SessionTokenError::Invalid)?;
        if claims.issued_at < user.sessions_not_before {
            return Err(SessionTokenError::Invalid);
        }
        if let Some(parent) = &claims.parent_key {
            let parent_usable = matches!(
                self.store.key(parent),
                Ok(Some(key)) if key.is_usable_at(now) && key.user == claims.user
            );
            if !parent_usable {
                return Err(SessionTokenError::Invalid);
            }
        }
        Ok(claims)
    }

    /// The credential of a temporary key with its token, now.
    pub fn lookup_session(
        &self,
        access_key: &str,
        token: &str,
    ) -> Result<Credential, SessionTokenError> {
        let claims = self.session_at(access_key, token, now_millis())?;
        Ok(Credential {
            access_key: claims.access_key,
            secret: SecretKey::new(claims.secret),
            user: claims.user,
        })
    }

    /// `AssumeRole`: a session for the caller's own user, ending no later than the caller's
    /// credentials (a session calling it passes its own end on, and its parent key).
    pub fn assume_role(&self, request: &RoleRequest<'_>) -> S3Result<Session> {
        if request.user == ROOT_USER {
            return Err(S3Error::new(
                S3ErrorCode::AccessDenied,
                "Roles may not be assumed by root accounts.",
            ));
        }
        let now = unix_millis(request.now);
        let (parent_key, not_after, limited) = match request.session_token {
            Some(token) => {
                let caller = self
                    .session_at(request.access_key, token, now)
                    .map_err(|_| S3Error::from(S3ErrorCode::InvalidToken))?;
                (caller.parent_key, caller.expires_at, caller.limited)
            }
            None => {
                let key = self
                    .store
                    .key(request.access_key)
                    .map_err(S3Error::internal)?
                    .ok_or_else(|| S3Error::from(S3ErrorCode::InvalidAccessKeyId))?;
                let user = self
                    .usable_user(&key.user, now)
                    .ok_or_else(|| S3Error::from(S3ErrorCode::InvalidAccessKeyId))?;
                let not_after = earliest(&[key.expires_at, user.expires_at]);
                (Some(key.id), not_after, false)
            }
        };
        let expires_at = (now.saturating_add(millis_of(request.duration))).min(not_after);
        self.issue(request.user, parent_key, now, expires_at, limited)
    }

    /// `AssumeRoleWithCertificate`: a session for the user registered with the certificate's
    /// subject DN, ending no later than the requested duration, the configured maximum, the
    /// chain's earliest expiry and the registration.
    pub fn assume_role_with_certificate(
        &self,
        request: &CertificateRequest<'_>,
    ) -> S3Result<Session> {
        let certificate = request.certificate;
        if certificate.limited && self.certificates.reject_limited {
            return Err(S3Error::new(
                S3ErrorCode::AccessDenied,
                "This server does not accept limited proxies",
            ));
        }
        let now = unix_millis(request.now);
        let user = self
            .registered_user(&certificate.subject_dn)?
            .filter(|user| user.is_usable_at(now))
            .ok_or_else(|| {
                S3Error::new(
                    S3ErrorCode::AccessDenied,
                    format!(
                        "No active registration for {}: register with your certificate \
                         (mucura register) first",
                        certificate.subject_dn
                    ),
                )
            })?;
        let lifetime = request.duration.min(self.certificates.max_lifetime);
        let expires_at = now
            .saturating_add(millis_of(lifetime))
            .min(unix_millis(certificate.not_after))
            .min(user.expires_at.unwrap_or(u64::MAX));
        self.issue(&user.id, None, now, expires_at, certificate.limited)
    }

    /// The user registered for a subject DN ([`find_user_by_dn`]).
    pub fn registered_user(&self, subject_dn: &str) -> S3Result<Option<User>> {
        find_user_by_dn(&*self.store, subject_dn).map_err(S3Error::internal)
    }

    fn issue(
        &self,
        user: &str,
        parent_key: Option<String>,
        now: u64,
        expires_at: u64,
        limited: bool,
    ) -> S3Result<Session> {
        if expires_at <= now {
            return Err(S3Error::new(
                S3ErrorCode::AccessDenied,
                "The credentials this session would derive from expire now",
            ));
        }
        let claims = SessionClaims {
            access_key: new_session_key_id().map_err(S3Error::internal)?,
            secret: new_secret_key().map_err(S3Error::internal)?,
            user: user.to_owned(),
            parent_key,
            issued_at: now,
            expires_at,
            limited,
        };
        let token = seal_claims(&self.sealer, &claims).map_err(S3Error::internal)?;
        tracing::info!(
            user,
            access_key = %claims.access_key,
            expires_at,
            limited,
            "issued temporary credentials"
        );
        Ok(Session {
            access_key: claims.access_key,
            secret: SecretKey::new(claims.secret),
            token,
            user: claims.user,
            expires_at: UNIX_EPOCH + Duration::from_millis(expires_at),
        })
    }
}

fn millis_of(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The earliest of optional expiries (`u64::MAX` when none is set).
fn earliest(expiries: &[Option<u64>]) -> u64 {
    expiries.iter().flatten().copied().min().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{kv_store, sealer, user};
    use super::*;

    #[tokio::test]
    async fn grants_may_name_existing_users_even_disabled_but_not_deleted_ones() {
        let (_dir, store) = kv_store();
        for (id, status) in [
            ("alice", Status::Active),
            ("bob", Status::Disabled),
            ("carol", Status::Deleted),
        ] {
            let mut record = user(id);
            record.status = status;
            store.put_user(&record).await.unwrap();
        }
        let keys = UserKeys::new(store, sealer());
        assert!(keys.knows_user("alice").unwrap());
        assert!(keys.knows_user("bob").unwrap());
        assert!(!keys.knows_user("carol").unwrap());
        assert!(!keys.knows_user("no-such-user").unwrap());
    }
}
