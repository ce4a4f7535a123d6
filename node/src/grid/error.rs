//! Why a presented certificate chain was refused. Positions count from the leaf (0), the
//! certificate the client holds the key of, towards the CA.

use thiserror::Error;

use super::der::DerError;
use super::proxy_cert::ProxyType;

/// A refused client chain, precise enough to log and to tell the user what to fix.
#[derive(Debug, Error)]
pub enum ChainError {
    /// The client sent no certificate at all.
    #[error("the client presented no certificate")]
    NoCertificate,
    /// More certificates than any sane grid chain needs (a denial-of-service guard).
    #[error("the chain holds {length} certificates, more than the {max} allowed")]
    TooLong {
        /// Certificates presented.
        length: usize,
        /// The limit.
        max: usize,
    },
    /// A certificate could not be parsed.
    #[error("certificate {index} is malformed: {detail}")]
    Malformed {
        /// Position in the chain.
        index: usize,
        /// What is wrong.
        detail: String,
    },
    /// Only proxies were sent: the user certificate they derive from is missing.
    #[error("the chain holds only proxy certificates: the user certificate was not sent")]
    NoEndEntity,
    /// A proxy appears after the end-entity certificate, where only CA certificates belong.
    #[error("certificate {index} is a proxy placed after the user certificate")]
    ProxyAfterEndEntity {
        /// Position in the chain.
        index: usize,
    },
    /// webpki refused the end-entity certificate (expired, untrusted CA, revoked, …).
    #[error("user certificate {subject} refused: {reason}")]
    EndEntity {
        /// The user's DN (OpenSSL form).
        subject: String,
        /// A plain-words reason.
        reason: String,
    },
    /// CRLs are required but the CA directory holds none.
    #[error("no CRL is installed, and CRLs are required: cannot check {subject} for revocation")]
    NoCrls {
        /// The user's DN (OpenSSL form).
        subject: String,
    },
    /// An RSA key shorter than the minimum.
    #[error("certificate {index} carries a {bits}-bit RSA key; at least {min} bits are required")]
    WeakRsaKey {
        /// Position in the chain.
        index: usize,
        /// The key's size.
        bits: usize,
        /// The minimum accepted.
        min: usize,
    },
    /// A proxy's issuer field does not name the certificate after it.
    #[error("proxy {index}: its issuer is not the subject of certificate {}", index + 1)]
    IssuerMismatch {
        /// Position in the chain.
        index: usize,
    },
    /// A proxy's subject is not its issuer's subject plus exactly one CN.
    #[error("proxy {index}: subject {subject} is not its issuer's subject {issuer} plus one CN")]
    BadProxySubject {
        /// Position in the chain.
        index: usize,
        /// The proxy's subject (OpenSSL form).
        subject: String,
        /// The issuer's subject (OpenSSL form).
        issuer: String,
    },
    /// The signature algorithm is not one rustls' provider accepts (SHA-1, for instance).
    #[error("proxy {index}: signature algorithm {algorithm} is not accepted")]
    UnsupportedSignatureAlgorithm {
        /// Position in the chain.
        index: usize,
        /// The algorithm's OID.
        algorithm: String,
    },
    /// The proxy was not signed by the key of the certificate after it.
    #[error("proxy {index}: the signature does not verify with its issuer's key")]
    BadSignature {
        /// Position in the chain.
        index: usize,
    },
    /// The proxy is not valid now.
    #[error("proxy {index} is {state}")]
    ProxyNotValidNow {
        /// Position in the chain.
        index: usize,
        /// "expired" or "not yet valid".
        state: &'static str,
    },
    /// The proxy expires after the certificate that signed it.
    #[error("proxy {index} outlives its issuer")]
    OutlivesIssuer {
        /// Position in the chain.
        index: usize,
    },
    /// The proxy starts (beyond the usual back-dating allowance) before its issuer.
    #[error("proxy {index} starts before its issuer")]
    PredatesIssuer {
        /// Position in the chain.
        index: usize,
    },
    /// The proxy claims to be a CA.
    #[error("proxy {index} has the CA flag set")]
    ProxyIsCa {
        /// Position in the chain.
        index: usize,
    },
    /// The proxy claims the right to sign certificates (RFC 3820 § 3.6).
    #[error("proxy {index} asserts keyCertSign")]
    ProxyKeyCertSign {
        /// Position in the chain.
        index: usize,
    },
    /// A certificate signed a proxy although its key usage excludes digital signatures.
    #[error("certificate {index} signed a proxy but its key usage lacks digitalSignature")]
    IssuerCannotSign {
        /// Position in the chain.
        index: usize,
    },
    /// Proxies carry no alternative names (RFC 3820 §§ 3.2, 3.5).
    #[error("proxy {index} carries a subject or issuer alternative name")]
    AlternativeName {
        /// Position in the chain.
        index: usize,
    },
    /// A critical extension this verifier does not understand.
    #[error("proxy {index} carries the unknown critical extension {oid}")]
    UnknownCriticalExtension {
        /// Position in the chain.
        index: usize,
        /// The extension's OID.
        oid: String,
    },
    /// More proxies below this one than its pCPathLenConstraint allows.
    #[error("proxy {index} allows {limit} proxies below it, the chain has {index}")]
    PathLengthExceeded {
        /// Position in the chain (also the number of proxies below it).
        index: usize,
        /// Its pCPathLenConstraint.
        limit: u32,
    },
    /// A policy language other than inherit-all or limited.
    #[error("proxy {index} uses the policy language {language}, which is not accepted")]
    UnsupportedPolicy {
        /// Position in the chain.
        index: usize,
        /// The language's OID (id-ppl-independent is 1.3.6.1.5.5.7.21.2).
        language: String,
    },
    /// The proxyCertInfo extension cannot be decoded.
    #[error("proxy {index}: malformed proxyCertInfo: {source}")]
    BadProxyCertInfo {
        /// Position in the chain.
        index: usize,
        /// The decoding failure.
        source: DerError,
    },
    /// Proxies of different kinds in one chain.
    #[error("proxy {index} is a {found} proxy in a chain of {expected} proxies")]
    MixedProxyTypes {
        /// Position in the chain.
        index: usize,
        /// The kind of the proxy nearest the user certificate.
        expected: ProxyType,
        /// This proxy's kind.
        found: ProxyType,
    },
}
