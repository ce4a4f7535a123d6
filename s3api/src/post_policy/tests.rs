#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use base64::Engine;
use time::macros::datetime;

use super::*;
use crate::auth::test_support::StaticCredentials;
use crate::auth::{signing_key, SecretKey};

fn encode(json: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(json)
}

const POLICY: &str = r#"{
  "expiration": "2026-12-01T12:00:00.000Z",
  "conditions": [
    {"bucket": "photos"},
    ["starts-with", "$key", "user/alice/"],
    {"acl": "public-read"},
    ["eq", "$Content-Type", "image/png"],
    ["starts-with", "$x-amz-meta-tag", ""],
    ["content-length-range", 10, "1000"],
    ["content-length-range", 1, 500]
  ]
}"#;

fn fields(pairs: &[(&str, &str)]) -> FormFields {
    let mut fields = FormFields::default();
    for (name, value) in pairs {
        fields.insert(name, (*value).to_owned());
    }
    fields
}

fn good_fields() -> FormFields {
    fields(&[
        ("key", "user/alice/${filename}"),
        ("ACL", "public-read"),
        ("content-type", "image/png"),
        ("policy", "ignored-here"),
        ("x-ignore-tracking", "1"),
    ])
}

#[test]
fn parses_every_condition_shape() {
    let policy = PostPolicy::parse(&encode(POLICY)).unwrap();
    assert_eq!(policy.expiration, datetime!(2026-12-01 12:00 UTC));
    assert_eq!(policy.conditions.len(), 7);
    assert_eq!(
        policy.conditions[3],
        Condition::Eq {
            field: "content-type".into(),
            value: "image/png".into()
        }
    );
    assert_eq!(policy.content_length_range(), Some((10, 500)));
}

#[test]
fn unreadable_policies_are_invalid_documents() {
    for bad in [
        "%%%".to_owned(),
        encode("not json"),
        encode(r#"{"conditions": []}"#),
        encode(r#"{"expiration": "tomorrow", "conditions": []}"#),
        encode(r#"{"expiration": "2026-12-01T12:00:00Z"}"#),
        encode(r#"{"expiration": "2026-12-01T12:00:00Z", "conditions": [["in", "$key", "a"]]}"#),
        encode(r#"{"expiration": "2026-12-01T12:00:00Z", "conditions": [["eq", "key", "a"]]}"#),
        encode(r#"{"expiration": "2026-12-01T12:00:00Z", "conditions": [{"key": 3}]}"#),
        encode(
            r#"{"expiration": "2026-12-01T12:00:00Z", "conditions": [["content-length-range", -1, 3]]}"#,
        ),
    ] {
        let err = PostPolicy::parse(&bad).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::InvalidPolicyDocument, "{bad}");
    }
}

#[test]
fn expiration_is_enforced() {
    let policy = PostPolicy::parse(&encode(POLICY)).unwrap();
    policy
        .check_expiration(datetime!(2026-12-01 11:59 UTC))
        .unwrap();
    let err = policy
        .check_expiration(datetime!(2026-12-01 12:00:01 UTC))
        .unwrap_err();
    assert_eq!(err.code, S3ErrorCode::AccessDenied);
    assert_eq!(err.message, "Invalid according to Policy: Policy expired.");
}

#[test]
fn conditions_and_coverage_are_checked_as_aws_does() {
    let policy = PostPolicy::parse(&encode(POLICY)).unwrap();
    policy.check_fields(&good_fields(), "photos").unwrap();

    let err = policy.check_fields(&good_fields(), "other").unwrap_err();
    assert_eq!(err.code, S3ErrorCode::AccessDenied);
    assert!(
        err.message.contains(r#"["eq", "$bucket", "photos"]"#),
        "{}",
        err.message
    );

    let mut outside = fields(&[
        ("key", "user/bob/x"),
        ("acl", "public-read"),
        ("content-type", "image/png"),
    ]);
    let err = policy.check_fields(&outside, "photos").unwrap_err();
    assert_eq!(
        err.message,
        r#"Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", "user/alice/"]"#
    );
    outside = fields(&[("key", "user/alice/x"), ("content-type", "image/png")]);
    let err = policy.check_fields(&outside, "photos").unwrap_err();
    assert!(
        err.message.contains(r#"["eq", "$acl", "public-read"]"#),
        "{}",
        err.message
    );

    let mut extra = good_fields();
    extra.insert("x-amz-meta-tag", "anything".into());
    policy.check_fields(&extra, "photos").unwrap();
    extra.insert("cache-control", "no-cache".into());
    extra.insert("X-Amz-Meta-Other", "x".into());
    let err = policy.check_fields(&extra, "photos").unwrap_err();
    assert_eq!(
        err.message,
        "Invalid according to Policy: Extra input fields: cache-control, x-amz-meta-other"
    );
}

fn signed_v4(secret: &str, policy: &str) -> FormFields {
    let key = signing_key(&SecretKey::new(secret), "20261126", "us-east-1", "s3");
    let signature = crate::auth::sigv4::sign_string(&key, policy);
    fields(&[
        ("key", "user/alice/a"),
        ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
        (
            "x-amz-credential",
            "AKALICE/20261126/us-east-1/s3/aws4_request",
        ),
        ("x-amz-date", "20261126T120000Z"),
        ("policy", policy),
        ("x-amz-signature", &signature),
    ])
}

#[test]
fn signatures_are_verified_in_both_versions() {
    let creds = StaticCredentials::with("AKALICE", "alice-secret", "alice");
    let policy = encode(POLICY);
    let signer = verify_signature(&signed_v4("alice-secret", &policy), &creds)
        .unwrap()
        .unwrap();
    assert_eq!(signer.credential.user, "alice");
    assert_eq!(signer.policy.content_length_range(), Some((10, 500)));

    let err = verify_signature(&signed_v4("wrong-secret", &policy), &creds).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::SignatureDoesNotMatch);
    // The policy is what is signed: another policy with the old signature fails.
    let other_policy = encode(&POLICY.replace("alice/", ""));
    let mut tampered = FormFields::default();
    for (name, value) in signed_v4("alice-secret", &policy).iter() {
        let value = if name == "policy" {
            &other_policy
        } else {
            value
        };
        tampered.insert(name, value.to_owned());
    }
    let err = verify_signature(&tampered, &creds).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::SignatureDoesNotMatch);

    let v2_signature = crate::auth::sigv2::sign(&SecretKey::new("alice-secret"), &policy);
    let v2 = fields(&[
        ("AWSAccessKeyId", "AKALICE"),
        ("policy", &policy),
        ("signature", &v2_signature),
    ]);
    let signer = verify_signature(&v2, &creds).unwrap().unwrap();
    assert_eq!(signer.credential.user, "alice");
    let unknown = fields(&[
        ("AWSAccessKeyId", "AKNOBODY"),
        ("policy", &policy),
        ("signature", "x"),
    ]);
    let err = verify_signature(&unknown, &creds).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::InvalidAccessKeyId);
}

#[test]
fn unsigned_forms_are_anonymous_and_may_not_carry_a_policy() {
    let creds = StaticCredentials::with("AKALICE", "alice-secret", "alice");
    assert!(verify_signature(&fields(&[("key", "k")]), &creds)
        .unwrap()
        .is_none());
    let err = verify_signature(&fields(&[("key", "k"), ("policy", "e30=")]), &creds).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::InvalidArgument);
    let no_policy = fields(&[("awsaccesskeyid", "AKALICE"), ("signature", "x")]);
    let err = verify_signature(&no_policy, &creds).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::InvalidArgument);
    assert!(err.message.contains("'policy'"), "{}", err.message);
}
