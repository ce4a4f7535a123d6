//! TLS for the client side: which servers to trust (a PEM bundle, the grid CA directory, the
//! system bundle) and which certificate to present (a grid proxy file, or a user certificate
//! and its key).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, SignatureScheme};

use super::resolve::Env;

/// Where the grid CA directory is when `X509_CERT_DIR` does not say.
pub const DEFAULT_CA_DIR: &str = "/etc/grid-security/certificates";

/// The system CA bundles tried (Debian/Ubuntu, then RHEL), unless `SSL_CERT_FILE` names one.
const SYSTEM_BUNDLES: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// Which certificate authorities the client trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    /// `--ca-file`: a PEM bundle that replaces every other source.
    pub ca_file: Option<PathBuf>,
    /// The grid CA directory (`X509_CERT_DIR`, default [`DEFAULT_CA_DIR`]).
    pub ca_dir: PathBuf,
    /// The system bundle, if one exists.
    pub system_bundle: Option<PathBuf>,
}

impl Trust {
    /// The trust settings from `--ca-file` and the environment.
    pub fn from_env(ca_file: Option<PathBuf>, env: &Env) -> Trust {
        let system_bundle = env.get("SSL_CERT_FILE").map(PathBuf::from).or_else(|| {
            SYSTEM_BUNDLES
                .iter()
                .map(PathBuf::from)
                .find(|path| path.is_file())
        });
        Trust {
            ca_file,
            ca_dir: PathBuf::from(env.get("X509_CERT_DIR").unwrap_or(DEFAULT_CA_DIR)),
            system_bundle,
        }
    }

    /// The root store: the `--ca-file` bundle alone, else the grid CA directory's `HASH.N`
    /// certificates plus the system bundle (an S3 endpoint may carry either kind of
    /// certificate).
    pub fn root_store(&self) -> Result<RootCertStore> {
        let mut store = RootCertStore::empty();
        if let Some(file) = &self.ca_file {
            let added = add_bundle(&mut store, file)?;
            if added == 0 {
                bail!("{} holds no usable CA certificate", file.display());
            }
            return Ok(store);
        }
        if self.ca_dir.is_dir() {
            add_ca_dir(&mut store, &self.ca_dir)?;
        }
        if let Some(bundle) = &self.system_bundle {
            // A broken system bundle must not hide a working CA directory.
            if let Err(err) = add_bundle(&mut store, bundle) {
                eprintln!("warning: {err:#}");
            }
        }
        if store.is_empty() {
            bail!(
                "no CA certificates to verify the server with: {} does not exist or holds no \
                 HASH.0 file (set X509_CERT_DIR) and no system bundle was found; pass \
                 --ca-file PEM",
                self.ca_dir.display()
            );
        }
        Ok(store)
    }
}

fn add_bundle(store: &mut RootCertStore, path: &Path) -> Result<usize> {
    let contents =
        std::fs::read(path).with_context(|| format!("cannot read CA file {}", path.display()))?;
    let certificates = CertificateDer::pem_slice_iter(&contents)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate bundle", path.display()))?;
    let (added, _ignored) = store.add_parsable_certificates(certificates);
    Ok(added)
}

/// `HASH.N` (OpenSSL subject-hash names) is what the grid tools read from a CA directory;
/// `.signing_policy`, `.namespaces` and CRL files (`HASH.rN`) are not certificates.
fn is_ca_file_name(name: &str) -> bool {
    let Some((hash, suffix)) = name.split_once('.') else {
        return false;
    };
    hash.len() == 8
        && hash.bytes().all(|byte| byte.is_ascii_hexdigit())
        && !suffix.is_empty()
        && suffix.bytes().all(|byte| byte.is_ascii_digit())
}

fn add_ca_dir(store: &mut RootCertStore, dir: &Path) -> Result<()> {
    let listing =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in listing {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        if is_ca_file_name(&entry.file_name().to_string_lossy()) {
            // One unreadable CA must not keep the others from being trusted.
            if let Err(err) = add_bundle(store, &entry.path()) {
                eprintln!("warning: skipping {}: {err:#}", entry.path().display());
            }
        }
    }
    Ok(())
}

/// A certificate chain and its private key, to present as a TLS client.
pub struct ClientIdentity {
    /// Leaf first (the proxy, or the user certificate), then the rest of the chain.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's key.
    pub key: PrivateKeyDer<'static>,
}

