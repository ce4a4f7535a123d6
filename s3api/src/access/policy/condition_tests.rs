use std::net::IpAddr;

use serde_json::{json, Value};
use time::macros::datetime;

use super::*;
use crate::access::{AccessRequest, Action, ConditionContext, Principal};

/// A signed GET by alice from 192.0.2.10 over TLS at 2026-06-01T12:00:00Z.
fn alice() -> AccessRequest {
    AccessRequest {
        principal: Principal::user("alice"),
        action: Action::GetObject,
        bucket: Some("photos".into()),
        key: Some("home/a.jpg".into()),
        source_ip: Some("192.0.2.10".parse().unwrap()),
        secure_transport: true,
        now: datetime!(2026-06-01 12:00:00 UTC),
        context: ConditionContext::default()
            .with("s3:prefix", "home/")
            .with("s3:max-keys", "50")
            .with("aws:Referer", "https://example.org/page")
            .with("mucura:tags", "a")
            .with("mucura:tags", "b"),
    }
}

fn anonymous() -> AccessRequest {
    AccessRequest {
        principal: Principal::Anonymous,
        secure_transport: false,
        ..alice()
    }
}

fn from(ip: &str) -> AccessRequest {
    AccessRequest {
        source_ip: Some(ip.parse::<IpAddr>().unwrap()),
        ..alice()
    }
}

/// Whether the one-test block `{operator: {key: values}}` holds for the request.
fn holds(operator: &str, key: &str, values: Value, request: &AccessRequest) -> bool {
    let conditions = parse_conditions(&json!({ operator: { key: values } }))
        .unwrap_or_else(|e| panic!("{operator} {key}: {e}"));
    assert_eq!(conditions.len(), 1);
    conditions[0].holds(request)
}

