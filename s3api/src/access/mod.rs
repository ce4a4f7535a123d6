//! Access control: who may do what to which bucket or object.
//!
//! This module is a pure engine: it holds no state and does no I/O. The caller (the request
//! path) knows the authenticated [`Principal`], the [`Action`] the operation needs
//! ([`required_access`]), the bucket's owner, its [`BucketPolicy`] and [`Acl`], and the
//! object's ACL, and asks [`authorize`] for a verdict.
//!
//! # Order of evaluation
//!
//! For an action on a bucket or an object, as AWS decides it for a bucket policy plus ACLs:
//!
//! 1. An applying `Deny` statement of the bucket policy refuses the request, whoever asks,
//!    with one exception: the bucket owner may always read, replace and delete the policy
//!    itself, so no policy can lock its owner out (AWS grants the same to the owning account's
//!    root user).
//! 2. The bucket owner may do everything else.
//! 3. An applying `Allow` statement allows the request.
//! 4. Otherwise the ACL decides, as in the table below; an action no ACL permission covers is
//!    refused.
//!
//! Actions that concern no bucket (`s3:ListAllMyBuckets`, `s3:CreateBucket`) are allowed to
//! every signed request and refused to anonymous ones; no policy or ACL is consulted.
//!
//! # Which ACL is consulted for which action
//!
//! | action | ACL | permission |
//! | --- | --- | --- |
//! | `s3:GetObject` (GET and HEAD Object, the source of a copy) | object | `READ` |
//! | `s3:GetObjectAcl` | object | `READ_ACP` |
//! | `s3:PutObjectAcl` | object | `WRITE_ACP` |
//! | `s3:PutObject` (incl. multipart steps, copy destination), `s3:DeleteObject` | bucket | `WRITE` |
//! | `s3:AbortMultipartUpload`, `s3:ListMultipartUploadParts` | bucket | `WRITE` |
//! | `s3:ListBucket` (ListObjects, HeadBucket), `s3:ListBucketVersions`, `s3:ListBucketMultipartUploads` | bucket | `READ` |
//! | `s3:GetBucketAcl` | bucket | `READ_ACP` |
//! | `s3:PutBucketAcl` | bucket | `WRITE_ACP` |
//! | bucket policy, CORS, location, versioning, `s3:DeleteBucket` | none | owner or policy only |
//!
//! Why: an object grant only has meaning for the object it is attached to, so reading an
//! object or its ACL asks the object's ACL. Writing or deleting an object changes the bucket's
//! contents, and the object being written may not exist yet (or is replaced with a new ACL),
//! so S3 asks for `WRITE` on the bucket; listing is reading the bucket, hence bucket `READ`.
//! S3's ACL permissions cover no other bucket sub-resources, so those are the owner's unless a
//! policy says otherwise. Multipart abort and part listing are, in AWS, allowed to the upload's
//! initiator; the engine does not know initiators, and the principals who could have initiated
//! an upload in someone else's bucket are exactly those with bucket `WRITE`, so that is the
//! permission asked for. `FULL_CONTROL` implies every permission, and the owner recorded in an
//! ACL always has `READ_ACP` and `WRITE_ACP` on it (as in AWS).
//!
//! An object that does not exist has no ACL; [`authorize`] then refuses object-ACL actions to
//! everyone but the bucket owner and policy-allowed callers. To answer such a GET as AWS does
//! (404 NoSuchKey to a caller who may list the bucket, 403 AccessDenied otherwise), ask again
//! with [`Action::ListBucket`] on the bucket.

pub mod acl;
pub mod action;
pub mod policy;

use std::collections::BTreeMap;
use std::net::IpAddr;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub use self::acl::{acl_from_headers, Acl, CannedAcl, Grant, Grantee, Permission};
pub use self::action::{required_access, AccessTarget, Action, Requirement, ResourceLevel};
pub use self::policy::{BucketPolicy, Decision, Effect, PolicyError, Statement};

