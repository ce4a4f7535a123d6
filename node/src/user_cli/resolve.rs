//! Where the user commands get their endpoint and credentials from, in this order:
//! 1. flags (`--endpoint`, `--profile`);
//! 2. the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//!    `AWS_ENDPOINT_URL`);
//! 3. the login cache of `mucura login`;
//! 4. an AWS profile (`AWS_PROFILE` or `default`) in `~/.aws/credentials` and `~/.aws/config`
//!    (`endpoint_url`, static keys or a `credential_process`).
//!
//! Resolution itself is pure (environment, files and cache are passed in) so the order is
//! unit-tested; running a `credential_process` and refreshing the cache happen in the caller.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use time::OffsetDateTime;

use super::aws_files::{config_section, read_or_empty, read_section};
use super::cache::CachedLogin;

/// The region signed into requests when nothing names one: Mucura's default.
pub const DEFAULT_REGION: &str = "us-east-1";

/// A snapshot of the environment variables (injectable for tests).
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// The process environment.
    pub fn from_process() -> Env {
        Env {
            vars: std::env::vars().collect(),
        }
    }

    /// An environment of exactly these variables.
    #[cfg(test)]
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Env {
        Env {
            vars: pairs
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        }
    }

    /// A variable's value; unset and empty are the same (as for the AWS tools).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    /// The home directory.
    pub fn home(&self) -> Option<PathBuf> {
        self.get("HOME").map(PathBuf::from)
    }

    /// Whether the environment carries an access key (then the login cache is not consulted).
    pub fn has_keys(&self) -> bool {
        self.get("AWS_ACCESS_KEY_ID").is_some() || self.get("AWS_SECRET_ACCESS_KEY").is_some()
    }

    /// `AWS_CONFIG_FILE`, else `~/.aws/config`.
    pub fn aws_config_path(&self) -> Option<PathBuf> {
        self.get("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .or_else(|| self.home().map(|home| home.join(".aws").join("config")))
    }

    /// `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`.
    pub fn aws_credentials_path(&self) -> Option<PathBuf> {
        self.get("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| {
                self.home()
                    .map(|home| home.join(".aws").join("credentials"))
            })
    }
}

/// The contents of the AWS shared files (empty when absent).
#[derive(Debug, Clone, Default)]
pub struct AwsFiles {
    /// The config file's path and text.
    pub config: (PathBuf, String),
    /// The credentials file's path and text.
    pub credentials: (PathBuf, String),
}

impl AwsFiles {
    /// Reads both files (missing ones read as empty).
    pub fn load(env: &Env) -> Result<AwsFiles> {
        let read = |path: Option<PathBuf>| -> Result<(PathBuf, String)> {
            match path {
                Some(path) => {
                    let text = read_or_empty(&path)?;
                    Ok((path, text))
                }
                None => Ok((PathBuf::new(), String::new())),
            }
        };
        Ok(AwsFiles {
            config: read(env.aws_config_path())?,
            credentials: read(env.aws_credentials_path())?,
        })
    }

    /// A profile's settings: the credentials file's section over the config file's.
    fn profile(&self, name: &str) -> Option<BTreeMap<String, String>> {
        let from_config = read_section(&self.config.1, &config_section(name));
        let from_credentials = read_section(&self.credentials.1, name);
        match (from_config, from_credentials) {
            (None, None) => None,
            (config, credentials) => {
                let mut merged = config.unwrap_or_default();
                merged.extend(credentials.unwrap_or_default());
                Some(merged)
            }
        }
    }
}

/// The flags that steer resolution.
#[derive(Debug, Clone, Default)]
pub struct ResolveFlags {
    /// `--endpoint`.
    pub endpoint: Option<String>,
    /// `--profile`.
    pub profile: Option<String>,
}

/// Static credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Keys {
    /// The access key id.
    pub access_key_id: String,
    /// The secret.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Keys {
    // The secret and token never reach a log or an error message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("access_key_id", &self.access_key_id)
            .field("session_token", &self.session_token.is_some())
            .finish_non_exhaustive()
    }
}

/// Where the credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// Keys in hand (flags' profile, environment, cache or profile).
    Keys(Keys),
    /// A profile's `credential_process` command, to run.
    Process(String),
}

/// What a user command talks to and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The S3 endpoint (`http(s)://host:port`).
    pub endpoint: String,
    /// The signing region.
    pub region: String,
    /// The credentials.
    pub credentials: CredentialSource,
    /// Where they were found, for messages (`environment`, `login cache`, `profile x`).
    pub origin: String,
}

fn profile_credentials(profile: &BTreeMap<String, String>) -> Option<CredentialSource> {
    match (
        profile.get("aws_access_key_id"),
        profile.get("aws_secret_access_key"),
    ) {
        (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
            Some(CredentialSource::Keys(Keys {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
                session_token: profile
                    .get("aws_session_token")
                    .filter(|token| !token.is_empty())
                    .cloned(),
            }))
        }
        _ => profile
            .get("credential_process")
            .filter(|command| !command.is_empty())
            .map(|command| CredentialSource::Process(command.clone())),
    }
}