#[test]
fn operators_against_request_values() {
    let cases: Vec<(&str, &str, Value, AccessRequest, bool)> = vec![
        // Strings: exact, case-sensitive values, case-insensitive keys, any value matches.
        (
            "StringEquals",
            "aws:username",
            json!("alice"),
            alice(),
            true,
        ),
        (
            "StringEquals",
            "aws:UserName",
            json!("alice"),
            alice(),
            true,
        ),
        ("StringEquals", "aws:userid", json!("alice"), alice(), true),
        (
            "StringEquals",
            "aws:username",
            json!("Alice"),
            alice(),
            false,
        ),
        ("StringEquals", "aws:username", json!("bob"), alice(), false),
        (
            "StringEquals",
            "aws:username",
            json!(["bob", "alice"]),
            alice(),
            true,
        ),
        (
            "StringNotEquals",
            "aws:username",
            json!("bob"),
            alice(),
            true,
        ),
        (
            "StringNotEquals",
            "aws:username",
            json!(["bob", "alice"]),
            alice(),
            false,
        ),
        (
            "StringEqualsIgnoreCase",
            "aws:username",
            json!("ALICE"),
            alice(),
            true,
        ),
        (
            "StringNotEqualsIgnoreCase",
            "aws:username",
            json!("ALICE"),
            alice(),
            false,
        ),
        (
            "StringNotEqualsIgnoreCase",
            "aws:username",
            json!("BOB"),
            alice(),
            true,
        ),
        ("StringLike", "s3:prefix", json!("home/*"), alice(), true),
        ("StringLike", "s3:prefix", json!("home/?"), alice(), false),
        (
            "StringLike",
            "s3:prefix",
            json!(["tmp/*", "h?me/"]),
            alice(),
            true,
        ),
        ("StringNotLike", "s3:prefix", json!("tmp/*"), alice(), true),
        ("StringNotLike", "s3:prefix", json!("home*"), alice(), false),
        (
            "StringLike",
            "aws:Referer",
            json!("https://example.org/*"),
            alice(),
            true,
        ),
        // Numbers, given as JSON numbers or strings.
        ("NumericLessThan", "s3:max-keys", json!(100), alice(), true),
        (
            "NumericLessThan",
            "s3:max-keys",
            json!("10"),
            alice(),
            false,
        ),
        ("NumericLessThan", "s3:max-keys", json!(50), alice(), false),
        (
            "NumericLessThanEquals",
            "s3:max-keys",
            json!(50),
            alice(),
            true,
        ),
        (
            "NumericGreaterThan",
            "s3:max-keys",
            json!(49.5),
            alice(),
            true,
        ),
        (
            "NumericGreaterThanEquals",
            "s3:max-keys",
            json!(51),
            alice(),
            false,
        ),
        ("NumericEquals", "s3:max-keys", json!("50"), alice(), true),
        ("NumericNotEquals", "s3:max-keys", json!(50), alice(), false),
        (
            "NumericNotEquals",
            "s3:max-keys",
            json!([1, 2]),
            alice(),
            true,
        ),
        // A request value that is not a number satisfies no numeric test, negated or not.
        ("NumericLessThan", "s3:prefix", json!(10), alice(), false),
        ("NumericNotEquals", "s3:prefix", json!(10), alice(), false),
        // Dates: ISO 8601 (any offset, or a bare date) and epoch seconds, both ways.
        (
            "DateLessThan",
            "aws:CurrentTime",
            json!("2027-01-01T00:00:00Z"),
            alice(),
            true,
        ),
        (
            "DateLessThan",
            "aws:CurrentTime",
            json!("2026-06-01T12:00:00Z"),
            alice(),
            false,
        ),
        (
            "DateLessThanEquals",
            "aws:CurrentTime",
            json!("2026-06-01T12:00:00Z"),
            alice(),
            true,
        ),
        (
            "DateGreaterThan",
            "aws:CurrentTime",
            json!("2027-01-01"),
            alice(),
            false,
        ),
        (
            "DateGreaterThan",
            "aws:CurrentTime",
            json!("2026-06-01"),
            alice(),
            true,
        ),
        (
            "DateGreaterThanEquals",
            "aws:CurrentTime",
            json!(1_780_315_200),
            alice(),
            true,
        ),
        (
            "DateEquals",
            "aws:CurrentTime",
            json!("2026-06-01T13:00:00+01:00"),
            alice(),
            true,
        ),
        (
            "DateNotEquals",
            "aws:CurrentTime",
            json!("2026-06-01T13:00:00+01:00"),
            alice(),
            false,
        ),
        (
            "DateEquals",
            "aws:EpochTime",
            json!("2026-06-01T12:00:00.000Z"),
            alice(),
            true,
        ),
        (
            "DateGreaterThan",
            "aws:EpochTime",
            json!(1_780_315_199),
            alice(),
            true,
        ),
        (
            "DateLessThan",
            "aws:EpochTime",
            json!(1_780_315_199),
            alice(),
            false,
        ),
        // Booleans.
        ("Bool", "aws:SecureTransport", json!("true"), alice(), true),
        ("Bool", "aws:SecureTransport", json!(true), alice(), true),
        (
            "Bool",
            "aws:SecureTransport",
            json!("false"),
            alice(),
            false,
        ),
        (
            "Bool",
            "aws:SecureTransport",
            json!(false),
            anonymous(),
            true,
        ),
        // Networks.
        (
            "IpAddress",
            "aws:SourceIp",
            json!("192.0.2.0/24"),
            alice(),
            true,
        ),
        (
            "IpAddress",
            "aws:SourceIp",
            json!("192.0.2.10"),
            alice(),
            true,
        ),
        (
            "IpAddress",
            "aws:SourceIp",
            json!("192.0.2.11/32"),
            alice(),
            false,
        ),
        (
            "IpAddress",
            "aws:SourceIp",
            json!("198.51.100.0/24"),
            alice(),
            false,
        ),
        (
            "IpAddress",
            "aws:SourceIp",
            json!(["198.51.100.0/24", "192.0.0.0/8"]),
            alice(),
            true,
        ),
        (
            "IpAddress",
            "aws:SourceIp",
            json!("0.0.0.0/0"),
            alice(),
            true,
        ),
        (
            "NotIpAddress",
            "aws:SourceIp",
            json!("192.0.2.0/24"),
            alice(),
            false,
        ),
        (
            "NotIpAddress",
            "aws:SourceIp",
            json!("10.0.0.0/8"),
            alice(),
            true,
        ),
        (
            "IpAddress",
            "aws:SourceIp",
            json!("2001:db8::/32"),
            from("2001:db8::1"),
            true,
        ),
        (
            "IpAddress",
            "aws:SourceIp",
            json!("2001:db9::/32"),
            from("2001:db8::1"),
            false,
        ),
        (
            "IpAddress",
            "aws:SourceIp",
            json!("::/0"),
            from("2001:db8::1"),
            true,
        ),
        (
            "IpAddress",
            "aws:SourceIp",
            json!("0.0.0.0/0"),
            from("2001:db8::1"),
            false,
        ),
        ("IpAddress", "aws:SourceIp", json!("::/0"), alice(), false),
        (
            "IpAddress",
            "aws:SourceIp",
            json!("192.0.2.0/24"),
            from("::ffff:192.0.2.10"),
            true,
        ),
        (
            "IpAddress",
            "aws:SourceIp",
            json!("::ffff:192.0.2.10"),
            alice(),
            true,
        ),
    ];
    for (operator, key, values, request, expected) in cases {
        assert_eq!(
            holds(operator, key, values.clone(), &request),
            expected,
            "{operator} {key} {values} for {:?}",
            request.principal
        );
    }
}

