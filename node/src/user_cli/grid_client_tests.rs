//! The grid client over real mutual TLS: a tokio-rustls server with the node's grid
//! client-certificate verifier answers canned STS and registration documents; the client
//! presents a certificate file, verifies the server against a CA file, and `login` caches,
//! reuses and refreshes credentials as the proxy file changes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::PrivateKeyDer;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::grid::ca_dir::CaDirectory;
use crate::grid::proxy::{CrlPolicy, ValidationOptions};
use crate::grid::verifier::{server_config, GridClientVerifier};
use crate::user_cli::aws_files::read_section;
use crate::user_cli::cache;
use crate::user_cli::login::{login, LoginRequest};
use crate::user_cli::resolve::Env;

const STS_ANSWER: &str = r#"<AssumeRoleWithCertificateResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithCertificateResult><Credentials><AccessKeyId>ASIAGRID</AccessKeyId><SecretAccessKey>gridsecret</SecretAccessKey><SessionToken>gridtoken</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleWithCertificateResult></AssumeRoleWithCertificateResponse>"#;

/// A grid CA with one user, a server CA with the listener's certificate, all on disk.
struct Pki {
    dir: tempfile::TempDir,
    /// The PEM the client trusts for the server.
    server_ca_file: PathBuf,
    /// The user's certificate and key in one file (as a proxy file holds them).
    credential_file: PathBuf,
    cert_file: PathBuf,
    key_file: PathBuf,
    server: Arc<ServerConfig>,
}

fn ca(name: &str) -> (rcgen::Certificate, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    (cert, rcgen::Issuer::new(params, key))
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let (grid_ca, grid_issuer) = ca("Grid test CA");
    let user_key = rcgen::KeyPair::generate().unwrap();
    let mut user_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    user_params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "mucura-test");
    user_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Jane Doe");
    user_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let user = user_params.signed_by(&user_key, &grid_issuer).unwrap();

    let (server_ca, server_issuer) = ca("Server test CA");
    let server_key = rcgen::KeyPair::generate().unwrap();
    let mut server_params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    server_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let server_cert = server_params
        .signed_by(&server_key, &server_issuer)
        .unwrap();

    let ca_dir = dir.path().join("certificates");
    std::fs::create_dir(&ca_dir).unwrap();
    std::fs::write(ca_dir.join("0badcafe.0"), grid_ca.pem()).unwrap();
    let server_ca_file = dir.path().join("server-ca.pem");
    std::fs::write(&server_ca_file, server_ca.pem()).unwrap();
    let credential_file = dir.path().join("x509up_test");
    std::fs::write(
        &credential_file,
        format!("{}{}", user.pem(), user_key.serialize_pem()),
    )
    .unwrap();
    let cert_file = dir.path().join("usercert.pem");
    let key_file = dir.path().join("userkey.pem");
    std::fs::write(&cert_file, user.pem()).unwrap();
    std::fs::write(&key_file, user_key.serialize_pem()).unwrap();

    let verifier = Arc::new(GridClientVerifier::new(
        Arc::new(CaDirectory::open(&ca_dir).unwrap()),
        // No CRL is made here: revocation is the server's concern, tested with it.
        ValidationOptions {
            crl_policy: CrlPolicy::IfPresent,
            ..ValidationOptions::default()
        },
    ));
    let server = server_config(
        verifier,
        vec![server_cert.der().clone(), server_ca.der().clone()],
        PrivateKeyDer::try_from(server_key.serialize_der()).unwrap(),
    )
    .unwrap();
    Pki {
        dir,
        server_ca_file,
        credential_file,
        cert_file,
        key_file,
        server: Arc::new(server),
    }
}

