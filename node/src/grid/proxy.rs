//! Validation of a presented grid chain `[leaf, …, user certificate, (CA intermediates)]`.
//!
//! webpki refuses proxies (an end entity that signs certificates), so the chain is split: the
//! first certificate that is not a proxy is the user's end-entity certificate (EEC), verified
//! by webpki against the CA directory's anchors and CRLs; the proxies above it are then checked
//! one by one from the EEC outwards against the RFC 3820 rules, with signatures verified by the
//! same algorithms rustls accepts (no SHA-1, no RSA under 2048 bits).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, UnixTime};
use webpki::{
    CertRevocationList, EndEntityCert, ExpirationPolicy, KeyUsage, RevocationCheckDepth,
    RevocationOptionsBuilder, UnknownStatusPolicy,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::time::ASN1Time;

use super::ca_dir::TrustStore;
use super::der;
use super::dn::DistinguishedNames;
use super::error::ChainError;
use super::proxy_cert::{
    self, ProxyCert, ProxyType, OID_PROXY_CERT_INFO, OID_PROXY_CERT_INFO_LEGACY,
};

/// Longest chain accepted: a user certificate, a few CA levels and a few delegations fit
/// easily; the bound keeps a hostile client from making the server parse hundreds.
pub const MAX_CHAIN_LENGTH: usize = 10;

/// Shortest RSA modulus accepted anywhere in the chain, as in rustls' own algorithms.
pub const MIN_RSA_BITS: usize = 2048;

/// How far a proxy may start before its issuer: grid-proxy-init and voms-proxy-init back-date
/// proxies by five minutes against clock skew, which for a fresh proxy of a fresh proxy lands
/// before the issuer's start.
const PROXY_BACKDATE_ALLOWANCE: Duration = Duration::from_secs(5 * 60);

/// Extensions a proxy may mark critical (anything else critical is refused).
const KNOWN_CRITICAL_EXTENSIONS: &[&str] = &["2.5.29.15", "2.5.29.19", "2.5.29.37"];
/// subjectAltName and issuerAltName, forbidden in proxies.
const ALT_NAME_EXTENSIONS: &[&str] = &["2.5.29.17", "2.5.29.18"];

/// What to do about a user whose CA has no CRL in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CrlPolicy {
    /// Refuse: a missing CRL (fetch-crl failing, a new CA) must not let revoked users in.
    #[default]
    Require,
    /// Check revocation where a CRL exists, accept users of CAs without one.
    IfPresent,
}

/// Settings of chain validation.
#[derive(Debug, Clone)]
pub struct ValidationOptions {
    /// Longest chain accepted.
    pub max_chain_length: usize,
    /// Treatment of CAs without a CRL.
    pub crl_policy: CrlPolicy,
    /// Signature algorithms accepted, for certificates and for the handshake.
    pub algorithms: WebPkiSupportedAlgorithms,
}

impl Default for ValidationOptions {
    fn default() -> Self {
        Self {
            max_chain_length: MAX_CHAIN_LENGTH,
            crl_policy: CrlPolicy::default(),
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }
}

/// The authenticated grid identity behind a verified chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GridIdentity {
    /// The user certificate's subject: the identity, whether or not a proxy was used.
    pub subject_dn: DistinguishedNames,
    /// The user certificate's issuer (the CA).
    pub issuer_dn: DistinguishedNames,
    /// When the user certificate expires (a registration must not outlive it).
    pub eec_not_after: SystemTime,
    /// The earliest expiry of any certificate presented (a credential must not outlive it).
    pub chain_not_after: SystemTime,
    /// Whether a limited proxy is in the chain (it limits everything delegated from it).
    pub limited: bool,
    /// The proxies' format, `None` when the user certificate was presented alone.
    pub proxy_type: Option<ProxyType>,
    /// Whether the client authenticated with a proxy rather than its user certificate.
    pub is_proxy: bool,
}

/// A parsed certificate of the presented chain.
struct ChainEntry<'a> {
    der: &'a CertificateDer<'a>,
    cert: X509Certificate<'a>,
    proxy: Option<ProxyCert>,
}

