//! What makes one certificate a proxy, and which kind: RFC 3820 (proxyCertInfo
//! 1.3.6.1.5.5.7.1.14), the Globus pre-RFC draft ("legacy", 1.3.6.1.4.1.3536.1.222) or the
//! original GT2 proxy, which has no extension and is recognised by its last CN being `proxy` or
//! `limited proxy` on top of its issuer's name.

use std::fmt;

use x509_parser::certificate::X509Certificate;
use x509_parser::der_parser::oid::Oid;
use x509_parser::oid_registry::OID_X509_COMMON_NAME;

use super::der::{self, DerError};
use super::error::ChainError;

/// DER value of the RFC 3820 proxyCertInfo extension OID, 1.3.6.1.5.5.7.1.14.
pub const OID_PROXY_CERT_INFO: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x0e];
/// DER value of the pre-RFC Globus proxyCertInfo OID, 1.3.6.1.4.1.3536.1.222.
pub const OID_PROXY_CERT_INFO_LEGACY: &[u8] =
    &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x9b, 0x50, 0x01, 0x81, 0x5e];
/// id-ppl-inheritAll, 1.3.6.1.5.5.7.21.1: the proxy carries all its issuer's rights.
const OID_PPL_INHERIT_ALL: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x15, 0x01];
/// Globus' limited-proxy language, 1.3.6.1.4.1.3536.1.1.1.9: job submission is refused.
const OID_PPL_LIMITED: &[u8] = &[
    0x2b, 0x06, 0x01, 0x04, 0x01, 0x9b, 0x50, 0x01, 0x01, 0x01, 0x09,
];

/// The last CN of a GT2 full proxy.
const GT2_FULL_CN: &str = "proxy";
/// The last CN of a GT2 limited proxy.
const GT2_LIMITED_CN: &str = "limited proxy";

/// The three proxy formats in use on grids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyType {
    /// RFC 3820 proxy (what grid-proxy-init and voms-proxy-init make by default today).
    Rfc3820,
    /// Globus' pre-RFC draft format (GT3/GT4 "legacy" proxies).
    Legacy,
    /// Globus Toolkit 2 proxy, without extension.
    Gt2,
}

impl fmt::Display for ProxyType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            ProxyType::Rfc3820 => "RFC 3820",
            ProxyType::Legacy => "legacy (pre-RFC)",
            ProxyType::Gt2 => "GT2",
        })
    }
}

/// What a proxy certificate says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyCert {
    /// The format.
    pub kind: ProxyType,
    /// A limited proxy (policy language id-ppl-limited, or GT2 `CN=limited proxy`).
    pub limited: bool,
    /// pCPathLenConstraint: how many further proxies may follow below this one.
    pub path_len: Option<u32>,
}

/// Whether `cert` (at `index` in the chain) is a proxy, and what kind. Fails on a proxy whose
/// proxyCertInfo is malformed or names a policy language other than inherit-all or limited.
pub fn classify(cert: &X509Certificate<'_>, index: usize) -> Result<Option<ProxyCert>, ChainError> {
    let mut found = None;
    for extension in cert.extensions() {
        let kind = match extension.oid.as_bytes() {
            OID_PROXY_CERT_INFO => ProxyType::Rfc3820,
            OID_PROXY_CERT_INFO_LEGACY => ProxyType::Legacy,
            _ => continue,
        };
        if found.is_some() {
            return Err(ChainError::Malformed {
                index,
                detail: "more than one proxyCertInfo extension".to_string(),
            });
        }
        let info = parse_proxy_cert_info(extension.value)
            .map_err(|source| ChainError::BadProxyCertInfo { index, source })?;
        let limited = match info.language {
            OID_PPL_INHERIT_ALL => false,
            OID_PPL_LIMITED => true,
            other => {
                return Err(ChainError::UnsupportedPolicy {
                    index,
                    language: oid_text(other),
                })
            }
        };
        found = Some(ProxyCert {
            kind,
            limited,
            path_len: info.path_len,
        });
    }
    if found.is_some() {
        return Ok(found);
    }
    Ok(gt2_limited_flag(cert).map(|limited| ProxyCert {
        kind: ProxyType::Gt2,
        limited,
        path_len: None,
    }))
}

