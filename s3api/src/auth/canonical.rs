//! Canonical forms shared by the SigV4 verifier and signer: URI encoding, query parameters,
//! header values and the canonical request itself.

use http::HeaderMap;
use percent_encoding::{percent_decode, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

/// Everything but the RFC 3986 unreserved characters is escaped in SigV4.
const SIGV4_ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// As [`SIGV4_ESCAPED`], but `/` stays literal (object key paths).
const SIGV4_ESCAPED_KEEP_SLASH: &AsciiSet = &SIGV4_ESCAPED.remove(b'/');

/// The payload hash that tells the server the body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Percent-encodes `s` the SigV4 way: everything except `A-Z a-z 0-9 - _ . ~` becomes `%XX`
/// (upper-case hex, UTF-8 bytes). With `encode_slash` false, `/` is kept, as in object paths.
pub fn uri_encode(s: &str, encode_slash: bool) -> String {
    uri_encode_bytes(s.as_bytes(), encode_slash)
}

/// [`uri_encode`] over raw bytes (decoded query components need not be UTF-8).
pub(crate) fn uri_encode_bytes(bytes: &[u8], encode_slash: bool) -> String {
    let set = if encode_slash {
        SIGV4_ESCAPED
    } else {
        SIGV4_ESCAPED_KEEP_SLASH
    };
    percent_encode(bytes, set).to_string()
}

/// Decodes `%XX` escapes; with `plus_as_space`, `+` means a space (form encoding, which S3
/// applies to query strings). Malformed escapes are kept literally.
pub(crate) fn decode_component(raw: &str, plus_as_space: bool) -> Vec<u8> {
    if plus_as_space && raw.contains('+') {
        let spaced = raw.replace('+', " ");
        return percent_decode(spaced.as_bytes()).collect();
    }
    percent_decode(raw.as_bytes()).collect()
}

/// One `name[=value]` segment of a query string, still percent-encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawParam<'a> {
    pub name: &'a str,
    /// `None` when the segment had no `=` (`?acl`).
    pub value: Option<&'a str>,
}

/// Splits a raw query string into its segments, skipping empty ones (`a=1&&b=2`).
pub(crate) fn raw_params(query: Option<&str>) -> Vec<RawParam<'_>> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| match segment.split_once('=') {
            Some((name, value)) => RawParam {
                name,
                value: Some(value),
            },
            None => RawParam {
                name: segment,
                value: None,
            },
        })
        .collect()
}

