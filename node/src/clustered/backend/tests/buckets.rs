//! Bucket names agreed by Paxos: racing creators, visibility on nodes whose full copy lacks
//! the record, availability with nodes down, deletion and re-creation.

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
            let (left, right) = tokio::join!(
                cluster.at(first).create_bucket(&name),
                cluster.at(second).create_bucket(&name)
            );
            let (winner, loser) = match (left, right) {
                (Ok(()), Err(err)) => (first, err),
                (Err(err), Ok(())) => (second, err),
                other => panic!("round {round}: expected one success, got {other:?}"),
            };
            // Exactly one creation wins. The loser's answer depends on whether its node's copy
            // already shows the winner's bucket: with one root user both requests belong to the
            // same owner, so `BucketAlreadyOwnedByYou` is as right as `BucketAlreadyExists`
            // (multi-tenancy will put the owner into the decided value and tell them apart).
            assert!(
                matches!(
                    loser.code,
                    S3ErrorCode::BucketAlreadyExists | S3ErrorCode::BucketAlreadyOwnedByYou
                ),
                "round {round}: {loser:?}"
            );
            for index in 0..5 {
                cluster.at(index).head_bucket(&name).await.unwrap();
            }
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
        cluster.at(0).create_bucket("fresh").await.unwrap();
        for index in 1..5 {
            cluster.at(index).head_bucket("fresh").await.unwrap();
        }

        cluster.at(0).create_bucket("lagging").await.unwrap();
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
        cluster.at(0).create_bucket("two-down").await.unwrap();
        assert_eq!(
            code(cluster.at(1).create_bucket("two-down").await),
            S3ErrorCode::BucketAlreadyOwnedByYou
        );
        forget_bucket_record(cluster.at(2), "two-down");
        cluster.at(2).head_bucket("two-down").await.unwrap();

        cluster.stop(2).await;
        assert_eq!(
            code(cluster.at(0).create_bucket("three-down").await),
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
        cluster.at(0).create_bucket("again").await.unwrap();
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
            let (left, right) = tokio::join!(
                cluster.at(3).create_bucket("again"),
                cluster.at(4).create_bucket("again")
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
        cluster.at(1).create_bucket("again").await.unwrap();
        settle().await;
        forget_bucket_record(cluster.at(2), "again");
        cluster.at(2).head_bucket("again").await.unwrap();
    })
    .await;
}
