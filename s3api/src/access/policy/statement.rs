//! One policy statement: parsing with validation, and matching against a request.

use serde_json::{Map, Value};

use super::condition::{parse_conditions, Condition};
use super::pattern::{has_wildcard, wildcard_match, wildcard_match_ignore_case};
use super::{Effect, PolicyError, S3_ARN_PREFIX};
use crate::access::action::ResourceLevel;
use crate::access::{AccessRequest, Principal};

/// One statement of a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    sid: Option<String>,
    effect: Effect,
    principals: Negatable<PrincipalSet>,
    actions: Negatable<Vec<String>>,
    resources: Negatable<Vec<String>>,
    conditions: Vec<Condition>,
}

/// A statement element and whether it was written in its `Not…` form.
#[derive(Debug, Clone, PartialEq)]
struct Negatable<T> {
    value: T,
    negated: bool,
}

/// The principals a statement names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PrincipalSet {
    /// `"*"`: every principal, anonymous included.
    Everyone,
    /// These user ids.
    Users(Vec<String>),
}

impl Statement {
    pub(super) fn parse(bucket: &str, value: &Value) -> Result<Statement, PolicyError> {
        let Value::Object(fields) = value else {
            return Err(PolicyError::InvalidType {
                field: "Statement",
                expected: "an object or an array of objects",
            });
        };
        reject_unknown_fields(
            fields,
            &[
                "Sid",
                "Effect",
                "Principal",
                "NotPrincipal",
                "Action",
                "NotAction",
                "Resource",
                "NotResource",
                "Condition",
            ],
        )?;
        let sid = optional_string(fields, "Sid")?;
        let effect = match fields.get("Effect") {
            None => return Err(PolicyError::MissingField("Effect")),
            Some(Value::String(effect)) if effect == "Allow" => Effect::Allow,
            Some(Value::String(effect)) if effect == "Deny" => Effect::Deny,
            Some(other) => return Err(PolicyError::InvalidEffect(json_text(other))),
        };
        let (principal, negated) = either(fields, "Principal", "NotPrincipal")?;
        let principals = Negatable {
            value: parse_principal(principal)?,
            negated,
        };
        let (action, negated) = either(fields, "Action", "NotAction")?;
        let actions = Negatable {
            value: string_list(action, if negated { "NotAction" } else { "Action" })?,
            negated,
        };
        if let Some(bad) = actions.value.iter().find(|a| !is_valid_action(a)) {
            return Err(PolicyError::InvalidAction(bad.clone()));
        }
        let (resource, negated) = either(fields, "Resource", "NotResource")?;
        let resources = Negatable {
            value: string_list(resource, if negated { "NotResource" } else { "Resource" })?,
            negated,
        };
        if let Some(bad) = resources
            .value
            .iter()
            .find(|r| !is_resource_of_bucket(r, bucket))
        {
            return Err(PolicyError::InvalidResource(bad.clone()));
        }
        let conditions = match fields.get("Condition") {
            Some(block) => parse_conditions(block)?,
            None => Vec::new(),
        };
        Ok(Statement {
            sid,
            effect,
            principals,
            actions,
            resources,
            conditions,
        })
    }

    /// The statement's `Sid`, if it has one.
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// Whether the statement allows or denies.
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// The user ids its `Principal` (or `NotPrincipal`) names; none for `"*"`.
    pub fn named_users(&self) -> &[String] {
        match &self.principals.value {
            PrincipalSet::Everyone => &[],
            PrincipalSet::Users(ids) => ids,
        }
    }

    /// Whether the statement's principal, action, resource and conditions all match.
    pub fn applies_to(&self, request: &AccessRequest) -> bool {
        let principal_named = match (&self.principals.value, &request.principal) {
            (PrincipalSet::Everyone, _) => true,
            (PrincipalSet::Users(_), Principal::Anonymous) => false,
            (PrincipalSet::Users(ids), Principal::User { id }) => ids.contains(id),
        };
        if principal_named == self.principals.negated {
            return false;
        }
        let action = request.action.as_str();
        let action_named = self
            .actions
            .value
            .iter()
            .any(|pattern| wildcard_match_ignore_case(pattern, action));
        if action_named == self.actions.negated {
            return false;
        }
        let Some(arn) = request_arn(request) else {
            return false;
        };
        let resource_named = self
            .resources
            .value
            .iter()
            .any(|pattern| wildcard_match(pattern, &arn));
        if resource_named == self.resources.negated {
            return false;
        }
        self.conditions
            .iter()
            .all(|condition| condition.holds(request))
    }
}