/// Who sends a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// An unsigned request.
    Anonymous,
    /// A request signed with the credentials of this user.
    User {
        /// The user's canonical id.
        id: String,
    },
}

impl Principal {
    /// The principal for a signed request by user `id`.
    pub fn user(id: impl Into<String>) -> Principal {
        Principal::User { id: id.into() }
    }

    /// The user id of a signed request; `None` when anonymous.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Principal::Anonymous => None,
            Principal::User { id } => Some(id),
        }
    }
}

/// Extra condition keys of a request beyond those [`AccessRequest`] derives itself, e.g.
/// `s3:prefix`, `s3:max-keys`, `s3:x-amz-acl`, `aws:Referer`, `aws:UserAgent`. Keys are
/// case-insensitive; a key may have several values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConditionContext {
    values: BTreeMap<String, Vec<String>>,
}

impl ConditionContext {
    /// Adds a value for `key` (after any values already there).
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.values
            .entry(key.to_ascii_lowercase())
            .or_default()
            .push(value.into());
    }

    /// Adds a value for `key` and returns the context, for building in one expression.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.insert(key, value);
        self
    }

    /// The values of `key`; empty when the request does not carry it.
    pub fn get(&self, key: &str) -> &[String] {
        self.values
            .get(&key.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }
}

/// Everything access control needs to know about one request for one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest {
    /// Who asks.
    pub principal: Principal,
    /// What they ask to do.
    pub action: Action,
    /// The bucket concerned; `None` for ListAllMyBuckets.
    pub bucket: Option<String>,
    /// The object concerned, for object-level actions.
    pub key: Option<String>,
    /// The client's address (`aws:SourceIp`).
    pub source_ip: Option<IpAddr>,
    /// Whether the request came over TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
    /// When the request is evaluated (`aws:CurrentTime`, `aws:EpochTime`).
    pub now: OffsetDateTime,
    /// Further condition keys.
    pub context: ConditionContext,
}

impl AccessRequest {
    /// A request evaluated now, from no known address, without TLS and without extra keys.
    pub fn new(
        principal: Principal,
        action: Action,
        bucket: Option<&str>,
        key: Option<&str>,
    ) -> AccessRequest {
        AccessRequest {
            principal,
            action,
            bucket: bucket.map(str::to_string),
            key: key.map(str::to_string),
            source_ip: None,
            secure_transport: false,
            now: OffsetDateTime::now_utc(),
            context: ConditionContext::default(),
        }
    }

    /// The values of a condition key (given in lower case) for this request; empty when the
    /// request does not carry the key. `aws:SourceIp`, `aws:CurrentTime`, `aws:EpochTime`,
    /// `aws:SecureTransport`, `aws:username` and `aws:userid` (both the user id; absent when
    /// anonymous) come from the request's fields, everything else from [`Self::context`].
    pub(crate) fn condition_values(&self, key: &str) -> Vec<String> {
        match key {
            "aws:sourceip" => self
                .source_ip
                .map(|ip| ip.to_canonical().to_string())
                .into_iter()
                .collect(),
            "aws:currenttime" => self.now.format(&Rfc3339).ok().into_iter().collect(),
            "aws:epochtime" => vec![self.now.unix_timestamp().to_string()],
            "aws:securetransport" => vec![self.secure_transport.to_string()],
            "aws:username" | "aws:userid" => self
                .principal
                .user_id()
                .map(str::to_string)
                .into_iter()
                .collect(),
            other => self.context.get(other).to_vec(),
        }
    }
}

/// What the engine knows about the bucket a request targets.
#[derive(Debug, Clone, Copy)]
pub struct BucketAccess<'a> {
    /// The bucket owner's user id.
    pub owner: &'a str,
    /// The bucket policy, if one is set.
    pub policy: Option<&'a BucketPolicy>,
    /// The bucket's ACL.
    pub acl: &'a Acl,
    /// The target object's ACL, for object-level actions on an existing object.
    pub object_acl: Option<&'a Acl>,
}

