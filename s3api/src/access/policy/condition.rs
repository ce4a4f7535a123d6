//! The `Condition` block of a policy statement: operators, their typed values, and their
//! evaluation against the keys of a request.
//!
//! A block `{"Operator": {"key": value-or-values, …}, …}` holds one test per (operator, key);
//! a statement applies only when every test holds. Within a test, the policy's values are
//! alternatives: the test holds when the request's value matches any of them. A key the
//! request does not carry (an unknown key, or `aws:username` on an anonymous request) matches
//! no value, so a positive test on it fails and a negated one (`StringNotEquals`,
//! `NotIpAddress`, …) holds, as in AWS; the `…IfExists` suffix makes any test hold for an
//! absent key. A key may carry several values in a request (set by the caller in the context):
//! by default, and with `ForAnyValue:`, one value satisfying the test is enough; with
//! `ForAllValues:` every value must satisfy it (and an absent key satisfies it). A request value
//! that cannot be read as the operator's type (a non-number for `NumericLessThan`) never
//! satisfies the test.

use std::net::IpAddr;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, Time};

use super::pattern::wildcard_match;
use super::PolicyError;
use crate::access::AccessRequest;

/// One (operator, key) test of a `Condition` block.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    operator: Operator,
    /// The key in lower case: condition keys are case-insensitive.
    key: String,
    values: Vec<Operand>,
}

/// An operator as written, e.g. `ForAllValues:StringNotLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Operator {
    test: Test,
    /// The `Not` operators hold when no policy value matches.
    negated: bool,
    if_exists: bool,
    all_values: bool,
}

/// What an operator compares, without its negation and modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Test {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(Comparison),
    Date(Comparison),
    Bool,
    IpAddress,
    Null,
}

/// How a numeric or date operator compares the request value (left) with the policy's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Equals,
    LessThan,
    LessThanEquals,
    GreaterThan,
    GreaterThanEquals,
}

/// A policy value, already read as the type its operator compares.
#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Text(String),
    Number(f64),
    Instant(OffsetDateTime),
    Flag(bool),
    Network(Cidr),
}

/// The base operator names, each with its test and whether it is negated.
const OPERATORS: &[(&str, Test, bool)] = {
    use Comparison::*;
    &[
        ("StringEquals", Test::StringEquals, false),
        ("StringNotEquals", Test::StringEquals, true),
        (
            "StringEqualsIgnoreCase",
            Test::StringEqualsIgnoreCase,
            false,
        ),
        (
            "StringNotEqualsIgnoreCase",
            Test::StringEqualsIgnoreCase,
            true,
        ),
        ("StringLike", Test::StringLike, false),
        ("StringNotLike", Test::StringLike, true),
        ("NumericEquals", Test::Numeric(Equals), false),
        ("NumericNotEquals", Test::Numeric(Equals), true),
        ("NumericLessThan", Test::Numeric(LessThan), false),
        (
            "NumericLessThanEquals",
            Test::Numeric(LessThanEquals),
            false,
        ),
        ("NumericGreaterThan", Test::Numeric(GreaterThan), false),
        (
            "NumericGreaterThanEquals",
            Test::Numeric(GreaterThanEquals),
            false,
        ),
        ("DateEquals", Test::Date(Equals), false),
        ("DateNotEquals", Test::Date(Equals), true),
        ("DateLessThan", Test::Date(LessThan), false),
        ("DateLessThanEquals", Test::Date(LessThanEquals), false),
        ("DateGreaterThan", Test::Date(GreaterThan), false),
        (
            "DateGreaterThanEquals",
            Test::Date(GreaterThanEquals),
            false,
        ),
        ("Bool", Test::Bool, false),
        ("IpAddress", Test::IpAddress, false),
        ("NotIpAddress", Test::IpAddress, true),
        ("Null", Test::Null, false),
    ]
};

impl Operator {
    fn parse(name: &str) -> Result<Operator, PolicyError> {
        let unknown = || PolicyError::UnknownConditionOperator(name.to_string());
        let (qualifier, rest) = match name.split_once(':') {
            Some((qualifier, rest)) => (Some(qualifier), rest),
            None => (None, name),
        };
        let all_values = match qualifier {
            None | Some("ForAnyValue") => false,
            Some("ForAllValues") => true,
            Some(_) => return Err(unknown()),
        };
        let (if_exists, base) = match rest.strip_suffix("IfExists") {
            Some(base) => (true, base),
            None => (false, rest),
        };
        let &(_, test, negated) = OPERATORS
            .iter()
            .find(|(known, _, _)| *known == base)
            .ok_or_else(unknown)?;
        // Null is itself the test for existence and looks at no values.
        if test == Test::Null && (if_exists || qualifier.is_some()) {
            return Err(unknown());
        }
        Ok(Operator {
            test,
            negated,
            if_exists,
            all_values,
        })
    }
}

/// Reads a statement's `Condition` object.
pub(crate) fn parse_conditions(block: &Value) -> Result<Vec<Condition>, PolicyError> {
    let Value::Object(operators) = block else {
        return Err(PolicyError::InvalidCondition(
            "Condition must be an object of operators".into(),
        ));
    };
    let mut conditions = Vec::new();
    for (operator_name, tests) in operators {
        let operator = Operator::parse(operator_name)?;
        let Value::Object(tests) = tests else {
            return Err(PolicyError::InvalidCondition(format!(
                "the value of {operator_name} must be an object of condition keys"
            )));
        };
        for (key, values) in tests {
            let values = scalar_strings(values).ok_or_else(|| {
                PolicyError::InvalidCondition(format!(
                    "{operator_name} {key}: values must be a string, number, boolean or a non-empty array of them"
                ))
            })?;
            let values = values
                .iter()
                .map(|value| {
                    parse_operand(operator.test, value).ok_or_else(|| {
                        PolicyError::InvalidConditionValue {
                            operator: operator_name.clone(),
                            key: key.clone(),
                            value: value.clone(),
                        }
                    })
                })
                .collect::<Result<_, _>>()?;
            conditions.push(Condition {
                operator,
                key: key.to_ascii_lowercase(),
                values,
            });
        }
    }
    Ok(conditions)
}

