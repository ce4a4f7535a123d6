//! Client-side SigV4: signs requests and presigns URLs for our CLI and benchmark, with the same
//! canonicalisation the server verifies with.

use std::time::{Duration, SystemTime};

use http::header::{HeaderName, HeaderValue, AUTHORIZATION, HOST};
use http::{HeaderMap, Method, Uri};

use super::canonical::{
    canonical_query, canonical_request, raw_params, uri_encode, CanonicalInput, UNSIGNED_PAYLOAD,
};
use super::sigv4::{
    sign_string, signing_key, string_to_sign, ALGORITHM, MAX_PRESIGN_EXPIRY, SERVICE,
};
use super::timestamp::format_amz_date;
use super::SecretKey;
use crate::error::{S3Error, S3ErrorCode};

/// `host[:port]` of an absolute URI (no user info), as a Host header carries it.
fn host_of(uri: &Uri) -> Option<String> {
    let host = uri.host()?;
    Some(match uri.port() {
        Some(port) => format!("{host}:{}", port.as_str()),
        None => host.to_string(),
    })
}

/// The date and credential scope for a signing time.
fn scope_for(now: SystemTime, region: &str) -> (String, String, String) {
    let amz_date = format_amz_date(now);
    let date = amz_date.get(..8).unwrap_or_default().to_string();
    let scope = format!("{date}/{region}/{SERVICE}/aws4_request");
    (amz_date, date, scope)
}

fn set_header(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    // Values come from our own formatting; one with control characters cannot be sent, and
    // leaving it out makes the server refuse the request rather than us panic.
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// Signs a request with SigV4 in the `Authorization` header.
///
/// Sets `x-amz-date` and `x-amz-content-sha256` (`payload_sha256`: a hex digest,
/// `UNSIGNED-PAYLOAD` or a `STREAMING-…` marker), inserts a Host header from the URI authority
/// when absent, and signs `host`, every `x-amz-*` header, `content-type` and `content-md5`.
/// The URI path must already be encoded as it goes on the wire (see [`uri_encode`]); S3 signs
/// it as sent. A header value that cannot be represented (control characters in the access
/// key) is left out, and the server then refuses the request.
// The parameter list is the team contract other crates call; a struct would not shorten it.
#[allow(clippy::too_many_arguments)]
pub fn sign_v4(
    method: &Method,
    uri: &Uri,
    headers: &mut HeaderMap,
    payload_sha256: &str,
    access_key: &str,
    secret: &SecretKey,
    region: &str,
    now: SystemTime,
) {
    let (amz_date, date, scope) = scope_for(now, region);
    set_header(headers, HeaderName::from_static("x-amz-date"), &amz_date);
    set_header(
        headers,
        HeaderName::from_static("x-amz-content-sha256"),
        payload_sha256,
    );
    let authority = host_of(uri);
    if !headers.contains_key(HOST) {
        if let Some(authority) = &authority {
            set_header(headers, HOST, authority);
        }
    }
    let mut signed: Vec<String> = headers
        .keys()
        .map(|name| name.as_str())
        .filter(|name| {
            *name == "host"
                || name.starts_with("x-amz-")
                || *name == "content-type"
                || *name == "content-md5"
        })
        .map(str::to_string)
        .collect();
    signed.sort();
    let signed_refs: Vec<&str> = signed.iter().map(String::as_str).collect();
    let query = canonical_query(&raw_params(uri.query()));
    let canonical = canonical_request(&CanonicalInput {
        method: method.as_str(),
        path: uri.path(),
        query: &query,
        headers,
        authority: authority.as_deref(),
        signed_headers: &signed_refs,
        payload_hash: payload_sha256,
    });
    let key = signing_key(secret, &date, region, SERVICE);
    let signature = sign_string(&key, &string_to_sign(&amz_date, &scope, &canonical));
    let authorization = format!(
        "{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={}, Signature={signature}",
        signed_refs.join(";")
    );
    set_header(headers, AUTHORIZATION, &authorization);
}

/// Presigns a URL: returns `uri` with the `X-Amz-*` query parameters that let anyone holding
/// it make this request (host signed, payload unsigned) until `now + expires`.
///
/// `uri` must be absolute (scheme and host) with its path encoded as it goes on the wire;
/// `expires` must be between one second and a week.
pub fn presign_v4(
    method: &Method,
    uri: &Uri,
    access_key: &str,
    secret: &SecretKey,
    region: &str,
    now: SystemTime,
    expires: Duration,
) -> Result<Uri, S3Error> {
    presign_v4_with_token(method, uri, access_key, secret, None, region, now, expires)
}

/// [`presign_v4`] for temporary credentials: the session token travels (signed) as the
/// `X-Amz-Security-Token` query parameter, as AWS's presigned URLs carry it.
///
/// (For header-signed requests no variant is needed: insert `x-amz-security-token` before
/// calling [`sign_v4`], which signs every `x-amz-*` header.)
// One more parameter than `presign_v4`, which is the team contract; a struct would not help.
#[allow(clippy::too_many_arguments)]
pub fn presign_v4_with_token(
    method: &Method,
    uri: &Uri,
    access_key: &str,
    secret: &SecretKey,
    session_token: Option<&str>,
    region: &str,
    now: SystemTime,
    expires: Duration,
) -> Result<Uri, S3Error> {
    if expires < Duration::from_secs(1) || expires > MAX_PRESIGN_EXPIRY {
        return Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            "a presigned URL must expire between 1 second and 604800 seconds after signing",
        ));
    }
    let (Some(authority), Some(scheme)) = (host_of(uri), uri.scheme()) else {
        return Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            format!("a presigned URL needs an absolute URI with a host, not {uri}"),
        ));
    };
    let (amz_date, date, scope) = scope_for(now, region);
    let mut query = uri.query().unwrap_or_default().to_string();
    for (name, value) in [
        ("X-Amz-Algorithm", ALGORITHM.to_string()),
        ("X-Amz-Credential", format!("{access_key}/{scope}")),
        ("X-Amz-Date", amz_date.clone()),
        ("X-Amz-Expires", expires.as_secs().to_string()),
        ("X-Amz-SignedHeaders", "host".to_string()),
    ]
    .into_iter()
    .chain(session_token.map(|token| ("X-Amz-Security-Token", token.to_string())))
    {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(name);
        query.push('=');
        query.push_str(&uri_encode(&value, true));
    }
    let mut headers = HeaderMap::new();
    set_header(&mut headers, HOST, &authority);
    let canonical = canonical_request(&CanonicalInput {
        method: method.as_str(),
        path: uri.path(),
        query: &canonical_query(&raw_params(Some(&query))),
        headers: &headers,
        authority: Some(&authority),
        signed_headers: &["host"],
        payload_hash: UNSIGNED_PAYLOAD,
    });
    let key = signing_key(secret, &date, region, SERVICE);
    let signature = sign_string(&key, &string_to_sign(&amz_date, &scope, &canonical));
    query.push_str("&X-Amz-Signature=");
    query.push_str(&signature);
    let path = if uri.path().is_empty() {
        "/"
    } else {
        uri.path()
    };
    Uri::builder()
        .scheme(scheme.clone())
        .authority(authority.as_str())
        .path_and_query(format!("{path}?{query}"))
        .build()
        .map_err(|e| {
            S3Error::new(
                S3ErrorCode::InvalidArgument,
                format!("cannot build presigned URL: {e}"),
            )
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
#[path = "signer_tests.rs"]
mod tests;
