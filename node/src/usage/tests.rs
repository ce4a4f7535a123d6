//! Tests of the usage counters (single node and cluster replica), their cluster-wide
//! aggregation and the quota check.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use ring::{Layout, NodeId, NodeInfo, Ring};
use s3api::access::Acl;
use s3api::backend::{ObjectAttrs, S3Backend};
use s3api::body::ObjectBody;
use s3api::{S3ErrorCode, S3Result};

use super::counters::Usage;
use super::local::LocalObjectCounters;
use super::quota::{check_limits, BucketUsage, QuotaGuard, UsageView};
use super::reports::{aggregate, BucketReport, GroupUsage, ReportEntry};
use super::UsageError;
use crate::cluster::local::LocalStore;
use crate::cluster::schema::SchemaMerger;
use crate::cluster::{Lww, Stamp, TableSchema};
use crate::clustered::backend::schemas::{ObjectEntry, ObjectsSchema};
use crate::identity::records::{Status, User};
use crate::identity::{IdentityStore, KvIdentityStore};
use crate::store::codec;
use crate::store::kv::{KvStore, SledKv};
use crate::store::records::{BodyLayout, LiveVersion};
use crate::store::{Store, StoreConfig};

fn one_node_ring(id: &str) -> Arc<Ring> {
    let node = NodeInfo {
        id: NodeId::new(id),
        rpc_addr: String::new(),
        zone: "z".into(),
        capacity: 1,
    };
    Arc::new(Ring::new(&Layout::new(1, vec![node], 1).unwrap()))
}

fn live(size: u64) -> LiveVersion {
    LiveVersion {
        size,
        etag: String::new(),
        last_modified_ms: 0,
        attrs: Default::default(),
        checksum: None,
        parts_count: None,
        upload_id: None,
        body: BodyLayout::Inline(Vec::new()),
    }
}

fn entry(bucket: &str, key: &str, hlc: u64, size: Option<u64>) -> ObjectEntry {
    let stamp = Stamp::new(hlc, 1);
    ObjectEntry {
        bucket: bucket.into(),
        key: key.into(),
        version: match size {
            Some(size) => Lww::new(stamp, live(size)),
            None => Lww::tombstone(stamp),
        },
        acl: None,
    }
}

/// A node's local table storage with counters observing its objects table.
struct Replica {
    _dir: tempfile::TempDir,
    local: LocalStore,
    counters: Arc<LocalObjectCounters>,
    ring: Arc<Ring>,
}

impl Replica {
    fn new() -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let kv: Arc<dyn KvStore> = Arc::new(SledKv::open(&dir.path().join("meta")).unwrap());
        let local = LocalStore::new(kv);
        let ring = one_node_ring("n0");
        let counters = Arc::new(LocalObjectCounters::new(
            NodeId::new("n0"),
            3,
            Arc::clone(&ring),
        ));
        local.observe(ObjectsSchema::TABLE_NAME, counters.clone());
        Replica {
            _dir: dir,
            local,
            counters,
            ring,
        }
    }

    /// Merges `entry` as replication, a hint, read repair or anti-entropy would.
    async fn merge(&self, entry: &ObjectEntry) -> bool {
        let key = ObjectsSchema::encode_key(&ObjectsSchema::key_of(entry));
        let merger = SchemaMerger::<ObjectsSchema>::new();
        self.local
            .merge(
                ObjectsSchema::TABLE_NAME,
                &key,
                &codec::encode(entry).unwrap(),
                &merger,
            )
            .await
            .unwrap()
    }

    fn bucket(&self, bucket: &str) -> Usage {
        let mut total = Usage::default();
        for (_, usage) in self.counters.bucket(bucket) {
            total.add(usage);
        }
        total
    }
}