fn env_credentials(env: &Env) -> Result<Option<CredentialSource>> {
    match (
        env.get("AWS_ACCESS_KEY_ID"),
        env.get("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(id), Some(secret)) => Ok(Some(CredentialSource::Keys(Keys {
            access_key_id: id.to_string(),
            secret_access_key: secret.to_string(),
            session_token: env.get("AWS_SESSION_TOKEN").map(str::to_string),
        }))),
        (Some(_), None) => bail!("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"),
        (None, Some(_)) => bail!("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"),
        (None, None) => Ok(None),
    }
}

fn cache_keys(cache: &CachedLogin) -> CredentialSource {
    CredentialSource::Keys(Keys {
        access_key_id: cache.access_key_id.clone(),
        secret_access_key: cache.secret_access_key.clone(),
        session_token: Some(cache.session_token.clone()),
    })
}

/// Resolves endpoint, region and credentials. `cache` is the login cache if one exists
/// (stale or not), `cache_path` where it is looked for (for messages).
pub fn resolve(
    flags: &ResolveFlags,
    env: &Env,
    files: &AwsFiles,
    cache: Option<&CachedLogin>,
    cache_path: &Path,
    now: OffsetDateTime,
) -> Result<Resolved> {
    let usable_cache = cache.filter(|cache| cache.usable_at(now));
    let profile_name = flags
        .profile
        .clone()
        .or_else(|| env.get("AWS_PROFILE").map(str::to_string))
        .unwrap_or_else(|| "default".to_string());
    let profile = files.profile(&profile_name);
    if flags.profile.is_some() && profile.is_none() {
        bail!(
            "profile {profile_name:?} is in neither {} nor {}",
            files.config.0.display(),
            files.credentials.0.display()
        );
    }

    let (credentials, origin) = if flags.profile.is_some() {
        let found = profile.as_ref().and_then(profile_credentials);
        match found {
            Some(found) => (found, format!("profile {profile_name}")),
            None => bail!(
                "profile {profile_name:?} has no aws_access_key_id/aws_secret_access_key \
                 and no credential_process"
            ),
        }
    } else if let Some(found) = env_credentials(env)? {
        (found, "environment".to_string())
    } else if let Some(cache) = usable_cache {
        (cache_keys(cache), "login cache".to_string())
    } else if let Some(found) = profile.as_ref().and_then(profile_credentials) {
        (found, format!("profile {profile_name}"))
    } else {
        bail!(
            "{}",
            no_credentials_message(cache, cache_path, &profile_name, files)
        )
    };

    let profile_endpoint = profile
        .as_ref()
        .and_then(|profile| profile.get("endpoint_url"))
        .filter(|url| !url.is_empty())
        .cloned();
    let endpoint = flags
        .endpoint
        .clone()
        .or_else(|| env.get("AWS_ENDPOINT_URL_S3").map(str::to_string))
        .or_else(|| env.get("AWS_ENDPOINT_URL").map(str::to_string))
        .or_else(|| {
            // An explicitly chosen profile's endpoint goes with its keys.
            flags.profile.as_ref().and(profile_endpoint.clone())
        })
        .or_else(|| usable_cache.and_then(|cache| cache.endpoint.clone()))
        .or(profile_endpoint);
    let Some(endpoint) = endpoint else {
        bail!(
            "no S3 endpoint configured: pass --endpoint URL, set AWS_ENDPOINT_URL, run \
             `mucura login`, or set endpoint_url in [{}] of {}",
            config_section(&profile_name),
            files.config.0.display()
        );
    };
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        bail!("the S3 endpoint {endpoint:?} must start with http:// or https://");
    }
    let region = env
        .get("AWS_REGION")
        .or_else(|| env.get("AWS_DEFAULT_REGION"))
        .map(str::to_string)
        .or_else(|| {
            profile
                .as_ref()
                .and_then(|profile| profile.get("region").cloned())
        })
        .filter(|region| !region.is_empty())
        .unwrap_or_else(|| DEFAULT_REGION.to_string());
    Ok(Resolved {
        endpoint: endpoint.trim_end_matches('/').to_string(),
        region,
        credentials,
        origin,
    })
}

fn no_credentials_message(
    cache: Option<&CachedLogin>,
    cache_path: &Path,
    profile_name: &str,
    files: &AwsFiles,
) -> String {
    let cache_note = match cache {
        Some(cache) => format!(
            "the login cache {} expired at {}",
            cache_path.display(),
            cache.expiration
        ),
        None => format!("no login cache at {}", cache_path.display()),
    };
    format!(
        "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, run `mucura login \
         --proxy FILE` ({cache_note}), pass --profile NAME, or add aws_access_key_id and \
         aws_secret_access_key to [{profile_name}] of {}",
        files.credentials.0.display()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "resolve_tests.rs"]
mod tests;
