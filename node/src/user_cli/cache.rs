//! The login cache: the temporary credentials `mucura login` obtained, with what is needed to
//! decide whether they can be reused (expiry, the proxy file they came from and its
//! fingerprint) and to refresh them (grid URL, trust settings), in a 0600 JSON file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::aws_files::write_file;
use super::resolve::Env;
use super::sts::StsCredentials;

/// Cached credentials are replaced this long before they expire, so a job never starts a
/// transfer with credentials that lapse in the middle of it (the 5-minute rule).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The cache format version, so a later layout can still read (or knowingly drop) this one.
const CACHE_VERSION: u32 = 1;

/// What `mucura login` stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedLogin {
    /// Layout version ([`CACHE_VERSION`]).
    pub version: u32,
    /// Temporary access key id.
    pub access_key_id: String,
    /// Its secret.
    pub secret_access_key: String,
    /// The session token.
    pub session_token: String,
    /// Expiry, RFC 3339.
    pub expiration: String,
    /// The S3 endpoint the grid endpoint named (or `--endpoint`).
    pub endpoint: Option<String>,
    /// The proxy file the credentials were obtained with (absolute).
    pub proxy_path: PathBuf,
    /// SHA-256 (hex) of that file's contents then.
    pub proxy_sha256: String,
    /// The grid endpoint, to refresh from.
    pub grid_url: String,
    /// A PEM bundle trusted for the grid endpoint instead of the CA directory.
    pub ca_file: Option<PathBuf>,
    /// The requested lifetime, reused when refreshing.
    pub duration_seconds: Option<u64>,
}

/// Whether cached credentials may be used as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Valid beyond the refresh margin and obtained with the current proxy.
    Fresh,
    /// Within [`REFRESH_MARGIN`] of expiry (or past it).
    Expiring,
    /// The proxy file is another one, or its contents changed (a renewed proxy).
    ProxyChanged,
}

impl CachedLogin {
    /// The expiry as a time (an unreadable one counts as already expired).
    pub fn expires_at(&self) -> OffsetDateTime {
        OffsetDateTime::parse(&self.expiration, &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Whether the credentials still work at `now` at all (refreshing aside).
    pub fn usable_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at() > now
    }

    /// Decides reuse for a login with `proxy_path`, whose current fingerprint is
    /// `fingerprint` (`None` when the file cannot be read: the credentials then stay usable
    /// until the margin, as nothing better can be obtained).
    pub fn freshness(
        &self,
        now: OffsetDateTime,
        proxy_path: &Path,
        fingerprint: Option<&str>,
    ) -> Freshness {
        if proxy_path != self.proxy_path
            || fingerprint.is_some_and(|current| current != self.proxy_sha256)
        {
            return Freshness::ProxyChanged;
        }
        if self.expires_at() - now <= REFRESH_MARGIN {
            return Freshness::Expiring;
        }
        Freshness::Fresh
    }
}

/// SHA-256 (hex) of a file's contents, `None` if it cannot be read.
pub fn fingerprint(path: &Path) -> Option<String> {
    let contents = std::fs::read(path).ok()?;
    Some(hex::encode(Sha256::digest(&contents)))
}

/// `$XDG_CACHE_HOME/mucura/credentials.json`, else `~/.cache/mucura/credentials.json`.
pub fn cache_path(env: &Env) -> Result<PathBuf> {
    let base = match env.get("XDG_CACHE_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => env
            .home()
            .context("neither XDG_CACHE_HOME nor HOME is set: nowhere to keep the login cache")?
            .join(".cache"),
    };
    Ok(base.join("mucura").join("credentials.json"))
}

/// Reads the cache; `None` when there is none, or when it is unreadable or of another
/// version (a warning says so: a fresh login rewrites it).
pub fn load(path: &Path) -> Option<CachedLogin> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return None,
        Err(err) => {
            eprintln!(
                "warning: ignoring the login cache {}: {err}",
                path.display()
            );
            return None;
        }
    };
    match serde_json::from_slice::<CachedLogin>(&text) {
        Ok(cached) if cached.version == CACHE_VERSION => Some(cached),
        Ok(cached) => {
            eprintln!(
                "warning: ignoring the login cache {} (version {}, expected {CACHE_VERSION})",
                path.display(),
                cached.version
            );
            None
        }
        Err(err) => {
            eprintln!(
                "warning: ignoring the login cache {}: {err}",
                path.display()
            );
            None
        }
    }
}

