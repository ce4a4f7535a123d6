//! Cluster block GC against the references the S3 path writes: with no grace period, a GC
//! pass on every node must keep every block a live object uses and delete the blocks of
//! overwritten and deleted versions.

use std::collections::BTreeSet;
use std::time::Duration;

use s3api::backend::S3Backend;

use super::*;

const MIB: usize = 1024 * 1024;

/// The block hashes of the current version of `key`.
async fn block_hashes(backend: &ClusterBackend, key: &str) -> BTreeSet<[u8; 32]> {
    let entry = backend
        .inner
        .object_entry(BUCKET, key)
        .await
        .unwrap()
        .unwrap();
    let live = entry.version.value.expect("the object is live");
    live.body.blocks().iter().map(|block| block.hash).collect()
}

/// Whether any node still holds a copy of `hash`.
async fn held_anywhere(cluster: &TestCluster, hash: [u8; 32]) -> bool {
    for node in &cluster.nodes {
        if node.backend.inner.blocks.has_local(hash).await.unwrap() {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn block_gc_keeps_live_objects_and_removes_dead_versions() {
    bounded(async {
        let cluster = TestCluster::start(5).await;
        let (a, b, c) = (cluster.at(0), cluster.at(1), cluster.at(2));
        a.create_bucket(BUCKET, &root_acl()).await.unwrap();

        let kept = pattern(3 * MIB + 5, 20);
        put(a, "kept", &kept).await;
        // Same bytes under another key (what a copy does): shares every block with "kept".
        put(b, "copy", &kept).await;
        let overwritten = pattern(2 * MIB + 1, 21);
        put(a, "over", &overwritten).await;
        let overwritten_blocks = block_hashes(a, "over").await;
        let newer = pattern(2 * MIB + 9, 22);
        put(c, "over", &newer).await;
        let deleted = pattern(2 * MIB + 3, 23);
        put(b, "gone", &deleted).await;
        let deleted_blocks = block_hashes(a, "gone").await;
        a.delete_object(BUCKET, "gone").await.unwrap();
        // A copy deleted while its source lives: the shared blocks must stay.
        let doomed_copy = "copy-deleted";
        put(c, doomed_copy, &kept).await;
        b.delete_object(BUCKET, doomed_copy).await.unwrap();

        let upload_id = a
            .create_multipart_upload(BUCKET, "mp", ObjectAttrs::default(), None)
            .await
            .unwrap();
        let first = pattern(5 * MIB, 24);
        let second = pattern(MIB / 3, 25);
        let part1 = b
            .upload_part(BUCKET, "mp", &upload_id, 1, &mut body(&first))
            .await
            .unwrap();
        let part2 = c
            .upload_part(BUCKET, "mp", &upload_id, 2, &mut body(&second))
            .await
            .unwrap();
        a.complete_multipart_upload(
            BUCKET,
            "mp",
            &upload_id,
            &[(1, part1.etag), (2, part2.etag)],
        )
        .await
        .unwrap();
        let multipart: Vec<u8> = first.iter().chain(&second).copied().collect();

        let dead: BTreeSet<[u8; 32]> = overwritten_blocks.union(&deleted_blocks).copied().collect();
        let live: BTreeSet<[u8; 32]> = [
            block_hashes(a, "kept").await,
            block_hashes(a, "over").await,
            block_hashes(a, "mp").await,
        ]
        .into_iter()
        .flatten()
        .collect();
        assert!(dead.is_disjoint(&live));
        assert!(!dead.is_empty());

        // References are released in the background: collect until the dead blocks are gone
        // (or the test bound fires), checking after every pass that nothing live was lost.
        let mut removed = 0;
        loop {
            for node in &cluster.nodes {
                let report = node
                    .backend
                    .inner
                    .blocks
                    .collect_garbage(&node.backend.inner.refs, Duration::ZERO)
                    .await
                    .unwrap();
                assert_eq!(report.unreadable, 0, "{report:?}");
                removed += report.removed;
            }
            for hash in &live {
                assert!(
                    held_anywhere(&cluster, *hash).await,
                    "a live block was collected"
                );
            }
            let mut remaining = 0;
            for hash in &dead {
                if held_anywhere(&cluster, *hash).await {
                    remaining += 1;
                }
            }
            if remaining == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Each dead block had 3 replicas.
        assert!(removed >= 3 * dead.len() as u64, "removed {removed}");

        for reader in [a, b, c, cluster.at(3), cluster.at(4)] {
            assert_eq!(read_all(reader, "kept").await.unwrap(), kept);
            assert_eq!(read_all(reader, "copy").await.unwrap(), kept);
            assert_eq!(read_all(reader, "over").await.unwrap(), newer);
            assert_eq!(read_all(reader, "mp").await.unwrap(), multipart);
            assert_eq!(code(read_all(reader, "gone").await), S3ErrorCode::NoSuchKey);
        }
    })
    .await;
}
