//! SigV4 tests against the "Examples of signature calculations" of the S3 API reference
//! (header auth: GET object, PUT object, GET lifecycle, list objects; query auth: the
//! presigned GET), plus the parse and failure rules.

use super::*;
use crate::auth::test_support::*;
use crate::auth::{authenticate, Identity};

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const EXAMPLE_HOST: &str = "examplebucket.s3.amazonaws.com";

fn example_authorization(signed_headers: &str, signature: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
         SignedHeaders={signed_headers}, Signature={signature}"
    )
}

fn authenticate_example(parts: &Parts) -> S3Result<Authenticated> {
    authenticate(
        parts,
        Some("examplebucket"),
        &example_creds(),
        example_now(),
    )
}

fn assert_example_user(auth: &Authenticated) {
    assert_eq!(
        auth.identity,
        Identity::User {
            access_key: EXAMPLE_ACCESS_KEY.into(),
            user: EXAMPLE_USER.into()
        }
    );
}

fn get_object_request(signature: &str) -> Parts {
    let authorization =
        example_authorization("host;range;x-amz-content-sha256;x-amz-date", signature);
    request(
        "GET",
        "/test.txt",
        &[
            ("host", EXAMPLE_HOST),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
            ("authorization", &authorization),
        ],
    )
}

const GET_OBJECT_SIGNATURE: &str =
    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";

#[test]
fn aws_example_get_object() {
    let auth = authenticate_example(&get_object_request(GET_OBJECT_SIGNATURE)).unwrap();
    assert_example_user(&auth);
    assert!(matches!(auth.payload, PayloadCheck::Sha256(ref h) if h == EMPTY_SHA256));
}

#[test]
fn aws_example_put_object() {
    let body_sha256 = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
    let authorization = example_authorization(
        "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
    );
    let parts = request(
        "PUT",
        "/test%24file.text",
        &[
            ("host", EXAMPLE_HOST),
            ("date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-content-sha256", body_sha256),
            ("authorization", &authorization),
        ],
    );
    let auth = authenticate_example(&parts).unwrap();
    assert_example_user(&auth);
    assert!(matches!(auth.payload, PayloadCheck::Sha256(ref h) if h == body_sha256));
}

#[test]
fn aws_example_get_bucket_lifecycle() {
    let authorization = example_authorization(
        "host;x-amz-content-sha256;x-amz-date",
        "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
    );
    let parts = request(
        "GET",
        "/?lifecycle",
        &[
            ("host", EXAMPLE_HOST),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("authorization", &authorization),
        ],
    );
    assert_example_user(&authenticate_example(&parts).unwrap());
}

#[test]
fn aws_example_list_objects() {
    let authorization = example_authorization(
        "host;x-amz-content-sha256;x-amz-date",
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
    );
    let parts = request(
        "GET",
        "/?max-keys=2&prefix=J",
        &[
            ("host", EXAMPLE_HOST),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("authorization", &authorization),
        ],
    );
    assert_example_user(&authenticate_example(&parts).unwrap());
}

const PRESIGNED_EXAMPLE: &str = "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256\
    &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
    &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
    &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

#[test]
fn aws_example_presigned_get() {
    let parts = request("GET", PRESIGNED_EXAMPLE, &[("host", EXAMPLE_HOST)]);
    let auth = authenticate_example(&parts).unwrap();
    assert_example_user(&auth);
    assert!(matches!(auth.payload, PayloadCheck::Unsigned));
}

#[test]
fn presigned_url_expires_and_rejects_tampering_and_future_dates() {
    let parts = request("GET", PRESIGNED_EXAMPLE, &[("host", EXAMPLE_HOST)]);
    let day_later = example_now() + Duration::from_secs(86_401);
    let err = authenticate(&parts, None, &example_creds(), day_later).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::AccessDenied);
    assert_eq!(err.message, "Request has expired");

    let early = example_now() - MAX_CLOCK_SKEW - Duration::from_secs(1);
    let err = authenticate(&parts, None, &example_creds(), early).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::AccessDenied);

    let longer = PRESIGNED_EXAMPLE.replace("X-Amz-Expires=86400", "X-Amz-Expires=86401");
    let parts = request("GET", &longer, &[("host", EXAMPLE_HOST)]);
    let err = authenticate_example(&parts).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::SignatureDoesNotMatch);

    let extra = format!("{PRESIGNED_EXAMPLE}&versionId=1");
    let parts = request("GET", &extra, &[("host", EXAMPLE_HOST)]);
    let err = authenticate_example(&parts).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::SignatureDoesNotMatch);
}

