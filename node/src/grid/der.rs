//! Just enough DER reading to reach the raw bytes webpki's signature API and the proxy rules
//! need (x509-parser decodes values but hides the encodings that must be compared bytewise).

use thiserror::Error;

/// DER tag of a SEQUENCE.
pub const TAG_SEQUENCE: u8 = 0x30;
/// DER tag of an INTEGER.
pub const TAG_INTEGER: u8 = 0x02;
/// DER tag of a BIT STRING.
pub const TAG_BIT_STRING: u8 = 0x03;
/// DER tag of an OCTET STRING.
pub const TAG_OCTET_STRING: u8 = 0x04;
/// DER tag of an OBJECT IDENTIFIER.
pub const TAG_OID: u8 = 0x06;
/// DER tag of an explicitly tagged `[1]` (context-specific, constructed).
pub const TAG_CONTEXT_1: u8 = 0xa1;

/// Why a DER encoding could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DerError {
    /// The input ended inside a tag, a length or a value.
    #[error("truncated DER")]
    Truncated,
    /// High tag numbers and indefinite or oversized lengths never occur in the structures read here.
    #[error("unsupported DER tag or length encoding")]
    Unsupported,
    /// A different element was expected at this position.
    #[error("expected DER tag {expected:#04x}, found {found:#04x}")]
    UnexpectedTag {
        /// The tag the structure requires.
        expected: u8,
        /// The tag present.
        found: u8,
    },
    /// Bytes followed the element that should have ended the input.
    #[error("trailing data after DER element")]
    TrailingData,
}

/// One tag-length-value element.
#[derive(Debug, Clone, Copy)]
pub struct Element<'a> {
    /// The tag byte.
    pub tag: u8,
    /// The value bytes (without tag and length).
    pub value: &'a [u8],
    /// The whole encoding (tag, length and value).
    pub encoded: &'a [u8],
}

/// Reads the element at the start of `input` and returns it with the rest of the input.
pub fn read_element(input: &[u8]) -> Result<(Element<'_>, &[u8]), DerError> {
    let (&tag, after_tag) = input.split_first().ok_or(DerError::Truncated)?;
    if tag & 0x1f == 0x1f {
        return Err(DerError::Unsupported);
    }
    let (&first, mut rest) = after_tag.split_first().ok_or(DerError::Truncated)?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        // Four length bytes address 4 GiB, far beyond any certificate.
        if count == 0 || count > 4 || rest.len() < count {
            return Err(DerError::Unsupported);
        }
        let (length_bytes, after_length) = rest.split_at(count);
        rest = after_length;
        length_bytes
            .iter()
            .fold(0usize, |acc, &byte| (acc << 8) | usize::from(byte))
    };
    if rest.len() < length {
        return Err(DerError::Truncated);
    }
    let (value, remaining) = rest.split_at(length);
    let header_len = input.len() - rest.len();
    let element = Element {
        tag,
        value,
        encoded: &input[..header_len + length],
    };
    Ok((element, remaining))
}

/// Reads exactly one element with the given tag, rejecting anything after it.
pub fn read_single(input: &[u8], expected: u8) -> Result<Element<'_>, DerError> {
    let (element, rest) = read_element(input)?;
    if element.tag != expected {
        return Err(DerError::UnexpectedTag {
            expected,
            found: element.tag,
        });
    }
    if !rest.is_empty() {
        return Err(DerError::TrailingData);
    }
    Ok(element)
}

/// Splits the value of a constructed element into its elements.
pub fn elements(mut input: &[u8]) -> Result<Vec<Element<'_>>, DerError> {
    let mut found = Vec::new();
    while !input.is_empty() {
        let (element, rest) = read_element(input)?;
        found.push(element);
        input = rest;
    }
    Ok(found)
}

/// The three parts of a signed X.509 structure, as bytes ready for signature verification.
#[derive(Debug)]
pub struct SignedParts<'a> {
    /// The whole `tbsCertificate` encoding: the signed message.
    pub tbs: &'a [u8],
    /// The value of the outer `signatureAlgorithm` AlgorithmIdentifier (without its header),
    /// the form webpki's `signature_alg_id()` uses.
    pub signature_algorithm: &'a [u8],
    /// The signature bytes (the BIT STRING without its unused-bits byte).
    pub signature: &'a [u8],
}

