//! `mucura login`, `env`, `credential-process` and `register`: temporary credentials from a
//! grid proxy, kept in the login cache and refreshed when it goes stale, and long-term keys
//! from a user certificate.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::aws_files::{config_section, update_file};
use super::cache::{self, CachedLogin, Freshness};
use super::grid_client::{self, check_grid_url, DEFAULT_DURATION_SECONDS};
use super::resolve::Env;
use super::tls::Trust;

/// The AWS profile `login` and `register --write-profile` maintain.
pub const PROFILE: &str = "mucura";

/// The environment variable naming the grid endpoint.
pub const GRID_URL_ENV: &str = "MUCURA_GRID_URL";

/// The proxy grid tools use: `$X509_USER_PROXY`, else `/tmp/x509up_u<uid>`.
pub fn default_proxy(env: &Env) -> PathBuf {
    match env.get("X509_USER_PROXY") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(format!(
            "/tmp/x509up_u{}",
            rustix::process::getuid().as_raw()
        )),
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    Ok(cwd.join(path))
}

/// What `login` needs beyond the environment.
pub struct LoginRequest {
    /// `--proxy` (default [`default_proxy`]).
    pub proxy: Option<PathBuf>,
    /// `--grid-url` (default `$MUCURA_GRID_URL`, then the cache's).
    pub grid_url: Option<String>,
    /// `--duration`.
    pub duration_seconds: Option<u64>,
    /// `--ca-file`.
    pub ca_file: Option<PathBuf>,
    /// `--endpoint`: the S3 endpoint when the server names none.
    pub endpoint: Option<String>,
    /// `--force`: ignore a fresh cache.
    pub force: bool,
}

/// Obtains credentials for `proxy` from the grid endpoint and stores them in the cache.
async fn obtain(
    env: &Env,
    cache_path: &Path,
    proxy: PathBuf,
    grid_url: String,
    ca_file: Option<PathBuf>,
    duration_seconds: Option<u64>,
    fallback_endpoint: Option<String>,
) -> Result<CachedLogin> {
    let fingerprint = cache::fingerprint(&proxy).with_context(|| {
        format!(
            "cannot read the proxy file {} (make one with grid-proxy-init or voms-proxy-init, \
             or pass --proxy)",
            proxy.display()
        )
    })?;
    let trust = Trust::from_env(ca_file.clone(), env);
    let login = grid_client::assume_role_with_certificate(
        &grid_url,
        &proxy,
        &trust,
        duration_seconds.unwrap_or(DEFAULT_DURATION_SECONDS),
    )
    .await?;
    let entry = cache::new_entry(
        &login.credentials,
        login.s3_endpoint.or(fallback_endpoint),
        proxy,
        fingerprint,
        grid_url,
        ca_file,
        duration_seconds,
    );
    cache::store(cache_path, &entry)?;
    Ok(entry)
}

/// `mucura login`.
pub async fn login(env: &Env, request: LoginRequest) -> Result<()> {
    let proxy = absolute(&request.proxy.unwrap_or_else(|| default_proxy(env)))?;
    let cache_path = cache::cache_path(env)?;
    let existing = cache::load(&cache_path);
    let now = OffsetDateTime::now_utc();
    let grid_url = request
        .grid_url
        .or_else(|| env.get(GRID_URL_ENV).map(str::to_string))
        .map(|url| check_grid_url(&url))
        .transpose()?;
    let reusable = existing.filter(|cached| {
        !request.force
            && grid_url.as_ref().is_none_or(|url| *url == cached.grid_url)
            && cached.freshness(now, &proxy, cache::fingerprint(&proxy).as_deref())
                == Freshness::Fresh
    });
    let entry = match reusable {
        Some(cached) => {
            println!(
                "Reusing cached credentials (valid until {}).",
                cached.expiration
            );
            cached
        }
        None => {
            let Some(grid_url) = grid_url else {
                bail!("no grid endpoint: pass --grid-url https://HOST:PORT or set {GRID_URL_ENV}");
            };
            obtain(
                env,
                &cache_path,
                proxy,
                grid_url,
                request.ca_file,
                request.duration_seconds,
                request.endpoint,
            )
            .await?
        }
    };
    println!(
        "Credentials valid until {}, cached in {}.",
        entry.expiration,
        cache_path.display()
    );
    match &entry.endpoint {
        Some(endpoint) => println!("S3 endpoint: {endpoint}"),
        None => eprintln!(
            "warning: the grid endpoint named no S3 endpoint: pass --endpoint URL to login"
        ),
    }
    write_login_profile(env, entry.endpoint.as_deref())?;
    Ok(())
}

