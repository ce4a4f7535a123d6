//! Owners down: handoff to a fallback node, delivery on return, quorum failures.

use super::*;
use crate::cluster::blocks::BlockError;

/// Runs handoff passes on every node until none holds a block for another.
async fn drain_handoffs(cluster: &BlockCluster) {
    let deadline = tokio::time::Instant::now() + SETTLE_BOUND;
    loop {
        let mut pending = 0;
        for node in &cluster.nodes {
            node.service.replay_handoffs().await.unwrap();
            pending += node.service.pending_handoffs().await.unwrap().len();
        }
        if pending == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "handoffs never drained"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every handoff record in the cluster, as (holder, owner, block).
async fn all_handoffs(cluster: &BlockCluster) -> Vec<(NodeId, NodeId, BlockHash)> {
    let mut held = Vec::new();
    for node in &cluster.nodes {
        for (owner, block) in node.service.pending_handoffs().await.unwrap() {
            held.push((node.id.clone(), owner, block));
        }
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_owner_gets_its_block_from_the_handoff_holder_when_it_returns() {
    bounded(async {
        let mut cluster = BlockCluster::start(5, QuorumPolicy::Sloppy).await;
        let coordinator = cluster.nodes[0].id.clone();
        let (hash, data) = block_avoiding(&cluster, &[&coordinator], "handoff");
        let owners = cluster.owners(&hash);
        let down = owners[1].clone();
        // Not marked down: the coordinator finds out by a failed call.
        cluster.stop(&down).await;

        cluster.nodes[0]
            .service
            .put_block(hash, data.clone())
            .await
            .unwrap();
        eventually(
            "a fallback node holds the block for the down owner",
            || async { !all_handoffs(&cluster).await.is_empty() },
        )
        .await;
        let held = all_handoffs(&cluster).await;
        assert_eq!(held.len(), 1, "{held:?}");
        let (holder, owner, block) = held[0].clone();
        assert_eq!((owner, block), (down.clone(), hash));
        assert!(
            !owners.contains(&holder),
            "the holder is outside the preference list"
        );
        assert!(!cluster.node(&down).service.has_local(hash).await.unwrap());
        // Reads go on meanwhile.
        assert_eq!(
            cluster.nodes[0].service.get_block(hash).await.unwrap(),
            data
        );

        assert_eq!(
            cluster
                .node(&holder)
                .service
                .counters()
                .handoffs_delivered(),
            0
        );
        cluster.restart(&down).await;
        drain_handoffs(&cluster).await;
        let mut expected = owners.clone();
        expected.sort();
        assert_eq!(
            cluster.holders(hash).await,
            expected,
            "the owner has it and the holder dropped its copy"
        );
        // The node's running total (what status and metrics show) saw the delivery.
        for node in &cluster.nodes {
            let expected = u64::from(node.id == holder);
            assert_eq!(
                node.service.counters().handoffs_delivered(),
                expected,
                "{}",
                node.id
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_owners_down_under_a_strict_quorum_fail_the_put_with_each_owners_error() {
    bounded(async {
        let mut cluster = BlockCluster::start(5, QuorumPolicy::Strict).await;
        let coordinator = cluster.nodes[0].id.clone();
        let (hash, data) = block_avoiding(&cluster, &[&coordinator], "strict");
        let owners = cluster.owners(&hash);
        cluster.stop(&owners[0]).await;
        cluster.stop(&owners[2]).await;

        let outcome = cluster.nodes[0].service.put_block(hash, data.clone()).await;
        let Err(BlockError::WriteQuorum {
            needed,
            succeeded,
            failures,
            ..
        }) = outcome
        else {
            panic!("expected a write-quorum error, got {outcome:?}");
        };
        assert_eq!((needed, succeeded), (2, 1));
        let failed: Vec<_> = failures
            .iter()
            .map(|failure| failure.node.clone())
            .collect();
        assert!(
            failed.contains(&owners[0]) && failed.contains(&owners[2]),
            "{failures:?}"
        );
        for failure in &failures {
            assert!(!failure.reason.is_empty());
        }
        let counters = cluster.nodes[0].service.counters();
        assert_eq!(counters.put_quorum_failures(), 1);
        assert_eq!(counters.get_failures(), 0);

        // A block no replica holds: the get fails and is counted as a read failure.
        let (absent, _) = block_avoiding(&cluster, &[&coordinator], "never stored");
        let outcome = cluster.nodes[0].service.get_block(absent).await;
        assert!(
            matches!(outcome, Err(BlockError::NotFound { .. })),
            "{outcome:?}"
        );
        assert_eq!(counters.get_failures(), 1);
        assert_eq!(counters.put_quorum_failures(), 1);

        // With the owners back, the held copies reach them.
        cluster.restart(&owners[0]).await;
        cluster.restart(&owners[2]).await;
        drain_handoffs(&cluster).await;
        let mut expected = owners.clone();
        expected.sort();
        assert_eq!(cluster.holders(hash).await, expected);
    })
    .await;
}
