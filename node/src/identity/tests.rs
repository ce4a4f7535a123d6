//! Tests of sealing, records, both stores, the credential rules and the admin operations
//! (directly and through the admin API's routes).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::admin::api::{
    AccountStatus, ApiError, CreateKeyRequest, CreateUserRequest, IdentityApiError, KeyList,
    NewAccessKey, UpdateUserRequest, UserAnswer, UserList,
};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use ring::{Layout, NodeId, NodeInfo, Ring};

use super::records::{
    looks_like_access_key, new_access_key_id, new_secret_key, now_millis, validate_user_id,
    AccessKey, SealedSecret, Status, User, MAX_TEXT_LEN,
};
use super::sealing::MASTER_KEY_FILE;
use super::*;
use crate::cluster::{StaticLiveness, SystemConfig};
use crate::observe::access_log::{AdminRecord, AuditSink};
use crate::rpc::{RpcConfig, RpcServer};
use crate::store::codec::{self, Record};
use crate::store::kv::SledKv;

pub(super) const ROOT_KEY: &str = "MKROOTROOTROOTROOT00";

pub(super) fn sealer() -> Arc<Sealer> {
    Arc::new(Sealer::from_master(b"test master secret of 32 bytes!!"))
}

pub(super) fn user(id: &str) -> User {
    User {
        id: id.to_owned(),
        display_name: format!("{id} display"),
        subject_dn: Some(format!("CN={id},O=Test")),
        status: Status::Active,
        quota_bytes: Some(1 << 30),
        quota_objects: None,
        expires_at: None,
        created_at: 1_700_000_000_000,
        sessions_not_before: 0,
    }
}

pub(super) fn key(sealer: &Sealer, id: &str, user: &str, secret: &str) -> AccessKey {
    AccessKey {
        id: id.to_owned(),
        secret: sealer.seal(id, secret).unwrap(),
        user: user.to_owned(),
        status: Status::Active,
        expires_at: None,
        created_at: 1_700_000_000_000,
    }
}

pub(super) fn kv_store() -> (tempfile::TempDir, Arc<KvIdentityStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = KvIdentityStore::open(&dir.path().join("identity")).unwrap();
    (dir, Arc::new(store))
}

/// Admin actions recorded in memory.
#[derive(Default)]
pub(super) struct Recorder(Mutex<Vec<String>>);

impl AuditSink for Recorder {
    fn record_admin(&self, record: &AdminRecord<'_>) {
        self.0.lock().unwrap().push(format!(
            "{} {} {} {:?} {}",
            record.operation, record.actor, record.target, record.user, record.status
        ));
    }
}

