//! Request authentication: SigV4 (header, presigned query, streaming payloads) and SigV2
//! (header, query), plus the client-side signer our own tools use.
//!
//! [`authenticate`] looks at a request head, picks the scheme the client used and hands it to
//! [`sigv4`] or [`sigv2`]; both canonicalise through `canonical` and check times through
//! `timestamp`. What the headers cannot prove (the body) is returned as a [`PayloadCheck`] for
//! [`crate::body`] and [`chunked`] to verify while streaming. [`signer`] is the client side.

use std::time::SystemTime;

use http::header::AUTHORIZATION;
use subtle::ConstantTimeEq;

use crate::error::{S3Error, S3ErrorCode, S3Result};

/// A secret access key: compared in constant time, never printed.
#[derive(Clone)]
pub struct SecretKey(String);

impl SecretKey {
    /// Wraps a secret string.
    pub fn new(secret: impl Into<String>) -> Self {
        SecretKey(secret.into())
    }
    /// The secret, for computing signatures only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(****)")
    }
}

/// A known access key and whom it belongs to.
#[derive(Debug, Clone)]
pub struct Credential {
    pub access_key: String,
    pub secret: SecretKey,
    /// The user the key acts for.
    pub user: String,
}

/// Why a session token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionTokenError {
    /// Not a token this server issued, issued for another key, altered, or revoked.
    Invalid,
    /// A genuine token past its expiry.
    Expired,
}

/// Where secrets for access keys come from (deny by default: unknown keys are `None`).
///
/// Temporary credentials (STS) are the provider's too: it opens the session tokens it issued
/// ([`CredentialProvider::lookup_session`]) and issues new ones ([`crate::sts`]). Both default
/// to refusing, for providers that know long-term keys only.
pub trait CredentialProvider: Send + Sync {
    /// The credential for an access key id, or `None` if the key is unknown.
    fn lookup(&self, access_key: &str) -> Option<Credential>;

    /// The credential of a temporary access key, presented with the session token it was
    /// issued with (`x-amz-security-token`).
    fn lookup_session(
        &self,
        access_key: &str,
        session_token: &str,
    ) -> Result<Credential, SessionTokenError> {
        let _ = (access_key, session_token);
        Err(SessionTokenError::Invalid)
    }

    /// Issues temporary credentials acting for the caller, who authenticated with
    /// `access_key` (and `session_token` when the caller itself holds temporary credentials).
    fn assume_role(&self, request: &crate::sts::RoleRequest<'_>) -> S3Result<crate::sts::Session> {
        let _ = request;
        Err(S3Error::new(
            S3ErrorCode::NotImplemented,
            "This server does not issue temporary credentials",
        ))
    }

    /// Issues temporary credentials for the holder of a verified X.509 client certificate.
    fn assume_role_with_certificate(
        &self,
        request: &crate::sts::CertificateRequest<'_>,
    ) -> S3Result<crate::sts::Session> {
        let _ = request;
        Err(S3Error::new(
            S3ErrorCode::NotImplemented,
            "This server does not issue temporary credentials for certificates",
        ))
    }

    /// Whether grants and bucket policies may name the user `id`: ACL grants to an unknown
    /// id are refused (`InvalidArgument`), as are policy principals (`MalformedPolicy`), so
    /// a typo cannot silently grant nothing, or later grant a user created under that id.
    /// An error (the user store could not be read) fails the request rather than guessing.
    /// Providers that keep no user list accept every id.
    fn knows_user(&self, id: &str) -> S3Result<bool> {
        let _ = id;
        Ok(true)
    }
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// No signature at all.
    Anonymous,
    /// A verified signature by this access key.
    User { access_key: String, user: String },
}

/// What remains to be verified in the body after the headers authenticated.
#[derive(Debug, Clone)]
pub enum PayloadCheck {
    /// Nothing beyond Content-MD5 / checksums (SigV2, anonymous, UNSIGNED-PAYLOAD).
    Unsigned,
    /// The body's SHA-256 must equal this lowercase hex digest.
    Sha256(String),
    /// `aws-chunked` body, each chunk signed (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]).
    SignedChunks(chunked::ChunkSigningContext),
    /// `aws-chunked` body without chunk signatures (STREAMING-UNSIGNED-PAYLOAD-TRAILER).
    UnsignedChunks,
}

