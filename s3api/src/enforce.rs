//! Access control on the request path: before any handler runs, [`check_request`] turns the
//! verified request into the [`AccessRequest`]s its operation needs ([`required_access`]) and
//! asks the pure engine ([`authorize`]) for each. A refusal is AccessDenied (403).
//!
//! Cost per request: one read of the bucket's permissions (local on every backend), plus the
//! object's ACL only when an object-level read is asked by someone neither owning the bucket
//! nor allowed by its policy. CopyObject and UploadPartCopy read the source bucket too.
//!
//! What a refused caller learns: a bucket that does not exist is NoSuchBucket for everyone
//! (as in AWS); an existing bucket the caller may not use is AccessDenied, never its contents.
//! A missing object is NoSuchKey only to callers who may list the bucket, AccessDenied to
//! others, so that probing keys reveals nothing.

use crate::access::{
    acl_requirement, authorize, required_access, AccessRequest, AccessTarget, Acl, AclScope,
    Action, Authorization, BucketAccess, BucketPolicy, ConditionContext, Grounds, Principal,
};
use crate::auth::Identity;
use crate::backend::S3Backend;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::handlers::{copy_source, RequestHead};
use crate::observe::PeerAddr;
use crate::router::Operation;

/// The canonical user id AWS gives anonymous requests; objects an anonymous client uploads
/// (into a bucket whose ACL lets everyone write) are owned by it.
pub const ANONYMOUS_USER_ID: &str = "65a011a29cdf8ec533ec3d1ccaae921c";

/// A bucket's permissions as read for one request, its policy parsed.
#[derive(Debug, Clone)]
pub struct BucketGuard {
    /// The bucket's name.
    pub name: String,
    /// The owner's user id.
    pub owner: String,
    /// The bucket's ACL.
    pub acl: Acl,
    /// The bucket policy, if one is set.
    pub policy: Option<BucketPolicy>,
    /// The bucket's CORS configuration (canonical XML, see [`crate::cors`]), if one is set;
    /// parsed only by requests that need it (preflights, requests carrying `Origin`).
    pub cors: Option<String>,
}

impl BucketGuard {
    /// Reads the bucket's permissions: NoSuchBucket when it does not exist.
    async fn load<B: S3Backend>(backend: &B, name: &str) -> S3Result<BucketGuard> {
        let permissions = backend.bucket_permissions(name).await?;
        let policy = permissions
            .policy
            .map(|text| BucketPolicy::parse(name, &text))
            .transpose()
            // Only validated documents are stored: a failure here is damage, not the client's.
            .map_err(|err| {
                S3Error::internal(format!(
                    "stored policy of bucket {name:?} is invalid: {err}"
                ))
            })?;
        Ok(BucketGuard {
            name: name.to_owned(),
            owner: permissions.owner,
            acl: permissions.acl,
            policy,
            cors: permissions.cors,
        })
    }

    /// The engine's view of this bucket, with the target object's ACL if known.
    fn access<'a>(&'a self, object_acl: Option<&'a Acl>) -> BucketAccess<'a> {
        BucketAccess {
            owner: &self.owner,
            policy: self.policy.as_ref(),
            acl: &self.acl,
            object_acl,
        }
    }
}

/// What the access check established, for handlers that decide more themselves (the owner of
/// new resources, DeleteObjects' per-key checks).
#[derive(Debug, Clone)]
pub struct RequestAccess {
    /// The request as the engine sees it; each check sets action, bucket and key.
    template: AccessRequest,
    /// The target bucket's permissions, for requests naming an existing bucket.
    bucket: Option<BucketGuard>,
}

impl RequestAccess {
    /// Who sends the request.
    pub fn principal(&self) -> &Principal {
        &self.template.principal
    }

    /// The user id that owns what this request creates.
    pub fn owner_id(&self) -> &str {
        self.principal().user_id().unwrap_or(ANONYMOUS_USER_ID)
    }

