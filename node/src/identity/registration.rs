//! Self-service registration with a personal X.509 certificate (the grid listener's
//! `POST /mucura/v1/register`).
//!
//! The certificate's subject DN names the user. The first registration creates the user (id
//! derived from the DN, so later lookups are one read) with an access key, both expiring with
//! the certificate; registering again with a renewed certificate for the same DN extends the
//! expiry and answers the same user and key, so buckets, grants and configured clients stay
//! valid. A lapsed registration refuses the user's keys but deletes nothing. Proxies, disabled
//! and deleted users cannot register.

use admin::api::IdentityApiError;
use serde::Serialize;

use super::admin::{internal, IdentityAdmin};
use super::records::{now_millis, Status, User, MAX_USER_ID_LEN};
use super::store::IdentityStore;
use super::IdentityError;
use crate::observe::access_log::AdminRecord;

/// Longest part of a derived user id taken from the certificate's CN.
const MAX_CN_SLUG: usize = 40;

/// What a registration answers (JSON, once, with the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registration {
    /// The user id buckets and grants name.
    pub user_id: String,
    /// The access key to sign S3 requests with.
    pub access_key_id: String,
    /// Its secret.
    pub secret_access_key: String,
    /// When the registration (and the key with it) lapses, RFC 3339.
    pub expires_at: String,
    /// Whether this registration created the user (false: renewed).
    pub created: bool,
}

/// The certificate a registration is made with, as the grid listener verified it.
#[derive(Debug, Clone)]
pub struct RegistrationCertificate<'a> {
    /// Subject DN in OpenSSL's one-line form.
    pub subject_dn: &'a str,
    /// Unix milliseconds of the certificate's `notAfter`.
    pub not_after: u64,
    /// Whether the chain ends in a proxy (refused).
    pub is_proxy: bool,
}

