//! The S3 actions that policies name (`s3:GetObject`, …) and the actions each routed
//! [`Operation`] needs.

use std::fmt;
use std::str::FromStr;

use crate::router::Operation;

/// An S3 action as bucket policies name it, e.g. `s3:GetObject`.
///
/// Only the actions Mucura can be asked to authorize are listed; a policy may still name any
/// other `s3:` action (it then simply never matches a request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read an object's data or metadata (GET and HEAD Object).
    GetObject,
    /// Create or overwrite an object, including every step of a multipart upload.
    PutObject,
    /// Delete an object.
    DeleteObject,
    /// List a bucket's objects, or learn that it exists (HeadBucket).
    ListBucket,
    /// List a bucket's object versions.
    ListBucketVersions,
    /// List the caller's own buckets.
    ListAllMyBuckets,
    /// Read an object's ACL.
    GetObjectAcl,
    /// Replace an object's ACL.
    PutObjectAcl,
    /// Read a bucket's ACL.
    GetBucketAcl,
    /// Replace a bucket's ACL.
    PutBucketAcl,
    /// Read a bucket's policy.
    GetBucketPolicy,
    /// Set a bucket's policy.
    PutBucketPolicy,
    /// Remove a bucket's policy.
    DeleteBucketPolicy,
    /// Create a bucket.
    CreateBucket,
    /// Delete a bucket.
    DeleteBucket,
    /// Abort a multipart upload.
    AbortMultipartUpload,
    /// List the parts of a multipart upload.
    ListMultipartUploadParts,
    /// List a bucket's multipart uploads in progress.
    ListBucketMultipartUploads,
    /// Read a bucket's CORS configuration.
    GetBucketCORS,
    /// Set or delete a bucket's CORS configuration (AWS has no separate delete action).
    PutBucketCORS,
    /// Read a bucket's region.
    GetBucketLocation,
    /// Read a bucket's versioning state.
    GetBucketVersioning,
}

/// What kind of resource an action applies to, which decides the ARN a policy's `Resource`
/// is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceLevel {
    /// No bucket: the action concerns the caller's account (ListAllMyBuckets, CreateBucket).
    Service,
    /// The bucket itself: `arn:aws:s3:::bucket`.
    Bucket,
    /// An object: `arn:aws:s3:::bucket/key`.
    Object,
}

impl Action {
    /// Every action, in declaration order.
    pub const ALL: [Action; 22] = [
        Action::GetObject,
        Action::PutObject,
        Action::DeleteObject,
        Action::ListBucket,
        Action::ListBucketVersions,
        Action::ListAllMyBuckets,
        Action::GetObjectAcl,
        Action::PutObjectAcl,
        Action::GetBucketAcl,
        Action::PutBucketAcl,
        Action::GetBucketPolicy,
        Action::PutBucketPolicy,
        Action::DeleteBucketPolicy,
        Action::CreateBucket,
        Action::DeleteBucket,
        Action::AbortMultipartUpload,
        Action::ListMultipartUploadParts,
        Action::ListBucketMultipartUploads,
        Action::GetBucketCORS,
        Action::PutBucketCORS,
        Action::GetBucketLocation,
        Action::GetBucketVersioning,
    ];

    /// The action's name as written in policies, with the `s3:` prefix.
    pub fn as_str(self) -> &'static str {
        use Action::*;
        match self {
            GetObject => "s3:GetObject",
            PutObject => "s3:PutObject",
            DeleteObject => "s3:DeleteObject",
            ListBucket => "s3:ListBucket",
            ListBucketVersions => "s3:ListBucketVersions",
            ListAllMyBuckets => "s3:ListAllMyBuckets",
            GetObjectAcl => "s3:GetObjectAcl",
            PutObjectAcl => "s3:PutObjectAcl",
            GetBucketAcl => "s3:GetBucketAcl",
            PutBucketAcl => "s3:PutBucketAcl",
            GetBucketPolicy => "s3:GetBucketPolicy",
            PutBucketPolicy => "s3:PutBucketPolicy",
            DeleteBucketPolicy => "s3:DeleteBucketPolicy",
            CreateBucket => "s3:CreateBucket",
            DeleteBucket => "s3:DeleteBucket",
            AbortMultipartUpload => "s3:AbortMultipartUpload",
            ListMultipartUploadParts => "s3:ListMultipartUploadParts",
            ListBucketMultipartUploads => "s3:ListBucketMultipartUploads",
            GetBucketCORS => "s3:GetBucketCORS",
            PutBucketCORS => "s3:PutBucketCORS",
            GetBucketLocation => "s3:GetBucketLocation",
            GetBucketVersioning => "s3:GetBucketVersioning",
        }
    }

    /// The resource the action applies to.
    pub fn resource_level(self) -> ResourceLevel {
        use Action::*;
        match self {
            ListAllMyBuckets | CreateBucket => ResourceLevel::Service,
            GetObject
            | PutObject
            | DeleteObject
            | GetObjectAcl
            | PutObjectAcl
            | AbortMultipartUpload
            | ListMultipartUploadParts => ResourceLevel::Object,
            ListBucket
            | ListBucketVersions
            | GetBucketAcl
            | PutBucketAcl
            | GetBucketPolicy
            | PutBucketPolicy
            | DeleteBucketPolicy
            | DeleteBucket
            | ListBucketMultipartUploads
            | GetBucketCORS
            | PutBucketCORS
            | GetBucketLocation
            | GetBucketVersioning => ResourceLevel::Bucket,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a string that names no known action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown S3 action {0:?}")]
pub struct UnknownAction(pub String);

impl FromStr for Action {
    type Err = UnknownAction;

    /// Reads `s3:GetObject`; action names are case-insensitive, as in AWS policies.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|action| action.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownAction(name.to_string()))
    }
}

/// Which resource of a request an [`Action`] must be allowed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessTarget {
    /// The caller's account; no bucket is involved.
    Service,
    /// The bucket the request names.
    Bucket,
    /// The object the request names (for DeleteObjects: each key listed in the body).
    Object,
    /// The object named by `x-amz-copy-source` (CopyObject, UploadPartCopy).
    CopySource,
}