#[tokio::test]
async fn replica_counters_follow_puts_overwrites_and_deletes_once_each() {
    let replica = Replica::new();
    replica
        .counters
        .rebuild(&replica.local, Arc::clone(&replica.ring))
        .unwrap();
    let first = entry("b", "k", 10, Some(100));
    assert!(replica.merge(&first).await);
    assert_eq!(
        replica.bucket("b"),
        Usage {
            objects: 1,
            bytes: 100
        }
    );

    // The same entry again (another replica's repair, a replayed hint): no change.
    assert!(!replica.merge(&first).await);
    assert_eq!(
        replica.bucket("b"),
        Usage {
            objects: 1,
            bytes: 100
        }
    );

    // An overwrite counts the difference; an older version arriving late counts nothing.
    assert!(replica.merge(&entry("b", "k", 20, Some(250))).await);
    assert!(!replica.merge(&entry("b", "k", 15, Some(9_999))).await);
    assert_eq!(
        replica.bucket("b"),
        Usage {
            objects: 1,
            bytes: 250
        }
    );

    replica.merge(&entry("b", "other", 21, Some(5))).await;
    replica.merge(&entry("c", "k", 22, Some(7))).await;
    assert_eq!(
        replica.bucket("b"),
        Usage {
            objects: 2,
            bytes: 255
        }
    );

    // A delete, then its tombstone merged twice and finally purged.
    let tombstone = entry("b", "k", 30, None);
    replica.merge(&tombstone).await;
    replica.merge(&tombstone).await;
    assert_eq!(
        replica.bucket("b"),
        Usage {
            objects: 1,
            bytes: 5
        }
    );
    let key = ObjectsSchema::encode_key(&("b".to_owned(), "k".to_owned()));
    let stored = replica
        .local
        .read(ObjectsSchema::TABLE_NAME, &key)
        .unwrap()
        .unwrap();
    assert!(replica
        .local
        .remove_if_equal(ObjectsSchema::TABLE_NAME, &key, &stored)
        .await
        .unwrap());
    assert_eq!(
        replica.bucket("b"),
        Usage {
            objects: 1,
            bytes: 5
        }
    );
    assert_eq!(
        replica.counters.total(),
        Usage {
            objects: 2,
            bytes: 12
        }
    );

    // Every change marked its bucket for publication.
    let dirty = replica.counters.take_dirty();
    assert_eq!(dirty, HashSet::from(["b".to_owned(), "c".to_owned()]));
    assert!(replica.counters.take_dirty().is_empty());
}

#[tokio::test]
async fn a_rebuild_counts_what_incremental_counting_counted() {
    let replica = Replica::new();
    // Written before anything counted (a restart): the rebuild finds them.
    for (i, size) in [3u64, 30, 300].into_iter().enumerate() {
        replica
            .merge(&entry("b", &format!("k{i}"), 10 + i as u64, Some(size)))
            .await;
    }
    replica.merge(&entry("b", "gone", 5, Some(1))).await;
    replica.merge(&entry("b", "gone", 6, None)).await;
    assert_eq!(replica.counters.ring_version(), (1, false));
    replica
        .counters
        .rebuild(&replica.local, Arc::clone(&replica.ring))
        .unwrap();
    assert_eq!(replica.counters.ring_version(), (1, true));
    assert_eq!(
        replica.bucket("b"),
        Usage {
            objects: 3,
            bytes: 333
        }
    );

    // Changes after the rebuild are counted on top, and a second rebuild agrees.
    replica.merge(&entry("b", "k0", 40, None)).await;
    let counted = replica.bucket("b");
    replica
        .counters
        .rebuild(&replica.local, Arc::clone(&replica.ring))
        .unwrap();
    assert_eq!(replica.bucket("b"), counted);
    assert_eq!(
        counted,
        Usage {
            objects: 2,
            bytes: 330
        }
    );
}

#[tokio::test]
async fn keys_this_node_does_not_own_are_not_counted() {
    let replica = Replica::new();
    // Counted under a ring where only another node owns everything.
    replica
        .counters
        .rebuild(&replica.local, one_node_ring("elsewhere"))
        .unwrap();
    replica.merge(&entry("b", "k", 10, Some(100))).await;
    assert_eq!(replica.bucket("b"), Usage::default());
}

fn report(bucket: &str, node: &str, groups: &[(&[&str], i64, i64)]) -> ReportEntry {
    ReportEntry {
        bucket: bucket.into(),
        node: node.into(),
        report: Lww::new(
            Stamp::new(1, 1),
            BucketReport {
                traffic: Default::default(),
                ring_version: 1,
                groups: groups
                    .iter()
                    .map(|(members, objects, bytes)| GroupUsage {
                        members: members.iter().map(|m| m.to_string()).collect(),
                        usage: Usage {
                            objects: *objects,
                            bytes: *bytes,
                        },
                    })
                    .collect(),
            },
        ),
    }
}