/// The outcome of authenticating a request's head.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub identity: Identity,
    pub payload: PayloadCheck,
}

pub(crate) mod canonical;
pub mod chunked;
pub mod signer;
pub mod sigv2;
pub mod sigv4;
mod timestamp;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
pub(crate) mod test_support;

pub use canonical::{uri_encode, UNSIGNED_PAYLOAD};
pub use sigv4::signing_key;

/// Authenticates a request head. `vhost_bucket` is the bucket taken from the Host header for
/// virtual-host style requests (SigV2 signs it as part of the resource).
///
/// Schemes: `Authorization: AWS4-HMAC-SHA256 …` (SigV4 header), `X-Amz-Algorithm` in the query
/// (SigV4 presigned), `Authorization: AWS AK:sig` (SigV2 header), `AWSAccessKeyId`/`Signature`
/// in the query (SigV2 query). A request with none of them is anonymous; one with a header and
/// a query signature is refused.
pub fn authenticate(
    parts: &http::request::Parts,
    vhost_bucket: Option<&str>,
    creds: &dyn CredentialProvider,
    now: SystemTime,
) -> S3Result<Authenticated> {
    authenticate_as(parts, vhost_bucket, creds, now, sigv4::Expectation::S3)
}

/// Authenticates an STS request (`AssumeRole`), whose body was read first: SigV4 signatures
/// must be scoped to the `sts` service and may cover the body without `x-amz-content-sha256`.
pub fn authenticate_sts(
    parts: &http::request::Parts,
    body: &[u8],
    creds: &dyn CredentialProvider,
    now: SystemTime,
) -> S3Result<Authenticated> {
    let body_sha256 = canonical::sha256_hex(body);
    let expect = sigv4::Expectation {
        service: sigv4::STS_SERVICE,
        body_sha256: Some(&body_sha256),
    };
    authenticate_as(parts, None, creds, now, expect)
}

fn authenticate_as(
    parts: &http::request::Parts,
    vhost_bucket: Option<&str>,
    creds: &dyn CredentialProvider,
    now: SystemTime,
    expect: sigv4::Expectation<'_>,
) -> S3Result<Authenticated> {
    let params = canonical::raw_params(parts.uri.query());
    let v4_query = canonical::has_param(&params, "X-Amz-Algorithm");
    let v2_query = canonical::has_param(&params, "AWSAccessKeyId")
        || canonical::has_param(&params, "Signature");
    let header = parts.headers.get(AUTHORIZATION);
    if header.is_some() && (v4_query || v2_query) {
        return Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
             Signature query string parameter or the Authorization header should be specified",
        )
        .with_detail("ArgumentName", "Authorization"));
    }
    if let Some(header) = header {
        let value = header.to_str().unwrap_or("");
        if value.starts_with("AWS4-HMAC-SHA256 ") {
            return sigv4::verify_header(parts, value, &params, creds, now, expect);
        }
        if let Some(v2) = value.strip_prefix("AWS ") {
            return sigv2::verify_header(parts, v2, vhost_bucket, creds, now);
        }
        return Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            "Unsupported Authorization Type",
        )
        .with_detail("ArgumentName", "Authorization")
        .with_detail("ArgumentValue", String::from_utf8_lossy(header.as_bytes())));
    }
    if v4_query {
        return sigv4::verify_presigned(parts, &params, creds, now, expect);
    }
    if v2_query {
        return sigv2::verify_query(parts, &params, vhost_bucket, creds, now);
    }
    Ok(Authenticated {
        identity: Identity::Anonymous,
        payload: PayloadCheck::Unsigned,
    })
}

