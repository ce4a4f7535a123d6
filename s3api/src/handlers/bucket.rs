//! Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation,
//! GetBucketVersioning.

use http::{Response, StatusCode};

use super::{
    check_grantees, empty_response, read_small_body, set_header, xml_response, RequestHead,
};
use crate::access::{acl_from_headers, Acl};
use crate::auth::CredentialProvider;
use crate::backend::S3Backend;
use crate::body::RequestBody;
use crate::enforce::RequestAccess;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::service::{ResponseBody, S3Config};
use crate::xml::{self, ListAllMyBucketsResult, LocationConstraint, Owner};

/// The owner shown in listings of a bucket's objects, parts and uploads: the bucket owner
/// (listings do not read each object's ACL; its owner is the uploader, see GetObjectAcl).
pub(super) fn owner(access: &RequestAccess) -> Owner {
    let id = access
        .bucket()
        .map_or_else(|| access.owner_id(), |bucket| bucket.owner.as_str());
    Owner {
        id: id.to_owned(),
        display_name: id.to_owned(),
    }
}

/// Lists the caller's own buckets; other users' buckets are not shown, even those the caller
/// may read through an ACL or a policy (as in AWS).
pub(super) async fn list_buckets<B: S3Backend>(
    backend: &B,
    access: &RequestAccess,
) -> S3Result<Response<ResponseBody>> {
    let caller = access.owner_id();
    let mut buckets = backend.list_buckets().await?;
    buckets.retain(|bucket| bucket.owner == caller);
    xml_response(
        ListAllMyBucketsResult {
            owner: Owner {
                id: caller.to_owned(),
                display_name: caller.to_owned(),
            },
            buckets,
        }
        .to_xml(),
    )
}

pub(super) async fn create_bucket<B, RB>(
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
    validate_bucket_name(bucket)?;
    let config = read_small_body(head, body).await?;
    // Any location constraint is accepted: a node serves exactly one region, and refusing a
    // mismatch trips tools that always send their configured region.
    xml::parse_create_bucket_configuration(&config)?;
    let owner = access.owner_id();
    let acl =
        acl_from_headers(head.headers(), owner, owner)?.unwrap_or_else(|| Acl::private(owner));
    check_grantees(creds, &acl, owner)?;
    backend.create_bucket(bucket, &acl).await?;
    let mut response = empty_response(StatusCode::OK)?;
    set_header(response.headers_mut(), "location", &format!("/{bucket}"));
    Ok(response)
}

pub(super) async fn head_bucket<B: S3Backend>(
    backend: &B,
    config: &S3Config,
    head: &RequestHead,
) -> S3Result<Response<ResponseBody>> {
    backend.head_bucket(head.bucket()?).await?;
    let mut response = empty_response(StatusCode::OK)?;
    set_header(
        response.headers_mut(),
        "x-amz-bucket-region",
        &config.region,
    );
    Ok(response)
}

pub(super) async fn delete_bucket<B: S3Backend>(
    backend: &B,
    head: &RequestHead,
) -> S3Result<Response<ResponseBody>> {
    backend.delete_bucket(head.bucket()?).await?;
    empty_response(StatusCode::NO_CONTENT)
}

pub(super) async fn get_location<B: S3Backend>(
    backend: &B,
    config: &S3Config,
    head: &RequestHead,
) -> S3Result<Response<ResponseBody>> {
    backend.head_bucket(head.bucket()?).await?;
    xml_response(
        LocationConstraint {
            region: Some(config.region.clone()),
        }
        .to_xml(),
    )
}

/// Buckets are never versioned: the answer is an empty configuration, as AWS gives for a
/// bucket whose versioning was never enabled.
pub(super) async fn get_versioning<B: S3Backend>(
    backend: &B,
    head: &RequestHead,
) -> S3Result<Response<ResponseBody>> {
    backend.head_bucket(head.bucket()?).await?;
    xml_response(format!(
        "{}<VersioningConfiguration xmlns=\"{}\"/>",
        xml::XML_DECLARATION,
        xml::S3_XMLNS
    ))
}

/// S3's bucket naming rules: 3–63 characters of lowercase letters, digits, `.` and `-`,
/// starting and ending with a letter or digit, no `..`, not an IPv4 address.
pub fn validate_bucket_name(name: &str) -> S3Result<()> {
    let invalid = || S3Error::from(S3ErrorCode::InvalidBucketName).with_detail("BucketName", name);
    let bytes = name.as_bytes();
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-';
    let alnum = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !(3..=63).contains(&bytes.len())
        || !bytes.iter().all(allowed)
        || !alnum(bytes.first())
        || !alnum(bytes.last())
        || name.contains("..")
        || name.contains(".-")
        || name.contains("-.")
        || name.parse::<std::net::Ipv4Addr>().is_ok()
    {
        return Err(invalid());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "my-bucket.data", "a1b", &"a".repeat(63)] {
            assert!(validate_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "ABC",
            "-abc",
            "abc-",
            "a..b",
            "a_b",
            "192.168.1.1",
            &"a".repeat(64),
            "a.-b",
        ] {
            assert!(validate_bucket_name(bad).is_err(), "{bad}");
        }
    }
}
