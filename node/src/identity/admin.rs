//! The operator side: what the admin API's user and key routes do ([`IdentityAdmin`]).

use std::sync::Arc;

use admin::api::{
    AccessKeyInfo, AccountStatus, CreateKeyRequest, CreateUserRequest, DeletedKey, DeletedUser,
    IdentityApiError, KeyAnswer, KeyList, NewAccessKey, UpdateUserRequest, UserAnswer, UserInfo,
    UserList,
};

use super::records::{
    new_access_key_id, new_secret_key, now_millis, validate_user_id, AccessKey, Status, User,
    MAX_TEXT_LEN, ROOT_USER,
};
use super::sealing::Sealer;
use super::store::IdentityStore;
use super::IdentityError;
use crate::observe::access_log::{AdminRecord, AuditSink, ADMIN_TOKEN_ACTOR};

/// Attempts at drawing an access key id nobody uses (a clash is already a 1 in 36^18 event).
const KEY_ID_ATTEMPTS: usize = 4;

/// Carries out admin requests on users and keys against an [`IdentityStore`], logging each
/// action to an [`AuditSink`].
pub struct IdentityAdmin {
    pub(super) store: Arc<dyn IdentityStore>,
    pub(super) sealer: Arc<Sealer>,
    pub(super) audit: Arc<dyn AuditSink>,
    /// The root key id, which no user key may take.
    root_access_key: String,
    /// Serialises this node's check-then-write sequences (e.g. "no such user yet, create
    /// it"), so two requests to one node cannot both pass the check.
    pub(super) writes: tokio::sync::Mutex<()>,
}

type Outcome<T> = Result<T, IdentityApiError>;

impl IdentityAdmin {
    /// The admin side of `store`, sealing new secrets with `sealer`, logging to `audit`;
    /// `root_access_key` is reserved.
    pub fn new(
        store: Arc<dyn IdentityStore>,
        sealer: Arc<Sealer>,
        audit: Arc<dyn AuditSink>,
        root_access_key: String,
    ) -> IdentityAdmin {
        IdentityAdmin {
            store,
            sealer,
            audit,
            root_access_key,
            writes: tokio::sync::Mutex::new(()),
        }
    }

    /// `POST /v1/users`.
    pub async fn create_user(&self, request: CreateUserRequest) -> Outcome<UserAnswer> {
        let id = request.id.clone();
        let outcome = self.try_create_user(request).await;
        self.log("admin.user.create", &id, Some(&id), &outcome);
        outcome
    }

    /// `GET /v1/users`: every user not deleted, by id.
    pub fn list_users(&self) -> Outcome<UserList> {
        let users = self.store.users().map_err(internal)?;
        Ok(UserList {
            users: users
                .iter()
                .filter(|user| user.status != Status::Deleted)
                .map(user_info)
                .collect(),
        })
    }

    /// `GET /v1/users/{id}`: the user and its keys.
    pub fn show_user(&self, id: &str) -> Outcome<UserAnswer> {
        let user = self.existing_user(id)?;
        let keys = self.keys_of(Some(id))?;
        Ok(UserAnswer {
            user: user_info(&user),
            keys: Some(keys),
        })
    }

    /// `POST /v1/users/{id}/revoke-sessions`: every temporary credential issued to the user
    /// until now stops working (its long-term keys are untouched).
    pub async fn revoke_sessions(&self, id: &str) -> Outcome<UserAnswer> {
        let outcome = async {
            let _guard = self.writes.lock().await;
            let mut user = self.existing_user(id)?;
            // Tokens carry their issue time in milliseconds; one issued in this very
            // millisecond is revoked too.
            user.sessions_not_before = now_millis().saturating_add(1);
            self.store.put_user(&user).await.map_err(internal)?;
            Ok(UserAnswer {
                user: user_info(&user),
                keys: None,
            })
        }
        .await;
        self.log("admin.user.revoke_sessions", id, Some(id), &outcome);
        outcome
    }

