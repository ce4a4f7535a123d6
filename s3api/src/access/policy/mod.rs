//! Bucket policies: the AWS JSON policy grammar, its validation and its evaluation.
//!
//! A policy is parsed once, when PutBucketPolicy stores it ([`BucketPolicy::parse`]), and kept
//! with the text the client sent, which GetBucketPolicy returns unchanged
//! ([`BucketPolicy::text`]).
//!
//! # Grammar
//!
//! - `Version`: `2012-10-17` or `2008-10-17`; may be left out. `Id`: any string.
//! - `Statement`: one statement object or a non-empty array of them. Each has an optional
//!   `Sid` (unique within the policy), `Effect` (`Allow` or `Deny`), exactly one of
//!   `Principal`/`NotPrincipal`, exactly one of `Action`/`NotAction`, exactly one of
//!   `Resource`/`NotResource`, and an optional `Condition` (below).
//! - Principal: `"*"`, `{"AWS": "*"}`, or `{"AWS": id}` / `{"AWS": [id, …]}`, where `id` is a
//!   Mucura user id, `arn:aws:iam::ID:root` (user `ID`: every Mucura user is its own account)
//!   or `arn:aws:iam::ACCOUNT:user/NAME` (user `NAME`; with a path `user/PATH/NAME` the last
//!   segment; the account part is not checked, as Mucura has one flat namespace of users).
//!   `{"CanonicalUser": id}` names a user by id too. `"*"` includes anonymous requests.
//! - Action: `*` or `s3:NAME` with `*`/`?` wildcards, compared without regard to case. Any
//!   `s3:` name is accepted, including actions Mucura does not implement (they never match).
//! - Resource: `*`, `arn:aws:s3:::BUCKET` or `arn:aws:s3:::BUCKET/KEY-PATTERN`, wildcards
//!   allowed, compared case-sensitively. The bucket part must name the bucket the policy is
//!   attached to (a wildcard bucket part must match that name).
//!
//! # Conditions
//!
//! `{"Operator": {"key": value-or-values}}`. Operators: `StringEquals`, `StringNotEquals`,
//! `StringEqualsIgnoreCase`, `StringNotEqualsIgnoreCase`, `StringLike`, `StringNotLike`,
//! `Numeric{Equals,NotEquals,LessThan,LessThanEquals,GreaterThan,GreaterThanEquals}`,
//! `Date{Equals,NotEquals,LessThan,LessThanEquals,GreaterThan,GreaterThanEquals}` (ISO 8601,
//! a bare date, or epoch seconds), `Bool`, `IpAddress`, `NotIpAddress` (IPv4/IPv6 CIDR) and
//! `Null`; each but `Null` takes the `IfExists` suffix and a `ForAnyValue:`/`ForAllValues:`
//! prefix. Values the operator cannot read (a bad date, CIDR, number or boolean) are refused
//! when the policy is stored. All tests of a statement must hold; the values of one test are
//! alternatives. Keys are case-insensitive; those a request does not carry match no value, so
//! a positive test on them fails and a negated one holds (as in AWS), and `IfExists` makes
//! any test hold. See [`crate::access::AccessRequest`] for the keys a request carries.
//!
//! # Evaluation
//!
//! A statement applies to a request when its principal, action, resource and every condition
//! match. Any applying `Deny` makes the decision [`Decision::ExplicitDeny`]; otherwise any
//! applying `Allow` makes it [`Decision::Allow`]; otherwise the policy has no opinion.

mod condition;
mod error;
mod pattern;
mod statement;

use std::collections::HashSet;

use serde_json::Value;

use self::statement::{json_text, optional_string, reject_unknown_fields};
use super::AccessRequest;

pub use self::error::PolicyError;
pub use self::statement::Statement;

/// The largest policy document accepted, in bytes.
pub const MAX_POLICY_SIZE: usize = 20 * 1024;

/// The prefix of every S3 resource ARN.
pub const S3_ARN_PREFIX: &str = "arn:aws:s3:::";

/// What a policy says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A `Deny` statement applies: nothing else can allow the request.
    ExplicitDeny,
    /// An `Allow` statement applies and no `Deny` does.
    Allow,
    /// No statement applies.
    NoOpinion,
}

/// Whether a statement allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The statement grants access.
    Allow,
    /// The statement refuses access, whatever else grants it.
    Deny,
}

/// A parsed bucket policy together with the document it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketPolicy {
    text: String,
    id: Option<String>,
    statements: Vec<Statement>,
}

impl BucketPolicy {
    /// Parses and validates the policy document sent to PutBucketPolicy for `bucket`.
    pub fn parse(bucket: &str, text: &str) -> Result<BucketPolicy, PolicyError> {
        if text.len() > MAX_POLICY_SIZE {
            return Err(PolicyError::TooLarge { size: text.len() });
        }
        let document: Value =
            serde_json::from_str(text).map_err(|e| PolicyError::InvalidJson(e.to_string()))?;
        let Value::Object(fields) = document else {
            return Err(PolicyError::InvalidJson(
                "the document must be a JSON object".into(),
            ));
        };
        reject_unknown_fields(&fields, &["Version", "Id", "Statement"])?;
        if let Some(version) = fields.get("Version") {
            match version.as_str() {
                Some("2012-10-17" | "2008-10-17") => {}
                _ => return Err(PolicyError::InvalidVersion(json_text(version))),
            }
        }
        let id = optional_string(&fields, "Id")?;
        let statements = match fields.get("Statement") {
            None => return Err(PolicyError::MissingField("Statement")),
            Some(Value::Array(items)) if items.is_empty() => {
                return Err(PolicyError::MissingField("Statement"))
            }
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| Statement::parse(bucket, item))
                .collect::<Result<Vec<_>, _>>()?,
            Some(single) => vec![Statement::parse(bucket, single)?],
        };
        let mut sids = HashSet::new();
        for sid in statements.iter().filter_map(Statement::sid) {
            if !sids.insert(sid) {
                return Err(PolicyError::DuplicateSid(sid.to_string()));
            }
        }
        Ok(BucketPolicy {
            text: text.to_string(),
            id,
            statements,
        })
    }

    /// The document exactly as it was stored, for GetBucketPolicy.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The policy's `Id`, if it has one.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The statements, in document order.
    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// What the policy says about a request: an applying Deny wins over any Allow.
    pub fn evaluate(&self, request: &AccessRequest) -> Decision {
        let mut allowed = false;
        for statement in self.statements.iter().filter(|s| s.applies_to(request)) {
            match statement.effect() {
                Effect::Deny => return Decision::ExplicitDeny,
                Effect::Allow => allowed = true,
            }
        }
        if allowed {
            Decision::Allow
        } else {
            Decision::NoOpinion
        }
    }
}

#[cfg(test)]
mod tests;
