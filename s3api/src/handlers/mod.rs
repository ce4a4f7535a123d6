//! One function per S3 operation, grouped by resource. Each parses what it needs from the
//! request head, calls the backend and builds AWS's response.

mod bucket;
mod copy;
mod cors;
mod delete_objects;
mod listing;
mod multipart;
mod object;
mod permissions;
mod post_object;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use crate::access::{acl_from_headers, Acl, BucketPolicy, Grantee, PolicyError};
use crate::auth::{Authenticated, CredentialProvider};
use crate::backend::{ObjectAttrs, S3Backend};
use crate::body::{ObjectBody, RequestBody};
use crate::enforce::RequestAccess;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::router::{Operation, Query};
use crate::service::{empty_body, full_body, ResponseBody, S3Config};

pub(crate) use self::copy::copy_source;

/// Everything known about a request before its body is read.
#[derive(Debug)]
pub struct RequestHead {
    pub parts: http::request::Parts,
    pub query: Query,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub auth: Authenticated,
    pub request_id: String,
    pub host: Option<String>,
}

impl RequestHead {
    /// The target bucket (present for every operation but ListBuckets).
    fn bucket(&self) -> S3Result<&str> {
        self.bucket
            .as_deref()
            .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidRequest, "A bucket is required"))
    }

    /// The target key (present for every object operation).
    fn key(&self) -> S3Result<&str> {
        self.key
            .as_deref()
            .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidRequest, "An object key is required"))
    }

    fn headers(&self) -> &HeaderMap {
        &self.parts.headers
    }

    /// A header as text, if present and visible ASCII.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A query parameter parsed as a number, `InvalidArgument` when it is not one.
    fn query_number<T: std::str::FromStr>(&self, name: &str) -> S3Result<Option<T>> {
        match self.query.get(name) {
            None => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| {
                S3Error::new(
                    S3ErrorCode::InvalidArgument,
                    format!("Provided {name} not an integer or within integer range"),
                )
                .with_detail("ArgumentName", name)
                .with_detail("ArgumentValue", text)
            }),
        }
    }

    /// The request body as an integrity-checked object body.
    fn object_body<RB>(&self, body: RB) -> S3Result<ObjectBody>
    where
        RB: RequestBody,
    {
        ObjectBody::from_request(body, self.auth.payload.clone(), self.headers())
    }
}

/// Runs one operation the caller was allowed to run (`access`, see [`crate::enforce`]).
pub async fn dispatch<B, RB>(
    backend: &B,
    credentials: &dyn CredentialProvider,
    config: &S3Config,
    head: &RequestHead,
    access: &RequestAccess,
    op: Operation,
    body: RB,
) -> S3Result<Response<ResponseBody>>
where
    B: S3Backend,
    RB: RequestBody,
{
    use Operation::*;
    match op {
        ListBuckets => bucket::list_buckets(backend, access).await,
        CreateBucket => bucket::create_bucket(backend, credentials, head, access, body).await,
        HeadBucket => bucket::head_bucket(backend, config, head).await,
        DeleteBucket => bucket::delete_bucket(backend, head).await,
        GetBucketLocation => bucket::get_location(backend, config, head).await,
        GetBucketVersioning => bucket::get_versioning(backend, head).await,
        ListObjectsV1 => listing::list_objects_v1(backend, access, head).await,
        ListObjectsV2 => listing::list_objects_v2(backend, access, head).await,
        ListObjectVersions => listing::list_object_versions(backend, access, head).await,
        DeleteObjects => delete_objects::delete_objects(backend, head, access, body).await,
        PutObject => object::put_object(backend, credentials, head, access, body).await,
        GetObject => object::get_object(backend, head).await,
        HeadObject => object::head_object(backend, head).await,
        DeleteObject => object::delete_object(backend, head).await,
        CopyObject => copy::copy_object(backend, credentials, head, access).await,
        CreateMultipartUpload => multipart::create(backend, credentials, head, access).await,
        UploadPart => multipart::upload_part(backend, head, body).await,
        UploadPartCopy => copy::upload_part_copy(backend, head).await,
        CompleteMultipartUpload => multipart::complete(backend, head, body).await,
        AbortMultipartUpload => multipart::abort(backend, head).await,
        ListParts => multipart::list_parts(backend, access, head).await,
        ListMultipartUploads => multipart::list_uploads(backend, access, head).await,
        GetBucketAcl => permissions::get_bucket_acl(access),
        PutBucketAcl => permissions::put_bucket_acl(backend, credentials, head, access, body).await,
        GetObjectAcl => permissions::get_object_acl(backend, head, access).await,
        PutObjectAcl => permissions::put_object_acl(backend, credentials, head, access, body).await,
        GetBucketPolicy => permissions::get_bucket_policy(access),
        PutBucketPolicy => {
            permissions::put_bucket_policy(backend, credentials, head, access, body).await
        }
        DeleteBucketPolicy => permissions::delete_bucket_policy(backend, head, access).await,
        GetBucketCors => cors::get_bucket_cors(access),
        PutBucketCors => cors::put_bucket_cors(backend, head, body).await,
        DeleteBucketCors => cors::delete_bucket_cors(backend, head, access).await,
        PreflightRequest => cors::preflight(head, access),
        PostObject => post_object::post_object(backend, credentials, head, access, body).await,
    }
}

