#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use http::header::HeaderMap;

use super::matching::wildcard_match;
use super::*;
use crate::error::S3ErrorCode;

const DOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <CORSRule>
    <ID>site</ID>
    <AllowedOrigin>https://app.example.com</AllowedOrigin>
    <AllowedOrigin>https://*.example.org</AllowedOrigin>
    <AllowedMethod>GET</AllowedMethod>
    <AllowedMethod>PUT</AllowedMethod>
    <AllowedHeader>Content-*</AllowedHeader>
    <AllowedHeader>x-amz-date</AllowedHeader>
    <ExposeHeader>ETag</ExposeHeader>
    <ExposeHeader>x-amz-request-id</ExposeHeader>
    <MaxAgeSeconds> 3000 </MaxAgeSeconds>
  </CORSRule>
  <CORSRule>
    <AllowedOrigin>*</AllowedOrigin>
    <AllowedMethod>GET</AllowedMethod>
  </CORSRule>
</CORSConfiguration>"#;

fn config() -> CorsConfiguration {
    CorsConfiguration::parse(DOC.as_bytes()).unwrap()
}

#[test]
fn parses_rules_in_order_and_round_trips_through_canonical_xml() {
    let config = config();
    assert_eq!(config.rules.len(), 2);
    let first = &config.rules[0];
    assert_eq!(first.id.as_deref(), Some("site"));
    assert_eq!(first.allowed_methods, ["GET", "PUT"]);
    assert_eq!(first.allowed_headers, ["Content-*", "x-amz-date"]);
    assert_eq!(first.max_age_seconds, Some(3000));
    let canonical = config.to_xml();
    assert!(canonical.contains("<CORSConfiguration xmlns="));
    assert_eq!(
        CorsConfiguration::parse(canonical.as_bytes()).unwrap(),
        config
    );
    assert_eq!(CorsConfiguration::from_stored(&canonical).unwrap(), config);
}

#[test]
fn refuses_documents_as_aws_does() {
    let rule =
        |body: &str| format!("<CORSConfiguration><CORSRule>{body}</CORSRule></CORSConfiguration>");
    let malformed = [
        String::new(),
        "<CORSConfiguration></CORSConfiguration>".into(),
        "<CORSConfiguration><CORSRule>".into(),
        "<Other><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></Other>".into(),
        rule("<AllowedMethod>GET</AllowedMethod>"),
        rule("<AllowedOrigin>*</AllowedOrigin>"),
        rule("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>x</MaxAgeSeconds>"),
        format!(
            "<CORSConfiguration>{}</CORSConfiguration>",
            "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>"
                .repeat(MAX_CORS_RULES + 1)
        ),
    ];
    for body in &malformed {
        let err = CorsConfiguration::parse(body.as_bytes()).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::MalformedXML, "{body}");
    }
    let invalid = [
        (rule("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod>"), "PATCH"),
        (rule("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>get</AllowedMethod>"), "get"),
        (rule("<AllowedOrigin>http://*.*.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"), "wildcard"),
        (rule("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedHeader>**</AllowedHeader>"), "wildcard"),
    ];
    for (body, says) in &invalid {
        let err = CorsConfiguration::parse(body.as_bytes()).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::InvalidRequest, "{body}");
        assert!(err.message.contains(says), "{}", err.message);
    }
    let most = format!(
        "<CORSConfiguration>{}</CORSConfiguration>",
        "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>"
            .repeat(MAX_CORS_RULES)
    );
    assert_eq!(
        CorsConfiguration::parse(most.as_bytes())
            .unwrap()
            .rules
            .len(),
        MAX_CORS_RULES
    );
}

#[test]
fn wildcards_match_one_run_of_characters() {
    assert!(wildcard_match("*", "", false));
    assert!(wildcard_match(
        "https://*.example.org",
        "https://a.b.example.org",
        false
    ));
    assert!(!wildcard_match(
        "https://*.example.org",
        "https://example.org",
        false
    ));
    assert!(!wildcard_match(
        "https://*.example.org",
        "http://a.example.org",
        false
    ));
    assert!(wildcard_match("content-*", "Content-Type", true));
    assert!(!wildcard_match(
        "https://App.example.com",
        "https://app.example.com",
        false
    ));
    assert!(!wildcard_match("ab*ba", "aba", false));
}

#[test]
fn preflight_takes_the_first_rule_allowing_origin_method_and_headers() {
    let config = config();
    let answer = config
        .preflight(
            "https://app.example.com",
            "PUT",
            Some("content-type, X-Amz-Date"),
        )
        .unwrap();
    assert_eq!(
        answer.get("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(answer.get("access-control-allow-credentials"), Some("true"));
    assert_eq!(answer.get("access-control-allow-methods"), Some("GET, PUT"));
    assert_eq!(
        answer.get("access-control-allow-headers"),
        Some("content-type, X-Amz-Date")
    );
    assert_eq!(
        answer.get("access-control-expose-headers"),
        Some("ETag, x-amz-request-id")
    );
    assert_eq!(answer.get("access-control-max-age"), Some("3000"));
    assert!(answer.get("vary").unwrap().starts_with("Origin"));

    // Falls through to the wildcard rule, which answers `*` and no credentials.
    let any = config
        .preflight("https://elsewhere.net", "GET", None)
        .unwrap();
    assert_eq!(any.get("access-control-allow-origin"), Some("*"));
    assert_eq!(any.get("access-control-allow-credentials"), None);
    assert_eq!(any.get("access-control-allow-headers"), None);

    // Refusals: method, header, origin.
    assert!(config
        .preflight("https://elsewhere.net", "PUT", None)
        .is_none());
    assert!(config
        .preflight("https://app.example.com", "DELETE", None)
        .is_none());
    assert!(config
        .preflight("https://app.example.com", "PUT", Some("x-secret"))
        .is_none());
    // GET with a header only the first rule allows, from an origin only the second allows.
    assert!(config
        .preflight("https://elsewhere.net", "GET", Some("content-type"))
        .is_none());
}

#[test]
fn actual_requests_need_origin_and_a_matching_rule() {
    let stored = config().to_xml();
    let mut headers = HeaderMap::new();
    assert_eq!(
        actual_response_headers(&headers, &http::Method::GET, Some(&stored)),
        None
    );
    headers.insert(
        http::header::ORIGIN,
        "https://x.example.org".parse().unwrap(),
    );
    let answer = actual_response_headers(&headers, &http::Method::PUT, Some(&stored)).unwrap();
    assert_eq!(
        answer.get("access-control-allow-origin"),
        Some("https://x.example.org")
    );
    assert_eq!(
        actual_response_headers(&headers, &http::Method::DELETE, Some(&stored)),
        None
    );
    assert_eq!(
        actual_response_headers(&headers, &http::Method::GET, None),
        None
    );
    let mut response = HeaderMap::new();
    answer.apply(&mut response);
    assert_eq!(
        response["access-control-expose-headers"],
        "ETag, x-amz-request-id"
    );
}
