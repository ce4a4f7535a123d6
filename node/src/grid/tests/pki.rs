//! Grid-style test PKIs made with the `openssl` command at test time (rcgen cannot repeat DC
//! attributes or add a second CN): a CA run with `openssl ca` (exact dates, revocation, CRLs),
//! user certificates, and proxies signed by the user's (or a proxy's) key, as grid-proxy-init
//! does, with `openssl ca` too because OpenSSL 3.0's `x509 -req` cannot set exact dates.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tempfile::TempDir;

/// DER value of a draft (legacy) proxyCertInfo `{ { id-ppl-inheritAll } }`, as hex for openssl.
const LEGACY_INHERIT_ALL_DER: &str = "300C300A06082B06010505071501";

/// The OpenSSL configuration every command uses, so the host's openssl.cnf does not matter.
const OPENSSL_CONFIG: &str = r#"
[ ca ]
default_ca = CA_default

[ CA_default ]
dir = .
database = $dir/index.txt
new_certs_dir = $dir/issued
certificate = $dir/ca.pem
private_key = $dir/ca.key
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 365
default_crl_days = 30
policy = policy_any
unique_subject = no
email_in_dn = no
x509_extensions = user_cert
crl_extensions = crl_ext

[ policy_any ]
commonName = supplied

[ req ]
distinguished_name = req_dn
string_mask = utf8only

[ req_dn ]

[ ca_cert ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ user_cert ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ user_cert_encipher_only ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, keyEncipherment
extendedKeyUsage = clientAuth

[ crl_ext ]
authorityKeyIdentifier = keyid
"#;

/// A certificate with its key, as files and in memory.
#[derive(Debug, Clone)]
pub struct Credential {
    /// PEM certificate file.
    pub cert_path: PathBuf,
    /// PEM private key file.
    pub key_path: PathBuf,
    /// Subject in OpenSSL's slash form.
    pub subject: String,
    /// The chain this credential presents: itself first, then its issuers up to (excluding)
    /// the CA.
    pub chain: Vec<CertificateDer<'static>>,
    /// The same chain as PEM texts.
    pub chain_pems: Vec<String>,
}

impl Credential {
    /// The private key.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::from_pem_file(&self.key_path).expect("test key")
    }

    /// A grid proxy file (certificate, key, then the issuer chain), as curl and Globus read it.
    pub fn write_proxy_file(&self, path: &Path) {
        let mut contents = self.chain_pems[0].clone();
        contents.push_str(&std::fs::read_to_string(&self.key_path).expect("key"));
        for cert in &self.chain_pems[1..] {
            contents.push_str(cert);
        }
        std::fs::write(path, contents).expect("proxy file");
    }
}

/// A certificate file's PEM text and DER.
fn read_cert(path: &Path) -> (String, CertificateDer<'static>) {
    let text = std::fs::read_to_string(path).expect("certificate file");
    let der = CertificateDer::from_pem_slice(text.as_bytes()).expect("PEM certificate");
    (text, der)
}

/// How a user certificate is made.
#[derive(Debug, Clone)]
pub struct UserSpec {
    /// File name stem.
    pub name: String,
    /// Subject, slash form.
    pub subject: String,
    /// notBefore, openssl's `YYYYMMDDHHMMSSZ`.
    pub start: String,
    /// notAfter, same form.
    pub end: String,
    /// Digest the CA signs with.
    pub digest: String,
    /// RSA key size.
    pub key_bits: u32,
    /// Extension section of the test configuration.
    pub extensions: String,
}

impl Default for UserSpec {
    fn default() -> Self {
        Self {
            name: format!("user-{}", next_serial()),
            subject: "/DC=org/DC=mucura-test/CN=Someone".to_string(),
            start: openssl_time(-24 * 3600),
            end: openssl_time(24 * 3600),
            digest: "sha256".to_string(),
            key_bits: 2048,
            extensions: "user_cert".to_string(),
        }
    }
}

/// How a proxy is made.
#[derive(Debug, Clone)]
pub struct ProxySpec {
    /// Format of the proxy.
    pub kind: ProxyKind,
    /// Policy language for RFC proxies (`id-ppl-inheritAll`, an OID, …).
    pub language: String,
    /// pCPathLenConstraint for RFC proxies.
    pub path_len: Option<u32>,
    /// Last CN; `None` picks a serial number (or `proxy` for GT2).
    pub common_name: Option<String>,
    /// Full subject override (to make a bad one).
    pub subject: Option<String>,
    /// Lifetime in seconds, cut to the issuer's as proxy tools do unless `outlive_issuer`.
    pub lifetime: i64,
    /// Let the proxy outlive its issuer.
    pub outlive_issuer: bool,
    /// Start relative to now (proxy tools back-date by five minutes).
    pub start_offset: i64,
    /// Digest (`sha256`, `sha1`).
    pub digest: String,
    /// RSA key size of the proxy's own key.
    pub key_bits: u32,
    /// Extra extension lines.
    pub extra_extensions: Vec<String>,
    /// Sign with this key (under the issuer's name) instead of the issuer's key.
    pub signing_key: Option<PathBuf>,
}

