//! The answer of the admin API's `GET /v1/usage`: a [`UsageView`]'s buckets grouped by
//! owner, with the owners' quotas from the user records.

use std::collections::BTreeMap;

use admin::api::IdentityApiError;
use admin::usage::{BucketUsageInfo, UsageAnswer, UsageQuery, UserUsage};

use super::quota::{BucketUsage, UsageView};
use super::traffic::{Traffic, TrafficCounters};
use crate::identity::records::Status;
use crate::identity::IdentityStore;

/// Usage per user (and their buckets) as filtered by `query`. Without a filter every user
/// is listed, also those storing nothing, and so is every owner without a user record
/// (root). A bucket or user filter naming nothing known is `NotFound`. `local_traffic`, on
/// a single node, supplies the request counts its view leaves empty.
pub fn usage_answer(
    view: &dyn UsageView,
    local_traffic: Option<&TrafficCounters>,
    users: &dyn IdentityStore,
    query: &UsageQuery,
    exact: bool,
) -> Result<UsageAnswer, IdentityApiError> {
    let buckets = view.buckets().map_err(internal)?;
    let mut by_user: BTreeMap<String, UserUsage> = BTreeMap::new();
    if query.bucket.is_none() {
        // Users storing nothing are listed too (with their quotas).
        for user in users.users().map_err(internal)? {
            let wanted = query.user.as_ref().is_none_or(|wanted| *wanted == user.id);
            if wanted && user.status != Status::Deleted {
                by_user.insert(user.id.clone(), blank(&user.id));
            }
        }
    }
    let mut matched = false;
    for mut bucket in buckets {
        if query.bucket.as_ref().is_some_and(|b| *b != bucket.bucket)
            || query.user.as_ref().is_some_and(|u| *u != bucket.owner)
        {
            continue;
        }
        matched = true;
        if let Some(local) = local_traffic {
            bucket.traffic = local.bucket(&bucket.bucket);
        }
        let entry = by_user
            .entry(bucket.owner.clone())
            .or_insert_with(|| blank(&bucket.owner));
        add_bucket(entry, bucket);
    }
    if let Some(bucket) = &query.bucket {
        if !matched {
            let owner = query
                .user
                .as_ref()
                .map(|user| format!(" owned by {user:?}"));
            return Err(IdentityApiError::NotFound(format!(
                "no bucket {bucket:?}{}",
                owner.unwrap_or_default()
            )));
        }
    }
    if let Some(user) = &query.user {
        if by_user.is_empty() {
            return Err(IdentityApiError::NotFound(format!(
                "no user {user:?} and no bucket owned by it"
            )));
        }
    }
    for (id, usage) in by_user.iter_mut() {
        if let Ok(Some(user)) = users.user(id) {
            usage.quota_bytes = user.quota_bytes;
            usage.quota_objects = user.quota_objects;
        }
        usage.buckets.sort_by(|a, b| a.bucket.cmp(&b.bucket));
    }
    Ok(UsageAnswer {
        users: by_user.into_values().collect(),
        exact,
    })
}

fn internal(err: impl std::fmt::Display) -> IdentityApiError {
    IdentityApiError::Internal(err.to_string())
}

/// A user's entry before any bucket is added.
fn blank(user: &str) -> UserUsage {
    UserUsage {
        user: user.to_owned(),
        objects: 0,
        bytes: 0,
        requests: BTreeMap::new(),
        bytes_in: 0,
        bytes_out: 0,
        quota_bytes: None,
        quota_objects: None,
        buckets: Vec::new(),
    }
}

/// Adds one of the user's buckets to the user's sums and list.
fn add_bucket(entry: &mut UserUsage, bucket: BucketUsage) {
    entry.objects += bucket.usage.objects_u64();
    entry.bytes += bucket.usage.bytes_u64();
    let mut traffic = Traffic {
        requests: std::mem::take(&mut entry.requests),
        bytes_in: entry.bytes_in,
        bytes_out: entry.bytes_out,
    };
    traffic.add(&bucket.traffic);
    entry.requests = traffic.requests;
    entry.bytes_in = traffic.bytes_in;
    entry.bytes_out = traffic.bytes_out;
    entry.buckets.push(BucketUsageInfo {
        objects: bucket.usage.objects_u64(),
        bytes: bucket.usage.bytes_u64(),
        requests: bucket.traffic.requests,
        bytes_in: bucket.traffic.bytes_in,
        bytes_out: bucket.traffic.bytes_out,
        bucket: bucket.bucket,
        owner: bucket.owner,
    });
}
