//! SigV2 tests: the examples of AWS's "Signing and authenticating REST requests" page, the
//! resource rules s3cmd relies on, and every failure.

use super::*;
use crate::auth::test_support::*;
use crate::auth::{authenticate, Identity};

/// Runs [`authenticate`] with the example key at `now_unix`.
fn auth_at(parts: &Parts, vhost: Option<&str>, now_unix: u64) -> S3Result<Authenticated> {
    authenticate(parts, vhost, &example_creds(), unix(now_unix))
}

fn assert_user(result: S3Result<Authenticated>) {
    let auth = result.unwrap();
    assert_eq!(
        auth.identity,
        Identity::User {
            access_key: EXAMPLE_ACCESS_KEY.into(),
            user: EXAMPLE_USER.into()
        }
    );
    assert!(matches!(auth.payload, PayloadCheck::Unsigned));
}

#[test]
fn aws_example_object_get_virtual_host() {
    let parts = request(
        "GET",
        "/photos/puppy.jpg",
        &[
            ("host", "awsexamplebucket1.us-west-1.s3.amazonaws.com"),
            ("date", "Tue, 27 Mar 2007 19:36:42 +0000"),
            (
                "authorization",
                "AWS AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g=",
            ),
        ],
    );
    assert_eq!(
        string_to_sign(
            &parts,
            Some("awsexamplebucket1"),
            "Tue, 27 Mar 2007 19:36:42 +0000"
        ),
        "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg"
    );
    assert_user(auth_at(&parts, Some("awsexamplebucket1"), 1_175_024_202));
}

#[test]
fn aws_example_object_put_signs_content_type() {
    let parts = request(
        "PUT",
        "/photos/puppy.jpg",
        &[
            ("host", "johnsmith.s3.amazonaws.com"),
            ("content-type", "image/jpeg"),
            ("content-length", "94328"),
            ("date", "Tue, 27 Mar 2007 21:15:45 +0000"),
            (
                "authorization",
                "AWS AKIAIOSFODNN7EXAMPLE:MyyxeRY7whkBe+bq8fHCL/2kKUg=",
            ),
        ],
    );
    assert_user(auth_at(&parts, Some("johnsmith"), 1_175_030_145));
}

#[test]
fn aws_example_list_ignores_non_subresource_parameters() {
    let parts = request(
        "GET",
        "/?prefix=photos&max-keys=50&marker=puppy",
        &[
            ("user-agent", "Mozilla/5.0"),
            ("host", "johnsmith.s3.amazonaws.com"),
            ("date", "Tue, 27 Mar 2007 19:42:41 +0000"),
            (
                "authorization",
                "AWS AKIAIOSFODNN7EXAMPLE:htDYFYduRNen8P9ZfE/s9SuKy0U=",
            ),
        ],
    );
    assert_user(auth_at(&parts, Some("johnsmith"), 1_175_024_561));
}

#[test]
fn aws_example_delete_with_x_amz_date_leaves_date_line_empty() {
    let parts = request(
        "DELETE",
        "/johnsmith/photos/puppy.jpg",
        &[
            ("user-agent", "dotnet"),
            ("host", "s3.amazonaws.com"),
            ("date", "Tue, 27 Mar 2007 21:20:27 +0000"),
            ("x-amz-date", "Tue, 27 Mar 2007 21:20:26 +0000"),
            (
                "authorization",
                "AWS AKIAIOSFODNN7EXAMPLE:R4dJ53KECjStyBO5iTBJZ4XVOaI=",
            ),
        ],
    );
    assert_eq!(
        string_to_sign(&parts, None, ""),
        "DELETE\n\n\n\nx-amz-date:Tue, 27 Mar 2007 21:20:26 +0000\n/johnsmith/photos/puppy.jpg"
    );
    assert_user(auth_at(&parts, None, 1_175_030_426));
}

/// The signature was computed independently with Python's `hmac` over the documented
/// StringToSign `GET\n\n\n1141889120\n/johnsmith/photos/puppy.jpg`.
#[test]
fn query_string_authentication() {
    let uri = "/photos/puppy.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1141889120\
               &Signature=fScKGHCDI0NY5E7CYp9Vc8VKMbY%3D";
    let parts = request("GET", uri, &[("host", "johnsmith.s3.amazonaws.com")]);
    assert_user(auth_at(&parts, Some("johnsmith"), 1_141_889_000));

    let err = auth_at(&parts, Some("johnsmith"), 1_141_889_121).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::AccessDenied);
    assert_eq!(err.message, "Request has expired");

    let tampered = request(
        "GET",
        &uri.replace("puppy.jpg", "kitten.jpg"),
        &[("host", "johnsmith.s3.amazonaws.com")],
    );
    let err = auth_at(&tampered, Some("johnsmith"), 1_141_889_000).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::SignatureDoesNotMatch);

    let incomplete = request(
        "GET",
        "/k?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=x",
        &[],
    );
    let err = auth_at(&incomplete, None, 1_141_889_000).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::AccessDenied);
}

