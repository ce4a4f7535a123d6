//! Sharing through the whole S3 service over a real store: ownership, canned ACLs, grants,
//! bucket policies and anonymous access, for the bucket owner, another user and anonymous
//! clients; and the permissions surviving a restart of the store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use s3api::access::{CannedAcl, Grant, Grantee, Permission};
use s3api::auth::signer::sign_v4;
use s3api::auth::{Credential, CredentialProvider, SecretKey, UNSIGNED_PAYLOAD};
use s3api::observe::PeerAddr;
use s3api::service::{ResponseBody, S3Config, S3Service};

use super::*;

/// The users of these tests; each has one key named after it.
const USERS: [&str; 3] = ["alice", "bob", "carol"];

/// A fixed table of keys: user `u` signs with key `AK-u` and secret `secret-of-u`.
struct TestKeys(HashMap<String, Credential>);

impl TestKeys {
    fn new() -> TestKeys {
        TestKeys(
            USERS
                .iter()
                .map(|user| {
                    let credential = Credential {
                        access_key: format!("AK-{user}"),
                        secret: SecretKey::new(format!("secret-of-{user}")),
                        user: (*user).to_owned(),
                    };
                    (credential.access_key.clone(), credential)
                })
                .collect(),
        )
    }
}

impl CredentialProvider for TestKeys {
    fn lookup(&self, access_key: &str) -> Option<Credential> {
        self.0.get(access_key).cloned()
    }
}

type Service = S3Service<Store, TestKeys>;

fn service(store: Store) -> Service {
    S3Service::new(
        Arc::new(store),
        Arc::new(TestKeys::new()),
        S3Config::default(),
    )
}