/// What the server saw: method and path-and-query of each request.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// Serves `connections` TLS connections, each answering `status`, `body` and the S3 endpoint
/// header. Returns the `https://localhost:PORT` URL and the requests seen.
async fn serve(
    config: Arc<ServerConfig>,
    connections: usize,
    status: StatusCode,
    body: &'static str,
) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let recorder = Arc::clone(&seen);
    tokio::spawn(async move {
        let acceptor = TlsAcceptor::from(config);
        for _ in 0..connections {
            let (tcp, _) = listener.accept().await.unwrap();
            // A refused handshake (the client distrusting us) just ends this connection.
            let Ok(tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let recorder = Arc::clone(&recorder);
            let service = service_fn(move |request: Request<Incoming>| {
                let recorder = Arc::clone(&recorder);
                async move {
                    recorder.lock().unwrap().push((
                        request.method().to_string(),
                        request.uri().path_and_query().unwrap().to_string(),
                    ));
                    let response = Response::builder()
                        .status(status)
                        .header(S3_ENDPOINT_HEADER, "https://s3.example:9000/")
                        .body(Full::new(Bytes::from_static(body.as_bytes())))
                        .unwrap();
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        }
    });
    (format!("https://localhost:{}", address.port()), seen)
}

fn trusting(file: &Path) -> Trust {
    Trust {
        ca_file: Some(file.to_path_buf()),
        ca_dir: PathBuf::from("/nonexistent"),
        system_bundle: None,
    }
}

#[tokio::test]
async fn login_presents_the_certificate_and_reads_the_sts_answer() {
    let pki = pki();
    let (url, seen) = serve(Arc::clone(&pki.server), 1, StatusCode::OK, STS_ANSWER).await;
    let login = assume_role_with_certificate(
        &url,
        &pki.credential_file,
        &trusting(&pki.server_ca_file),
        900,
    )
    .await
    .unwrap();
    assert_eq!(login.credentials.access_key_id, "ASIAGRID");
    assert_eq!(login.credentials.session_token, "gridtoken");
    assert_eq!(
        login.s3_endpoint.as_deref(),
        Some("https://s3.example:9000")
    );
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        &[(
            "POST".to_string(),
            "/?Action=AssumeRoleWithCertificate&Version=2011-06-15&DurationSeconds=900".to_string()
        )]
    );
}

#[tokio::test]
async fn refusals_carry_the_servers_code_and_message() {
    let pki = pki();
    let refusal = r#"<ErrorResponse><Error><Code>AccessDenied</Code><Message>the proxy has expired</Message></Error></ErrorResponse>"#;
    let (url, _) = serve(Arc::clone(&pki.server), 1, StatusCode::FORBIDDEN, refusal).await;
    let error = assume_role_with_certificate(
        &url,
        &pki.credential_file,
        &trusting(&pki.server_ca_file),
        900,
    )
    .await
    .unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.contains("AccessDenied: the proxy has expired"),
        "{message}"
    );
}

#[tokio::test]
async fn an_untrusted_server_is_refused() {
    let pki = pki();
    let (url, seen) = serve(Arc::clone(&pki.server), 1, StatusCode::OK, STS_ANSWER).await;
    // The user's own certificate is no CA for the server's.
    let error =
        assume_role_with_certificate(&url, &pki.credential_file, &trusting(&pki.cert_file), 900)
            .await
            .unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("certificate"), "{message}");
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn registration_posts_to_the_register_path() {
    let pki = pki();
    let answer = r#"{"user_id":"jane","access_key_id":"AKREG","secret_access_key":"regsecret","s3_endpoint":"https://s3.example:9000","expires_at":"2027-06-01T00:00:00Z"}"#;
    let (url, seen) = serve(Arc::clone(&pki.server), 1, StatusCode::OK, answer).await;
    let (registration, expires) = register(
        &url,
        &pki.cert_file,
        &pki.key_file,
        &trusting(&pki.server_ca_file),
    )
    .await
    .unwrap();
    assert_eq!(registration.access_key_id, "AKREG");
    assert_eq!(expires.year(), 2027);
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        &[("POST".to_string(), "/mucura/v1/register".to_string())]
    );
}

#[tokio::test]
async fn login_caches_reuses_and_refreshes_when_the_proxy_changes() {
    let pki = pki();
    // Two connections: the first login and the one after the proxy file changes.
    let (url, seen) = serve(Arc::clone(&pki.server), 2, StatusCode::OK, STS_ANSWER).await;
    let home = pki.dir.path().join("home");
    let env = Env::from_pairs(&[
        ("HOME", home.to_str().unwrap()),
        ("XDG_CACHE_HOME", home.join("cache").to_str().unwrap()),
        ("AWS_CONFIG_FILE", home.join("aws-config").to_str().unwrap()),
    ]);
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("aws-config"), "[default]\nregion = eu-west-1\n").unwrap();
    let request = || LoginRequest {
        proxy: Some(pki.credential_file.clone()),
        grid_url: Some(url.clone()),
        duration_seconds: Some(900),
        ca_file: Some(pki.server_ca_file.clone()),
        endpoint: None,
        force: false,
    };
    login(&env, request()).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1);
    let cache_path = cache::cache_path(&env).unwrap();
    let cached = cache::load(&cache_path).unwrap();
    assert_eq!(cached.access_key_id, "ASIAGRID");
    assert_eq!(cached.endpoint.as_deref(), Some("https://s3.example:9000"));
    assert_eq!(cached.proxy_path, pki.credential_file);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cache_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let config = std::fs::read_to_string(home.join("aws-config")).unwrap();
    assert!(
        config.starts_with("[default]\nregion = eu-west-1\n"),
        "{config}"
    );
    let profile = read_section(&config, "profile mucura").unwrap();
    assert!(profile["credential_process"].ends_with(" credential-process"));
    assert_eq!(profile["endpoint_url"], "https://s3.example:9000");

    // Fresh cache, same proxy: no request.
    login(&env, request()).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1);

    // A renewed proxy (other contents) is exchanged again.
    let mut contents = std::fs::read(&pki.credential_file).unwrap();
    contents.extend_from_slice(b"\n");
    std::fs::write(&pki.credential_file, contents).unwrap();
    login(&env, request()).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 2);
    let refreshed = cache::load(&cache_path).unwrap();
    assert_eq!(
        Some(refreshed.proxy_sha256),
        cache::fingerprint(&pki.credential_file)
    );
}
