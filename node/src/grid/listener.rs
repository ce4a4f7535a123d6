//! The grid listener: mutual TLS for X.509 certificates and proxies (`--grid-listen`).
//!
//! Every connection must present a client certificate chain that [`GridClientVerifier`]
//! accepts (a personal certificate from a trusted grid CA, or proxies of one). Requests then
//! go to:
//! - `POST /mucura/v1/register`: self-service registration with a personal certificate
//!   ([`crate::identity::registration`]), answering JSON with the user's access key;
//! - everything else: the node's S3 service, with the verified certificate attached as a
//!   [`ClientCertificate`] extension, which `AssumeRoleWithCertificate` ([`s3api::sts`]) turns
//!   into temporary credentials. Signed S3 requests work here too.
//!
//! Every answer carries `x-mucura-s3-endpoint`, the S3 URL clients should use with what they
//! got (the grid port itself needs a certificate, which S3 tools do not present).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use s3api::backend::S3Backend;
use s3api::observe::PeerAddr;
use s3api::service::{ResponseBody, S3Service};
use s3api::sts::ClientCertificate;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::ca_dir::CaDirectory;
use super::proxy::{CrlPolicy, GridIdentity, ValidationOptions};
use super::verifier::{server_config, GridClientVerifier};
use crate::credentials::KeyRing;
use crate::identity::records::unix_millis;
use crate::identity::registration::RegistrationCertificate;
use crate::identity::{CertificateSessionPolicy, IdentityAdmin};

/// The path of self-service registration.
pub const REGISTER_PATH: &str = "/mucura/v1/register";
/// The response header naming the S3 endpoint.
pub const S3_ENDPOINT_HEADER: &str = "x-mucura-s3-endpoint";
/// A TLS handshake that takes longer is abandoned (a stalled client must not hold a task).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long in-flight requests may run after shutdown was asked.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Settings of the grid listener.
#[derive(Debug, Clone)]
pub struct GridConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The grid CA directory (`HASH.0` certificates, `HASH.r0` CRLs).
    pub ca_dir: PathBuf,
    /// PEM certificate chain of this host.
    pub certificate: PathBuf,
    /// PEM private key of this host.
    pub key: PathBuf,
    /// Whether users of a CA without a CRL in the directory are accepted.
    pub crl_optional: bool,
    /// Limits of certificate sessions.
    pub sessions: CertificateSessionPolicy,
    /// The S3 URL announced to clients (default: `http://` and the S3 listen address).
    pub public_s3_url: Option<String>,
    /// How often the CA directory is re-read (fetch-crl refreshes CRLs every few hours; a
    /// revocation takes effect within this time).
    pub ca_reload_interval: Duration,
}

/// A bound grid listener, ready to serve.
pub struct GridListener {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    verifier: Arc<GridClientVerifier>,
    s3_endpoint: Arc<str>,
    ca_reload_interval: Duration,
}