/// A request by `user` (`None`: anonymous) with extra headers.
fn request(
    user: Option<&str>,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Request<Full<Bytes>> {
    let uri: Uri = format!("http://127.0.0.1:9000{path}").parse().unwrap();
    let mut request = Request::builder()
        .method(method.clone())
        .uri(uri.clone())
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    for (name, value) in headers {
        let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    if let Some(user) = user {
        sign_v4(
            &method,
            &uri,
            request.headers_mut(),
            UNSIGNED_PAYLOAD,
            &format!("AK-{user}"),
            &SecretKey::new(format!("secret-of-{user}")),
            "us-east-1",
            SystemTime::now(),
        );
    }
    request
        .extensions_mut()
        .insert(PeerAddr("10.1.2.3:4567".parse().unwrap()));
    request
}

async fn text(response: Response<ResponseBody>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Sends a request and returns status and body.
async fn send(
    s3: &Service,
    user: Option<&str>,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let response = s3.handle(request(user, method, path, headers, body)).await;
    let status = response.status().as_u16();
    (status, text(response).await)
}

async fn status(s3: &Service, user: Option<&str>, method: Method, path: &str) -> u16 {
    send(s3, user, method, path, &[], "").await.0
}

async fn fresh_service() -> (tempfile::TempDir, Service) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(small_config(dir.path())).unwrap();
    (dir, service(store))
}

const ALICE: Option<&str> = Some("alice");
const BOB: Option<&str> = Some("bob");
const ANONYMOUS: Option<&str> = None;

#[tokio::test]
async fn private_buckets_are_their_owners_alone() {
    let (_dir, s3) = fresh_service().await;
    assert_eq!(status(&s3, ALICE, Method::PUT, "/alices").await, 200);
    assert_eq!(status(&s3, BOB, Method::PUT, "/bobs").await, 200);
    let (code, _) = send(&s3, ALICE, Method::PUT, "/alices/k", &[], "secret").await;
    assert_eq!(code, 200);

    // Someone else's name: taken; one's own: already owned.
    let (code, body) = send(&s3, BOB, Method::PUT, "/alices", &[], "").await;
    assert_eq!(code, 409);
    assert!(body.contains("BucketAlreadyExists"), "{body}");
    let (_, body) = send(&s3, ALICE, Method::PUT, "/alices", &[], "").await;
    assert!(body.contains("BucketAlreadyOwnedByYou"), "{body}");

    let (_, listing) = send(&s3, BOB, Method::GET, "/", &[], "").await;
    assert!(listing.contains("<Name>bobs</Name>"), "{listing}");
    assert!(!listing.contains("alices"), "{listing}");
    assert!(listing.contains("<Owner><ID>bob</ID>"), "{listing}");

    for (method, path) in [
        (Method::GET, "/alices/k"),
        (Method::HEAD, "/alices/k"),
        (Method::GET, "/alices"),
        (Method::HEAD, "/alices"),
        (Method::PUT, "/alices/new"),
        (Method::DELETE, "/alices/k"),
        (Method::GET, "/alices?acl"),
        (Method::GET, "/alices?policy"),
        (Method::DELETE, "/alices"),
        (Method::GET, "/alices/missing"),
    ] {
        assert_eq!(
            status(&s3, BOB, method.clone(), path).await,
            403,
            "bob {method} {path}"
        );
        assert_eq!(
            status(&s3, ANONYMOUS, method.clone(), path).await,
            403,
            "anonymous {method} {path}"
        );
    }
    // A missing bucket is missing for everyone; a missing key is NoSuchKey to its owner.
    assert_eq!(status(&s3, BOB, Method::GET, "/nobody/k").await, 404);
    assert_eq!(
        status(&s3, ALICE, Method::GET, "/alices/missing").await,
        404
    );
    assert_eq!(status(&s3, ANONYMOUS, Method::GET, "/").await, 403);
    // A copy out of alice's bucket needs read access to the source.
    let copy = [("x-amz-copy-source", "/alices/k")];
    let (code, _) = send(&s3, BOB, Method::PUT, "/bobs/stolen", &copy, "").await;
    assert_eq!(code, 403);
    let (code, _) = send(&s3, ALICE, Method::PUT, "/alices/copy", &copy, "").await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn canned_acls_open_exactly_what_they_name() {
    let (_dir, s3) = fresh_service().await;
    let public_read = [("x-amz-acl", "public-read")];
    let (code, _) = send(&s3, ALICE, Method::PUT, "/pub", &public_read, "").await;
    assert_eq!(code, 200);
    send(
        &s3,
        ALICE,
        Method::PUT,
        "/pub/open",
        &public_read,
        "for all",
    )
    .await;
    send(&s3, ALICE, Method::PUT, "/pub/closed", &[], "mine").await;
    let authenticated = [("x-amz-acl", "authenticated-read")];
    send(&s3, ALICE, Method::PUT, "/pub/members", &authenticated, "m").await;

    // Bucket READ lists; object READ reads that object only.
    assert_eq!(status(&s3, ANONYMOUS, Method::GET, "/pub").await, 200);
    let (code, body) = send(&s3, ANONYMOUS, Method::GET, "/pub/open", &[], "").await;
    assert_eq!((code, body.as_str()), (200, "for all"));
    assert_eq!(status(&s3, BOB, Method::GET, "/pub/open").await, 200);
    assert_eq!(
        status(&s3, ANONYMOUS, Method::GET, "/pub/closed").await,
        403
    );
    assert_eq!(status(&s3, BOB, Method::GET, "/pub/closed").await, 403);
    assert_eq!(
        status(&s3, ANONYMOUS, Method::GET, "/pub/members").await,
        403
    );
    assert_eq!(status(&s3, BOB, Method::GET, "/pub/members").await, 200);
    // Who may list learns that a key is missing; READ is not WRITE, nor ACL access.
    assert_eq!(
        status(&s3, ANONYMOUS, Method::GET, "/pub/missing").await,
        404
    );
    let (code, _) = send(&s3, ANONYMOUS, Method::PUT, "/pub/graffiti", &[], "x").await;
    assert_eq!(code, 403);
    assert_eq!(
        status(&s3, ANONYMOUS, Method::DELETE, "/pub/open").await,
        403
    );
    assert_eq!(status(&s3, BOB, Method::GET, "/pub?acl").await, 403);

    // public-read-write lets anyone write; the bucket owner still controls the result.
    let (code, _) = send(
        &s3,
        ALICE,
        Method::PUT,
        "/pub?acl",
        &[("x-amz-acl", "public-read-write")],
        "",
    )
    .await;
    assert_eq!(code, 200);
    let (code, _) = send(&s3, ANONYMOUS, Method::PUT, "/pub/drop", &[], "x").await;
    assert_eq!(code, 200);
    assert_eq!(status(&s3, ALICE, Method::GET, "/pub/drop").await, 200);
    // DeleteObjects is authorized key by key.
    let delete = "<Delete><Object><Key>drop</Key></Object></Delete>";
    let (code, body) = send(&s3, BOB, Method::POST, "/pub?delete", &[], delete).await;
    assert_eq!(code, 200);
    assert!(body.contains("<Deleted><Key>drop</Key>"), "{body}");
    send(&s3, ALICE, Method::PUT, "/pub?acl", &public_read, "").await;
    let delete = "<Delete><Object><Key>open</Key></Object></Delete>";
    let (_, body) = send(&s3, BOB, Method::POST, "/pub?delete", &[], delete).await;
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    assert_eq!(status(&s3, ALICE, Method::GET, "/pub/open").await, 200);
}

#[tokio::test]
async fn acl_documents_round_trip_and_grants_let_named_users_in() {
    let (_dir, s3) = fresh_service().await;
    send(&s3, ALICE, Method::PUT, "/acls", &[], "").await;
    send(&s3, ALICE, Method::PUT, "/acls/doc", &[], "shared").await;
    assert_eq!(status(&s3, BOB, Method::GET, "/acls/doc").await, 403);

    let grant = [("x-amz-grant-read", "id=\"bob\"")];
    let (code, _) = send(&s3, ALICE, Method::PUT, "/acls/doc?acl", &grant, "").await;
    assert_eq!(code, 200);
    assert_eq!(status(&s3, BOB, Method::GET, "/acls/doc").await, 200);
    assert_eq!(
        status(&s3, Some("carol"), Method::GET, "/acls/doc").await,
        403
    );

    let (code, xml) = send(&s3, ALICE, Method::GET, "/acls/doc?acl", &[], "").await;
    assert_eq!(code, 200);
    let parsed = s3api::access::Acl::from_xml(xml.as_bytes()).unwrap();
    assert_eq!(parsed.owner, "alice");
    assert_eq!(
        parsed.grants,
        vec![Grant::new(Grantee::User("bob".into()), Permission::Read)]
    );

    // The document alice reads back is one she can send back, here granting carol as well.
    let with_carol = xml.replace(
        "</AccessControlList>",
        "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xsi:type=\"CanonicalUser\"><ID>carol</ID></Grantee><Permission>READ</Permission>\
         </Grant></AccessControlList>",
    );
    let (code, _) = send(&s3, ALICE, Method::PUT, "/acls/doc?acl", &[], &with_carol).await;
    assert_eq!(code, 200);
    assert_eq!(
        status(&s3, Some("carol"), Method::GET, "/acls/doc").await,
        200
    );

    // Exactly one of body, canned ACL and grant headers.
    let canned = [("x-amz-acl", "private")];
    let (code, body) = send(
        &s3,
        ALICE,
        Method::PUT,
        "/acls/doc?acl",
        &canned,
        &with_carol,
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("InvalidRequest"), "{body}");
    let (code, _) = send(&s3, ALICE, Method::PUT, "/acls/doc?acl", &[], "").await;
    assert_eq!(code, 400);
    let both = [("x-amz-acl", "private"), ("x-amz-grant-read", "id=bob")];
    let (code, _) = send(&s3, ALICE, Method::PUT, "/acls/doc?acl", &both, "").await;
    assert_eq!(code, 400);
    let (code, body) = send(&s3, ALICE, Method::PUT, "/acls/doc?acl", &[], "<nope").await;
    assert_eq!(code, 400);
    assert!(body.contains("MalformedACLError"), "{body}");

    // A bucket ACL granting bob WRITE lets him upload; his object is his.
    let write = [("x-amz-grant-write", "id=bob")];
    let (code, _) = send(&s3, ALICE, Method::PUT, "/acls?acl", &write, "").await;
    assert_eq!(code, 200);
    let (code, _) = send(&s3, BOB, Method::PUT, "/acls/from-bob", &[], "hi").await;
    assert_eq!(code, 200);
    let (_, xml) = send(&s3, BOB, Method::GET, "/acls/from-bob?acl", &[], "").await;
    assert!(xml.contains("<Owner><ID>bob</ID>"), "{xml}");
    let (_, xml) = send(&s3, ALICE, Method::GET, "/acls?acl", &[], "").await;
    assert!(xml.contains("<Permission>WRITE</Permission>"), "{xml}");
}

#[tokio::test]
async fn policies_allow_and_explicit_deny_wins_over_acl_grants() {
    let (_dir, s3) = fresh_service().await;
    let public_read = [("x-amz-acl", "public-read")];
    send(&s3, ALICE, Method::PUT, "/pol", &[], "").await;
    send(&s3, ALICE, Method::PUT, "/pol/shared/a", &[], "a").await;
    send(
        &s3,
        ALICE,
        Method::PUT,
        "/pol/shared/secret",
        &public_read,
        "s",
    )
    .await;
    send(&s3, ALICE, Method::PUT, "/pol/private/b", &[], "b").await;

    let (code, body) = send(&s3, ALICE, Method::GET, "/pol?policy", &[], "").await;
    assert_eq!(code, 404);
    assert!(body.contains("NoSuchBucketPolicy"), "{body}");
    let (code, body) = send(&s3, ALICE, Method::PUT, "/pol?policy", &[], "{\"nope\":1}").await;
    assert_eq!(code, 400);
    assert!(body.contains("MalformedPolicy"), "{body}");

    let policy = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"s3:GetObject",
         "Resource":"arn:aws:s3:::pol/shared/*"},
        {"Effect":"Deny","Principal":"*","Action":"s3:GetObject",
         "Resource":"arn:aws:s3:::pol/shared/secret"}]}"#;
    let (code, _) = send(&s3, ALICE, Method::PUT, "/pol?policy", &[], policy).await;
    assert_eq!(code, 204);
    let (code, stored) = send(&s3, ALICE, Method::GET, "/pol?policy", &[], "").await;
    assert_eq!((code, stored.as_str()), (200, policy));

    assert_eq!(status(&s3, BOB, Method::GET, "/pol/shared/a").await, 200);
    assert_eq!(status(&s3, BOB, Method::GET, "/pol/private/b").await, 403);
    assert_eq!(
        status(&s3, Some("carol"), Method::GET, "/pol/shared/a").await,
        403
    );
    // The object ACL says public-read; the policy's Deny wins, even for the owner.
    assert_eq!(
        status(&s3, ANONYMOUS, Method::GET, "/pol/shared/secret").await,
        403
    );
    assert_eq!(
        status(&s3, ALICE, Method::GET, "/pol/shared/secret").await,
        403
    );
    // The owner keeps control of the policy itself.
    assert_eq!(status(&s3, ALICE, Method::DELETE, "/pol?policy").await, 204);
    assert_eq!(
        status(&s3, ALICE, Method::GET, "/pol/shared/secret").await,
        200
    );
    assert_eq!(
        status(&s3, ANONYMOUS, Method::GET, "/pol/shared/secret").await,
        200
    );
    assert_eq!(status(&s3, BOB, Method::GET, "/pol/shared/a").await, 403);

    // Conditions see the request's keys: listing allowed only under a prefix.
    let listing = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket",
        "Resource":"arn:aws:s3:::pol","Condition":{"StringLike":{"s3:prefix":"shared/*"}}}]}"#;
    send(&s3, ALICE, Method::PUT, "/pol?policy", &[], listing).await;
    assert_eq!(
        status(&s3, ANONYMOUS, Method::GET, "/pol?prefix=shared/").await,
        200
    );
    assert_eq!(
        status(&s3, ANONYMOUS, Method::GET, "/pol?prefix=private/").await,
        403
    );
    assert_eq!(status(&s3, ANONYMOUS, Method::GET, "/pol").await, 403);
}