#[test]
fn the_cluster_value_is_the_median_of_each_groups_owners() {
    let layout: HashSet<String> = ["a", "b", "c", "d"].map(String::from).into();
    let abc: &[&str] = &["a", "b", "c"];
    let bcd: &[&str] = &["b", "c", "d"];
    // c lags one write behind (it was down): the majority's figure wins.
    let reports = vec![
        report("x", "a", &[(abc, 5, 500)]),
        report("x", "b", &[(abc, 5, 500), (bcd, 2, 20)]),
        report("x", "c", &[(abc, 4, 400), (bcd, 2, 20)]),
        report("x", "d", &[(bcd, 3, 30)]),
    ];
    assert_eq!(
        aggregate(&reports, &layout),
        Usage {
            objects: 7,
            bytes: 520
        }
    );

    // A write only one owner holds yet is not counted; a member without a report
    // counts zero.
    let reports = vec![report("x", "a", &[(abc, 1, 10)])];
    assert_eq!(aggregate(&reports, &layout), Usage::default());

    // Reports of nodes that left the layout are ignored.
    let small: HashSet<String> = ["a", "b"].map(String::from).into();
    let reports = vec![
        report("x", "a", &[(&["a", "b"], 2, 2)]),
        report("x", "b", &[(&["a", "b"], 2, 2)]),
        report("x", "gone", &[(&["a", "b"], 9, 9)]),
    ];
    assert_eq!(
        aggregate(&reports, &small),
        Usage {
            objects: 2,
            bytes: 2
        }
    );
}

#[test]
fn limits_name_what_would_be_exceeded() {
    let used = Usage {
        objects: 2,
        bytes: 900,
    };
    assert!(check_limits("u", used, Usage::object(100), Some(1000), Some(3)).is_ok());
    let err = check_limits("u", used, Usage::object(101), Some(1000), None).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::QuotaExceeded);
    assert!(err.message.contains("1000 bytes"), "{}", err.message);
    assert!(err.message.contains("900 bytes in use"), "{}", err.message);
    let err = check_limits("u", used, Usage::object(1), None, Some(2)).unwrap_err();
    assert!(err.message.contains("2 objects"), "{}", err.message);
    // Nothing added, nothing refused, even past the limit.
    assert!(check_limits("u", used, Usage::default(), Some(1), Some(1)).is_ok());
}

/// A view with fixed figures and a settable lag.
struct FixedView {
    buckets: Vec<BucketUsage>,
    lag: Duration,
}

impl UsageView for FixedView {
    fn buckets(&self) -> Result<Vec<BucketUsage>, UsageError> {
        Ok(self.buckets.clone())
    }

    fn lag(&self) -> Duration {
        self.lag
    }
}

fn user(id: &str, quota_bytes: Option<u64>, quota_objects: Option<u64>) -> User {
    User {
        id: id.into(),
        display_name: id.into(),
        subject_dn: None,
        status: Status::Active,
        quota_bytes,
        quota_objects,
        expires_at: None,
        created_at: 0,
        sessions_not_before: 0,
    }
}

async fn users_with(users: &[User]) -> (tempfile::TempDir, Arc<dyn IdentityStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = KvIdentityStore::open(dir.path()).unwrap();
    for user in users {
        store.put_user(user).await.unwrap();
    }
    (dir, Arc::new(store))
}

#[tokio::test]
async fn the_guard_adds_this_nodes_recent_writes_until_the_view_has_them() {
    let (_dir, users) = users_with(&[user("alice", Some(1000), None)]).await;
    let guard = QuotaGuard::new(users);
    let view = FixedView {
        buckets: vec![BucketUsage {
            bucket: "a".into(),
            owner: "alice".into(),
            usage: Usage {
                objects: 1,
                bytes: 600,
            },
            traffic: Default::default(),
        }],
        lag: Duration::from_secs(60),
    };
    guard.check(&view, "alice", Usage::object(400)).unwrap();
    guard.record("alice", Usage::object(400));
    // The view (lagging) does not show the write yet; the reservation does.
    let err = guard.check(&view, "alice", Usage::object(1)).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::QuotaExceeded);
    // Owners without a user record (root) or without quotas are never limited.
    guard.check(&view, "root", Usage::object(u64::MAX)).unwrap();
}

