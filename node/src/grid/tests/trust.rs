//! The user certificate and its CA: validity, trust, revocation, algorithms, and the
//! CA directory.

use rustls::pki_types::UnixTime;

use super::pki::{openssl_time, ProxySpec, UserSpec};
use super::{assert_end_entity_refused, refused, Fixture, CA_SUBJECT, DAY, USER_SUBJECT};
use crate::grid::ca_dir::{CaDirError, CaDirectory, TrustStore};
use crate::grid::error::ChainError;
use crate::grid::proxy::{verify_chain, CrlPolicy, ValidationOptions};

#[test]
fn expired_and_not_yet_valid_user_certificates_are_refused() {
    let fixture = Fixture::new();
    let expired = fixture.pki.user(
        &fixture.ca,
        "expired",
        "/DC=org/DC=mucura-test/CN=Old User",
        &openssl_time(-10 * DAY),
        &openssl_time(-DAY),
    );
    assert_end_entity_refused(refused(fixture.verify(&expired.chain)), "expired");
    let future = fixture.pki.user(
        &fixture.ca,
        "future",
        "/DC=org/DC=mucura-test/CN=Future User",
        &openssl_time(DAY),
        &openssl_time(10 * DAY),
    );
    assert_end_entity_refused(refused(fixture.verify(&future.chain)), "not valid yet");
}

#[test]
fn user_of_an_untrusted_ca_is_refused() {
    let fixture = Fixture::new();
    let other = fixture.pki.ca("other", "/DC=org/DC=elsewhere/CN=Other CA");
    let stranger = fixture.pki.user(
        &other,
        "stranger",
        USER_SUBJECT,
        &openssl_time(-DAY),
        &openssl_time(DAY),
    );
    assert_end_entity_refused(refused(fixture.verify(&stranger.chain)), "trusted CA");
}

#[test]
fn user_of_a_look_alike_ca_is_refused() {
    let fixture = Fixture::new();
    // Same name as the trusted CA, different key: only the signature tells them apart.
    let impostor = fixture.pki.ca("impostor", CA_SUBJECT);
    let forged = fixture.pki.user(
        &impostor,
        "forged",
        USER_SUBJECT,
        &openssl_time(-DAY),
        &openssl_time(DAY),
    );
    assert_end_entity_refused(refused(fixture.verify(&forged.chain)), "does not verify");
    // Sending the impostor CA along does not help.
    let mut with_impostor = forged.chain.clone();
    with_impostor
        .push(rustls::pki_types::pem::PemObject::from_pem_file(&impostor.cert_path).unwrap());
    assert_end_entity_refused(refused(fixture.verify(&with_impostor)), "does not verify");
}

#[test]
fn revoked_user_is_refused_after_a_directory_reload() {
    let fixture = Fixture::new();
    let directory = CaDirectory::open(&fixture.ca_dir).unwrap();
    let proxy = fixture.pki.proxy(&fixture.user, &ProxySpec::default());
    let options = ValidationOptions::default();
    verify_chain(
        &proxy.chain,
        &directory.current(),
        &options,
        UnixTime::now(),
    )
    .unwrap();

    fixture.pki.revoke(&fixture.ca, &fixture.user);
    let crl = fixture
        .pki
        .crl(&fixture.ca, &openssl_time(-60), &openssl_time(30 * DAY));
    let hash_crl = std::fs::read_dir(&fixture.ca_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "r0"))
        .unwrap();
    std::fs::copy(&crl, &hash_crl).unwrap();
    directory.reload().unwrap();
    let error = refused(verify_chain(
        &proxy.chain,
        &directory.current(),
        &options,
        UnixTime::now(),
    ));
    assert_end_entity_refused(error, "revoked");
}

#[test]
fn reload_keeps_the_previous_contents_when_a_crl_is_broken() {
    let fixture = Fixture::new();
    let directory = CaDirectory::open(&fixture.ca_dir).unwrap();
    let hash_crl = std::fs::read_dir(&fixture.ca_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "r0"))
        .unwrap();
    std::fs::write(
        &hash_crl,
        "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
    )
    .unwrap();
    let error = directory.reload().unwrap_err();
    assert!(
        matches!(error, CaDirError::Crl { ref path, .. } if *path == hash_crl),
        "{error}"
    );
    let options = ValidationOptions::default();
    verify_chain(
        &fixture.user.chain,
        &directory.current(),
        &options,
        UnixTime::now(),
    )
    .unwrap();
}