/// One permission check a request needs: `action` allowed on `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// The action to authorize.
    pub action: Action,
    /// The resource it must be authorized on.
    pub target: AccessTarget,
}

/// The checks an operation needs, all of which must pass.
///
/// Every step of a multipart upload counts as `s3:PutObject` on the object (AWS has no
/// separate actions for them); HeadObject is `s3:GetObject`; HeadBucket and both ListObjects
/// versions are `s3:ListBucket`. CopyObject and UploadPartCopy need `s3:GetObject` on the
/// copy source and `s3:PutObject` on the destination. DeleteObjects needs `s3:DeleteObject` on
/// every key of its body, checked key by key (a refused key is reported in the `DeleteResult`
/// as AWS does, without failing the others).
pub fn required_access(operation: Operation) -> &'static [Requirement] {
    use AccessTarget::{Bucket, CopySource, Object, Service};
    // A struct literal (unlike a `const fn` call) is promoted to a `'static` constant.
    macro_rules! on {
        ($action:expr, $target:expr) => {
            Requirement {
                action: $action,
                target: $target,
            }
        };
    }
    use Operation as Op;
    match operation {
        Op::ListBuckets => &[on!(Action::ListAllMyBuckets, Service)],
        Op::CreateBucket => &[on!(Action::CreateBucket, Service)],
        Op::HeadBucket | Op::ListObjectsV1 | Op::ListObjectsV2 => {
            &[on!(Action::ListBucket, Bucket)]
        }
        Op::DeleteBucket => &[on!(Action::DeleteBucket, Bucket)],
        Op::GetBucketLocation => &[on!(Action::GetBucketLocation, Bucket)],
        Op::GetBucketVersioning => &[on!(Action::GetBucketVersioning, Bucket)],
        Op::ListObjectVersions => &[on!(Action::ListBucketVersions, Bucket)],
        Op::ListMultipartUploads => &[on!(Action::ListBucketMultipartUploads, Bucket)],
        Op::DeleteObjects | Op::DeleteObject => &[on!(Action::DeleteObject, Object)],
        Op::PutObject
        | Op::CreateMultipartUpload
        | Op::UploadPart
        | Op::CompleteMultipartUpload => &[on!(Action::PutObject, Object)],
        Op::CopyObject | Op::UploadPartCopy => &[
            on!(Action::GetObject, CopySource),
            on!(Action::PutObject, Object),
        ],
        Op::GetObject | Op::HeadObject => &[on!(Action::GetObject, Object)],
        Op::AbortMultipartUpload => &[on!(Action::AbortMultipartUpload, Object)],
        Op::ListParts => &[on!(Action::ListMultipartUploadParts, Object)],
        Op::GetBucketAcl => &[on!(Action::GetBucketAcl, Bucket)],
        Op::PutBucketAcl => &[on!(Action::PutBucketAcl, Bucket)],
        Op::GetObjectAcl => &[on!(Action::GetObjectAcl, Object)],
        Op::PutObjectAcl => &[on!(Action::PutObjectAcl, Object)],
        Op::GetBucketPolicy => &[on!(Action::GetBucketPolicy, Bucket)],
        Op::PutBucketPolicy => &[on!(Action::PutBucketPolicy, Bucket)],
        Op::DeleteBucketPolicy => &[on!(Action::DeleteBucketPolicy, Bucket)],
        Op::GetBucketCors => &[on!(Action::GetBucketCORS, Bucket)],
        // AWS has no separate action for deleting a CORS configuration.
        Op::PutBucketCors | Op::DeleteBucketCors => &[on!(Action::PutBucketCORS, Bucket)],
        // Preflights are unauthenticated: the bucket's CORS rules decide (see crate::cors).
        Op::PreflightRequest => &[],
        // The key and the signer are in the form: the handler checks `s3:PutObject` once it
        // has read them (see handlers::post_object).
        Op::PostObject => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(action: Action, target: AccessTarget) -> Requirement {
        Requirement { action, target }
    }

    #[test]
    fn names_round_trip_and_parse_case_insensitively() {
        for action in Action::ALL {
            assert_eq!(action.as_str().parse::<Action>().unwrap(), action);
            assert!(action.as_str().starts_with("s3:"));
        }
        assert_eq!("S3:getobject".parse::<Action>().unwrap(), Action::GetObject);
        assert_eq!(
            "s3:GetBucketCors".parse::<Action>().unwrap(),
            Action::GetBucketCORS
        );
        for bad in [
            "GetObject",
            "s3:",
            "s3:GetObjects",
            "iam:GetObject",
            "*",
            "",
        ] {
            assert!(bad.parse::<Action>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = Action::ALL.iter().map(|a| a.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
    }

    #[test]
    fn operations_map_to_actions() {
        use AccessTarget::*;
        let cases: &[(Operation, &[Requirement])] = &[
            (
                Operation::ListBuckets,
                &[on(Action::ListAllMyBuckets, Service)],
            ),
            (Operation::HeadBucket, &[on(Action::ListBucket, Bucket)]),
            (Operation::ListObjectsV1, &[on(Action::ListBucket, Bucket)]),
            (Operation::ListObjectsV2, &[on(Action::ListBucket, Bucket)]),
            (Operation::HeadObject, &[on(Action::GetObject, Object)]),
            (Operation::UploadPart, &[on(Action::PutObject, Object)]),
            (
                Operation::CreateMultipartUpload,
                &[on(Action::PutObject, Object)],
            ),
            (
                Operation::CompleteMultipartUpload,
                &[on(Action::PutObject, Object)],
            ),
            (
                Operation::CopyObject,
                &[
                    on(Action::GetObject, CopySource),
                    on(Action::PutObject, Object),
                ],
            ),
            (
                Operation::UploadPartCopy,
                &[
                    on(Action::GetObject, CopySource),
                    on(Action::PutObject, Object),
                ],
            ),
            (
                Operation::DeleteObjects,
                &[on(Action::DeleteObject, Object)],
            ),
            (
                Operation::ListParts,
                &[on(Action::ListMultipartUploadParts, Object)],
            ),
            (
                Operation::ListMultipartUploads,
                &[on(Action::ListBucketMultipartUploads, Bucket)],
            ),
            (
                Operation::GetBucketCors,
                &[on(Action::GetBucketCORS, Bucket)],
            ),
            (
                Operation::PutBucketCors,
                &[on(Action::PutBucketCORS, Bucket)],
            ),
            (
                Operation::DeleteBucketCors,
                &[on(Action::PutBucketCORS, Bucket)],
            ),
            (Operation::PreflightRequest, &[]),
            (Operation::PostObject, &[]),
        ];
        for (operation, expected) in cases {
            assert_eq!(required_access(*operation), *expected, "{operation:?}");
        }
    }

    #[test]
    fn requirement_targets_agree_with_action_resource_levels() {
        let all_operations = [
            Operation::ListBuckets,
            Operation::CreateBucket,
            Operation::HeadBucket,
            Operation::DeleteBucket,
            Operation::GetBucketLocation,
            Operation::GetBucketVersioning,
            Operation::ListObjectsV1,
            Operation::ListObjectsV2,
            Operation::ListObjectVersions,
            Operation::ListMultipartUploads,
            Operation::DeleteObjects,
            Operation::PutObject,
            Operation::CopyObject,
            Operation::GetObject,
            Operation::HeadObject,
            Operation::DeleteObject,
            Operation::CreateMultipartUpload,
            Operation::UploadPart,
            Operation::UploadPartCopy,
            Operation::CompleteMultipartUpload,
            Operation::AbortMultipartUpload,
            Operation::ListParts,
            Operation::GetBucketAcl,
            Operation::PutBucketAcl,
            Operation::GetObjectAcl,
            Operation::PutObjectAcl,
            Operation::GetBucketPolicy,
            Operation::PutBucketPolicy,
            Operation::DeleteBucketPolicy,
            Operation::GetBucketCors,
            Operation::PutBucketCors,
            Operation::DeleteBucketCors,
            Operation::PreflightRequest,
            Operation::PostObject,
        ];
        for operation in all_operations {
            for requirement in required_access(operation) {
                let expected = match requirement.target {
                    AccessTarget::Service => ResourceLevel::Service,
                    AccessTarget::Bucket => ResourceLevel::Bucket,
                    AccessTarget::Object | AccessTarget::CopySource => ResourceLevel::Object,
                };
                assert_eq!(
                    requirement.action.resource_level(),
                    expected,
                    "{operation:?}"
                );
            }
        }
    }
}