/// A scalar or a non-empty array of scalars, as strings (`10` and `"10"` are the same value).
fn scalar_strings(value: &Value) -> Option<Vec<String>> {
    fn scalar(value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    match value {
        Value::Array(items) if !items.is_empty() => items.iter().map(scalar).collect(),
        Value::Array(_) => None,
        other => scalar(other).map(|s| vec![s]),
    }
}

/// Reads a value (from the policy or from the request) as the type `test` compares.
fn parse_operand(test: Test, value: &str) -> Option<Operand> {
    match test {
        Test::StringEquals | Test::StringLike => Some(Operand::Text(value.to_string())),
        Test::StringEqualsIgnoreCase => Some(Operand::Text(value.to_lowercase())),
        Test::Numeric(_) => value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Operand::Number),
        Test::Date(_) => parse_instant(value.trim()).map(Operand::Instant),
        Test::Bool | Test::Null => parse_bool(value).map(Operand::Flag),
        Test::IpAddress => Cidr::parse(value.trim()).map(Operand::Network),
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// An instant in ISO 8601 (`2026-01-01T00:00:00Z`, with optional fraction and offset, or a
/// bare date `2026-01-01`, meaning midnight UTC) or as whole seconds since the Unix epoch.
pub(crate) fn parse_instant(value: &str) -> Option<OffsetDateTime> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = value.parse::<i64>().ok()?;
        return OffsetDateTime::from_unix_timestamp(seconds).ok();
    }
    if let Ok(instant) = OffsetDateTime::parse(value, &Rfc3339) {
        return Some(instant);
    }
    let date = Date::parse(
        value,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    Some(date.with_time(Time::MIDNIGHT).assume_utc())
}

impl Condition {
    /// Whether the test holds for the request.
    pub(crate) fn holds(&self, request: &AccessRequest) -> bool {
        let request_values = request.condition_values(&self.key);
        let operator = self.operator;
        if operator.test == Test::Null {
            let absent = request_values.is_empty();
            return self.values.contains(&Operand::Flag(absent));
        }
        if request_values.is_empty() {
            return operator.if_exists || operator.negated || operator.all_values;
        }
        let satisfies = |request_value: &String| -> bool {
            let Some(request_value) = parse_operand(operator.test, request_value) else {
                return false;
            };
            let matched = self
                .values
                .iter()
                .any(|policy_value| compare(operator.test, &request_value, policy_value));
            matched != operator.negated
        };
        if operator.all_values {
            request_values.iter().all(satisfies)
        } else {
            request_values.iter().any(satisfies)
        }
    }
}

/// Whether a request value matches one policy value under the (non-negated) test.
fn compare(test: Test, request: &Operand, policy: &Operand) -> bool {
    match (test, request, policy) {
        (Test::StringEquals | Test::StringEqualsIgnoreCase, Operand::Text(r), Operand::Text(p)) => {
            r == p
        }
        (Test::StringLike, Operand::Text(r), Operand::Text(p)) => wildcard_match(p, r),
        (Test::Numeric(how), Operand::Number(r), Operand::Number(p)) => how.holds(r, p),
        (Test::Date(how), Operand::Instant(r), Operand::Instant(p)) => how.holds(r, p),
        (Test::Bool, Operand::Flag(r), Operand::Flag(p)) => r == p,
        (Test::IpAddress, Operand::Network(r), Operand::Network(p)) => p.contains(r.address),
        _ => false,
    }
}

impl Comparison {
    fn holds<T: PartialOrd>(self, request: &T, policy: &T) -> bool {
        match self {
            Comparison::Equals => request == policy,
            Comparison::LessThan => request < policy,
            Comparison::LessThanEquals => request <= policy,
            Comparison::GreaterThan => request > policy,
            Comparison::GreaterThanEquals => request >= policy,
        }
    }
}

/// An IPv4 or IPv6 network in CIDR form; a bare address is a network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    address: IpAddr,
    prefix_len: u8,
}

impl Cidr {
    /// Reads `192.0.2.0/24`, `2001:db8::/32` or a bare address. IPv4-mapped IPv6 addresses
    /// (`::ffff:192.0.2.1`, what a dual-stack socket reports) are read as IPv4.
    pub(crate) fn parse(text: &str) -> Option<Cidr> {
        let (address, prefix_len) = match text.split_once('/') {
            Some((address, prefix)) => {
                if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (address, Some(prefix.parse::<u8>().ok()?))
            }
            None => (text, None),
        };
        let parsed: IpAddr = address.parse().ok()?;
        let max_len = if parsed.is_ipv4() { 32 } else { 128 };
        let prefix_len = prefix_len.unwrap_or(max_len);
        if prefix_len > max_len {
            return None;
        }
        // A mapped address keeps its meaning only with the full prefix, so only bare ones fold.
        let address = if prefix_len == max_len {
            parsed.to_canonical()
        } else {
            parsed
        };
        let prefix_len = match (parsed, address) {
            (IpAddr::V6(_), IpAddr::V4(_)) => 32,
            _ => prefix_len,
        };
        Some(Cidr {
            address,
            prefix_len,
        })
    }

    /// Whether the address lies in the network (addresses of the other family never do).
    pub(crate) fn contains(&self, address: IpAddr) -> bool {
        match (self.address, address.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
#[path = "condition_tests.rs"]
mod tests;
