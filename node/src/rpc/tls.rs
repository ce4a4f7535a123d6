//! TLS between nodes: encryption and a channel binding, not authentication.
//!
//! Each process generates a throw-away self-signed certificate at start, so there is no PKI to
//! run. The client accepts any server certificate ([`AnyServerCertificate`]) but still checks
//! that the server signed the handshake with that certificate's key, using the provider's
//! algorithms; the server asks for no client certificate. Who the peer is, is settled
//! afterwards by [`super::auth`], whose proofs are bound to the session through
//! [`session_binding`]. Only TLS 1.3 is offered: both ends are Mucura nodes.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};

use super::RpcError;

/// Name in every node's certificate and in every client's SNI; never checked against a CA.
pub const SERVER_NAME: &str = "mucura-node";

/// RFC 8446 exporter label for the value the secret proofs are bound to.
const EXPORTER_LABEL: &[u8] = b"EXPORTER-mucura-rpc-cluster-auth";

/// Length of the channel binding, one SHA-256 block's worth of key material.
pub const BINDING_LEN: usize = 32;

/// The one crypto provider of the RPC layer (never the process default, see DEPENDENCIES.md).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn setup_error(what: &str, err: impl std::fmt::Display) -> RpcError {
    RpcError::TlsSetup(format!("{what}: {err}"))
}

/// A server configuration with a freshly generated self-signed certificate.
pub fn server_config() -> Result<Arc<ServerConfig>, RpcError> {
    let identity = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_string()])
        .map_err(|err| setup_error("generating the node certificate", err))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        identity.signing_key.serialize_der(),
    ));
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|err| setup_error("server protocol versions", err))?
        .with_no_client_auth()
        .with_single_cert(vec![identity.cert.der().clone()], key)
        .map_err(|err| setup_error("installing the node certificate", err))?;
    Ok(Arc::new(config))
}

/// A client configuration that accepts any node certificate (see the module doc).
pub fn client_config() -> Result<Arc<ClientConfig>, RpcError> {
    let provider = provider();
    let verifier = AnyServerCertificate {
        algorithms: provider.signature_verification_algorithms,
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|err| setup_error("client protocol versions", err))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The server name every client presents.
pub fn server_name() -> ServerName<'static> {
    ServerName::try_from(SERVER_NAME).expect("SERVER_NAME is a valid DNS name")
}

/// Key material both ends of one TLS session derive identically, and a relaying man in the
/// middle (who runs two sessions) cannot make equal on both sides.
pub fn session_binding<D>(
    connection: &rustls::ConnectionCommon<D>,
) -> Result<[u8; BINDING_LEN], rustls::Error> {
    connection.export_keying_material([0u8; BINDING_LEN], EXPORTER_LABEL, None)
}

/// Accepts any certificate while still verifying handshake signatures, because the cluster
/// secret, not a CA, authenticates nodes.
#[derive(Debug)]
struct AnyServerCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