#[tokio::test]
async fn permissions_and_owners_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s3 = service(Store::open(small_config(dir.path())).unwrap());
        send(
            &s3,
            ALICE,
            Method::PUT,
            "/kept",
            &[("x-amz-acl", "public-read")],
            "",
        )
        .await;
        send(
            &s3,
            ALICE,
            Method::PUT,
            "/kept/o",
            &[("x-amz-grant-read", "id=bob")],
            "o",
        )
        .await;
        let policy = r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::kept"}]}"#;
        let (code, _) = send(&s3, ALICE, Method::PUT, "/kept?policy", &[], policy).await;
        assert_eq!(code, 204);
    }
    let store = Store::open(small_config(dir.path())).unwrap();
    let permissions = store.bucket_permissions("kept").await.unwrap();
    assert_eq!(permissions.owner, "alice");
    assert_eq!(
        permissions.acl,
        CannedAcl::PublicRead.expand("alice", "alice")
    );
    assert!(permissions.policy.is_some());
    let s3 = service(store);
    assert_eq!(status(&s3, BOB, Method::GET, "/kept/o").await, 200);
    assert_eq!(
        status(&s3, Some("carol"), Method::GET, "/kept/o").await,
        403
    );
    assert_eq!(status(&s3, ANONYMOUS, Method::GET, "/kept").await, 403);
    let (_, listing) = send(&s3, ALICE, Method::GET, "/", &[], "").await;
    assert!(listing.contains("<Name>kept</Name>"), "{listing}");
}

