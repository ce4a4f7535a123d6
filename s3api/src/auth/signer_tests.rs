//! Signer ↔ verifier round trips: what our tools sign, the server must accept, and any change
//! to the signed parts must be refused.

use super::*;
use crate::auth::test_support::*;
use crate::auth::{authenticate, Authenticated, Identity, PayloadCheck};
use crate::error::S3Result;

const REGION: &str = "eu-west-3";

fn secret() -> SecretKey {
    SecretKey::new(EXAMPLE_SECRET)
}

/// The request head a server would see for this method, URI and headers.
fn as_received(method: &Method, uri: &Uri, headers: &HeaderMap) -> http::request::Parts {
    let origin_form = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    let mut parts = request(method.as_str(), origin_form, &[]);
    parts.headers = headers.clone();
    parts
}

/// Signs `uri` with `payload` and verifies it at `verify_at`.
fn sign_and_verify(uri: &str, payload: &str, verify_at: SystemTime) -> S3Result<Authenticated> {
    let uri: Uri = uri.parse().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "text/plain".parse().unwrap());
    headers.insert("x-amz-meta-note", "  two   spaces ".parse().unwrap());
    let put = Method::PUT;
    sign_v4(
        &put,
        &uri,
        &mut headers,
        payload,
        EXAMPLE_ACCESS_KEY,
        &secret(),
        REGION,
        example_now(),
    );
    authenticate(
        &as_received(&put, &uri, &headers),
        None,
        &example_creds(),
        verify_at,
    )
}

fn example_user() -> Identity {
    Identity::User {
        access_key: EXAMPLE_ACCESS_KEY.into(),
        user: EXAMPLE_USER.into(),
    }
}

#[test]
fn signed_keys_with_spaces_unicode_and_plus_verify() {
    for key in [
        "plain.txt",
        "dir/a b+c",
        "ünï/cødé €.bin",
        "a+b=c&d",
        "x//y/../z",
        "~tilde_-.",
    ] {
        let uri = format!(
            "http://127.0.0.1:9000/bucket/{}?prefix={}&list-type=2",
            uri_encode(key, false),
            uri_encode(key, true)
        );
        let auth = sign_and_verify(&uri, UNSIGNED_PAYLOAD, example_now()).unwrap();
        assert_eq!(auth.identity, example_user(), "{key}");
        assert!(matches!(auth.payload, PayloadCheck::Unsigned));
    }
}

#[test]
fn signed_header_request_failures() {
    let uri = "http://localhost:9000/bucket/key";
    let late = example_now() + Duration::from_secs(16 * 60);
    let err = sign_and_verify(uri, UNSIGNED_PAYLOAD, late).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::RequestTimeTooSkewed);

    let parsed: Uri = uri.parse().unwrap();
    let mut headers = HeaderMap::new();
    let get = Method::GET;
    sign_v4(
        &get,
        &parsed,
        &mut headers,
        UNSIGNED_PAYLOAD,
        EXAMPLE_ACCESS_KEY,
        &SecretKey::new("wrong"),
        REGION,
        example_now(),
    );
    let err = authenticate(
        &as_received(&get, &parsed, &headers),
        None,
        &example_creds(),
        example_now(),
    )
    .unwrap_err();
    assert_eq!(err.code, S3ErrorCode::SignatureDoesNotMatch);

    let mut headers = HeaderMap::new();
    sign_v4(
        &get,
        &parsed,
        &mut headers,
        UNSIGNED_PAYLOAD,
        "AKIDNOBODY",
        &secret(),
        REGION,
        example_now(),
    );
    let err = authenticate(
        &as_received(&get, &parsed, &headers),
        None,
        &example_creds(),
        example_now(),
    )
    .unwrap_err();
    assert_eq!(err.code, S3ErrorCode::InvalidAccessKeyId);

    let mut headers = HeaderMap::new();
    sign_v4(
        &get,
        &parsed,
        &mut headers,
        UNSIGNED_PAYLOAD,
        EXAMPLE_ACCESS_KEY,
        &secret(),
        REGION,
        example_now(),
    );
    let other: Uri = "http://localhost:9000/bucket/key?acl".parse().unwrap();
    let err = authenticate(
        &as_received(&get, &other, &headers),
        None,
        &example_creds(),
        example_now(),
    )
    .unwrap_err();
    assert_eq!(err.code, S3ErrorCode::SignatureDoesNotMatch);
}