    /// `PATCH /v1/users/{id}`: sets the fields the request names and clears the ones it
    /// names as `null`, with the same checks as a creation. Disabled or expired users may
    /// be changed (e.g. given a later expiry); deleted ones are not found.
    pub async fn update_user(&self, id: &str, request: UpdateUserRequest) -> Outcome<UserAnswer> {
        let outcome = async {
            if request.is_empty() {
                return Err(IdentityApiError::Invalid(
                    "the update names no field to change".to_owned(),
                ));
            }
            if let Some(name) = &request.display_name {
                check_text("display name", name)?;
            }
            if let Some(Some(dn)) = &request.subject_dn {
                check_text("subject DN", dn)?;
            }
            let expires_at = request
                .expires_at_unix_ms
                .map(|expiry| future_expiry(expiry, "user"))
                .transpose()?;
            let _guard = self.writes.lock().await;
            let mut user = self.existing_user(id)?;
            if let Some(Some(dn)) = &request.subject_dn {
                self.check_dn_free(dn, Some(id))?;
            }
            let UpdateUserRequest {
                display_name,
                subject_dn,
                quota_bytes,
                quota_objects,
                ..
            } = request;
            user.display_name = display_name.unwrap_or(user.display_name);
            user.subject_dn = subject_dn.unwrap_or(user.subject_dn);
            user.quota_bytes = quota_bytes.unwrap_or(user.quota_bytes);
            user.quota_objects = quota_objects.unwrap_or(user.quota_objects);
            user.expires_at = expires_at.unwrap_or(user.expires_at);
            self.store.put_user(&user).await.map_err(internal)?;
            Ok(UserAnswer {
                user: user_info(&user),
                keys: None,
            })
        }
        .await;
        self.log("admin.user.update", id, Some(id), &outcome);
        outcome
    }

    /// `POST /v1/users/{id}/disable` and `…/enable`.
    pub async fn set_user_status(&self, id: &str, status: AccountStatus) -> Outcome<UserAnswer> {
        let operation = match status {
            AccountStatus::Active => "admin.user.enable",
            AccountStatus::Disabled => "admin.user.disable",
        };
        let outcome = async {
            let _guard = self.writes.lock().await;
            let mut user = self.existing_user(id)?;
            user.status = stored_status(status);
            self.store.put_user(&user).await.map_err(internal)?;
            Ok(UserAnswer {
                user: user_info(&user),
                keys: None,
            })
        }
        .await;
        self.log(operation, id, Some(id), &outcome);
        outcome
    }

    /// `DELETE /v1/users/{id}`: the user is marked deleted (its id stays taken, since its
    /// buckets stay and keep naming it as owner) and its keys are deleted.
    pub async fn delete_user(&self, id: &str) -> Outcome<DeletedUser> {
        let outcome = async {
            let _guard = self.writes.lock().await;
            let mut user = self.existing_user(id)?;
            // Refuse the user first: its keys stop working at once, whatever happens to the
            // key deletions below.
            user.status = Status::Deleted;
            self.store.put_user(&user).await.map_err(internal)?;
            let mut deleted_keys = Vec::new();
            for key in self.store.keys().map_err(internal)? {
                if key.user == id {
                    self.store.delete_key(&key.id).await.map_err(internal)?;
                    deleted_keys.push(key.id);
                }
            }
            Ok(DeletedUser {
                deleted_user: id.to_owned(),
                deleted_keys,
            })
        }
        .await;
        self.log("admin.user.delete", id, Some(id), &outcome);
        outcome
    }

