//! `GET /v1/usage[?user=U][&bucket=B]`: objects and bytes stored per user and bucket, with
//! the users' quotas.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::IdentityApiError;

/// The filters of a usage request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageQuery {
    /// Only this user (the owner of the buckets counted).
    pub user: Option<String>,
    /// Only this bucket.
    pub bucket: Option<String>,
}

impl UsageQuery {
    /// Parses `user=` and `bucket=` (percent-decoded) from a query string; other
    /// parameters are refused so a misspelt filter does not silently list everything.
    pub fn parse(query: &str) -> Result<UsageQuery, IdentityApiError> {
        let mut parsed = UsageQuery::default();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| IdentityApiError::Invalid(format!("{name} is not valid UTF-8")))?
                .into_owned();
            if value.is_empty() {
                return Err(IdentityApiError::Invalid(format!("{name} is empty")));
            }
            match name {
                "user" => parsed.user = Some(value),
                "bucket" => parsed.bucket = Some(value),
                other => {
                    return Err(IdentityApiError::Invalid(format!(
                        "unknown usage parameter {other:?} (use user= and bucket=)"
                    )))
                }
            }
        }
        Ok(parsed)
    }

    /// The query string of these filters (for the client).
    pub fn to_query(&self) -> String {
        let encode = |value: &str| {
            percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        };
        let mut parts = Vec::new();
        if let Some(user) = &self.user {
            parts.push(format!("user={}", encode(user)));
        }
        if let Some(bucket) = &self.bucket {
            parts.push(format!("bucket={}", encode(bucket)));
        }
        parts.join("&")
    }
}

/// One bucket's usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketUsageInfo {
    /// The bucket.
    pub bucket: String,
    /// Its owner, whose quota it counts toward.
    pub owner: String,
    /// Live objects.
    pub objects: u64,
    /// Sum of their sizes (logical bytes, not replicated disk space).
    pub bytes: u64,
    /// Requests answered for the bucket, by class (`read`, `write`, `list`, `delete`,
    /// `other`), since accounting began.
    #[serde(default)]
    pub requests: BTreeMap<String, u64>,
    /// Request body bytes received for the bucket.
    #[serde(default)]
    pub bytes_in: u64,
    /// Response body bytes sent for the bucket.
    #[serde(default)]
    pub bytes_out: u64,
}

/// One user's usage: the sum over the buckets they own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUsage {
    /// The user id.
    pub user: String,
    /// Live objects in their buckets.
    pub objects: u64,
    /// Sum of their sizes.
    pub bytes: u64,
    /// Requests answered for their buckets, by class.
    #[serde(default)]
    pub requests: BTreeMap<String, u64>,
    /// Request body bytes received for their buckets.
    #[serde(default)]
    pub bytes_in: u64,
    /// Response body bytes sent for their buckets.
    #[serde(default)]
    pub bytes_out: u64,
    /// The user's byte quota, if any.
    pub quota_bytes: Option<u64>,
    /// The user's object quota, if any.
    pub quota_objects: Option<u64>,
    /// Their buckets (only the requested one with `bucket=`).
    pub buckets: Vec<BucketUsageInfo>,
}

/// The answer of `GET /v1/usage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageAnswer {
    /// Users by id (every user without a filter, including those storing nothing).
    pub users: Vec<UserUsage>,
    /// Whether the figures are exact (single node) or eventually consistent (a cluster:
    /// seconds behind writes, see the usage section of the design notes).
    pub exact: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_round_trip_and_unknown_ones_are_refused() {
        let query = UsageQuery {
            user: Some("alice".into()),
            bucket: Some("a b&c".into()),
        };
        assert_eq!(UsageQuery::parse(&query.to_query()), Ok(query));
        assert_eq!(UsageQuery::parse(""), Ok(UsageQuery::default()));
        assert!(matches!(
            UsageQuery::parse("users=alice"),
            Err(IdentityApiError::Invalid(_))
        ));
        assert!(matches!(
            UsageQuery::parse("user="),
            Err(IdentityApiError::Invalid(_))
        ));
    }
}