/// A GT2 proxy is named after its issuer plus a last `CN=proxy` or `CN=limited proxy`; any
/// other certificate (including a user whose CN happens to be "proxy") is not one.
fn gt2_limited_flag(cert: &X509Certificate<'_>) -> Option<bool> {
    let last = cert.subject().iter().last()?;
    let [attribute] = last.iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    if attribute.attr_type() != &OID_X509_COMMON_NAME {
        return None;
    }
    let limited = match attribute.as_str().ok()? {
        GT2_FULL_CN => false,
        GT2_LIMITED_CN => true,
        _ => return None,
    };
    extends_by_one_rdn(cert.subject().as_raw(), cert.issuer().as_raw()).then_some(limited)
}

/// True when the DER name `subject` is the DER name `issuer` followed by exactly one RDN,
/// compared byte for byte (a re-encoded issuer name is not the same name here).
pub fn extends_by_one_rdn(subject: &[u8], issuer: &[u8]) -> bool {
    match (der::name_rdns(subject), der::name_rdns(issuer)) {
        (Ok(subject_rdns), Ok(issuer_rdns)) => {
            subject_rdns.len() == issuer_rdns.len() + 1
                && subject_rdns[..issuer_rdns.len()] == issuer_rdns[..]
        }
        _ => false,
    }
}

/// The decoded ProxyCertInfo value.
struct ProxyCertInfo<'a> {
    path_len: Option<u32>,
    language: &'a [u8],
}

/// RFC 3820: `SEQUENCE { pCPathLenConstraint INTEGER OPTIONAL, proxyPolicy ProxyPolicy }`.
/// The Globus draft put the policy first and the path length after it, explicitly tagged `[1]`;
/// both layouts are accepted for either OID, as Globus itself does.
fn parse_proxy_cert_info(value: &[u8]) -> Result<ProxyCertInfo<'_>, DerError> {
    let outer = der::read_single(value, der::TAG_SEQUENCE)?;
    let mut path_len = None;
    let mut language = None;
    for element in der::elements(outer.value)? {
        match element.tag {
            der::TAG_INTEGER if path_len.is_none() => {
                path_len = Some(der::small_unsigned(&element)?);
            }
            der::TAG_CONTEXT_1 if path_len.is_none() => {
                let inner = der::read_single(element.value, der::TAG_INTEGER)?;
                path_len = Some(der::small_unsigned(&inner)?);
            }
            der::TAG_SEQUENCE if language.is_none() => {
                language = Some(parse_proxy_policy(element.value)?);
            }
            found => {
                return Err(DerError::UnexpectedTag {
                    expected: der::TAG_SEQUENCE,
                    found,
                })
            }
        }
    }
    let language = language.ok_or(DerError::Truncated)?;
    Ok(ProxyCertInfo { path_len, language })
}

/// `ProxyPolicy ::= SEQUENCE { policyLanguage OID, policy OCTET STRING OPTIONAL }`: the
/// language alone decides; a policy body is only meaningful to independent/custom languages,
/// which are refused anyway.
fn parse_proxy_policy(value: &[u8]) -> Result<&[u8], DerError> {
    let (language, rest) = der::read_element(value)?;
    if language.tag != der::TAG_OID {
        return Err(DerError::UnexpectedTag {
            expected: der::TAG_OID,
            found: language.tag,
        });
    }
    if !rest.is_empty() {
        der::read_single(rest, der::TAG_OCTET_STRING)?;
    }
    Ok(language.value)
}

/// Dotted form of a DER OID value, for messages.
fn oid_text(value: &[u8]) -> String {
    Oid::new(value.into()).to_id_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc_and_draft_layouts() {
        // RFC 3820: pathlen 2, inheritAll.
        let rfc = [
            0x30, 0x0f, 0x02, 0x01, 0x02, 0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05,
            0x07, 0x15, 0x01,
        ];
        let info = parse_proxy_cert_info(&rfc).unwrap();
        assert_eq!(info.path_len, Some(2));
        assert_eq!(info.language, OID_PPL_INHERIT_ALL);
        // Draft: policy first, then [1] EXPLICIT INTEGER 0.
        let draft = [
            0x30, 0x11, 0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x15, 0x01,
            0xa1, 0x03, 0x02, 0x01, 0x00,
        ];
        let info = parse_proxy_cert_info(&draft).unwrap();
        assert_eq!(info.path_len, Some(0));
        assert!(parse_proxy_cert_info(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_err());
    }

    #[test]
    fn names_oids() {
        assert_eq!(oid_text(OID_PPL_LIMITED), "1.3.6.1.4.1.3536.1.1.1.9");
        assert_eq!(
            oid_text(OID_PROXY_CERT_INFO_LEGACY),
            "1.3.6.1.4.1.3536.1.222"
        );
    }
}
