//! Temporary credentials and certificate registration against a real identity store: what a
//! session may be issued for, how long it lives, and everything that ends it early.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use s3api::auth::SessionTokenError;
use s3api::sts::{CertificateRequest, ClientCertificate, RoleRequest, Session};
use s3api::S3ErrorCode;

use super::records::{now_millis, unix_millis, Status, User};
use super::registration::{user_id_for_dn, RegistrationCertificate};
use super::tests::{admin_over, key, kv_store, sealer, user};
use super::*;

const ALICE_KEY: &str = "MKALICEALICEALICE000";
const HOUR: Duration = Duration::from_secs(3600);

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<KvIdentityStore>,
    keys: UserKeys,
    sealer: Arc<Sealer>,
}

async fn fixture() -> Fixture {
    let (dir, store) = kv_store();
    let sealer = sealer();
    store.put_user(&user("alice")).await.unwrap();
    store
        .put_key(&key(&sealer, ALICE_KEY, "alice", "alice-secret"))
        .await
        .unwrap();
    let keys = UserKeys::new(store.clone(), sealer.clone());
    Fixture {
        _dir: dir,
        store,
        keys,
        sealer,
    }
}

fn role<'a>(access_key: &'a str, token: Option<&'a str>, duration: Duration) -> RoleRequest<'a> {
    RoleRequest {
        access_key,
        user: "alice",
        session_token: token,
        duration,
        session_name: "test",
        now: SystemTime::now(),
    }
}

fn check(keys: &UserKeys, session: &Session, at: u64) -> Result<(), SessionTokenError> {
    keys.session_at(&session.access_key, &session.token, at)
        .map(|_| ())
}

#[tokio::test]
async fn assume_role_issues_a_working_session_that_expires_on_time() {
    let f = fixture().await;
    let session = f.keys.assume_role(&role(ALICE_KEY, None, HOUR)).unwrap();
    assert!(session.access_key.starts_with("MS"));
    assert_eq!(session.user, "alice");
    let credential = f
        .keys
        .lookup_session(&session.access_key, &session.token)
        .unwrap();
    assert_eq!(credential.user, "alice");
    assert_eq!(credential.secret.expose(), session.secret.expose());
    // Not a long-term key: the plain lookup never knows it.
    assert!(f.keys.lookup(&session.access_key).is_none());

    let expiry = unix_millis(session.expires_at);
    let now = now_millis();
    assert!(expiry.abs_diff(now + 3_600_000) < 5_000);
    assert_eq!(check(&f.keys, &session, expiry - 1), Ok(()));
    assert_eq!(
        check(&f.keys, &session, expiry),
        Err(SessionTokenError::Expired)
    );
    // The token belongs to its key id only.
    let other = f.keys.assume_role(&role(ALICE_KEY, None, HOUR)).unwrap();
    assert_eq!(
        f.keys
            .lookup_session(&other.access_key, &session.token)
            .err(),
        Some(SessionTokenError::Invalid)
    );
    // Another cluster's key cannot open it.
    let foreign = UserKeys::new(
        f.store.clone(),
        Arc::new(Sealer::from_master(b"another master")),
    );
    assert_eq!(
        foreign
            .lookup_session(&session.access_key, &session.token)
            .err(),
        Some(SessionTokenError::Invalid)
    );
}

