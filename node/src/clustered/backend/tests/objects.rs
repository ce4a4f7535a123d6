//! Objects, buckets and multipart uploads across coordinators, and with a node down.

use s3api::backend::{ListQuery, S3Backend, UploadsQuery};

use super::*;

const MIB: usize = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn objects_written_through_one_node_are_read_through_any_other() {
    bounded(async {
        let cluster = TestCluster::start(5).await;
        let (a, b, c, d, e) = (
            cluster.at(0),
            cluster.at(1),
            cluster.at(2),
            cluster.at(3),
            cluster.at(4),
        );
        a.create_bucket(BUCKET, &root_acl()).await.unwrap();
        // Through the node that created it (it holds the record): the caller's own bucket.
        // Through a node whose copy has not arrived yet the answer is BucketAlreadyExists,
        // as for a racing creator (see `buckets_paxos`).
        assert_eq!(
            code(a.create_bucket(BUCKET, &root_acl()).await),
            S3ErrorCode::BucketAlreadyOwnedByYou
        );
        // HeadBucket is immediate everywhere (the agreed log); ListBuckets reads the node's
        // full copy, which a majority acknowledged and the rest receive moments later.
        d.head_bucket(BUCKET).await.unwrap();
        let mut names: Vec<String> = Vec::new();
        for _ in 0..100 {
            names = d
                .list_buckets()
                .await
                .unwrap()
                .into_iter()
                .map(|b| b.name)
                .collect();
            if !names.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(names, vec![BUCKET.to_owned()]);
        assert_eq!(
            code(e.head_object("missing", "k").await),
            S3ErrorCode::NoSuchBucket
        );

        let small = pattern(100, 1);
        let large = pattern(2 * MIB + MIB / 2 + 3, 2);
        let small_info = put(a, "small", &small).await;
        let large_info = put(a, "dir/large", &large).await;
        assert_eq!(small_info.etag, md5_hex(&small));
        assert_eq!(large_info.etag, md5_hex(&large));

        let head = e.head_object(BUCKET, "dir/large").await.unwrap();
        assert_eq!(
            (head.size, head.etag.clone()),
            (large.len() as u64, md5_hex(&large))
        );
        assert_eq!(read_all(e, "small").await.unwrap(), small);
        assert_eq!(read_all(e, "dir/large").await.unwrap(), large);
        // A range across the first block boundary, and one inside the inline body.
        let across = (MIB as u64 - 10)..(MIB as u64 + 20);
        assert_eq!(
            read_range(e, "dir/large", across.clone()).await.unwrap(),
            large[across.start as usize..across.end as usize]
        );
        assert_eq!(read_range(e, "small", 5..9).await.unwrap(), small[5..9]);

        // Overwrite through B, visible through every node.
        let newer = pattern(3 * MIB, 3);
        put(b, "dir/large", &newer).await;
        for node in &cluster.nodes {
            let info = node.backend.head_object(BUCKET, "dir/large").await.unwrap();
            assert_eq!(info.etag, md5_hex(&newer), "through {}", node.id);
        }
        assert_eq!(read_all(d, "dir/large").await.unwrap(), newer);

        // Delete through C, gone through every node; deleting again succeeds.
        c.delete_object(BUCKET, "small").await.unwrap();
        c.delete_object(BUCKET, "small").await.unwrap();
        for node in &cluster.nodes {
            assert_eq!(
                code(node.backend.get_object(BUCKET, "small").await.map(|_| ())),
                S3ErrorCode::NoSuchKey
            );
        }
        let page = e
            .list_objects(
                BUCKET,
                &ListQuery {
                    max_keys: 1000,
                    ..ListQuery::default()
                },
            )
            .await
            .unwrap();
        let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, vec!["dir/large"]);

        assert_eq!(
            code(b.delete_bucket(BUCKET).await),
            S3ErrorCode::BucketNotEmpty
        );
        a.delete_object(BUCKET, "dir/large").await.unwrap();
        b.delete_bucket(BUCKET).await.unwrap();
        assert_eq!(code(c.head_bucket(BUCKET).await), S3ErrorCode::NoSuchBucket);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn puts_gets_and_lists_go_on_with_one_node_down() {
    bounded(async {
        let mut cluster = TestCluster::start(5).await;
        cluster
            .at(0)
            .create_bucket(BUCKET, &root_acl())
            .await
            .unwrap();
        let before = pattern(MIB + 17, 4);
        put(cluster.at(0), "before", &before).await;
        cluster.stop(3).await;

        let during = pattern(2 * MIB + 1, 5);
        put(cluster.at(1), "during", &during).await;
        for i in 0..20 {
            put(cluster.at(i % 3), &format!("many/{i:02}"), b"x").await;
        }
        for index in [0, 1, 2, 4] {
            let backend = cluster.at(index);
            assert_eq!(read_all(backend, "before").await.unwrap(), before);
            assert_eq!(read_all(backend, "during").await.unwrap(), during);
            let page = backend
                .list_objects(
                    BUCKET,
                    &ListQuery {
                        max_keys: 1000,
                        ..ListQuery::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(page.objects.len(), 22, "through node {index}");
            let rolled = backend
                .list_objects(
                    BUCKET,
                    &ListQuery {
                        delimiter: Some("/".into()),
                        max_keys: 1000,
                        ..ListQuery::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(rolled.common_prefixes, vec!["many/".to_owned()]);
            assert_eq!(rolled.objects.len(), 2);
        }

        // A second node down: some acknowledged write may sit on no answering replica, so a
        // listing refuses rather than answer incompletely; reads still find R replicas or fail.
        cluster.stop(4).await;
        let refused = cluster
            .at(0)
            .list_objects(
                BUCKET,
                &ListQuery {
                    max_keys: 10,
                    ..ListQuery::default()
                },
            )
            .await;
        let err = refused.unwrap_err();
        assert_eq!(err.code, S3ErrorCode::ServiceUnavailable);
        assert!(
            err.message.contains("n3") && err.message.contains("n4"),
            "{}",
            err.message
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn multipart_uploads_complete_through_different_coordinators() {
    bounded(async {
        let cluster = TestCluster::start(5).await;
        let (a, b, c, d, e) = (
            cluster.at(0),
            cluster.at(1),
            cluster.at(2),
            cluster.at(3),
            cluster.at(4),
        );
        a.create_bucket(BUCKET, &root_acl()).await.unwrap();
        let upload_id = a
            .create_multipart_upload(BUCKET, "mp/object", ObjectAttrs::default(), None)
            .await
            .unwrap();
        let uploads = c
            .list_multipart_uploads(
                BUCKET,
                &UploadsQuery {
                    max_uploads: 10,
                    ..UploadsQuery::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(uploads.uploads.len(), 1);
        assert_eq!(uploads.uploads[0].upload_id, upload_id);

        let first = pattern(5 * MIB, 6);
        let second = pattern(MIB / 3, 7);
        let part1 = b
            .upload_part(BUCKET, "mp/object", &upload_id, 1, &mut body(&first))
            .await
            .unwrap();
        let part2 = c
            .upload_part(BUCKET, "mp/object", &upload_id, 2, &mut body(&second))
            .await
            .unwrap();
        assert_eq!(part1.etag, md5_hex(&first));
        let parts = d
            .list_parts(BUCKET, "mp/object", &upload_id, 0, 100)
            .await
            .unwrap();
        let numbers: Vec<u32> = parts.parts.iter().map(|p| p.part_number).collect();
        assert_eq!(numbers, vec![1, 2]);
        let page = d
            .list_parts(BUCKET, "mp/object", &upload_id, 0, 1)
            .await
            .unwrap();
        assert!(page.is_truncated);
        assert_eq!(page.next_part_number_marker, Some(1));

        let listed = vec![(1, part1.etag.clone()), (2, format!("\"{}\"", part2.etag))];
        let reversed = vec![listed[1].clone(), listed[0].clone()];
        assert_eq!(
            code(
                e.complete_multipart_upload(BUCKET, "mp/object", &upload_id, &reversed)
                    .await
            ),
            S3ErrorCode::InvalidPartOrder
        );
        let wrong = vec![(1, part1.etag.clone()), (2, md5_hex(b"other"))];
        assert_eq!(
            code(
                e.complete_multipart_upload(BUCKET, "mp/object", &upload_id, &wrong)
                    .await
            ),
            S3ErrorCode::InvalidPart
        );
        let missing_part = vec![(1, part1.etag.clone()), (3, part2.etag.clone())];
        assert_eq!(
            code(
                e.complete_multipart_upload(BUCKET, "mp/object", &upload_id, &missing_part)
                    .await
            ),
            S3ErrorCode::InvalidPart
        );

        let info = e
            .complete_multipart_upload(BUCKET, "mp/object", &upload_id, &listed)
            .await
            .unwrap();
        assert!(info.etag.ends_with("-2"), "{}", info.etag);
        assert_eq!(info.size, (first.len() + second.len()) as u64);
        let again = b
            .complete_multipart_upload(BUCKET, "mp/object", &upload_id, &listed)
            .await
            .unwrap();
        assert_eq!(again.etag, info.etag);

        let mut whole = first.clone();
        whole.extend_from_slice(&second);
        assert_eq!(read_all(a, "mp/object").await.unwrap(), whole);
        assert_eq!(
            a.head_object(BUCKET, "mp/object")
                .await
                .unwrap()
                .parts_count,
            Some(2)
        );
        let uploads = d
            .list_multipart_uploads(
                BUCKET,
                &UploadsQuery {
                    max_uploads: 10,
                    ..UploadsQuery::default()
                },
            )
            .await
            .unwrap();
        assert!(uploads.uploads.is_empty());
        assert_eq!(
            code(
                c.upload_part(BUCKET, "mp/object", &upload_id, 3, &mut body(b"x"))
                    .await
            ),
            S3ErrorCode::NoSuchUpload
        );

        // A too-small first part and an abort.
        let other = b
            .create_multipart_upload(BUCKET, "mp/other", ObjectAttrs::default(), None)
            .await
            .unwrap();
        let tiny = c
            .upload_part(BUCKET, "mp/other", &other, 1, &mut body(b"tiny"))
            .await
            .unwrap();
        let tail = d
            .upload_part(BUCKET, "mp/other", &other, 2, &mut body(b"tail"))
            .await
            .unwrap();
        let listed = vec![(1, tiny.etag), (2, tail.etag)];
        assert_eq!(
            code(
                e.complete_multipart_upload(BUCKET, "mp/other", &other, &listed)
                    .await
            ),
            S3ErrorCode::EntityTooSmall
        );
        a.abort_multipart_upload(BUCKET, "mp/other", &other)
            .await
            .unwrap();
        assert_eq!(
            code(b.list_parts(BUCKET, "mp/other", &other, 0, 10).await),
            S3ErrorCode::NoSuchUpload
        );
        assert_eq!(
            code(c.abort_multipart_upload(BUCKET, "mp/other", &other).await),
            S3ErrorCode::NoSuchUpload
        );
    })
    .await;
}