    /// `POST /v1/users/{id}/keys`: a new key for an active user; the answer is the only
    /// place its secret ever appears.
    pub async fn create_key(&self, user: &str, request: CreateKeyRequest) -> Outcome<NewAccessKey> {
        let outcome = async {
            let _guard = self.writes.lock().await;
            let user = self.usable_user(user)?;
            let expires_at = future_expiry(request.expires_at_unix_ms, "key")?;
            self.mint_key(&user.id, expires_at, None).await
        }
        .await;
        let target = outcome.as_ref().map_or(user, |key| key.access_key.as_str());
        self.log("admin.key.create", target, Some(user), &outcome);
        outcome
    }

    /// `GET /v1/keys[?user=U]`: the keys of `user` (which must exist), or every key.
    pub fn list_keys(&self, user: Option<&str>) -> Outcome<KeyList> {
        if let Some(user) = user {
            self.existing_user(user)?;
        }
        Ok(KeyList {
            keys: self.keys_of(user)?,
        })
    }

    /// `POST /v1/keys/{id}/disable` and `…/enable`.
    pub async fn set_key_status(&self, id: &str, status: AccountStatus) -> Outcome<KeyAnswer> {
        let operation = match status {
            AccountStatus::Active => "admin.key.enable",
            AccountStatus::Disabled => "admin.key.disable",
        };
        let outcome = async {
            let _guard = self.writes.lock().await;
            let mut key = self.existing_key(id)?;
            key.status = stored_status(status);
            self.store.put_key(&key).await.map_err(internal)?;
            Ok(KeyAnswer {
                key: key_info(&key),
            })
        }
        .await;
        let user = outcome.as_ref().ok().map(|answer| answer.key.user.clone());
        self.log(operation, id, user.as_deref(), &outcome);
        outcome
    }

    /// `POST /v1/keys/{id}/rotate`: a new key for the same (active) user, then the old key
    /// disabled, so the user always has a working key. The new key keeps the old one's
    /// expiry when that is still ahead.
    pub async fn rotate_key(&self, id: &str) -> Outcome<NewAccessKey> {
        let outcome = async {
            let _guard = self.writes.lock().await;
            let mut old = self.existing_key(id)?;
            let user = self.usable_user(&old.user)?;
            let expires_at = old.expires_at.filter(|&expiry| expiry > now_millis());
            let new = self
                .mint_key(&user.id, expires_at, Some(old.id.clone()))
                .await?;
            old.status = Status::Disabled;
            self.store.put_key(&old).await.map_err(internal)?;
            Ok(new)
        }
        .await;
        let user = outcome.as_ref().ok().map(|key| key.user.clone());
        self.log("admin.key.rotate", id, user.as_deref(), &outcome);
        outcome
    }

    /// `DELETE /v1/keys/{id}`.
    pub async fn delete_key(&self, id: &str) -> Outcome<DeletedKey> {
        let outcome = async {
            let _guard = self.writes.lock().await;
            let key = self.existing_key(id)?;
            self.store.delete_key(&key.id).await.map_err(internal)?;
            Ok((
                DeletedKey {
                    deleted_key: key.id,
                },
                key.user,
            ))
        }
        .await;
        let user = outcome.as_ref().ok().map(|(_, user)| user.clone());
        let outcome = outcome.map(|(deleted, _)| deleted);
        self.log("admin.key.delete", id, user.as_deref(), &outcome);
        outcome
    }