impl GridListener {
    /// Loads the CA directory and the host certificate and binds the address; errors name
    /// the file or address at fault.
    pub async fn bind(config: &GridConfig, s3_endpoint: String) -> Result<GridListener> {
        let directory = CaDirectory::open(&config.ca_dir).with_context(|| {
            format!("loading the grid CA directory {}", config.ca_dir.display())
        })?;
        let options = ValidationOptions {
            crl_policy: if config.crl_optional {
                CrlPolicy::IfPresent
            } else {
                CrlPolicy::Require
            },
            ..ValidationOptions::default()
        };
        tracing::info!(
            ca_dir = %directory.path().display(),
            "grid listener trusts the CAs of this directory"
        );
        let verifier = Arc::new(GridClientVerifier::new(Arc::new(directory), options));
        let chain = CertificateDer::pem_file_iter(&config.certificate)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .with_context(|| {
                format!(
                    "reading the host certificate {}",
                    config.certificate.display()
                )
            })?;
        if chain.is_empty() {
            anyhow::bail!("{} holds no PEM certificate", config.certificate.display());
        }
        let key = PrivateKeyDer::from_pem_file(&config.key)
            .with_context(|| format!("reading the host key {}", config.key.display()))?;
        let tls = server_config(verifier.clone(), chain, key)
            .context("building the grid listener's TLS configuration")?;
        let listener = crate::server::bind(config.listen).await?;
        Ok(GridListener {
            listener,
            acceptor: TlsAcceptor::from(Arc::new(tls)),
            verifier,
            s3_endpoint: Arc::from(s3_endpoint),
            ca_reload_interval: config.ca_reload_interval,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` turns true: registration here, everything else to `s3`.
    pub async fn serve<B: S3Backend>(
        self,
        s3: S3Service<B, KeyRing>,
        registrar: Arc<IdentityAdmin>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<()> {
        let graceful = GracefulShutdown::new();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(60));
        let builder = Arc::new(builder);
        let reload = tokio::spawn(reload_periodically(
            self.verifier.clone(),
            self.ca_reload_interval,
            shutdown.clone(),
        ));
        let (conn_tx, mut conn_rx) = tokio::sync::mpsc::channel(64);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(pair) => pair,
                        Err(err) => {
                            tracing::warn!("grid accept failed: {err}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    // The handshake runs in its own task so a slow client delays nobody.
                    let acceptor = self.acceptor.clone();
                    let conn_tx = conn_tx.clone();
                    tokio::spawn(async move {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                            Ok(Ok(tls)) => {
                                let _ = conn_tx.send((tls, peer)).await;
                            }
                            Ok(Err(err)) => tracing::info!(%peer, "grid TLS handshake failed: {err}"),
                            Err(_) => tracing::info!(%peer, "grid TLS handshake timed out"),
                        }
                    });
                }
                Some((tls, peer)) = conn_rx.recv() => {
                    let (_, connection) = tls.get_ref();
                    let identity = match self.verifier.identity(connection.peer_certificates()) {
                        Ok(identity) => identity,
                        Err(err) => {
                            tracing::info!(%peer, "grid client refused: {err}");
                            continue;
                        }
                    };
                    tracing::debug!(%peer, dn = %identity.subject_dn.openssl, "grid client");
                    let context = Arc::new(ConnectionContext {
                        identity,
                        peer,
                        s3_endpoint: self.s3_endpoint.clone(),
                    });
                    let s3 = s3.clone();
                    let registrar = registrar.clone();
                    let service = service_fn(move |request: Request<Incoming>| {
                        let context = context.clone();
                        let s3 = s3.clone();
                        let registrar = registrar.clone();
                        async move {
                            Ok::<_, Infallible>(answer(request, &context, &s3, &registrar).await)
                        }
                    });
                    let connection = builder.serve_connection(TokioIo::new(tls), service);
                    let connection = graceful.watch(connection.into_owned());
                    tokio::spawn(async move {
                        if let Err(err) = connection.await {
                            tracing::debug!("grid connection ended: {err}");
                        }
                    });
                }
                _ = shutdown.changed() => break,
            }
        }
        reload.abort();
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(SHUTDOWN_GRACE) => {
                tracing::warn!("grid requests did not finish within {SHUTDOWN_GRACE:?}");
            }
        }
        Ok(())
    }
}

/// What every request on one connection shares.
struct ConnectionContext {
    identity: GridIdentity,
    peer: SocketAddr,
    s3_endpoint: Arc<str>,
}

impl ConnectionContext {
    fn client_certificate(&self) -> ClientCertificate {
        ClientCertificate {
            subject_dn: self.identity.subject_dn.openssl.clone(),
            not_after: self.identity.chain_not_after,
            is_proxy: self.identity.is_proxy,
            limited: self.identity.limited,
        }
    }
}

async fn answer<B: S3Backend>(
    mut request: Request<Incoming>,
    context: &ConnectionContext,
    s3: &S3Service<B, KeyRing>,
    registrar: &IdentityAdmin,
) -> Response<ResponseBody> {
    let mut response = if request.method() == Method::POST && request.uri().path() == REGISTER_PATH
    {
        register(context, registrar).await
    } else {
        request.extensions_mut().insert(PeerAddr(context.peer));
        request
            .extensions_mut()
            .insert(context.client_certificate());
        s3.handle(request).await
    };
    if let Ok(value) = http::HeaderValue::from_str(&context.s3_endpoint) {
        response.headers_mut().insert(S3_ENDPOINT_HEADER, value);
    }
    response
}

/// `POST /mucura/v1/register`: the registration as JSON, or `{"error": …}`.
async fn register(
    context: &ConnectionContext,
    registrar: &IdentityAdmin,
) -> Response<ResponseBody> {
    let certificate = RegistrationCertificate {
        subject_dn: &context.identity.subject_dn.openssl,
        not_after: unix_millis(context.identity.eec_not_after),
        is_proxy: context.identity.is_proxy,
    };
    match registrar.register_certificate(&certificate).await {
        Ok(registration) => {
            let body = serde_json::json!({
                "user_id": registration.user_id,
                "access_key_id": registration.access_key_id,
                "secret_access_key": registration.secret_access_key,
                "s3_endpoint": &*context.s3_endpoint,
                "expires_at": registration.expires_at,
                "created": registration.created,
            });
            json_response(StatusCode::OK, &body)
        }
        Err(err) => {
            let status = match &err {
                admin::api::IdentityApiError::Invalid(_)
                | admin::api::IdentityApiError::Conflict(_) => StatusCode::FORBIDDEN,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            json_response(status, &serde_json::json!({ "error": err.to_string() }))
        }
    }
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<ResponseBody> {
    let mut text = body.to_string();
    text.push('\n');
    let mut response = Response::new(
        Full::new(Bytes::from(text))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// Re-reads the CA directory now and then, so new CRLs (fetch-crl) and CAs take effect.
async fn reload_periodically(
    verifier: Arc<GridClientVerifier>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        if let Err(err) = verifier.ca_directory().reload() {
            tracing::warn!("reloading the grid CA directory (keeping the previous one): {err}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use std::path::Path;

    use super::*;

    /// A CA directory holding one CA, and a host certificate and key in `dir`.
    fn grid_files(dir: &Path) -> GridConfig {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Listener test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca_dir = dir.join("certificates");
        std::fs::create_dir(&ca_dir).unwrap();
        std::fs::write(ca_dir.join("0123abcd.0"), ca_cert.pem()).unwrap();
        let host_key = rcgen::KeyPair::generate().unwrap();
        let host_cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&host_key, &rcgen::Issuer::new(ca_params, &ca_key))
            .unwrap();
        std::fs::write(dir.join("hostcert.pem"), host_cert.pem()).unwrap();
        std::fs::write(dir.join("hostkey.pem"), host_key.serialize_pem()).unwrap();
        GridConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ca_dir,
            certificate: dir.join("hostcert.pem"),
            key: dir.join("hostkey.pem"),
            crl_optional: true,
            sessions: CertificateSessionPolicy::default(),
            public_s3_url: None,
            ca_reload_interval: Duration::from_secs(300),
        }
    }

    async fn bind_error(config: &GridConfig) -> String {
        match GridListener::bind(config, "http://127.0.0.1:9000".into()).await {
            Ok(_) => panic!("the listener started"),
            Err(err) => format!("{err:#}"),
        }
    }

    #[tokio::test]
    async fn binds_with_good_files_and_names_the_file_at_fault_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let good = grid_files(dir.path());
        let listener = GridListener::bind(&good, "http://127.0.0.1:9000".into())
            .await
            .unwrap();
        let taken = GridConfig {
            listen: listener.local_addr().unwrap(),
            ..good.clone()
        };
        assert!(bind_error(&taken).await.contains("cannot listen"));

        let no_ca = GridConfig {
            ca_dir: dir.path().join("missing"),
            ..good.clone()
        };
        assert!(bind_error(&no_ca).await.contains("grid CA directory"));

        let no_cert = GridConfig {
            certificate: dir.path().join("missing.pem"),
            ..good.clone()
        };
        assert!(bind_error(&no_cert).await.contains("host certificate"));

        std::fs::write(dir.path().join("empty.pem"), "").unwrap();
        let empty_cert = GridConfig {
            certificate: dir.path().join("empty.pem"),
            ..good.clone()
        };
        assert!(bind_error(&empty_cert)
            .await
            .contains("holds no PEM certificate"));

        let no_key = GridConfig {
            key: dir.path().join("empty.pem"),
            ..good.clone()
        };
        assert!(bind_error(&no_key).await.contains("host key"));

        // A key that is not the certificate's.
        std::fs::write(
            dir.path().join("other.pem"),
            rcgen::KeyPair::generate().unwrap().serialize_pem(),
        )
        .unwrap();
        let wrong_key = GridConfig {
            key: dir.path().join("other.pem"),
            ..good
        };
        assert!(bind_error(&wrong_key).await.contains("TLS configuration"));
    }
}
