//! STS requests end to end through [`handle`]: parameters, signatures scoped to `sts`,
//! refusals, and the XML that SDKs parse.

use std::sync::Mutex;

use http_body_util::Full;

use super::*;
use crate::auth::canonical::{canonical_query, canonical_request, raw_params, CanonicalInput};
use crate::auth::sigv4::{sign_string, signing_key, string_to_sign, ALGORITHM};
use crate::auth::test_support::{EXAMPLE_ACCESS_KEY, EXAMPLE_SECRET, EXAMPLE_USER};
use crate::auth::{Credential, SessionTokenError};

/// What `assume_role` was asked: access key, user, caller's token, duration.
type Asked = (String, String, Option<String>, Duration);

/// Knows the example key and records what it was asked to issue.
#[derive(Default)]
struct Issuer {
    asked: Mutex<Vec<Asked>>,
}

impl CredentialProvider for Issuer {
    fn lookup(&self, access_key: &str) -> Option<Credential> {
        (access_key == EXAMPLE_ACCESS_KEY).then(|| Credential {
            access_key: access_key.to_owned(),
            secret: SecretKey::new(EXAMPLE_SECRET),
            user: EXAMPLE_USER.to_owned(),
        })
    }

    fn lookup_session(
        &self,
        access_key: &str,
        token: &str,
    ) -> Result<Credential, SessionTokenError> {
        match token {
            "good-token" => Ok(Credential {
                access_key: access_key.to_owned(),
                secret: SecretKey::new("session-secret"),
                user: EXAMPLE_USER.to_owned(),
            }),
            "old-token" => Err(SessionTokenError::Expired),
            _ => Err(SessionTokenError::Invalid),
        }
    }

    fn assume_role(&self, request: &RoleRequest<'_>) -> S3Result<Session> {
        self.asked.lock().unwrap().push((
            request.access_key.to_owned(),
            request.user.to_owned(),
            request.session_token.map(str::to_owned),
            request.duration,
        ));
        Ok(session(request.user, request.now + request.duration))
    }

    fn assume_role_with_certificate(&self, request: &CertificateRequest<'_>) -> S3Result<Session> {
        let user = format!("dn:{}", request.certificate.subject_dn);
        Ok(session(&user, request.now + request.duration))
    }
}

fn session(user: &str, expires_at: SystemTime) -> Session {
    Session {
        access_key: "MSTEMPORARYKEY000001".into(),
        secret: SecretKey::new("temporary-secret"),
        token: "token<&>".into(),
        user: user.into(),
        expires_at,
    }
}

/// A `POST /` form request, signed for `service` with the example key when `sign` is set
/// (botocore's way for STS: no `x-amz-content-sha256`, the body's hash in the canonical
/// request).
fn request(form: &str, service: &str, sign: bool, extra: &[(&str, &str)]) -> Parts {
    let now = SystemTime::now();
    let amz_date = OffsetDateTime::from(now)
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap();
    let mut builder = http::Request::builder()
        .method("POST")
        .uri("/")
        .header("host", "localhost:9000")
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header("x-amz-date", &amz_date);
    for (name, value) in extra {
        builder = builder.header(*name, *value);
    }
    let mut parts = builder.body(()).unwrap().into_parts().0;
    if sign {
        let mut signed: Vec<&str> = parts
            .headers
            .keys()
            .map(|name| name.as_str())
            .filter(|name| *name == "host" || name.starts_with("x-amz-") || *name == "content-type")
            .collect();
        signed.sort_unstable();
        let payload = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(form.as_bytes()));
        let canonical = canonical_request(&CanonicalInput {
            method: "POST",
            path: "/",
            query: &canonical_query(&raw_params(None)),
            headers: &parts.headers,
            authority: None,
            signed_headers: &signed,
            payload_hash: &payload,
        });
        let date = &amz_date[..8];
        let scope = format!("{date}/us-east-1/{service}/aws4_request");
        let key = signing_key(&SecretKey::new(EXAMPLE_SECRET), date, "us-east-1", service);
        let signature = sign_string(&key, &string_to_sign(&amz_date, &scope, &canonical));
        let value = format!(
            "{ALGORITHM} Credential={EXAMPLE_ACCESS_KEY}/{scope}, SignedHeaders={}, Signature={signature}",
            signed.join(";")
        );
        parts
            .headers
            .insert("authorization", value.parse().unwrap());
    }
    parts
}