#[tokio::test]
async fn sessions_end_with_their_user_key_or_a_revocation() {
    let f = fixture().await;
    let session = f.keys.assume_role(&role(ALICE_KEY, None, HOUR)).unwrap();
    let now = now_millis();
    let mut disabled_key = key(&f.sealer, ALICE_KEY, "alice", "alice-secret");
    disabled_key.status = Status::Disabled;
    f.store.put_key(&disabled_key).await.unwrap();
    assert_eq!(
        check(&f.keys, &session, now),
        Err(SessionTokenError::Invalid)
    );
    f.store
        .put_key(&key(&f.sealer, ALICE_KEY, "alice", "alice-secret"))
        .await
        .unwrap();
    assert_eq!(check(&f.keys, &session, now), Ok(()));

    f.store
        .put_user(&User {
            status: Status::Disabled,
            ..user("alice")
        })
        .await
        .unwrap();
    assert_eq!(
        check(&f.keys, &session, now),
        Err(SessionTokenError::Invalid)
    );
    f.store.put_user(&user("alice")).await.unwrap();

    // Revocation through the admin side ends this session, not later ones.
    let (admin, recorder) = admin_over(f.store.clone(), f.sealer.clone());
    admin.revoke_sessions("alice").await.unwrap();
    assert_eq!(
        check(&f.keys, &session, now_millis()),
        Err(SessionTokenError::Invalid)
    );
    tokio::time::sleep(Duration::from_millis(2)).await;
    let fresh = f.keys.assume_role(&role(ALICE_KEY, None, HOUR)).unwrap();
    assert_eq!(check(&f.keys, &fresh, now_millis()), Ok(()));
    assert!(recorder
        .lines()
        .iter()
        .any(|line| line.starts_with("admin.user.revoke_sessions")));
    assert!(admin.revoke_sessions("nobody").await.is_err());
}

#[tokio::test]
async fn sessions_never_outlive_the_parent_key_or_user() {
    let f = fixture().await;
    let soon = now_millis() + 60_000;
    let mut short_key = key(&f.sealer, ALICE_KEY, "alice", "alice-secret");
    short_key.expires_at = Some(soon);
    f.store.put_key(&short_key).await.unwrap();
    let session = f.keys.assume_role(&role(ALICE_KEY, None, HOUR)).unwrap();
    assert_eq!(unix_millis(session.expires_at), soon);

    f.store
        .put_user(&User {
            expires_at: Some(soon - 30_000),
            ..user("alice")
        })
        .await
        .unwrap();
    let session = f.keys.assume_role(&role(ALICE_KEY, None, HOUR)).unwrap();
    assert_eq!(unix_millis(session.expires_at), soon - 30_000);
}

#[tokio::test]
async fn chained_sessions_keep_the_parent_and_the_earlier_end() {
    let f = fixture().await;
    let first = f
        .keys
        .assume_role(&role(ALICE_KEY, None, Duration::from_secs(1000)))
        .unwrap();
    let second = f
        .keys
        .assume_role(&role(&first.access_key, Some(&first.token), HOUR))
        .unwrap();
    assert_eq!(second.expires_at, first.expires_at);
    let claims = f
        .keys
        .session_at(&second.access_key, &second.token, now_millis())
        .unwrap();
    assert_eq!(claims.parent_key.as_deref(), Some(ALICE_KEY));
    // A forged caller token issues nothing.
    let err = f
        .keys
        .assume_role(&role(&first.access_key, Some("forged"), HOUR))
        .unwrap_err();
    assert_eq!(err.code, S3ErrorCode::InvalidToken);
}

#[tokio::test]
async fn root_cannot_assume_a_role() {
    let f = fixture().await;
    let request = RoleRequest {
        user: "root",
        ..role(ALICE_KEY, None, HOUR)
    };
    let err = f.keys.assume_role(&request).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::AccessDenied);
}

const JANE: &str = "/DC=org/DC=example/OU=People/CN=Jane Doe 1234";

fn registration(not_after: u64, is_proxy: bool) -> RegistrationCertificate<'static> {
    RegistrationCertificate {
        subject_dn: JANE,
        not_after,
        is_proxy,
    }
}

fn proxy(not_after: SystemTime, limited: bool) -> ClientCertificate {
    ClientCertificate {
        subject_dn: JANE.into(),
        not_after,
        is_proxy: true,
        limited,
    }
}

fn certificate_request(
    certificate: &ClientCertificate,
    duration: Duration,
) -> CertificateRequest<'_> {
    CertificateRequest {
        certificate,
        duration,
        now: SystemTime::now(),
    }
}