fn refuse_encrypted(contents: &[u8], path: &Path) -> Result<()> {
    let text = String::from_utf8_lossy(contents);
    if text.contains("ENCRYPTED") {
        bail!(
            "the private key in {} is passphrase-protected; write a decrypted copy for this \
             command (`openssl pkey -in {} -out key.pem`, then chmod 600 key.pem)",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

fn read_certificates(contents: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_slice_iter(contents)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not valid PEM", path.display()))?;
    if chain.is_empty() {
        bail!("{} holds no CERTIFICATE block", path.display());
    }
    Ok(chain)
}

fn read_key(contents: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>> {
    refuse_encrypted(contents, path)?;
    PrivateKeyDer::from_pem_slice(contents)
        .with_context(|| format!("{} holds no readable private key", path.display()))
}

impl ClientIdentity {
    /// A grid proxy file: the proxy certificate, its key, then the rest of the chain (the
    /// user certificate and any intermediate proxies), as grid-proxy-init writes it.
    pub fn from_proxy_file(path: &Path) -> Result<ClientIdentity> {
        let contents = std::fs::read(path)
            .with_context(|| format!("cannot read the proxy file {}", path.display()))?;
        Ok(ClientIdentity {
            chain: read_certificates(&contents, path)?,
            key: read_key(&contents, path)?,
        })
    }

    /// A user certificate (possibly followed by intermediates) and its separate key file.
    pub fn from_cert_and_key(cert: &Path, key: &Path) -> Result<ClientIdentity> {
        let cert_contents = std::fs::read(cert)
            .with_context(|| format!("cannot read the certificate {}", cert.display()))?;
        let key_contents =
            std::fs::read(key).with_context(|| format!("cannot read the key {}", key.display()))?;
        Ok(ClientIdentity {
            chain: read_certificates(&cert_contents, cert)?,
            key: read_key(&key_contents, key)?,
        })
    }
}

/// Always presents the same chain. `ClientConfig::with_client_auth_cert` cannot be used: it
/// parses the leaf with webpki to match it to the key, and webpki refuses a proxy
/// certificate's critical proxyCertInfo extension. The server verifies the chain instead.
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

/// A client configuration trusting `roots`, presenting `identity` when given.
pub fn client_config(
    roots: RootCertStore,
    identity: Option<ClientIdentity>,
) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots);
    let config = match identity {
        Some(identity) => {
            let key = provider
                .key_provider
                .load_private_key(identity.key)
                .context("the private key is not usable for TLS (RSA, ECDSA or Ed25519)")?;
            let certified = CertifiedKey::new(identity.chain, key);
            builder.with_client_cert_resolver(Arc::new(FixedClientCert(Arc::new(certified))))
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn self_signed(name: &str) -> rcgen::CertifiedKey<rcgen::KeyPair> {
        rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap()
    }

    #[test]
    fn ca_file_names_are_hash_dot_number() {
        assert!(is_ca_file_name("1a2b3c4d.0"));
        assert!(is_ca_file_name("1a2b3c4d.12"));
        assert!(!is_ca_file_name("1a2b3c4d.r0"));
        assert!(!is_ca_file_name("1a2b3c4d.signing_policy"));
        assert!(!is_ca_file_name("CERN.pem"));
    }

    #[test]
    fn the_ca_directory_and_bundles_fill_the_root_store() {
        let dir = tempfile::tempdir().unwrap();
        let ca = self_signed("ca.example");
        std::fs::write(dir.path().join("0badcafe.0"), ca.cert.pem()).unwrap();
        std::fs::write(dir.path().join("0badcafe.r0"), "not a certificate").unwrap();
        std::fs::write(dir.path().join("0badcafe.signing_policy"), "x").unwrap();
        let trust = Trust {
            ca_file: None,
            ca_dir: dir.path().to_path_buf(),
            system_bundle: None,
        };
        assert_eq!(trust.root_store().unwrap().len(), 1);

        let bundle = dir.path().join("bundle.pem");
        let other = self_signed("other.example");
        std::fs::write(&bundle, format!("{}{}", ca.cert.pem(), other.cert.pem())).unwrap();
        let with_file = Trust {
            ca_file: Some(bundle),
            ..trust.clone()
        };
        assert_eq!(with_file.root_store().unwrap().len(), 2);

        let nowhere = Trust {
            ca_file: None,
            ca_dir: dir.path().join("missing"),
            system_bundle: None,
        };
        let message = nowhere.root_store().unwrap_err().to_string();
        assert!(message.contains("no CA certificates"), "{message}");
    }

    #[test]
    fn proxy_files_give_chain_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let proxy = self_signed("proxy");
        let user = self_signed("user");
        let path = dir.path().join("x509up_u1000");
        std::fs::write(
            &path,
            format!(
                "{}{}{}",
                proxy.cert.pem(),
                proxy.signing_key.serialize_pem(),
                user.cert.pem()
            ),
        )
        .unwrap();
        let identity = ClientIdentity::from_proxy_file(&path).unwrap();
        assert_eq!(identity.chain.len(), 2);
        assert_eq!(identity.chain[0].as_ref(), proxy.cert.der().as_ref());
        let roots = Trust {
            ca_file: None,
            ca_dir: dir.path().to_path_buf(),
            system_bundle: None,
        };
        // The directory holds no HASH.0: only the error path can be exercised here.
        assert!(roots.root_store().is_err());
        let mut store = RootCertStore::empty();
        store.add(user.cert.der().clone()).unwrap();
        assert!(client_config(store, Some(identity)).is_ok());

        std::fs::write(&path, proxy.cert.pem()).unwrap();
        let no_key = ClientIdentity::from_proxy_file(&path).err().unwrap();
        assert!(format!("{no_key:#}").contains("no readable private key"));
        let missing = ClientIdentity::from_proxy_file(&dir.path().join("nope"))
            .err()
            .unwrap();
        assert!(format!("{missing:#}").contains("cannot read the proxy file"));
    }

    #[test]
    fn encrypted_keys_get_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let user = self_signed("user");
        let cert = dir.path().join("usercert.pem");
        let key = dir.path().join("userkey.pem");
        std::fs::write(&cert, user.cert.pem()).unwrap();
        std::fs::write(
            &key,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap();
        let error = ClientIdentity::from_cert_and_key(&cert, &key)
            .err()
            .unwrap();
        assert!(error.to_string().contains("passphrase-protected"));
        std::fs::write(&key, user.signing_key.serialize_pem()).unwrap();
        assert!(ClientIdentity::from_cert_and_key(&cert, &key).is_ok());
    }
}
