//! End to end over TLS: a tokio-rustls server with the grid verifier, and clients presenting
//! proxy chains (rustls over TLS 1.3 and 1.2, curl, and proxies made by grid-proxy-init).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, SignatureScheme, SupportedProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::pki::{Credential, ProxySpec};
use super::{Fixture, USER_SUBJECT};
use crate::grid::ca_dir::CaDirectory;
use crate::grid::proxy::ValidationOptions;
use crate::grid::verifier::{server_config, GridClientVerifier};

/// The grid listener under test and what the clients need to trust it.
struct GridServer {
    address: SocketAddr,
    server_ca_pem: String,
    server_ca: CertificateDer<'static>,
    verifier: Arc<GridClientVerifier>,
    acceptor: TlsAcceptor,
    listener: TcpListener,
}

impl GridServer {
    /// A grid listener on an ephemeral port, with a server certificate from a throw-away CA.
    async fn start(ca_dir: &Path) -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        // rcgen's default name is the same for every certificate, which would make the server
        // certificate look self-signed to OpenSSL.
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Grid listener test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, &ca_key);
        let server_key = rcgen::KeyPair::generate().unwrap();
        let mut server_params =
            rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        server_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
        let key = PrivateKeyDer::try_from(server_key.serialize_der()).unwrap();

        let directory = Arc::new(CaDirectory::open(ca_dir).unwrap());
        let verifier = Arc::new(GridClientVerifier::new(
            directory,
            ValidationOptions::default(),
        ));
        let config = server_config(
            Arc::clone(&verifier),
            vec![server_cert.der().clone(), ca_cert.der().clone()],
            key,
        )
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self {
            address: listener.local_addr().unwrap(),
            server_ca_pem: ca_cert.pem(),
            server_ca: ca_cert.der().clone(),
            verifier,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            listener,
        }
    }

    /// Serves one connection: an HTTP response whose body is the client's identity. Returns
    /// the identity line, or the handshake error.
    fn serve_one(self) -> tokio::task::JoinHandle<Result<String, String>> {
        tokio::spawn(async move {
            let (tcp, _) = self
                .listener
                .accept()
                .await
                .map_err(|err| err.to_string())?;
            let mut tls = self
                .acceptor
                .accept(tcp)
                .await
                .map_err(|err| err.to_string())?;
            let identity = self
                .verifier
                .identity(tls.get_ref().1.peer_certificates())
                .map_err(|err| err.to_string())?;
            let body = format!(
                "{} proxy={} limited={}",
                identity.subject_dn.openssl, identity.is_proxy, identity.limited
            );
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                let read = tls.read(&mut buffer).await.map_err(|err| err.to_string())?;
                if read == 0 {
                    break;
                }
                request.extend_from_slice(&buffer[..read]);
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            tls.write_all(response.as_bytes())
                .await
                .map_err(|err| err.to_string())?;
            tls.shutdown().await.map_err(|err| err.to_string())?;
            Ok(body)
        })
    }
}

/// Presents a fixed chain with a fixed key, whether or not they belong together (rustls'
/// own builder refuses a key that does not match the leaf).
#[derive(Debug)]
struct FixedClientCert(Arc<CertifiedKey>);

impl ResolvesClientCert for FixedClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A rustls client for `version` presenting `chain` with `key` (or no certificate).
fn client_config(
    server: &GridServer,
    version: &'static SupportedProtocolVersion,
    credential: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(server.server_ca.clone()).unwrap();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots);
    match credential {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => {
            let signing_key = provider.key_provider.load_private_key(key).unwrap();
            let certified = Arc::new(CertifiedKey::new(chain, signing_key));
            builder.with_client_cert_resolver(Arc::new(FixedClientCert(certified)))
        }
    }
}

/// Connects, sends a request, and returns the response body or the client-side error.
async fn request(address: SocketAddr, config: ClientConfig) -> Result<String, String> {
    let connector = TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(address).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|err| err.to_string())?;
    tls.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .map_err(|err| err.to_string())?;
    let mut response = String::new();
    // In TLS 1.3 the client learns of a refused certificate only when it reads.
    tls.read_to_string(&mut response)
        .await
        .map_err(|err| err.to_string())?;
    let (_, body) = response.split_once("\r\n\r\n").ok_or("no HTTP response")?;
    Ok(body.to_string())
}

