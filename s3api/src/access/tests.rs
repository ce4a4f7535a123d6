use time::macros::datetime;

use super::*;

const BUCKET: &str = "photos";
const OWNER: &str = "olivia";

fn request(principal: &Principal, action: Action, key: Option<&str>) -> AccessRequest {
    AccessRequest::new(principal.clone(), action, Some(BUCKET), key)
}

fn owner() -> Principal {
    Principal::user(OWNER)
}

fn other() -> Principal {
    Principal::user("oscar")
}

fn bucket<'a>(
    acl: &'a Acl,
    object_acl: Option<&'a Acl>,
    policy: Option<&'a BucketPolicy>,
) -> BucketAccess<'a> {
    BucketAccess {
        owner: OWNER,
        policy,
        acl,
        object_acl,
    }
}

fn allowed(
    principal: &Principal,
    action: Action,
    key: Option<&str>,
    access: &BucketAccess<'_>,
) -> bool {
    authorize(&request(principal, action, key), Some(access)).is_allowed()
}

#[test]
fn bucket_canned_acls_for_owner_other_user_and_anonymous() {
    use CannedAcl::*;
    // (bucket ACL, [owner, other, anonymous] may list, may write, may read the ACL)
    type Expectation = [(bool, bool, bool); 3];
    let cases: [(CannedAcl, Expectation); 4] = [
        (
            Private,
            [
                (true, true, true),
                (false, false, false),
                (false, false, false),
            ],
        ),
        (
            PublicRead,
            [
                (true, true, true),
                (true, false, false),
                (true, false, false),
            ],
        ),
        (
            PublicReadWrite,
            [(true, true, true), (true, true, false), (true, true, false)],
        ),
        (
            AuthenticatedRead,
            [
                (true, true, true),
                (true, false, false),
                (false, false, false),
            ],
        ),
    ];
    let principals = [owner(), other(), Principal::Anonymous];
    for (canned, expectations) in cases {
        let acl = canned.expand(OWNER, OWNER);
        let access = bucket(&acl, None, None);
        for (principal, (list, write, read_acl)) in principals.iter().zip(expectations) {
            let what = format!("{canned:?} for {principal:?}");
            assert_eq!(
                allowed(principal, Action::ListBucket, None, &access),
                list,
                "list {what}"
            );
            assert_eq!(
                allowed(principal, Action::ListBucketMultipartUploads, None, &access),
                list,
                "uploads {what}"
            );
            assert_eq!(
                allowed(principal, Action::PutObject, Some("k"), &access),
                write,
                "put {what}"
            );
            assert_eq!(
                allowed(principal, Action::DeleteObject, Some("k"), &access),
                write,
                "delete {what}"
            );
            assert_eq!(
                allowed(principal, Action::GetBucketAcl, None, &access),
                read_acl,
                "get acl {what}"
            );
            // Only the owner may touch the bucket's other sub-resources, whatever the ACL.
            for owner_only in [
                Action::PutBucketAcl,
                Action::DeleteBucket,
                Action::GetBucketPolicy,
                Action::PutBucketCORS,
                Action::GetBucketLocation,
            ] {
                assert_eq!(
                    allowed(principal, owner_only, None, &access),
                    *principal == owner(),
                    "{owner_only} {what}"
                );
            }
        }
    }
}

#[test]
fn object_reads_follow_the_object_acl() {
    use CannedAcl::*;
    let private_bucket = Acl::private(OWNER);
    let public_bucket = PublicRead.expand(OWNER, OWNER);
    // (object ACL uploaded by oscar into olivia's bucket, [owner, other, anonymous, third] may read)
    let cases = [
        (Private, [true, true, false, false]),
        (PublicRead, [true, true, true, true]),
        (AuthenticatedRead, [true, true, false, true]),
        (BucketOwnerRead, [true, true, false, false]),
    ];
    let principals = [
        owner(),
        other(),
        Principal::Anonymous,
        Principal::user("thea"),
    ];
    for (canned, expectations) in cases {
        let object_acl = canned.expand("oscar", OWNER);
        for bucket_acl in [&private_bucket, &public_bucket] {
            let access = bucket(bucket_acl, Some(&object_acl), None);
            for (principal, expected) in principals.iter().zip(expectations) {
                assert_eq!(
                    allowed(principal, Action::GetObject, Some("k"), &access),
                    expected,
                    "{canned:?} object, {principal:?}"
                );
            }
        }
    }
    // The object's owner reads and replaces its ACL through the implicit ACP rights.
    let object_acl = Acl {
        owner: "oscar".into(),
        grants: vec![],
    };
    let access = bucket(&private_bucket, Some(&object_acl), None);
    assert!(allowed(&other(), Action::GetObjectAcl, Some("k"), &access));
    assert!(allowed(&other(), Action::PutObjectAcl, Some("k"), &access));
    assert!(!allowed(&other(), Action::GetObject, Some("k"), &access));
    // A public bucket does not make its objects public, nor a missing object readable.
    let access = bucket(&public_bucket, None, None);
    assert!(!allowed(
        &Principal::Anonymous,
        Action::GetObject,
        Some("k"),
        &access
    ));
    assert!(allowed(&owner(), Action::GetObject, Some("k"), &access));
    assert!(allowed(
        &Principal::Anonymous,
        Action::ListBucket,
        None,
        &access
    ));
}

