//! The fields of a POST form and the signature over its policy.

use subtle::ConstantTimeEq;

use super::PostPolicy;
use crate::auth::{resolve_credential, signing_key, Credential, CredentialProvider};
use crate::error::{S3Error, S3ErrorCode, S3Result};

/// The only SigV4 algorithm a form may name.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The non-file fields of a POST form: names lower-cased (S3 compares them without case),
/// values as sent, in the order sent. A repeated field keeps its first value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormFields(Vec<(String, String)>);

impl FormFields {
    /// Adds a field unless one of the same name is already there.
    pub fn insert(&mut self, name: &str, value: String) {
        let name = name.to_ascii_lowercase();
        if self.get(&name).is_none() {
            self.0.push((name, value));
        }
    }

    /// The value of a field (`name` lower-case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every field name, in the order sent.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }

    /// Every field, in the order sent.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// A verified form: whose key signed it and the policy it signed.
#[derive(Debug, Clone)]
pub struct FormSigner {
    /// The signing key's credential (its user acts for the upload).
    pub credential: Credential,
    /// The signed policy, decoded (its conditions are checked by the caller).
    pub policy: PostPolicy,
}

/// Verifies the form's signature over its `policy` field: SigV4 (`x-amz-algorithm`,
/// `x-amz-credential`, `x-amz-date`, `x-amz-signature`) or SigV2 (`AWSAccessKeyId`,
/// `signature`), with `x-amz-security-token` for temporary keys. `None` for an unsigned
/// form (anonymous upload), which may not carry a policy.
pub fn verify_signature(
    fields: &FormFields,
    creds: &dyn CredentialProvider,
) -> S3Result<Option<FormSigner>> {
    let v4 = fields.get("x-amz-signature").is_some() || fields.get("x-amz-algorithm").is_some();
    let v2 = fields.get("signature").is_some() || fields.get("awsaccesskeyid").is_some();
    if !v4 && !v2 {
        if fields.get("policy").is_some() {
            return Err(missing_field("AWSAccessKeyId"));
        }
        return Ok(None);
    }
    let encoded_policy = fields
        .get("policy")
        .ok_or_else(|| missing_field("policy"))?;
    let token = fields.get("x-amz-security-token");
    let credential = if v4 {
        verify_v4(fields, encoded_policy, creds, token)?
    } else {
        verify_v2(fields, encoded_policy, creds, token)?
    };
    let policy = PostPolicy::parse(encoded_policy)?;
    Ok(Some(FormSigner { credential, policy }))
}

/// SigV4: hex HMAC-SHA256 of the base64 policy under the scope's signing key.
fn verify_v4(
    fields: &FormFields,
    encoded_policy: &str,
    creds: &dyn CredentialProvider,
    token: Option<&str>,
) -> S3Result<Credential> {
    let algorithm = fields
        .get("x-amz-algorithm")
        .ok_or_else(|| missing_field("x-amz-algorithm"))?;
    if algorithm != ALGORITHM {
        return Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            format!("POST form x-amz-algorithm must be {ALGORITHM}"),
        )
        .with_detail("ArgumentName", "x-amz-algorithm")
        .with_detail("ArgumentValue", algorithm));
    }
    let scope = fields
        .get("x-amz-credential")
        .ok_or_else(|| missing_field("x-amz-credential"))?;
    let date = fields
        .get("x-amz-date")
        .ok_or_else(|| missing_field("x-amz-date"))?;
    let provided = fields
        .get("x-amz-signature")
        .ok_or_else(|| missing_field("x-amz-signature"))?;
    let (access_key, scope_date, region, service) = parse_scope(scope)?;
    if !date.starts_with(scope_date) {
        return Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            "The x-amz-date does not match the date of the credential scope",
        )
        .with_detail("ArgumentName", "x-amz-date")
        .with_detail("ArgumentValue", date));
    }
    let credential = resolve_credential(creds, access_key, token)?;
    let key = signing_key(&credential.secret, scope_date, region, service);
    let expected = crate::auth::sigv4::sign_string(&key, encoded_policy);
    check(&expected, &provided.to_ascii_lowercase())?;
    Ok(credential)
}

/// SigV2: base64 HMAC-SHA1 of the base64 policy under the secret.
fn verify_v2(
    fields: &FormFields,
    encoded_policy: &str,
    creds: &dyn CredentialProvider,
    token: Option<&str>,
) -> S3Result<Credential> {
    let access_key = fields
        .get("awsaccesskeyid")
        .ok_or_else(|| missing_field("AWSAccessKeyId"))?;
    let provided = fields
        .get("signature")
        .ok_or_else(|| missing_field("Signature"))?;
    let credential = resolve_credential(creds, access_key, token)?;
    let expected = crate::auth::sigv2::sign(&credential.secret, encoded_policy);
    check(&expected, provided)?;
    Ok(credential)
}

/// `AKID/yyyyMMdd/region/s3/aws4_request` → its parts (the key id may not contain `/`).
fn parse_scope(scope: &str) -> S3Result<(&str, &str, &str, &str)> {
    let malformed = || {
        S3Error::new(
            S3ErrorCode::InvalidArgument,
            "The x-amz-credential is mal-formed; expecting \
             \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".",
        )
        .with_detail("ArgumentName", "x-amz-credential")
        .with_detail("ArgumentValue", scope)
    };
    let parts: Vec<&str> = scope.split('/').collect();
    match parts.as_slice() {
        [key, date, region, "s3", "aws4_request"]
            if !key.is_empty()
                && !region.is_empty()
                && date.len() == 8
                && date.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok((key, date, region, "s3"))
        }
        _ => Err(malformed()),
    }
}

/// Compares signatures in constant time.
fn check(expected: &str, provided: &str) -> S3Result<()> {
    if bool::from(expected.as_bytes().ct_eq(provided.as_bytes())) {
        Ok(())
    } else {
        Err(S3Error::from(S3ErrorCode::SignatureDoesNotMatch))
    }
}

/// AWS's complaint about a missing form field.
pub(crate) fn missing_field(name: &str) -> S3Error {
    S3Error::new(
        S3ErrorCode::InvalidArgument,
        format!(
            "Bucket POST must contain a field named '{name}'.  If it is specified, please check \
             the order of the fields."
        ),
    )
    .with_detail("ArgumentName", name)
    .with_detail("ArgumentValue", "")
}
