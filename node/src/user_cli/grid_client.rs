//! The grid endpoint over mutual TLS: `AssumeRoleWithCertificate` with a proxy file, and
//! registration with a user certificate.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Limited};

use super::http::{client, empty_body};
use super::sts::{self, Registration, StsCredentials};
use super::tls::{client_config, ClientIdentity, Trust};

/// The response header that names the S3 endpoint to use with the credentials.
pub const S3_ENDPOINT_HEADER: &str = "x-mucura-s3-endpoint";

/// Answers of the grid endpoint are small documents.
const ANSWER_LIMIT: usize = 256 * 1024;

/// A login or registration that has not finished in this time will not (a wedged server or a
/// firewall silently dropping packets): fail with a message rather than hang a batch job.
const GRID_TIMEOUT: Duration = Duration::from_secs(60);

/// The lifetime asked for when `--duration` is not given (the server's default too).
pub const DEFAULT_DURATION_SECONDS: u64 = 3600;

/// What `AssumeRoleWithCertificate` gave.
#[derive(Debug)]
pub struct Login {
    /// The credentials.
    pub credentials: StsCredentials,
    /// The S3 endpoint the server named, if it did.
    pub s3_endpoint: Option<String>,
}

/// A grid URL checked to be `https://host[:port]` (a trailing slash dropped).
pub fn check_grid_url(url: &str) -> Result<String> {
    let trimmed = url.trim_end_matches('/');
    let parsed: Uri = trimmed
        .parse()
        .with_context(|| format!("invalid grid URL {url:?}"))?;
    if parsed.scheme_str() != Some("https") || parsed.host().is_none() {
        bail!("the grid URL must be https://HOST:PORT, not {url:?}");
    }
    Ok(trimmed.to_string())
}

async fn post(
    url: &str,
    identity: ClientIdentity,
    trust: &Trust,
) -> Result<(http::StatusCode, http::HeaderMap, Bytes)> {
    let config = client_config(trust.root_store()?, Some(identity))?;
    let http = client(Some(config));
    let uri: Uri = url.parse().with_context(|| format!("invalid URL {url}"))?;
    let mut request = Request::new(empty_body());
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri;
    request
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(0u64));
    let exchange = async {
        let response = http
            .request(request)
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = Limited::new(response.into_body(), ANSWER_LIMIT)
            .collect()
            .await
            .map_err(|err| anyhow::anyhow!("reading the answer of {url}: {err}"))?
            .to_bytes();
        Ok::<_, anyhow::Error>((status, headers, body))
    };
    tokio::time::timeout(GRID_TIMEOUT, exchange)
        .await
        .with_context(|| format!("POST {url}: no answer within {} s", GRID_TIMEOUT.as_secs()))?
}

/// Exchanges the proxy at `proxy` for temporary credentials.
pub async fn assume_role_with_certificate(
    grid_url: &str,
    proxy: &Path,
    trust: &Trust,
    duration_seconds: u64,
) -> Result<Login> {
    let identity = ClientIdentity::from_proxy_file(proxy)?;
    let url = format!(
        "{grid_url}/?Action=AssumeRoleWithCertificate&Version=2011-06-15&DurationSeconds={duration_seconds}"
    );
    let (status, headers, body) = post(&url, identity, trust).await?;
    if !status.is_success() {
        let error = sts::error_for_status(status.as_u16(), &body);
        bail!("{grid_url} refused the proxy {}: {error}", proxy.display());
    }
    let credentials =
        sts::parse_assume_role(&body).with_context(|| format!("the answer of {grid_url}"))?;
    let s3_endpoint = headers
        .get(S3_ENDPOINT_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim().trim_end_matches('/').to_string())
        .filter(|value| !value.is_empty());
    Ok(Login {
        credentials,
        s3_endpoint,
    })
}

/// Registers the holder of `cert` (with `key`) and returns the keys it gets.
pub async fn register(
    grid_url: &str,
    cert: &Path,
    key: &Path,
    trust: &Trust,
) -> Result<(Registration, time::OffsetDateTime)> {
    let identity = ClientIdentity::from_cert_and_key(cert, key)?;
    let url = format!("{grid_url}/mucura/v1/register");
    let (status, _, body) = post(&url, identity, trust).await?;
    if !status.is_success() {
        let error = sts::error_for_status(status.as_u16(), &body);
        bail!(
            "{grid_url} refused the registration of {}: {error}",
            cert.display()
        );
    }
    sts::parse_registration(&body).with_context(|| format!("the answer of {url}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn grid_urls_must_be_https() {
        assert_eq!(
            check_grid_url("https://grid.example:8443/").unwrap(),
            "https://grid.example:8443"
        );
        assert!(check_grid_url("http://grid.example:8443").is_err());
        assert!(check_grid_url("grid.example:8443").is_err());
        assert!(check_grid_url("https://").is_err());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "grid_client_tests.rs"]
mod server_tests;