#[test]
fn absent_keys_fail_positive_tests_unless_if_exists() {
    let cases: Vec<(&str, &str, Value, bool)> = vec![
        ("StringEquals", "aws:username", json!("alice"), false),
        ("StringLike", "aws:username", json!("*"), false),
        ("StringEqualsIfExists", "aws:username", json!("alice"), true),
        ("StringEquals", "s3:unknown-key", json!("x"), false),
        ("StringLikeIfExists", "s3:unknown-key", json!("x"), true),
        ("NumericLessThan", "s3:unknown-key", json!(1), false),
        ("NumericLessThanIfExists", "s3:unknown-key", json!(1), true),
        (
            "IpAddressIfExists",
            "s3:unknown-key",
            json!("10.0.0.0/8"),
            true,
        ),
        (
            "DateLessThanIfExists",
            "s3:unknown-key",
            json!("2020-01-01"),
            true,
        ),
        ("BoolIfExists", "s3:unknown-key", json!(true), true),
        // A negated test holds when nothing matches, and nothing does for an absent key.
        ("StringNotEquals", "aws:username", json!("alice"), true),
        ("NotIpAddress", "s3:unknown-key", json!("10.0.0.0/8"), true),
    ];
    for (operator, key, values, expected) in cases {
        assert_eq!(
            holds(operator, key, values, &anonymous()),
            expected,
            "{operator} {key}"
        );
    }
    // IfExists does not change the test when the key is there.
    assert!(!holds(
        "StringEqualsIfExists",
        "aws:username",
        json!("bob"),
        &alice()
    ));
    assert!(!holds(
        "NumericLessThanIfExists",
        "s3:max-keys",
        json!(10),
        &alice()
    ));
    assert!(holds(
        "NumericLessThanIfExists",
        "s3:max-keys",
        json!(100),
        &alice()
    ));
}

#[test]
fn null_tests_presence() {
    assert!(holds("Null", "aws:username", json!(true), &anonymous()));
    assert!(!holds("Null", "aws:username", json!("true"), &alice()));
    assert!(holds("Null", "aws:username", json!("false"), &alice()));
    assert!(holds("Null", "s3:unknown-key", json!(true), &alice()));
}

#[test]
fn multi_valued_keys_and_set_qualifiers() {
    let cases: Vec<(&str, Value, bool)> = vec![
        ("StringEquals", json!("b"), true),
        ("StringEquals", json!("c"), false),
        ("ForAnyValue:StringEquals", json!("b"), true),
        ("ForAnyValue:StringLike", json!("b*"), true),
        ("ForAllValues:StringEquals", json!(["a", "b", "c"]), true),
        ("ForAllValues:StringEquals", json!("a"), false),
        ("ForAllValues:StringNotEquals", json!("c"), true),
        ("ForAllValues:StringNotEquals", json!("a"), false),
        ("ForAnyValue:StringNotEquals", json!("a"), true),
    ];
    for (operator, values, expected) in cases {
        assert_eq!(
            holds(operator, "mucura:tags", values.clone(), &alice()),
            expected,
            "{operator} {values}"
        );
    }
    // ForAllValues over no values at all is vacuously true.
    assert!(holds(
        "ForAllValues:StringEquals",
        "s3:unknown-key",
        json!("a"),
        &alice()
    ));
}

#[test]
fn several_tests_must_all_hold() {
    let block = json!({
        "StringEquals": {"aws:username": "alice", "s3:prefix": "home/"},
        "IpAddress": {"aws:SourceIp": "192.0.2.0/24"}
    });
    let conditions = parse_conditions(&block).unwrap();
    assert_eq!(conditions.len(), 3);
    assert!(conditions.iter().all(|c| c.holds(&alice())));
    assert!(!conditions.iter().all(|c| c.holds(&from("10.1.2.3"))));
}