#[test]
fn malformed_presigned_queries_are_query_parameter_errors() {
    let cases = [
        ("X-Amz-Expires=86400", "X-Amz-Expires=604801"),
        ("X-Amz-Expires=86400", "X-Amz-Expires=0"),
        ("X-Amz-Expires=86400", "X-Amz-Expires=soon"),
        ("X-Amz-Date=20130524T000000Z", "X-Amz-Date=2013-05-24"),
        ("X-Amz-Date=20130524T000000Z", "X-Amz-Date=20130525T000000Z"),
        (
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Algorithm=AWS4-HMAC-SHA1",
        ),
        ("%2Fs3%2F", "%2Fec2%2F"),
        ("AKIAIOSFODNN7EXAMPLE%2F", ""),
        ("&X-Amz-SignedHeaders=host", ""),
    ];
    for (from, to) in cases {
        let uri = PRESIGNED_EXAMPLE.replace(from, to);
        let parts = request("GET", &uri, &[("host", EXAMPLE_HOST)]);
        let err = authenticate_example(&parts).unwrap_err();
        assert_eq!(
            err.code,
            S3ErrorCode::AuthorizationQueryParametersError,
            "{to}"
        );
    }
}

#[test]
fn header_auth_failures() {
    let tampered = get_object_request(GET_OBJECT_SIGNATURE);
    let mut tampered_range = tampered.clone();
    tampered_range
        .headers
        .insert("range", "bytes=0-10".parse().unwrap());
    let err = authenticate_example(&tampered_range).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::SignatureDoesNotMatch);
    assert!(err
        .details
        .iter()
        .any(|(name, _)| *name == "CanonicalRequest"));

    let wrong = get_object_request(&GET_OBJECT_SIGNATURE.replace('f', "e"));
    assert_eq!(
        authenticate_example(&wrong).unwrap_err().code,
        S3ErrorCode::SignatureDoesNotMatch
    );

    let other_creds = StaticCredentials::with("AKIDOTHER", EXAMPLE_SECRET, "u");
    let err = authenticate(&tampered, None, &other_creds, example_now()).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::InvalidAccessKeyId);

    let late = example_now() + MAX_CLOCK_SKEW + Duration::from_secs(1);
    let err = authenticate(&tampered, None, &example_creds(), late).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::RequestTimeTooSkewed);
    assert_eq!(err.status(), http::StatusCode::FORBIDDEN);

    let mut no_sha = tampered.clone();
    no_sha.headers.remove("x-amz-content-sha256");
    let err = authenticate_example(&no_sha).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::InvalidRequest);
    assert_eq!(
        err.message,
        "Missing required header for this request: x-amz-content-sha256"
    );

    let mut bad_sha = tampered.clone();
    bad_sha
        .headers
        .insert("x-amz-content-sha256", "abc".parse().unwrap());
    assert_eq!(
        authenticate_example(&bad_sha).unwrap_err().code,
        S3ErrorCode::InvalidArgument
    );

    let mut unsigned_amz = tampered;
    unsigned_amz
        .headers
        .insert("x-amz-acl", "public-read".parse().unwrap());
    assert_eq!(
        authenticate_example(&unsigned_amz).unwrap_err().code,
        S3ErrorCode::AccessDenied
    );
}

