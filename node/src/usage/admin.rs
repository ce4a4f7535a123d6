//! The answer of the admin API's `GET /v1/usage`: a [`UsageView`]'s buckets grouped by
//! owner, with the owners' quotas from the user records.

use std::collections::BTreeMap;

use admin::api::IdentityApiError;
use admin::usage::{BucketUsageInfo, UsageAnswer, UsageQuery, UserUsage};

use super::quota::UsageView;
use crate::identity::records::Status;
use crate::identity::IdentityStore;

/// Usage per user (and their buckets) as filtered by `query`. Without a filter every user
/// is listed, also those storing nothing, and so is every owner without a user record
/// (root). A bucket or user filter naming nothing known is `NotFound`.
pub fn usage_answer(
    view: &dyn UsageView,
    users: &dyn IdentityStore,
    query: &UsageQuery,
    exact: bool,
) -> Result<UsageAnswer, IdentityApiError> {
    let internal = |err: &dyn std::fmt::Display| IdentityApiError::Internal(err.to_string());
    let buckets = view.buckets().map_err(|err| internal(&err))?;
    let mut by_user: BTreeMap<String, UserUsage> = BTreeMap::new();
    let blank = |user: &str| UserUsage {
        user: user.to_owned(),
        objects: 0,
        bytes: 0,
        quota_bytes: None,
        quota_objects: None,
        buckets: Vec::new(),
    };
    if query.bucket.is_none() {
        let known = users.users().map_err(|err| internal(&err))?;
        for user in known
            .into_iter()
            .filter(|user| user.status != Status::Deleted)
        {
            if query.user.as_ref().is_none_or(|wanted| *wanted == user.id) {
                by_user.insert(user.id.clone(), blank(&user.id));
            }
        }
    }
    let mut bucket_found = false;
    for bucket in buckets {
        if query.bucket.as_ref().is_some_and(|b| *b != bucket.bucket)
            || query.user.as_ref().is_some_and(|u| *u != bucket.owner)
        {
            continue;
        }
        bucket_found = true;
        let entry = by_user
            .entry(bucket.owner.clone())
            .or_insert_with(|| blank(&bucket.owner));
        entry.objects += bucket.usage.objects_u64();
        entry.bytes += bucket.usage.bytes_u64();
        entry.buckets.push(BucketUsageInfo {
            bucket: bucket.bucket,
            owner: bucket.owner,
            objects: bucket.usage.objects_u64(),
            bytes: bucket.usage.bytes_u64(),
        });
    }
    if let Some(bucket) = &query.bucket {
        if !bucket_found {
            return Err(IdentityApiError::NotFound(format!(
                "no bucket {bucket:?}{}",
                query
                    .user
                    .as_ref()
                    .map(|user| format!(" owned by {user:?}"))
                    .unwrap_or_default()
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