/// Twelve hours, grid-proxy-init's default lifetime.
const DEFAULT_PROXY_LIFETIME: i64 = 12 * 3600;
/// grid-proxy-init's back-dating against clock skew.
const PROXY_BACKDATE: i64 = -300;

/// Proxy formats openssl can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// RFC 3820.
    Rfc,
    /// Globus pre-RFC draft.
    Legacy,
    /// GT2, no extension.
    Gt2,
}

impl Default for ProxySpec {
    fn default() -> Self {
        Self {
            kind: ProxyKind::Rfc,
            language: "id-ppl-inheritAll".to_string(),
            path_len: None,
            common_name: None,
            subject: None,
            lifetime: DEFAULT_PROXY_LIFETIME,
            outlive_issuer: false,
            start_offset: PROXY_BACKDATE,
            digest: "sha256".to_string(),
            key_bits: 2048,
            extra_extensions: Vec::new(),
            signing_key: None,
        }
    }
}

/// Unique names for files and serials across the whole test run.
fn next_serial() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1_000_000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A scratch PKI in a temporary directory.
pub struct Pki {
    dir: TempDir,
}

/// A certificate authority run by `openssl ca` in its own directory.
pub struct Ca {
    /// Its directory (database, serial, keys).
    pub dir: PathBuf,
    /// Its certificate file.
    pub cert_path: PathBuf,
}

impl Pki {
    /// An empty PKI.
    pub fn new() -> Self {
        let dir = TempDir::new().expect("tempdir");
        std::fs::write(dir.path().join("openssl.cnf"), OPENSSL_CONFIG).expect("config");
        Self { dir }
    }