/// The ARN a request's resource has: `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`.
/// Requests without a bucket have none, and no bucket policy applies to them.
fn request_arn(request: &AccessRequest) -> Option<String> {
    let bucket = request.bucket.as_deref()?;
    Some(match (request.action.resource_level(), &request.key) {
        (ResourceLevel::Object, Some(key)) => format!("{S3_ARN_PREFIX}{bucket}/{key}"),
        _ => format!("{S3_ARN_PREFIX}{bucket}"),
    })
}

/// A string's content, or any other value as JSON text, for error messages.
pub(super) fn json_text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

pub(super) fn reject_unknown_fields(
    fields: &Map<String, Value>,
    known: &[&str],
) -> Result<(), PolicyError> {
    match fields.keys().find(|name| !known.contains(&name.as_str())) {
        Some(unknown) => Err(PolicyError::UnknownField(unknown.clone())),
        None => Ok(()),
    }
}

pub(super) fn optional_string(
    fields: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, PolicyError> {
    match fields.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(PolicyError::InvalidType {
            field: name,
            expected: "a string",
        }),
    }
}

/// The one of `positive`/`negative` present, and whether it was the negative one.
fn either<'a>(
    fields: &'a Map<String, Value>,
    positive: &'static str,
    negative: &'static str,
) -> Result<(&'a Value, bool), PolicyError> {
    match (fields.get(positive), fields.get(negative)) {
        (Some(value), None) => Ok((value, false)),
        (None, Some(value)) => Ok((value, true)),
        (Some(_), Some(_)) => Err(PolicyError::ConflictingFields(positive, negative)),
        (None, None) => Err(PolicyError::MissingField(positive)),
    }
}

/// A string or a non-empty array of strings.
fn string_list(value: &Value, field: &'static str) -> Result<Vec<String>, PolicyError> {
    let invalid = || PolicyError::InvalidType {
        field,
        expected: "a string or a non-empty array of strings",
    };
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| item.as_str().map(str::to_string).ok_or_else(invalid))
            .collect(),
        _ => Err(invalid()),
    }
}

fn parse_principal(value: &Value) -> Result<PrincipalSet, PolicyError> {
    let fields = match value {
        Value::String(s) if s == "*" => return Ok(PrincipalSet::Everyone),
        Value::Object(fields) if !fields.is_empty() => fields,
        other => return Err(PolicyError::InvalidPrincipal(other.to_string())),
    };
    let mut users = Vec::new();
    for (kind, ids) in fields {
        if kind != "AWS" && kind != "CanonicalUser" {
            return Err(PolicyError::InvalidPrincipal(format!(
                "unsupported principal type {kind:?} (use \"AWS\" or \"CanonicalUser\")"
            )));
        }
        let ids = string_list(ids, "Principal")?;
        for id in ids {
            if id == "*" {
                return Ok(PrincipalSet::Everyone);
            }
            users.push(principal_user_id(&id).ok_or(PolicyError::InvalidPrincipal(id))?);
        }
    }
    Ok(PrincipalSet::Users(users))
}

/// The Mucura user id a policy principal names: a plain id, `arn:aws:iam::ID:root` or
/// `arn:aws:iam::ACCOUNT:user/[PATH/]NAME`. Wildcards are not allowed inside ids.
fn principal_user_id(principal: &str) -> Option<String> {
    let id = match principal.strip_prefix("arn:aws:iam::") {
        Some(rest) => {
            let (account, resource) = rest.split_once(':')?;
            if resource == "root" {
                account
            } else {
                resource.strip_prefix("user/")?.rsplit('/').next()?
            }
        }
        None if principal.starts_with("arn:") => return None,
        None => principal,
    };
    let valid = !id.is_empty() && !has_wildcard(id) && !id.contains(char::is_whitespace);
    valid.then(|| id.to_string())
}

/// `*`, or `s3:` followed by a non-empty name of letters, digits and wildcards.
fn is_valid_action(action: &str) -> bool {
    if action == "*" {
        return true;
    }
    let Some(prefix) = action.get(..3) else {
        return false;
    };
    let name = &action[3..];
    prefix.eq_ignore_ascii_case("s3:")
        && !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
}

/// `*`, or an S3 ARN whose bucket part names (or, with wildcards, matches) `bucket`.
fn is_resource_of_bucket(resource: &str, bucket: &str) -> bool {
    if resource == "*" {
        return true;
    }
    let Some(path) = resource.strip_prefix(S3_ARN_PREFIX) else {
        return false;
    };
    let bucket_part = path.split_once('/').map_or(path, |(bucket, _)| bucket);
    wildcard_match(bucket_part, bucket)
}
