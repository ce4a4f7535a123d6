//! Owners down: hinted handoff, replay, quorum failures, full-copy tables.

use super::*;
use crate::cluster::{replay_hints, HintReplayWorker, Operation, TableError};
use crate::store::codec;

note_table!(
    /// A full-copy table over the same entry type.
    Settings,
    "settings"
);

/// Runs a replay pass on every node until no hint is left anywhere.
async fn drain_hints(cluster: &TestCluster) {
    let deadline = tokio::time::Instant::now() + SETTLE_BOUND;
    while !cluster.hints().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "hints never drained"
        );
        for node in &cluster.nodes {
            replay_hints(&node.system).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_owner_receives_its_hinted_writes_when_it_returns() {
    bounded(async {
        let mut cluster = TestCluster::start(5, QuorumPolicy::Sloppy).await;
        let key = "handoff";
        let owners = cluster.owners(key);
        let victim = owners[1].clone();
        cluster.stop(&victim).await;

        let (v1, v2) = (note(key, "v1"), note(key, "v2"));
        let coordinator = cluster.outsider(key);
        coordinator.sharded.insert(&v1).await.unwrap();
        coordinator.sharded.insert(&v2).await.unwrap();

        // Both writes end in one hint (merged), on a node outside the preference list.
        eventually("the hint holds the newest write", || {
            let holders: Vec<_> = cluster
                .nodes
                .iter()
                .flat_map(|node| node.system.pending_hints().unwrap())
                .collect();
            holders.len() == 1 && codec::decode::<Note>(&holders[0].entry).unwrap() == v2
        })
        .await;
        let (holder, owner) = cluster.hints().remove(0);
        assert_eq!(owner, victim);
        assert!(!owners.contains(&holder), "{holder} is an owner");
        assert_eq!(
            cluster.node(&victim).sharded.local_get(&v2.key).unwrap(),
            None
        );

        let workers: Vec<HintReplayWorker> = cluster
            .nodes
            .iter()
            .map(|node| {
                HintReplayWorker::spawn(Arc::clone(&node.system), Duration::from_millis(100))
            })
            .collect();
        let holder_index = cluster.nodes.iter().position(|n| n.id == holder).unwrap();
        let holder_worker = &workers[holder_index];
        eventually("replay failed while the owner is down", || {
            holder_worker.status().last_report.failed == 1
        })
        .await;
        assert_eq!(cluster.hints().len(), 1, "a failed delivery keeps the hint");
        assert_eq!(
            cluster.node(&holder).system.counters().hints_delivered(),
            0,
            "a failed delivery is not counted"
        );

        cluster.restart(&victim).await;
        let victim_table = cluster.node(&victim).sharded.clone();
        eventually("the owner holds the write and the hint is gone", || {
            victim_table.local_get(&v2.key).unwrap() == Some(v2.clone())
                && cluster.hints().is_empty()
        })
        .await;
        assert_eq!(holder_worker.status().delivered_total, 1);
        // The node's running total (what status and metrics show) saw the same delivery.
        for node in &cluster.nodes {
            let expected = u64::from(node.id == holder);
            assert_eq!(
                node.system.counters().hints_delivered(),
                expected,
                "{}",
                node.id
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_owners_down_fail_a_strict_quorum_with_each_owners_error() {
    bounded(async {
        let mut cluster = TestCluster::start(5, QuorumPolicy::Strict).await;
        let key = "strict";
        let owners = cluster.owners(key);
        cluster.stop(&owners[1]).await;
        cluster.stop(&owners[2]).await;
        let coordinator = cluster.outsider(key);

        let err = coordinator
            .sharded
            .insert(&note(key, "v"))
            .await
            .unwrap_err();
        let TableError::Quorum(quorum) = &err else {
            panic!("expected a quorum error, got {err}");
        };
        assert_eq!(quorum.operation, Operation::Write);
        assert_eq!((quorum.needed, quorum.succeeded, quorum.hinted), (2, 1, 2));
        let mut failed: Vec<_> = quorum.failures.iter().map(|f| f.node.clone()).collect();
        failed.sort();
        assert_eq!(failed, vec![owners[1].clone(), owners[2].clone()]);
        for failure in &quorum.failures {
            assert!(
                failure.reason.contains("cannot connect"),
                "{}",
                failure.reason
            );
            assert!(failure.reason.contains("hinted to"), "{}", failure.reason);
        }
        let message = err.to_string();
        assert!(message.contains(owners[1].as_str()) && message.contains(owners[2].as_str()));
        let counters = coordinator.system.counters();
        assert_eq!(counters.quorum_failures(Operation::Write), 1);
        assert_eq!(counters.quorum_failures(Operation::Read), 0);

        let err = coordinator.sharded.get(&key.to_owned()).await.unwrap_err();
        let TableError::Quorum(quorum) = &err else {
            panic!("expected a quorum error, got {err}");
        };
        assert_eq!(quorum.operation, Operation::Read);
        assert_eq!((quorum.needed, quorum.succeeded), (2, 1));
        assert_eq!(quorum.failures.len(), 2);
        assert_eq!(counters.quorum_failures(Operation::Read), 1);
        assert_eq!(counters.quorum_failures(Operation::Write), 1);
        // Only the coordinator counts: the owner that answered saw no failure of its own.
        let owner = cluster.node(&owners[0]).system.counters();
        assert_eq!(owner.quorum_failures(Operation::Write), 0);
        assert_eq!(owner.quorum_failures(Operation::Read), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_owners_down_a_sloppy_quorum_writes_through_hints() {
    bounded(async {
        let mut cluster = TestCluster::start(5, QuorumPolicy::Sloppy).await;
        let key = "sloppy";
        let owners = cluster.owners(key);
        cluster.stop(&owners[0]).await;
        cluster.stop(&owners[2]).await;
        let entry = note(key, "v");
        cluster
            .node(&owners[1])
            .sharded
            .insert(&entry)
            .await
            .unwrap();

        eventually("one hint per down owner, on distinct holders", || {
            let hints = cluster.hints();
            hints.len() == 2 && hints[0].0 != hints[1].0
        })
        .await;
        let mut hinted_owners: Vec<_> = cluster.hints().into_iter().map(|h| h.1).collect();
        hinted_owners.sort();
        assert_eq!(hinted_owners, vec![owners[0].clone(), owners[2].clone()]);

        cluster.restart(&owners[0]).await;
        cluster.restart(&owners[2]).await;
        drain_hints(&cluster).await;
        for owner in &owners {
            let local = cluster.node(owner).sharded.local_get(&entry.key).unwrap();
            assert_eq!(local, Some(entry.clone()), "owner {owner}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_copy_writes_need_a_majority_and_reach_every_node() {
    bounded(async {
        let mut cluster = TestCluster::start(5, QuorumPolicy::Sloppy).await;
        let tables: Vec<Table<Settings>> = cluster
            .nodes
            .iter()
            .map(|node| Table::new(Arc::clone(&node.system), Replication::FullCopy).unwrap())
            .collect();
        let ids: Vec<NodeId> = cluster.nodes.iter().map(|node| node.id.clone()).collect();
        cluster.stop(&ids[3]).await;
        cluster.stop(&ids[4]).await;

        let entry = note("quota", "10GiB");
        tables[0].insert(&entry).await.unwrap();
        assert_eq!(
            tables[1].get(&entry.key).await.unwrap(),
            Some(entry.clone())
        );
        eventually("the coordinator holds a hint for each down node", || {
            cluster.hints().len() == 2
                && cluster.hints().iter().all(|(holder, _)| holder == &ids[0])
        })
        .await;

        cluster.stop(&ids[2]).await;
        let err = tables[0].insert(&note("other", "x")).await.unwrap_err();
        match err {
            TableError::Quorum(quorum) => assert_eq!((quorum.needed, quorum.succeeded), (3, 2)),
            other => panic!("expected a quorum error, got {other}"),
        }

        for id in &ids[2..] {
            cluster.restart(id).await;
        }
        drain_hints(&cluster).await;
        for table in &tables {
            assert_eq!(table.local_get(&entry.key).unwrap(), Some(entry.clone()));
        }
    })
    .await;
}