/// Writes `[profile mucura]` with `credential_process` (and `endpoint_url`) into the AWS
/// config file, leaving the rest of the file untouched.
fn write_login_profile(env: &Env, endpoint: Option<&str>) -> Result<()> {
    let Some(config) = env.aws_config_path() else {
        eprintln!("warning: HOME is not set: no AWS profile written");
        return Ok(());
    };
    let exe = std::env::current_exe().context("cannot find the mucura binary's path")?;
    let exe = exe.to_string_lossy();
    // The AWS tools split credential_process on whitespace unless quoted.
    let command = if exe.contains(char::is_whitespace) {
        format!("\"{exe}\" credential-process")
    } else {
        format!("{exe} credential-process")
    };
    let mut values = vec![("credential_process", command.as_str())];
    if let Some(endpoint) = endpoint {
        values.push(("endpoint_url", endpoint));
    }
    update_file(&config, &config_section(PROFILE), &values, false)?;
    println!(
        "AWS profile '{PROFILE}' written to {} (use AWS_PROFILE={PROFILE} or --profile {PROFILE}).",
        config.display()
    );
    Ok(())
}

/// The cached credentials, refreshed from their proxy when stale (within 5 minutes of expiry,
/// or the proxy file changed). `Ok(None)` when there is no cache at all. A failed refresh
/// falls back to still-valid credentials with a warning.
pub async fn current(env: &Env) -> Result<Option<CachedLogin>> {
    let cache_path = cache::cache_path(env)?;
    let Some(cached) = cache::load(&cache_path) else {
        return Ok(None);
    };
    let now = OffsetDateTime::now_utc();
    let fingerprint = cache::fingerprint(&cached.proxy_path);
    if cached.freshness(now, &cached.proxy_path.clone(), fingerprint.as_deref()) == Freshness::Fresh
    {
        return Ok(Some(cached));
    }
    if fingerprint.is_none() {
        // No proxy to refresh with: what is cached is all there is.
        return Ok(Some(cached));
    }
    let refreshed = obtain(
        env,
        &cache_path,
        cached.proxy_path.clone(),
        cached.grid_url.clone(),
        cached.ca_file.clone(),
        cached.duration_seconds,
        cached.endpoint.clone(),
    )
    .await;
    match refreshed {
        Ok(entry) => Ok(Some(entry)),
        Err(err) if cached.usable_at(now) => {
            eprintln!("warning: could not refresh the cached credentials: {err:#}");
            Ok(Some(cached))
        }
        Err(err) => Err(err.context(format!(
            "the cached credentials expired at {} and could not be refreshed",
            cached.expiration
        ))),
    }
}

/// The cache for `env` and `credential-process`: refreshed, and required to be valid.
async fn required(env: &Env) -> Result<CachedLogin> {
    let Some(cached) = current(env).await? else {
        bail!(
            "not logged in: run `mucura login --proxy FILE --grid-url URL` first (no cache at {})",
            cache::cache_path(env)?.display()
        );
    };
    if !cached.usable_at(OffsetDateTime::now_utc()) {
        bail!(
            "the cached credentials expired at {}: renew the proxy and run `mucura login`",
            cached.expiration
        );
    }
    Ok(cached)
}

/// Quotes a value for a POSIX shell when it needs it.
fn shell_quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_./:=+@%,".contains(&byte));
    if plain {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', "'\\''"))
    }
}

