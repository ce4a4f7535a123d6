//! Listing: prefixes, delimiters, markers, pagination over many keys, and speed.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use s3api::backend::{ListPage, ListQuery, ObjectAttrs, S3Backend};

use super::super::records::{BodyLayout, LiveVersion};
use super::super::Store;
use super::*;

fn query(
    prefix: &str,
    delimiter: Option<&str>,
    start_after: Option<&str>,
    max: usize,
) -> ListQuery {
    ListQuery {
        prefix: prefix.into(),
        delimiter: delimiter.map(Into::into),
        start_after: start_after.map(Into::into),
        max_keys: max,
    }
}

/// Commits a tiny inline object without flushing: fast setup for large listings.
fn commit_quick(store: &Store, key: &str) {
    let version = LiveVersion {
        size: 1,
        etag: md5_hex(b"x"),
        last_modified_ms: 0,
        attrs: ObjectAttrs::default(),
        checksum: None,
        parts_count: None,
        upload_id: None,
        body: BodyLayout::Inline(b"x".to_vec()),
    };
    store
        .inner
        .commit_live(BUCKET, key, version, |_| Ok(()))
        .unwrap();
}

/// What S3 returns for the whole listing, computed the obvious way from the key set.
fn expected_entries(keys: &BTreeSet<String>, prefix: &str, delimiter: &str) -> Vec<String> {
    let mut out = BTreeSet::new();
    for key in keys.iter().filter(|k| k.starts_with(prefix)) {
        let rest = &key[prefix.len()..];
        match rest.find(delimiter) {
            Some(at) => out.insert(key[..prefix.len() + at + delimiter.len()].to_string()),
            None => out.insert(key.clone()),
        };
    }
    out.into_iter().collect()
}

/// Follows `next_marker` through every page.
async fn list_everything(
    store: &Store,
    prefix: &str,
    delimiter: &str,
    page_size: usize,
) -> Vec<String> {
    let mut entries = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page: ListPage = store
            .list_objects(
                BUCKET,
                &query(prefix, Some(delimiter), marker.as_deref(), page_size),
            )
            .await
            .unwrap();
        assert!(page.objects.len() + page.common_prefixes.len() <= page_size);
        let mut in_page: Vec<String> = page.objects.iter().map(|o| o.key.clone()).collect();
        in_page.extend(page.common_prefixes.iter().cloned());
        in_page.sort();
        entries.extend(in_page);
        if !page.is_truncated {
            return entries;
        }
        marker = page.next_marker.clone();
        assert!(marker.is_some());
    }
}

#[tokio::test]
async fn delimiter_listing_over_many_keys_matches_the_definition() {
    let (_dir, store) = new_store().await;
    let mut keys = BTreeSet::new();
    for i in 0..1200 {
        keys.insert(format!("photos/{:04}.jpg", i));
    }
    for extra in [
        "photos//double",
        "photos//double/deeper",
        "photos/2024/ünïcödé/a",
        "photos/2024/ünïcödé/b",
        "photos/日本/x",
        "photos/",
        "photos",
        "root.txt",
        "zz/last",
        "🎉/party",
    ] {
        keys.insert(extra.to_string());
    }
    for key in &keys {
        commit_quick(&store, key);
    }
    // Deleted keys never show up, not even as a common prefix.
    commit_quick(&store, "gone/only");
    store.delete_object(BUCKET, "gone/only").await.unwrap();

    for (prefix, delimiter, page_size) in [
        ("", "/", 1000),
        ("", "/", 3),
        ("photos/", "/", 1000),
        ("photos/", "/", 7),
        ("photos/2024/", "/", 1),
        ("photos", "/", 100),
        ("", "ö", 50),
    ] {
        let got = list_everything(&store, prefix, delimiter, page_size).await;
        let want = expected_entries(&keys, prefix, delimiter);
        assert_eq!(
            got, want,
            "prefix {prefix:?} delimiter {delimiter:?} page {page_size}"
        );
    }

    let top = store
        .list_objects(BUCKET, &query("", Some("/"), None, 1000))
        .await
        .unwrap();
    assert_eq!(top.common_prefixes, vec!["photos/", "zz/", "🎉/"]);
    let names: Vec<&str> = top.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(names, vec!["photos", "root.txt"]);
    assert!(!top.is_truncated);
    assert_eq!(top.next_marker, None);
}

#[tokio::test]
async fn markers_max_keys_and_plain_listing() {
    let (_dir, store) = new_store().await;
    for key in ["a/1", "a/2", "b", "c/1", "d"] {
        commit_quick(&store, key);
    }
    let none = store
        .list_objects(BUCKET, &query("", None, None, 0))
        .await
        .unwrap();
    assert_eq!(none, ListPage::default());

    // start_after equal to a common prefix continues after that whole prefix.
    let after_a = store
        .list_objects(BUCKET, &query("", Some("/"), Some("a/"), 1000))
        .await
        .unwrap();
    let names: Vec<&str> = after_a.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(names, vec!["b", "d"]);
    assert_eq!(after_a.common_prefixes, vec!["c/"]);

    let page = store
        .list_objects(BUCKET, &query("", Some("/"), None, 2))
        .await
        .unwrap();
    assert_eq!(page.common_prefixes, vec!["a/"]);
    assert_eq!(page.objects.len(), 1);
    assert!(page.is_truncated);
    assert_eq!(page.next_marker.as_deref(), Some("b"));

    // Without a delimiter every key is listed; start_after is exclusive.
    let flat = store
        .list_objects(BUCKET, &query("", None, Some("a/1"), 1000))
        .await
        .unwrap();
    let names: Vec<&str> = flat.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(names, vec!["a/2", "b", "c/1", "d"]);
    assert_eq!(flat.objects[0].size, 1);
    assert_eq!(flat.objects[0].etag, md5_hex(b"x"));

    // A marker before the prefix is ignored; one after everything gives an empty page.
    let before = store
        .list_objects(BUCKET, &query("c", None, Some("a"), 10))
        .await
        .unwrap();
    assert_eq!(before.objects.len(), 1);
    let after = store
        .list_objects(BUCKET, &query("", None, Some("zzz"), 10))
        .await
        .unwrap();
    assert!(after.objects.is_empty() && !after.is_truncated);
}

#[tokio::test]
async fn a_page_of_1000_over_10000_objects_is_fast() {
    let (_dir, store) = new_store().await;
    for i in 0..10_000 {
        commit_quick(&store, &format!("dir{:02}/file{:05}", i % 50, i));
    }
    let start_after = "dir10/file00010";
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        let page = store
            .inner
            .list_objects(BUCKET, &query("", None, Some(start_after), 1000));
        best = best.min(started.elapsed());
        let page = page.unwrap();
        assert_eq!(page.objects.len(), 1000);
        assert!(page.is_truncated);
    }
    let started = Instant::now();
    let grouped = store
        .inner
        .list_objects(BUCKET, &query("", Some("/"), None, 1000))
        .unwrap();
    let grouped_time = started.elapsed();
    assert_eq!(grouped.common_prefixes.len(), 50);
    println!("list 1000 of 10000: {best:?}; 50 common prefixes: {grouped_time:?}");
    // The goal is well under 2 ms in release builds; unoptimized test builds get headroom.
    assert!(best < Duration::from_millis(50), "took {best:?}");
    assert!(
        grouped_time < Duration::from_millis(50),
        "took {grouped_time:?}"
    );
}
