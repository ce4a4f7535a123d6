//! The RFC 3820 rules each proxy must follow (issue #6, "Must be rejected").

use super::pki::{openssl_time, ProxyKind, ProxySpec, UserSpec};
use super::{refused, Fixture, DAY, USER_SUBJECT};
use crate::grid::error::ChainError;
use crate::grid::proxy_cert::ProxyType;

#[test]
fn expired_and_not_yet_valid_proxies_are_refused() {
    let fixture = Fixture::new();
    let proxy = fixture.pki.proxy(&fixture.user, &ProxySpec::default());
    let error = refused(fixture.verify_at(&proxy.chain, DAY));
    assert!(
        matches!(
            error,
            ChainError::ProxyNotValidNow {
                index: 0,
                state: "expired"
            }
        ),
        "{error}"
    );
    let error = refused(fixture.verify_at(&proxy.chain, -1800));
    assert!(
        matches!(
            error,
            ChainError::ProxyNotValidNow {
                index: 0,
                state: "not yet valid"
            }
        ),
        "{error}"
    );
}

#[test]
fn proxy_signed_by_the_wrong_key_is_refused() {
    let fixture = Fixture::new();
    let mallory = fixture.pki.user(
        &fixture.ca,
        "mallory",
        "/DC=org/DC=mucura-test/CN=Mallory",
        &openssl_time(-DAY),
        &openssl_time(DAY),
    );
    let forged = fixture.pki.proxy(
        &fixture.user,
        &ProxySpec {
            signing_key: Some(mallory.key_path.clone()),
            ..ProxySpec::default()
        },
    );
    let error = refused(fixture.verify(&forged.chain));
    assert!(
        matches!(error, ChainError::BadSignature { index: 0 }),
        "{error}"
    );
}

#[test]
fn proxy_subject_must_be_its_issuers_plus_one_cn() {
    let fixture = Fixture::new();
    for subject in [
        format!("{USER_SUBJECT}/CN=1/CN=2"),
        format!("{USER_SUBJECT}/OU=proxy"),
        "/DC=org/DC=mucura-test/OU=People/OU=Physics/CN=John Doe/CN=1".to_string(),
    ] {
        let proxy = fixture.pki.proxy(
            &fixture.user,
            &ProxySpec {
                subject: Some(subject.clone()),
                ..ProxySpec::default()
            },
        );
        let error = refused(fixture.verify(&proxy.chain));
        assert!(
            matches!(error, ChainError::BadProxySubject { index: 0, .. }),
            "{subject}: {error}"
        );
    }
}

#[test]
fn proxy_outliving_its_issuer_is_refused() {
    let fixture = Fixture::new();
    let short_lived = fixture.pki.user(
        &fixture.ca,
        "short",
        "/DC=org/DC=mucura-test/CN=Short Lived",
        &openssl_time(-DAY),
        &openssl_time(2 * DAY),
    );
    let proxy = fixture.pki.proxy(
        &short_lived,
        &ProxySpec {
            lifetime: 30 * DAY,
            outlive_issuer: true,
            ..ProxySpec::default()
        },
    );
    let error = refused(fixture.verify(&proxy.chain));
    assert!(
        matches!(error, ChainError::OutlivesIssuer { index: 0 }),
        "{error}"
    );
}

#[test]
fn path_length_constraint_is_honoured() {
    let fixture = Fixture::new();
    let one_more = fixture.pki.proxy(
        &fixture.user,
        &ProxySpec {
            path_len: Some(1),
            ..ProxySpec::default()
        },
    );
    let second = fixture.pki.proxy(&one_more, &ProxySpec::default());
    fixture.verify(&second.chain).unwrap();
    let third = fixture.pki.proxy(&second, &ProxySpec::default());
    let error = refused(fixture.verify(&third.chain));
    assert!(
        matches!(error, ChainError::PathLengthExceeded { index: 2, limit: 1 }),
        "{error}"
    );

    let last = fixture.pki.proxy(
        &fixture.user,
        &ProxySpec {
            path_len: Some(0),
            ..ProxySpec::default()
        },
    );
    fixture.verify(&last.chain).unwrap();
    let beyond = fixture.pki.proxy(&last, &ProxySpec::default());
    let error = refused(fixture.verify(&beyond.chain));
    assert!(
        matches!(error, ChainError::PathLengthExceeded { index: 1, limit: 0 }),
        "{error}"
    );
}

#[test]
fn independent_and_unknown_policies_are_refused() {
    let fixture = Fixture::new();
    for (language, dotted) in [
        ("id-ppl-independent", "1.3.6.1.5.5.7.21.2"),
        ("1.2.3.4.5", "1.2.3.4.5"),
    ] {
        let proxy = fixture.pki.proxy(
            &fixture.user,
            &ProxySpec {
                language: language.to_string(),
                ..ProxySpec::default()
            },
        );
        let error = refused(fixture.verify(&proxy.chain));
        assert!(
            matches!(&error, ChainError::UnsupportedPolicy { index: 0, language } if language == dotted),
            "{error}"
        );
    }
}

