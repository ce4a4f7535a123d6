//! The resync queue: referenced blocks an owner lacks are fetched from another replica.

use super::*;

/// Deletes `hash`'s file on `node` (a lost disk, a handoff whose holder died).
async fn lose_block(node: &BlockNode, hash: BlockHash) {
    node.service
        .blocking(move |local| local.remove(&hash))
        .await
        .unwrap();
    assert!(!node.service.has_local(hash).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_refetches_a_referenced_block_it_lost() {
    bounded(async {
        let cluster = BlockCluster::start(4, QuorumPolicy::Sloppy).await;
        let (hash, data) = block_avoiding(&cluster, &[], "resync");
        cluster.nodes[0]
            .service
            .put_block(hash, data)
            .await
            .unwrap();
        eventually("all owners hold the block", || async {
            cluster.holders(hash).await.len() == 3
        })
        .await;
        cluster.nodes[1]
            .refs
            .add_refs(hash, &["bucket/key#v1".to_owned()])
            .await
            .unwrap();
        let owners = cluster.owners(&hash);
        let victim = cluster.node(&owners[1]);
        // References are written with W = 2: make sure the victim holds its copy, as
        // anti-entropy would.
        eventually("the victim holds the references", || async {
            victim.refs.table().local_get(&hash).unwrap().is_some()
        })
        .await;
        lose_block(victim, hash).await;

        let report = victim.service.resync_missing(&victim.refs).await.unwrap();

        assert_eq!(
            (report.owned, report.missing, report.fetched, report.failed),
            (1, 1, 1, 0),
            "{report:?}"
        );
        assert!(victim.service.has_local(hash).await.unwrap());
        // A second pass finds nothing to do.
        let again = victim.service.resync_missing(&victim.refs).await.unwrap();
        assert_eq!((again.missing, again.fetched), (0, 0), "{again:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreferenced_blocks_and_blocks_owned_elsewhere_are_not_fetched() {
    bounded(async {
        let cluster = BlockCluster::start(4, QuorumPolicy::Sloppy).await;
        let (hash, data) = block_avoiding(&cluster, &[], "resync-unreferenced");
        cluster.nodes[0]
            .service
            .put_block(hash, data)
            .await
            .unwrap();
        let version = ["bucket/key#v1".to_owned()];
        cluster.nodes[0]
            .refs
            .add_refs(hash, &version)
            .await
            .unwrap();
        cluster.nodes[0]
            .refs
            .remove_refs(hash, &version)
            .await
            .unwrap();
        let owners = cluster.owners(&hash);
        let victim = cluster.node(&owners[0]);
        eventually("the victim holds the references", || async {
            victim.refs.table().local_get(&hash).unwrap().is_some()
        })
        .await;
        lose_block(victim, hash).await;

        // Removed references: the block is garbage, not something to restore.
        let report = victim.service.resync_missing(&victim.refs).await.unwrap();
        assert_eq!((report.owned, report.missing), (0, 0), "{report:?}");

        // A non-owner holding a copy of live references never fetches the block.
        cluster.nodes[0]
            .refs
            .add_refs(hash, &["bucket/key#v2".to_owned()])
            .await
            .unwrap();
        let outsider = cluster
            .nodes
            .iter()
            .find(|node| !owners.contains(&node.id))
            .unwrap();
        let entry = cluster.nodes[0].refs.get(&hash).await.unwrap().unwrap();
        assert!(entry.is_referenced());
        outsider.refs.table().local_merge(&entry).await.unwrap();
        let report = outsider
            .service
            .resync_missing(&outsider.refs)
            .await
            .unwrap();
        assert_eq!((report.scanned, report.owned), (1, 0), "{report:?}");
        assert!(!outsider.service.has_local(hash).await.unwrap());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_no_replica_holds_is_counted_failed_and_retried_later() {
    bounded(async {
        let cluster = BlockCluster::start(4, QuorumPolicy::Sloppy).await;
        let (hash, data) = block_avoiding(&cluster, &[], "resync-lost");
        cluster.nodes[0]
            .service
            .put_block(hash, data.clone())
            .await
            .unwrap();
        cluster.nodes[0]
            .refs
            .add_refs(hash, &["bucket/key#v1".to_owned()])
            .await
            .unwrap();
        eventually("all owners hold the block", || async {
            cluster.holders(hash).await.len() == 3
        })
        .await;
        let owners = cluster.owners(&hash);
        let victim = cluster.node(&owners[0]);
        eventually("the victim holds the references", || async {
            victim.refs.table().local_get(&hash).unwrap().is_some()
        })
        .await;
        for owner in &owners {
            lose_block(cluster.node(owner), hash).await;
        }

        let report = victim.service.resync_missing(&victim.refs).await.unwrap();
        assert_eq!(
            (report.missing, report.fetched, report.failed),
            (1, 0, 1),
            "{report:?}"
        );
        assert_eq!(report.errors.len(), 1, "{report:?}");

        // Once one replica has it again, the next pass restores the victim's copy.
        let keeper = cluster.node(&owners[1]);
        keeper
            .service
            .blocking(move |local| local.write_verified(&hash, &data))
            .await
            .unwrap();
        let report = victim.service.resync_missing(&victim.refs).await.unwrap();
        assert_eq!((report.fetched, report.failed), (1, 0), "{report:?}");
        assert!(victim.service.has_local(hash).await.unwrap());
    })
    .await;
}
