//! Bounded work per round, and the scheduled worker.

use super::*;
use crate::cluster::AntiEntropyWorker;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_replica_is_rebuilt_a_bounded_number_of_leaves_per_round() {
    bounded(async {
        let budget = 8;
        let config = AntiEntropyConfig {
            max_leaves_per_group: budget,
            ..AntiEntropyConfig::default()
        };
        let cluster = AeCluster::start_with(5, config).await;
        let expected = cluster.write_all(300).await;
        let wiped = &cluster.nodes[0];
        let mut lost = 0;
        for key in expected.keys() {
            if cluster.owners(key).contains(&wiped.id) {
                wiped.forget(key);
                lost += 1;
            }
        }
        assert_eq!(cluster.mismatches(&expected), lost);

        let first = wiped.engine.run_round().await;
        assert!(first.errors.is_empty(), "{:?}", first.errors);
        assert!(first.groups_truncated > 0, "{first:?}");
        assert!(first.entries_received > 0);
        // 300 keys over 4096 leaves: a leaf rarely holds more than two keys of one group.
        assert!(
            first.entries_received <= wiped.group_count() * budget * 3,
            "{first:?}"
        );
        assert_eq!(
            first.entries_sent, 0,
            "the wiped replica has nothing to give"
        );
        assert!(cluster.mismatches(&expected) > 0, "one round did it all");

        let mut rounds = 1;
        while cluster.mismatches(&expected) > 0 {
            assert!(rounds < 100, "the wiped replica never caught up");
            let report = wiped.engine.run_round().await;
            assert!(report.errors.is_empty(), "{:?}", report.errors);
            rounds += 1;
        }
        let status = wiped.engine.status();
        assert_eq!(status.rounds, rounds);
        assert_eq!(status.entries_repaired_total, lost as u64);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_runs_rounds_on_its_schedule_and_on_demand() {
    bounded(async {
        let cluster = AeCluster::start(3).await;
        let expected = cluster.write_all(20).await;
        let victim = &cluster.nodes[1];
        for key in expected.keys() {
            victim.forget(key);
        }
        let scheduled = AntiEntropyWorker::spawn(Arc::clone(&victim.engine));
        // The default interval (10 minutes) is far beyond this test: only an on-demand
        // round can repair now.
        assert_eq!(scheduled.status().rounds, 0);
        let report = scheduled.run_round_now().await;
        assert_eq!(report.entries_received, expected.len());
        assert_eq!(cluster.mismatches(&expected), 0);
        drop(scheduled);

        let quick = Arc::clone(&cluster.nodes[2].engine);
        let config_interval = quick.config().interval;
        assert_eq!(config_interval, Duration::from_secs(600));
        let fast = AntiEntropy::new(
            Arc::clone(&quick.system),
            Arc::clone(&quick.transport),
            AntiEntropyConfig {
                interval: Duration::from_millis(50),
                ..AntiEntropyConfig::default()
            },
        );
        fast.register::<Notes>(Replication::DEFAULT_SHARDED);
        let worker = AntiEntropyWorker::spawn(Arc::clone(&fast));
        let deadline = tokio::time::Instant::now() + SETTLE_BOUND;
        while worker.status().rounds < 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no scheduled rounds"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let last = worker.status().last_round.unwrap();
        assert!(last.errors.is_empty(), "{:?}", last.errors);
        assert_eq!(last.groups_in_sync, last.groups_compared);
    })
    .await;
}
