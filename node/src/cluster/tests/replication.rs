//! Quorum writes and reads, read repair and convergence, all replicas up.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn written_through_one_node_reads_the_same_through_another() {
    bounded(async {
        let cluster = TestCluster::start(5, QuorumPolicy::Sloppy).await;
        let (a, e) = (&cluster.nodes[0], &cluster.nodes[4]);
        let entry = note("photos/cat.jpg", "v1");
        a.sharded.insert(&entry).await.unwrap();
        let read = e.sharded.get(&entry.key).await.unwrap();
        assert_eq!(read, Some(entry.clone()));

        // All three owners end up with it, nobody else does, and nothing was hinted.
        let owners = cluster.owners(&entry.key);
        assert_eq!(owners.len(), 3);
        eventually("every owner holds the entry", || {
            owners.iter().all(|id| {
                cluster.node(id).sharded.local_get(&entry.key).unwrap() == Some(entry.clone())
            })
        })
        .await;
        for node in cluster.nodes.iter().filter(|n| !owners.contains(&n.id)) {
            assert_eq!(node.sharded.local_get(&entry.key).unwrap(), None);
        }
        assert!(cluster.hints().is_empty());
        // A key nobody wrote reads as absent.
        assert_eq!(e.sharded.get(&"missing".to_owned()).await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_writes_and_deletes_replace_older_ones() {
    bounded(async {
        let cluster = TestCluster::start(5, QuorumPolicy::Sloppy).await;
        let key = "doc";
        let first = note(key, "first");
        let second = note(key, "second");
        cluster.nodes[1].sharded.insert(&second).await.unwrap();
        // An older version arriving late changes nothing.
        cluster.nodes[2].sharded.insert(&first).await.unwrap();
        let read = cluster.nodes[3].sharded.get(&key.to_owned()).await.unwrap();
        assert_eq!(value_of(&read), Some("second"));

        let delete = Note {
            key: key.to_owned(),
            register: Lww::tombstone(next_stamp(7)),
        };
        cluster.nodes[0].sharded.insert(&delete).await.unwrap();
        let read = cluster.nodes[4].sharded.get(&key.to_owned()).await.unwrap();
        assert!(read.unwrap().register.is_tombstone());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_repair_stale_and_missing_replicas() {
    bounded(async {
        let cluster = TestCluster::start(5, QuorumPolicy::Sloppy).await;

        // Key 1: two owners hold the new version, one holds an older one.
        let stale_key = "stale";
        let old = note(stale_key, "old");
        let new = note(stale_key, "new");
        let owners = cluster.owners(stale_key);
        let stale_owner = &owners[2];
        cluster
            .node(&owners[0])
            .sharded
            .local_merge(&new)
            .await
            .unwrap();
        cluster
            .node(&owners[1])
            .sharded
            .local_merge(&new)
            .await
            .unwrap();
        cluster
            .node(stale_owner)
            .sharded
            .local_merge(&old)
            .await
            .unwrap();

        // Key 2: two owners hold it, one has nothing at all.
        let missing_key = "missing-on-one";
        let entry = note(missing_key, "only-two");
        let missing_owners = cluster.owners(missing_key);
        let empty_owner = &missing_owners[0];
        for id in &missing_owners[1..] {
            cluster.node(id).sharded.local_merge(&entry).await.unwrap();
        }

        let coordinator = cluster.outsider(stale_key);
        let read = coordinator
            .sharded
            .get(&stale_key.to_owned())
            .await
            .unwrap();
        assert_eq!(read, Some(new.clone()), "R=2 of 3 always meets the newest");
        let read = cluster.nodes[0]
            .sharded
            .get(&missing_key.to_owned())
            .await
            .unwrap();
        assert_eq!(read, Some(entry.clone()));

        let stale_table = &cluster.node(stale_owner).sharded;
        eventually("the stale owner is repaired", || {
            stale_table.local_get(&stale_key.to_owned()).unwrap() == Some(new.clone())
        })
        .await;
        let empty_table = &cluster.node(empty_owner).sharded;
        eventually("the empty owner is repaired", || {
            empty_table.local_get(&missing_key.to_owned()).unwrap() == Some(entry.clone())
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_converge_to_the_largest_stamp_everywhere() {
    bounded(async {
        let cluster = TestCluster::start(5, QuorumPolicy::Sloppy).await;
        let key = "contended";
        let versions: Vec<Note> = (0..20).map(|i| note(key, &format!("v{i}"))).collect();
        let newest = versions
            .iter()
            .max_by_key(|version| version.register.stamp)
            .cloned()
            .unwrap();

        // Each version through a different coordinator, all at once, newest not last.
        let mut writers = tokio::task::JoinSet::new();
        for (i, version) in versions.into_iter().rev().enumerate() {
            let table = cluster.nodes[i % cluster.nodes.len()].sharded.clone();
            writers.spawn(async move { table.insert(&version).await });
        }
        while let Some(result) = writers.join_next().await {
            result.unwrap().unwrap();
        }

        let owners = cluster.owners(key);
        eventually("every owner holds the newest version", || {
            owners.iter().all(|id| {
                cluster.node(id).sharded.local_get(&key.to_owned()).unwrap() == Some(newest.clone())
            })
        })
        .await;
        for node in &cluster.nodes {
            assert_eq!(
                node.sharded.get(&key.to_owned()).await.unwrap(),
                Some(newest.clone())
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_reads_ask_r_replicas_and_widen_when_one_fails() {
    bounded(async {
        // No full reads: a read asks R = 2 owners unless one fails or they disagree.
        let mut cluster = TestCluster::start_with(5, QuorumPolicy::Sloppy, u64::MAX).await;
        let key = "quorum-read";
        let old = note(key, "old");
        let new = note(key, "new");
        let owners = cluster.owners(key);
        for owner in &owners[..2] {
            cluster.node(owner).sharded.local_merge(&new).await.unwrap();
        }
        cluster
            .node(&owners[2])
            .sharded
            .local_merge(&old)
            .await
            .unwrap();

        // The first owner coordinates: it asks itself and the second owner, which agree, so
        // the third (stale) owner is neither asked nor repaired; anti-entropy is its cure.
        let first = cluster.node(&owners[0]);
        let read = first.sharded.get(&key.to_owned()).await.unwrap();
        assert_eq!(read, Some(new.clone()));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stale = &cluster.node(&owners[2]).sharded;
        assert_eq!(stale.local_get(&key.to_owned()).unwrap(), Some(old.clone()));

        // With the second owner unreachable, the read widens to the third: the quorum then
        // disagrees, the newest version wins and the stale owner is repaired.
        let second = owners[1].clone();
        cluster.stop(&second).await;
        let first = cluster.node(&owners[0]);
        let read = first.sharded.get(&key.to_owned()).await.unwrap();
        assert_eq!(read, Some(new.clone()));
        let stale = &cluster.node(&owners[2]).sharded;
        eventually("the stale owner is repaired", || {
            stale.local_get(&key.to_owned()).unwrap() == Some(new.clone())
        })
        .await;
    })
    .await;
}
