//! Naming the S3 operation a request asks for, and the bucket and key it targets.
//!
//! Path-style (`/bucket/key`) always works; virtual-host style (`bucket.ROOT/key`) works when
//! the node is configured with a root domain. Keys are percent-decoded from the path and kept
//! as opaque UTF-8: `../`, `//` and trailing slashes are ordinary key bytes.

use http::Method;
use percent_encoding::percent_decode_str;

use crate::error::{S3Error, S3ErrorCode, S3Result};

/// The longest key S3 accepts, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// Every operation Mucura recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ListBuckets,
    CreateBucket,
    HeadBucket,
    DeleteBucket,
    GetBucketLocation,
    GetBucketVersioning,
    ListObjectsV1,
    ListObjectsV2,
    ListObjectVersions,
    ListMultipartUploads,
    DeleteObjects,
    PutObject,
    CopyObject,
    GetObject,
    HeadObject,
    DeleteObject,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    GetBucketAcl,
    PutBucketAcl,
    GetObjectAcl,
    PutObjectAcl,
    GetBucketPolicy,
    PutBucketPolicy,
    DeleteBucketPolicy,
    GetBucketCors,
    PutBucketCors,
    DeleteBucketCors,
    /// `OPTIONS` on a bucket or object: a CORS preflight.
    PreflightRequest,
    /// A browser upload: `POST` of a `multipart/form-data` form to the bucket.
    PostObject,
}

impl Operation {
    /// The AWS API name, for logs and metrics.
    pub fn name(self) -> &'static str {
        use Operation::*;
        match self {
            ListBuckets => "ListBuckets",
            CreateBucket => "CreateBucket",
            HeadBucket => "HeadBucket",
            DeleteBucket => "DeleteBucket",
            GetBucketLocation => "GetBucketLocation",
            GetBucketVersioning => "GetBucketVersioning",
            ListObjectsV1 => "ListObjects",
            ListObjectsV2 => "ListObjectsV2",
            ListObjectVersions => "ListObjectVersions",
            ListMultipartUploads => "ListMultipartUploads",
            DeleteObjects => "DeleteObjects",
            PutObject => "PutObject",
            CopyObject => "CopyObject",
            GetObject => "GetObject",
            HeadObject => "HeadObject",
            DeleteObject => "DeleteObject",
            CreateMultipartUpload => "CreateMultipartUpload",
            UploadPart => "UploadPart",
            UploadPartCopy => "UploadPartCopy",
            CompleteMultipartUpload => "CompleteMultipartUpload",
            AbortMultipartUpload => "AbortMultipartUpload",
            ListParts => "ListParts",
            GetBucketAcl => "GetBucketAcl",
            PutBucketAcl => "PutBucketAcl",
            GetObjectAcl => "GetObjectAcl",
            PutObjectAcl => "PutObjectAcl",
            GetBucketPolicy => "GetBucketPolicy",
            PutBucketPolicy => "PutBucketPolicy",
            DeleteBucketPolicy => "DeleteBucketPolicy",
            GetBucketCors => "GetBucketCors",
            PutBucketCors => "PutBucketCors",
            DeleteBucketCors => "DeleteBucketCors",
            PreflightRequest => "PreflightRequest",
            PostObject => "PostObject",
        }
    }
}

/// Sub-resources of real S3 that Mucura does not implement yet: requests naming them get
/// `NotImplemented` rather than being mistaken for a plain object or bucket operation.
const UNSUPPORTED_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "analytics",
    "attributes",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "tagging",
    "torrent",
    "website",
];

/// Decoded query parameters in the order sent.
#[derive(Debug, Clone, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses a raw query string (`a=1&b&c=%20`); `+` means space as in HTML forms, which is
    /// how S3 reads it.
    pub fn parse(raw: Option<&str>) -> Query {
        let Some(raw) = raw else {
            return Query::default();
        };
        let decode = |s: &str| {
            let spaced = s.replace('+', " ");
            percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
        };
        Query(
            raw.split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| match pair.split_once('=') {
                    Some((name, value)) => (decode(name), decode(value)),
                    None => (decode(pair), String::new()),
                })
                .collect(),
        )
    }

    /// The first value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a parameter is present (with or without a value).
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    /// All parameters.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// Where a request points: bucket and key, both decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub bucket: Option<String>,
    pub key: Option<String>,
}