#[test]
fn bad_blocks_are_rejected() {
    let unknown = |name: &str| PolicyError::UnknownConditionOperator(name.to_string());
    let cases: Vec<(Value, PolicyError)> = vec![
        (
            json!({"StringEqualz": {"aws:username": "a"}}),
            unknown("StringEqualz"),
        ),
        (
            json!({"stringequals": {"aws:username": "a"}}),
            unknown("stringequals"),
        ),
        (
            json!({"NullIfExists": {"k": "true"}}),
            unknown("NullIfExists"),
        ),
        (
            json!({"ForAllValues:Null": {"k": "true"}}),
            unknown("ForAllValues:Null"),
        ),
        (
            json!({"ForSomeValues:StringEquals": {"k": "a"}}),
            unknown("ForSomeValues:StringEquals"),
        ),
    ];
    for (block, expected) in cases {
        assert_eq!(parse_conditions(&block).unwrap_err(), expected, "{block}");
    }
    let invalid_value = |operator: &str, value: &str| PolicyError::InvalidConditionValue {
        operator: operator.to_string(),
        key: "k".to_string(),
        value: value.to_string(),
    };
    let cases: Vec<(&str, Value, PolicyError)> = vec![
        (
            "DateLessThan",
            json!("yesterday"),
            invalid_value("DateLessThan", "yesterday"),
        ),
        (
            "DateLessThan",
            json!("2026-13-01"),
            invalid_value("DateLessThan", "2026-13-01"),
        ),
        (
            "IpAddress",
            json!("10.0.0.0/33"),
            invalid_value("IpAddress", "10.0.0.0/33"),
        ),
        (
            "IpAddress",
            json!("10.0.0/8"),
            invalid_value("IpAddress", "10.0.0/8"),
        ),
        (
            "NotIpAddress",
            json!("::/129"),
            invalid_value("NotIpAddress", "::/129"),
        ),
        (
            "NumericLessThan",
            json!("ten"),
            invalid_value("NumericLessThan", "ten"),
        ),
        ("Bool", json!("yes"), invalid_value("Bool", "yes")),
        ("Null", json!(1), invalid_value("Null", "1")),
    ];
    for (operator, value, expected) in cases {
        let block = json!({ operator: { "k": value } });
        assert_eq!(parse_conditions(&block).unwrap_err(), expected, "{block}");
    }
    for block in [
        json!("StringEquals"),
        json!({"StringEquals": "aws:username"}),
        json!({"StringEquals": {"k": []}}),
        json!({"StringEquals": {"k": {"nested": 1}}}),
        json!({"StringEquals": {"k": [null]}}),
    ] {
        assert!(
            matches!(
                parse_conditions(&block),
                Err(PolicyError::InvalidCondition(_))
            ),
            "{block}"
        );
    }
}

#[test]
fn cidr_parsing_and_containment() {
    for bad in [
        "",
        "/8",
        "10.0.0.0/",
        "10.0.0.0/-1",
        "10.0.0.0/+8",
        "10.0.0.0/8/8",
        "x",
    ] {
        assert_eq!(Cidr::parse(bad), None, "{bad:?}");
    }
    let net = Cidr::parse("10.1.0.0/16").unwrap();
    assert!(net.contains("10.1.255.255".parse().unwrap()));
    assert!(!net.contains("10.2.0.0".parse().unwrap()));
    // Host bits in the network address are ignored, as AWS does.
    assert!(Cidr::parse("10.1.2.3/16")
        .unwrap()
        .contains("10.1.9.9".parse().unwrap()));
    assert!(Cidr::parse("fe80::/10")
        .unwrap()
        .contains("febf::1".parse().unwrap()));
}

#[test]
fn instants_in_every_accepted_form() {
    let noon = datetime!(2026-06-01 12:00:00 UTC);
    assert_eq!(parse_instant("1780315200"), Some(noon));
    assert_eq!(parse_instant("2026-06-01T12:00:00Z"), Some(noon));
    assert_eq!(parse_instant("2026-06-01T14:00:00+02:00"), Some(noon));
    assert_eq!(
        parse_instant("2026-06-01"),
        Some(datetime!(2026-06-01 00:00:00 UTC))
    );
    for bad in [
        "",
        "-5",
        "2026-06-01T12:00",
        "01/06/2026",
        "99999999999999999999",
    ] {
        assert_eq!(parse_instant(bad), None, "{bad:?}");
    }
}
