use http::{HeaderMap, HeaderValue};

use super::*;

const OWNER_ID: &str = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a";

/// The shape of AWS's GetObjectAcl example: an owner, a user grant and a group grant, pretty
/// printed as the documentation shows it.
const AWS_EXAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Owner>
    <ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID>
    <DisplayName>CustomersName@amazon.com</DisplayName>
  </Owner>
  <AccessControlList>
    <Grant>
      <Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">
        <ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID>
        <DisplayName>CustomersName@amazon.com</DisplayName>
      </Grantee>
      <Permission>FULL_CONTROL</Permission>
    </Grant>
    <Grant>
      <Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group">
        <URI>http://acs.amazonaws.com/groups/global/AllUsers</URI>
      </Grantee>
      <Permission>READ</Permission>
    </Grant>
  </AccessControlList>
</AccessControlPolicy>"#;

fn display_names(id: &str) -> Option<String> {
    (id == OWNER_ID).then(|| "CustomersName@amazon.com".to_string())
}

fn compact(xml: &str) -> String {
    let mut lines = xml.lines();
    let declaration = lines.next().unwrap_or_default();
    let body: String = lines.map(str::trim).collect();
    format!("{declaration}\n{body}")
}

#[test]
fn aws_example_round_trips() {
    let acl = Acl::from_xml(AWS_EXAMPLE.as_bytes()).unwrap();
    assert_eq!(
        acl,
        Acl {
            owner: OWNER_ID.into(),
            grants: vec![
                Grant::new(Grantee::User(OWNER_ID.into()), Permission::FullControl),
                Grant::new(Grantee::AllUsers, Permission::Read),
            ],
        }
    );
    let written = acl.to_xml(display_names);
    assert_eq!(written, compact(AWS_EXAMPLE));
    assert_eq!(Acl::from_xml(written.as_bytes()).unwrap(), acl);
}

#[test]
fn every_grantee_kind_round_trips() {
    let acl = Acl {
        owner: "o<&>".into(),
        grants: vec![
            Grant::new(Grantee::User("u\"1".into()), Permission::Read),
            Grant::new(Grantee::AllUsers, Permission::Write),
            Grant::new(Grantee::AuthenticatedUsers, Permission::ReadAcp),
            Grant::new(Grantee::LogDelivery, Permission::WriteAcp),
        ],
    };
    let xml = acl.to_xml(|_| None);
    assert!(xml.contains("<Owner><ID>o&lt;&amp;&gt;</ID><DisplayName></DisplayName></Owner>"));
    assert!(xml.contains(
        "<URI>http://acs.amazonaws.com/groups/s3/LogDelivery</URI></Grantee><Permission>WRITE_ACP</Permission>"
    ));
    assert_eq!(Acl::from_xml(xml.as_bytes()).unwrap(), acl);
}

#[test]
fn empty_list_and_missing_type_are_accepted() {
    let bare = b"<AccessControlPolicy><Owner><ID>me</ID></Owner><AccessControlList>\
        <Grant><Grantee><ID>you</ID></Grantee><Permission>READ</Permission></Grant>\
        <Grant><Grantee><URI>http://acs.amazonaws.com/groups/global/AuthenticatedUsers</URI></Grantee>\
        <Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>";
    let acl = Acl::from_xml(bare).unwrap();
    assert_eq!(
        acl.grants,
        vec![
            Grant::new(Grantee::User("you".into()), Permission::Read),
            Grant::new(Grantee::AuthenticatedUsers, Permission::Read),
        ]
    );
    let empty = b"<AccessControlPolicy><Owner><ID>me</ID></Owner></AccessControlPolicy>";
    assert_eq!(Acl::from_xml(empty).unwrap().grants, vec![]);
}

#[test]
fn bad_documents_are_refused() {
    let grant = |grantee: &str, permission: &str| {
        format!(
            "<AccessControlPolicy><Owner><ID>me</ID></Owner><AccessControlList><Grant>{grantee}\
             <Permission>{permission}</Permission></Grant></AccessControlList></AccessControlPolicy>"
        )
    };
    let user = r#"<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>you</ID></Grantee>"#;
    let cases: Vec<(String, S3ErrorCode)> = vec![
        ("not xml".into(), S3ErrorCode::MalformedACLError),
        ("<Other/>".into(), S3ErrorCode::MalformedACLError),
        (
            "<AccessControlPolicy><AccessControlList/></AccessControlPolicy>".into(),
            S3ErrorCode::MalformedACLError,
        ),
        (
            "<AccessControlPolicy><Owner><ID> </ID></Owner></AccessControlPolicy>".into(),
            S3ErrorCode::MalformedACLError,
        ),
        (grant(user, "READ_WRITE"), S3ErrorCode::MalformedACLError),
        (grant(user, "read"), S3ErrorCode::MalformedACLError),
        (grant("", "READ"), S3ErrorCode::MalformedACLError),
        (
            grant("<Grantee></Grantee>", "READ"),
            S3ErrorCode::MalformedACLError,
        ),
        (
            grant(
                r#"<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Robot"><ID>x</ID></Grantee>"#,
                "READ",
            ),
            S3ErrorCode::MalformedACLError,
        ),
        (
            grant(
                r#"<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><URI>x</URI></Grantee>"#,
                "READ",
            ),
            S3ErrorCode::MalformedACLError,
        ),
        (
            grant(
                r#"<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/Everyone</URI></Grantee>"#,
                "READ",
            ),
            S3ErrorCode::InvalidArgument,
        ),
        (
            grant(
                r#"<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="AmazonCustomerByEmail"><EmailAddress>a@b.c</EmailAddress></Grantee>"#,
                "READ",
            ),
            S3ErrorCode::UnresolvableGrantByEmailAddress,
        ),
    ];
    for (body, expected) in cases {
        let error = Acl::from_xml(body.as_bytes()).unwrap_err();
        assert_eq!(error.code, expected, "{body}");
    }
    assert_eq!(
        Acl::from_xml(&[0xff, 0xfe]).unwrap_err().code,
        S3ErrorCode::MalformedACLError
    );
}