/// A trusted body of `data`.
fn body(data: &[u8]) -> ObjectBody {
    let chunks: Vec<S3Result<Bytes>> = vec![Ok(Bytes::copy_from_slice(data))];
    ObjectBody::from_stream(Box::pin(stream::iter(chunks)), Some(data.len() as u64))
}

#[tokio::test]
async fn a_single_node_refuses_puts_and_completions_past_the_owners_quota() {
    let (_users_dir, users) = users_with(&[user("alice", Some(12 * 1024 * 1024), Some(3))]).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::new(dir.path())).unwrap();
    store.set_quota_guard(Arc::new(QuotaGuard::new(users)));
    store
        .create_bucket("a", &Acl::private("alice"))
        .await
        .unwrap();
    store
        .create_bucket("r", &Acl::private("root"))
        .await
        .unwrap();
    let put = |bucket: &'static str, key: &'static str, data: Vec<u8>| {
        let store = store.clone();
        async move {
            store
                .put_object(bucket, key, ObjectAttrs::default(), &mut body(&data))
                .await
        }
    };
    put("a", "one", vec![1; 1000]).await.unwrap();
    put("a", "two", vec![2; 1000]).await.unwrap();
    let usage = store.buckets().unwrap();
    let a = usage.iter().find(|b| b.bucket == "a").unwrap();
    assert_eq!(
        a.usage,
        Usage {
            objects: 2,
            bytes: 2000
        }
    );

    // Multipart: the parts fit, the completed object would not (12 MiB quota).
    let id = store
        .create_multipart_upload("a", "big", ObjectAttrs::default(), None)
        .await
        .unwrap();
    let mut parts = Vec::new();
    for number in 1..=2u32 {
        let info = store
            .upload_part(
                "a",
                "big",
                &id,
                number,
                &mut body(&vec![9; 6 * 1024 * 1024]),
            )
            .await
            .unwrap();
        parts.push((number, info.etag));
    }
    let err = store
        .complete_multipart_upload("a", "big", &id, &parts)
        .await
        .unwrap_err();
    assert_eq!(err.code, S3ErrorCode::QuotaExceeded);
    // The upload is still open: it can be aborted.
    store.abort_multipart_upload("a", "big", &id).await.unwrap();

    // A third object fits, a fourth exceeds the object quota; root's bucket is unlimited.
    put("a", "three", vec![3; 10]).await.unwrap();
    let err = put("a", "four", vec![4; 10]).await.unwrap_err();
    assert_eq!(err.code, S3ErrorCode::QuotaExceeded);
    assert!(err.message.contains("3 objects"), "{}", err.message);
    put("r", "free", vec![0; 10]).await.unwrap();

    // A delete frees room (once the guard's cached figures expire).
    store.delete_object("a", "one").await.unwrap();
    tokio::time::sleep(super::quota::CACHE_TTL + Duration::from_millis(100)).await;
    put("a", "four", vec![4; 10]).await.unwrap();
    let usage = store.buckets().unwrap();
    let a = usage.iter().find(|b| b.bucket == "a").unwrap();
    assert_eq!(
        a.usage,
        Usage {
            objects: 3,
            bytes: 1020
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_a_rebuild_are_counted_exactly_once() {
    let replica = Arc::new(Replica::new());
    for i in 0..1500u64 {
        replica
            .merge(&entry("b", &format!("k{i:04}"), 10, Some(i)))
            .await;
    }
    let rebuilding = {
        let replica = Arc::clone(&replica);
        tokio::task::spawn_blocking(move || {
            replica
                .counters
                .rebuild(&replica.local, Arc::clone(&replica.ring))
                .unwrap()
        })
    };
    // Overwrites, deletes and new keys on both sides of the scan's cursor meanwhile.
    for i in 0..300u64 {
        let key = format!("k{:04}", (i * 7) % 500);
        let size = if i % 3 == 0 { None } else { Some(1000 + i) };
        replica.merge(&entry("b", &key, 100 + i, size)).await;
    }
    rebuilding.await.unwrap();
    let counted = replica.bucket("b");
    replica
        .counters
        .rebuild(&replica.local, Arc::clone(&replica.ring))
        .unwrap();
    assert_eq!(replica.bucket("b"), counted);
}