#[test]
fn http2_requests_take_host_from_the_authority() {
    let uri: Uri = "http://localhost:9000/bucket/key".parse().unwrap();
    let mut headers = HeaderMap::new();
    sign_v4(
        &Method::GET,
        &uri,
        &mut headers,
        UNSIGNED_PAYLOAD,
        EXAMPLE_ACCESS_KEY,
        &secret(),
        REGION,
        example_now(),
    );
    assert_eq!(headers.get(HOST).unwrap(), "localhost:9000");
    let mut parts = request("GET", "http://localhost:9000/bucket/key", &[]);
    parts.headers = headers;
    parts.headers.remove(HOST);
    let auth = authenticate(&parts, None, &example_creds(), example_now()).unwrap();
    assert_eq!(auth.identity, example_user());
}

#[test]
fn payload_hashes_and_streaming_contexts_come_back() {
    let uri = "http://localhost:9000/bucket/key";
    let digest = "44CE7DD67C959E0D3524FFAC1771DFBBA87D2B6B4B4E99E42034A8B803F8B072";
    let auth = sign_and_verify(uri, digest, example_now()).unwrap();
    assert!(matches!(auth.payload, PayloadCheck::Sha256(ref h) if *h == digest.to_lowercase()));

    let auth = sign_and_verify(uri, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", example_now()).unwrap();
    assert!(matches!(auth.payload, PayloadCheck::UnsignedChunks));

    for (marker, trailer) in [
        ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", false),
        ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", true),
    ] {
        let parsed: Uri = uri.parse().unwrap();
        let mut headers = HeaderMap::new();
        sign_v4(
            &Method::PUT,
            &parsed,
            &mut headers,
            marker,
            EXAMPLE_ACCESS_KEY,
            &secret(),
            REGION,
            example_now(),
        );
        let authorization = headers
            .get(AUTHORIZATION)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let parts = as_received(&Method::PUT, &parsed, &headers);
        let auth = authenticate(&parts, None, &example_creds(), example_now()).unwrap();
        let PayloadCheck::SignedChunks(ctx) = auth.payload else {
            panic!("expected signed chunks for {marker}");
        };
        assert!(authorization.ends_with(&format!("Signature={}", ctx.seed_signature)));
        assert_eq!(ctx.amz_date, "20130524T000000Z");
        assert_eq!(ctx.scope, "20130524/eu-west-3/s3/aws4_request");
        assert_eq!(
            ctx.signing_key,
            signing_key(&secret(), "20130524", REGION, "s3")
        );
        assert_eq!(ctx.has_trailer, trailer);
    }
}

fn presign(uri: &str, expires_secs: u64) -> Uri {
    presign_v4(
        &Method::GET,
        &uri.parse().unwrap(),
        EXAMPLE_ACCESS_KEY,
        &secret(),
        REGION,
        example_now(),
        Duration::from_secs(expires_secs),
    )
    .unwrap()
}

fn verify_presigned_uri(uri: &Uri, at: SystemTime) -> S3Result<Authenticated> {
    let mut headers = HeaderMap::new();
    headers.insert(HOST, uri.authority().unwrap().as_str().parse().unwrap());
    authenticate(
        &as_received(&Method::GET, uri, &headers),
        None,
        &example_creds(),
        at,
    )
}

#[test]
fn presigned_urls_verify_until_they_expire() {
    let key = uri_encode("docs/ünï cødé+1.txt", false);
    let uri = presign(
        &format!("https://s3.example.org:8443/bucket/{key}?versionId=a%2Bb&response-content-type=tok%2Fen"),
        3600,
    );
    let query = uri.query().unwrap();
    assert!(query.contains(
        "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Feu-west-3%2Fs3%2Faws4_request"
    ));
    assert!(query.contains("X-Amz-Expires=3600"));
    let auth = verify_presigned_uri(&uri, example_now() + Duration::from_secs(3599)).unwrap();
    assert_eq!(auth.identity, example_user());
    assert!(matches!(auth.payload, PayloadCheck::Unsigned));

    let err = verify_presigned_uri(&uri, example_now() + Duration::from_secs(3601)).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::AccessDenied);
    assert_eq!(err.message, "Request has expired");

    for (from, to) in [
        ("versionId=a%2Bb", "versionId=a%2Bc"),
        ("tok%2Fen", "tok%2Fem"),
        ("X-Amz-Expires=3600", "X-Amz-Expires=7200"),
    ] {
        let tampered: Uri = uri.to_string().replace(from, to).parse().unwrap();
        let err = verify_presigned_uri(&tampered, example_now()).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::SignatureDoesNotMatch, "{to}");
    }
}