#[test]
fn canned_acls_expand() {
    use CannedAcl::*;
    let full = |id: &str| Grant::new(Grantee::User(id.into()), Permission::FullControl);
    let cases: Vec<(CannedAcl, &str, Vec<Grant>)> = vec![
        (Private, "bob", vec![full("alice")]),
        (
            PublicRead,
            "bob",
            vec![
                full("alice"),
                Grant::new(Grantee::AllUsers, Permission::Read),
            ],
        ),
        (
            PublicReadWrite,
            "bob",
            vec![
                full("alice"),
                Grant::new(Grantee::AllUsers, Permission::Read),
                Grant::new(Grantee::AllUsers, Permission::Write),
            ],
        ),
        (
            AuthenticatedRead,
            "bob",
            vec![
                full("alice"),
                Grant::new(Grantee::AuthenticatedUsers, Permission::Read),
            ],
        ),
        (
            BucketOwnerRead,
            "bob",
            vec![
                full("alice"),
                Grant::new(Grantee::User("bob".into()), Permission::Read),
            ],
        ),
        (BucketOwnerRead, "alice", vec![full("alice")]),
        (
            BucketOwnerFullControl,
            "bob",
            vec![full("alice"), full("bob")],
        ),
        (BucketOwnerFullControl, "alice", vec![full("alice")]),
        (
            LogDeliveryWrite,
            "alice",
            vec![
                full("alice"),
                Grant::new(Grantee::LogDelivery, Permission::Write),
                Grant::new(Grantee::LogDelivery, Permission::ReadAcp),
            ],
        ),
    ];
    for (canned, bucket_owner, grants) in cases {
        let acl = canned.expand("alice", bucket_owner);
        assert_eq!(acl.owner, "alice");
        assert_eq!(
            acl.grants, grants,
            "{canned:?} in a bucket of {bucket_owner}"
        );
        assert_eq!(CannedAcl::parse(canned.as_str()).unwrap(), canned);
    }
    assert_eq!(Acl::private("alice"), Private.expand("alice", "alice"));
}

#[test]
fn unknown_canned_acls_are_refused() {
    let error = CannedAcl::parse("public").unwrap_err();
    assert_eq!(error.code, S3ErrorCode::InvalidArgument);
    assert!(error
        .details
        .contains(&("ArgumentValue", "public".to_string())));
    assert_eq!(
        CannedAcl::parse("Private").unwrap_err().code,
        S3ErrorCode::InvalidArgument
    );
    assert_eq!(
        CannedAcl::parse("aws-exec-read").unwrap_err().code,
        S3ErrorCode::NotImplemented
    );
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for &(name, value) in pairs {
        map.append(name, HeaderValue::from_str(value).unwrap());
    }
    map
}

