//! The grid listener's TLS side: a rustls client-certificate verifier for user and proxy
//! certificates, the listener's `ServerConfig`, and the identity of an accepted connection.
//!
//! rustls' own verifiers cannot be used: webpki refuses proxy certificates as end entities,
//! and its handshake-signature helpers parse the leaf as a webpki end entity, which fails on a
//! proxy too. So the chain is validated by [`verify_chain`] and the CertificateVerify signature
//! is checked against the leaf's raw public key.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, PeerMisbehaved,
    ServerConfig, SignatureScheme,
};
use thiserror::Error;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use super::ca_dir::CaDirectory;
use super::dn::DistinguishedNames;
use super::error::ChainError;
use super::proxy::{verify_chain, GridIdentity, ValidationOptions};

/// Why the grid listener's TLS configuration could not be built.
#[derive(Debug, Error)]
pub enum GridTlsError {
    /// rustls refused the protocol versions or the server certificate and key.
    #[error("grid TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Verifies grid client chains (user certificates and proxies) against a CA directory.
#[derive(Debug)]
pub struct GridClientVerifier {
    ca_directory: Arc<CaDirectory>,
    options: ValidationOptions,
    /// The CA names offered to clients, as of construction (see [`GridClientVerifier::new`]).
    root_hints: Vec<DistinguishedName>,
}

impl GridClientVerifier {
    /// A verifier over `ca_directory`. Verification always uses the directory's current
    /// contents (reload it as CRLs are refreshed); the CA names hinted to clients are taken
    /// now, so a new CA shows up in hints once the `ServerConfig` is rebuilt (clients that
    /// ignore hints, as grid clients do, are not affected).
    pub fn new(ca_directory: Arc<CaDirectory>, options: ValidationOptions) -> Self {
        let root_hints = ca_directory.current().root_hint_subjects();
        Self {
            ca_directory,
            options,
            root_hints,
        }
    }

    /// The CA directory in use (to reload it).
    pub fn ca_directory(&self) -> &Arc<CaDirectory> {
        &self.ca_directory
    }

    /// Validates a chain (leaf first) now and returns its identity.
    pub fn verify(&self, chain: &[CertificateDer<'_>]) -> Result<GridIdentity, ChainError> {
        let store = self.ca_directory.current();
        verify_chain(chain, &store, &self.options, UnixTime::now())
    }

    /// The identity of a connection this verifier accepted: its chain is validated again,
    /// which is cheap, stateless, and also notices a revocation since the handshake. Pass
    /// `ServerConnection::peer_certificates()`.
    pub fn identity(
        &self,
        peer_certificates: Option<&[CertificateDer<'_>]>,
    ) -> Result<GridIdentity, ChainError> {
        self.verify(peer_certificates.unwrap_or_default())
    }

    /// TLS 1.2 has no fixed scheme-to-algorithm mapping, so every candidate for the scheme is
    /// tried against the leaf's key, as rustls does for ordinary certificates.
    fn verify_tls12_with_raw_key(
        &self,
        message: &[u8],
        spki: &SubjectPublicKeyInfoDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let candidates = self
            .options
            .algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algorithms)| *algorithms)
            .ok_or(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
        let key = webpki::RawPublicKeyEntity::try_from(spki)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let verified = candidates.iter().any(|algorithm| {
            key.verify_signature(*algorithm, message, dss.signature())
                .is_ok()
        });
        if verified {
            Ok(HandshakeSignatureValid::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::BadSignature,
            ))
        }
    }
}

/// The leaf's SubjectPublicKeyInfo, whatever kind of certificate it is.
fn leaf_public_key(
    cert: &CertificateDer<'_>,
) -> Result<SubjectPublicKeyInfoDer<'static>, rustls::Error> {
    let (_, parsed) = X509Certificate::from_der(cert.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    Ok(SubjectPublicKeyInfoDer::from(
        parsed.public_key().raw.to_vec(),
    ))
}

/// The leaf's subject for log lines, or a placeholder if it does not parse.
fn leaf_subject(cert: &CertificateDer<'_>) -> String {
    X509Certificate::from_der(cert.as_ref()).map_or_else(
        |_| "<unparsable certificate>".to_string(),
        |(_, parsed)| DistinguishedNames::from_name(parsed.subject()).openssl,
    )
}

/// rustls' nearest error for the alert, keeping the precise reason inside.
fn rustls_error(error: ChainError) -> rustls::Error {
    let certificate_error = match &error {
        ChainError::Malformed { .. } => CertificateError::BadEncoding,
        ChainError::BadSignature { .. } => CertificateError::BadSignature,
        _ => CertificateError::Other(OtherError(Arc::new(error))),
    };
    rustls::Error::InvalidCertificate(certificate_error)
}

impl ClientCertVerifier for GridClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.root_hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let mut chain = Vec::with_capacity(1 + intermediates.len());
        chain.push(CertificateDer::from(end_entity.as_ref()));
        chain.extend(
            intermediates
                .iter()
                .map(|cert| CertificateDer::from(cert.as_ref())),
        );
        let store = self.ca_directory.current();
        match verify_chain(&chain, &store, &self.options, now) {
            Ok(identity) => {
                tracing::debug!(
                    subject = %identity.subject_dn.openssl,
                    proxy = identity.is_proxy,
                    limited = identity.limited,
                    "grid client certificate accepted"
                );
                Ok(ClientCertVerified::assertion())
            }
            Err(error) => {
                tracing::warn!(
                    leaf = %leaf_subject(end_entity),
                    reason = %error,
                    "grid client certificate refused"
                );
                Err(rustls_error(error))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let spki = leaf_public_key(cert)?;
        self.verify_tls12_with_raw_key(message, &spki, dss)
            .inspect_err(|error| log_possession_failure(cert, error))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let spki = leaf_public_key(cert)?;
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &spki,
            dss,
            &self.options.algorithms,
        )
        .inspect_err(|error| log_possession_failure(cert, error))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.options.algorithms.supported_schemes()
    }
}

fn log_possession_failure(cert: &CertificateDer<'_>, error: &rustls::Error) {
    tracing::warn!(
        leaf = %leaf_subject(cert),
        reason = %error,
        "grid client did not prove possession of its certificate's key"
    );
}

/// The grid listener's TLS configuration: TLS 1.3 and 1.2, a client certificate required
/// and verified by `verifier`, and the node's own certificate chain and key.
pub fn server_config(
    verifier: Arc<GridClientVerifier>,
    certificate_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, GridTlsError> {
    // The project's one provider, never the process default (see DEPENDENCIES.md).
    let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certificate_chain, key)?;
    Ok(config)
}
