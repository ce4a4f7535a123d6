//! Chains that must be accepted, and the identity they yield.

use std::time::{Duration, SystemTime};

use rustls::pki_types::UnixTime;

use super::pki::{openssl_time, ProxyKind, ProxySpec};
use super::{Fixture, CA_SUBJECT, DAY, USER_SUBJECT};
use crate::grid::ca_dir::TrustStore;
use crate::grid::proxy::{verify_chain, ValidationOptions};
use crate::grid::proxy_cert::ProxyType;

#[test]
fn user_certificate_alone_is_accepted_with_both_dn_forms() {
    let fixture = Fixture::new();
    let identity = fixture.verify(&fixture.user.chain).unwrap();
    assert_eq!(identity.subject_dn.openssl, USER_SUBJECT);
    let openssl_rfc2253 = fixture.pki.openssl(
        fixture.pki.path(),
        &[
            "x509",
            "-noout",
            "-subject",
            "-nameopt",
            "RFC2253",
            "-in",
            &fixture.user.cert_path.display().to_string(),
        ],
    );
    assert_eq!(
        format!("subject={}", identity.subject_dn.rfc2253),
        openssl_rfc2253.trim()
    );
    assert_eq!(identity.issuer_dn.openssl, CA_SUBJECT);
    assert!(!identity.is_proxy);
    assert_eq!(identity.proxy_type, None);
    assert!(!identity.limited);
    assert_eq!(identity.chain_not_after, identity.eec_not_after);
    let remaining = identity
        .eec_not_after
        .duration_since(SystemTime::now())
        .unwrap();
    assert!(remaining > Duration::from_secs((364 * DAY) as u64));
}

#[test]
fn rfc3820_proxy_is_accepted_with_its_expiry() {
    let fixture = Fixture::new();
    let proxy = fixture.pki.proxy(&fixture.user, &ProxySpec::default());
    let identity = fixture.verify(&proxy.chain).unwrap();
    assert_eq!(identity.subject_dn.openssl, USER_SUBJECT);
    assert!(identity.is_proxy);
    assert_eq!(identity.proxy_type, Some(ProxyType::Rfc3820));
    assert!(!identity.limited);
    let proxy_lifetime = identity
        .chain_not_after
        .duration_since(SystemTime::now())
        .unwrap();
    assert!(proxy_lifetime <= Duration::from_secs(12 * 3600));
    assert!(identity.eec_not_after > identity.chain_not_after);
}

#[test]
fn proxy_of_proxy_is_accepted() {
    let fixture = Fixture::new();
    let first = fixture.pki.proxy(&fixture.user, &ProxySpec::default());
    let second = fixture.pki.proxy(&first, &ProxySpec::default());
    let identity = fixture.verify(&second.chain).unwrap();
    assert_eq!(identity.subject_dn.openssl, USER_SUBJECT);
    assert_eq!(identity.proxy_type, Some(ProxyType::Rfc3820));
}

#[test]
fn limited_proxy_is_accepted_and_marked_down_the_chain() {
    let fixture = Fixture::new();
    let limited_spec = ProxySpec {
        language: "1.3.6.1.4.1.3536.1.1.1.9".to_string(),
        ..ProxySpec::default()
    };
    let limited = fixture.pki.proxy(&fixture.user, &limited_spec);
    assert!(fixture.verify(&limited.chain).unwrap().limited);
    // A full proxy made from a limited one is still limited.
    let below = fixture.pki.proxy(&limited, &ProxySpec::default());
    assert!(fixture.verify(&below.chain).unwrap().limited);
}

#[test]
fn legacy_and_gt2_proxies_are_accepted() {
    let fixture = Fixture::new();
    let legacy = fixture.pki.proxy(
        &fixture.user,
        &ProxySpec {
            kind: ProxyKind::Legacy,
            ..ProxySpec::default()
        },
    );
    let identity = fixture.verify(&legacy.chain).unwrap();
    assert_eq!(identity.proxy_type, Some(ProxyType::Legacy));
    assert!(!identity.limited);

    let gt2 = fixture.pki.proxy(
        &fixture.user,
        &ProxySpec {
            kind: ProxyKind::Gt2,
            ..ProxySpec::default()
        },
    );
    let identity = fixture.verify(&gt2.chain).unwrap();
    assert_eq!(identity.proxy_type, Some(ProxyType::Gt2));
    assert_eq!(identity.subject_dn.openssl, USER_SUBJECT);
    assert!(!identity.limited);

    let gt2_limited = fixture.pki.proxy(
        &gt2,
        &ProxySpec {
            kind: ProxyKind::Gt2,
            common_name: Some("limited proxy".to_string()),
            ..ProxySpec::default()
        },
    );
    assert!(fixture.verify(&gt2_limited.chain).unwrap().limited);
}

#[test]
fn user_of_a_two_tier_ca_is_accepted_with_both_crls() {
    let fixture = Fixture::new();
    let issuing = fixture.pki.sub_ca(
        &fixture.ca,
        "issuing",
        "/DC=org/DC=mucura-test/CN=Mucura Issuing CA",
    );
    let user = fixture.pki.user(
        &issuing,
        "tiered",
        "/DC=org/DC=mucura-test/OU=People/CN=Tier Two",
        &openssl_time(-DAY),
        &openssl_time(DAY),
    );
    let root_crl = fixture
        .pki
        .crl(&fixture.ca, &openssl_time(-60), &openssl_time(DAY));
    let issuing_crl = fixture
        .pki
        .crl(&issuing, &openssl_time(-60), &openssl_time(DAY));
    // Grid directories list the issuing CA as an anchor too; here it is only sent by the
    // client, so the path really goes through it.
    let ca_dir = fixture.pki.ca_directory(
        "two-tier",
        &[&fixture.ca],
        &[(&fixture.ca, &root_crl), (&issuing, &issuing_crl)],
    );
    let store = TrustStore::load(&ca_dir).unwrap();
    let proxy = fixture.pki.proxy(&user, &ProxySpec::default());
    let mut chain = proxy.chain.clone();
    chain.push(rustls::pki_types::pem::PemObject::from_pem_file(&issuing.cert_path).unwrap());
    let identity = verify_chain(
        &chain,
        &store,
        &ValidationOptions::default(),
        UnixTime::now(),
    )
    .unwrap();
    assert_eq!(
        identity.issuer_dn.openssl,
        "/DC=org/DC=mucura-test/CN=Mucura Issuing CA"
    );
    assert!(identity.is_proxy);
}

#[test]
fn special_characters_in_names_follow_openssl() {
    let fixture = Fixture::new();
    let user = fixture.pki.user(
        &fixture.ca,
        "special",
        // `+` separates the attributes of one RDN in openssl's -subj unless escaped.
        "/DC=org/DC=mucura-test/O=Doe, Jane\\+Co/CN=#1 Jane+UID=jdoe",
        &openssl_time(-DAY),
        &openssl_time(DAY),
    );
    let identity = fixture.verify(&user.chain).unwrap();
    let openssl_rfc2253 = fixture.pki.openssl(
        fixture.pki.path(),
        &[
            "x509",
            "-noout",
            "-subject",
            "-nameopt",
            "RFC2253",
            "-in",
            &user.cert_path.display().to_string(),
        ],
    );
    assert_eq!(
        format!("subject={}", identity.subject_dn.rfc2253),
        openssl_rfc2253.trim()
    );
    assert_eq!(
        identity.subject_dn.openssl,
        "/DC=org/DC=mucura-test/O=Doe, Jane+Co/CN=#1 Jane+UID=jdoe"
    );
}