impl Recorder {
    pub(super) fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

pub(super) fn admin_over(
    store: Arc<dyn IdentityStore>,
    sealer: Arc<Sealer>,
) -> (IdentityAdmin, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let admin = IdentityAdmin::new(store, sealer, recorder.clone(), ROOT_KEY.to_owned());
    (admin, recorder)
}

pub(super) fn create_request(id: &str) -> CreateUserRequest {
    CreateUserRequest {
        id: id.to_owned(),
        ..CreateUserRequest::default()
    }
}

// ---------------------------------------------------------------------------------------
// Sealing

#[test]
fn sealed_secrets_open_with_the_same_master_and_key_id_only() {
    let sealer = sealer();
    let sealed = sealer.seal("MKAAAAAAAAAAAAAAAAAA", "the secret").unwrap();
    assert!(!sealed
        .ciphertext
        .windows(b"the secret".len())
        .any(|window| window == b"the secret"));
    assert_eq!(sealed.ciphertext.len(), "the secret".len() + 16);
    assert_eq!(
        sealer.open("MKAAAAAAAAAAAAAAAAAA", &sealed).unwrap(),
        "the secret"
    );
    // Another master secret, another key id: refused.
    let other = Sealer::from_master(b"another master secret, 32 bytes");
    assert!(matches!(
        other.open("MKAAAAAAAAAAAAAAAAAA", &sealed),
        Err(IdentityError::Unsealing(_))
    ));
    assert!(sealer.open("MKBBBBBBBBBBBBBBBBBB", &sealed).is_err());
    // Every seal draws a new nonce.
    let again = sealer.seal("MKAAAAAAAAAAAAAAAAAA", "the secret").unwrap();
    assert_ne!(again.nonce, sealed.nonce);
    assert_ne!(again.ciphertext, sealed.ciphertext);
}

#[test]
fn tampered_ciphertext_or_nonce_does_not_open() {
    let sealer = sealer();
    let sealed = sealer.seal("MKAAAAAAAAAAAAAAAAAA", "the secret").unwrap();
    for index in [0, sealed.ciphertext.len() - 1] {
        let mut tampered = sealed.clone();
        tampered.ciphertext[index] ^= 1;
        assert!(sealer.open("MKAAAAAAAAAAAAAAAAAA", &tampered).is_err());
    }
    let mut tampered = sealed.clone();
    tampered.nonce[0] ^= 1;
    assert!(sealer.open("MKAAAAAAAAAAAAAAAAAA", &tampered).is_err());
    let truncated = SealedSecret {
        nonce: sealed.nonce,
        ciphertext: sealed.ciphertext[..10].to_vec(),
    };
    assert!(sealer.open("MKAAAAAAAAAAAAAAAAAA", &truncated).is_err());
}

#[test]
fn cluster_nodes_derive_one_sealing_key_from_the_cluster_secret() {
    let secret = crate::rpc::ClusterSecret::new("cluster identity test secret").unwrap();
    let sealed = Sealer::for_cluster(&secret)
        .seal("MKAAAAAAAAAAAAAAAAAA", "s")
        .unwrap();
    let same = crate::rpc::ClusterSecret::new("cluster identity test secret").unwrap();
    assert_eq!(
        Sealer::for_cluster(&same)
            .open("MKAAAAAAAAAAAAAAAAAA", &sealed)
            .unwrap(),
        "s"
    );
    let other = crate::rpc::ClusterSecret::new("another cluster's secret!!").unwrap();
    assert!(Sealer::for_cluster(&other)
        .open("MKAAAAAAAAAAAAAAAAAA", &sealed)
        .is_err());
}

#[test]
fn the_single_node_master_key_is_created_once_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let first = Sealer::load_or_create(dir.path()).unwrap();
    let sealed = first.seal("MKAAAAAAAAAAAAAAAAAA", "kept").unwrap();
    let path = dir.path().join(MASTER_KEY_FILE);
    assert_eq!(std::fs::read(&path).unwrap().len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let reopened = Sealer::load_or_create(dir.path()).unwrap();
    assert_eq!(
        reopened.open("MKAAAAAAAAAAAAAAAAAA", &sealed).unwrap(),
        "kept"
    );
    // A damaged file is an error, never silently replaced.
    std::fs::write(&path, b"short").unwrap();
    assert!(matches!(
        Sealer::load_or_create(dir.path()),
        Err(IdentityError::MasterKey(_))
    ));
    assert_eq!(std::fs::read(&path).unwrap(), b"short");
}

// ---------------------------------------------------------------------------------------
// Records

#[test]
fn records_round_trip_through_the_codec_with_their_version() {
    let sealer = sealer();
    let alice = User {
        expires_at: Some(1_800_000_000_000),
        ..user("alice")
    };
    let bytes = codec::encode(&alice).unwrap();
    assert_eq!(bytes[0], 2);
    assert_eq!(codec::decode::<User>(&bytes).unwrap(), alice);
    // Version 1 (before session revocation) still reads, revoking nothing.
    let old = super::records::UserV1 {
        id: alice.id.clone(),
        display_name: alice.display_name.clone(),
        subject_dn: alice.subject_dn.clone(),
        status: alice.status,
        quota_bytes: alice.quota_bytes,
        quota_objects: alice.quota_objects,
        expires_at: alice.expires_at,
        created_at: alice.created_at,
    };
    let v1 = codec::encode(&old).unwrap();
    assert_eq!(v1[0], 1);
    assert_eq!(codec::decode::<User>(&v1).unwrap(), alice);
    let key = key(&sealer, "MKAAAAAAAAAAAAAAAAAA", "alice", "s3cr3t");
    let bytes = codec::encode(&key).unwrap();
    assert_eq!(bytes[0], 1);
    let decoded: AccessKey = codec::decode(&bytes).unwrap();
    assert_eq!(decoded, key);
    // The stored record never holds the secret in clear.
    assert!(!bytes.windows(6).any(|window| window == b"s3cr3t"));
}

#[test]
fn user_ids_and_key_ids_have_fixed_shapes() {
    for good in ["alice", "a", "0day", "j.doe_2-x", &"a".repeat(64)] {
        assert!(validate_user_id(good).is_ok(), "{good}");
    }
    for bad in ["", "Alice", "-x", ".x", "a/b", "a b", "é", &"a".repeat(65)] {
        assert!(validate_user_id(bad).is_err(), "{bad}");
    }
    for _ in 0..20 {
        let id = new_access_key_id().unwrap();
        assert!(looks_like_access_key(&id), "{id}");
        let secret = new_secret_key().unwrap();
        assert_eq!(secret.len(), 40);
        assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
    assert_ne!(new_access_key_id().unwrap(), new_access_key_id().unwrap());
    assert!(!looks_like_access_key("MKabcdefghijklmnopqr"));
    assert!(!looks_like_access_key("AKAAAAAAAAAAAAAAAAAA"));
    assert!(!looks_like_access_key("MKAAAA"));
}

// ---------------------------------------------------------------------------------------
// Stores

async fn exercise_store(store: &dyn IdentityStore, sealer: &Sealer) {
    assert!(store.user("alice").unwrap().is_none());
    store.put_user(&user("bob")).await.unwrap();
    store.put_user(&user("alice")).await.unwrap();
    let mut disabled = user("alice");
    disabled.status = Status::Disabled;
    store.put_user(&disabled).await.unwrap();
    assert_eq!(store.user("alice").unwrap().unwrap(), disabled);
    let ids: Vec<String> = store.users().unwrap().into_iter().map(|u| u.id).collect();
    assert_eq!(ids, ["alice", "bob"]);

    let first = key(sealer, "MKAAAAAAAAAAAAAAAAAA", "alice", "one");
    let second = key(sealer, "MKBBBBBBBBBBBBBBBBBB", "bob", "two");
    store.put_key(&second).await.unwrap();
    store.put_key(&first).await.unwrap();
    assert_eq!(store.key(&first.id).unwrap().unwrap(), first);
    let ids: Vec<String> = store.keys().unwrap().into_iter().map(|k| k.id).collect();
    assert_eq!(ids, [first.id.clone(), second.id.clone()]);
    store.delete_key(&first.id).await.unwrap();
    assert!(store.key(&first.id).unwrap().is_none());
    assert_eq!(store.keys().unwrap(), vec![second]);
    // Deleting what is gone is no error.
    store.delete_key(&first.id).await.unwrap();
}

#[tokio::test]
async fn the_single_node_store_keeps_users_and_keys_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let sealer = sealer();
    {
        let store = KvIdentityStore::open(&dir.path().join("identity")).unwrap();
        exercise_store(&store, &sealer).await;
    }
    let store = KvIdentityStore::open(&dir.path().join("identity")).unwrap();
    assert_eq!(store.users().unwrap().len(), 2);
    assert!(store.key("MKBBBBBBBBBBBBBBBBBB").unwrap().is_some());
    // The same tables work in a shared engine.
    let shared = KvIdentityStore::new(Arc::new(SledKv::open(&dir.path().join("shared")).unwrap()));
    exercise_store(&shared, &sealer).await;
}

/// `count` in-process nodes with real RPC on loopback, each with the identity tables.
struct IdentityCluster {
    stores: Vec<Arc<ReplicatedIdentityStore>>,
    _servers: Vec<RpcServer>,
    _dirs: Vec<tempfile::TempDir>,
}

impl IdentityCluster {
    async fn start(count: usize) -> IdentityCluster {
        let ids: Vec<NodeId> = (0..count).map(|i| NodeId::new(format!("n{i}"))).collect();
        let infos = ids
            .iter()
            .map(|id| NodeInfo {
                id: id.clone(),
                rpc_addr: String::new(),
                zone: "z".into(),
                capacity: 1,
            })
            .collect();
        let ring = Arc::new(Ring::new(&Layout::new(1, infos, count.min(3)).unwrap()));
        let secret = crate::rpc::ClusterSecret::new("identity tests shared secret").unwrap();
        let rpc = RpcConfig {
            connect_timeout: Duration::from_secs(1),
            ..RpcConfig::default()
        };
        let config = SystemConfig {
            call_timeout: Duration::from_secs(2),
            rpc: rpc.clone(),
            ..SystemConfig::default()
        };
        let (mut stores, mut servers, mut dirs, mut livenesses) = (vec![], vec![], vec![], vec![]);
        let mut addrs = Vec::new();
        for id in &ids {
            let dir = tempfile::tempdir().unwrap();
            let kv: Arc<dyn crate::store::kv::KvStore> =
                Arc::new(SledKv::open(&dir.path().join("meta")).unwrap());
            let liveness = Arc::new(StaticLiveness::new(
                id.clone(),
                Arc::clone(&ring),
                HashMap::new(),
            ));
            let system =
                TableSystem::new(liveness.clone(), kv, secret.clone(), config.clone()).unwrap();
            stores.push(Arc::new(ReplicatedIdentityStore::new(&system).unwrap()));
            let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
            let server =
                RpcServer::bind(loopback, secret.clone(), Arc::clone(&system), rpc.clone())
                    .await
                    .unwrap();
            addrs.push(server.local_addr());
            servers.push(server);
            dirs.push(dir);
            livenesses.push(liveness);
        }
        for liveness in &livenesses {
            for (id, addr) in ids.iter().zip(&addrs) {
                liveness.set_addr(id.clone(), *addr);
            }
        }
        IdentityCluster {
            stores,
            _servers: servers,
            _dirs: dirs,
        }
    }
}

/// Polls `condition` every 20 ms until it holds; panics after 10 s.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replicated_store_behaves_like_the_local_one() {
    let cluster = IdentityCluster::start(1).await;
    exercise_store(&*cluster.stores[0], &sealer()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_created_through_one_node_authenticates_on_every_node() {
    let cluster = IdentityCluster::start(3).await;
    let sealer = sealer();
    let (admin, _) = admin_over(cluster.stores[0].clone(), Arc::clone(&sealer));
    admin.create_user(create_request("alice")).await.unwrap();
    let key = admin
        .create_key("alice", CreateKeyRequest::default())
        .await
        .unwrap();
    let resolvers: Vec<UserKeys> = cluster
        .stores
        .iter()
        .map(|store| UserKeys::new(store.clone(), Arc::clone(&sealer)))
        .collect();
    eventually("every node resolves the key", || {
        resolvers.iter().all(|keys| {
            keys.lookup(&key.access_key).is_some_and(|found| {
                found.user == "alice" && found.secret.expose() == key.secret_key
            })
        })
    })
    .await;

    // Disabled through another node: refused everywhere.
    let (other_admin, _) = admin_over(cluster.stores[2].clone(), Arc::clone(&sealer));
    other_admin
        .set_key_status(&key.access_key, AccountStatus::Disabled)
        .await
        .unwrap();
    eventually("every node refuses the disabled key", || {
        resolvers
            .iter()
            .all(|keys| keys.lookup(&key.access_key).is_none())
    })
    .await;

    // A deletion is a tombstone that wins over the older versions.
    other_admin.delete_key(&key.access_key).await.unwrap();
    eventually("every node forgot the key", || {
        cluster
            .stores
            .iter()
            .all(|store| store.key(&key.access_key).unwrap().is_none())
    })
    .await;
    assert!(cluster.stores[1].keys().unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------
// Credential rules

#[tokio::test]
async fn only_active_unexpired_keys_of_active_unexpired_users_resolve() {
    let (_dir, store) = kv_store();
    let sealer = sealer();
    let keys = UserKeys::new(store.clone(), Arc::clone(&sealer));
    let now = now_millis();
    store.put_user(&user("alice")).await.unwrap();
    let good = key(&sealer, "MKAAAAAAAAAAAAAAAAAA", "alice", "secret-a");
    store.put_key(&good).await.unwrap();
    let found = keys.lookup(&good.id).unwrap();
    assert_eq!(
        (
            found.access_key.as_str(),
            found.user.as_str(),
            found.secret.expose()
        ),
        (good.id.as_str(), "alice", "secret-a")
    );

    // Key rules.
    let mut disabled = good.clone();
    disabled.status = Status::Disabled;
    store.put_key(&disabled).await.unwrap();
    assert!(keys.lookup(&good.id).is_none());
    let mut expiring = good.clone();
    expiring.expires_at = Some(now + 60_000);
    store.put_key(&expiring).await.unwrap();
    assert!(keys.lookup_at(&good.id, now).is_some());
    assert!(keys.lookup_at(&good.id, now + 60_000).is_none());
    store.put_key(&good).await.unwrap();

    // User rules.
    for status in [Status::Disabled, Status::Deleted] {
        store
            .put_user(&User {
                status,
                ..user("alice")
            })
            .await
            .unwrap();
        assert!(keys.lookup(&good.id).is_none(), "{status:?}");
    }
    store
        .put_user(&User {
            expires_at: Some(now + 1),
            ..user("alice")
        })
        .await
        .unwrap();
    assert!(keys.lookup_at(&good.id, now).is_some());
    assert!(keys.lookup_at(&good.id, now + 1).is_none());

    // Unknown keys, keys of unknown users, junk ids and secrets sealed elsewhere.
    store.put_user(&user("alice")).await.unwrap();
    assert!(keys.lookup("MKCCCCCCCCCCCCCCCCCC").is_none());
    store
        .put_key(&key(&sealer, "MKDDDDDDDDDDDDDDDDDD", "ghost", "x"))
        .await
        .unwrap();
    assert!(keys.lookup("MKDDDDDDDDDDDDDDDDDD").is_none());
    assert!(keys.lookup("not a key").is_none());
    let foreign = Sealer::from_master(b"some other node's master secret!");
    store
        .put_key(&key(&foreign, "MKEEEEEEEEEEEEEEEEEE", "alice", "x"))
        .await
        .unwrap();
    assert!(keys.lookup("MKEEEEEEEEEEEEEEEEEE").is_none());
    assert!(keys.lookup(&good.id).is_some());
}

#[tokio::test]
async fn the_key_ring_answers_root_first_then_user_keys() {
    use s3api::auth::CredentialProvider;
    let (_dir, store) = kv_store();
    let sealer = sealer();
    store.put_user(&user("alice")).await.unwrap();
    let alice_key = key(&sealer, "MKAAAAAAAAAAAAAAAAAA", "alice", "secret-a");
    store.put_key(&alice_key).await.unwrap();
    let root = crate::credentials::RootCredentials {
        access_key: ROOT_KEY.to_owned(),
        secret_key: "root secret".to_owned(),
        admin_token: "token".to_owned(),
    };
    let ring = crate::credentials::KeyRing::new(&root).with_user_keys(UserKeys::new(store, sealer));
    assert_eq!(ring.lookup(ROOT_KEY).unwrap().user, "root");
    assert_eq!(ring.lookup(&alice_key.id).unwrap().user, "alice");
    assert!(ring.lookup("MKZZZZZZZZZZZZZZZZZZ").is_none());
}

// ---------------------------------------------------------------------------------------
// Admin operations

#[tokio::test]
async fn users_are_created_once_and_refused_when_invalid() {
    let (_dir, store) = kv_store();
    let (admin, audit) = admin_over(store, sealer());
    let created = admin
        .create_user(CreateUserRequest {
            id: "alice".into(),
            display_name: Some("Alice A.".into()),
            subject_dn: Some("CN=Alice,O=Lab".into()),
            quota_bytes: Some(10),
            quota_objects: Some(2),
            expires_at_unix_ms: Some(now_millis() + 3_600_000),
        })
        .await
        .unwrap();
    assert_eq!(created.user.display_name, "Alice A.");
    assert_eq!(created.user.status, AccountStatus::Active);
    assert_eq!(created.user.quota_objects, Some(2));
    let plain = admin.create_user(create_request("bob")).await.unwrap();
    assert_eq!(plain.user.display_name, "bob");

    let conflict = |outcome: Result<UserAnswer, IdentityApiError>| {
        matches!(outcome, Err(IdentityApiError::Conflict(_)))
    };
    let invalid = |outcome: Result<UserAnswer, IdentityApiError>| {
        matches!(outcome, Err(IdentityApiError::Invalid(_)))
    };
    assert!(conflict(admin.create_user(create_request("alice")).await));
    assert!(conflict(admin.create_user(create_request("root")).await));
    assert!(invalid(admin.create_user(create_request("Alice")).await));
    assert!(invalid(
        admin
            .create_user(CreateUserRequest {
                expires_at_unix_ms: Some(1),
                ..create_request("carol")
            })
            .await
    ));
    assert!(invalid(
        admin
            .create_user(CreateUserRequest {
                display_name: Some("line\nbreak".into()),
                ..create_request("carol")
            })
            .await
    ));
    let ids: Vec<String> = admin
        .list_users()
        .unwrap()
        .users
        .into_iter()
        .map(|user| user.id)
        .collect();
    assert_eq!(ids, ["alice", "bob"]);
    let lines = audit.lines();
    assert_eq!(
        lines[0],
        "admin.user.create admin-token alice Some(\"alice\") 200"
    );
    assert_eq!(
        lines[2],
        "admin.user.create admin-token alice Some(\"alice\") 409"
    );
    assert_eq!(lines.len(), 7);
}

#[tokio::test]
async fn keys_follow_their_user_and_rotation_replaces_them() {
    let (_dir, store) = kv_store();
    let sealer = sealer();
    let (admin, audit) = admin_over(store.clone(), Arc::clone(&sealer));
    let keys = UserKeys::new(store.clone(), sealer);
    assert!(matches!(
        admin.create_key("alice", CreateKeyRequest::default()).await,
        Err(IdentityApiError::NotFound(_))
    ));
    assert!(matches!(
        admin.create_key("root", CreateKeyRequest::default()).await,
        Err(IdentityApiError::Conflict(_))
    ));
    admin.create_user(create_request("alice")).await.unwrap();
    let first = admin
        .create_key("alice", CreateKeyRequest::default())
        .await
        .unwrap();
    assert!(looks_like_access_key(&first.access_key));
    assert_eq!(first.secret_key.len(), 40);
    assert_eq!(first.user, "alice");
    assert!(keys.lookup(&first.access_key).is_some());
    assert!(matches!(
        admin
            .create_key(
                "alice",
                CreateKeyRequest {
                    expires_at_unix_ms: Some(now_millis() - 1)
                }
            )
            .await,
        Err(IdentityApiError::Invalid(_))
    ));

    // Rotation: a new pair for the same user, the old key disabled.
    let rotated = admin.rotate_key(&first.access_key).await.unwrap();
    assert_eq!(rotated.user, "alice");
    assert_eq!(
        rotated.replaced_key.as_deref(),
        Some(first.access_key.as_str())
    );
    assert_ne!(rotated.secret_key, first.secret_key);
    assert!(keys.lookup(&first.access_key).is_none());
    assert!(keys.lookup(&rotated.access_key).is_some());
    let listed = admin.list_keys(Some("alice")).unwrap().keys;
    assert_eq!(listed.len(), 2);
    let old = listed
        .iter()
        .find(|key| key.access_key == first.access_key)
        .unwrap();
    assert_eq!(old.status, AccountStatus::Disabled);
    assert!(matches!(
        admin.list_keys(Some("nobody")),
        Err(IdentityApiError::NotFound(_))
    ));

    // A disabled user gets no keys and its keys stop working; enabling restores them.
    admin
        .set_user_status("alice", AccountStatus::Disabled)
        .await
        .unwrap();
    assert!(keys.lookup(&rotated.access_key).is_none());
    assert!(matches!(
        admin.create_key("alice", CreateKeyRequest::default()).await,
        Err(IdentityApiError::Conflict(_))
    ));
    assert!(matches!(
        admin.rotate_key(&rotated.access_key).await,
        Err(IdentityApiError::Conflict(_))
    ));
    admin
        .set_user_status("alice", AccountStatus::Active)
        .await
        .unwrap();
    assert!(keys.lookup(&rotated.access_key).is_some());
    admin
        .set_key_status(&first.access_key, AccountStatus::Active)
        .await
        .unwrap();
    assert!(keys.lookup(&first.access_key).is_some());

    admin.delete_key(&first.access_key).await.unwrap();
    assert!(keys.lookup(&first.access_key).is_none());
    assert!(matches!(
        admin.delete_key(&first.access_key).await,
        Err(IdentityApiError::NotFound(_))
    ));

    // The audit trail names keys and users, never a secret.
    let lines = audit.lines();
    assert!(lines.iter().any(|line| line.starts_with(&format!(
        "admin.key.rotate admin-token {}",
        first.access_key
    ))));
    assert!(lines
        .iter()
        .all(|line| !line.contains(&first.secret_key) && !line.contains(&rotated.secret_key)));
}

#[tokio::test]
async fn deleting_a_user_removes_its_keys_and_retires_its_id() {
    let (_dir, store) = kv_store();
    let sealer = sealer();
    let (admin, _) = admin_over(store.clone(), Arc::clone(&sealer));
    let keys = UserKeys::new(store.clone(), sealer);
    admin.create_user(create_request("alice")).await.unwrap();
    admin.create_user(create_request("bob")).await.unwrap();
    let alice_key = admin
        .create_key("alice", CreateKeyRequest::default())
        .await
        .unwrap();
    let bob_key = admin
        .create_key("bob", CreateKeyRequest::default())
        .await
        .unwrap();
    let deleted = admin.delete_user("alice").await.unwrap();
    assert_eq!(deleted.deleted_keys, vec![alice_key.access_key.clone()]);
    assert!(keys.lookup(&alice_key.access_key).is_none());
    assert!(keys.lookup(&bob_key.access_key).is_some());
    assert!(matches!(
        admin.show_user("alice"),
        Err(IdentityApiError::NotFound(_))
    ));
    assert!(matches!(
        admin.create_user(create_request("alice")).await,
        Err(IdentityApiError::Conflict(message)) if message.contains("not reused")
    ));
    assert!(matches!(
        admin.delete_user("alice").await,
        Err(IdentityApiError::NotFound(_))
    ));
    let users = admin.list_users().unwrap().users;
    assert_eq!(users.len(), 1);
    let shown = admin.show_user("bob").unwrap();
    assert_eq!(shown.keys.unwrap().len(), 1);
}

#[tokio::test]
async fn updating_a_user_sets_clears_and_keeps_each_field() {
    let (_dir, store) = kv_store();
    let (admin, audit) = admin_over(store.clone(), sealer());
    let in_an_hour = now_millis() + 3_600_000;
    admin
        .create_user(CreateUserRequest {
            subject_dn: Some("CN=Alice,O=Lab".into()),
            quota_bytes: Some(10),
            quota_objects: Some(2),
            expires_at_unix_ms: Some(in_an_hour),
            ..create_request("alice")
        })
        .await
        .unwrap();

    // Set one quota, lift the other, leave the rest.
    let updated = admin
        .update_user(
            "alice",
            UpdateUserRequest {
                quota_bytes: Some(Some(5_000)),
                quota_objects: Some(None),
                ..UpdateUserRequest::default()
            },
        )
        .await
        .unwrap()
        .user;
    assert_eq!(
        (updated.quota_bytes, updated.quota_objects),
        (Some(5_000), None)
    );
    assert_eq!(updated.display_name, "alice");
    assert_eq!(updated.subject_dn.as_deref(), Some("CN=Alice,O=Lab"));
    assert_eq!(updated.expires_at_unix_ms, Some(in_an_hour));
    // The change is stored, not only answered.
    let stored = store.user("alice").unwrap().unwrap();
    assert_eq!(
        (stored.quota_bytes, stored.quota_objects),
        (Some(5_000), None)
    );
    assert_eq!(admin.show_user("alice").unwrap().user, updated);

    // Name and DN replaced, DN and expiry cleared, on a disabled user (which stays so).
    admin
        .set_user_status("alice", AccountStatus::Disabled)
        .await
        .unwrap();
    let renamed = admin
        .update_user(
            "alice",
            UpdateUserRequest {
                display_name: Some("Alice B.".into()),
                subject_dn: Some(Some("CN=Alice,O=Elsewhere".into())),
                ..UpdateUserRequest::default()
            },
        )
        .await
        .unwrap()
        .user;
    assert_eq!(renamed.display_name, "Alice B.");
    assert_eq!(renamed.subject_dn.as_deref(), Some("CN=Alice,O=Elsewhere"));
    assert_eq!(renamed.status, AccountStatus::Disabled);
    let cleared = admin
        .update_user(
            "alice",
            UpdateUserRequest {
                subject_dn: Some(None),
                expires_at_unix_ms: Some(None),
                ..UpdateUserRequest::default()
            },
        )
        .await
        .unwrap()
        .user;
    assert_eq!(
        (cleared.subject_dn, cleared.expires_at_unix_ms),
        (None, None)
    );
    assert_eq!(cleared.quota_bytes, Some(5_000));

    // An expired user is given a later expiry and is usable again.
    let mut bob = user("bob");
    bob.expires_at = Some(now_millis() - 1_000);
    store.put_user(&bob).await.unwrap();
    assert!(!store
        .user("bob")
        .unwrap()
        .unwrap()
        .is_usable_at(now_millis()));
    let extended = UpdateUserRequest {
        expires_at_unix_ms: Some(Some(in_an_hour)),
        ..UpdateUserRequest::default()
    };
    admin.update_user("bob", extended.clone()).await.unwrap();
    assert!(store
        .user("bob")
        .unwrap()
        .unwrap()
        .is_usable_at(now_millis()));

    // Refusals: nothing to change, the create checks, unknown and deleted users.
    let invalid = |outcome: Result<UserAnswer, IdentityApiError>| {
        matches!(outcome, Err(IdentityApiError::Invalid(_)))
    };
    let before = store.user("alice").unwrap();
    assert!(invalid(
        admin
            .update_user("alice", UpdateUserRequest::default())
            .await
    ));
    for refused in [
        UpdateUserRequest {
            expires_at_unix_ms: Some(Some(now_millis() - 1)),
            ..UpdateUserRequest::default()
        },
        UpdateUserRequest {
            display_name: Some("tab\there".into()),
            ..UpdateUserRequest::default()
        },
        UpdateUserRequest {
            subject_dn: Some(Some("x".repeat(MAX_TEXT_LEN + 1))),
            quota_bytes: Some(Some(1)),
            ..UpdateUserRequest::default()
        },
    ] {
        assert!(invalid(admin.update_user("alice", refused).await));
    }
    // A refused update changes nothing, not even the fields it named validly.
    assert_eq!(store.user("alice").unwrap(), before);
    assert!(matches!(
        admin.update_user("nobody", extended.clone()).await,
        Err(IdentityApiError::NotFound(_))
    ));
    admin.delete_user("bob").await.unwrap();
    assert!(matches!(
        admin.update_user("bob", extended).await,
        Err(IdentityApiError::NotFound(_))
    ));
    assert_eq!(store.user("bob").unwrap().unwrap().status, Status::Deleted);

    let updates: Vec<String> = audit
        .lines()
        .into_iter()
        .filter(|line| line.starts_with("admin.user.update"))
        .collect();
    assert_eq!(updates.len(), 10);
    assert_eq!(
        updates[0],
        "admin.user.update admin-token alice Some(\"alice\") 200"
    );
    assert_eq!(
        updates[4],
        "admin.user.update admin-token alice Some(\"alice\") 400"
    );
    assert_eq!(
        updates[9],
        "admin.user.update admin-token bob Some(\"bob\") 404"
    );
}

// ---------------------------------------------------------------------------------------
// Admin API routes, end to end through `::admin::server::handle`

/// The node's admin backend reduced to its identity part.
struct IdentityOnly(IdentityAdmin);

impl ::admin::server::AdminBackend for IdentityOnly {
    async fn status(&self) -> Result<::admin::api::NodeStatus, String> {
        Err("not in this test".into())
    }

    async fn metrics(&self) -> Result<String, String> {
        Ok(String::new())
    }

    async fn create_user(
        &self,
        request: CreateUserRequest,
    ) -> Result<UserAnswer, IdentityApiError> {
        self.0.create_user(request).await
    }

    async fn list_users(&self) -> Result<UserList, IdentityApiError> {
        self.0.list_users()
    }

    async fn show_user(&self, id: String) -> Result<UserAnswer, IdentityApiError> {
        self.0.show_user(&id)
    }

    async fn set_user_status(
        &self,
        id: String,
        status: AccountStatus,
    ) -> Result<UserAnswer, IdentityApiError> {
        self.0.set_user_status(&id, status).await
    }

    async fn update_user(
        &self,
        id: String,
        request: UpdateUserRequest,
    ) -> Result<UserAnswer, IdentityApiError> {
        self.0.update_user(&id, request).await
    }

    async fn delete_user(&self, id: String) -> Result<::admin::api::DeletedUser, IdentityApiError> {
        self.0.delete_user(&id).await
    }

    async fn create_key(
        &self,
        user: String,
        request: CreateKeyRequest,
    ) -> Result<NewAccessKey, IdentityApiError> {
        self.0.create_key(&user, request).await
    }

    async fn list_keys(&self, user: Option<String>) -> Result<KeyList, IdentityApiError> {
        self.0.list_keys(user.as_deref())
    }

    async fn set_key_status(
        &self,
        key: String,
        status: AccountStatus,
    ) -> Result<::admin::api::KeyAnswer, IdentityApiError> {
        self.0.set_key_status(&key, status).await
    }

    async fn rotate_key(&self, key: String) -> Result<NewAccessKey, IdentityApiError> {
        self.0.rotate_key(&key).await
    }

    async fn delete_key(&self, key: String) -> Result<::admin::api::DeletedKey, IdentityApiError> {
        self.0.delete_key(&key).await
    }
}

async fn call(
    backend: &IdentityOnly,
    method: &str,
    path: &str,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", "Bearer token")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = ::admin::server::handle(backend, "token", request).await;
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn admin_routes_manage_users_and_keys_with_clear_errors() {
    let (_dir, store) = kv_store();
    let (admin, _) = admin_over(store, sealer());
    let backend = IdentityOnly(admin);

    let (status, body) = call(
        &backend,
        "POST",
        "/v1/users",
        r#"{"id":"alice","display_name":"Alice A."}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["id"], "alice");
    assert_eq!(body["user"]["status"], "active");
    let (status, body) = call(&backend, "POST", "/v1/users", r#"{"id":"alice"}"#).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        serde_json::from_value::<ApiError>(body).unwrap().code,
        "conflict"
    );
    let (status, _) = call(&backend, "POST", "/v1/users", r#"{"id":"Bad Id"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(&backend, "POST", "/v1/users", "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A key with an empty body (every field optional), then listing and showing.
    let (status, key) = call(&backend, "POST", "/v1/users/alice/keys", "").await;
    assert_eq!(status, StatusCode::OK, "{key}");
    let access_key = key["access_key"].as_str().unwrap().to_owned();
    assert_eq!(key["secret_key"].as_str().unwrap().len(), 40);
    let (status, _) = call(&backend, "POST", "/v1/users/nobody/keys", "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, listed) = call(&backend, "GET", "/v1/keys?user=alice", "").await;
    assert_eq!(listed["keys"][0]["access_key"], access_key.as_str());
    assert!(listed["keys"][0].get("secret_key").is_none());
    let (_, all) = call(&backend, "GET", "/v1/keys", "").await;
    assert_eq!(all["keys"].as_array().unwrap().len(), 1);
    let (status, shown) = call(&backend, "GET", "/v1/users/alice", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["keys"][0]["access_key"], access_key.as_str());
    let (_, users) = call(&backend, "GET", "/v1/users", "").await;
    assert_eq!(users["users"][0]["display_name"], "Alice A.");

    // Status changes, rotation, deletion.
    let (status, disabled) = call(&backend, "POST", "/v1/users/alice/disable", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(disabled["user"]["status"], "disabled");
    let (status, _) = call(&backend, "POST", "/v1/users/alice/keys", "").await;
    assert_eq!(status, StatusCode::CONFLICT);
    call(&backend, "POST", "/v1/users/alice/enable", "").await;
    let (status, key_state) = call(
        &backend,
        "POST",
        &format!("/v1/keys/{access_key}/disable"),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(key_state["key"]["status"], "disabled");
    let (status, rotated) = call(
        &backend,
        "POST",
        &format!("/v1/keys/{access_key}/rotate"),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rotated["replaced_key"], access_key.as_str());
    let (status, deleted) = call(&backend, "DELETE", &format!("/v1/keys/{access_key}"), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted["deleted_key"], access_key.as_str());
    let (status, _) = call(&backend, "POST", "/v1/keys/MKNOSUCHKEY000000000/enable", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, deleted) = call(&backend, "DELETE", "/v1/users/alice", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted["deleted_keys"].as_array().unwrap().len(), 1);
    let (status, _) = call(&backend, "GET", "/v1/users/alice", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&backend, "PUT", "/v1/users", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_update_route_keeps_absent_fields_and_clears_null_ones() {
    let (_dir, store) = kv_store();
    let (admin, _) = admin_over(store, sealer());
    let backend = IdentityOnly(admin);
    let body = r#"{"id":"alice","subject_dn":"CN=a","quota_bytes":100,"quota_objects":5}"#;
    let (status, _) = call(&backend, "POST", "/v1/users", body).await;
    assert_eq!(status, StatusCode::OK);

    let body = r#"{"display_name":"Alice","quota_bytes":null,"quota_objects":50}"#;
    let (status, updated) = call(&backend, "PATCH", "/v1/users/alice", body).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["user"]["display_name"], "Alice");
    assert!(updated["user"]["quota_bytes"].is_null());
    assert_eq!(updated["user"]["quota_objects"], 50);
    assert_eq!(updated["user"]["subject_dn"], "CN=a");
    let (_, shown) = call(&backend, "GET", "/v1/users/alice", "").await;
    assert_eq!(shown["user"], updated["user"]);

    let in_an_hour = now_millis() + 3_600_000;
    let body = format!(r#"{{"subject_dn":null,"expires_at_unix_ms":{in_an_hour}}}"#);
    let (status, updated) = call(&backend, "PATCH", "/v1/users/alice", &body).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert!(updated["user"]["subject_dn"].is_null());
    assert_eq!(updated["user"]["expires_at_unix_ms"], in_an_hour);
    assert_eq!(updated["user"]["quota_objects"], 50);

    // Refusals, each with the API's error document.
    for (path, body, expected, code) in [
        ("/v1/users/alice", "", StatusCode::BAD_REQUEST, "invalid"),
        ("/v1/users/alice", "{}", StatusCode::BAD_REQUEST, "invalid"),
        (
            "/v1/users/alice",
            r#"{"quota":1}"#,
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "/v1/users/alice",
            r#"{"display_name":null}"#,
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "/v1/users/alice",
            r#"{"expires_at_unix_ms":1}"#,
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "/v1/users/nobody",
            r#"{"quota_bytes":1}"#,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ] {
        let (status, failure) = call(&backend, "PATCH", path, body).await;
        assert_eq!(status, expected, "{path} {body}: {failure}");
        assert_eq!(
            serde_json::from_value::<ApiError>(failure).unwrap().code,
            code
        );
    }
    let (status, _) = call(&backend, "DELETE", "/v1/users/alice", "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&backend, "PATCH", "/v1/users/alice", r#"{"quota_bytes":1}"#).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Lets the tests write users as format version 1 did.
impl Record for super::records::UserV1 {
    const FORMAT_VERSION: u8 = 1;
    const NAME: &'static str = "user v1";
}