#[test]
fn presign_refuses_bad_input() {
    let uri: Uri = "http://localhost/bucket/key".parse().unwrap();
    let relative: Uri = "/bucket/key".parse().unwrap();
    let presign_with = |uri: &Uri, secs: u64| {
        presign_v4(
            &Method::GET,
            uri,
            EXAMPLE_ACCESS_KEY,
            &secret(),
            REGION,
            example_now(),
            Duration::from_secs(secs),
        )
    };
    assert!(presign_with(&uri, 0).is_err());
    assert!(presign_with(&uri, 604_801).is_err());
    assert!(presign_with(&relative, 60).is_err());
    assert!(presign_with(&uri, 604_800).is_ok());
}

/// Knows one temporary key, valid only with its session token.
struct SessionIssuer;

const SESSION_KEY: &str = "ASIATEMPORARYKEY0001";
const SESSION_SECRET: &str = "temporary-secret";
const SESSION_TOKEN: &str = "tok/en+with=specials";

impl crate::auth::CredentialProvider for SessionIssuer {
    fn lookup(&self, _access_key: &str) -> Option<crate::auth::Credential> {
        None
    }

    fn lookup_session(
        &self,
        access_key: &str,
        token: &str,
    ) -> Result<crate::auth::Credential, crate::auth::SessionTokenError> {
        if access_key == SESSION_KEY && token == SESSION_TOKEN {
            Ok(crate::auth::Credential {
                access_key: access_key.to_owned(),
                secret: SecretKey::new(SESSION_SECRET),
                user: EXAMPLE_USER.to_owned(),
            })
        } else {
            Err(crate::auth::SessionTokenError::Invalid)
        }
    }
}

#[test]
fn presigned_urls_carry_a_signed_session_token() {
    let uri = presign_v4_with_token(
        &Method::GET,
        &"http://localhost:9000/bucket/key.txt".parse().unwrap(),
        SESSION_KEY,
        &SecretKey::new(SESSION_SECRET),
        Some(SESSION_TOKEN),
        REGION,
        example_now(),
        Duration::from_secs(600),
    )
    .unwrap();
    assert!(uri
        .query()
        .unwrap()
        .contains("X-Amz-Security-Token=tok%2Fen%2Bwith%3Dspecials"));
    let verify = |uri: &Uri| {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, uri.authority().unwrap().as_str().parse().unwrap());
        authenticate(
            &as_received(&Method::GET, uri, &headers),
            None,
            &SessionIssuer,
            example_now(),
        )
    };
    assert!(verify(&uri).is_ok());
    // Without the token the key is unknown; with another token it is refused.
    let stripped: Uri = uri
        .to_string()
        .replace("&X-Amz-Security-Token=tok%2Fen%2Bwith%3Dspecials", "")
        .parse()
        .unwrap();
    assert!(verify(&stripped).is_err());
    let swapped: Uri = uri
        .to_string()
        .replace("tok%2Fen%2Bwith%3Dspecials", "other")
        .parse()
        .unwrap();
    assert!(verify(&swapped).is_err());
    // Without a token the URL is exactly `presign_v4`'s.
    let plain: Uri = "http://localhost/bucket/key".parse().unwrap();
    assert_eq!(
        presign_v4_with_token(
            &Method::GET,
            &plain,
            EXAMPLE_ACCESS_KEY,
            &secret(),
            None,
            REGION,
            example_now(),
            Duration::from_secs(60),
        )
        .unwrap(),
        presign(&plain.to_string(), 60)
    );
}

#[test]
fn header_signed_requests_sign_the_session_token() {
    let uri: Uri = "http://localhost:9000/bucket/key.txt".parse().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("x-amz-security-token", SESSION_TOKEN.parse().unwrap());
    sign_v4(
        &Method::GET,
        &uri,
        &mut headers,
        UNSIGNED_PAYLOAD,
        SESSION_KEY,
        &SecretKey::new(SESSION_SECRET),
        REGION,
        example_now(),
    );
    let authorization = headers.get(AUTHORIZATION).unwrap().to_str().unwrap();
    assert!(authorization
        .contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token"));
    let parts = as_received(&Method::GET, &uri, &headers);
    assert!(authenticate(&parts, None, &SessionIssuer, example_now()).is_ok());
    let mut forged = headers.clone();
    forged.insert("x-amz-security-token", "other".parse().unwrap());
    let parts = as_received(&Method::GET, &uri, &forged);
    assert!(authenticate(&parts, None, &SessionIssuer, example_now()).is_err());
}