#[test]
fn malformed_authorization_headers() {
    let good = example_authorization("host;x-amz-date", "abcd");
    let cases = [
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
            .to_string(),
        good.replace("/s3/", "/ec2/"),
        good.replace("aws4_request", "aws5_request"),
        good.replace("/20130524/", "/2013-05-24/"),
        good.replace("/20130524/", "/20130525/"),
        good.replace("AKIAIOSFODNN7EXAMPLE/", ""),
        good.replace(
            "SignedHeaders=host;x-amz-date",
            "SignedHeaders=host;;x-amz-date",
        ),
        format!("{good}, Extra=1"),
    ];
    for value in cases {
        let parts = request(
            "GET",
            "/",
            &[
                ("host", EXAMPLE_HOST),
                ("x-amz-date", "20130524T000000Z"),
                ("x-amz-content-sha256", EMPTY_SHA256),
                ("authorization", &value),
            ],
        );
        let err = authenticate_example(&parts).unwrap_err();
        assert_eq!(
            err.code,
            S3ErrorCode::AuthorizationHeaderMalformed,
            "{value}"
        );
    }
}

#[test]
fn payload_modes_follow_x_amz_content_sha256() {
    assert_eq!(
        classify_payload("UNSIGNED-PAYLOAD").unwrap(),
        PayloadMode::Unsigned
    );
    assert_eq!(
        classify_payload(&EMPTY_SHA256.to_uppercase()).unwrap(),
        PayloadMode::Sha256
    );
    assert_eq!(
        classify_payload("STREAMING-AWS4-HMAC-SHA256-PAYLOAD").unwrap(),
        PayloadMode::SignedChunks { has_trailer: false }
    );
    assert_eq!(
        classify_payload("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER").unwrap(),
        PayloadMode::SignedChunks { has_trailer: true }
    );
    assert_eq!(
        classify_payload("STREAMING-UNSIGNED-PAYLOAD-TRAILER").unwrap(),
        PayloadMode::UnsignedChunks
    );
    for bad in ["", "streaming-aws4-hmac-sha256-payload", &EMPTY_SHA256[1..]] {
        assert_eq!(
            classify_payload(bad).unwrap_err().code,
            S3ErrorCode::InvalidArgument
        );
    }
}

#[test]
fn signing_key_matches_aws_derivation_example() {
    // From AWS's "Examples of how to derive a signing key" (IAM user guide).
    let key = signing_key(
        &SecretKey::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        "20120215",
        "us-east-1",
        "iam",
    );
    assert_eq!(
        hex::encode(key),
        "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
    );
}

/// Requests signed by botocore 1.44 (what the AWS CLI and boto3 send), generated with its
/// `S3SigV4Auth` / `S3SigV4QueryAuth` at 2013-05-24T00:00:00Z for a key with spaces, `+`,
/// non-ASCII letters and sub-delimiters.
#[test]
fn botocore_signed_requests_verify() {
    let key_path = "/bucket/dir/a%20b%2Bc%20%C3%BCn%C3%AF%281%29%21.txt";
    let authorization =
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
        SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-meta-note, \
        Signature=41b32128b09694d0636b28bcf0ade71f6383ed4dae3da40d5c8c571621a35d8c";
    let parts = request(
        "PUT",
        &format!("{key_path}?tagging&versionId=v%2B1%202"),
        &[
            ("host", "127.0.0.1:9000"),
            ("content-type", "text/plain"),
            ("x-amz-meta-note", "a  b"),
            ("x-amz-date", "20130524T000000Z"),
            (
                "x-amz-content-sha256",
                "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            ),
            ("authorization", authorization),
            ("content-length", "5"),
        ],
    );
    let auth = authenticate(&parts, None, &example_creds(), example_now()).unwrap();
    assert_example_user(&auth);

    let presigned = format!(
        "{key_path}?X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
         &X-Amz-Date=20130524T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host\
         &X-Amz-Signature=1fb0bc3af445512e76be88e938246856a90994c64f364b9c0a626ffff512e65a"
    );
    let parts = request("GET", &presigned, &[("host", "s3.example.org")]);
    let auth = authenticate(&parts, None, &example_creds(), example_now()).unwrap();
    assert_example_user(&auth);
}
