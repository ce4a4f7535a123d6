//! Buckets and single-object operations, durability across reopen, concurrency of commits.

use s3api::backend::{ListQuery, ObjectAttrs, S3Backend};
use s3api::S3ErrorCode;

use super::super::codec::encode;
use super::super::keys::object_key;
use super::super::kv::Table;
use super::super::records::{BodyLayout, LiveVersion, ObjectRecord, ObjectState, VersionStamp};
use super::super::{Store, StoreConfig};
use super::*;

#[tokio::test]
async fn bucket_lifecycle_and_errors() {
    let (_dir, store) = new_store().await;
    store.create_bucket("alpha", &root_acl()).await.unwrap();
    assert_eq!(
        code(store.create_bucket("alpha", &root_acl()).await),
        S3ErrorCode::BucketAlreadyOwnedByYou
    );
    let names: Vec<String> = store
        .list_buckets()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, vec!["alpha".to_string(), BUCKET.to_string()]);
    assert_eq!(store.head_bucket("alpha").await.unwrap().name, "alpha");
    assert_eq!(
        code(store.head_bucket("nope").await),
        S3ErrorCode::NoSuchBucket
    );
    assert_eq!(
        code(store.delete_bucket("nope").await),
        S3ErrorCode::NoSuchBucket
    );

    put(&store, "file", b"x").await;
    assert_eq!(
        code(store.delete_bucket(BUCKET).await),
        S3ErrorCode::BucketNotEmpty
    );
    store.delete_object(BUCKET, "file").await.unwrap();
    // Only a tombstone remains: the bucket counts as empty.
    store.delete_bucket(BUCKET).await.unwrap();
    assert_eq!(
        code(store.head_bucket(BUCKET).await),
        S3ErrorCode::NoSuchBucket
    );
    store.delete_bucket("alpha").await.unwrap();
    assert!(store.list_buckets().await.unwrap().is_empty());
}

#[tokio::test]
async fn object_operations_on_a_missing_bucket_fail_with_no_such_bucket() {
    let (_dir, store) = new_store().await;
    let result = store
        .put_object("ghost", "k", ObjectAttrs::default(), &mut body(b"data"))
        .await;
    assert_eq!(code(result), S3ErrorCode::NoSuchBucket);
    assert_eq!(
        code(store.get_object("ghost", "k").await.map(|_| ())),
        S3ErrorCode::NoSuchBucket
    );
    assert_eq!(
        code(store.head_object("ghost", "k").await),
        S3ErrorCode::NoSuchBucket
    );
    assert_eq!(
        code(store.delete_object("ghost", "k").await),
        S3ErrorCode::NoSuchBucket
    );
    let listing = store.list_objects("ghost", &ListQuery::default()).await;
    assert_eq!(code(listing), S3ErrorCode::NoSuchBucket);
}

#[tokio::test]
async fn inline_and_block_bodies_round_trip_with_ranges() {
    let (_dir, store) = new_store().await;
    let attrs = ObjectAttrs {
        content_type: Some("text/plain".into()),
        user_metadata: vec![("colour".into(), "vert émeraude".into())],
        ..ObjectAttrs::default()
    };
    for (key, len) in [
        ("empty", 0),
        ("small", 100),
        ("one-block", 1024),
        ("many", 5000),
    ] {
        let data = pattern(len, 3);
        let info = store
            .put_object(BUCKET, key, attrs.clone(), &mut body(&data))
            .await
            .unwrap();
        assert_eq!(info.size, len as u64);
        assert_eq!(info.etag, md5_hex(&data));
        assert_eq!(info.parts_count, None);
        let head = store.head_object(BUCKET, key).await.unwrap();
        assert_eq!(head, info);
        assert_eq!(head.attrs, attrs);
        assert_eq!(read_all(&store, key).await.unwrap(), data);
    }
    let data = pattern(5000, 3);
    // Ranges inside one block, across block boundaries, at the end, and empty.
    for range in [0..1, 1000..1030, 1023..2049, 4096..5000, 17..17] {
        let got = read_range(&store, "many", range.clone()).await.unwrap();
        assert_eq!(got, data[range.start as usize..range.end as usize]);
    }
    let got = read_range(&store, "small", 10..20).await.unwrap();
    assert_eq!(got, pattern(100, 3)[10..20]);
    // Inline bodies create no block files; "one-block" is the first block of "many" and is
    // stored once.
    assert_eq!(store.stats().blocks, 5);
    assert_eq!(store.stats().objects, 4);
}

