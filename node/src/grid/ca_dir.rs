//! Trust anchors and CRLs from a grid CA directory (the `/etc/grid-security/certificates`
//! layout): `HASH.N` files hold PEM CA certificates, `HASH.rN` files PEM CRLs; the
//! `.signing_policy`, `.namespaces`, `.info`, `.crl_url` and any other files are ignored.
//!
//! Every certificate in the directory is a trust anchor, as in every grid middleware. The
//! directory changes underneath a running node (fetch-crl refreshes CRLs, CA updates arrive as
//! packages): [`CaDirectory::reload`] re-reads it and keeps the previous contents if the new
//! ones are unusable, so a half-written update never opens or closes the door by accident.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, TrustAnchor};
use rustls::DistinguishedName;
use thiserror::Error;
use webpki::{CertRevocationList, OwnedCertRevocationList};

/// Why a CA directory could not be loaded. Every file-level variant names the file.
#[derive(Debug, Error)]
pub enum CaDirError {
    /// The directory itself could not be listed.
    #[error("cannot read the CA directory {path}: {source}")]
    ReadDirectory {
        /// The directory.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// A certificate or CRL file could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// A file's PEM armour is broken.
    #[error("{path} is not valid PEM: {detail}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What the PEM reader reported.
        detail: String,
    },
    /// A `HASH.N` file holds no `CERTIFICATE` block, or a `HASH.rN` file no `X509 CRL` block.
    #[error("{path} holds no PEM {expected} block")]
    Empty {
        /// The file.
        path: PathBuf,
        /// The PEM label that was expected.
        expected: &'static str,
    },
    /// A certificate cannot serve as a trust anchor.
    #[error("{path}: unusable CA certificate: {reason:?}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// webpki's reason.
        reason: webpki::Error,
    },
    /// A CRL could not be parsed (webpki accepts only complete v2 CRLs).
    #[error("{path}: unusable CRL: {reason:?}")]
    Crl {
        /// The file.
        path: PathBuf,
        /// webpki's reason.
        reason: webpki::Error,
    },
    /// The directory holds no CA certificate at all: nobody could ever log in.
    #[error("the CA directory {path} holds no CA certificate (HASH.0 files)")]
    NoTrustAnchors {
        /// The directory.
        path: PathBuf,
    },
}

/// What a grid CA directory held when it was read: anchors, their names and the CRLs.
#[derive(Debug)]
pub struct TrustStore {
    anchors: Vec<TrustAnchor<'static>>,
    crls: Vec<CertRevocationList<'static>>,
}

/// The kind of a file in a CA directory, decided from its name alone.
#[derive(Debug, PartialEq, Eq)]
enum CaFileKind {
    Certificate,
    Crl,
    Other,
}

/// `HASH.N` is a certificate and `HASH.rN` a CRL, where HASH is OpenSSL's 8-hex-digit subject
/// hash; every other name (`HASH.signing_policy`, `HASH.namespaces`, `*.info`, …) is not ours.
fn classify_file_name(name: &str) -> CaFileKind {
    let Some((hash, suffix)) = name.split_once('.') else {
        return CaFileKind::Other;
    };
    let is_hash = hash.len() == 8 && hash.bytes().all(|byte| byte.is_ascii_hexdigit());
    let is_number = |text: &str| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    if !is_hash {
        CaFileKind::Other
    } else if is_number(suffix) {
        CaFileKind::Certificate
    } else if suffix.strip_prefix('r').is_some_and(is_number) {
        CaFileKind::Crl
    } else {
        CaFileKind::Other
    }
}