fn chain_and_key(
    credential: &Credential,
) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    (credential.chain.clone(), credential.key())
}

#[tokio::test]
async fn proxy_chain_is_accepted_over_tls13_and_tls12() {
    let fixture = Fixture::new();
    let proxy = fixture.pki.proxy(&fixture.user, &ProxySpec::default());
    let delegated = fixture.pki.proxy(&proxy, &ProxySpec::default());
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let server = GridServer::start(&fixture.ca_dir).await;
        let address = server.address;
        let config = client_config(&server, version, Some(chain_and_key(&delegated)));
        let served = server.serve_one();
        let body = request(address, config).await.unwrap();
        assert_eq!(body, format!("{USER_SUBJECT} proxy=true limited=false"));
        assert_eq!(served.await.unwrap().unwrap(), body);
    }
}

#[tokio::test]
async fn client_without_certificate_is_refused() {
    let fixture = Fixture::new();
    let server = GridServer::start(&fixture.ca_dir).await;
    let address = server.address;
    let config = client_config(&server, &rustls::version::TLS13, None);
    let served = server.serve_one();
    assert!(request(address, config).await.is_err());
    let server_error = served.await.unwrap().unwrap_err();
    assert!(server_error.contains("no certificates"), "{server_error}");
}

#[tokio::test]
async fn client_without_the_leaf_key_is_refused() {
    let fixture = Fixture::new();
    let proxy = fixture.pki.proxy(&fixture.user, &ProxySpec::default());
    // The proxy's chain, but the user's key instead of the proxy's.
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let server = GridServer::start(&fixture.ca_dir).await;
        let address = server.address;
        let config = client_config(
            &server,
            version,
            Some((proxy.chain.clone(), fixture.user.key())),
        );
        let served = server.serve_one();
        assert!(request(address, config).await.is_err());
        let server_error = served.await.unwrap().unwrap_err();
        assert!(server_error.contains("BadSignature"), "{server_error}");
    }
}

#[tokio::test]
async fn invalid_chain_is_refused_in_the_handshake() {
    let fixture = Fixture::new();
    let proxy = fixture.pki.proxy(&fixture.user, &ProxySpec::default());
    let server = GridServer::start(&fixture.ca_dir).await;
    let address = server.address;
    let config = client_config(
        &server,
        &rustls::version::TLS13,
        Some((proxy.chain[..1].to_vec(), proxy.key())),
    );
    let served = server.serve_one();
    assert!(request(address, config).await.is_err());
    let server_error = served.await.unwrap().unwrap_err();
    assert!(server_error.contains("NoEndEntity"), "{server_error}");
}

/// Whether a command-line tool is installed; tests that need it are skipped (and say so)
/// otherwise. CI installs them: see the report of issue #6.
fn tool_available(tool: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok();
    if !found {
        eprintln!("skipped: `{tool}` is not installed");
    }
    found
}

