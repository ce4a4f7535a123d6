//! AWS Signature Version 4: key derivation, string to sign, and verification of the
//! `Authorization` header and of presigned (query) requests.

use std::time::{Duration, SystemTime};

use hmac::{Hmac, KeyInit, Mac};
use http::request::Parts;
use sha2::Sha256;

use super::canonical::{
    canonical_query, canonical_request, find_param, sha256_hex, CanonicalInput, RawParam,
    UNSIGNED_PAYLOAD,
};
use super::chunked::ChunkSigningContext;
use super::timestamp::{
    check_skew, format_amz_date, format_iso8601, parse_amz_date, parse_http_date, MAX_CLOCK_SKEW,
};
use super::{
    lookup_credential, signature_mismatch, signatures_match, Authenticated, CredentialProvider,
    Identity, PayloadCheck, SecretKey,
};
use crate::error::{S3Error, S3ErrorCode, S3Result};

pub use super::canonical::uri_encode;

/// The only SigV4 algorithm we verify.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The service name S3 signs for.
pub const SERVICE: &str = "s3";

/// The service name STS requests sign for (AssumeRole on the S3 endpoint, [`crate::sts`]).
pub const STS_SERVICE: &str = "sts";

/// What the server expects of a request's signature beyond the request itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expectation<'a> {
    /// The service the credential scope must name.
    pub service: &'a str,
    /// The body's SHA-256 (lowercase hex) when the server read the body before
    /// authenticating: clients signing for other services than S3 (STS) do not send
    /// `x-amz-content-sha256`, the canonical request then uses the body's hash.
    pub body_sha256: Option<&'a str>,
}

impl Expectation<'static> {
    /// An S3 request whose body is still unread.
    pub const S3: Expectation<'static> = Expectation {
        service: SERVICE,
        body_sha256: None,
    };
}

/// The last element of every SigV4 credential scope.
const SCOPE_TERMINATOR: &str = "aws4_request";

/// The longest validity a presigned URL may ask for (one week, AWS's limit).
pub const MAX_PRESIGN_EXPIRY: Duration = Duration::from_secs(604_800);

/// HMAC-SHA256 of `data` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Derives the SigV4 signing key for a scope: HMAC chain over `AWS4`+secret, the date
/// (`yyyyMMdd`), the region, the service and `aws4_request`.
pub fn signing_key(secret: &SecretKey, date: &str, region: &str, service: &str) -> [u8; 32] {
    let date_key = hmac_sha256(
        format!("AWS4{}", secret.expose()).as_bytes(),
        date.as_bytes(),
    );
    let region_key = hmac_sha256(&date_key, region.as_bytes());
    let service_key = hmac_sha256(&region_key, service.as_bytes());
    hmac_sha256(&service_key, SCOPE_TERMINATOR.as_bytes())
}

/// The SigV4 string to sign for a canonical request.
pub(crate) fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &[u8]) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request)
    )
}

/// The hex signature of a string to sign.
pub(crate) fn sign_string(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac_sha256(signing_key, string_to_sign.as_bytes()))
}

/// The `Credential` of a SigV4 signature: `AKID/yyyyMMdd/region/service/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CredentialScope {
    pub access_key: String,
    pub date: String,
    pub region: String,
    pub service: String,
}

impl CredentialScope {
    /// Parses a credential; the error is AWS's reason text, to be prefixed by the caller.
    fn parse(value: &str, expected_service: &str) -> Result<Self, String> {
        let malformed = || {
            "the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"."
                .to_string()
        };
        // Split from the right: the four scope parts never contain `/`.
        let mut parts = value.rsplitn(5, '/');
        let terminator = parts.next().ok_or_else(malformed)?;
        let service = parts.next().ok_or_else(malformed)?;
        let region = parts.next().ok_or_else(malformed)?;
        let date = parts.next().ok_or_else(malformed)?;
        let access_key = parts.next().ok_or_else(malformed)?;
        if access_key.is_empty() || region.is_empty() {
            return Err(malformed());
        }
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "incorrect date format \"{date}\". This date in the credential must be in the format \"yyyyMMdd\"."
            ));
        }
        if service != expected_service {
            return Err(format!(
                "incorrect service \"{service}\". This endpoint belongs to \"{expected_service}\"."
            ));
        }
        if terminator != SCOPE_TERMINATOR {
            return Err(format!(
                "incorrect terminal \"{terminator}\". This endpoint uses \"{SCOPE_TERMINATOR}\"."
            ));
        }
        Ok(CredentialScope {
            access_key: access_key.to_string(),
            date: date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
        })
    }

    /// `yyyyMMdd/region/service/aws4_request`.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/{SCOPE_TERMINATOR}",
            self.date, self.region, self.service
        )
    }
}