#[tokio::test]
async fn overwrite_replaces_and_delete_hides_the_object() {
    let (_dir, store) = new_store().await;
    put(&store, "k", &pattern(3000, 1)).await;
    let second = put(&store, "k", b"short now").await;
    assert_eq!(read_all(&store, "k").await.unwrap(), b"short now");
    assert_eq!(
        store.head_object(BUCKET, "k").await.unwrap().etag,
        second.etag
    );
    assert_eq!(store.stats().objects, 1);
    assert_eq!(store.stats().bytes, 9);

    store.delete_object(BUCKET, "k").await.unwrap();
    assert_eq!(
        code(store.head_object(BUCKET, "k").await),
        S3ErrorCode::NoSuchKey
    );
    assert_eq!(
        code(store.get_object(BUCKET, "k").await.map(|_| ())),
        S3ErrorCode::NoSuchKey
    );
    // Deleting again, or deleting what never existed, succeeds.
    store.delete_object(BUCKET, "k").await.unwrap();
    store.delete_object(BUCKET, "never").await.unwrap();
    assert_eq!(store.stats().objects, 0);
    let page = store
        .list_objects(
            BUCKET,
            &ListQuery {
                max_keys: 10,
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    assert!(page.objects.is_empty());
    // A new PUT after the delete is visible again.
    put(&store, "k", b"back").await;
    assert_eq!(read_all(&store, "k").await.unwrap(), b"back");
}

#[tokio::test]
async fn unusual_keys_are_plain_names_that_never_reach_the_file_system() {
    let (dir, store) = new_store().await;
    let keys = [
        "../../escape",
        "a//b",
        "dir/",
        "/leading",
        "ünïcödé/日本語/🎉",
        "with space and %2F",
        &"k".repeat(1024),
    ];
    for (i, key) in keys.iter().enumerate() {
        put(&store, key, &pattern(200 + i, i as u8)).await;
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            read_all(&store, key).await.unwrap(),
            pattern(200 + i, i as u8)
        );
    }
    assert!(!dir.path().join("escape").exists());
    assert!(!dir.path().parent().unwrap().join("escape").exists());
    let too_long = "k".repeat(1025);
    let result = store
        .put_object(BUCKET, &too_long, ObjectAttrs::default(), &mut body(b"x"))
        .await;
    assert_eq!(code(result), S3ErrorCode::KeyTooLongError);
}

#[tokio::test]
async fn every_acknowledged_object_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    {
        let store = Store::open(small_config(dir.path())).unwrap();
        store.create_bucket(BUCKET, &root_acl()).await.unwrap();
        for i in 0..20 {
            let key = format!("obj/{i:02}");
            let data = pattern(i * 311, i as u8);
            put(&store, &key, &data).await;
            expected.push((key, data));
        }
        store.delete_object(BUCKET, "obj/03").await.unwrap();
        expected.retain(|(key, _)| key != "obj/03");
    }
    let store = Store::open(small_config(dir.path())).unwrap();
    for (key, data) in &expected {
        assert_eq!(&read_all(&store, key).await.unwrap(), data, "{key}");
    }
    assert_eq!(
        code(store.head_object(BUCKET, "obj/03").await),
        S3ErrorCode::NoSuchKey
    );
    let stats = store.stats();
    assert_eq!(stats.objects, 19);
    assert_eq!(stats.buckets, 1);
    assert_eq!(
        stats.bytes,
        expected.iter().map(|(_, d)| d.len() as u64).sum::<u64>()
    );
    assert!(stats.meta_size_on_disk > 0);
    // The clock moved past every stored stamp: a new write wins over the old ones.
    put(&store, "obj/00", b"newest").await;
    assert_eq!(read_all(&store, "obj/00").await.unwrap(), b"newest");
}

