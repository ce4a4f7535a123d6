//! Browser POST uploads: the form's fields, its signature and its policy document.
//!
//! A POST Object form ([`FormFields`]) carries a base64 JSON policy ([`PostPolicy`]) signed by
//! the uploader's secret ([`verify_signature`]: SigV4 `x-amz-signature`, or SigV2 `signature`
//! with `AWSAccessKeyId`). The policy says until when the form is valid and which values its
//! fields may take; every field the form sends, except the signature, the policy, the file
//! and `x-ignore-*` fields, must be named by one of its conditions. The handler
//! (`handlers::post_object`) checks the fields before the file streams in, and the
//! `content-length-range` while it streams.

mod form;
#[cfg(test)]
mod tests;

use base64::Engine;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub(crate) use form::missing_field;
pub use form::{verify_signature, FormFields, FormSigner};

use crate::error::{S3Error, S3ErrorCode, S3Result};

/// Fields no condition needs to name, as in AWS: the signature (both versions), the policy
/// itself and the file. `x-ignore-*` fields are exempt too (see [`is_exempt`]).
const EXEMPT_FIELDS: [&str; 5] = [
    "x-amz-signature",
    "signature",
    "awsaccesskeyid",
    "policy",
    "file",
];

/// Whether a field is exempt from needing a condition.
fn is_exempt(name: &str) -> bool {
    EXEMPT_FIELDS.contains(&name) || name.starts_with("x-ignore-")
}

/// One condition of a policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The field (lower-case, without `$`) must equal the value.
    Eq { field: String, value: String },
    /// The field must start with the prefix (an empty prefix allows anything).
    StartsWith { field: String, prefix: String },
    /// The file's size must lie in `min..=max` bytes.
    ContentLengthRange { min: u64, max: u64 },
}

impl Condition {
    /// The condition as AWS quotes it in refusals: `["eq", "$key", "a"]`.
    fn describe(&self) -> String {
        let quote = |s: &str| Value::String(s.to_owned()).to_string();
        match self {
            Condition::Eq { field, value } => {
                format!(
                    "[\"eq\", {}, {}]",
                    quote(&format!("${field}")),
                    quote(value)
                )
            }
            Condition::StartsWith { field, prefix } => format!(
                "[\"starts-with\", {}, {}]",
                quote(&format!("${field}")),
                quote(prefix)
            ),
            Condition::ContentLengthRange { min, max } => {
                format!("[\"content-length-range\", {min}, {max}]")
            }
        }
    }

    /// The field a value condition names.
    fn field(&self) -> Option<&str> {
        match self {
            Condition::Eq { field, .. } | Condition::StartsWith { field, .. } => Some(field),
            Condition::ContentLengthRange { .. } => None,
        }
    }
}

/// A decoded POST policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostPolicy {
    /// After this instant the form is refused.
    pub expiration: OffsetDateTime,
    /// Every condition, in document order.
    pub conditions: Vec<Condition>,
}

