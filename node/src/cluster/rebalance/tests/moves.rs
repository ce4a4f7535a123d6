//! A node joining and a node leaving: data ends where the new ring puts it, nothing is
//! unreadable on the way, and the status tells the progress.

use tokio::sync::watch;

use super::*;
use crate::cluster::rebalance::RebalanceWorker;

/// Starts a reader over the whole cluster; returns the stop flag and the reader's task.
fn spawn_reader(
    cluster: &RebalanceCluster,
    keys: &[String],
    blocks: &[(BlockHash, Bytes)],
) -> (Arc<AtomicBool>, tokio::task::JoinHandle<usize>) {
    let stop = Arc::new(AtomicBool::new(false));
    let readers = cluster
        .nodes
        .iter()
        .map(|node| (node.items.clone(), node.blocks.clone()))
        .collect();
    let task = tokio::spawn(read_everything_until(
        readers,
        keys.to_vec(),
        blocks.to_vec(),
        stop.clone(),
    ));
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_receives_exactly_its_share_and_old_owners_drop_theirs() {
    bounded(async {
        let mut cluster = RebalanceCluster::start(5, 4).await;
        let (keys, blocks) = cluster.fill().await;
        let ids = cluster.ids();
        let newcomer = ids[4].clone();
        assert!(cluster.nodes[4]
            .items
            .local_get(&keys[0])
            .unwrap()
            .is_none());

        let (layouts, _) = watch::channel(Arc::new(one_zone_layout(
            1,
            &ids[..4].iter().collect::<Vec<_>>(),
        )));
        let workers: Vec<RebalanceWorker> = cluster
            .nodes
            .iter()
            .map(|node| {
                RebalanceWorker::spawn(
                    node.rebalancer.clone(),
                    layouts.subscribe(),
                    Duration::from_millis(100),
                )
            })
            .collect();
        let (stop, reader) = spawn_reader(&cluster, &keys, &blocks);

        let joined = one_zone_layout(2, &ids.iter().collect::<Vec<_>>());
        cluster.set_ring(Ring::new(&joined));
        layouts.send(Arc::new(joined)).unwrap();
        let deadline = tokio::time::Instant::now() + SETTLE_BOUND;
        loop {
            let statuses: Vec<_> = cluster
                .nodes
                .iter()
                .map(|n| n.rebalancer.status())
                .collect();
            if statuses
                .iter()
                .all(|status| status.layout_version == 2 && status.is_complete())
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "rebalance never completed: {statuses:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.store(true, Ordering::Relaxed);
        assert!(reader.await.unwrap() >= 1);
        drop(workers);

        assert_eq!(cluster.misplaced(&keys, &blocks).await, 0);
        let gained_entries = keys
            .iter()
            .filter(|key| cluster.entry_owners(key).contains(&newcomer))
            .count();
        let gained_blocks = blocks
            .iter()
            .filter(|(hash, _)| cluster.block_owners(hash).contains(&newcomer))
            .count();
        assert!(gained_entries > 0 && gained_blocks > 0);
        let statuses: Vec<_> = cluster
            .nodes
            .iter()
            .map(|n| n.rebalancer.status())
            .collect();
        // The newcomer held nothing before, so it moved and dropped nothing.
        assert_eq!(statuses[4].ranges_total, 0);
        let total = |field: fn(&super::super::RebalanceStatus) -> u64| {
            statuses.iter().map(field).sum::<u64>() as usize
        };
        // Each gained copy is pushed by one to three old owners; each is dropped by exactly
        // the one owner that lost it.
        assert!(total(|s| s.entries_moved) >= gained_entries);
        assert!(total(|s| s.blocks_moved) >= gained_blocks);
        assert_eq!(total(|s| s.dropped), gained_entries + gained_blocks);
        for status in &statuses[..4] {
            assert!(
                status.ranges_total > 0 && status.is_complete(),
                "{status:?}"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaving_node_hands_its_ranges_over_before_dropping_them() {
    bounded(async {
        let mut cluster = RebalanceCluster::start(5, 5).await;
        let (keys, blocks) = cluster.fill().await;
        let ids = cluster.ids();
        let leaving = ids[2].clone();
        let held_by_leaver = keys
            .iter()
            .filter(|key| cluster.entry_owners(key).contains(&leaving))
            .count();
        assert!(held_by_leaver > 0);

        let old_ring = cluster.ring.clone();
        let remaining: Vec<&NodeId> = ids.iter().filter(|id| **id != leaving).collect();
        let new_ring = Ring::new(&one_zone_layout(2, &remaining));
        cluster.set_ring(new_ring.clone());
        let (stop, reader) = spawn_reader(&cluster, &keys, &blocks);

        let passes = cluster
            .nodes
            .iter()
            .map(|node| node.rebalancer.rebalance(&old_ring, &new_ring));
        for result in futures_util::future::join_all(passes).await {
            let status = result.unwrap();
            assert!(status.is_complete(), "{status:?}");
        }
        stop.store(true, Ordering::Relaxed);
        assert!(reader.await.unwrap() >= 1);

        // The leaver holds nothing any more and every remaining owner has its copies.
        assert_eq!(cluster.misplaced(&keys, &blocks).await, 0);
        let leaver = cluster
            .nodes
            .iter()
            .find(|node| node.id == leaving)
            .unwrap();
        assert!(keys
            .iter()
            .all(|key| leaver.items.local_get(key).unwrap().is_none()));
        let leaver_status = leaver.rebalancer.status();
        assert_eq!(leaver_status.layout_version, 2);
        assert!(leaver_status.dropped as usize >= held_by_leaver);

        // A second pass for the same version finds everything synced and moves nothing.
        let before = leaver.rebalancer.status();
        let again = leaver
            .rebalancer
            .rebalance(&old_ring, &new_ring)
            .await
            .unwrap();
        assert_eq!(again, before);
        for node in &cluster.nodes {
            for key in &keys {
                assert!(node.items.get(key).await.unwrap().is_some());
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_fall_back_to_the_previous_owners_until_the_data_has_moved() {
    bounded(async {
        // Every range changes all three owners at once: no new owner holds anything yet.
        let mut cluster = RebalanceCluster::start(6, 3).await;
        let (keys, blocks) = cluster.fill().await;
        let ids = cluster.ids();
        let old_ring = cluster.ring.clone();
        let new_ring = Ring::new(&one_zone_layout(2, &ids[3..].iter().collect::<Vec<_>>()));
        cluster.set_ring(new_ring.clone());

        // Without the previous ring the new owners' answer stands: absent.
        let reader = &cluster.nodes[0];
        assert_eq!(reader.items.get(&keys[0]).await.unwrap(), None);
        for node in &cluster.nodes {
            node.rebalancer.set_previous_ring(Some(old_ring.clone()));
        }
        assert!(reader.items.get(&keys[0]).await.unwrap().is_some());
        // The fallback repaired nothing: the old owners still hold it, the new ones do not.
        assert_eq!(cluster.misplaced(&keys[..1], &[]).await, 6);

        let (stop, reader) = spawn_reader(&cluster, &keys, &blocks);
        let passes = cluster
            .nodes
            .iter()
            .map(|node| node.rebalancer.rebalance(&old_ring, &new_ring));
        for result in futures_util::future::join_all(passes).await {
            assert!(result.unwrap().is_complete());
        }
        stop.store(true, Ordering::Relaxed);
        assert!(reader.await.unwrap() >= 1);
        assert_eq!(cluster.misplaced(&keys, &blocks).await, 0);

        // Moved for good: readable without the previous ring too.
        for node in &cluster.nodes {
            node.rebalancer.set_previous_ring(None);
        }
        for key in &keys {
            assert!(cluster.nodes[0].items.get(key).await.unwrap().is_some());
        }
    })
    .await;
}