#[test]
fn canonical_resource_keeps_signed_subresources_sorted_and_decoded() {
    assert_eq!(
        canonical_resource("/b/k", Some("uploadId=a%2Fb&partNumber=2"), None),
        "/b/k?partNumber=2&uploadId=a/b"
    );
    assert_eq!(canonical_resource("/", Some("acl"), Some("b")), "/b/?acl");
    assert_eq!(
        canonical_resource("", Some("list-type=2&uploads&prefix=x"), Some("b")),
        "/b/?uploads"
    );
    assert_eq!(
        canonical_resource(
            "/b/a%20b",
            Some("response-content-type=text%2Fplain&versionId=3"),
            None
        ),
        "/b/a%20b?response-content-type=text/plain&versionId=3"
    );
}

#[test]
fn amz_headers_are_lowercased_sorted_and_joined() {
    let parts = request(
        "PUT",
        "/b/k?acl",
        &[
            ("X-Amz-Meta-B", "two"),
            ("x-amz-acl", "public-read"),
            ("x-amz-meta-b", " three "),
            ("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg=="),
            ("content-type", "text/plain"),
        ],
    );
    assert_eq!(
        string_to_sign(&parts, None, "D"),
        "PUT\n1B2M2Y8AsgTpgAmY7PhCfg==\ntext/plain\nD\nx-amz-acl:public-read\nx-amz-meta-b:two,three\n/b/k?acl"
    );
}

/// A request signed the way s3cmd `--signature-v2` does it: virtual host, x-amz-date.
#[test]
fn signed_request_round_trip_and_failures() {
    let now = 1_175_024_202;
    let date = "Tue, 27 Mar 2007 19:36:42 +0000";
    let make = |secret: &str, access_key: &str, date: &str| {
        let unsigned = request(
            "PUT",
            "/a%20b%2Bc?uploadId=xyz&partNumber=3",
            &[("x-amz-date", date)],
        );
        let sig = sign(
            &SecretKey::new(secret),
            &string_to_sign(&unsigned, Some("bucket"), ""),
        );
        request(
            "PUT",
            "/a%20b%2Bc?uploadId=xyz&partNumber=3",
            &[
                ("host", "bucket.localhost"),
                ("x-amz-date", date),
                ("authorization", &format!("AWS {access_key}:{sig}")),
            ],
        )
    };
    assert_user(auth_at(
        &make(EXAMPLE_SECRET, EXAMPLE_ACCESS_KEY, date),
        Some("bucket"),
        now,
    ));

    let wrong_secret = make("not-the-secret", EXAMPLE_ACCESS_KEY, date);
    let err = auth_at(&wrong_secret, Some("bucket"), now).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::SignatureDoesNotMatch);

    let unknown = make(EXAMPLE_SECRET, "AKIDUNKNOWN", date);
    let err = auth_at(&unknown, Some("bucket"), now).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::InvalidAccessKeyId);

    let skewed = make(EXAMPLE_SECRET, EXAMPLE_ACCESS_KEY, date);
    let err = auth_at(&skewed, Some("bucket"), now + 16 * 60).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::RequestTimeTooSkewed);

    let wrong_bucket = make(EXAMPLE_SECRET, EXAMPLE_ACCESS_KEY, date);
    let err = auth_at(&wrong_bucket, Some("other"), now).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::SignatureDoesNotMatch);
}

#[test]
fn malformed_or_undated_headers_are_rejected() {
    for value in [
        "AWS AKIAIOSFODNN7EXAMPLE",
        "AWS :sig",
        "AWS AKIAIOSFODNN7EXAMPLE:",
    ] {
        let parts = request(
            "GET",
            "/",
            &[
                ("authorization", value),
                ("date", "Tue, 27 Mar 2007 19:36:42 +0000"),
            ],
        );
        let err = auth_at(&parts, None, 1_175_024_202).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::InvalidArgument, "{value}");
    }
    let undated = request(
        "GET",
        "/",
        &[("authorization", "AWS AKIAIOSFODNN7EXAMPLE:c2ln")],
    );
    let err = auth_at(&undated, None, 1_175_024_202).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::AccessDenied);
    let bad_date = request(
        "GET",
        "/",
        &[
            ("authorization", "AWS AKIAIOSFODNN7EXAMPLE:c2ln"),
            ("date", "soon"),
        ],
    );
    let err = auth_at(&bad_date, None, 1_175_024_202).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::AccessDenied);
}

/// A multipart part upload signed by botocore 1.44's `HmacV1Auth` (path style, as botocore signs
/// SigV2 requests).
#[test]
fn botocore_signed_request_verifies() {
    let parts = request(
        "PUT",
        "/bucket/dir/a%20b%2Bc%20%C3%BCn%C3%AF%281%29%21.txt?partNumber=2&uploadId=abc",
        &[
            ("host", "s3.example.org"),
            ("content-type", "text/plain"),
            ("x-amz-meta-x", "y"),
            ("date", "Fri, 24 May 2013 00:00:00 GMT"),
            (
                "authorization",
                "AWS AKIAIOSFODNN7EXAMPLE:I0vzscYxniFRhbqqYecxfvU8jTA=",
            ),
            ("content-length", "0"),
        ],
    );
    assert_user(auth_at(&parts, None, 1_369_353_600));
}