/// The verdict on a request, with what decided it (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authorization {
    /// The request may proceed.
    Allowed(Grounds),
    /// The request is refused with AccessDenied.
    Denied(Grounds),
}

/// What decided an [`Authorization`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grounds {
    /// A service-level action by a signed request (allowed) or an anonymous one (denied).
    Signature,
    /// A `Deny` statement of the bucket policy applies.
    PolicyDeny,
    /// The principal owns the bucket.
    BucketOwner,
    /// An `Allow` statement of the bucket policy applies.
    PolicyAllow,
    /// An ACL grant covers the action.
    AclGrant,
    /// Nothing grants the action.
    NoGrant,
}

impl Authorization {
    /// Whether the request may proceed.
    pub fn is_allowed(self) -> bool {
        matches!(self, Authorization::Allowed(_))
    }
}

/// Which ACL a permission is looked up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclScope {
    /// The bucket's ACL.
    Bucket,
    /// The target object's ACL.
    Object,
}

/// The ACL permission that grants an action, and where to look for it; `None` when no ACL
/// permission grants it (see the table in the module documentation).
pub fn acl_requirement(action: Action) -> Option<(AclScope, Permission)> {
    use Action::*;
    Some(match action {
        GetObject => (AclScope::Object, Permission::Read),
        GetObjectAcl => (AclScope::Object, Permission::ReadAcp),
        PutObjectAcl => (AclScope::Object, Permission::WriteAcp),
        PutObject | DeleteObject | AbortMultipartUpload | ListMultipartUploadParts => {
            (AclScope::Bucket, Permission::Write)
        }
        ListBucket | ListBucketVersions | ListBucketMultipartUploads => {
            (AclScope::Bucket, Permission::Read)
        }
        GetBucketAcl => (AclScope::Bucket, Permission::ReadAcp),
        PutBucketAcl => (AclScope::Bucket, Permission::WriteAcp),
        ListAllMyBuckets | GetBucketPolicy | PutBucketPolicy | DeleteBucketPolicy
        | CreateBucket | DeleteBucket | GetBucketCORS | PutBucketCORS | GetBucketLocation
        | GetBucketVersioning => return None,
    })
}

/// Decides a request in the order described in the module documentation. `bucket` is the
/// target bucket (`None` for service-level actions; a bucket-level action without a bucket is
/// refused, the caller answering NoSuchBucket before asking).
pub fn authorize(request: &AccessRequest, bucket: Option<&BucketAccess<'_>>) -> Authorization {
    if request.action.resource_level() == ResourceLevel::Service {
        return match request.principal {
            Principal::User { .. } => Authorization::Allowed(Grounds::Signature),
            Principal::Anonymous => Authorization::Denied(Grounds::Signature),
        };
    }
    let Some(bucket) = bucket else {
        return Authorization::Denied(Grounds::NoGrant);
    };
    let is_owner = request.principal.user_id() == Some(bucket.owner);
    let decision = bucket
        .policy
        .map_or(Decision::NoOpinion, |policy| policy.evaluate(request));
    let owner_keeps_policy_control = is_owner
        && matches!(
            request.action,
            Action::GetBucketPolicy | Action::PutBucketPolicy | Action::DeleteBucketPolicy
        );
    if decision == Decision::ExplicitDeny && !owner_keeps_policy_control {
        return Authorization::Denied(Grounds::PolicyDeny);
    }
    if is_owner {
        return Authorization::Allowed(Grounds::BucketOwner);
    }
    if decision == Decision::Allow {
        return Authorization::Allowed(Grounds::PolicyAllow);
    }
    let granted = match acl_requirement(request.action) {
        Some((AclScope::Bucket, permission)) => bucket.acl.allows(&request.principal, permission),
        Some((AclScope::Object, permission)) => bucket
            .object_acl
            .is_some_and(|acl| acl.allows(&request.principal, permission)),
        None => false,
    };
    if granted {
        Authorization::Allowed(Grounds::AclGrant)
    } else {
        Authorization::Denied(Grounds::NoGrant)
    }
}

#[cfg(test)]
mod tests;