#[test]
fn expired_crl_is_refused() {
    let fixture = Fixture::new();
    let stale = fixture
        .pki
        .crl(&fixture.ca, &openssl_time(-10 * DAY), &openssl_time(-DAY));
    let ca_dir = fixture
        .pki
        .ca_directory("stale", &[&fixture.ca], &[(&fixture.ca, &stale)]);
    let store = TrustStore::load(&ca_dir).unwrap();
    let error = refused(verify_chain(
        &fixture.user.chain,
        &store,
        &ValidationOptions::default(),
        UnixTime::now(),
    ));
    assert_end_entity_refused(error, "CRL has expired");
}

#[test]
fn missing_crl_is_refused_unless_configured_otherwise() {
    let fixture = Fixture::new();
    let other = fixture.pki.ca("other", "/DC=org/DC=elsewhere/CN=Other CA");
    let other_crl = fixture
        .pki
        .crl(&other, &openssl_time(-60), &openssl_time(DAY));
    // Our CA has no CRL; another CA has one.
    let ca_dir =
        fixture
            .pki
            .ca_directory("partial", &[&fixture.ca, &other], &[(&other, &other_crl)]);
    let store = TrustStore::load(&ca_dir).unwrap();
    let strict = ValidationOptions::default();
    let error = refused(verify_chain(
        &fixture.user.chain,
        &store,
        &strict,
        UnixTime::now(),
    ));
    assert_end_entity_refused(error, "no CRL");
    let lenient = ValidationOptions {
        crl_policy: CrlPolicy::IfPresent,
        ..ValidationOptions::default()
    };
    verify_chain(&fixture.user.chain, &store, &lenient, UnixTime::now()).unwrap();
    // No CRL at all in the directory.
    let bare = fixture.pki.ca_directory("bare", &[&fixture.ca], &[]);
    let store = TrustStore::load(&bare).unwrap();
    let error = refused(verify_chain(
        &fixture.user.chain,
        &store,
        &strict,
        UnixTime::now(),
    ));
    assert!(matches!(error, ChainError::NoCrls { .. }), "{error}");
}

#[test]
fn sha1_signatures_and_short_rsa_keys_are_refused() {
    let fixture = Fixture::new();
    let sha1 = fixture.pki.proxy(
        &fixture.user,
        &ProxySpec {
            digest: "sha1".to_string(),
            ..ProxySpec::default()
        },
    );
    let error = refused(fixture.verify(&sha1.chain));
    assert!(
        matches!(&error, ChainError::UnsupportedSignatureAlgorithm { index: 0, algorithm } if algorithm == "1.2.840.113549.1.1.5"),
        "{error}"
    );
    let short = fixture.pki.proxy(
        &fixture.user,
        &ProxySpec {
            key_bits: 1024,
            ..ProxySpec::default()
        },
    );
    let error = refused(fixture.verify(&short.chain));
    assert!(
        matches!(
            error,
            ChainError::WeakRsaKey {
                index: 0,
                bits: 1024,
                ..
            }
        ),
        "{error}"
    );
    let sha1_user = fixture.pki.user_with(
        &fixture.ca,
        &UserSpec {
            digest: "sha1".to_string(),
            ..UserSpec::default()
        },
    );
    assert_end_entity_refused(refused(fixture.verify(&sha1_user.chain)), "algorithm");
    let short_user = fixture.pki.user_with(
        &fixture.ca,
        &UserSpec {
            key_bits: 1024,
            ..UserSpec::default()
        },
    );
    let error = refused(fixture.verify(&short_user.chain));
    assert!(
        matches!(error, ChainError::WeakRsaKey { index: 0, .. }),
        "{error}"
    );
}

#[test]
fn empty_chain_is_refused() {
    let fixture = Fixture::new();
    let error = refused(fixture.verify(&[]));
    assert!(matches!(error, ChainError::NoCertificate), "{error}");
}