    /// The target bucket's permissions; `None` for requests naming no bucket and CreateBucket.
    pub fn bucket(&self) -> Option<&BucketGuard> {
        self.bucket.as_ref()
    }

    /// The target bucket's owner (InternalError if the request names no bucket, which the
    /// router never lets through for bucket and object operations).
    pub fn bucket_owner(&self) -> S3Result<&str> {
        self.bucket
            .as_ref()
            .map(|guard| guard.owner.as_str())
            .ok_or_else(|| S3Error::internal("no bucket permissions were read for this request"))
    }

    /// Whether `action` on `key` of the target bucket is allowed by the owner, policy and
    /// bucket ACL (object ACLs are not read: for actions the bucket ACL grants, such as
    /// `s3:DeleteObject` for each key of DeleteObjects).
    pub fn allows(&self, action: Action, key: Option<&str>) -> bool {
        let Some(guard) = &self.bucket else {
            return false;
        };
        let request = self.request(action, &guard.name, key);
        authorize(&request, Some(&guard.access(None))).is_allowed()
    }

    /// The same request made by `principal`, with one more condition value: a browser POST
    /// authenticates in its form, after the head was checked as anonymous, and its `acl`
    /// field is what `s3:x-amz-acl` means.
    pub fn acting_as(
        &self,
        principal: Principal,
        condition: Option<(&str, &str)>,
    ) -> RequestAccess {
        let mut access = self.clone();
        access.template.principal = principal;
        if let Some((key, value)) = condition {
            access.template.context.insert(key, value);
        }
        access
    }

    fn request(&self, action: Action, bucket: &str, key: Option<&str>) -> AccessRequest {
        let mut request = self.template.clone();
        request.action = action;
        request.bucket = Some(bucket.to_owned());
        request.key = key.map(str::to_owned);
        request
    }
}

/// Decides whether the request may run `op`. Reads the target bucket's permissions (NoSuchBucket
/// when it does not exist) and returns them for the handler; AccessDenied when any requirement
/// of the operation is refused.
pub async fn check_request<B: S3Backend>(
    backend: &B,
    head: &RequestHead,
    op: Operation,
) -> S3Result<RequestAccess> {
    let bucket = load_bucket(backend, head, op).await?;
    check_loaded(backend, head, op, bucket).await
}

/// The first half of [`check_request`]: reads the target bucket's permissions (`None` for
/// requests naming no bucket and CreateBucket), NoSuchBucket when it does not exist. Split
/// out so the service can answer CORS headers even on requests the check then refuses.
pub async fn load_bucket<B: S3Backend>(
    backend: &B,
    head: &RequestHead,
    op: Operation,
) -> S3Result<Option<BucketGuard>> {
    match (head.bucket.as_deref(), op) {
        (None, _) | (_, Operation::ListBuckets | Operation::CreateBucket) => Ok(None),
        (Some(name), _) => Ok(Some(BucketGuard::load(backend, name).await?)),
    }
}

/// The second half of [`check_request`]: decides the operation's requirements against the
/// permissions [`load_bucket`] read.
pub async fn check_loaded<B: S3Backend>(
    backend: &B,
    head: &RequestHead,
    op: Operation,
    bucket: Option<BucketGuard>,
) -> S3Result<RequestAccess> {
    let template = template_request(head);
    let access = RequestAccess { template, bucket };
    for requirement in required_access(op) {
        match requirement.target {
            AccessTarget::Service => {
                let mut request = access.template.clone();
                request.action = requirement.action;
                ensure(authorize(&request, None))?;
            }
            AccessTarget::Bucket => {
                let guard = target_bucket(&access)?;
                let request = access.request(requirement.action, &guard.name, None);
                ensure(authorize(&request, Some(&guard.access(None))))?;
            }
            // Checked key by key by the handler, which reports refusals per key.
            AccessTarget::Object if op == Operation::DeleteObjects => {}
            AccessTarget::Object => {
                let guard = target_bucket(&access)?;
                let key = head.key.as_deref().unwrap_or_default();
                check_object(backend, &access, guard, key, requirement.action).await?;
            }
            AccessTarget::CopySource => {
                let (source_bucket, source_key) = copy_source(head)?;
                let loaded;
                let guard = match &access.bucket {
                    Some(guard) if guard.name == source_bucket => guard,
                    _ => {
                        loaded = BucketGuard::load(backend, &source_bucket).await?;
                        &loaded
                    }
                };
                check_object(backend, &access, guard, &source_key, requirement.action).await?;
            }
        }
    }
    Ok(access)
}

