//! Multipart uploads: the happy path, idempotent completion, listings and every error.

use md5::{Digest, Md5};
use s3api::backend::{ObjectAttrs, S3Backend, UploadsQuery};
use s3api::S3ErrorCode;

use super::super::multipart::MIN_PART_SIZE;
use super::*;

const MIB5: usize = MIN_PART_SIZE as usize;

async fn start(store: &Store, key: &str) -> String {
    let attrs = ObjectAttrs {
        content_type: Some("application/x-test".into()),
        ..ObjectAttrs::default()
    };
    store
        .create_multipart_upload(BUCKET, key, attrs, None)
        .await
        .unwrap()
}

async fn part(store: &Store, key: &str, id: &str, number: u32, data: &[u8]) -> String {
    let info = store
        .upload_part(BUCKET, key, id, number, &mut body(data))
        .await
        .unwrap();
    assert_eq!(info.part_number, number);
    assert_eq!(info.size, data.len() as u64);
    info.etag
}

fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut md5s = Md5::new();
    for data in parts {
        md5s.update(Md5::digest(data));
    }
    format!("{}-{}", hex::encode(md5s.finalize()), parts.len())
}

#[tokio::test]
async fn parts_assemble_into_one_object_and_complete_is_idempotent() {
    let (_dir, store) = new_store().await;
    let id = start(&store, "big").await;
    let one = pattern(MIB5, 1);
    let two = pattern(MIB5 + 300, 2);
    let three = pattern(10, 3);
    let etag_one = part(&store, "big", &id, 1, &pattern(MIB5, 99)).await;
    // Uploading part 1 again replaces it.
    let etag_one_again = part(&store, "big", &id, 1, &one).await;
    assert_ne!(etag_one, etag_one_again);
    let etag_two = part(&store, "big", &id, 2, &two).await;
    let etag_three = part(&store, "big", &id, 3, &three).await;

    let listed = store.list_parts(BUCKET, "big", &id, 0, 2).await.unwrap();
    let numbers: Vec<u32> = listed.parts.iter().map(|p| p.part_number).collect();
    assert_eq!(numbers, vec![1, 2]);
    assert!(listed.is_truncated);
    assert_eq!(listed.next_part_number_marker, Some(2));
    assert_eq!(listed.parts[0].etag, etag_one_again);
    let rest = store.list_parts(BUCKET, "big", &id, 2, 2).await.unwrap();
    assert_eq!(rest.parts.len(), 1);
    assert!(!rest.is_truncated);

    let parts = vec![
        (1, format!("\"{etag_one_again}\"")),
        (2, etag_two.clone()),
        (3, etag_three.clone()),
    ];
    let info = store
        .complete_multipart_upload(BUCKET, "big", &id, &parts)
        .await
        .unwrap();
    assert_eq!(info.etag, multipart_etag(&[&one, &two, &three]));
    assert_eq!(info.parts_count, Some(3));
    assert_eq!(info.size, (one.len() + two.len() + three.len()) as u64);
    assert_eq!(
        info.attrs.content_type.as_deref(),
        Some("application/x-test")
    );

    let whole = [one.clone(), two.clone(), three.clone()].concat();
    assert_eq!(read_all(&store, "big").await.unwrap(), whole);
    // A range across the boundary between parts 1 and 2.
    let boundary = (MIB5 - 5) as u64..(MIB5 + 5) as u64;
    let got = read_range(&store, "big", boundary.clone()).await.unwrap();
    assert_eq!(got, whole[boundary.start as usize..boundary.end as usize]);

    // The upload and its parts are gone; completing again answers the same object.
    assert_eq!(
        code(store.list_parts(BUCKET, "big", &id, 0, 10).await),
        S3ErrorCode::NoSuchUpload
    );
    let again = store
        .complete_multipart_upload(BUCKET, "big", &id, &parts)
        .await
        .unwrap();
    assert_eq!(again, info);
    let uploads = store
        .list_multipart_uploads(
            BUCKET,
            &UploadsQuery {
                max_uploads: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(uploads.uploads.is_empty());
    store.delete_object(BUCKET, "big").await.unwrap();
    store.delete_bucket(BUCKET).await.unwrap();
}

#[tokio::test]
async fn complete_rejects_bad_part_lists() {
    let (_dir, store) = new_store().await;
    let id = start(&store, "k").await;
    let big = pattern(MIB5, 1);
    let e1 = part(&store, "k", &id, 1, &big).await;
    let e2 = part(&store, "k", &id, 2, b"small part").await;
    let e3 = part(&store, "k", &id, 3, b"last").await;

    let complete = |parts: Vec<(u32, String)>| {
        let store = store.clone();
        let id = id.clone();
        async move {
            store
                .complete_multipart_upload(BUCKET, "k", &id, &parts)
                .await
        }
    };
    let order = complete(vec![(2, e2.clone()), (1, e1.clone())]).await;
    assert_eq!(code(order), S3ErrorCode::InvalidPartOrder);
    let duplicate = complete(vec![(1, e1.clone()), (1, e1.clone())]).await;
    assert_eq!(code(duplicate), S3ErrorCode::InvalidPartOrder);
    let wrong_etag = complete(vec![(1, e2.clone()), (3, e3.clone())]).await;
    assert_eq!(code(wrong_etag), S3ErrorCode::InvalidPart);
    let missing = complete(vec![(1, e1.clone()), (4, e3.clone())]).await;
    assert_eq!(code(missing), S3ErrorCode::InvalidPart);
    let too_small = complete(vec![(1, e1.clone()), (2, e2.clone()), (3, e3.clone())]).await;
    assert_eq!(code(too_small), S3ErrorCode::EntityTooSmall);
    let empty = complete(vec![]).await;
    assert_eq!(code(empty), S3ErrorCode::MalformedXML);
    // Nothing became visible; the upload is still usable.
    assert_eq!(
        code(store.head_object(BUCKET, "k").await),
        S3ErrorCode::NoSuchKey
    );
    let info = complete(vec![(1, e1), (3, e3)]).await.unwrap();
    assert_eq!(info.size, (big.len() + 4) as u64);
    // Unused part 2 was dropped with the upload.
    assert_eq!(
        read_all(&store, "k").await.unwrap(),
        [big, b"last".to_vec()].concat()
    );
}

#[tokio::test]
async fn unknown_aborted_and_malformed_uploads() {
    let (_dir, store) = new_store().await;
    let bogus = "00000000000000000000000000000000";
    for id in [bogus, "../../etc/passwd", ""] {
        let result = store.upload_part(BUCKET, "k", id, 1, &mut body(b"x")).await;
        assert_eq!(code(result), S3ErrorCode::NoSuchUpload);
        assert_eq!(
            code(store.abort_multipart_upload(BUCKET, "k", id).await),
            S3ErrorCode::NoSuchUpload
        );
        let complete = store
            .complete_multipart_upload(BUCKET, "k", id, &[(1, "e".into())])
            .await;
        assert_eq!(code(complete), S3ErrorCode::NoSuchUpload);
    }
    let id = start(&store, "k").await;
    // The upload belongs to its key.
    let other_key = store
        .upload_part(BUCKET, "other", &id, 1, &mut body(b"x"))
        .await;
    assert_eq!(code(other_key), S3ErrorCode::NoSuchUpload);
    for number in [0, 10_001] {
        let result = store
            .upload_part(BUCKET, "k", &id, number, &mut body(b"x"))
            .await;
        assert_eq!(code(result), S3ErrorCode::InvalidArgument);
    }
    part(&store, "k", &id, 10_000, b"allowed").await;
    assert_eq!(
        code(store.delete_bucket(BUCKET).await),
        S3ErrorCode::BucketNotEmpty
    );

    store
        .abort_multipart_upload(BUCKET, "k", &id)
        .await
        .unwrap();
    assert_eq!(
        code(store.abort_multipart_upload(BUCKET, "k", &id).await),
        S3ErrorCode::NoSuchUpload
    );
    let after_abort = store
        .upload_part(BUCKET, "k", &id, 1, &mut body(b"x"))
        .await;
    assert_eq!(code(after_abort), S3ErrorCode::NoSuchUpload);
    let complete = store
        .complete_multipart_upload(BUCKET, "k", &id, &[(10_000, "x".into())])
        .await;
    assert_eq!(code(complete), S3ErrorCode::NoSuchUpload);
    store.delete_bucket(BUCKET).await.unwrap();
    let result = store
        .create_multipart_upload(BUCKET, "k", ObjectAttrs::default(), None)
        .await;
    assert_eq!(code(result), S3ErrorCode::NoSuchBucket);
}

#[tokio::test]
async fn uploads_are_listed_by_key_then_initiation_with_markers_and_prefixes() {
    let (_dir, store) = new_store().await;
    let b1 = start(&store, "b").await;
    let a1 = start(&store, "a").await;
    let b2 = start(&store, "b").await;
    let d1 = start(&store, "dir/x").await;
    let d2 = start(&store, "dir/y").await;
    let all = |max: usize| UploadsQuery {
        max_uploads: max,
        ..UploadsQuery::default()
    };
    let page = store
        .list_multipart_uploads(BUCKET, &all(100))
        .await
        .unwrap();
    let ids: Vec<&str> = page.uploads.iter().map(|u| u.upload_id.as_str()).collect();
    assert_eq!(ids, vec![&a1, &b1, &b2, &d1, &d2]);
    assert_eq!(page.uploads[0].key, "a");

    let first = store.list_multipart_uploads(BUCKET, &all(2)).await.unwrap();
    assert!(first.is_truncated);
    assert_eq!(first.next_key_marker.as_deref(), Some("b"));
    assert_eq!(first.next_upload_id_marker.as_deref(), Some(b1.as_str()));
    let next = UploadsQuery {
        key_marker: first.next_key_marker.clone(),
        upload_id_marker: first.next_upload_id_marker.clone(),
        ..all(2)
    };
    let second = store.list_multipart_uploads(BUCKET, &next).await.unwrap();
    let ids: Vec<&str> = second
        .uploads
        .iter()
        .map(|u| u.upload_id.as_str())
        .collect();
    assert_eq!(ids, vec![&b2, &d1]);
    let key_only = UploadsQuery {
        key_marker: Some("b".into()),
        ..all(100)
    };
    let after_b = store
        .list_multipart_uploads(BUCKET, &key_only)
        .await
        .unwrap();
    assert_eq!(after_b.uploads.len(), 2);

    let grouped = UploadsQuery {
        delimiter: Some("/".into()),
        ..all(100)
    };
    let page = store
        .list_multipart_uploads(BUCKET, &grouped)
        .await
        .unwrap();
    assert_eq!(page.common_prefixes, vec!["dir/"]);
    assert_eq!(page.uploads.len(), 3);
    let in_dir = UploadsQuery {
        prefix: "dir/".into(),
        ..all(100)
    };
    let page = store.list_multipart_uploads(BUCKET, &in_dir).await.unwrap();
    let keys: Vec<&str> = page.uploads.iter().map(|u| u.key.as_str()).collect();
    assert_eq!(keys, vec!["dir/x", "dir/y"]);
}
