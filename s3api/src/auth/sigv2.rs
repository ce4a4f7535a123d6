//! AWS Signature Version 2 (HMAC-SHA1): the `Authorization: AWS AK:sig` header and the
//! `AWSAccessKeyId`/`Signature`/`Expires` query form. Still used by s3cmd `--signature-v2` and
//! older tools.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use http::request::Parts;
use sha1::Sha1;

use super::canonical::{decode_component, find_param, raw_params, RawParam};
use super::timestamp::{check_skew, format_iso8601, parse_http_date};
use super::{
    lookup_credential, signature_mismatch, signatures_match, Authenticated, CredentialProvider,
    Identity, PayloadCheck, SecretKey,
};
use crate::error::{S3Error, S3ErrorCode, S3Result};

/// The query parameters S3 includes in the SigV2 resource, sorted by name.
const SIGNED_SUBRESOURCES: &[&str] = &[
    "acl",
    "cors",
    "delete",
    "lifecycle",
    "location",
    "logging",
    "notification",
    "partNumber",
    "policy",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// The CanonicalizedResource: `/bucket` for virtual-host requests, the raw path, then the
/// signed sub-resources as `?a&b=v` (values decoded, as clients sign them).
pub(crate) fn canonical_resource(
    raw_path: &str,
    raw_query: Option<&str>,
    vhost_bucket: Option<&str>,
) -> String {
    let mut out = String::new();
    if let Some(bucket) = vhost_bucket {
        out.push('/');
        out.push_str(bucket);
    }
    out.push_str(if raw_path.is_empty() { "/" } else { raw_path });
    let mut subresources: Vec<(String, Option<String>)> = raw_params(raw_query)
        .iter()
        .filter_map(|p| {
            let name = String::from_utf8_lossy(&decode_component(p.name, false)).into_owned();
            if !SIGNED_SUBRESOURCES.contains(&name.as_str()) {
                return None;
            }
            let value = p
                .value
                .map(|v| String::from_utf8_lossy(&decode_component(v, false)).into_owned());
            Some((name, value))
        })
        .collect();
    subresources.sort();
    for (i, (name, value)) in subresources.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(name);
        if let Some(value) = value {
            out.push('=');
            out.push_str(value);
        }
    }
    out
}

/// The CanonicalizedAmzHeaders: every `x-amz-*` header as `name:value\n`, sorted, several
/// values joined by `,`.
fn canonical_amz_headers(parts: &Parts) -> String {
    let mut amz: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, value) in &parts.headers {
        if name.as_str().starts_with("x-amz-") {
            let value = String::from_utf8_lossy(value.as_bytes()).trim().to_string();
            amz.entry(name.as_str()).or_default().push(value);
        }
    }
    let mut out = String::new();
    for (name, values) in amz {
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out
}

fn header_text(parts: &Parts, name: &str) -> String {
    parts
        .headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
        .unwrap_or_default()
}

/// The SigV2 StringToSign. `date_line` is the Date header (empty when `x-amz-date` is sent),
/// or the `Expires` value for query authentication.
pub(crate) fn string_to_sign(parts: &Parts, vhost_bucket: Option<&str>, date_line: &str) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}{}",
        parts.method.as_str(),
        header_text(parts, "content-md5"),
        header_text(parts, "content-type"),
        date_line,
        canonical_amz_headers(parts),
        canonical_resource(parts.uri.path(), parts.uri.query(), vhost_bucket),
    )
}

/// Base64 HMAC-SHA1 of a string to sign.
pub(crate) fn sign(secret: &SecretKey, string_to_sign: &str) -> String {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn check_signature(
    parts: &Parts,
    vhost_bucket: Option<&str>,
    date_line: &str,
    access_key: &str,
    provided: &str,
    creds: &dyn CredentialProvider,
) -> S3Result<Authenticated> {
    let credential = lookup_credential(creds, parts, access_key)?;
    let to_sign = string_to_sign(parts, vhost_bucket, date_line);
    let expected = sign(&credential.secret, &to_sign);
    if !signatures_match(&expected, provided) {
        return Err(signature_mismatch(access_key, &to_sign, provided));
    }
    Ok(Authenticated {
        identity: Identity::User {
            access_key: credential.access_key,
            user: credential.user,
        },
        payload: PayloadCheck::Unsigned,
    })
}

/// Verifies `Authorization: AWS AK:sig`; `credentials` is the part after `AWS `.
pub(crate) fn verify_header(
    parts: &Parts,
    credentials: &str,
    vhost_bucket: Option<&str>,
    creds: &dyn CredentialProvider,
    now: SystemTime,
) -> S3Result<Authenticated> {
    let Some((access_key, signature)) = credentials
        .trim()
        .split_once(':')
        .filter(|(ak, sig)| !ak.is_empty() && !sig.is_empty())
    else {
        return Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
        )
        .with_detail("ArgumentName", "Authorization")
        .with_detail("ArgumentValue", format!("AWS {credentials}")));
    };
    let amz_date = parts.headers.get("x-amz-date");
    let date_header = header_text(parts, "date");
    let signed_time = match amz_date {
        Some(value) => value.to_str().ok().and_then(parse_http_date),
        None => parse_http_date(&date_header),
    };
    let Some(signed_time) = signed_time else {
        return Err(S3Error::new(
            S3ErrorCode::AccessDenied,
            "AWS authentication requires a valid Date or x-amz-date header",
        ));
    };
    check_skew(signed_time, now)?;
    // With x-amz-date the Date line is empty: the time is signed among the amz headers.
    let date_line = if amz_date.is_some() { "" } else { &date_header };
    check_signature(parts, vhost_bucket, date_line, access_key, signature, creds)
}

/// Verifies `?AWSAccessKeyId=AK&Expires=secs&Signature=sig`.
pub(crate) fn verify_query(
    parts: &Parts,
    params: &[RawParam<'_>],
    vhost_bucket: Option<&str>,
    creds: &dyn CredentialProvider,
    now: SystemTime,
) -> S3Result<Authenticated> {
    // `+` is literal here: it is common in base64 signatures that clients forgot to escape.
    let get = |name: &str| find_param(params, name, false);
    let (Some(access_key), Some(signature), Some(expires)) =
        (get("AWSAccessKeyId"), get("Signature"), get("Expires"))
    else {
        return Err(S3Error::new(
            S3ErrorCode::AccessDenied,
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters",
        ));
    };
    let expiry = expires
        .parse::<u64>()
        .ok()
        .and_then(|secs| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs)))
        .ok_or_else(|| {
            S3Error::new(
                S3ErrorCode::AccessDenied,
                format!("Invalid date (should be seconds since epoch): {expires}"),
            )
        })?;
    if now > expiry {
        return Err(
            S3Error::new(S3ErrorCode::AccessDenied, "Request has expired")
                .with_detail("Expires", format_iso8601(expiry))
                .with_detail("ServerTime", format_iso8601(now)),
        );
    }
    check_signature(
        parts,
        vhost_bucket,
        &expires,
        &access_key,
        &signature,
        creds,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
#[path = "sigv2_tests.rs"]
mod tests;
