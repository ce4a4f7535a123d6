//! Bucket names agreed by Paxos: racing creators, visibility on nodes whose full copy lacks
//! the record, availability with nodes down, deletion and re-creation.

use s3api::access::CannedAcl;
use s3api::backend::S3Backend;

use super::*;
use crate::cluster::local::entry_key;
use crate::cluster::TableSchema;
use crate::clustered::backend::schemas::BucketsSchema;
use crate::store::kv::Table as KvTable;

/// Removes `name`'s record from `backend`'s own full copy, as if the write never reached it.
fn forget_bucket_record(backend: &ClusterBackend, name: &str) {
    let key = entry_key(BucketsSchema::TABLE_NAME, name.as_bytes());
    backend
        .inner
        .system
        .local()
        .kv
        .remove(KvTable::Replicated, &key)
        .unwrap();
    assert!(backend
        .inner
        .buckets
        .local_get(&name.to_owned())
        .unwrap()
        .is_none());
}

async fn put_in(backend: &ClusterBackend, bucket: &str, key: &str, data: &[u8]) -> S3Result<()> {
    backend
        .put_object(bucket, key, ObjectAttrs::default(), &mut body(data))
        .await
        .map(|_| ())
}

/// Lets the detached full-copy writes of the last operation land everywhere.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_creates_through_two_nodes_get_one_success_and_one_already_exists() {
    bounded(async {
        let cluster = TestCluster::start(5).await;
        for round in 0..20_usize {
            let name = format!("race-{round}");
            let first = round % 5;
            let second = (first + 1 + round / 5 % 4) % 5;
            let (alice, bob) = (acl_of("alice"), acl_of("bob"));
            let (left, right) = tokio::join!(
                cluster.at(first).create_bucket(&name, &alice),
                cluster.at(second).create_bucket(&name, &bob)
            );
            let (winner, winner_user, loser) = match (left, right) {
                (Ok(()), Err(err)) => (first, "alice", err),
                (Err(err), Ok(())) => (second, "bob", err),
                other => panic!("round {round}: expected one success, got {other:?}"),
            };
            // Exactly one creation wins, and the decided value names its owner: the other user
            // learns the name is taken, whether or not its node's copy shows the bucket yet.
            assert_eq!(
                loser.code,
                S3ErrorCode::BucketAlreadyExists,
                "round {round}"
            );
            for index in 0..5 {
                let info = cluster.at(index).head_bucket(&name).await.unwrap();
                assert_eq!(info.owner, winner_user, "round {round}");
            }
            assert_eq!(
                code(
                    cluster
                        .at(second)
                        .create_bucket(&name, &acl_of(winner_user))
                        .await
                ),
                S3ErrorCode::BucketAlreadyOwnedByYou,
                "round {round}"
            );
            put_in(cluster.at(winner), &name, "k", b"v").await.unwrap();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_created_bucket_is_usable_through_nodes_lacking_its_record() {
    bounded(async {
        let cluster = TestCluster::start(5).await;
        // Straight after the answer, through every other node.
        cluster
            .at(0)
            .create_bucket("fresh", &root_acl())
            .await
            .unwrap();
        for index in 1..5 {
            cluster.at(index).head_bucket("fresh").await.unwrap();
        }

        cluster
            .at(0)
            .create_bucket("lagging", &root_acl())
            .await
            .unwrap();
        settle().await;
        for index in 1..5 {
            forget_bucket_record(cluster.at(index), "lagging");
        }
        let created = cluster.at(0).head_bucket("lagging").await.unwrap().created;
        for index in 1..5 {
            let node = cluster.at(index);
            assert_eq!(node.head_bucket("lagging").await.unwrap().created, created);
            // The learned record is kept, with the creator's version.
            let entry = node.inner.buckets.local_get(&"lagging".to_owned());
            assert!(entry.unwrap().unwrap().record.value.is_some());
        }
        forget_bucket_record(cluster.at(3), "lagging");
        let data = pattern(20_000, 7);
        put_in(cluster.at(3), "lagging", "obj", &data)
            .await
            .unwrap();
        let reader = cluster.at(4).get_object("lagging", "obj").await.unwrap();
        let mut stream = reader.into_stream(0..data.len() as u64);
        let mut read = Vec::new();
        while let Some(chunk) = stream.next().await {
            read.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(read, data);

        // A name nobody created is still unknown everywhere, and cannot be used.
        for index in 0..5 {
            assert_eq!(
                code(cluster.at(index).head_bucket("never").await),
                S3ErrorCode::NoSuchBucket
            );
        }
        assert_eq!(
            code(put_in(cluster.at(2), "never", "k", b"v").await),
            S3ErrorCode::NoSuchBucket
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn creation_needs_a_majority_of_the_layout() {
    bounded(async {
        let mut cluster = TestCluster::start(5).await;
        cluster.stop(3).await;
        cluster.stop(4).await;
        cluster
            .at(0)
            .create_bucket("two-down", &root_acl())
            .await
            .unwrap();
        assert_eq!(
            code(cluster.at(1).create_bucket("two-down", &root_acl()).await),
            S3ErrorCode::BucketAlreadyOwnedByYou
        );
        forget_bucket_record(cluster.at(2), "two-down");
        cluster.at(2).head_bucket("two-down").await.unwrap();

        cluster.stop(2).await;
        assert_eq!(
            code(cluster.at(0).create_bucket("three-down", &root_acl()).await),
            S3ErrorCode::ServiceUnavailable
        );
        // Without a majority nobody can tell a missing bucket from an unknown one.
        forget_bucket_record(cluster.at(1), "two-down");
        assert_eq!(
            code(cluster.at(1).head_bucket("two-down").await),
            S3ErrorCode::ServiceUnavailable
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_bucket_can_be_created_again() {
    bounded(async {
        let cluster = TestCluster::start(5).await;
        cluster
            .at(0)
            .create_bucket("again", &root_acl())
            .await
            .unwrap();
        put_in(cluster.at(1), "again", "k", b"v").await.unwrap();
        assert_eq!(
            code(cluster.at(2).delete_bucket("again").await),
            S3ErrorCode::BucketNotEmpty
        );
        cluster.at(2).delete_object("again", "k").await.unwrap();
        cluster.at(2).delete_bucket("again").await.unwrap();
        settle().await;
        for index in 0..5 {
            assert_eq!(
                code(cluster.at(index).head_bucket("again").await),
                S3ErrorCode::NoSuchBucket
            );
        }

        for generation in 0..3 {
            let (alice, bob) = (acl_of("alice"), acl_of("bob"));
            let (left, right) = tokio::join!(
                cluster.at(3).create_bucket("again", &alice),
                cluster.at(4).create_bucket("again", &bob)
            );
            assert!(
                left.is_ok() != right.is_ok(),
                "generation {generation}: {left:?} {right:?}"
            );
            let loser = left.err().or(right.err()).unwrap();
            assert_eq!(loser.code, S3ErrorCode::BucketAlreadyExists);
            settle().await;
            for index in 0..5 {
                cluster.at(index).head_bucket("again").await.unwrap();
            }
            cluster.at(generation).delete_bucket("again").await.unwrap();
            settle().await;
        }
        // A node that missed the tombstone and the re-creation still learns the bucket.
        cluster
            .at(1)
            .create_bucket("again", &root_acl())
            .await
            .unwrap();
        settle().await;
        forget_bucket_record(cluster.at(2), "again");
        cluster.at(2).head_bucket("again").await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn permissions_replicate_and_a_recreated_bucket_starts_clean() {
    bounded(async {
        let cluster = TestCluster::start(3).await;
        let public = CannedAcl::PublicRead.expand("alice", "alice");
        cluster.at(0).create_bucket("shared", &public).await.unwrap();
        settle().await;
        let seen = cluster.at(2).bucket_permissions("shared").await.unwrap();
        assert_eq!(seen.owner, "alice");
        assert_eq!(seen.acl, public);
        assert_eq!(seen.policy, None);

        // An ACL change and a policy change through different nodes both survive.
        let policy = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::shared/*"}]}"#;
        let private = acl_of("alice");
        let (set_policy, set_acl) = tokio::join!(
            cluster.at(1).put_bucket_policy("shared", Some(policy)),
            cluster.at(2).put_bucket_acl("shared", &private)
        );
        set_policy.unwrap();
        set_acl.unwrap();
        settle().await;
        for index in 0..3 {
            let seen = cluster.at(index).bucket_permissions("shared").await.unwrap();
            assert_eq!(seen.acl, private, "node {index}");
            assert_eq!(seen.policy.as_deref(), Some(policy), "node {index}");
        }

        // An object ACL set through one node is read through another, and an overwrite
        // (a new version) brings its own ACL.
        put_in(cluster.at(0), "shared", "k", b"v").await.unwrap();
        assert_eq!(cluster.at(1).object_acl("shared", "k").await.unwrap(), None);
        let grant = CannedAcl::AuthenticatedRead.expand("alice", "alice");
        cluster
            .at(1)
            .put_object_acl("shared", "k", &grant)
            .await
            .unwrap();
        assert_eq!(
            cluster.at(2).object_acl("shared", "k").await.unwrap(),
            Some(grant)
        );
        put_in(cluster.at(0), "shared", "k", b"w").await.unwrap();
        assert_eq!(cluster.at(2).object_acl("shared", "k").await.unwrap(), None);
        assert_eq!(
            code(cluster.at(2).object_acl("shared", "missing").await),
            S3ErrorCode::NoSuchKey
        );

        cluster.at(0).delete_object("shared", "k").await.unwrap();
        cluster.at(0).delete_bucket("shared").await.unwrap();
        settle().await;
        cluster
            .at(1)
            .create_bucket("shared", &acl_of("bob"))
            .await
            .unwrap();
        settle().await;
        for index in 0..3 {
            let seen = cluster.at(index).bucket_permissions("shared").await.unwrap();
            assert_eq!(seen.owner, "bob", "node {index}");
            assert_eq!(seen.acl, acl_of("bob"), "node {index}");
            assert_eq!(seen.policy, None, "node {index}");
        }
    })
    .await;
}