/// The user id registration gives a DN: the CN in lower-case letters, digits and dashes, and
/// eight hex digits of the DN's BLAKE3 hash, so two people with the same CN differ and one
/// DN always maps to one id.
pub fn user_id_for_dn(subject_dn: &str) -> String {
    let mut slug = String::new();
    for c in common_name(subject_dn).unwrap_or("").chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= MAX_CN_SLUG {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    let hash = blake3::hash(subject_dn.as_bytes()).to_hex();
    let id = if slug.is_empty() {
        format!("x509-{}", &hash[..8])
    } else {
        format!("{slug}-{}", &hash[..8])
    };
    debug_assert!(id.len() <= MAX_USER_ID_LEN);
    id
}

/// The user a subject DN names: the id registration derives from the DN first (one read),
/// else a user an operator created with that DN (a scan; rare). A live user wins over deleted
/// ones (deleted users keep their DN); a deleted one is answered only when no live user has
/// the DN, so its holder is told rather than given a fresh account.
pub(super) fn find_user_by_dn(
    store: &dyn IdentityStore,
    subject_dn: &str,
) -> Result<Option<User>, IdentityError> {
    let has_dn = |user: &User| user.subject_dn.as_deref() == Some(subject_dn);
    if let Some(user) = store.user(&user_id_for_dn(subject_dn))? {
        if has_dn(&user) && user.status != Status::Deleted {
            return Ok(Some(user));
        }
    }
    let (live, deleted): (Vec<User>, Vec<User>) = store
        .users()?
        .into_iter()
        .filter(has_dn)
        .partition(|user| user.status != Status::Deleted);
    Ok(live.into_iter().chain(deleted).next())
}

/// The most specific CN of a DN in OpenSSL's form.
fn common_name(subject_dn: &str) -> Option<&str> {
    subject_dn
        .rsplit('/')
        .find_map(|rdn| rdn.strip_prefix("CN="))
}

impl IdentityAdmin {
    /// Registers (or renews) the holder of `certificate`; logged as `grid.register` with the
    /// DN as actor.
    pub async fn register_certificate(
        &self,
        certificate: &RegistrationCertificate<'_>,
    ) -> Result<Registration, IdentityApiError> {
        let outcome = self.try_register(certificate).await;
        let (status, error_code) = match &outcome {
            Ok(_) => (200, None),
            Err(IdentityApiError::Conflict(_)) => (403, Some("forbidden")),
            Err(IdentityApiError::Invalid(_)) => (400, Some("invalid")),
            Err(_) => (500, Some("internal")),
        };
        let target = outcome
            .as_ref()
            .map_or(certificate.subject_dn, |r| r.user_id.as_str());
        self.audit.record_admin(&AdminRecord {
            operation: "grid.register",
            actor: certificate.subject_dn,
            target,
            user: outcome.as_ref().ok().map(|r| r.user_id.as_str()),
            status,
            error_code,
        });
        outcome
    }

    async fn try_register(
        &self,
        certificate: &RegistrationCertificate<'_>,
    ) -> Result<Registration, IdentityApiError> {
        if certificate.is_proxy {
            return Err(IdentityApiError::Invalid(
                "a proxy certificate cannot register: use your personal certificate".into(),
            ));
        }
        let now = now_millis();
        if certificate.not_after <= now {
            return Err(IdentityApiError::Invalid(
                "the certificate has expired".into(),
            ));
        }
        let _guard = self.writes.lock().await;
        let existing = find_user_by_dn(&*self.store, certificate.subject_dn).map_err(internal)?;
        let created = existing.is_none();
        let user = match existing {
            Some(mut user) => {
                if user.status != Status::Active {
                    return Err(IdentityApiError::Conflict(format!(
                        "user {} is {}: ask the operator",
                        user.id,
                        if user.status == Status::Deleted {
                            "deleted"
                        } else {
                            "disabled"
                        }
                    )));
                }
                // An operator-made user without expiry keeps none; a registration is
                // extended, never shortened.
                user.expires_at = user
                    .expires_at
                    .map(|expiry| expiry.max(certificate.not_after));
                user
            }
            None => User {
                id: user_id_for_dn(certificate.subject_dn),
                display_name: common_name(certificate.subject_dn)
                    .unwrap_or(certificate.subject_dn)
                    .to_owned(),
                subject_dn: Some(certificate.subject_dn.to_owned()),
                status: Status::Active,
                quota_bytes: None,
                quota_objects: None,
                expires_at: Some(certificate.not_after),
                created_at: now,
                sessions_not_before: 0,
            },
        };
        self.store.put_user(&user).await.map_err(internal)?;
        let (access_key_id, secret_access_key) = match self.usable_key_of(&user.id, now)? {
            Some(pair) => pair,
            None => {
                let key = self.mint_key(&user.id, None, None).await?;
                (key.access_key, key.secret_key)
            }
        };
        let expiry = user.expires_at.unwrap_or(u64::MAX);
        Ok(Registration {
            user_id: user.id,
            access_key_id,
            secret_access_key,
            expires_at: rfc3339_millis(expiry),
            created,
        })
    }

    /// The oldest usable key of `user` with its secret, for a renewal to hand back.
    fn usable_key_of(
        &self,
        user: &str,
        now: u64,
    ) -> Result<Option<(String, String)>, IdentityApiError> {
        let mut keys: Vec<_> = self
            .store
            .keys()
            .map_err(internal)?
            .into_iter()
            .filter(|key| key.user == user && key.is_usable_at(now))
            .collect();
        keys.sort_by_key(|key| key.created_at);
        match keys.into_iter().next() {
            Some(key) => {
                let secret = self.sealer.open(&key.id, &key.secret).map_err(internal)?;
                Ok(Some((key.id, secret)))
            }
            None => Ok(None),
        }
    }
}

/// Unix milliseconds as RFC 3339 (whole seconds).
fn rfc3339_millis(millis: u64) -> String {
    let seconds = i64::try_from(millis / 1000).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "9999-12-31T23:59:59Z".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_valid_stable_and_distinct() {
        let jane = "/DC=org/DC=example/OU=People/CN=Jane Doe 1234";
        let id = user_id_for_dn(jane);
        assert!(id.starts_with("jane-doe-1234-"), "{id}");
        assert_eq!(id, user_id_for_dn(jane));
        assert!(super::super::records::validate_user_id(&id).is_ok());
        let other = user_id_for_dn("/DC=org/DC=other/CN=Jane Doe 1234");
        assert_ne!(id, other);
        let odd = user_id_for_dn("/O=Grid/CN=ÄÖÜ ---");
        assert!(odd.starts_with("x509-"), "{odd}");
        let long = user_id_for_dn(&format!("/CN={}", "a".repeat(200)));
        assert!(
            super::super::records::validate_user_id(&long).is_ok(),
            "{long}"
        );
    }

    #[test]
    fn expiry_is_rendered_rfc3339() {
        assert_eq!(rfc3339_millis(1_795_000_000_999), "2026-11-18T11:06:40Z");
    }
}
