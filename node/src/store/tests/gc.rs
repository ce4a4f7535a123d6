//! Garbage collection removes exactly the unreferenced blocks, and only after the grace period.

use std::time::Duration;

use s3api::backend::{ObjectAttrs, S3Backend};

use super::super::{Store, StoreConfig};
use super::*;

fn config(dir: &std::path::Path, grace: Duration) -> StoreConfig {
    StoreConfig {
        gc_grace: grace,
        ..small_config(dir)
    }
}

#[tokio::test]
async fn unreferenced_blocks_are_collected_after_the_grace_period_only() {
    let dir = tempfile::tempdir().unwrap();
    let kept = pattern(3000, 1);
    {
        let store = Store::open(config(dir.path(), Duration::from_secs(3600))).unwrap();
        store.create_bucket(BUCKET, &root_acl()).await.unwrap();
        put(&store, "kept", &kept).await;
        put(&store, "deleted", &pattern(3000, 2)).await;
        store.delete_object(BUCKET, "deleted").await.unwrap();
        put(&store, "overwritten", &pattern(2048, 3)).await;
        put(&store, "overwritten", b"now inline").await;
        // An interrupted upload: its blocks are written, its record never is.
        let result = store
            .put_object(
                BUCKET,
                "broken",
                ObjectAttrs::default(),
                &mut failing_body(&pattern(4000, 4)),
            )
            .await;
        assert!(result.is_err());
        // A live multipart upload keeps its parts' blocks; an aborted one does not.
        let live = store
            .create_multipart_upload(BUCKET, "mp", ObjectAttrs::default(), None)
            .await
            .unwrap();
        store
            .upload_part(BUCKET, "mp", &live, 1, &mut body(&pattern(1500, 5)))
            .await
            .unwrap();
        let aborted = store
            .create_multipart_upload(BUCKET, "mp", ObjectAttrs::default(), None)
            .await
            .unwrap();
        store
            .upload_part(BUCKET, "mp", &aborted, 1, &mut body(&pattern(1500, 6)))
            .await
            .unwrap();
        store
            .abort_multipart_upload(BUCKET, "mp", &aborted)
            .await
            .unwrap();
        std::fs::write(dir.path().join("blocks/tmp/leftover"), b"partial").unwrap();

        let report = store.collect_garbage().await.unwrap();
        assert_eq!(
            report.blocks_removed, 0,
            "everything is younger than an hour"
        );
        assert_eq!(report.temp_files_removed, 0);
        assert_eq!(report.tombstones_purged, 0);
        assert!(report.blocks_in_grace > 0);
    }

    let store = Store::open(config(dir.path(), Duration::ZERO)).unwrap();
    let blocks_before = store.stats().blocks;
    let report = store.collect_garbage().await.unwrap();
    // kept: 3 blocks, live part: 2 blocks.
    assert_eq!(report.referenced_blocks, 5);
    // deleted: 3, overwritten: 2, broken: 3 (written before the failure), aborted part: 2.
    assert_eq!(report.blocks_removed, 3 + 2 + 3 + 2);
    assert_eq!(report.temp_files_removed, 1);
    assert_eq!(report.tombstones_purged, 1);
    assert_eq!(store.stats().blocks, blocks_before - report.blocks_removed);

    assert_eq!(read_all(&store, "kept").await.unwrap(), kept);
    assert_eq!(
        read_all(&store, "overwritten").await.unwrap(),
        b"now inline"
    );
    let parts = store
        .list_parts(BUCKET, "mp", &live_upload(&store).await, 0, 10)
        .await
        .unwrap();
    assert_eq!(parts.parts.len(), 1);
    // A second pass finds nothing more to do.
    let again = store.collect_garbage().await.unwrap();
    assert_eq!((again.blocks_removed, again.temp_files_removed), (0, 0));
}

async fn live_upload(store: &Store) -> String {
    let page = store
        .list_multipart_uploads(
            BUCKET,
            &s3api::backend::UploadsQuery {
                max_uploads: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.uploads.len(), 1);
    page.uploads[0].upload_id.clone()
}

#[tokio::test]
async fn without_the_block_sweep_unreferenced_blocks_stay() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig {
        sweep_unreferenced_blocks: false,
        ..config(dir.path(), Duration::ZERO)
    })
    .unwrap();
    store.create_bucket(BUCKET, &root_acl()).await.unwrap();
    put(&store, "deleted", &pattern(3000, 2)).await;
    store.delete_object(BUCKET, "deleted").await.unwrap();
    let blocks_before = store.stats().blocks;
    assert!(blocks_before > 0);
    let report = store.collect_garbage().await.unwrap();
    assert_eq!((report.blocks_removed, report.blocks_in_grace), (0, 0));
    // The tombstone is still purged: only the block sweep is off.
    assert_eq!(report.tombstones_purged, 1);
    assert_eq!(store.stats().blocks, blocks_before);
}