/// Checks an object-level action, reading the object's ACL only when the owner and policy
/// have not already decided.
async fn check_object<B: S3Backend>(
    backend: &B,
    access: &RequestAccess,
    guard: &BucketGuard,
    key: &str,
    action: Action,
) -> S3Result<()> {
    let request = access.request(action, &guard.name, Some(key));
    let verdict = authorize(&request, Some(&guard.access(None)));
    let needs_object_acl = matches!(acl_requirement(action), Some((AclScope::Object, _)));
    if verdict.is_allowed()
        || !needs_object_acl
        || verdict != Authorization::Denied(Grounds::NoGrant)
    {
        return ensure(verdict);
    }
    match backend.object_acl(&guard.name, key).await {
        Ok(acl) => {
            let acl = acl.unwrap_or_else(|| Acl::private(&guard.owner));
            ensure(authorize(&request, Some(&guard.access(Some(&acl)))))
        }
        Err(err) if err.code == S3ErrorCode::NoSuchKey => {
            // AWS tells a missing key apart from a forbidden one only to callers who could
            // list the bucket anyway.
            if access.allows(Action::ListBucket, None) {
                Err(err)
            } else {
                Err(access_denied())
            }
        }
        Err(err) => Err(err),
    }
}

fn target_bucket(access: &RequestAccess) -> S3Result<&BucketGuard> {
    access
        .bucket
        .as_ref()
        .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidRequest, "A bucket is required"))
}

fn ensure(verdict: Authorization) -> S3Result<()> {
    if verdict.is_allowed() {
        Ok(())
    } else {
        Err(access_denied())
    }
}

fn access_denied() -> S3Error {
    S3ErrorCode::AccessDenied.into()
}

/// The parts of the engine's request that do not depend on the check: principal, address,
/// time and the condition keys the request carries.
fn template_request(head: &RequestHead) -> AccessRequest {
    let principal = match &head.auth.identity {
        Identity::Anonymous => Principal::Anonymous,
        Identity::User { user, .. } => Principal::user(user.as_str()),
    };
    // The action is set by every check; ListBucket is only a placeholder.
    let mut request = AccessRequest::new(principal, Action::ListBucket, None, None);
    request.source_ip = head
        .parts
        .extensions
        .get::<PeerAddr>()
        .map(|peer| peer.0.ip());
    // The S3 port speaks plain HTTP; TLS, where used, ends in front of it.
    request.secure_transport = false;
    request.context = condition_context(head);
    request
}

/// The request's values for the condition keys beyond those the engine derives itself.
fn condition_context(head: &RequestHead) -> ConditionContext {
    let mut context = ConditionContext::default();
    for (key, parameter) in [
        ("s3:prefix", "prefix"),
        ("s3:delimiter", "delimiter"),
        ("s3:max-keys", "max-keys"),
    ] {
        if let Some(value) = head.query.get(parameter) {
            context.insert(key, value);
        }
    }
    for (key, header) in [
        ("s3:x-amz-acl", "x-amz-acl"),
        ("aws:Referer", "referer"),
        ("aws:UserAgent", "user-agent"),
        ("s3:x-amz-copy-source", "x-amz-copy-source"),
        ("s3:x-amz-metadata-directive", "x-amz-metadata-directive"),
    ] {
        if let Some(value) = head.header(header) {
            context.insert(key, value);
        }
    }
    context
}