#[test]
fn mixed_proxy_types_are_refused() {
    let fixture = Fixture::new();
    let rfc = fixture.pki.proxy(&fixture.user, &ProxySpec::default());
    let gt2 = fixture.pki.proxy(
        &rfc,
        &ProxySpec {
            kind: ProxyKind::Gt2,
            ..ProxySpec::default()
        },
    );
    let error = refused(fixture.verify(&gt2.chain));
    assert!(
        matches!(
            error,
            ChainError::MixedProxyTypes {
                index: 0,
                expected: ProxyType::Rfc3820,
                found: ProxyType::Gt2
            }
        ),
        "{error}"
    );
    let legacy = fixture.pki.proxy(
        &rfc,
        &ProxySpec {
            kind: ProxyKind::Legacy,
            ..ProxySpec::default()
        },
    );
    let error = refused(fixture.verify(&legacy.chain));
    assert!(
        matches!(error, ChainError::MixedProxyTypes { .. }),
        "{error}"
    );
}

#[test]
fn chains_longer_than_ten_are_refused() {
    let fixture = Fixture::new();
    let mut credential = fixture.user.clone();
    for _ in 0..9 {
        credential = fixture.pki.proxy(&credential, &ProxySpec::default());
    }
    assert_eq!(credential.chain.len(), 10);
    fixture.verify(&credential.chain).unwrap();
    let eleventh = fixture.pki.proxy(&credential, &ProxySpec::default());
    let error = refused(fixture.verify(&eleventh.chain));
    assert!(
        matches!(
            error,
            ChainError::TooLong {
                length: 11,
                max: 10
            }
        ),
        "{error}"
    );
}

#[test]
fn proxy_without_its_user_certificate_is_refused() {
    let fixture = Fixture::new();
    let proxy = fixture.pki.proxy(&fixture.user, &ProxySpec::default());
    let error = refused(fixture.verify(&proxy.chain[..1]));
    assert!(matches!(error, ChainError::NoEndEntity), "{error}");
    let gt2 = fixture.pki.proxy(
        &fixture.user,
        &ProxySpec {
            kind: ProxyKind::Gt2,
            ..ProxySpec::default()
        },
    );
    let error = refused(fixture.verify(&gt2.chain[..1]));
    assert!(matches!(error, ChainError::NoEndEntity), "{error}");
    // A proxy sent after the user certificate is not a CA certificate either.
    let reversed = vec![proxy.chain[1].clone(), proxy.chain[0].clone()];
    let error = refused(fixture.verify(&reversed));
    assert!(
        matches!(error, ChainError::ProxyAfterEndEntity { index: 1 }),
        "{error}"
    );
}

/// Tells whether a refusal is the expected one.
type RefusalCheck = fn(&ChainError) -> bool;

/// A proxy with `extension` added.
fn proxy_with_extension(fixture: &Fixture, extension: &str) -> super::pki::Credential {
    fixture.pki.proxy(
        &fixture.user,
        &ProxySpec {
            extra_extensions: vec![extension.to_string()],
            ..ProxySpec::default()
        },
    )
}

#[test]
fn proxies_claiming_ca_powers_or_names_are_refused() {
    let fixture = Fixture::new();
    let cases: [(&str, RefusalCheck); 3] = [
        ("basicConstraints = critical, CA:TRUE", |error| {
            matches!(error, ChainError::ProxyIsCa { index: 0 })
        }),
        ("subjectAltName = DNS:example.org", |error| {
            matches!(error, ChainError::AlternativeName { index: 0 })
        }),
        ("1.2.3.4 = critical, ASN1:NULL", |error| {
            matches!(error, ChainError::UnknownCriticalExtension { index: 0, .. })
        }),
    ];
    for (extension, expected) in cases {
        let proxy = proxy_with_extension(&fixture, extension);
        let error = refused(fixture.verify(&proxy.chain));
        assert!(expected(&error), "{extension}: {error}");
    }
    // An ordinary extension does not get a proxy refused.
    let proxy = proxy_with_extension(&fixture, "extendedKeyUsage = clientAuth");
    fixture.verify(&proxy.chain).unwrap();
}

#[test]
fn proxy_with_key_cert_sign_is_refused() {
    let fixture = Fixture::new();
    // Replaces the default keyUsage line (openssl keeps the last value of a repeated name).
    let proxy = proxy_with_extension(
        &fixture,
        "keyUsage = critical, digitalSignature, keyCertSign",
    );
    let error = refused(fixture.verify(&proxy.chain));
    assert!(
        matches!(error, ChainError::ProxyKeyCertSign { index: 0 }),
        "{error}"
    );
}

#[test]
fn issuer_without_digital_signature_cannot_sign_proxies() {
    let fixture = Fixture::new();
    let encipher_only = fixture.pki.user_with(
        &fixture.ca,
        &UserSpec {
            extensions: "user_cert_encipher_only".to_string(),
            ..UserSpec::default()
        },
    );
    fixture.verify(&encipher_only.chain).unwrap();
    let proxy = fixture.pki.proxy(&encipher_only, &ProxySpec::default());
    let error = refused(fixture.verify(&proxy.chain));
    assert!(
        matches!(error, ChainError::IssuerCannotSign { index: 1 }),
        "{error}"
    );
}

#[test]
fn proxy_starting_well_before_its_issuer_is_refused() {
    let fixture = Fixture::new();
    let first = fixture.pki.proxy(&fixture.user, &ProxySpec::default());
    // The usual five-minute back-dating is tolerated...
    let backdated = fixture.pki.proxy(&first, &ProxySpec::default());
    fixture.verify(&backdated.chain).unwrap();
    // ...an hour is not.
    let early = fixture.pki.proxy(
        &first,
        &ProxySpec {
            start_offset: -3600,
            ..ProxySpec::default()
        },
    );
    let error = refused(fixture.verify(&early.chain));
    assert!(
        matches!(error, ChainError::PredatesIssuer { index: 0 }),
        "{error}"
    );
}