/// Splits a certificate into what was signed, how, and the signature.
pub fn signed_parts(certificate: &[u8]) -> Result<SignedParts<'_>, DerError> {
    let outer = read_single(certificate, TAG_SEQUENCE)?;
    let parts = elements(outer.value)?;
    let [tbs, algorithm, signature] = parts.as_slice() else {
        return Err(DerError::Unsupported);
    };
    expect_tag(tbs, TAG_SEQUENCE)?;
    expect_tag(algorithm, TAG_SEQUENCE)?;
    Ok(SignedParts {
        tbs: tbs.encoded,
        signature_algorithm: algorithm.value,
        signature: bit_string_bytes(signature)?,
    })
}

/// A SubjectPublicKeyInfo split the way webpki's algorithms consume it.
#[derive(Debug)]
pub struct PublicKeyParts<'a> {
    /// The value of the key's AlgorithmIdentifier (without its header).
    pub algorithm: &'a [u8],
    /// The `subjectPublicKey` bytes.
    pub key: &'a [u8],
}

/// Splits a DER SubjectPublicKeyInfo.
pub fn public_key_parts(spki: &[u8]) -> Result<PublicKeyParts<'_>, DerError> {
    let outer = read_single(spki, TAG_SEQUENCE)?;
    let parts = elements(outer.value)?;
    let [algorithm, key] = parts.as_slice() else {
        return Err(DerError::Unsupported);
    };
    expect_tag(algorithm, TAG_SEQUENCE)?;
    Ok(PublicKeyParts {
        algorithm: algorithm.value,
        key: bit_string_bytes(key)?,
    })
}

/// The RDN encodings (each a whole SET) of a DER Name, in order.
pub fn name_rdns(name: &[u8]) -> Result<Vec<&[u8]>, DerError> {
    let outer = read_single(name, TAG_SEQUENCE)?;
    Ok(elements(outer.value)?
        .into_iter()
        .map(|rdn| rdn.encoded)
        .collect())
}

fn expect_tag(element: &Element<'_>, expected: u8) -> Result<(), DerError> {
    if element.tag == expected {
        Ok(())
    } else {
        Err(DerError::UnexpectedTag {
            expected,
            found: element.tag,
        })
    }
}

fn bit_string_bytes<'a>(element: &Element<'a>) -> Result<&'a [u8], DerError> {
    expect_tag(element, TAG_BIT_STRING)?;
    match element.value.split_first() {
        // Keys and signatures are whole bytes: a non-zero unused-bits count is malformed.
        Some((0, bytes)) => Ok(bytes),
        _ => Err(DerError::Unsupported),
    }
}

/// Decodes a small non-negative INTEGER (path-length constraints).
pub fn small_unsigned(element: &Element<'_>) -> Result<u32, DerError> {
    expect_tag(element, TAG_INTEGER)?;
    let bytes = element.value;
    if bytes.is_empty() || bytes[0] & 0x80 != 0 {
        return Err(DerError::Unsupported);
    }
    let significant = bytes.iter().skip_while(|&&byte| byte == 0).count();
    if significant > 4 {
        return Err(DerError::Unsupported);
    }
    Ok(bytes
        .iter()
        .fold(0u32, |acc, &byte| (acc << 8) | u32::from(byte)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let long_value = vec![0u8; 200];
        let mut encoded = vec![TAG_OCTET_STRING, 0x81, 200];
        encoded.extend_from_slice(&long_value);
        encoded.extend_from_slice(&[TAG_INTEGER, 1, 5]);
        let (first, rest) = read_element(&encoded).unwrap();
        assert_eq!(first.value.len(), 200);
        assert_eq!(first.encoded.len(), 203);
        let second = read_single(rest, TAG_INTEGER).unwrap();
        assert_eq!(small_unsigned(&second).unwrap(), 5);
    }

    #[test]
    fn rejects_truncation_and_trailing_bytes() {
        assert_eq!(
            read_element(&[TAG_SEQUENCE, 3, 1]).unwrap_err(),
            DerError::Truncated
        );
        assert_eq!(
            read_single(&[TAG_INTEGER, 1, 1, 0], TAG_INTEGER).unwrap_err(),
            DerError::TrailingData
        );
        let negative = read_single(&[TAG_INTEGER, 1, 0xff], TAG_INTEGER).unwrap();
        assert_eq!(
            small_unsigned(&negative).unwrap_err(),
            DerError::Unsupported
        );
    }
}