fn header_malformed(reason: impl std::fmt::Display) -> S3Error {
    S3Error::new(
        S3ErrorCode::AuthorizationHeaderMalformed,
        format!("The authorization header is malformed; {reason}"),
    )
}

fn query_error(message: impl Into<String>) -> S3Error {
    S3Error::new(S3ErrorCode::AuthorizationQueryParametersError, message)
}

/// The parsed `Authorization: AWS4-HMAC-SHA256 ...` header.
struct AuthorizationV4<'a> {
    scope: CredentialScope,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization<'a>(value: &'a str, service: &str) -> S3Result<AuthorizationV4<'a>> {
    let rest = value.strip_prefix(ALGORITHM).unwrap_or(value);
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for component in rest.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        match component.split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {
                return Err(header_malformed(format!(
                    "the authorization component \"{component}\" is malformed."
                )))
            }
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(header_malformed(
            "the authorization header requires three components: Credential, SignedHeaders, and Signature.",
        ));
    };
    let scope = CredentialScope::parse(credential, service).map_err(header_malformed)?;
    let signed_headers = parse_signed_headers(signed_headers).ok_or_else(|| {
        header_malformed(format!(
            "the authorization component \"SignedHeaders={signed_headers}\" is malformed."
        ))
    })?;
    Ok(AuthorizationV4 {
        scope,
        signed_headers,
        signature,
    })
}

/// `host;range;x-amz-date` → names; `None` when a name is empty.
fn parse_signed_headers(value: &str) -> Option<Vec<&str>> {
    let names: Vec<&str> = value.split(';').collect();
    names.iter().all(|n| !n.is_empty()).then_some(names)
}

/// How the body is covered, from `x-amz-content-sha256`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PayloadMode {
    Unsigned,
    Sha256,
    SignedChunks { has_trailer: bool },
    UnsignedChunks,
}

fn classify_payload(value: &str) -> S3Result<PayloadMode> {
    match value {
        UNSIGNED_PAYLOAD => Ok(PayloadMode::Unsigned),
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => Ok(PayloadMode::SignedChunks { has_trailer: false }),
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => Ok(PayloadMode::SignedChunks { has_trailer: true }),
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => Ok(PayloadMode::UnsignedChunks),
        v if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(PayloadMode::Sha256),
        v => Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, \
             STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
        )
        .with_detail("ArgumentName", "x-amz-content-sha256")
        .with_detail("ArgumentValue", v)),
    }
}

fn header_str<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

fn invalid_date_header() -> S3Error {
    S3Error::new(
        S3ErrorCode::AccessDenied,
        "AWS authentication requires a valid Date or x-amz-date header",
    )
}

/// The signed timestamp (`x-amz-date`, else `Date`) in SigV4 form, and as a time.
fn request_timestamp(parts: &Parts) -> S3Result<(String, SystemTime)> {
    if let Some(value) = parts.headers.get("x-amz-date") {
        let value = value.to_str().map_err(|_| invalid_date_header())?;
        let at = parse_amz_date(value).ok_or_else(invalid_date_header)?;
        return Ok((value.to_string(), at));
    }
    let value = header_str(parts, "date").ok_or_else(invalid_date_header)?;
    if let Some(at) = parse_amz_date(value) {
        return Ok((value.to_string(), at));
    }
    let at = parse_http_date(value).ok_or_else(invalid_date_header)?;
    Ok((format_amz_date(at), at))
}