/// Writes the cache with mode 0600 (its directory 0700).
pub fn store(path: &Path, cached: &CachedLogin) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        use std::os::unix::fs::PermissionsExt;
        // Best effort: the directory may be shared on purpose; the file itself is 0600.
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let json = serde_json::to_vec_pretty(cached).context("cannot encode the login cache")?;
    write_file(path, &json, true)
}

/// A cache entry for freshly obtained credentials.
pub fn new_entry(
    credentials: &StsCredentials,
    endpoint: Option<String>,
    proxy_path: PathBuf,
    proxy_sha256: String,
    grid_url: String,
    ca_file: Option<PathBuf>,
    duration_seconds: Option<u64>,
) -> CachedLogin {
    CachedLogin {
        version: CACHE_VERSION,
        access_key_id: credentials.access_key_id.clone(),
        secret_access_key: credentials.secret_access_key.clone(),
        session_token: credentials.session_token.clone(),
        expiration: credentials
            .expiration
            .format(&Rfc3339)
            .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string()),
        endpoint,
        proxy_path,
        proxy_sha256,
        grid_url,
        ca_file,
        duration_seconds,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn entry(expiration: OffsetDateTime) -> CachedLogin {
        new_entry(
            &StsCredentials {
                access_key_id: "AK".into(),
                secret_access_key: "SK".into(),
                session_token: "TOKEN".into(),
                expiration,
            },
            Some("http://s3:9000".into()),
            PathBuf::from("/tmp/x509up_u1000"),
            "aaaa".into(),
            "https://grid:8443".into(),
            None,
            Some(3600),
        )
    }

    #[test]
    fn reuse_ends_five_minutes_before_expiry() {
        let cached = entry(datetime!(2026-11-26 20:00 UTC));
        let proxy = Path::new("/tmp/x509up_u1000");
        assert_eq!(
            cached.freshness(datetime!(2026-11-26 19:54:59 UTC), proxy, Some("aaaa")),
            Freshness::Fresh
        );
        assert_eq!(
            cached.freshness(datetime!(2026-11-26 19:55 UTC), proxy, Some("aaaa")),
            Freshness::Expiring
        );
        assert_eq!(
            cached.freshness(datetime!(2026-11-26 21:00 UTC), proxy, Some("aaaa")),
            Freshness::Expiring
        );
        // Inside the margin the credentials still work for a command that cannot refresh.
        assert!(cached.usable_at(datetime!(2026-11-26 19:59 UTC)));
        assert!(!cached.usable_at(datetime!(2026-11-26 20:00 UTC)));
    }

    #[test]
    fn a_changed_or_other_proxy_invalidates_the_cache() {
        let cached = entry(datetime!(2026-11-26 20:00 UTC));
        let now = datetime!(2026-11-26 19:00 UTC);
        let proxy = Path::new("/tmp/x509up_u1000");
        assert_eq!(
            cached.freshness(now, proxy, Some("bbbb")),
            Freshness::ProxyChanged
        );
        assert_eq!(
            cached.freshness(now, Path::new("/tmp/other"), Some("aaaa")),
            Freshness::ProxyChanged
        );
        // An unreadable proxy cannot be compared: the credentials stay in use.
        assert_eq!(cached.freshness(now, proxy, None), Freshness::Fresh);
    }

    #[test]
    fn the_cache_round_trips_through_a_0600_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let env = Env::from_pairs(&[("XDG_CACHE_HOME", dir.path().to_str().unwrap())]);
        let path = cache_path(&env).unwrap();
        assert_eq!(path, dir.path().join("mucura/credentials.json"));
        assert_eq!(load(&path), None);
        let cached = entry(datetime!(2026-11-26 20:00 UTC));
        store(&path, &cached).unwrap();
        assert_eq!(load(&path), Some(cached));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(load(&path), None);
        let home = Env::from_pairs(&[("HOME", "/home/u")]);
        assert_eq!(
            cache_path(&home).unwrap(),
            PathBuf::from("/home/u/.cache/mucura/credentials.json")
        );
        assert!(cache_path(&Env::from_pairs(&[])).is_err());
    }

    #[test]
    fn fingerprints_follow_file_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("proxy");
        assert_eq!(fingerprint(&path), None);
        std::fs::write(&path, b"one").unwrap();
        let first = fingerprint(&path).unwrap();
        std::fs::write(&path, b"two").unwrap();
        assert_ne!(fingerprint(&path).unwrap(), first);
        assert_eq!(first.len(), 64);
    }
}