/// Largest XML request body accepted (DeleteObjects with 1000 long keys fits).
const MAX_XML_BODY: usize = 4 * 1024 * 1024;

/// Reads a small request body (XML documents) with the same integrity checks as objects.
async fn read_small_body<RB>(head: &RequestHead, body: RB) -> S3Result<Bytes>
where
    RB: RequestBody,
{
    let mut body = head.object_body(body)?;
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.chunk().await? {
        if buf.len() + chunk.len() > MAX_XML_BODY {
            return Err(S3Error::new(
                S3ErrorCode::MalformedXML,
                "The XML you provided was larger than the maximum allowed size",
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// The ACL a new object gets: from `x-amz-acl` or the grant headers, `private` without them.
/// Its owner is the uploader; grants may only name users that exist ([`check_grantees`]).
fn new_object_acl(
    creds: &dyn CredentialProvider,
    headers: &HeaderMap,
    access: &RequestAccess,
) -> S3Result<Acl> {
    let owner = access.owner_id();
    let bucket_owner = access.bucket_owner()?;
    let acl =
        acl_from_headers(headers, owner, bucket_owner)?.unwrap_or_else(|| Acl::private(owner));
    check_grantees(creds, &acl, bucket_owner)?;
    Ok(acl)
}

/// Refuses an ACL about to be stored if a grant names a user `creds` does not know, as AWS
/// does (`InvalidArgument` "Invalid id"): such a grant would give nothing now, and everything
/// to whoever is later created under that id. Groups are always fine, and so are the ACL's
/// owner and the bucket owner, who own what is being shared.
fn check_grantees(creds: &dyn CredentialProvider, acl: &Acl, bucket_owner: &str) -> S3Result<()> {
    for grant in &acl.grants {
        let Grantee::User(id) = &grant.grantee else {
            continue;
        };
        if *id == acl.owner || id == bucket_owner {
            continue;
        }
        if !creds.knows_user(id)? {
            return Err(S3Error::new(S3ErrorCode::InvalidArgument, "Invalid id")
                .with_detail("ArgumentName", "CanonicalUser/ID")
                .with_detail("ArgumentValue", id));
        }
    }
    Ok(())
}

/// Refuses a bucket policy about to be stored if a principal names a user `creds` does not
/// know (`MalformedPolicy` "Invalid principal in policy", as in AWS). `"*"` names nobody in
/// particular; the bucket owner exists by definition.
fn check_principals(
    creds: &dyn CredentialProvider,
    policy: &BucketPolicy,
    bucket_owner: &str,
) -> S3Result<()> {
    for statement in policy.statements() {
        for id in statement.named_users() {
            if id != bucket_owner && !creds.knows_user(id)? {
                return Err(PolicyError::InvalidPrincipal(format!("no user {id:?}")).into());
            }
        }
    }
    Ok(())
}

/// Largest total size of `x-amz-meta-*` names and values, as in AWS.
const MAX_USER_METADATA: usize = 2 * 1024;

/// The object headers a client sets on PUT, copy-with-REPLACE and CreateMultipartUpload.
fn attrs_from_headers(headers: &HeaderMap) -> S3Result<ObjectAttrs> {
    let text = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let mut user_metadata = Vec::new();
    let mut metadata_size = 0;
    for (name, value) in headers {
        if let Some(meta) = name.as_str().strip_prefix("x-amz-meta-") {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            metadata_size += meta.len() + value.len();
            user_metadata.push((meta.to_owned(), value));
        }
    }
    if metadata_size > MAX_USER_METADATA {
        return Err(S3Error::from(S3ErrorCode::MetadataTooLarge)
            .with_detail("Size", metadata_size.to_string())
            .with_detail("MaxSizeAllowed", MAX_USER_METADATA.to_string()));
    }
    user_metadata.sort();
    check_storage_class(headers)?;
    Ok(ObjectAttrs {
        content_type: text("content-type"),
        content_encoding: text("content-encoding").and_then(|enc| strip_aws_chunked(&enc)),
        content_disposition: text("content-disposition"),
        content_language: text("content-language"),
        cache_control: text("cache-control"),
        expires: text("expires"),
        user_metadata,
        acl: None,
    })
}

/// `aws-chunked` describes the transfer, not the object: it is never stored.
fn strip_aws_chunked(encoding: &str) -> Option<String> {
    let kept: Vec<&str> = encoding
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    (!kept.is_empty()).then(|| kept.join(","))
}

/// Storage classes are accepted by name (every object is stored the same way).
fn check_storage_class(headers: &HeaderMap) -> S3Result<()> {
    const KNOWN: &[&str] = &[
        "STANDARD",
        "REDUCED_REDUNDANCY",
        "STANDARD_IA",
        "ONEZONE_IA",
        "INTELLIGENT_TIERING",
        "GLACIER",
        "DEEP_ARCHIVE",
        "GLACIER_IR",
        "OUTPOSTS",
        "EXPRESS_ONEZONE",
    ];
    match headers.get("x-amz-storage-class") {
        Some(v) if !KNOWN.iter().any(|k| v.as_bytes() == k.as_bytes()) => Err(S3Error::new(
            S3ErrorCode::InvalidStorageClass,
            "The storage class you specified is not valid",
        )),
        _ => Ok(()),
    }
}

/// A 200 response with an XML document.
fn xml_response(xml: String) -> S3Result<Response<ResponseBody>> {
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/xml")
        .body(full_body(xml))
        .map_err(S3Error::internal)
}

/// A response without a body.
fn empty_response(status: StatusCode) -> S3Result<Response<ResponseBody>> {
    Response::builder()
        .status(status)
        .body(empty_body())
        .map_err(S3Error::internal)
}

/// Adds a header if the value is representable (values we store always are).
fn set_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
        headers.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::test_support::{example_creds, EXAMPLE_USER};

    /// A provider that knows `example-user` (its key's user) and `alice`, no one else.
    fn creds() -> crate::auth::test_support::StaticCredentials {
        example_creds().knowing(&["alice"])
    }

    fn header_acl(name: &'static str, value: &str) -> Acl {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        acl_from_headers(&headers, EXAMPLE_USER, "bucket-owner")
            .unwrap()
            .unwrap()
    }

    fn assert_invalid_id(result: S3Result<()>, id: &str) {
        let err = result.unwrap_err();
        assert_eq!(err.code, S3ErrorCode::InvalidArgument);
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert_eq!(err.message, "Invalid id");
        let xml = err.to_xml("/b/k", "req");
        assert!(
            xml.contains("<ArgumentName>CanonicalUser/ID</ArgumentName>"),
            "{xml}"
        );
        assert!(
            xml.contains(&format!("<ArgumentValue>{id}</ArgumentValue>")),
            "{xml}"
        );
    }

    #[test]
    fn grant_headers_may_only_name_known_users() {
        let creds = creds();
        let known = header_acl("x-amz-grant-read", r#"id="alice""#);
        check_grantees(&creds, &known, "bucket-owner").unwrap();
        let unknown = header_acl("x-amz-grant-read", r#"id="alice", id="no-such-user""#);
        assert_invalid_id(
            check_grantees(&creds, &unknown, "bucket-owner"),
            "no-such-user",
        );
        let groups = header_acl(
            "x-amz-grant-write",
            &format!(r#"uri="{}""#, crate::access::acl::AUTHENTICATED_USERS_URI),
        );
        check_grantees(&creds, &groups, "bucket-owner").unwrap();
    }

    #[test]
    fn owners_may_be_named_even_when_the_provider_does_not_list_them() {
        // The bucket owner is not among the known users, yet `bucket-owner-full-control`
        // names it: the owners of what is shared exist by definition.
        let acl = header_acl("x-amz-acl", "bucket-owner-full-control");
        check_grantees(&creds(), &acl, "bucket-owner").unwrap();
        let acl = header_acl("x-amz-grant-full-control", r#"id="bucket-owner""#);
        check_grantees(&creds(), &acl, "bucket-owner").unwrap();
    }

    #[test]
    fn acl_documents_may_only_name_known_users() {
        let document = |grantee: &str| {
            format!(
                r#"<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
                <Owner><ID>{EXAMPLE_USER}</ID></Owner><AccessControlList>
                <Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
                  xsi:type="CanonicalUser"><ID>{grantee}</ID></Grantee>
                <Permission>READ</Permission></Grant>
                </AccessControlList></AccessControlPolicy>"#
            )
        };
        let known = Acl::from_xml(document("alice").as_bytes()).unwrap();
        check_grantees(&creds(), &known, EXAMPLE_USER).unwrap();
        let unknown = Acl::from_xml(document("alise").as_bytes()).unwrap();
        assert_invalid_id(check_grantees(&creds(), &unknown, EXAMPLE_USER), "alise");
    }

    #[test]
    fn policies_may_only_name_known_users() {
        let policy = |principal: &str| {
            let text = format!(
                r#"{{"Statement": [{{"Effect": "Allow", "Principal": {principal},
                "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}}]}}"#
            );
            BucketPolicy::parse("b", &text).unwrap()
        };
        for fine in [
            r#""*""#,
            r#"{"AWS": "*"}"#,
            r#"{"AWS": ["alice", "arn:aws:iam::example-user:root"]}"#,
            r#"{"CanonicalUser": "arn:aws:iam::123456789012:user/alice"}"#,
            r#"{"AWS": "bucket-owner"}"#,
        ] {
            check_principals(&creds(), &policy(fine), "bucket-owner").unwrap();
        }
        for (unknown, id) in [
            (r#"{"AWS": ["alice", "no-such-user"]}"#, "no-such-user"),
            (r#"{"AWS": "arn:aws:iam::1:user/path/mallory"}"#, "mallory"),
        ] {
            let err = check_principals(&creds(), &policy(unknown), "bucket-owner").unwrap_err();
            assert_eq!(err.code, S3ErrorCode::MalformedPolicy);
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
            assert!(err.message.starts_with("Invalid principal in policy"));
            assert!(err.message.contains(id), "{}", err.message);
        }
    }

    /// A provider whose user list cannot be read.
    struct BrokenStore;

    impl CredentialProvider for BrokenStore {
        fn lookup(&self, _: &str) -> Option<crate::auth::Credential> {
            None
        }

        fn knows_user(&self, _: &str) -> S3Result<bool> {
            Err(S3Error::internal("the user store could not be read"))
        }
    }

    #[test]
    fn a_store_failure_is_an_internal_error_not_a_refused_grant() {
        let acl = header_acl("x-amz-grant-read", r#"id="alice""#);
        let err = check_grantees(&BrokenStore, &acl, "bucket-owner").unwrap_err();
        assert_eq!(err.code, S3ErrorCode::InternalError);
        // Nothing to look up: no store access needed.
        check_grantees(&BrokenStore, &Acl::private(EXAMPLE_USER), "bucket-owner").unwrap();
    }

    #[test]
    fn aws_chunked_is_not_stored() {
        assert_eq!(strip_aws_chunked("aws-chunked"), None);
        assert_eq!(
            strip_aws_chunked("aws-chunked,gzip").as_deref(),
            Some("gzip")
        );
        assert_eq!(strip_aws_chunked("gzip").as_deref(), Some("gzip"));
    }

    #[test]
    fn user_metadata_is_collected_and_bounded() {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-meta-b", HeaderValue::from_static("2"));
        headers.insert(
            "x-amz-meta-a",
            HeaderValue::from_bytes("é".as_bytes()).unwrap(),
        );
        let attrs = attrs_from_headers(&headers).unwrap();
        assert_eq!(
            attrs.user_metadata,
            vec![("a".into(), "é".into()), ("b".into(), "2".into())]
        );
        headers.insert(
            "x-amz-meta-big",
            HeaderValue::from_str(&"x".repeat(2100)).unwrap(),
        );
        let err = attrs_from_headers(&headers).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::MetadataTooLarge);
    }
}