#[test]
fn explicit_grants_to_another_user() {
    let acl = Acl {
        owner: OWNER.into(),
        grants: vec![
            Grant::new(Grantee::User(OWNER.into()), Permission::FullControl),
            Grant::new(Grantee::User("oscar".into()), Permission::Write),
            Grant::new(Grantee::User("thea".into()), Permission::FullControl),
        ],
    };
    let access = bucket(&acl, None, None);
    assert!(allowed(&other(), Action::PutObject, Some("k"), &access));
    assert!(allowed(
        &other(),
        Action::AbortMultipartUpload,
        Some("k"),
        &access
    ));
    assert!(allowed(
        &other(),
        Action::ListMultipartUploadParts,
        Some("k"),
        &access
    ));
    assert!(!allowed(&other(), Action::ListBucket, None, &access));
    let thea = Principal::user("thea");
    assert!(allowed(&thea, Action::ListBucket, None, &access));
    assert!(allowed(&thea, Action::PutBucketAcl, None, &access));
    assert!(!allowed(&thea, Action::PutBucketPolicy, None, &access));
}

#[test]
fn policy_deny_wins_over_owner_and_acl() {
    let policy = BucketPolicy::parse(
        BUCKET,
        r#"{"Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": ["s3:*"], "Resource": "arn:aws:s3:::photos/locked/*"},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": ["arn:aws:s3:::photos", "arn:aws:s3:::photos/*"],
             "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}}
        ]}"#,
    )
    .unwrap();
    let public = CannedAcl::PublicReadWrite.expand(OWNER, OWNER);
    let object_acl = CannedAcl::PublicRead.expand(OWNER, OWNER);
    let access = bucket(&public, Some(&object_acl), Some(&policy));
    for principal in [owner(), other(), Principal::Anonymous] {
        let locked = request(&principal, Action::GetObject, Some("locked/a"));
        assert_eq!(
            authorize(&locked, Some(&access)),
            Authorization::Denied(Grounds::PolicyDeny),
            "{principal:?}"
        );
        assert!(allowed(
            &principal,
            Action::GetObject,
            Some("open/a"),
            &access
        ));
        let mut from_blocked = request(&principal, Action::ListBucket, None);
        from_blocked.source_ip = Some("203.0.113.9".parse().unwrap());
        assert!(!authorize(&from_blocked, Some(&access)).is_allowed());
    }
    // The owner keeps control of the policy itself, even from the blocked network.
    for action in [
        Action::GetBucketPolicy,
        Action::PutBucketPolicy,
        Action::DeleteBucketPolicy,
    ] {
        let mut fix = request(&owner(), action, None);
        fix.source_ip = Some("203.0.113.9".parse().unwrap());
        assert_eq!(
            authorize(&fix, Some(&access)),
            Authorization::Allowed(Grounds::BucketOwner)
        );
    }
}

