//! The permission sub-resources: GetBucketAcl, PutBucketAcl, GetObjectAcl, PutObjectAcl,
//! GetBucketPolicy, PutBucketPolicy, DeleteBucketPolicy. Who may call them was decided before
//! (see [`crate::enforce`]); these read and replace what is stored.

use http::{Response, StatusCode};

use super::{
    check_grantees, check_principals, empty_response, read_small_body, xml_response, RequestHead,
};
use crate::access::{acl_from_headers, Acl, BucketPolicy};
use crate::auth::CredentialProvider;
use crate::backend::S3Backend;
use crate::body::RequestBody;
use crate::enforce::RequestAccess;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::service::{full_body, ResponseBody};

/// Display names are user ids: Mucura keeps no separate display name on the S3 path.
fn display_name(id: &str) -> Option<String> {
    Some(id.to_owned())
}

pub(super) fn get_bucket_acl(access: &RequestAccess) -> S3Result<Response<ResponseBody>> {
    let guard = access
        .bucket()
        .ok_or_else(|| S3Error::internal("no bucket permissions were read for GetBucketAcl"))?;
    xml_response(guard.acl.to_xml(display_name))
}

pub(super) async fn put_bucket_acl<B, RB>(
    backend: &B,
    creds: &dyn CredentialProvider,
    head: &RequestHead,
    access: &RequestAccess,
    body: RB,
) -> S3Result<Response<ResponseBody>>
where
    B: S3Backend,
    RB: RequestBody,
{
    let owner = access.bucket_owner()?;
    let acl = requested_acl(creds, head, body, owner, owner).await?;
    backend.put_bucket_acl(head.bucket()?, &acl).await?;
    empty_response(StatusCode::OK)
}

pub(super) async fn get_object_acl<B: S3Backend>(
    backend: &B,
    head: &RequestHead,
    access: &RequestAccess,
) -> S3Result<Response<ResponseBody>> {
    let acl = current_object_acl(backend, head, access).await?;
    xml_response(acl.to_xml(display_name))
}

pub(super) async fn put_object_acl<B, RB>(
    backend: &B,
    creds: &dyn CredentialProvider,
    head: &RequestHead,
    access: &RequestAccess,
    body: RB,
) -> S3Result<Response<ResponseBody>>
where
    B: S3Backend,
    RB: RequestBody,
{
    let current = current_object_acl(backend, head, access).await?;
    let acl = requested_acl(creds, head, body, &current.owner, access.bucket_owner()?).await?;
    backend
        .put_object_acl(head.bucket()?, head.key()?, &acl)
        .await?;
    empty_response(StatusCode::OK)
}

pub(super) fn get_bucket_policy(access: &RequestAccess) -> S3Result<Response<ResponseBody>> {
    let guard = access
        .bucket()
        .ok_or_else(|| S3Error::internal("no bucket permissions were read for GetBucketPolicy"))?;
    let policy = guard.policy.as_ref().ok_or_else(|| {
        S3Error::from(S3ErrorCode::NoSuchBucketPolicy).with_detail("BucketName", &guard.name)
    })?;
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(full_body(policy.text().to_owned()))
        .map_err(S3Error::internal)
}

/// Stores a policy after validating it for this bucket and checking that the users it names
/// exist (MalformedPolicy otherwise).
pub(super) async fn put_bucket_policy<B, RB>(
    backend: &B,
    creds: &dyn CredentialProvider,
    head: &RequestHead,
    access: &RequestAccess,
    body: RB,
) -> S3Result<Response<ResponseBody>>
where
    B: S3Backend,
    RB: RequestBody,
{
    let bucket = head.bucket()?;
    let document = read_small_body(head, body).await?;
    let text = std::str::from_utf8(&document)
        .map_err(|_| S3Error::new(S3ErrorCode::MalformedPolicy, "Policies must be valid UTF-8"))?;
    let policy = BucketPolicy::parse(bucket, text)?;
    check_principals(creds, &policy, access.bucket_owner()?)?;
    backend
        .put_bucket_policy(bucket, Some(policy.text()))
        .await?;
    empty_response(StatusCode::NO_CONTENT)
}

/// Removes the policy; succeeds when there is none (as in AWS).
pub(super) async fn delete_bucket_policy<B: S3Backend>(
    backend: &B,
    head: &RequestHead,
    access: &RequestAccess,
) -> S3Result<Response<ResponseBody>> {
    let has_policy = access.bucket().is_some_and(|guard| guard.policy.is_some());
    if has_policy {
        backend.put_bucket_policy(head.bucket()?, None).await?;
    }
    empty_response(StatusCode::NO_CONTENT)
}

/// The target object's ACL; an object stored before ACLs is private to the bucket owner.
async fn current_object_acl<B: S3Backend>(
    backend: &B,
    head: &RequestHead,
    access: &RequestAccess,
) -> S3Result<Acl> {
    let stored = backend.object_acl(head.bucket()?, head.key()?).await?;
    match stored {
        Some(acl) => Ok(acl),
        None => Ok(Acl::private(access.bucket_owner()?)),
    }
}

/// The ACL a PutBucketAcl/PutObjectAcl request asks for, for a resource owned by `owner`:
/// exactly one of an `AccessControlPolicy` body, `x-amz-acl` or `x-amz-grant-*` headers
/// (InvalidRequest otherwise). The owner cannot be changed: a body naming another owner is
/// AccessDenied, as in AWS; grants must name users that exist ([`check_grantees`]).
async fn requested_acl<RB: RequestBody>(
    creds: &dyn CredentialProvider,
    head: &RequestHead,
    body: RB,
    owner: &str,
    bucket_owner: &str,
) -> S3Result<Acl> {
    let from_headers = acl_from_headers(head.headers(), owner, bucket_owner)?;
    let document = read_small_body(head, body).await?;
    let has_body = !document.iter().all(u8::is_ascii_whitespace);
    let acl = match (from_headers, has_body) {
        (Some(_), true) => Err(S3Error::new(
            S3ErrorCode::InvalidRequest,
            "Specifying both an ACL document and ACL headers is not allowed",
        )),
        (Some(acl), false) => Ok(acl),
        (None, true) => {
            let acl = Acl::from_xml(&document)?;
            if acl.owner != owner {
                return Err(S3Error::new(
                    S3ErrorCode::AccessDenied,
                    "The owner of an ACL cannot be changed",
                ));
            }
            Ok(acl)
        }
        (None, false) => Err(S3Error::new(
            S3ErrorCode::InvalidRequest,
            "An ACL document, the x-amz-acl header or x-amz-grant-* headers are required",
        )),
    }?;
    check_grantees(creds, &acl, bucket_owner)?;
    Ok(acl)
}