#[tokio::test]
async fn registration_creates_then_renews_the_same_user_and_key() {
    let f = fixture().await;
    let (admin, recorder) = admin_over(f.store.clone(), f.sealer.clone());
    let in_a_year = now_millis() + 365 * 86_400_000;
    let first = admin
        .register_certificate(&registration(in_a_year, false))
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.user_id, user_id_for_dn(JANE));
    assert!(first.user_id.starts_with("jane-doe-1234-"));
    let credential = f.keys.lookup(&first.access_key_id).unwrap();
    assert_eq!(credential.secret.expose(), first.secret_access_key);
    let stored = f.store.user(&first.user_id).unwrap().unwrap();
    assert_eq!(stored.subject_dn.as_deref(), Some(JANE));
    assert_eq!(stored.expires_at, Some(in_a_year));
    assert_eq!(stored.display_name, "Jane Doe 1234");

    // Renewal: same user, same key and secret, later expiry.
    let renewed = admin
        .register_certificate(&registration(in_a_year + 1000, false))
        .await
        .unwrap();
    assert!(!renewed.created);
    assert_eq!(renewed.user_id, first.user_id);
    assert_eq!(renewed.access_key_id, first.access_key_id);
    assert_eq!(renewed.secret_access_key, first.secret_access_key);
    assert_eq!(
        f.store.user(&first.user_id).unwrap().unwrap().expires_at,
        Some(in_a_year + 1000)
    );
    // An older certificate never shortens it.
    admin
        .register_certificate(&registration(in_a_year, false))
        .await
        .unwrap();
    assert_eq!(
        f.store.user(&first.user_id).unwrap().unwrap().expires_at,
        Some(in_a_year + 1000)
    );
    assert!(recorder
        .lines()
        .iter()
        .any(|line| line.starts_with(&format!("grid.register {JANE} {}", first.user_id))));
}

#[tokio::test]
async fn registration_refusals() {
    let f = fixture().await;
    let (admin, _) = admin_over(f.store.clone(), f.sealer.clone());
    let in_a_year = now_millis() + 365 * 86_400_000;
    assert!(admin
        .register_certificate(&registration(in_a_year, true))
        .await
        .is_err());
    assert!(admin
        .register_certificate(&registration(now_millis() - 1, false))
        .await
        .is_err());
    let first = admin
        .register_certificate(&registration(in_a_year, false))
        .await
        .unwrap();
    let mut disabled = f.store.user(&first.user_id).unwrap().unwrap();
    disabled.status = Status::Disabled;
    f.store.put_user(&disabled).await.unwrap();
    assert!(admin
        .register_certificate(&registration(in_a_year, false))
        .await
        .is_err());
}

#[tokio::test]
async fn lapsed_registration_refuses_keys_but_keeps_the_user() {
    let f = fixture().await;
    let (admin, _) = admin_over(f.store.clone(), f.sealer.clone());
    let soon = now_millis() + 50;
    let registered = admin
        .register_certificate(&registration(soon, false))
        .await
        .unwrap();
    assert!(f.keys.lookup(&registered.access_key_id).is_some());
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(f.keys.lookup(&registered.access_key_id).is_none());
    assert!(f.store.user(&registered.user_id).unwrap().is_some());
    // Renewing brings the same key back.
    let renewed = admin
        .register_certificate(&registration(now_millis() + 86_400_000, false))
        .await
        .unwrap();
    assert_eq!(renewed.access_key_id, registered.access_key_id);
    assert!(f.keys.lookup(&registered.access_key_id).is_some());
}