#[test]
fn policy_allow_grants_beyond_the_acl() {
    let policy = BucketPolicy::parse(
        BUCKET,
        r#"{"Version": "2012-10-17", "Statement": [
            {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::photos/public/*"},
            {"Sid": "OscarWrites", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::oscar:root"},
             "Action": ["s3:PutObject", "s3:ListBucket"], "Resource": ["arn:aws:s3:::photos", "arn:aws:s3:::photos/oscar/*"],
             "Condition": {"DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"}}}
        ]}"#,
    )
    .unwrap();
    let acl = Acl::private(OWNER);
    let object_acl = Acl::private(OWNER);
    let access = bucket(&acl, Some(&object_acl), Some(&policy));
    let anonymous = Principal::Anonymous;
    assert_eq!(
        authorize(
            &request(&anonymous, Action::GetObject, Some("public/a")),
            Some(&access)
        ),
        Authorization::Allowed(Grounds::PolicyAllow)
    );
    assert_eq!(
        authorize(
            &request(&anonymous, Action::GetObject, Some("private/a")),
            Some(&access)
        ),
        Authorization::Denied(Grounds::NoGrant)
    );
    let mut put = request(&other(), Action::PutObject, Some("oscar/f"));
    put.now = datetime!(2026-12-31 23:59:59 UTC);
    assert!(authorize(&put, Some(&access)).is_allowed());
    put.now = datetime!(2027-01-01 00:00:00 UTC);
    assert!(!authorize(&put, Some(&access)).is_allowed());
    assert!(!allowed(
        &other(),
        Action::PutObject,
        Some("olivia/f"),
        &access
    ));
    assert!(!allowed(
        &other(),
        Action::DeleteObject,
        Some("oscar/f"),
        &access
    ));
}

#[test]
fn service_actions_need_a_signature_only() {
    for action in [Action::ListAllMyBuckets, Action::CreateBucket] {
        let signed = AccessRequest::new(other(), action, None, None);
        assert_eq!(
            authorize(&signed, None),
            Authorization::Allowed(Grounds::Signature)
        );
        let anonymous = AccessRequest::new(Principal::Anonymous, action, Some("new"), None);
        assert_eq!(
            authorize(&anonymous, None),
            Authorization::Denied(Grounds::Signature)
        );
    }
    let list = request(&owner(), Action::ListBucket, None);
    assert_eq!(
        authorize(&list, None),
        Authorization::Denied(Grounds::NoGrant)
    );
}

#[test]
fn acl_requirements_match_the_documented_table() {
    use AclScope::*;
    use Permission::*;
    let cases = [
        (Action::GetObject, Some((Object, Read))),
        (Action::GetObjectAcl, Some((Object, ReadAcp))),
        (Action::PutObjectAcl, Some((Object, WriteAcp))),
        (Action::PutObject, Some((Bucket, Write))),
        (Action::DeleteObject, Some((Bucket, Write))),
        (Action::AbortMultipartUpload, Some((Bucket, Write))),
        (Action::ListMultipartUploadParts, Some((Bucket, Write))),
        (Action::ListBucket, Some((Bucket, Read))),
        (Action::ListBucketVersions, Some((Bucket, Read))),
        (Action::ListBucketMultipartUploads, Some((Bucket, Read))),
        (Action::GetBucketAcl, Some((Bucket, ReadAcp))),
        (Action::PutBucketAcl, Some((Bucket, WriteAcp))),
        (Action::GetBucketPolicy, None),
        (Action::DeleteBucket, None),
        (Action::GetBucketVersioning, None),
    ];
    for (action, expected) in cases {
        assert_eq!(acl_requirement(action), expected, "{action}");
    }
}

#[test]
fn request_derived_condition_keys() {
    let mut req = AccessRequest::new(other(), Action::ListBucket, Some(BUCKET), None);
    req.now = datetime!(2026-06-01 12:00:00.5 UTC);
    req.source_ip = Some("::ffff:10.0.0.1".parse().unwrap());
    req.secure_transport = true;
    req.context.insert("S3:Prefix", "a/");
    assert_eq!(req.condition_values("aws:sourceip"), ["10.0.0.1"]);
    assert_eq!(
        req.condition_values("aws:currenttime"),
        ["2026-06-01T12:00:00.5Z"]
    );
    assert_eq!(req.condition_values("aws:epochtime"), ["1780315200"]);
    assert_eq!(req.condition_values("aws:securetransport"), ["true"]);
    assert_eq!(req.condition_values("aws:username"), ["oscar"]);
    assert_eq!(req.condition_values("aws:userid"), ["oscar"]);
    assert_eq!(req.condition_values("s3:prefix"), ["a/"]);
    assert!(req.condition_values("s3:delimiter").is_empty());
    req.principal = Principal::Anonymous;
    req.source_ip = None;
    assert!(req.condition_values("aws:username").is_empty());
    assert!(req.condition_values("aws:sourceip").is_empty());
}