/// AWS refuses header-signed requests that carry unsigned `x-amz-*` headers or leave `host`
/// unsigned: otherwise anyone on the path could add them.
fn check_headers_signed(parts: &Parts, signed: &[&str]) -> S3Result<()> {
    let mut unsigned: Vec<&str> = parts
        .headers
        .keys()
        .map(|name| name.as_str())
        .filter(|name| name.starts_with("x-amz-") && !signed.contains(name))
        .collect();
    if !signed.contains(&"host") {
        unsigned.insert(0, "host");
    }
    if unsigned.is_empty() {
        return Ok(());
    }
    Err(S3Error::new(
        S3ErrorCode::AccessDenied,
        "There were headers present in the request which were not signed",
    )
    .with_detail("HeadersNotSigned", unsigned.join(", ")))
}

/// What a verified SigV4 request still owes: the pieces chunk signatures chain from.
struct VerifiedV4 {
    identity: Identity,
    signing_key: [u8; 32],
    amz_date: String,
    scope: String,
    signature: String,
}

impl VerifiedV4 {
    fn into_authenticated(self, mode: PayloadMode, payload_hash: &str) -> Authenticated {
        let payload = match mode {
            PayloadMode::Unsigned => PayloadCheck::Unsigned,
            PayloadMode::Sha256 => PayloadCheck::Sha256(payload_hash.to_ascii_lowercase()),
            PayloadMode::UnsignedChunks => PayloadCheck::UnsignedChunks,
            PayloadMode::SignedChunks { has_trailer } => {
                PayloadCheck::SignedChunks(ChunkSigningContext {
                    signing_key: self.signing_key,
                    amz_date: self.amz_date,
                    scope: self.scope,
                    seed_signature: self.signature,
                    has_trailer,
                })
            }
        };
        Authenticated {
            identity: self.identity,
            payload,
        }
    }
}

/// What the client claims about its signature, from the header or the query.
struct Claim<'a> {
    scope: &'a CredentialScope,
    signed_headers: &'a [&'a str],
    amz_date: &'a str,
    payload_hash: &'a str,
    signature: &'a str,
}

