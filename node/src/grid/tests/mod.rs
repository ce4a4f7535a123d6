//! Tests of the grid layer on PKIs generated at test time with openssl (see [`pki`]).

mod accepted;
mod pki;
mod proxies;
mod tls;
mod trust;

use std::path::PathBuf;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, UnixTime};

use super::ca_dir::TrustStore;
use super::error::ChainError;
use super::proxy::{verify_chain, GridIdentity, ValidationOptions};
use pki::{openssl_time, Ca, Credential, Pki};

/// The CA's name, grid style (repeated DC).
const CA_SUBJECT: &str = "/DC=org/DC=mucura-test/CN=Mucura Test CA";
/// The user's name, grid style (repeated DC and OU).
const USER_SUBJECT: &str = "/DC=org/DC=mucura-test/OU=People/OU=Physics/CN=Jane Doe";

const DAY: i64 = 24 * 3600;

/// A CA with a current CRL, a valid user, and the CA directory holding both.
struct Fixture {
    pki: Pki,
    ca: Ca,
    user: Credential,
    ca_dir: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let pki = Pki::new();
        let ca = pki.ca("ca", CA_SUBJECT);
        let user = pki.user(
            &ca,
            "user",
            USER_SUBJECT,
            &openssl_time(-DAY),
            &openssl_time(365 * DAY),
        );
        let crl = pki.crl(&ca, &openssl_time(-3600), &openssl_time(30 * DAY));
        let ca_dir = pki.ca_directory("certificates", &[&ca], &[(&ca, &crl)]);
        Self {
            pki,
            ca,
            user,
            ca_dir,
        }
    }

    fn store(&self) -> TrustStore {
        TrustStore::load(&self.ca_dir).expect("CA directory loads")
    }

    fn verify(&self, chain: &[CertificateDer<'_>]) -> Result<GridIdentity, ChainError> {
        self.verify_at(chain, 0)
    }

    /// Verification as if `offset_seconds` from now.
    fn verify_at(
        &self,
        chain: &[CertificateDer<'_>],
        offset_seconds: i64,
    ) -> Result<GridIdentity, ChainError> {
        let now = UnixTime::now().as_secs();
        let moment = now
            .checked_add_signed(offset_seconds)
            .expect("time in range");
        verify_chain(
            chain,
            &self.store(),
            &ValidationOptions::default(),
            UnixTime::since_unix_epoch(Duration::from_secs(moment)),
        )
    }
}

/// Unwraps a refusal, failing the test (with the identity) if the chain was accepted.
fn refused(result: Result<GridIdentity, ChainError>) -> ChainError {
    match result {
        Ok(identity) => panic!("chain unexpectedly accepted: {identity:?}"),
        Err(error) => error,
    }
}

/// Asserts that webpki refused the user certificate for a reason mentioning `expected_words`.
fn assert_end_entity_refused(error: ChainError, expected_words: &str) {
    match &error {
        ChainError::EndEntity { reason, .. } => assert!(
            reason.contains(expected_words),
            "expected a reason containing {expected_words:?}, got {error}"
        ),
        other => panic!("expected a user-certificate refusal, got {other}"),
    }
}