#[tokio::test]
async fn aborted_body_leaves_no_object_and_keeps_the_previous_version() {
    let (_dir, store) = new_store().await;
    let result = store
        .put_object(
            BUCKET,
            "new",
            ObjectAttrs::default(),
            &mut failing_body(&pattern(4000, 1)),
        )
        .await;
    assert_eq!(code(result), S3ErrorCode::IncompleteBody);
    assert_eq!(
        code(store.head_object(BUCKET, "new").await),
        S3ErrorCode::NoSuchKey
    );

    put(&store, "old", b"first version").await;
    let result = store
        .put_object(
            BUCKET,
            "old",
            ObjectAttrs::default(),
            &mut failing_body(&pattern(4000, 2)),
        )
        .await;
    assert!(result.is_err());
    assert_eq!(read_all(&store, "old").await.unwrap(), b"first version");
    assert_eq!(store.stats().objects, 1);
}

#[tokio::test]
async fn a_missing_block_file_ends_the_stream_with_an_internal_error() {
    let (dir, store) = new_store().await;
    put(&store, "k", &pattern(3000, 9)).await;
    for shard in std::fs::read_dir(dir.path().join("blocks")).unwrap() {
        for file in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            std::fs::remove_file(file.unwrap().path()).unwrap();
        }
    }
    let result = read_all(&store, "k").await;
    assert_eq!(code(result), S3ErrorCode::InternalError);
}

#[tokio::test]
async fn an_older_commit_arriving_late_never_replaces_a_newer_one() {
    let (_dir, store) = new_store().await;
    let newer = put(&store, "k", b"newer").await;
    let stale = ObjectRecord {
        stamp: VersionStamp {
            hlc: 1,
            node_id: 9,
            uuid: [0; 16],
        },
        state: ObjectState::Live(LiveVersion {
            size: 5,
            etag: "stale".into(),
            last_modified_ms: 0,
            attrs: ObjectAttrs::default(),
            checksum: None,
            parts_count: None,
            upload_id: None,
            body: BodyLayout::Inline(b"stale".to_vec()),
        }),
    };
    let storage_key = object_key(BUCKET, "k");
    let inner = &store.inner;
    let merged = inner
        .transact(|txn| super::super::objects::merge_in(txn, &storage_key, stale.clone()))
        .unwrap();
    assert_ne!(merged.after, stale);
    assert_eq!(read_all(&store, "k").await.unwrap(), b"newer");
    assert_eq!(
        store.head_object(BUCKET, "k").await.unwrap().etag,
        newer.etag
    );
    // The raw table still holds exactly the newer record.
    let raw = inner.kv.get(Table::Objects, &storage_key).unwrap().unwrap();
    assert_ne!(&*raw, encode(&stale).unwrap().as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_all_succeed_and_one_of_them_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig {
        block_size: 512,
        ..StoreConfig::new(dir.path())
    })
    .unwrap();
    store.create_bucket(BUCKET, &root_acl()).await.unwrap();
    let mut tasks = Vec::new();
    for writer in 0..8u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let data = pattern(2000 + usize::from(writer), writer);
            put(&store, "contended", &data).await;
            put(&store, &format!("own/{writer}"), &data).await;
            data
        }));
    }
    let mut bodies = Vec::new();
    for task in tasks {
        bodies.push(task.await.unwrap());
    }
    let winner = read_all(&store, "contended").await.unwrap();
    assert!(bodies.contains(&winner));
    for (writer, data) in bodies.iter().enumerate() {
        assert_eq!(
            &read_all(&store, &format!("own/{writer}")).await.unwrap(),
            data
        );
    }
    assert_eq!(store.stats().objects, 9);
}

/// Regression test for a freeze seen under load: with sled's `flush_async` every sled thread
/// could end up waiting behind a transaction on a tokio worker (spacejam/sled#1308). Many
/// concurrent small PUTs on a two-worker runtime must all finish, and quickly. The runtime runs
/// on its own thread so that a frozen runtime fails the test instead of hanging it.
#[test]
fn many_concurrent_small_puts_on_two_workers_do_not_freeze() {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let objects = runtime.block_on(async {
            let (_dir, store) = new_store().await;
            let mut tasks = Vec::new();
            for writer in 0..32u8 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    for round in 0..25 {
                        let data = pattern(50 + usize::from(writer), writer ^ round);
                        put(&store, &format!("w{writer}/r{round}"), &data).await;
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            store.stats().objects
        });
        let _ = done_tx.send(objects);
    });
    let objects = done_rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("800 concurrent small PUTs did not finish within 60 s");
    assert_eq!(objects, 800);
}