impl PostPolicy {
    /// Decodes the form's `policy` field (base64 of a JSON document). InvalidPolicyDocument
    /// for anything unreadable: bad base64, bad JSON, no or a malformed expiration, a
    /// condition of an unknown shape.
    pub fn parse(encoded: &str) -> S3Result<PostPolicy> {
        let json = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| invalid("Invalid Policy: Invalid Base64 encoding."))?;
        let document: Value =
            serde_json::from_slice(&json).map_err(|_| invalid("Invalid Policy: Invalid JSON."))?;
        let expiration = document
            .get("expiration")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("Invalid Policy: Policy missing expiration."))?;
        let expiration = OffsetDateTime::parse(expiration, &Rfc3339)
            .map_err(|_| invalid("Invalid Policy: Invalid 'expiration' value."))?;
        let listed = document
            .get("conditions")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("Invalid Policy: Policy missing conditions."))?;
        let mut conditions = Vec::new();
        for condition in listed {
            parse_condition(condition, &mut conditions)?;
        }
        Ok(PostPolicy {
            expiration,
            conditions,
        })
    }

    /// AccessDenied "Policy expired." once `now` is past the expiration.
    pub fn check_expiration(&self, now: OffsetDateTime) -> S3Result<()> {
        if now > self.expiration {
            return Err(denied("Invalid according to Policy: Policy expired."));
        }
        Ok(())
    }

    /// Checks every value condition against the form (`bucket` is matched against the
    /// target bucket), then that every non-exempt field is named by a condition.
    pub fn check_fields(&self, fields: &FormFields, bucket: &str) -> S3Result<()> {
        for condition in &self.conditions {
            let Some(field) = condition.field() else {
                continue;
            };
            let value = if field == "bucket" {
                Some(bucket)
            } else {
                fields.get(field)
            };
            let holds = match (condition, value) {
                (
                    Condition::Eq {
                        value: expected, ..
                    },
                    Some(value),
                ) => value == expected,
                (Condition::StartsWith { prefix, .. }, Some(value)) => value.starts_with(prefix),
                (Condition::StartsWith { prefix, .. }, None) => prefix.is_empty(),
                _ => false,
            };
            if !holds {
                return Err(denied(&format!(
                    "Invalid according to Policy: Policy Condition failed: {}",
                    condition.describe()
                )));
            }
        }
        let uncovered: Vec<&str> = fields
            .names()
            .filter(|name| !is_exempt(name))
            .filter(|name| !self.conditions.iter().any(|c| c.field() == Some(name)))
            .collect();
        if !uncovered.is_empty() {
            return Err(denied(&format!(
                "Invalid according to Policy: Extra input fields: {}",
                uncovered.join(", ")
            )));
        }
        Ok(())
    }

    /// The allowed file sizes, if the policy bounds them (the tightest of several ranges).
    pub fn content_length_range(&self) -> Option<(u64, u64)> {
        self.conditions
            .iter()
            .filter_map(|c| match c {
                Condition::ContentLengthRange { min, max } => Some((*min, *max)),
                _ => None,
            })
            .reduce(|(min_a, max_a), (min_b, max_b)| (min_a.max(min_b), max_a.min(max_b)))
    }
}

/// Reads one entry of `conditions`: `{"field": "value", …}` (each pair an exact match) or an
/// array `["eq" | "starts-with", "$field", "value"]` / `["content-length-range", min, max]`.
fn parse_condition(condition: &Value, out: &mut Vec<Condition>) -> S3Result<()> {
    let bad = || invalid(&format!("Invalid Policy: Invalid Condition: {condition}"));
    match condition {
        Value::Object(pairs) => {
            for (field, value) in pairs {
                let value = value.as_str().ok_or_else(bad)?;
                out.push(Condition::Eq {
                    field: field_name(field),
                    value: value.to_owned(),
                });
            }
            Ok(())
        }
        Value::Array(items) if items.len() == 3 => {
            let operator = items[0].as_str().ok_or_else(bad)?.to_ascii_lowercase();
            if operator == "content-length-range" {
                let min = size_value(&items[1]).ok_or_else(bad)?;
                let max = size_value(&items[2]).ok_or_else(bad)?;
                out.push(Condition::ContentLengthRange { min, max });
                return Ok(());
            }
            let field = items[1].as_str().ok_or_else(bad)?;
            let field = field.strip_prefix('$').ok_or_else(bad)?;
            let value = items[2].as_str().ok_or_else(bad)?.to_owned();
            out.push(match operator.as_str() {
                "eq" => Condition::Eq {
                    field: field_name(field),
                    value,
                },
                "starts-with" => Condition::StartsWith {
                    field: field_name(field),
                    prefix: value,
                },
                _ => return Err(bad()),
            });
            Ok(())
        }
        _ => Err(bad()),
    }
}

/// Field names compare case-insensitively (AWS lower-cases them).
fn field_name(name: &str) -> String {
    name.trim_start_matches('$').to_ascii_lowercase()
}

/// A size in a `content-length-range`: a JSON number or a numeric string.
fn size_value(value: &Value) -> Option<u64> {
    match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn invalid(message: &str) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidPolicyDocument, message)
}

fn denied(message: &str) -> S3Error {
    S3Error::new(S3ErrorCode::AccessDenied, message)
}