/// Computes the signature of `parts` and compares it with the claimed one.
fn verify(
    parts: &Parts,
    params: &[RawParam<'_>],
    claim: &Claim<'_>,
    creds: &dyn CredentialProvider,
) -> S3Result<VerifiedV4> {
    let Claim {
        scope,
        signed_headers,
        amz_date,
        payload_hash,
        signature: provided,
    } = *claim;
    let credential = lookup_credential(creds, parts, &scope.access_key)?;
    let query = canonical_query(params);
    let canonical = canonical_request(&CanonicalInput {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: &query,
        headers: &parts.headers,
        authority: parts.uri.authority().map(|a| a.as_str()),
        signed_headers,
        payload_hash,
    });
    let scope_text = scope.scope();
    let key = signing_key(
        &credential.secret,
        &scope.date,
        &scope.region,
        &scope.service,
    );
    let to_sign = string_to_sign(amz_date, &scope_text, &canonical);
    let expected = sign_string(&key, &to_sign);
    if !signatures_match(&expected, &provided.to_ascii_lowercase()) {
        return Err(signature_mismatch(&scope.access_key, &to_sign, provided)
            .with_detail("CanonicalRequest", String::from_utf8_lossy(&canonical)));
    }
    Ok(VerifiedV4 {
        identity: Identity::User {
            access_key: credential.access_key,
            user: credential.user,
        },
        signing_key: key,
        amz_date: amz_date.to_string(),
        scope: scope_text,
        signature: expected,
    })
}

/// Verifies `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
pub(crate) fn verify_header(
    parts: &Parts,
    authorization: &str,
    params: &[RawParam<'_>],
    creds: &dyn CredentialProvider,
    now: SystemTime,
    expect: Expectation<'_>,
) -> S3Result<Authenticated> {
    let auth = parse_authorization(authorization, expect.service)?;
    let payload_hash = header_str(parts, "x-amz-content-sha256")
        .or(expect.body_sha256)
        .ok_or_else(|| {
            S3Error::new(
                S3ErrorCode::InvalidRequest,
                "Missing required header for this request: x-amz-content-sha256",
            )
        })?;
    let mode = classify_payload(payload_hash)?;
    let (amz_date, request_time) = request_timestamp(parts)?;
    check_skew(request_time, now)?;
    if !amz_date.starts_with(&auth.scope.date) {
        return Err(header_malformed(format!(
            "Invalid credential date \"{}\". This date is not the same as X-Amz-Date: \"{}\".",
            auth.scope.date,
            amz_date.get(..8).unwrap_or(&amz_date)
        )));
    }
    check_headers_signed(parts, &auth.signed_headers)?;
    let claim = Claim {
        scope: &auth.scope,
        signed_headers: &auth.signed_headers,
        amz_date: &amz_date,
        payload_hash,
        signature: auth.signature,
    };
    let verified = verify(parts, params, &claim, creds)?;
    Ok(verified.into_authenticated(mode, payload_hash))
}

/// Verifies a presigned request (`X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=...`).
pub(crate) fn verify_presigned(
    parts: &Parts,
    params: &[RawParam<'_>],
    creds: &dyn CredentialProvider,
    now: SystemTime,
    expect: Expectation<'_>,
) -> S3Result<Authenticated> {
    let get = |name: &str| find_param(params, name, true);
    let (
        Some(algorithm),
        Some(credential),
        Some(date),
        Some(expires),
        Some(signed),
        Some(signature),
    ) = (
        get("X-Amz-Algorithm"),
        get("X-Amz-Credential"),
        get("X-Amz-Date"),
        get("X-Amz-Expires"),
        get("X-Amz-SignedHeaders"),
        get("X-Amz-Signature"),
    )
    else {
        return Err(query_error(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, \
             X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
        ));
    };
    if algorithm != ALGORITHM {
        return Err(query_error(
            "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"",
        ));
    }
    let scope = CredentialScope::parse(&credential, expect.service).map_err(|reason| {
        query_error(format!(
            "Error parsing the X-Amz-Credential parameter; {reason}"
        ))
    })?;
    let request_time = parse_amz_date(&date).ok_or_else(|| {
        query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    })?;
    let expires = parse_expires(&expires)?;
    let signed_headers = parse_signed_headers(&signed)
        .ok_or_else(|| query_error("X-Amz-SignedHeaders is malformed"))?;
    if !date.starts_with(&scope.date) {
        return Err(query_error(format!(
            "Invalid credential date \"{}\". This date is not the same as X-Amz-Date: \"{}\".",
            scope.date,
            date.get(..8).unwrap_or(&date)
        )));
    }
    check_presign_window(request_time, expires, now)?;
    let (payload_hash, mode) =
        match header_str(parts, "x-amz-content-sha256").or(expect.body_sha256) {
            Some(value) => (value, classify_payload(value)?),
            None => (UNSIGNED_PAYLOAD, PayloadMode::Unsigned),
        };
    let claim = Claim {
        scope: &scope,
        signed_headers: &signed_headers,
        amz_date: &date,
        payload_hash,
        signature: &signature,
    };
    let verified = verify(parts, params, &claim, creds)?;
    Ok(verified.into_authenticated(mode, payload_hash))
}

fn parse_expires(value: &str) -> S3Result<Duration> {
    let seconds: i64 = value
        .parse()
        .map_err(|_| query_error("X-Amz-Expires should be a number"))?;
    if seconds < 0 {
        return Err(query_error("X-Amz-Expires must be non-negative"));
    }
    if seconds == 0 {
        return Err(query_error("X-Amz-Expires must be at least 1 second"));
    }
    let expires = Duration::from_secs(seconds.unsigned_abs());
    if expires > MAX_PRESIGN_EXPIRY {
        return Err(query_error(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        ));
    }
    Ok(expires)
}

/// A presigned URL is valid from (X-Amz-Date − allowed skew) to X-Amz-Date + X-Amz-Expires.
fn check_presign_window(signed_at: SystemTime, expires: Duration, now: SystemTime) -> S3Result<()> {
    if signed_at > now + MAX_CLOCK_SKEW {
        return Err(
            S3Error::new(S3ErrorCode::AccessDenied, "Request is not valid yet")
                .with_detail("X-Amz-Date", format_amz_date(signed_at))
                .with_detail("ServerTime", format_iso8601(now)),
        );
    }
    let expiry = signed_at + expires;
    if now > expiry {
        return Err(
            S3Error::new(S3ErrorCode::AccessDenied, "Request has expired")
                .with_detail("X-Amz-Expires", expires.as_secs().to_string())
                .with_detail("Expires", format_iso8601(expiry))
                .with_detail("ServerTime", format_iso8601(now)),
        );
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
#[path = "sigv4_tests.rs"]
mod tests;