/// The `export` lines of `mucura env`.
pub fn env_exports(cached: &CachedLogin) -> String {
    let mut lines = vec![
        ("AWS_ACCESS_KEY_ID", cached.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", cached.secret_access_key.as_str()),
        ("AWS_SESSION_TOKEN", cached.session_token.as_str()),
    ];
    if let Some(endpoint) = &cached.endpoint {
        lines.push(("AWS_ENDPOINT_URL", endpoint));
    }
    lines
        .into_iter()
        .map(|(name, value)| format!("export {name}={}\n", shell_quote(value)))
        .collect()
}

/// The JSON of `mucura credential-process` (the AWS `credential_process` contract).
pub fn credential_process_json(cached: &CachedLogin) -> Result<String> {
    let expiration = cached
        .expires_at()
        .format(&Rfc3339)
        .context("cannot format the expiry")?;
    let document = serde_json::json!({
        "Version": 1,
        "AccessKeyId": cached.access_key_id,
        "SecretAccessKey": cached.secret_access_key,
        "SessionToken": cached.session_token,
        "Expiration": expiration,
    });
    Ok(document.to_string())
}

/// `mucura env`.
pub async fn env_command(env: &Env) -> Result<()> {
    print!("{}", env_exports(&required(env).await?));
    Ok(())
}

/// `mucura credential-process`.
pub async fn credential_process(env: &Env) -> Result<()> {
    println!("{}", credential_process_json(&required(env).await?)?);
    Ok(())
}

/// What `register` needs.
pub struct RegisterRequest {
    /// `--cert`.
    pub cert: PathBuf,
    /// `--key`.
    pub key: PathBuf,
    /// `--grid-url`.
    pub grid_url: Option<String>,
    /// `--ca-file`.
    pub ca_file: Option<PathBuf>,
    /// `--write-profile`.
    pub write_profile: bool,
}

/// `mucura register`.
pub async fn register(env: &Env, request: RegisterRequest) -> Result<()> {
    let Some(grid_url) = request
        .grid_url
        .or_else(|| env.get(GRID_URL_ENV).map(str::to_string))
    else {
        bail!("no grid endpoint: pass --grid-url https://HOST:PORT or set {GRID_URL_ENV}");
    };
    let grid_url = check_grid_url(&grid_url)?;
    let trust = Trust::from_env(request.ca_file, env);
    let (registration, _expires) =
        grid_client::register(&grid_url, &request.cert, &request.key, &trust).await?;
    println!("user id:            {}", registration.user_id);
    println!("access key id:      {}", registration.access_key_id);
    println!("secret access key:  {}", registration.secret_access_key);
    println!("S3 endpoint:        {}", registration.s3_endpoint);
    println!("expires at:         {}", registration.expires_at);
    if request.write_profile {
        let (Some(credentials), Some(config)) = (env.aws_credentials_path(), env.aws_config_path())
        else {
            bail!("HOME is not set: cannot write the AWS profile");
        };
        update_file(
            &credentials,
            PROFILE,
            &[
                ("aws_access_key_id", registration.access_key_id.as_str()),
                (
                    "aws_secret_access_key",
                    registration.secret_access_key.as_str(),
                ),
            ],
            true,
        )?;
        update_file(
            &config,
            &config_section(PROFILE),
            &[("endpoint_url", registration.s3_endpoint.as_str())],
            false,
        )?;
        println!(
            "AWS profile '{PROFILE}' written to {} and {}.",
            credentials.display(),
            config.display()
        );
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::user_cli::sts::StsCredentials;
    use time::macros::datetime;

    fn cached() -> CachedLogin {
        cache::new_entry(
            &StsCredentials {
                access_key_id: "ASIAKEY".into(),
                secret_access_key: "se/cr+et".into(),
                session_token: "to'ken".into(),
                expiration: datetime!(2026-11-26 20:00 UTC),
            },
            Some("https://s3.example:9000".into()),
            PathBuf::from("/tmp/x509up_u1000"),
            "ff".into(),
            "https://grid.example:8443".into(),
            None,
            None,
        )
    }

    #[test]
    fn env_exports_are_shell_safe() {
        assert_eq!(
            env_exports(&cached()),
            "export AWS_ACCESS_KEY_ID=ASIAKEY\nexport AWS_SECRET_ACCESS_KEY=se/cr+et\n\
             export AWS_SESSION_TOKEN='to'\\''ken'\nexport AWS_ENDPOINT_URL=https://s3.example:9000\n"
        );
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
    }

    #[test]
    fn credential_process_output_follows_the_aws_contract() {
        let json: serde_json::Value =
            serde_json::from_str(&credential_process_json(&cached()).unwrap()).unwrap();
        assert_eq!(json["Version"], 1);
        assert_eq!(json["AccessKeyId"], "ASIAKEY");
        assert_eq!(json["SecretAccessKey"], "se/cr+et");
        assert_eq!(json["SessionToken"], "to'ken");
        assert_eq!(json["Expiration"], "2026-11-26T20:00:00Z");
    }

    #[test]
    fn the_default_proxy_follows_x509_user_proxy() {
        let env = Env::from_pairs(&[("X509_USER_PROXY", "/scratch/proxy")]);
        assert_eq!(default_proxy(&env), PathBuf::from("/scratch/proxy"));
        let uid = rustix::process::getuid().as_raw();
        assert_eq!(
            default_proxy(&Env::from_pairs(&[])),
            PathBuf::from(format!("/tmp/x509up_u{uid}"))
        );
    }

    #[tokio::test]
    async fn env_without_a_login_says_how_to_log_in() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::from_pairs(&[("XDG_CACHE_HOME", dir.path().to_str().unwrap())]);
        let error = required(&env).await.unwrap_err().to_string();
        assert!(error.contains("not logged in"), "{error}");
        // An expired cache whose proxy is gone cannot be refreshed: the message says so.
        let mut entry = cached();
        entry.proxy_path = dir.path().join("gone");
        entry.expiration = "2020-01-01T00:00:00Z".into();
        cache::store(&cache::cache_path(&env).unwrap(), &entry).unwrap();
        let error = required(&env).await.unwrap_err().to_string();
        assert!(error.contains("expired at 2020-01-01T00:00:00Z"), "{error}");
    }
}