#[test]
fn acl_headers() {
    assert_eq!(
        acl_from_headers(&headers(&[]), "alice", "bob").unwrap(),
        None
    );
    assert_eq!(
        acl_from_headers(&headers(&[("x-amz-acl", "public-read")]), "alice", "bob").unwrap(),
        Some(CannedAcl::PublicRead.expand("alice", "bob"))
    );
    let granted = acl_from_headers(
        &headers(&[
            (
                "x-amz-grant-read",
                r#"id="bob", uri="http://acs.amazonaws.com/groups/global/AllUsers""#,
            ),
            ("x-amz-grant-full-control", "id=carol"),
            ("x-amz-grant-full-control", r#" ID = "da,ve" "#),
            (
                "x-amz-grant-write-acp",
                r#"uri="http://acs.amazonaws.com/groups/global/AuthenticatedUsers""#,
            ),
            (
                "x-amz-grant-read-acp",
                r#"uri="http://acs.amazonaws.com/groups/s3/LogDelivery""#,
            ),
            ("x-amz-grant-write", "id=erin"),
        ]),
        "alice",
        "alice",
    )
    .unwrap()
    .unwrap();
    assert_eq!(granted.owner, "alice");
    assert_eq!(
        granted.grants,
        vec![
            Grant::new(Grantee::User("bob".into()), Permission::Read),
            Grant::new(Grantee::AllUsers, Permission::Read),
            Grant::new(Grantee::User("erin".into()), Permission::Write),
            Grant::new(Grantee::LogDelivery, Permission::ReadAcp),
            Grant::new(Grantee::AuthenticatedUsers, Permission::WriteAcp),
            Grant::new(Grantee::User("carol".into()), Permission::FullControl),
            Grant::new(Grantee::User("da,ve".into()), Permission::FullControl),
        ]
    );
    assert_eq!(
        granted.granted_user_ids().collect::<Vec<_>>(),
        ["bob", "erin", "carol", "da,ve"]
    );
}

#[test]
fn bad_acl_headers_are_refused() {
    let cases: Vec<(Vec<(&'static str, &str)>, S3ErrorCode)> = vec![
        (
            vec![("x-amz-acl", "private"), ("x-amz-grant-read", "id=bob")],
            S3ErrorCode::InvalidRequest,
        ),
        (
            vec![("x-amz-acl", "everyone")],
            S3ErrorCode::InvalidArgument,
        ),
        (
            vec![("x-amz-grant-read", "bob")],
            S3ErrorCode::InvalidArgument,
        ),
        (
            vec![("x-amz-grant-read", "id=")],
            S3ErrorCode::InvalidArgument,
        ),
        (
            vec![("x-amz-grant-read", r#"id="""#)],
            S3ErrorCode::InvalidArgument,
        ),
        (
            vec![("x-amz-grant-read", "id=bob,")],
            S3ErrorCode::InvalidArgument,
        ),
        (
            vec![("x-amz-grant-read", "name=bob")],
            S3ErrorCode::InvalidArgument,
        ),
        (
            vec![(
                "x-amz-grant-read",
                r#"uri="http://acs.amazonaws.com/groups/global/Everyone""#,
            )],
            S3ErrorCode::InvalidArgument,
        ),
        (
            vec![("x-amz-grant-write", r#"emailAddress="bob@example.org""#)],
            S3ErrorCode::UnresolvableGrantByEmailAddress,
        ),
    ];
    for (pairs, expected) in cases {
        let error = acl_from_headers(&headers(&pairs), "alice", "alice").unwrap_err();
        assert_eq!(error.code, expected, "{pairs:?}");
    }
    let mut non_ascii = HeaderMap::new();
    non_ascii.insert(
        "x-amz-grant-read",
        HeaderValue::from_bytes(b"id=\xe9").unwrap(),
    );
    assert_eq!(
        acl_from_headers(&non_ascii, "alice", "alice")
            .unwrap_err()
            .code,
        S3ErrorCode::InvalidArgument
    );
}

#[test]
fn permissions_and_grantees() {
    let alice = Principal::user("alice");
    let bob = Principal::user("bob");
    let anonymous = Principal::Anonymous;
    let acl = Acl {
        owner: "owner".into(),
        grants: vec![
            Grant::new(Grantee::User("alice".into()), Permission::FullControl),
            Grant::new(Grantee::AuthenticatedUsers, Permission::Read),
            Grant::new(Grantee::AllUsers, Permission::ReadAcp),
            Grant::new(Grantee::LogDelivery, Permission::Write),
        ],
    };
    let cases = [
        (&alice, Permission::Read, true),
        (&alice, Permission::Write, true),
        (&alice, Permission::WriteAcp, true),
        (&alice, Permission::FullControl, true),
        (&bob, Permission::Read, true),
        (&bob, Permission::Write, false),
        (&bob, Permission::ReadAcp, true),
        (&bob, Permission::FullControl, false),
        (&anonymous, Permission::Read, false),
        (&anonymous, Permission::ReadAcp, true),
        (&anonymous, Permission::Write, false),
    ];
    for (principal, permission, expected) in cases {
        assert_eq!(
            acl.allows(principal, permission),
            expected,
            "{principal:?} {permission:?}"
        );
    }
    // The owner keeps ACP rights without any grant, and nothing else.
    let bare = Acl {
        owner: "owner".into(),
        grants: vec![],
    };
    let owner = Principal::user("owner");
    assert!(bare.allows(&owner, Permission::ReadAcp));
    assert!(bare.allows(&owner, Permission::WriteAcp));
    assert!(!bare.allows(&owner, Permission::Read));
    assert!(!bare.allows(&owner, Permission::Write));
}

#[test]
fn permission_names() {
    for permission in [
        Permission::Read,
        Permission::Write,
        Permission::ReadAcp,
        Permission::WriteAcp,
        Permission::FullControl,
    ] {
        assert_eq!(Permission::parse(permission.as_str()), Some(permission));
        assert!(Permission::FullControl.implies(permission));
        assert!(permission.implies(permission));
    }
    assert!(!Permission::Write.implies(Permission::Read));
    assert_eq!(Permission::parse("FULL-CONTROL"), None);
}
