//! Distinguished names in the two spellings grid software uses: RFC 2253 (`CN=Jane,DC=org`,
//! most specific first) and OpenSSL's legacy one-line form (`/DC=org/CN=Jane`), which grid-mapfiles,
//! VOMS and most grid services still use as the user's identity.

use std::fmt::Write as _;

use x509_parser::asn1_rs::Tag;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// A subject or issuer name in both common spellings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DistinguishedNames {
    /// RFC 2253 form, most specific RDN first, with RFC 2253 escaping, spelt as OpenSSL's
    /// `-nameopt RFC2253` does except that non-ASCII characters are kept as UTF-8 (as RFC 4514
    /// allows) rather than hex-escaped.
    pub rfc2253: String,
    /// OpenSSL's one-line form, least specific RDN first (`/DC=org/DC=example/CN=Jane Doe`);
    /// unescaped, as grid-mapfiles spell it.
    pub openssl: String,
}

impl DistinguishedNames {
    /// Renders a parsed X.509 name.
    pub fn from_name(name: &X509Name<'_>) -> Self {
        let rdns: Vec<Vec<(String, String)>> = name
            .iter()
            .map(|rdn| rdn.iter().map(attribute_parts).collect())
            .collect();
        let rfc2253 = rdns
            .iter()
            .rev()
            .map(|rdn| {
                // OpenSSL's RFC 2253 output reverses the attributes inside a multi-valued RDN
                // too; following it keeps DNs comparable with what grid tools print.
                rdn.iter()
                    .rev()
                    .map(|(kind, value)| format!("{kind}={}", escape_rfc2253(value)))
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect::<Vec<_>>()
            .join(",");
        let openssl = rdns
            .iter()
            .map(|rdn| {
                let joined = rdn
                    .iter()
                    .map(|(kind, value)| format!("{kind}={value}"))
                    .collect::<Vec<_>>()
                    .join("+");
                format!("/{joined}")
            })
            .collect();
        Self { rfc2253, openssl }
    }
}

/// OpenSSL's short names for the attribute types found in grid DNs.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.42" => "GN",
        "2.5.4.46" => "dnQualifier",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

fn attribute_parts(attribute: &AttributeTypeAndValue<'_>) -> (String, String) {
    let oid = attribute.attr_type().to_id_string();
    let kind = short_name(&oid).map_or(oid, str::to_string);
    (kind, attribute_value(attribute))
}

/// Decodes the directory-string types; anything else is shown as RFC 2253 `#hex`.
fn attribute_value(attribute: &AttributeTypeAndValue<'_>) -> String {
    let value = attribute.attr_value();
    let bytes = value.data;
    let decoded = match value.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::NumericString
        | Tag::VisibleString => std::str::from_utf8(bytes).ok().map(str::to_string),
        // T61String in grid certificates is Latin-1 in practice.
        Tag::T61String => Some(bytes.iter().map(|&byte| char::from(byte)).collect()),
        Tag::BmpString => decode_utf16_be(bytes),
        Tag::UniversalString => decode_utf32_be(bytes),
        _ => None,
    };
    decoded.unwrap_or_else(|| {
        let mut hex = String::from("#");
        for byte in bytes {
            let _ = write!(hex, "{byte:02x}");
        }
        hex
    })
}

fn decode_utf16_be(bytes: &[u8]) -> Option<String> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
        .collect();
    String::from_utf16(&units).ok()
}

fn decode_utf32_be(bytes: &[u8]) -> Option<String> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    bytes
        .chunks_exact(4)
        .map(|quad| char::from_u32(u32::from_be_bytes([quad[0], quad[1], quad[2], quad[3]])))
        .collect()
}

/// RFC 2253 § 2.4 escaping.
fn escape_rfc2253(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (position, character) in value.chars().enumerate() {
        let needs_escape = matches!(character, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (position == 0 && matches!(character, '#' | ' '))
            || (position == last && character == ' ');
        if needs_escape {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_special_characters() {
        assert_eq!(escape_rfc2253("Doe, Jane"), "Doe\\, Jane");
        assert_eq!(escape_rfc2253("#1 "), "\\#1\\ ");
        assert_eq!(escape_rfc2253("a+b=c"), "a\\+b=c");
    }

    #[test]
    fn decodes_bmp_strings() {
        assert_eq!(decode_utf16_be(&[0, b'J', 0, 0xe9]).as_deref(), Some("Jé"));
        assert_eq!(decode_utf16_be(&[0]), None);
    }
}