#[tokio::test]
async fn certificate_sessions_are_bounded_by_chain_registration_and_policy() {
    let f = fixture().await;
    let chain_end = SystemTime::now() + Duration::from_secs(1200);
    let unregistered = f
        .keys
        .assume_role_with_certificate(&certificate_request(&proxy(chain_end, false), HOUR))
        .unwrap_err();
    assert_eq!(unregistered.code, S3ErrorCode::AccessDenied);

    let (admin, _) = admin_over(f.store.clone(), f.sealer.clone());
    let registration_end = now_millis() + 1_800_000;
    let registered = admin
        .register_certificate(&registration(registration_end, false))
        .await
        .unwrap();

    // The proxy ends first (20 min, before the 30 min registration and the 1 h asked).
    let session = f
        .keys
        .assume_role_with_certificate(&certificate_request(&proxy(chain_end, false), HOUR))
        .unwrap();
    assert_eq!(session.user, registered.user_id);
    assert_eq!(unix_millis(session.expires_at), unix_millis(chain_end));
    assert!(f
        .keys
        .lookup_session(&session.access_key, &session.token)
        .is_ok());

    // The registration ends first.
    let long_proxy = proxy(SystemTime::now() + 10 * HOUR, false);
    let session = f
        .keys
        .assume_role_with_certificate(&certificate_request(&long_proxy, 2 * HOUR))
        .unwrap();
    assert_eq!(unix_millis(session.expires_at), registration_end);

    // The requested duration ends first.
    let session = f
        .keys
        .assume_role_with_certificate(&certificate_request(&long_proxy, Duration::from_secs(900)))
        .unwrap();
    assert!(unix_millis(session.expires_at) <= now_millis() + 900_000);

    // The configured maximum, and limited proxies: marked, or refused when configured.
    let strict = f
        .keys
        .clone()
        .with_certificate_policy(CertificateSessionPolicy {
            max_lifetime: Duration::from_secs(600),
            reject_limited: true,
        });
    let session = strict
        .assume_role_with_certificate(&certificate_request(&long_proxy, HOUR))
        .unwrap();
    assert!(unix_millis(session.expires_at) <= now_millis() + 600_000);
    let limited = proxy(SystemTime::now() + 10 * HOUR, true);
    let err = strict
        .assume_role_with_certificate(&certificate_request(&limited, HOUR))
        .unwrap_err();
    assert_eq!(err.code, S3ErrorCode::AccessDenied);
    let marked = f
        .keys
        .assume_role_with_certificate(&certificate_request(&limited, HOUR))
        .unwrap();
    let claims = f
        .keys
        .session_at(&marked.access_key, &marked.token, now_millis())
        .unwrap();
    assert!(claims.limited);
    assert_eq!(claims.parent_key, None);

    // A disabled user gets nothing.
    let mut disabled = f.store.user(&registered.user_id).unwrap().unwrap();
    disabled.status = Status::Disabled;
    f.store.put_user(&disabled).await.unwrap();
    assert!(f
        .keys
        .assume_role_with_certificate(&certificate_request(&long_proxy, HOUR))
        .is_err());
}

#[tokio::test]
async fn one_subject_dn_names_one_live_user() {
    use ::admin::api::{CreateUserRequest, IdentityApiError, UpdateUserRequest};

    let f = fixture().await;
    let (admin, _) = admin_over(f.store.clone(), f.sealer.clone());
    let with_dn = |id: &str| CreateUserRequest {
        id: id.to_owned(),
        subject_dn: Some(JANE.to_owned()),
        ..CreateUserRequest::default()
    };
    admin.create_user(with_dn("jane")).await.unwrap();
    let taken = admin.create_user(with_dn("impostor")).await.unwrap_err();
    assert!(
        matches!(&taken, IdentityApiError::Conflict(message) if message.contains("jane")),
        "{taken:?}"
    );

    // Updating onto the DN is refused too; the holder may set its own DN again.
    admin
        .create_user(super::tests::create_request("other"))
        .await
        .unwrap();
    let update = UpdateUserRequest {
        subject_dn: Some(Some(JANE.to_owned())),
        ..UpdateUserRequest::default()
    };
    assert!(matches!(
        admin.update_user("other", update.clone()).await,
        Err(IdentityApiError::Conflict(_))
    ));
    admin.update_user("jane", update.clone()).await.unwrap();

    // Registration finds the operator-made user for the DN instead of making a second one.
    let registered = admin
        .register_certificate(&registration(now_millis() + 86_400_000, false))
        .await
        .unwrap();
    assert_eq!(registered.user_id, "jane");

    // A deleted user's DN is free again, and registration then finds the live holder,
    // not the deleted user who still carries the DN.
    admin.delete_user("jane").await.unwrap();
    admin.update_user("other", update).await.unwrap();
    let registered = admin
        .register_certificate(&registration(now_millis() + 86_400_000, false))
        .await
        .unwrap();
    assert_eq!(registered.user_id, "other");
}
