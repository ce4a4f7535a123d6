//! Listings merged across nodes answer exactly what the single-node store answers.

use futures_util::stream::FuturesUnordered;
use s3api::backend::{ListPage, ListQuery, S3Backend};

use super::*;
use crate::store::{Store, StoreConfig};

/// 1,500 keys in a few directory levels, plus some at the top.
fn keys() -> Vec<String> {
    (0..1500)
        .map(|i| match i % 10 {
            0 => format!("top-{i:04}"),
            1..=3 => format!("photos/{}/img-{i:04}.jpg", 2020 + i % 4),
            4..=6 => format!("docs/{}/{i:04}.txt", ["a", "b", "c"][i % 3]),
            _ => format!("logs/day-{:02}/{i:04}.log", i % 31),
        })
        .collect()
}

/// Every page of a listing, following `next_marker`.
async fn pages<B: S3Backend>(backend: &B, query: &ListQuery) -> Vec<ListPage> {
    let mut query = query.clone();
    let mut pages = Vec::new();
    loop {
        let page = backend.list_objects(BUCKET, &query).await.unwrap();
        let next = page.next_marker.clone();
        let truncated = page.is_truncated;
        pages.push(page);
        if !truncated {
            return pages;
        }
        query.start_after = next;
        assert!(pages.len() < 2000, "listing does not end");
    }
}

/// Objects (key, size, ETag), common prefixes, truncation and next marker of one page.
type ComparablePage = (
    Vec<(String, u64, String)>,
    Vec<String>,
    bool,
    Option<String>,
);

/// What two listings must agree on (commit times differ between the two backends).
fn comparable(pages: &[ListPage]) -> Vec<ComparablePage> {
    pages
        .iter()
        .map(|page| {
            (
                page.objects
                    .iter()
                    .map(|o| (o.key.clone(), o.size, o.etag.clone()))
                    .collect(),
                page.common_prefixes.clone(),
                page.is_truncated,
                page.next_marker.clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn merged_listing_equals_the_single_node_store() {
    bounded(async {
        let cluster = TestCluster::start(5).await;
        cluster
            .at(0)
            .create_bucket(BUCKET, &root_acl())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig::new(dir.path())).unwrap();
        store.create_bucket(BUCKET, &root_acl()).await.unwrap();

        let keys = keys();
        let mut puts = FuturesUnordered::new();
        for (index, key) in keys.iter().enumerate() {
            let backend = cluster.at(index % 5).clone();
            let data = key.as_bytes().to_vec();
            puts.push(async move { put(&backend, key, &data).await });
            if puts.len() >= 32 {
                puts.next().await;
            }
        }
        while puts.next().await.is_some() {}
        for key in &keys {
            store
                .put_object(
                    BUCKET,
                    key,
                    ObjectAttrs::default(),
                    &mut body(key.as_bytes()),
                )
                .await
                .unwrap();
        }
        // Deleted keys must vanish from both.
        for key in keys.iter().step_by(97) {
            cluster.at(2).delete_object(BUCKET, key).await.unwrap();
            store.delete_object(BUCKET, key).await.unwrap();
        }

        let node_c = cluster.at(2);
        let query = |prefix: &str, delimiter: Option<&str>, start_after: Option<&str>, max_keys| {
            ListQuery {
                prefix: prefix.into(),
                delimiter: delimiter.map(Into::into),
                start_after: start_after.map(Into::into),
                max_keys,
            }
        };
        let queries = [
            query("", Some("/"), None, 1000),
            query("", Some("/"), None, 2),
            query("", None, None, 1000),
            query("", None, None, 333),
            query("photos/", Some("/"), None, 3),
            query("logs/", Some("/"), Some("logs/day-07/0007.log"), 5),
            query("docs/b/", Some("/"), None, 50),
            query("do", Some("/"), Some("a"), 1),
            query("", Some("-"), Some("top-0500"), 10),
            query("nothing/", Some("/"), None, 10),
            query("", Some("/"), None, 0),
        ];
        for query in &queries {
            let cluster_pages = pages(node_c, query).await;
            let store_pages = pages(&store, query).await;
            assert_eq!(
                comparable(&cluster_pages),
                comparable(&store_pages),
                "query {query:?}"
            );
        }
        let everything: usize = pages(node_c, &query("", None, None, 1000))
            .await
            .iter()
            .map(|page| page.objects.len())
            .sum();
        assert_eq!(everything, keys.len() - keys.iter().step_by(97).count());
    })
    .await;
}
