//! Root credentials: from the environment, or generated once and kept 0600 in the data dir;
//! and the [`KeyRing`] S3 requests are verified with: the root key, then users' keys
//! ([`crate::identity`]).

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use s3api::auth::{Credential, CredentialProvider, SecretKey, SessionTokenError};
use s3api::sts::{CertificateRequest, RoleRequest, Session};
use s3api::{S3Error, S3ErrorCode, S3Result};
use serde::{Deserialize, Serialize};

use crate::identity::records::ROOT_USER;
use crate::identity::UserKeys;

/// Environment variables that set the root access key and secret.
pub const ACCESS_KEY_ENV: &str = "MUCURA_ROOT_ACCESS_KEY";
pub const SECRET_KEY_ENV: &str = "MUCURA_ROOT_SECRET_KEY";
/// File in the data dir holding generated credentials and the admin token.
pub const CREDENTIALS_FILE: &str = "root-credentials.toml";

/// The root user's key pair and the admin API token.
#[derive(Clone, Serialize, Deserialize)]
pub struct RootCredentials {
    pub access_key: String,
    pub secret_key: String,
    pub admin_token: String,
}

/// Where the credentials came from, for the startup message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Environment,
    Stored,
    Generated,
}

impl RootCredentials {
    /// Environment variables win; otherwise the stored file; otherwise new ones are generated
    /// and stored (mode 0600) so restarts keep them.
    pub fn load_or_create(data_dir: &Path) -> Result<(RootCredentials, Origin)> {
        let path = data_dir.join(CREDENTIALS_FILE);
        let stored = match std::fs::read_to_string(&path) {
            Ok(text) => Some(
                toml::from_str::<RootCredentials>(&text)
                    .with_context(|| format!("parsing {}", path.display()))?,
            ),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
        };
        let env_access = std::env::var(ACCESS_KEY_ENV).ok();
        let env_secret = std::env::var(SECRET_KEY_ENV).ok();
        match (env_access, env_secret) {
            (Some(access_key), Some(secret_key)) => {
                validate(&access_key, &secret_key)?;
                let admin_token = match &stored {
                    Some(stored) => stored.admin_token.clone(),
                    None => random_token(32)?,
                };
                let creds = RootCredentials {
                    access_key,
                    secret_key,
                    admin_token,
                };
                if stored.is_none() {
                    creds.store(&path)?;
                }
                Ok((creds, Origin::Environment))
            }
            (Some(_), None) | (None, Some(_)) => {
                bail!("set both {ACCESS_KEY_ENV} and {SECRET_KEY_ENV}, or neither")
            }
            (None, None) => match stored {
                Some(creds) => Ok((creds, Origin::Stored)),
                None => {
                    let creds = RootCredentials {
                        access_key: format!("MK{}", random_token(18)?.to_ascii_uppercase()),
                        secret_key: random_token(40)?,
                        admin_token: random_token(32)?,
                    };
                    creds.store(&path)?;
                    Ok((creds, Origin::Generated))
                }
            },
        }
    }

    fn store(&self, path: &Path) -> Result<()> {
        let text = toml::to_string(self).context("encoding credentials")?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", path.display()))
    }
}

fn validate(access_key: &str, secret_key: &str) -> Result<()> {
    if access_key.len() < 3 || !access_key.chars().all(|c| c.is_ascii_alphanumeric()) {
        bail!("{ACCESS_KEY_ENV} must be at least 3 ASCII letters or digits");
    }
    if secret_key.len() < 8 {
        bail!("{SECRET_KEY_ENV} must be at least 8 characters");
    }
    Ok(())
}

/// A random string of `len` characters from [a-z0-9].
fn random_token(len: usize) -> Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|err| anyhow::anyhow!("no randomness: {err}"))?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect())
}

/// The keys S3 requests may be signed with: the root key (user `root`), then the keys of
/// users, if the node has any.
pub struct KeyRing {
    root: Credential,
    users: Option<UserKeys>,
}

impl KeyRing {
    /// A key ring knowing only the root key.
    pub fn new(root: &RootCredentials) -> Self {
        KeyRing {
            root: Credential {
                access_key: root.access_key.clone(),
                secret: SecretKey::new(root.secret_key.clone()),
                user: ROOT_USER.to_owned(),
            },
            users: None,
        }
    }

    /// The same ring, also accepting the active keys of active users in `users`.
    pub fn with_user_keys(mut self, users: UserKeys) -> Self {
        self.users = Some(users);
        self
    }
}

impl CredentialProvider for KeyRing {
    fn lookup(&self, access_key: &str) -> Option<Credential> {
        if access_key == self.root.access_key {
            return Some(self.root.clone());
        }
        self.users.as_ref()?.lookup(access_key)
    }

    fn lookup_session(
        &self,
        access_key: &str,
        session_token: &str,
    ) -> Result<Credential, SessionTokenError> {
        match &self.users {
            Some(users) => users.lookup_session(access_key, session_token),
            None => Err(SessionTokenError::Invalid),
        }
    }

    fn assume_role(&self, request: &RoleRequest<'_>) -> S3Result<Session> {
        self.user_keys()?.assume_role(request)
    }

    fn assume_role_with_certificate(&self, request: &CertificateRequest<'_>) -> S3Result<Session> {
        self.user_keys()?.assume_role_with_certificate(request)
    }

    /// Root, and the users of the store (none on a node that keeps no users).
    fn knows_user(&self, id: &str) -> S3Result<bool> {
        if id == self.root.user {
            return Ok(true);
        }
        match &self.users {
            Some(users) => users.knows_user(id),
            None => Ok(false),
        }
    }
}

impl KeyRing {
    fn user_keys(&self) -> S3Result<&UserKeys> {
        self.users.as_ref().ok_or_else(|| {
            S3Error::new(
                S3ErrorCode::NotImplemented,
                "This node keeps no users, so it issues no temporary credentials",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_credentials_persist_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        std::env::remove_var(ACCESS_KEY_ENV);
        std::env::remove_var(SECRET_KEY_ENV);
        let (first, origin) = RootCredentials::load_or_create(dir.path()).unwrap();
        assert_eq!(origin, Origin::Generated);
        let (second, origin) = RootCredentials::load_or_create(dir.path()).unwrap();
        assert_eq!(origin, Origin::Stored);
        assert_eq!(first.secret_key, second.secret_key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(dir.path().join(CREDENTIALS_FILE)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
        let ring = KeyRing::new(&first);
        assert!(ring.lookup(&first.access_key).is_some());
        assert!(ring.lookup("nobody").is_none());
        // Without a user store, root is the only user grants may name.
        assert!(ring.knows_user(ROOT_USER).unwrap());
        assert!(!ring.knows_user("nobody").unwrap());
    }

    #[test]
    fn corrupt_credentials_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CREDENTIALS_FILE), "not toml [").unwrap();
        std::env::remove_var(ACCESS_KEY_ENV);
        assert!(RootCredentials::load_or_create(dir.path()).is_err());
    }
}
