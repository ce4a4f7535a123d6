use serde_json::{json, Value};

use super::*;
use crate::access::{AccessRequest, Action, Principal, ResourceLevel};
use crate::error::{S3Error, S3ErrorCode};

const BUCKET: &str = "photos";

fn parse(document: &Value) -> Result<BucketPolicy, PolicyError> {
    BucketPolicy::parse(BUCKET, &document.to_string())
}

/// A policy of one statement with the given fields on top of a valid Allow of everything.
fn statement(overrides: Value) -> Value {
    let mut statement = json!({
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::photos/*"
    });
    if let (Value::Object(base), Value::Object(extra)) = (&mut statement, overrides) {
        for (name, value) in extra {
            if value.is_null() {
                base.remove(&name);
            } else {
                base.insert(name, value);
            }
        }
    }
    json!({"Version": "2012-10-17", "Statement": [statement]})
}

fn request(principal: Principal, action: Action, key: Option<&str>) -> AccessRequest {
    AccessRequest::new(principal, action, Some(BUCKET), key)
}

fn anonymous_get(key: &str) -> AccessRequest {
    request(Principal::Anonymous, Action::GetObject, Some(key))
}

#[test]
fn valid_documents_parse() {
    let documents = [
        statement(json!({})),
        json!({"Statement": {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "*", "Resource": "*"}}),
        json!({"Version": "2008-10-17", "Id": "p1", "Statement": [
            {"Sid": "a", "Effect": "Allow", "Principal": {"AWS": ["alice", "arn:aws:iam::bob:root"]},
             "Action": ["s3:GetObject", "s3:List*"], "Resource": ["arn:aws:s3:::photos", "arn:aws:s3:::photos/*"]},
            {"Sid": "b", "Effect": "Deny", "NotPrincipal": {"CanonicalUser": "carol"},
             "NotAction": "s3:Get?bject", "NotResource": "arn:aws:s3:::photos/public/*",
             "Condition": {"Bool": {"aws:SecureTransport": false}}}
        ]}),
        statement(json!({"Resource": "arn:aws:s3:::*"})),
        statement(json!({"Resource": "arn:aws:s3:::pho*/x"})),
        statement(json!({"Action": "S3:GETOBJECT"})),
        statement(json!({"Principal": {"AWS": "arn:aws:iam::123456789012:user/team/dave"}})),
    ];
    for document in documents {
        let policy = parse(&document).unwrap_or_else(|e| panic!("{document}: {e}"));
        assert_eq!(policy.text(), document.to_string());
    }
}

#[test]
fn text_is_kept_verbatim() {
    let text = "{ \"Id\" : \"keep-me\",\n  \"Statement\": {\"Effect\":\"Allow\",\"Principal\":\"*\",\n\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::photos/*\"} }\n";
    let policy = BucketPolicy::parse(BUCKET, text).unwrap();
    assert_eq!(policy.text(), text);
    assert_eq!(policy.id(), Some("keep-me"));
    assert_eq!(policy.statements().len(), 1);
    assert_eq!(policy.statements()[0].effect(), Effect::Allow);
    assert_eq!(policy.statements()[0].sid(), None);
}

#[test]
fn every_rejection_reason() {
    let cases: Vec<(Value, PolicyError)> = vec![
        (
            json!({"Version": "2020-01-01", "Statement": []}),
            PolicyError::InvalidVersion("2020-01-01".into()),
        ),
        (
            json!({"Version": 2012, "Statement": []}),
            PolicyError::InvalidVersion("2012".into()),
        ),
        (
            json!({"Version": "2012-10-17"}),
            PolicyError::MissingField("Statement"),
        ),
        (
            json!({"Statement": []}),
            PolicyError::MissingField("Statement"),
        ),
        (
            json!({"Statement": [], "Extra": 1}),
            PolicyError::UnknownField("Extra".into()),
        ),
        (
            json!({"Id": 5, "Statement": []}),
            PolicyError::InvalidType {
                field: "Id",
                expected: "a string",
            },
        ),
        (
            json!({"Statement": ["Allow"]}),
            PolicyError::InvalidType {
                field: "Statement",
                expected: "an object or an array of objects",
            },
        ),
        (
            statement(json!({"Effects": "Allow"})),
            PolicyError::UnknownField("Effects".into()),
        ),
        (
            statement(json!({"Effect": null})),
            PolicyError::MissingField("Effect"),
        ),
        (
            statement(json!({"Effect": "Permit"})),
            PolicyError::InvalidEffect("Permit".into()),
        ),
        (
            statement(json!({"Effect": "allow"})),
            PolicyError::InvalidEffect("allow".into()),
        ),
        (
            statement(json!({"Effect": true})),
            PolicyError::InvalidEffect("true".into()),
        ),
        (
            statement(json!({"Principal": null})),
            PolicyError::MissingField("Principal"),
        ),
        (
            statement(json!({"NotPrincipal": "*"})),
            PolicyError::ConflictingFields("Principal", "NotPrincipal"),
        ),
        (
            statement(json!({"Principal": "alice"})),
            PolicyError::InvalidPrincipal("\"alice\"".into()),
        ),
        (
            statement(json!({"Principal": {}})),
            PolicyError::InvalidPrincipal("{}".into()),
        ),
        (
            statement(json!({"Principal": {"AWS": "arn:aws:iam::*:root"}})),
            PolicyError::InvalidPrincipal("arn:aws:iam::*:root".into()),
        ),
        (
            statement(json!({"Principal": {"AWS": "arn:aws:sts::1:assumed-role/r/s"}})),
            PolicyError::InvalidPrincipal("arn:aws:sts::1:assumed-role/r/s".into()),
        ),
        (
            statement(json!({"Principal": {"AWS": "arn:aws:iam::1:group/admins"}})),
            PolicyError::InvalidPrincipal("arn:aws:iam::1:group/admins".into()),
        ),
        (
            statement(json!({"Principal": {"AWS": "al*ce"}})),
            PolicyError::InvalidPrincipal("al*ce".into()),
        ),
        (
            statement(json!({"Principal": {"Service": "s3.amazonaws.com"}})),
            PolicyError::InvalidPrincipal(
                "unsupported principal type \"Service\" (use \"AWS\" or \"CanonicalUser\")".into(),
            ),
        ),
        (
            statement(json!({"Action": null})),
            PolicyError::MissingField("Action"),
        ),
        (
            statement(json!({"NotAction": "s3:PutObject"})),
            PolicyError::ConflictingFields("Action", "NotAction"),
        ),
        (
            statement(json!({"Action": "iam:PassRole"})),
            PolicyError::InvalidAction("iam:PassRole".into()),
        ),
        (
            statement(json!({"Action": "GetObject"})),
            PolicyError::InvalidAction("GetObject".into()),
        ),
        (
            statement(json!({"Action": ["s3:GetObject", "s3:"]})),
            PolicyError::InvalidAction("s3:".into()),
        ),
        (
            statement(json!({"Action": "s3:Get Object"})),
            PolicyError::InvalidAction("s3:Get Object".into()),
        ),
        (
            statement(json!({"Action": []})),
            PolicyError::InvalidType {
                field: "Action",
                expected: "a string or a non-empty array of strings",
            },
        ),
        (
            statement(json!({"Action": null, "NotAction": [5]})),
            PolicyError::InvalidType {
                field: "NotAction",
                expected: "a string or a non-empty array of strings",
            },
        ),
        (
            statement(json!({"Resource": null})),
            PolicyError::MissingField("Resource"),
        ),
        (
            statement(json!({"NotResource": "*"})),
            PolicyError::ConflictingFields("Resource", "NotResource"),
        ),
        (
            statement(json!({"Resource": "arn:aws:s3:::other/*"})),
            PolicyError::InvalidResource("arn:aws:s3:::other/*".into()),
        ),
        (
            statement(json!({"Resource": "arn:aws:s3:::photos2"})),
            PolicyError::InvalidResource("arn:aws:s3:::photos2".into()),
        ),
        (
            statement(json!({"Resource": "arn:aws:s3:::vid*/x"})),
            PolicyError::InvalidResource("arn:aws:s3:::vid*/x".into()),
        ),
        (
            statement(json!({"Resource": "photos/*"})),
            PolicyError::InvalidResource("photos/*".into()),
        ),
        (
            statement(json!({"Resource": "arn:aws:iam::1:user/photos"})),
            PolicyError::InvalidResource("arn:aws:iam::1:user/photos".into()),
        ),
        (
            statement(json!({"Condition": {"StringEqualz": {"aws:username": "a"}}})),
            PolicyError::UnknownConditionOperator("StringEqualz".into()),
        ),
        (
            statement(json!({"Condition": {"DateLessThan": {"aws:CurrentTime": "soon"}}})),
            PolicyError::InvalidConditionValue {
                operator: "DateLessThan".into(),
                key: "aws:CurrentTime".into(),
                value: "soon".into(),
            },
        ),
        (
            statement(json!({"Condition": []})),
            PolicyError::InvalidCondition("Condition must be an object of operators".into()),
        ),
        (
            json!({"Statement": [
                {"Sid": "same", "Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
                {"Sid": "same", "Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}
            ]}),
            PolicyError::DuplicateSid("same".into()),
        ),
    ];
    for (document, expected) in cases {
        assert_eq!(parse(&document).unwrap_err(), expected, "{document}");
    }
}

#[test]
fn unreadable_and_oversized_documents_are_rejected() {
    for text in [
        "",
        "{",
        "not json",
        "[]",
        "\"policy\"",
        "{\"Statement\": [}",
    ] {
        assert!(
            matches!(
                BucketPolicy::parse(BUCKET, text),
                Err(PolicyError::InvalidJson(_))
            ),
            "{text:?}"
        );
    }
    let padding = " ".repeat(MAX_POLICY_SIZE);
    let oversized = format!("{}{padding}", statement(json!({})));
    assert_eq!(
        BucketPolicy::parse(BUCKET, &oversized).unwrap_err(),
        PolicyError::TooLarge {
            size: oversized.len()
        }
    );
    let exactly_max = format!("{:<width$}", statement(json!({})), width = MAX_POLICY_SIZE);
    assert!(BucketPolicy::parse(BUCKET, &exactly_max).is_ok());
}

#[test]
fn rejections_map_to_malformed_policy() {
    let error = S3Error::from(PolicyError::InvalidAction("iam:PassRole".into()));
    assert_eq!(error.code, S3ErrorCode::MalformedPolicy);
    assert_eq!(error.status(), http::StatusCode::BAD_REQUEST);
    assert_eq!(error.message, "Policy has invalid action: \"iam:PassRole\"");
}

#[test]
fn public_read_policy() {
    let policy = parse(&statement(json!({}))).unwrap();
    assert_eq!(policy.evaluate(&anonymous_get("a/b.jpg")), Decision::Allow);
    let alice = Principal::user("alice");
    assert_eq!(
        policy.evaluate(&request(alice.clone(), Action::GetObject, Some("x"))),
        Decision::Allow
    );
    assert_eq!(
        policy.evaluate(&request(alice, Action::PutObject, Some("x"))),
        Decision::NoOpinion
    );
    // The bucket's own ARN is not an object ARN: `photos/*` does not cover ListBucket.
    let list = request(Principal::Anonymous, Action::ListBucket, None);
    assert_eq!(policy.evaluate(&list), Decision::NoOpinion);
}

#[test]
fn explicit_deny_wins_over_allow() {
    let policy = parse(&json!({"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::photos/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::photos/secret/*"}
    ]}))
    .unwrap();
    assert_eq!(policy.evaluate(&anonymous_get("public/a")), Decision::Allow);
    assert_eq!(
        policy.evaluate(&anonymous_get("secret/a")),
        Decision::ExplicitDeny
    );
    // The deny statement comes first in this order; the result is the same.
    let reversed = parse(&json!({"Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::photos/secret/*"},
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::photos/*"}
    ]}))
    .unwrap();
    assert_eq!(
        reversed.evaluate(&anonymous_get("secret/a")),
        Decision::ExplicitDeny
    );
}

#[test]
fn principals_are_normalised_to_user_ids() {
    let policy = parse(&statement(json!({"Principal": {
        "AWS": ["alice", "arn:aws:iam::bob:root", "arn:aws:iam::123456789012:user/team/carol"],
        "CanonicalUser": "dave"
    }})))
    .unwrap();
    for (user, expected) in [
        ("alice", Decision::Allow),
        ("bob", Decision::Allow),
        ("carol", Decision::Allow),
        ("dave", Decision::Allow),
        ("team", Decision::NoOpinion),
        ("123456789012", Decision::NoOpinion),
        ("eve", Decision::NoOpinion),
    ] {
        let get = request(Principal::user(user), Action::GetObject, Some("k"));
        assert_eq!(policy.evaluate(&get), expected, "{user}");
    }
    assert_eq!(policy.evaluate(&anonymous_get("k")), Decision::NoOpinion);
    let everyone = parse(&statement(json!({"Principal": {"AWS": ["alice", "*"]}}))).unwrap();
    assert_eq!(everyone.evaluate(&anonymous_get("k")), Decision::Allow);
}

#[test]
fn negated_elements() {
    // Deny everyone but alice anything but reads outside public/.
    let policy = parse(&json!({"Statement": {
        "Effect": "Deny",
        "NotPrincipal": {"AWS": "alice"},
        "NotAction": "s3:Get*",
        "NotResource": "arn:aws:s3:::photos/public/*"
    }}))
    .unwrap();
    let bob = Principal::user("bob");
    let cases = [
        (
            bob.clone(),
            Action::PutObject,
            Some("private/x"),
            Decision::ExplicitDeny,
        ),
        (
            bob.clone(),
            Action::PutObject,
            Some("public/x"),
            Decision::NoOpinion,
        ),
        (
            bob.clone(),
            Action::GetObject,
            Some("private/x"),
            Decision::NoOpinion,
        ),
        (
            Principal::Anonymous,
            Action::DeleteObject,
            Some("a"),
            Decision::ExplicitDeny,
        ),
        (
            Principal::user("alice"),
            Action::PutObject,
            Some("private/x"),
            Decision::NoOpinion,
        ),
        // The bucket ARN is outside `photos/public/*`, so bucket actions are covered too.
        (bob, Action::ListBucket, None, Decision::ExplicitDeny),
    ];
    for (principal, action, key, expected) in cases {
        let req = request(principal.clone(), action, key);
        assert_eq!(
            policy.evaluate(&req),
            expected,
            "{principal:?} {action} {key:?}"
        );
    }
    let nobody = parse(&statement(json!({"Principal": null, "NotPrincipal": "*"}))).unwrap();
    assert_eq!(nobody.evaluate(&anonymous_get("k")), Decision::NoOpinion);
}

#[test]
fn action_patterns_are_case_insensitive_wildcards() {
    let cases = [
        ("s3:GetObject", Action::GetObject, true),
        ("S3:getobject", Action::GetObject, true),
        ("s3:Get*", Action::GetObjectAcl, true),
        ("s3:*Object", Action::DeleteObject, true),
        ("s3:*Object", Action::GetObjectAcl, false),
        ("s3:?etObject", Action::GetObject, true),
        ("s3:Put*", Action::GetObject, false),
        ("s3:*", Action::PutBucketPolicy, true),
        ("*", Action::DeleteBucket, true),
        ("s3:GetObjectTagging", Action::GetObject, false),
    ];
    for (pattern, action, expected) in cases {
        let policy = parse(&statement(json!({"Action": pattern, "Resource": "*"}))).unwrap();
        let key = (action.resource_level() == ResourceLevel::Object).then_some("k");
        let decision = policy.evaluate(&request(Principal::Anonymous, action, key));
        assert_eq!(
            decision == Decision::Allow,
            expected,
            "{pattern} vs {action}"
        );
    }
}

#[test]
fn resource_patterns() {
    let cases = [
        (
            "arn:aws:s3:::photos/public/*",
            Action::GetObject,
            Some("public/a/b.jpg"),
            true,
        ),
        (
            "arn:aws:s3:::photos/public/*",
            Action::GetObject,
            Some("private/a"),
            false,
        ),
        (
            "arn:aws:s3:::photos/public/*",
            Action::GetObject,
            Some("public"),
            false,
        ),
        (
            "arn:aws:s3:::photos/*.jpg",
            Action::GetObject,
            Some("x/y.jpg"),
            true,
        ),
        (
            "arn:aws:s3:::photos/*.jpg",
            Action::GetObject,
            Some("x/y.JPG"),
            false,
        ),
        ("arn:aws:s3:::photos/?", Action::GetObject, Some("a"), true),
        (
            "arn:aws:s3:::photos/?",
            Action::GetObject,
            Some("ab"),
            false,
        ),
        ("arn:aws:s3:::photos", Action::ListBucket, None, true),
        ("arn:aws:s3:::photos", Action::GetObject, Some("a"), false),
        ("arn:aws:s3:::photos*", Action::GetObject, Some("a"), true),
        ("arn:aws:s3:::*", Action::ListBucket, None, true),
        ("*", Action::GetObject, Some("a"), true),
    ];
    for (pattern, action, key, expected) in cases {
        let policy = parse(&statement(json!({"Action": "s3:*", "Resource": pattern}))).unwrap();
        let decision = policy.evaluate(&request(Principal::Anonymous, action, key));
        assert_eq!(
            decision == Decision::Allow,
            expected,
            "{pattern} vs {key:?}"
        );
    }
}

#[test]
fn conditions_gate_statements() {
    let policy = parse(&json!({"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::photos/*",
         "Condition": {"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:db8::/32"]}}},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::photos/*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}, "StringNotEquals": {"aws:username": "alice"}}}
    ]}))
    .unwrap();
    let mut inside = anonymous_get("k");
    inside.source_ip = Some("192.0.2.7".parse().unwrap());
    inside.secure_transport = true;
    assert_eq!(policy.evaluate(&inside), Decision::Allow);
    let mut outside = inside.clone();
    outside.source_ip = Some("203.0.113.1".parse().unwrap());
    assert_eq!(policy.evaluate(&outside), Decision::NoOpinion);
    let mut plain_http = inside.clone();
    plain_http.secure_transport = false;
    assert_eq!(policy.evaluate(&plain_http), Decision::ExplicitDeny);
    let mut alice_plain_http = plain_http.clone();
    alice_plain_http.principal = Principal::user("alice");
    assert_eq!(policy.evaluate(&alice_plain_http), Decision::Allow);
}