/// The decoded value of the first parameter whose decoded name is `name` (empty when it has
/// no value), or `None` when absent.
pub(crate) fn find_param(
    params: &[RawParam<'_>],
    name: &str,
    plus_as_space: bool,
) -> Option<String> {
    params
        .iter()
        .find(|p| decode_component(p.name, plus_as_space) == name.as_bytes())
        .map(|p| {
            let value = decode_component(p.value.unwrap_or(""), plus_as_space);
            String::from_utf8_lossy(&value).into_owned()
        })
}

/// Whether a parameter with this decoded name is present.
pub(crate) fn has_param(params: &[RawParam<'_>], name: &str) -> bool {
    params
        .iter()
        .any(|p| decode_component(p.name, true) == name.as_bytes())
}

/// The SigV4 canonical query string: every parameter but `X-Amz-Signature`, each name and
/// value decoded and re-encoded, sorted by name then value, `name=` for empty values.
pub(crate) fn canonical_query(params: &[RawParam<'_>]) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .filter(|p| decode_component(p.name, true) != b"X-Amz-Signature")
        .map(|p| {
            let name = uri_encode_bytes(&decode_component(p.name, true), true);
            let value = uri_encode_bytes(&decode_component(p.value.unwrap_or(""), true), true);
            (name, value)
        })
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// The canonical value of a header: each value trimmed, inner runs of whitespace collapsed to
/// one space, several values joined by `,`. `host` falls back to `authority` (HTTP/2 sends
/// `:authority` instead of a Host header). A missing header canonicalises to empty.
pub(crate) fn canonical_header_value(
    headers: &HeaderMap,
    name: &str,
    authority: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut values = headers.get_all(name).iter().peekable();
    if values.peek().is_none() && name == "host" {
        if let Some(authority) = authority {
            out.extend_from_slice(authority.as_bytes());
        }
        return out;
    }
    for (i, value) in values.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let words = value
            .as_bytes()
            .split(|b| *b == b' ' || *b == b'\t')
            .filter(|word| !word.is_empty());
        for (j, word) in words.enumerate() {
            if j > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(word);
        }
    }
    out
}

/// The parts of a request that a SigV4 signature covers.
pub(crate) struct CanonicalInput<'a> {
    pub method: &'a str,
    /// The URI path as sent (already percent-encoded by the client; S3 does not re-encode).
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    /// Fallback for `host` when there is no Host header.
    pub authority: Option<&'a str>,
    /// Lower-case signed header names, in the order the client listed them.
    pub signed_headers: &'a [&'a str],
    pub payload_hash: &'a str,
}

/// Builds the canonical request bytes (bytes, since header values need not be UTF-8).
pub(crate) fn canonical_request(input: &CanonicalInput<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(input.method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(
        if input.path.is_empty() {
            "/"
        } else {
            input.path
        }
        .as_bytes(),
    );
    out.push(b'\n');
    out.extend_from_slice(input.query.as_bytes());
    out.push(b'\n');
    for name in input.signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        out.extend_from_slice(&canonical_header_value(
            input.headers,
            name,
            input.authority,
        ));
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(input.signed_headers.join(";").as_bytes());
    out.push(b'\n');
    out.extend_from_slice(input.payload_hash.as_bytes());
    out
}

/// Lower-case hex SHA-256 of `data`.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn uri_encode_keeps_only_unreserved_characters() {
        assert_eq!(uri_encode("a-b_c.d~e", true), "a-b_c.d~e");
        assert_eq!(uri_encode("a b+c/d", true), "a%20b%2Bc%2Fd");
        assert_eq!(uri_encode("a b+c/d", false), "a%20b%2Bc/d");
        assert_eq!(uri_encode("ü$*", true), "%C3%BC%24%2A");
    }

    #[test]
    fn canonical_query_decodes_reencodes_and_sorts() {
        let params = raw_params(Some(
            "prefix=J&max-keys=2&acl&b=x%2fy&a=c+d&&X-Amz-Signature=ff",
        ));
        assert_eq!(
            canonical_query(&params),
            "a=c%20d&acl=&b=x%2Fy&max-keys=2&prefix=J"
        );
        assert_eq!(canonical_query(&raw_params(None)), "");
        let same_name = raw_params(Some("k=b&k=a"));
        assert_eq!(canonical_query(&same_name), "k=a&k=b");
    }

    #[test]
    fn params_are_found_by_decoded_name() {
        let params = raw_params(Some("X-Amz-Credential=AK%2F2013&flag&p=a+b"));
        assert_eq!(
            find_param(&params, "X-Amz-Credential", true).as_deref(),
            Some("AK/2013")
        );
        assert_eq!(find_param(&params, "flag", true).as_deref(), Some(""));
        assert_eq!(find_param(&params, "p", true).as_deref(), Some("a b"));
        assert_eq!(find_param(&params, "p", false).as_deref(), Some("a+b"));
        assert!(find_param(&params, "missing", true).is_none());
        assert!(has_param(&params, "flag"));
    }

    #[test]
    fn header_values_are_trimmed_collapsed_and_joined() {
        let mut headers = HeaderMap::new();
        headers.append("x-amz-meta-a", "  one   two  ".parse().unwrap());
        headers.append("x-amz-meta-a", "three".parse().unwrap());
        assert_eq!(
            canonical_header_value(&headers, "x-amz-meta-a", None),
            b"one two,three"
        );
        assert_eq!(
            canonical_header_value(&headers, "host", Some("h:9000")),
            b"h:9000"
        );
        assert_eq!(canonical_header_value(&headers, "range", None), b"");
    }
}