    async fn try_create_user(&self, request: CreateUserRequest) -> Outcome<UserAnswer> {
        validate_user_id(&request.id).map_err(IdentityApiError::Invalid)?;
        if request.id == ROOT_USER {
            return Err(IdentityApiError::Conflict(format!(
                "{ROOT_USER} is the built-in root user"
            )));
        }
        let display_name = request.display_name.unwrap_or_else(|| request.id.clone());
        check_text("display name", &display_name)?;
        if let Some(dn) = &request.subject_dn {
            check_text("subject DN", dn)?;
        }
        let expires_at = future_expiry(request.expires_at_unix_ms, "user")?;
        let _guard = self.writes.lock().await;
        match self.store.user(&request.id).map_err(internal)? {
            Some(existing) if existing.status == Status::Deleted => {
                return Err(IdentityApiError::Conflict(format!(
                    "user {} was deleted; its id is not reused because its buckets still name it",
                    request.id
                )))
            }
            Some(_) => {
                return Err(IdentityApiError::Conflict(format!(
                    "user {} already exists",
                    request.id
                )))
            }
            None => {}
        }
        if let Some(dn) = &request.subject_dn {
            self.check_dn_free(dn, None)?;
        }
        let user = User {
            id: request.id,
            display_name,
            subject_dn: request.subject_dn,
            status: Status::Active,
            quota_bytes: request.quota_bytes,
            quota_objects: request.quota_objects,
            expires_at,
            created_at: now_millis(),
            sessions_not_before: 0,
        };
        self.store.put_user(&user).await.map_err(internal)?;
        Ok(UserAnswer {
            user: user_info(&user),
            keys: None,
        })
    }

    /// Refuses a subject DN another live user already has: certificate logins find a user by
    /// DN, so one DN must name one user. The caller holds the write lock.
    fn check_dn_free(&self, dn: &str, except: Option<&str>) -> Outcome<()> {
        let users = self.store.users().map_err(internal)?;
        match users.iter().find(|user| {
            user.status != Status::Deleted
                && user.subject_dn.as_deref() == Some(dn)
                && Some(user.id.as_str()) != except
        }) {
            Some(holder) => Err(IdentityApiError::Conflict(format!(
                "the subject DN {dn} already belongs to user {}",
                holder.id
            ))),
            None => Ok(()),
        }
    }

    /// Creates and stores a key for `user`; the caller holds the write lock.
    pub(super) async fn mint_key(
        &self,
        user: &str,
        expires_at: Option<u64>,
        replaced_key: Option<String>,
    ) -> Outcome<NewAccessKey> {
        let id = self.unused_key_id()?;
        let secret = new_secret_key().map_err(|err| internal(IdentityError::from(err)))?;
        let key = AccessKey {
            secret: self.sealer.seal(&id, &secret).map_err(internal)?,
            id,
            user: user.to_owned(),
            status: Status::Active,
            expires_at,
            created_at: now_millis(),
        };
        self.store.put_key(&key).await.map_err(internal)?;
        Ok(NewAccessKey {
            access_key: key.id,
            secret_key: secret,
            user: key.user,
            status: AccountStatus::Active,
            expires_at_unix_ms: key.expires_at,
            created_at_unix_ms: key.created_at,
            replaced_key,
        })
    }

    fn unused_key_id(&self) -> Outcome<String> {
        for _ in 0..KEY_ID_ATTEMPTS {
            let id = new_access_key_id().map_err(|err| internal(IdentityError::from(err)))?;
            if id != self.root_access_key && self.store.key(&id).map_err(internal)?.is_none() {
                return Ok(id);
            }
        }
        Err(IdentityApiError::Internal(
            "could not draw an unused access key id".to_owned(),
        ))
    }

    /// The user `id`, unless it does not exist or was deleted (404).
    fn existing_user(&self, id: &str) -> Outcome<User> {
        match self.store.user(id).map_err(internal)? {
            Some(user) if user.status != Status::Deleted => Ok(user),
            _ => Err(IdentityApiError::NotFound(format!("no user {id}"))),
        }
    }

    /// The user `id` if it may get keys: existing (404 otherwise), active and unexpired
    /// (409 otherwise).
    fn usable_user(&self, id: &str) -> Outcome<User> {
        if id == ROOT_USER {
            return Err(IdentityApiError::Conflict(format!(
                "{ROOT_USER}'s key is set in root-credentials.toml, not through the admin API"
            )));
        }
        let user = self.existing_user(id)?;
        if user.status != Status::Active {
            return Err(IdentityApiError::Conflict(format!("user {id} is disabled")));
        }
        if !user.is_usable_at(now_millis()) {
            return Err(IdentityApiError::Conflict(format!("user {id} has expired")));
        }
        Ok(user)
    }