    /// The scratch directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs openssl in `cwd` with the test configuration; panics with its stderr on failure.
    pub fn openssl(&self, cwd: &Path, args: &[&str]) -> String {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(cwd)
            .env("OPENSSL_CONF", self.path().join("openssl.cnf"))
            .output()
            .expect("the openssl command is installed");
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// A self-signed CA with a 2048-bit RSA key.
    pub fn ca(&self, name: &str, subject: &str) -> Ca {
        let dir = self.ca_skeleton(name);
        let config = self.config();
        self.openssl(
            &dir,
            &[
                "req",
                "-config",
                &config,
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                subject,
                "-days",
                "3650",
                "-sha256",
                "-extensions",
                "ca_cert",
            ],
        );
        Ca {
            cert_path: dir.join("ca.pem"),
            dir,
        }
    }

    fn config(&self) -> String {
        self.path().join("openssl.cnf").display().to_string()
    }

    /// A user certificate from `ca`, valid from `start` to `end` (openssl's `YYYYMMDDHHMMSSZ`).
    pub fn user(&self, ca: &Ca, name: &str, subject: &str, start: &str, end: &str) -> Credential {
        self.user_with(
            ca,
            &UserSpec {
                name: name.to_string(),
                subject: subject.to_string(),
                start: start.to_string(),
                end: end.to_string(),
                ..UserSpec::default()
            },
        )
    }

    /// A user certificate made as `spec` says.
    pub fn user_with(&self, ca: &Ca, spec: &UserSpec) -> Credential {
        let key_path = self.path().join(format!("{}.key", spec.name));
        let csr_path = self.path().join(format!("{}.csr", spec.name));
        let cert_path = self.path().join(format!("{}.pem", spec.name));
        self.new_key_and_request(&key_path, &csr_path, &spec.subject, spec.key_bits);
        let config = self.config();
        self.openssl(
            &ca.dir,
            &[
                "ca",
                "-config",
                &config,
                "-batch",
                "-notext",
                "-preserveDN",
                "-md",
                &spec.digest,
                "-extensions",
                &spec.extensions,
                "-startdate",
                &spec.start,
                "-enddate",
                &spec.end,
                "-in",
                &path_text(&csr_path),
                "-out",
                &path_text(&cert_path),
            ],
        );
        let (pem, cert) = read_cert(&cert_path);
        Credential {
            cert_path,
            key_path,
            subject: spec.subject.clone(),
            chain: vec![cert],
            chain_pems: vec![pem],
        }
    }

    /// A CA whose certificate `parent` issues (a two-tier grid CA).
    pub fn sub_ca(&self, parent: &Ca, name: &str, subject: &str) -> Ca {
        let dir = self.ca_skeleton(name);
        let csr_path = dir.join("ca.csr");
        self.new_key_and_request(&dir.join("ca.key"), &csr_path, subject, 2048);
        let config = self.config();
        self.openssl(
            &parent.dir,
            &[
                "ca",
                "-config",
                &config,
                "-batch",
                "-notext",
                "-preserveDN",
                "-extensions",
                "ca_cert",
                "-days",
                "1000",
                "-in",
                &path_text(&csr_path),
                "-out",
                &path_text(&dir.join("ca.pem")),
            ],
        );
        Ca {
            cert_path: dir.join("ca.pem"),
            dir,
        }
    }

    /// An `openssl ca` working directory with an empty database.
    fn ca_skeleton(&self, name: &str) -> PathBuf {
        let dir = self.path().join(name);
        std::fs::create_dir_all(dir.join("issued")).expect("ca dir");
        std::fs::write(dir.join("index.txt"), "").expect("index");
        std::fs::write(dir.join("serial"), "1000\n").expect("serial");
        std::fs::write(dir.join("crlnumber"), "01\n").expect("crlnumber");
        dir
    }

    /// A fresh RSA key and a certificate request for `subject`.
    fn new_key_and_request(&self, key_path: &Path, csr_path: &Path, subject: &str, bits: u32) {
        let config = self.config();
        self.openssl(
            self.path(),
            &[
                "req",
                "-config",
                &config,
                "-new",
                "-newkey",
                &format!("rsa:{bits}"),
                "-nodes",
                "-keyout",
                &path_text(key_path),
                "-out",
                &path_text(csr_path),
                "-subj",
                subject,
            ],
        );
    }

    /// Revokes a certificate of `ca`.
    pub fn revoke(&self, ca: &Ca, credential: &Credential) {
        let config = self.config();
        self.openssl(
            &ca.dir,
            &[
                "ca",
                "-config",
                &config,
                "-revoke",
                &path_text(&credential.cert_path),
            ],
        );
    }

    /// A CRL of `ca` valid from `last_update` to `next_update`; returns its file.
    pub fn crl(&self, ca: &Ca, last_update: &str, next_update: &str) -> PathBuf {
        let out = ca.dir.join(format!("crl-{}.pem", next_serial()));
        let config = self.config();
        self.openssl(
            &ca.dir,
            &[
                "ca",
                "-config",
                &config,
                "-gencrl",
                "-crl_lastupdate",
                last_update,
                "-crl_nextupdate",
                next_update,
                "-out",
                &path_text(&out),
            ],
        );
        out
    }

    /// A grid CA directory holding `cas` (as `HASH.0`) and `crls` (`(ca, file)` as `HASH.r0`),
    /// plus the side files real directories have.
    pub fn ca_directory(&self, name: &str, cas: &[&Ca], crls: &[(&Ca, &Path)]) -> PathBuf {
        let dir = self.path().join(name);
        std::fs::create_dir_all(&dir).expect("ca directory");
        for ca in cas {
            let hash = self.subject_hash(&ca.cert_path);
            std::fs::copy(&ca.cert_path, dir.join(format!("{hash}.0"))).expect("copy ca");
            std::fs::write(dir.join(format!("{hash}.signing_policy")), "junk").expect("policy");
            std::fs::write(dir.join(format!("{hash}.namespaces")), "junk").expect("namespaces");
        }
        for (ca, crl) in crls {
            let hash = self.subject_hash(&ca.cert_path);
            std::fs::copy(crl, dir.join(format!("{hash}.r0"))).expect("copy crl");
        }
        std::fs::write(dir.join("README.info"), "not a certificate").expect("info");
        dir
    }

    fn subject_hash(&self, cert: &Path) -> String {
        self.openssl(
            self.path(),
            &["x509", "-noout", "-subject_hash", "-in", &path_text(cert)],
        )
        .trim()
        .to_string()
    }

    /// A proxy of `issuer` made as `spec` says.
    pub fn proxy(&self, issuer: &Credential, spec: &ProxySpec) -> Credential {
        let serial = next_serial();
        let key_path = self.path().join(format!("proxy-{serial}.key"));
        let csr_path = self.path().join(format!("proxy-{serial}.csr"));
        let cert_path = self.path().join(format!("proxy-{serial}.pem"));
        let ext_path = self.path().join(format!("proxy-{serial}.ext"));
        let default_cn = match spec.kind {
            ProxyKind::Gt2 => "proxy".to_string(),
            _ => serial.to_string(),
        };
        let common_name = spec.common_name.clone().unwrap_or(default_cn);
        let subject = spec
            .subject
            .clone()
            .unwrap_or_else(|| format!("{}/CN={common_name}", issuer.subject));
        let mut extensions =
            vec!["keyUsage = critical, digitalSignature, keyEncipherment".to_string()];
        match spec.kind {
            ProxyKind::Rfc => {
                let path_len = spec
                    .path_len
                    .map(|limit| format!(",pathlen:{limit}"))
                    .unwrap_or_default();
                extensions.push(format!(
                    "proxyCertInfo = critical, language:{}{path_len}",
                    spec.language
                ));
            }
            ProxyKind::Legacy => extensions.push(format!(
                "1.3.6.1.4.1.3536.1.222 = critical, DER:{LEGACY_INHERIT_ALL_DER}"
            )),
            ProxyKind::Gt2 => {}
        }
        extensions.extend(spec.extra_extensions.iter().cloned());
        std::fs::write(&ext_path, format!("[proxy]\n{}\n", extensions.join("\n"))).expect("ext");
        let config = self.config();
        self.openssl(
            self.path(),
            &[
                "req",
                "-config",
                &config,
                "-new",
                "-newkey",
                &format!("rsa:{}", spec.key_bits),
                "-nodes",
                "-keyout",
                &path_text(&key_path),
                "-out",
                &path_text(&csr_path),
                "-subj",
                &subject,
            ],
        );
        let (signer_cert, signer_key) = match &spec.signing_key {
            Some(key) => (self.impersonating_cert(issuer, key), key.clone()),
            None => (issuer.cert_path.clone(), issuer.key_path.clone()),
        };
        let mut end = now_offset_time(spec.lifetime);
        if !spec.outlive_issuer {
            end = end.min(not_after(&issuer.chain[0]));
        }
        // `openssl ca` (unlike `x509 -req` in OpenSSL 3.0) sets exact dates; a scratch database
        // per proxy keeps the issuers independent.
        let scratch = self.path().join(format!("proxy-{serial}.db"));
        std::fs::create_dir_all(scratch.join("issued")).expect("scratch");
        std::fs::write(scratch.join("index.txt"), "").expect("index");
        std::fs::write(scratch.join("serial"), format!("{serial:08X}\n")).expect("serial");
        self.openssl(
            &scratch,
            &[
                "ca",
                "-config",
                &config,
                "-batch",
                "-notext",
                "-preserveDN",
                "-cert",
                &path_text(&signer_cert),
                "-keyfile",
                &path_text(&signer_key),
                "-md",
                &spec.digest,
                "-startdate",
                &openssl_time(spec.start_offset),
                "-enddate",
                &format_time(end),
                "-extfile",
                &path_text(&ext_path),
                "-extensions",
                "proxy",
                "-in",
                &path_text(&csr_path),
                "-out",
                &path_text(&cert_path),
            ],
        );
        let (pem, cert) = read_cert(&cert_path);
        let mut chain = vec![cert];
        chain.extend(issuer.chain.iter().cloned());
        let mut chain_pems = vec![pem];
        chain_pems.extend(issuer.chain_pems.iter().cloned());
        Credential {
            cert_path,
            key_path,
            subject,
            chain,
            chain_pems,
        }
    }

    /// A certificate bearing `issuer`'s subject but `key`: signing with it forges a proxy
    /// that names `issuer` as its issuer without holding its key.
    fn impersonating_cert(&self, issuer: &Credential, key: &Path) -> PathBuf {
        let out = self.path().join(format!("impostor-{}.pem", next_serial()));
        let config = self.config();
        self.openssl(
            self.path(),
            &[
                "req",
                "-config",
                &config,
                "-new",
                "-x509",
                "-key",
                &path_text(key),
                "-subj",
                &issuer.subject,
                "-days",
                "30",
                "-out",
                &path_text(&out),
            ],
        );
        out
    }
}

/// A certificate's notAfter.
fn not_after(cert: &CertificateDer<'_>) -> time::OffsetDateTime {
    use x509_parser::prelude::FromDer;
    let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(cert.as_ref())
        .expect("test certificate parses");
    parsed.validity().not_after.to_datetime()
}

fn now_offset_time(offset_seconds: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::seconds(offset_seconds)
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

/// openssl's `YYYYMMDDHHMMSSZ` for now plus `offset_seconds`.
pub fn openssl_time(offset_seconds: i64) -> String {
    format_time(now_offset_time(offset_seconds))
}

fn format_time(moment: time::OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        moment.year(),
        u8::from(moment.month()),
        moment.day(),
        moment.hour(),
        moment.minute(),
        moment.second()
    )
}