impl TrustStore {
    /// Reads a grid CA directory. Any unreadable or malformed certificate or CRL file fails the
    /// whole load: silently dropping a CRL could let a revoked user in.
    pub fn load(directory: &Path) -> Result<Self, CaDirError> {
        let listing = std::fs::read_dir(directory).map_err(|source| CaDirError::ReadDirectory {
            path: directory.to_path_buf(),
            source,
        })?;
        let mut files = Vec::new();
        for entry in listing {
            let entry = entry.map_err(|source| CaDirError::ReadDirectory {
                path: directory.to_path_buf(),
                source,
            })?;
            let name = entry.file_name();
            let kind = classify_file_name(&name.to_string_lossy());
            if kind != CaFileKind::Other {
                files.push((kind, entry.path()));
            }
        }
        // A stable order makes the anchors' order (and the root hints) reproducible.
        files.sort_by(|left, right| left.1.cmp(&right.1));

        let mut certificates = Vec::new();
        let mut crls = Vec::new();
        for (kind, path) in files {
            let contents = std::fs::read(&path).map_err(|source| CaDirError::ReadFile {
                path: path.clone(),
                source,
            })?;
            match kind {
                CaFileKind::Certificate => {
                    for der in
                        read_pem_all::<CertificateDer<'static>>(&path, &contents, "CERTIFICATE")?
                    {
                        certificates.push((path.clone(), der));
                    }
                }
                CaFileKind::Crl => {
                    for der in read_pem_all::<CertificateRevocationListDer<'static>>(
                        &path, &contents, "X509 CRL",
                    )? {
                        crls.push((path.clone(), der));
                    }
                }
                CaFileKind::Other => {}
            }
        }
        if certificates.is_empty() {
            return Err(CaDirError::NoTrustAnchors {
                path: directory.to_path_buf(),
            });
        }
        Self::from_parts(certificates, crls)
    }

    /// Builds a store from certificates and CRLs already in memory; each comes with the path
    /// (or any label) its errors should name.
    pub fn from_parts(
        certificates: Vec<(PathBuf, CertificateDer<'static>)>,
        crls: Vec<(PathBuf, CertificateRevocationListDer<'static>)>,
    ) -> Result<Self, CaDirError> {
        let mut seen = HashSet::new();
        let mut anchors = Vec::new();
        for (path, der) in certificates {
            // The same CA often appears twice (old- and new-style hash links).
            if !seen.insert(der.as_ref().to_vec()) {
                continue;
            }
            let anchor = webpki::anchor_from_trusted_cert(&der)
                .map_err(|reason| CaDirError::Certificate { path, reason })?;
            anchors.push(anchor.to_owned());
        }
        let crls = crls
            .into_iter()
            .map(|(path, der)| {
                OwnedCertRevocationList::from_der(der.as_ref())
                    .map(CertRevocationList::from)
                    .map_err(|reason| CaDirError::Crl { path, reason })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { anchors, crls })
    }

    /// The trust anchors.
    pub fn anchors(&self) -> &[TrustAnchor<'static>] {
        &self.anchors
    }

    /// The certificate revocation lists.
    pub fn crls(&self) -> &[CertRevocationList<'static>] {
        &self.crls
    }

    /// The CA subjects to offer as acceptable issuers in the CertificateRequest. They are built
    /// with `DistinguishedName::in_sequence` because webpki keeps a name without its outer
    /// SEQUENCE, and OpenSSL clients abort the handshake on a bare one.
    pub fn root_hint_subjects(&self) -> Vec<DistinguishedName> {
        let mut seen = HashSet::new();
        self.anchors
            .iter()
            .filter(|anchor| seen.insert(anchor.subject.as_ref().to_vec()))
            .map(|anchor| DistinguishedName::in_sequence(anchor.subject.as_ref()))
            .collect()
    }
}

/// Every PEM block of type `T` in a file; the file must hold at least one.
fn read_pem_all<T>(
    path: &Path,
    contents: &[u8],
    expected: &'static str,
) -> Result<Vec<T>, CaDirError>
where
    T: PemObject,
{
    let found = T::pem_slice_iter(contents)
        .collect::<Result<Vec<T>, pem::Error>>()
        .map_err(|err| CaDirError::Pem {
            path: path.to_path_buf(),
            detail: err.to_string(),
        })?;
    if found.is_empty() {
        return Err(CaDirError::Empty {
            path: path.to_path_buf(),
            expected,
        });
    }
    Ok(found)
}

/// A CA directory that can be re-read while connections are being verified.
#[derive(Debug)]
pub struct CaDirectory {
    path: PathBuf,
    current: RwLock<Arc<TrustStore>>,
}

impl CaDirectory {
    /// Loads the directory for the first time; fails if it is unusable.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, CaDirError> {
        let path = path.into();
        let store = TrustStore::load(&path)?;
        Ok(Self {
            path,
            current: RwLock::new(Arc::new(store)),
        })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The contents as of the last successful load.
    pub fn current(&self) -> Arc<TrustStore> {
        // A poisoned lock still guards a fully built store: the writer only swaps an Arc.
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    /// Re-reads the directory. On failure the previous contents stay in force and the error is
    /// returned for the caller to log.
    pub fn reload(&self) -> Result<(), CaDirError> {
        let store = Arc::new(TrustStore::load(&self.path)?);
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = store;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_ca_directory_file_names() {
        assert_eq!(classify_file_name("1a2b3c4d.0"), CaFileKind::Certificate);
        assert_eq!(classify_file_name("1a2b3c4d.12"), CaFileKind::Certificate);
        assert_eq!(classify_file_name("1a2b3c4d.r0"), CaFileKind::Crl);
        assert_eq!(
            classify_file_name("1a2b3c4d.signing_policy"),
            CaFileKind::Other
        );
        assert_eq!(classify_file_name("1a2b3c4d.namespaces"), CaFileKind::Other);
        assert_eq!(classify_file_name("1a2b3c4d.r"), CaFileKind::Other);
        assert_eq!(classify_file_name("CERN-Root.pem"), CaFileKind::Other);
        assert_eq!(classify_file_name("CERN.info"), CaFileKind::Other);
        assert_eq!(classify_file_name("1a2b3c4g.0"), CaFileKind::Other);
    }
}