fn run(issuer: &Issuer, parts: &Parts, form: &str) -> Outcome {
    let body = Full::new(Bytes::from(form.to_owned()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(handle(issuer, parts, body, "REQ1"))
}

const ASSUME: &str = "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fx&RoleSessionName=job-1";

#[test]
fn assume_role_signed_for_sts_issues_a_session_for_the_caller() {
    let issuer = Issuer::default();
    let form = format!("{ASSUME}&DurationSeconds=1800");
    let parts = request(&form, "sts", true, &[]);
    let outcome = run(&issuer, &parts, &form);
    let xml = outcome.result.unwrap();
    assert_eq!(outcome.action, Some(Action::AssumeRole));
    assert!(
        xml.contains("<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">")
    );
    assert!(xml.contains("<AccessKeyId>MSTEMPORARYKEY000001</AccessKeyId>"));
    assert!(
        xml.contains("<SessionToken>token&lt;&amp;&gt;</SessionToken>"),
        "{xml}"
    );
    assert!(xml.contains("<RequestId>REQ1</RequestId>"));
    assert!(xml.contains("assumed-role/example-user/job-1"));
    let asked = issuer.asked.lock().unwrap();
    assert_eq!(
        asked[0],
        (
            EXAMPLE_ACCESS_KEY.to_owned(),
            EXAMPLE_USER.to_owned(),
            None,
            Duration::from_secs(1800)
        )
    );
}

#[test]
fn expiration_is_whole_seconds_rfc3339() {
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
    assert_eq!(sts_timestamp(at), "2026-11-18T11:06:40Z");
}

#[test]
fn signature_scoped_to_s3_is_refused_for_sts() {
    let issuer = Issuer::default();
    let parts = request(ASSUME, "s3", true, &[]);
    let err = run(&issuer, &parts, ASSUME).result.unwrap_err();
    assert_eq!(err.code, S3ErrorCode::AuthorizationHeaderMalformed);
}

#[test]
fn altered_body_breaks_the_signature() {
    let issuer = Issuer::default();
    let parts = request(ASSUME, "sts", true, &[]);
    let tampered = ASSUME.replace("job-1", "job-2");
    let err = run(&issuer, &parts, &tampered).result.unwrap_err();
    assert_eq!(err.code, S3ErrorCode::SignatureDoesNotMatch);
}

#[test]
fn anonymous_assume_role_is_denied() {
    let issuer = Issuer::default();
    let parts = request(ASSUME, "sts", false, &[]);
    let outcome = run(&issuer, &parts, ASSUME);
    assert_eq!(outcome.result.unwrap_err().code, S3ErrorCode::AccessDenied);
    assert_eq!(outcome.identity, Some(Identity::Anonymous));
}

#[test]
fn session_credentials_pass_their_token_on_and_bad_tokens_are_refused() {
    let issuer = Issuer::default();
    // The example key stands in for a temporary key here: the provider decides by token.
    let parts = request(
        ASSUME,
        "sts",
        true,
        &[("x-amz-security-token", "good-token")],
    );
    let outcome = run(&issuer, &parts, ASSUME);
    // The signature used the example secret, the session's secret differs.
    assert_eq!(
        outcome.result.unwrap_err().code,
        S3ErrorCode::SignatureDoesNotMatch
    );
    for (token, code) in [
        ("old-token", S3ErrorCode::ExpiredToken),
        ("forged", S3ErrorCode::InvalidToken),
    ] {
        let parts = request(ASSUME, "sts", true, &[("x-amz-security-token", token)]);
        let err = run(&issuer, &parts, ASSUME).result.unwrap_err();
        assert_eq!(err.code, code, "{token}");
        assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
    }
}

#[test]
fn durations_outside_aws_bounds_are_validation_errors() {
    let issuer = Issuer::default();
    for duration in ["899", "43201", "abc", "-5"] {
        let form = format!("{ASSUME}&DurationSeconds={duration}");
        let parts = request(&form, "sts", true, &[]);
        let err = run(&issuer, &parts, &form).result.unwrap_err();
        assert_eq!(err.code, S3ErrorCode::ValidationError, "{duration}");
    }
}

#[test]
fn default_duration_is_an_hour() {
    let issuer = Issuer::default();
    let parts = request(ASSUME, "sts", true, &[]);
    run(&issuer, &parts, ASSUME).result.unwrap();
    assert_eq!(issuer.asked.lock().unwrap()[0].3, DEFAULT_DURATION);
}

#[test]
fn refusals_before_authentication() {
    let issuer = Issuer::default();
    let cases = [
        (
            "Action=GetCallerIdentity&Version=2011-06-15",
            S3ErrorCode::InvalidAction,
        ),
        ("Version=2011-06-15", S3ErrorCode::NotImplemented),
        (
            "Action=AssumeRole&Version=2010-01-01",
            S3ErrorCode::ValidationError,
        ),
        (
            "Action=AssumeRole&Version=2011-06-15&RoleSessionName=a",
            S3ErrorCode::ValidationError,
        ),
        (
            "Action=AssumeRole&Version=2011-06-15&Policy=%7B%7D",
            S3ErrorCode::NotImplemented,
        ),
    ];
    for (form, code) in cases {
        let parts = request(form, "sts", true, &[]);
        let err = run(&issuer, &parts, form).result.unwrap_err();
        assert_eq!(err.code, code, "{form}");
    }
    assert!(issuer.asked.lock().unwrap().is_empty());
}

#[test]
fn oversized_form_is_refused() {
    let issuer = Issuer::default();
    let form = format!("{ASSUME}&pad={}", "x".repeat(MAX_FORM_BYTES));
    let parts = request(&form, "sts", true, &[]);
    let err = run(&issuer, &parts, &form).result.unwrap_err();
    assert_eq!(err.code, S3ErrorCode::ValidationError);
}

#[test]
fn certificate_action_needs_the_grid_listener_extension() {
    let issuer = Issuer::default();
    let form = "Action=AssumeRoleWithCertificate&Version=2011-06-15&DurationSeconds=900";
    let parts = request(form, "sts", false, &[]);
    let err = run(&issuer, &parts, form).result.unwrap_err();
    assert_eq!(err.code, S3ErrorCode::AccessDenied);

    // Parameters in the query, as MinIO's clients send them.
    let mut parts = http::Request::builder()
        .method("POST")
        .uri(format!("/?{form}"))
        .body(())
        .unwrap()
        .into_parts()
        .0;
    parts.extensions.insert(ClientCertificate {
        subject_dn: "/DC=org/CN=Jane".into(),
        not_after: SystemTime::now() + Duration::from_secs(86_400),
        is_proxy: true,
        limited: false,
    });
    let outcome = run(&issuer, &parts, "");
    let xml = outcome.result.unwrap();
    assert!(
        xml.contains("<AssumeRoleWithCertificateResult><Credentials>"),
        "{xml}"
    );
    assert_eq!(
        outcome.identity,
        Some(Identity::User {
            access_key: "MSTEMPORARYKEY000001".into(),
            user: "dn:/DC=org/CN=Jane".into()
        })
    );
}

#[test]
fn error_document_is_sts_shaped() {
    let err = S3Error::new(S3ErrorCode::ExpiredToken, "The provided token has expired.");
    let xml = error_xml(&err, "R<1>");
    assert!(xml.contains("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>ExpiredToken</Code>"));
    assert!(xml.contains("<RequestId>R&lt;1&gt;</RequestId>"));
    let internal = error_xml(&S3Error::internal("disk"), "R");
    assert!(internal.contains("<Type>Receiver</Type>"));
}