    fn existing_key(&self, id: &str) -> Outcome<AccessKey> {
        self.store
            .key(id)
            .map_err(internal)?
            .ok_or_else(|| IdentityApiError::NotFound(format!("no access key {id}")))
    }

    /// The keys of `user` (or all), by user then id.
    fn keys_of(&self, user: Option<&str>) -> Outcome<Vec<AccessKeyInfo>> {
        let mut keys: Vec<AccessKeyInfo> = self
            .store
            .keys()
            .map_err(internal)?
            .iter()
            .filter(|key| user.is_none_or(|user| key.user == user))
            .map(key_info)
            .collect();
        keys.sort_by(|a, b| (&a.user, &a.access_key).cmp(&(&b.user, &b.access_key)));
        Ok(keys)
    }

    fn log<T>(
        &self,
        operation: &'static str,
        target: &str,
        user: Option<&str>,
        outcome: &Outcome<T>,
    ) {
        let (status, error_code) = match outcome {
            Ok(_) => (200, None),
            Err(failure) => failure_status(failure),
        };
        self.audit.record_admin(&AdminRecord {
            operation,
            actor: ADMIN_TOKEN_ACTOR,
            target,
            user,
            status,
            error_code,
        });
    }
}

/// The HTTP status and error code the admin API answers `failure` with.
fn failure_status(failure: &IdentityApiError) -> (u16, Option<&'static str>) {
    match failure {
        IdentityApiError::NotSupported => (501, Some("not_supported")),
        IdentityApiError::NotFound(_) => (404, Some("not_found")),
        IdentityApiError::Conflict(_) => (409, Some("conflict")),
        IdentityApiError::Invalid(_) => (400, Some("invalid")),
        IdentityApiError::Internal(_) => (500, Some("internal")),
    }
}

pub(super) fn internal(err: IdentityError) -> IdentityApiError {
    tracing::error!("identity store: {err}");
    IdentityApiError::Internal(err.to_string())
}

fn check_text(what: &str, text: &str) -> Outcome<()> {
    if text.len() > MAX_TEXT_LEN || text.chars().any(char::is_control) {
        return Err(IdentityApiError::Invalid(format!(
            "the {what} must be at most {MAX_TEXT_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

/// `expires_at` if it is in the future (an expiry in the past is a mistake, not a wish).
fn future_expiry(expires_at: Option<u64>, what: &str) -> Outcome<Option<u64>> {
    match expires_at {
        Some(expiry) if expiry <= now_millis() => Err(IdentityApiError::Invalid(format!(
            "the {what}'s expiry is in the past"
        ))),
        other => Ok(other),
    }
}

fn stored_status(status: AccountStatus) -> Status {
    match status {
        AccountStatus::Active => Status::Active,
        AccountStatus::Disabled => Status::Disabled,
    }
}

fn api_status(status: Status) -> AccountStatus {
    match status {
        Status::Active => AccountStatus::Active,
        // Deleted users are never shown; a key is never marked deleted.
        Status::Disabled | Status::Deleted => AccountStatus::Disabled,
    }
}

fn user_info(user: &User) -> UserInfo {
    UserInfo {
        id: user.id.clone(),
        display_name: user.display_name.clone(),
        subject_dn: user.subject_dn.clone(),
        status: api_status(user.status),
        quota_bytes: user.quota_bytes,
        quota_objects: user.quota_objects,
        expires_at_unix_ms: user.expires_at,
        created_at_unix_ms: user.created_at,
    }
}

fn key_info(key: &AccessKey) -> AccessKeyInfo {
    AccessKeyInfo {
        access_key: key.id.clone(),
        user: key.user.clone(),
        status: api_status(key.status),
        expires_at_unix_ms: key.expires_at,
        created_at_unix_ms: key.created_at,
    }
}