/// Validates a presented chain (leaf first) and returns the identity it proves.
pub fn verify_chain(
    chain: &[CertificateDer<'_>],
    store: &TrustStore,
    options: &ValidationOptions,
    now: UnixTime,
) -> Result<GridIdentity, ChainError> {
    if chain.is_empty() {
        return Err(ChainError::NoCertificate);
    }
    if chain.len() > options.max_chain_length {
        return Err(ChainError::TooLong {
            length: chain.len(),
            max: options.max_chain_length,
        });
    }
    let entries = parse_chain(chain)?;
    let eec_index = entries
        .iter()
        .position(|entry| entry.proxy.is_none())
        .ok_or(ChainError::NoEndEntity)?;
    if let Some(offset) = entries[eec_index..]
        .iter()
        .position(|entry| entry.proxy.is_some())
    {
        return Err(ChainError::ProxyAfterEndEntity {
            index: eec_index + offset,
        });
    }
    let eec = &entries[eec_index];
    let subject_dn = DistinguishedNames::from_name(eec.cert.subject());
    verify_end_entity(&entries, eec_index, &subject_dn, store, options, now)?;

    let mut limited = false;
    let mut proxy_type = None;
    for index in (0..eec_index).rev() {
        let proxy = verify_proxy(&entries, index, options, now)?;
        let expected = *proxy_type.get_or_insert(proxy.kind);
        if proxy.kind != expected {
            return Err(ChainError::MixedProxyTypes {
                index,
                expected,
                found: proxy.kind,
            });
        }
        // A limited proxy limits every proxy derived from it, whatever they claim.
        limited |= proxy.limited;
    }

    let chain_not_after = entries
        .iter()
        .map(|entry| system_time(entry.cert.validity().not_after))
        .min()
        .unwrap_or(UNIX_EPOCH);
    Ok(GridIdentity {
        subject_dn,
        issuer_dn: DistinguishedNames::from_name(eec.cert.issuer()),
        eec_not_after: system_time(eec.cert.validity().not_after),
        chain_not_after,
        limited,
        proxy_type,
        is_proxy: eec_index > 0,
    })
}

fn parse_chain<'a>(chain: &'a [CertificateDer<'a>]) -> Result<Vec<ChainEntry<'a>>, ChainError> {
    chain
        .iter()
        .enumerate()
        .map(|(index, der)| {
            let malformed = |detail: String| ChainError::Malformed { index, detail };
            let (rest, cert) = X509Certificate::from_der(der.as_ref())
                .map_err(|err| malformed(err.to_string()))?;
            if !rest.is_empty() {
                return Err(malformed(
                    "trailing bytes after the certificate".to_string(),
                ));
            }
            check_rsa_key_size(&cert, index)?;
            let proxy = proxy_cert::classify(&cert, index)?;
            Ok(ChainEntry { der, cert, proxy })
        })
        .collect()
}

fn check_rsa_key_size(cert: &X509Certificate<'_>, index: usize) -> Result<(), ChainError> {
    if let Ok(PublicKey::RSA(key)) = cert.public_key().parsed() {
        let bits = key.key_size();
        if bits < MIN_RSA_BITS {
            return Err(ChainError::WeakRsaKey {
                index,
                bits,
                min: MIN_RSA_BITS,
            });
        }
    }
    Ok(())
}

/// webpki path validation of the user certificate, with CRLs and expired CRLs refused.
fn verify_end_entity(
    entries: &[ChainEntry<'_>],
    eec_index: usize,
    subject_dn: &DistinguishedNames,
    store: &TrustStore,
    options: &ValidationOptions,
    now: UnixTime,
) -> Result<(), ChainError> {
    let refused = |reason: String| ChainError::EndEntity {
        subject: subject_dn.openssl.clone(),
        reason,
    };
    let eec_der = entries[eec_index].der;
    let end_entity =
        EndEntityCert::try_from(eec_der).map_err(|err| refused(describe_webpki_error(&err)))?;
    let intermediates: Vec<CertificateDer<'_>> = entries[eec_index + 1..]
        .iter()
        .map(|entry| CertificateDer::from(entry.der.as_ref()))
        .collect();
    let crls: Vec<&CertRevocationList<'_>> = store.crls().iter().collect();
    let status_policy = match options.crl_policy {
        CrlPolicy::Require => UnknownStatusPolicy::Deny,
        CrlPolicy::IfPresent => UnknownStatusPolicy::Allow,
    };
    let revocation = match RevocationOptionsBuilder::new(&crls) {
        Ok(builder) => Some(
            builder
                .with_depth(RevocationCheckDepth::Chain)
                .with_status_policy(status_policy)
                .with_expiration_policy(ExpirationPolicy::Enforce)
                .build(),
        ),
        Err(_) if options.crl_policy == CrlPolicy::IfPresent => None,
        Err(_) => {
            return Err(ChainError::NoCrls {
                subject: subject_dn.openssl.clone(),
            })
        }
    };
    end_entity
        .verify_for_usage(
            options.algorithms.all,
            store.anchors(),
            &intermediates,
            now,
            KeyUsage::client_auth(),
            revocation,
            None,
        )
        .map_err(|err| refused(describe_webpki_error(&err)))?;
    Ok(())
}

/// Plain words for the webpki failures users cause; the rest keep webpki's own name.
fn describe_webpki_error(error: &webpki::Error) -> String {
    match error {
        webpki::Error::CertExpired { .. } => "the certificate has expired".to_string(),
        webpki::Error::CertNotValidYet { .. } => "the certificate is not valid yet".to_string(),
        webpki::Error::UnknownIssuer => {
            "not issued by a trusted CA (or the signature does not verify)".to_string()
        }
        webpki::Error::CertRevoked => "the certificate is revoked".to_string(),
        webpki::Error::CrlExpired { .. } => "the CA's CRL has expired".to_string(),
        webpki::Error::UnknownRevocationStatus => "no CRL of its CA is installed".to_string(),
        webpki::Error::UnsupportedSignatureAlgorithmContext(_) => {
            "signed with an algorithm that is not accepted (SHA-1?)".to_string()
        }
        webpki::Error::InvalidSignatureForPublicKey => {
            "the signature does not verify with the trusted CA's key (a look-alike CA, or an RSA \
             key under 2048 bits)"
                .to_string()
        }
        other => format!("{other:?}"),
    }
}

/// Checks the proxy at `index` against the certificate after it (its issuer).
fn verify_proxy(
    entries: &[ChainEntry<'_>],
    index: usize,
    options: &ValidationOptions,
    now: UnixTime,
) -> Result<ProxyCert, ChainError> {
    let entry = &entries[index];
    let issuer = &entries[index + 1];
    let proxy = entry.proxy.ok_or(ChainError::Malformed {
        index,
        detail: "expected a proxy".to_string(),
    })?;
    check_names(entry, issuer, index)?;
    verify_signature(entry, issuer, index, &options.algorithms)?;
    check_validity(entry, issuer, index, now)?;
    check_extensions(entry, issuer, index)?;
    if let Some(limit) = proxy.path_len {
        // Proxies below this one are exactly those at positions 0..index.
        if u32::try_from(index).map_or(true, |below| below > limit) {
            return Err(ChainError::PathLengthExceeded { index, limit });
        }
    }
    Ok(proxy)
}

fn check_names(
    entry: &ChainEntry<'_>,
    issuer: &ChainEntry<'_>,
    index: usize,
) -> Result<(), ChainError> {
    let issuer_subject = issuer.cert.subject().as_raw();
    if entry.cert.issuer().as_raw() != issuer_subject {
        return Err(ChainError::IssuerMismatch { index });
    }
    let subject = entry.cert.subject();
    let last_is_single_cn = subject.iter().last().is_some_and(|rdn| {
        let attributes: Vec<_> = rdn.iter().collect();
        attributes.len() == 1
            && attributes[0].attr_type() == &x509_parser::oid_registry::OID_X509_COMMON_NAME
    });
    if !last_is_single_cn || !proxy_cert::extends_by_one_rdn(subject.as_raw(), issuer_subject) {
        return Err(ChainError::BadProxySubject {
            index,
            subject: DistinguishedNames::from_name(subject).openssl,
            issuer: DistinguishedNames::from_name(issuer.cert.subject()).openssl,
        });
    }
    Ok(())
}

/// Verifies the proxy's signature with its issuer's key through the provider's algorithms: the
/// certificate's algorithm must be one of them, which is what keeps SHA-1 out.
fn verify_signature(
    entry: &ChainEntry<'_>,
    issuer: &ChainEntry<'_>,
    index: usize,
    algorithms: &WebPkiSupportedAlgorithms,
) -> Result<(), ChainError> {
    let malformed = |err: der::DerError| ChainError::Malformed {
        index,
        detail: err.to_string(),
    };
    if entry.cert.tbs_certificate.signature != entry.cert.signature_algorithm {
        return Err(ChainError::Malformed {
            index,
            detail: "inner and outer signature algorithms differ".to_string(),
        });
    }
    let signed = der::signed_parts(entry.der.as_ref()).map_err(malformed)?;
    let key = der::public_key_parts(issuer.cert.public_key().raw).map_err(malformed)?;
    let algorithm = algorithms
        .all
        .iter()
        .find(|candidate| {
            candidate.signature_alg_id().as_ref() == signed.signature_algorithm
                && candidate.public_key_alg_id().as_ref() == key.algorithm
        })
        .ok_or_else(|| ChainError::UnsupportedSignatureAlgorithm {
            index,
            algorithm: entry.cert.signature_algorithm.algorithm.to_id_string(),
        })?;
    algorithm
        .verify_signature(key.key, signed.tbs, signed.signature)
        .map_err(|_| ChainError::BadSignature { index })
}

fn check_validity(
    entry: &ChainEntry<'_>,
    issuer: &ChainEntry<'_>,
    index: usize,
    now: UnixTime,
) -> Result<(), ChainError> {
    let validity = entry.cert.validity();
    let now = UNIX_EPOCH + Duration::from_secs(now.as_secs());
    if now < system_time(validity.not_before) {
        return Err(ChainError::ProxyNotValidNow {
            index,
            state: "not yet valid",
        });
    }
    if now > system_time(validity.not_after) {
        return Err(ChainError::ProxyNotValidNow {
            index,
            state: "expired",
        });
    }
    let issuer_validity = issuer.cert.validity();
    if system_time(validity.not_after) > system_time(issuer_validity.not_after) {
        return Err(ChainError::OutlivesIssuer { index });
    }
    if system_time(validity.not_before) + PROXY_BACKDATE_ALLOWANCE
        < system_time(issuer_validity.not_before)
    {
        return Err(ChainError::PredatesIssuer { index });
    }
    Ok(())
}

/// RFC 3820 §§ 3.2–3.8: no alternative names, not a CA, no keyCertSign; the issuer, if it
/// restricts its key usage, must allow digital signatures; no critical extension we do not
/// understand. RFC 3820 lets a proxy sign further proxies through its digitalSignature usage,
/// never through keyCertSign, which would make it a certificate authority.
fn check_extensions(
    entry: &ChainEntry<'_>,
    issuer: &ChainEntry<'_>,
    index: usize,
) -> Result<(), ChainError> {
    let malformed = |err: x509_parser::error::X509Error| ChainError::Malformed {
        index,
        detail: err.to_string(),
    };
    for extension in entry.cert.extensions() {
        let oid = extension.oid.to_id_string();
        if ALT_NAME_EXTENSIONS.contains(&oid.as_str()) {
            return Err(ChainError::AlternativeName { index });
        }
        let is_proxy_info = matches!(
            extension.oid.as_bytes(),
            OID_PROXY_CERT_INFO | OID_PROXY_CERT_INFO_LEGACY
        );
        if extension.critical
            && !is_proxy_info
            && !KNOWN_CRITICAL_EXTENSIONS.contains(&oid.as_str())
        {
            return Err(ChainError::UnknownCriticalExtension { index, oid });
        }
    }
    if let Some(constraints) = entry.cert.basic_constraints().map_err(malformed)? {
        if constraints.value.ca {
            return Err(ChainError::ProxyIsCa { index });
        }
    }
    if let Some(usage) = entry.cert.key_usage().map_err(malformed)? {
        if usage.value.key_cert_sign() {
            return Err(ChainError::ProxyKeyCertSign { index });
        }
    }
    let issuer_usage = issuer
        .cert
        .key_usage()
        .map_err(|err| ChainError::Malformed {
            index: index + 1,
            detail: err.to_string(),
        })?;
    if let Some(usage) = issuer_usage {
        if !usage.value.digital_signature() {
            return Err(ChainError::IssuerCannotSign { index: index + 1 });
        }
    }
    Ok(())
}

/// X.509 times are after 1950; anything before the epoch (never seen in a live chain) clamps
/// to the epoch, which only ever makes a certificate look older.
fn system_time(time: ASN1Time) -> SystemTime {
    u64::try_from(time.timestamp()).map_or(UNIX_EPOCH, |seconds| {
        UNIX_EPOCH + Duration::from_secs(seconds)
    })
}