/// The session token a request carries: the `x-amz-security-token` header, or the
/// `X-Amz-Security-Token` query parameter of a presigned URL.
pub fn session_token(parts: &http::request::Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(SECURITY_TOKEN_HEADER) {
        return Some(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let params = canonical::raw_params(parts.uri.query());
    canonical::find_param(&params, "X-Amz-Security-Token", true)
        .or_else(|| canonical::find_param(&params, SECURITY_TOKEN_HEADER, true))
}

/// The header temporary credentials are presented with.
pub const SECURITY_TOKEN_HEADER: &str = "x-amz-security-token";

/// The credential for a key, with its session token when the request carries one; AWS's
/// `InvalidAccessKeyId`, `InvalidToken` or `ExpiredToken` otherwise.
pub fn resolve_credential(
    creds: &dyn CredentialProvider,
    access_key: &str,
    session_token: Option<&str>,
) -> S3Result<Credential> {
    match session_token {
        None => creds.lookup(access_key).ok_or_else(|| {
            S3Error::from(S3ErrorCode::InvalidAccessKeyId).with_detail("AWSAccessKeyId", access_key)
        }),
        Some(token) => creds
            .lookup_session(access_key, token)
            .map_err(|err| match err {
                SessionTokenError::Invalid => S3Error::new(
                    S3ErrorCode::InvalidToken,
                    "The provided token is malformed or otherwise invalid.",
                ),
                SessionTokenError::Expired => {
                    S3Error::new(S3ErrorCode::ExpiredToken, "The provided token has expired.")
                }
            }),
    }
}

/// [`resolve_credential`] with the session token taken from the request.
fn lookup_credential(
    creds: &dyn CredentialProvider,
    parts: &http::request::Parts,
    access_key: &str,
) -> S3Result<Credential> {
    resolve_credential(creds, access_key, session_token(parts).as_deref())
}

/// Compares two signatures in constant time (no early exit that would leak a matching prefix).
fn signatures_match(expected: &str, provided: &str) -> bool {
    expected.as_bytes().ct_eq(provided.as_bytes()).into()
}

/// `SignatureDoesNotMatch` with the details AWS returns to help clients debug.
fn signature_mismatch(access_key: &str, string_to_sign: &str, provided: &str) -> S3Error {
    S3Error::from(S3ErrorCode::SignatureDoesNotMatch)
        .with_detail("AWSAccessKeyId", access_key)
        .with_detail("StringToSign", string_to_sign)
        .with_detail("SignatureProvided", provided)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn no_signature_is_anonymous_and_unsigned() {
        let parts = request("GET", "/bucket/key?list-type=2", &[("host", "localhost")]);
        let auth = authenticate(&parts, None, &example_creds(), example_now()).unwrap();
        assert_eq!(auth.identity, Identity::Anonymous);
        assert!(matches!(auth.payload, PayloadCheck::Unsigned));
    }

    #[test]
    fn header_and_query_signatures_together_are_refused() {
        let parts = request(
            "GET",
            "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256",
            &[
                ("host", "h"),
                ("authorization", "AWS AKIAIOSFODNN7EXAMPLE:abc="),
            ],
        );
        let err = authenticate(&parts, None, &example_creds(), example_now()).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::InvalidArgument);
        let parts = request(
            "GET",
            "/b/k?AWSAccessKeyId=A&Signature=s&Expires=1",
            &[
                ("host", "h"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=x"),
            ],
        );
        let err = authenticate(&parts, None, &example_creds(), example_now()).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::InvalidArgument);
    }

    #[test]
    fn unknown_authorization_scheme_is_invalid_argument() {
        for value in ["Bearer token", "AWS4-ECDSA-P256-SHA256 Credential=x", ""] {
            let parts = request("GET", "/", &[("host", "h"), ("authorization", value)]);
            let err = authenticate(&parts, None, &example_creds(), example_now()).unwrap_err();
            assert_eq!(err.code, S3ErrorCode::InvalidArgument, "{value}");
            assert_eq!(err.message, "Unsupported Authorization Type");
        }
    }

    #[test]
    fn signature_comparison_needs_equal_length_and_bytes() {
        assert!(signatures_match("abc", "abc"));
        assert!(!signatures_match("abc", "abd"));
        assert!(!signatures_match("abc", "ab"));
    }
}