/// curl, presenting a grid proxy file, over TLS 1.3 and 1.2; returns the response body.
async fn curl_with_proxy_file(fixture: &Fixture, proxy_file: &Path, tls_max: &str) -> String {
    let server = GridServer::start(&fixture.ca_dir).await;
    let ca_file = fixture.pki.path().join(format!("server-ca-{tls_max}.pem"));
    std::fs::write(&ca_file, &server.server_ca_pem).unwrap();
    let url = format!("https://localhost:{}/", server.address.port());
    let served = server.serve_one();
    let mut curl = Command::new("curl");
    curl.args(["--silent", "--show-error", "--tls-max", tls_max, "--cacert"])
        .arg(&ca_file)
        .arg("--cert")
        .arg(proxy_file)
        .arg("--key")
        .arg(proxy_file)
        .arg(&url);
    // curl blocks; the server it talks to runs on this test's runtime.
    let output = tokio::task::spawn_blocking(move || curl.output())
        .await
        .unwrap()
        .unwrap();
    let served = served.await.unwrap();
    assert!(
        output.status.success(),
        "curl failed: {} (server: {served:?})",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn curl_presenting_a_proxy_file_is_accepted() {
    if !tool_available("curl") {
        return;
    }
    let fixture = Fixture::new();
    let proxy = fixture.pki.proxy(&fixture.user, &ProxySpec::default());
    let proxy_file = fixture.pki.path().join("x509up_test");
    proxy.write_proxy_file(&proxy_file);
    for tls_max in ["1.3", "1.2"] {
        let body = curl_with_proxy_file(&fixture, &proxy_file, tls_max).await;
        assert_eq!(body, format!("{USER_SUBJECT} proxy=true limited=false"));
    }
}

/// Runs a Globus/VOMS proxy tool (`grid-proxy-init`, `voms-proxy-init`) to make a one-hour
/// proxy of `cert`/`key` (a user certificate, or a proxy file to delegate from) in `out`.
fn run_proxy_tool(tool: &str, flags: &[&str], cert: &Path, key: &Path, ca_dir: &Path, out: &Path) {
    let output = Command::new(tool)
        .args(flags)
        .args(["-q", "-bits", "2048", "-valid", "1:00", "-cert"])
        .arg(cert)
        .arg("-key")
        .arg(key)
        .arg("-certdir")
        .arg(ca_dir)
        .arg("-out")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{tool} {flags:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Proxies of every kind each tool makes are accepted over TLS, with the limited flag read.
async fn check_proxy_tool(tool: &str, kinds: &[(&[&str], bool)]) {
    let fixture = Fixture::new();
    for (flags, limited) in kinds {
        let proxy_file = fixture
            .pki
            .path()
            .join(format!("x509up_{tool}{}", flags.join("")));
        let user = &fixture.user;
        run_proxy_tool(
            tool,
            flags,
            &user.cert_path,
            &user.key_path,
            &fixture.ca_dir,
            &proxy_file,
        );
        let body = curl_with_proxy_file(&fixture, &proxy_file, "1.3").await;
        assert_eq!(
            body,
            format!("{USER_SUBJECT} proxy=true limited={limited}"),
            "{flags:?}"
        );
    }
}

#[tokio::test]
async fn proxies_made_by_grid_proxy_init_are_accepted() {
    if !tool_available("grid-proxy-init") || !tool_available("curl") {
        return;
    }
    check_proxy_tool(
        "grid-proxy-init",
        &[
            (&["-rfc"], false),
            (&["-rfc", "-limited"], true),
            (&["-draft"], false),
            (&["-old"], false),
            (&["-old", "-limited"], true),
        ],
    )
    .await;
}

#[tokio::test]
async fn proxies_made_by_voms_proxy_init_are_accepted() {
    if !tool_available("voms-proxy-init") || !tool_available("curl") {
        return;
    }
    check_proxy_tool(
        "voms-proxy-init",
        &[
            (&["-rfc"], false),
            (&["-rfc", "-limited"], true),
            (&["-old"], false),
        ],
    )
    .await;
}

#[tokio::test]
async fn proxy_delegated_from_a_tool_made_proxy_is_accepted() {
    if !tool_available("grid-proxy-init") || !tool_available("curl") {
        return;
    }
    let fixture = Fixture::new();
    let first = fixture.pki.path().join("x509up_first");
    let user = &fixture.user;
    run_proxy_tool(
        "grid-proxy-init",
        &["-rfc"],
        &user.cert_path,
        &user.key_path,
        &fixture.ca_dir,
        &first,
    );
    let second = fixture.pki.path().join("x509up_second");
    run_proxy_tool(
        "grid-proxy-init",
        &["-rfc"],
        &first,
        &first,
        &fixture.ca_dir,
        &second,
    );
    let body = curl_with_proxy_file(&fixture, &second, "1.2").await;
    assert_eq!(body, format!("{USER_SUBJECT} proxy=true limited=false"));
}