/// Finds bucket and key from the host and raw path. `root_domain` enables virtual-host style.
pub fn resolve_target(
    host: Option<&str>,
    raw_path: &str,
    root_domain: Option<&str>,
) -> S3Result<Target> {
    let path = decode_path(raw_path)?;
    let path = path.strip_prefix('/').unwrap_or(&path);
    let vhost_bucket = match (host, root_domain) {
        (Some(host), Some(root)) => virtual_host_bucket(host, root),
        _ => None,
    };
    let (bucket, key) = match vhost_bucket {
        Some(bucket) => (Some(bucket), non_empty(path)),
        None => match path.split_once('/') {
            Some((bucket, key)) => (non_empty(bucket), non_empty(key)),
            None => (non_empty(path), None),
        },
    };
    if let Some(key) = &key {
        if key.len() > MAX_KEY_LEN {
            return Err(S3Error::from(S3ErrorCode::KeyTooLongError)
                .with_detail("Size", key.len().to_string())
                .with_detail("MaxSizeAllowed", MAX_KEY_LEN.to_string()));
        }
    }
    Ok(Target { bucket, key })
}

/// The bucket named by a virtual-host style Host header, if it is one.
pub fn virtual_host_bucket(host: &str, root_domain: &str) -> Option<String> {
    let host = host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            name
        } else {
            host
        }
    });
    let bucket = host.strip_suffix(root_domain)?.strip_suffix('.')?;
    non_empty(bucket)
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn decode_path(raw: &str) -> S3Result<String> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            S3Error::new(
                S3ErrorCode::InvalidArgument,
                "Object key is not valid UTF-8",
            )
        })
}