#[tokio::test]
async fn multipart_uploads_and_copies_give_the_requested_acl() {
    let (_dir, s3) = fresh_service().await;
    send(&s3, ALICE, Method::PUT, "/mpu", &[], "").await;
    let public_read = [("x-amz-acl", "public-read")];
    let (code, created) = send(
        &s3,
        ALICE,
        Method::POST,
        "/mpu/big?uploads",
        &public_read,
        "",
    )
    .await;
    assert_eq!(code, 200, "{created}");
    let upload_id = created
        .split("<UploadId>")
        .nth(1)
        .and_then(|rest| rest.split("</UploadId>").next())
        .unwrap()
        .to_owned();
    let part = s3
        .handle(request(
            ALICE,
            Method::PUT,
            &format!("/mpu/big?partNumber=1&uploadId={upload_id}"),
            &[],
            "part one",
        ))
        .await;
    let etag = part.headers()["etag"].to_str().unwrap().to_owned();
    drop(part);
    let complete = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part>\
         </CompleteMultipartUpload>"
    );
    let path = format!("/mpu/big?uploadId={upload_id}");
    let (code, body) = send(&s3, ALICE, Method::POST, &path, &[], &complete).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = send(&s3, ANONYMOUS, Method::GET, "/mpu/big", &[], "").await;
    assert_eq!((code, body.as_str()), (200, "part one"));

    // A copy does not inherit the source's ACL: private unless the copy asks otherwise.
    let copy = [("x-amz-copy-source", "/mpu/big")];
    send(&s3, ALICE, Method::PUT, "/mpu/copy", &copy, "").await;
    assert_eq!(status(&s3, ANONYMOUS, Method::GET, "/mpu/copy").await, 403);
    let public_copy = [
        ("x-amz-copy-source", "/mpu/big"),
        ("x-amz-acl", "public-read"),
    ];
    send(&s3, ALICE, Method::PUT, "/mpu/copy2", &public_copy, "").await;
    assert_eq!(status(&s3, ANONYMOUS, Method::GET, "/mpu/copy2").await, 200);
}