/// Names the operation for a method, target and query, or says why it cannot.
pub fn operation(
    method: &Method,
    target: &Target,
    query: &Query,
    has_copy_source: bool,
) -> S3Result<Operation> {
    use Operation::*;
    if let Some(sub) = UNSUPPORTED_SUBRESOURCES.iter().find(|s| query.has(s)) {
        return Err(S3Error::new(
            S3ErrorCode::NotImplemented,
            format!("The '{sub}' sub-resource is not implemented by this server"),
        ));
    }
    let op = match (&target.bucket, &target.key) {
        (None, _) => match *method {
            Method::GET => Some(ListBuckets),
            _ => None,
        },
        (Some(_), None) => match *method {
            Method::PUT if query.has("versioning") => None,
            Method::PUT if query.has("acl") => Some(PutBucketAcl),
            Method::PUT if query.has("policy") => Some(PutBucketPolicy),
            Method::PUT if query.has("cors") => Some(PutBucketCors),
            Method::GET if query.has("cors") => Some(GetBucketCors),
            Method::DELETE if query.has("cors") => Some(DeleteBucketCors),
            Method::OPTIONS => Some(PreflightRequest),
            Method::PUT => Some(CreateBucket),
            Method::GET if query.has("acl") => Some(GetBucketAcl),
            Method::GET if query.has("policy") => Some(GetBucketPolicy),
            Method::DELETE if query.has("policy") => Some(DeleteBucketPolicy),
            // An ACL cannot be deleted, only replaced.
            Method::DELETE if query.has("acl") => None,
            Method::HEAD => Some(HeadBucket),
            Method::DELETE => Some(DeleteBucket),
            Method::GET if query.has("location") => Some(GetBucketLocation),
            Method::GET if query.has("versioning") => Some(GetBucketVersioning),
            Method::GET if query.has("uploads") => Some(ListMultipartUploads),
            Method::GET if query.has("versions") => Some(ListObjectVersions),
            Method::GET if query.get("list-type") == Some("2") => Some(ListObjectsV2),
            Method::GET => Some(ListObjectsV1),
            Method::POST if query.has("delete") => Some(DeleteObjects),
            Method::POST => Some(PostObject),
            _ => None,
        },
        (Some(_), Some(_)) => match *method {
            // Policies and CORS configurations belong to buckets; objects have none.
            _ if query.has("policy") || query.has("cors") => None,
            Method::OPTIONS => Some(PreflightRequest),
            Method::PUT if query.has("acl") => Some(PutObjectAcl),
            Method::GET if query.has("acl") => Some(GetObjectAcl),
            Method::DELETE if query.has("acl") => None,
            Method::PUT if query.has("uploadId") && has_copy_source => Some(UploadPartCopy),
            Method::PUT if query.has("uploadId") => Some(UploadPart),
            Method::PUT if has_copy_source => Some(CopyObject),
            Method::PUT => Some(PutObject),
            Method::GET if query.has("uploadId") => Some(ListParts),
            Method::GET => Some(GetObject),
            Method::HEAD => Some(HeadObject),
            Method::DELETE if query.has("uploadId") => Some(AbortMultipartUpload),
            Method::DELETE => Some(DeleteObject),
            Method::POST if query.has("uploads") => Some(CreateMultipartUpload),
            Method::POST if query.has("uploadId") => Some(CompleteMultipartUpload),
            _ => None,
        },
    };
    op.ok_or_else(|| {
        S3Error::new(
            S3ErrorCode::NotImplemented,
            format!("{method} on this resource is not implemented by this server"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str) -> Target {
        resolve_target(Some("127.0.0.1:9000"), path, None).unwrap()
    }

    #[test]
    fn path_style_keeps_key_bytes_verbatim() {
        let t = target("/bucket/a/..%2F../b//c/");
        assert_eq!(t.bucket.as_deref(), Some("bucket"));
        assert_eq!(t.key.as_deref(), Some("a/../../b//c/"));
        let t = target("/bucket/%E2%82%AC%20x+y");
        assert_eq!(t.key.as_deref(), Some("€ x+y"));
        assert_eq!(target("/bucket/").key, None);
        assert_eq!(target("/").bucket, None);
    }

    #[test]
    fn virtual_host_takes_bucket_from_host() {
        let t = resolve_target(
            Some("photos.s3.example.org:9000"),
            "/a/b",
            Some("s3.example.org"),
        )
        .unwrap();
        assert_eq!(t.bucket.as_deref(), Some("photos"));
        assert_eq!(t.key.as_deref(), Some("a/b"));
        let t =
            resolve_target(Some("s3.example.org"), "/photos/a", Some("s3.example.org")).unwrap();
        assert_eq!(t.bucket.as_deref(), Some("photos"));
    }

    #[test]
    fn overlong_keys_are_rejected() {
        let ok = format!("/b/{}", "k".repeat(1024));
        assert!(resolve_target(None, &ok, None).is_ok());
        let long = format!("/b/{}", "k".repeat(1025));
        let err = resolve_target(None, &long, None).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::KeyTooLongError);
    }

    #[test]
    fn query_decodes_plus_and_percent() {
        let q = Query::parse(Some("prefix=a+b%2Bc&delimiter=%2F&uploads"));
        assert_eq!(q.get("prefix"), Some("a b+c"));
        assert_eq!(q.get("delimiter"), Some("/"));
        assert!(q.has("uploads"));
    }

    #[test]
    fn operations_are_named_from_method_and_query() {
        let obj = target("/b/k");
        let bucket = target("/b");
        let q = |s: &str| Query::parse(Some(s));
        assert_eq!(
            operation(&Method::PUT, &obj, &q("partNumber=1&uploadId=x"), true).unwrap(),
            Operation::UploadPartCopy
        );
        assert_eq!(
            operation(&Method::GET, &bucket, &q("list-type=2"), false).unwrap(),
            Operation::ListObjectsV2
        );
        assert_eq!(
            operation(&Method::POST, &bucket, &q("delete"), false).unwrap(),
            Operation::DeleteObjects
        );
        assert_eq!(
            operation(&Method::PUT, &bucket, &q("acl"), false).unwrap(),
            Operation::PutBucketAcl
        );
        assert_eq!(
            operation(&Method::GET, &obj, &q("acl"), false).unwrap(),
            Operation::GetObjectAcl
        );
        assert_eq!(
            operation(&Method::DELETE, &bucket, &q("policy"), false).unwrap(),
            Operation::DeleteBucketPolicy
        );
        for target in [&obj, &bucket] {
            let err = operation(&Method::DELETE, target, &q("acl"), false).unwrap_err();
            assert_eq!(err.code, S3ErrorCode::NotImplemented);
        }
        let cors = [
            (Method::PUT, &bucket, "cors", Operation::PutBucketCors),
            (Method::GET, &bucket, "cors", Operation::GetBucketCors),
            (Method::DELETE, &bucket, "cors", Operation::DeleteBucketCors),
            (Method::OPTIONS, &bucket, "", Operation::PreflightRequest),
            (Method::OPTIONS, &obj, "", Operation::PreflightRequest),
            (Method::POST, &bucket, "", Operation::PostObject),
        ];
        for (method, target, query, expected) in cors {
            assert_eq!(
                operation(&method, target, &q(query), false).unwrap(),
                expected
            );
        }
        let err = operation(&Method::GET, &obj, &q("cors"), false).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::NotImplemented);
        let err = operation(&Method::PUT, &bucket, &q("website"), false).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::NotImplemented);
        let err = operation(&Method::PATCH, &obj, &q(""), false).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::NotImplemented);
    }
}
