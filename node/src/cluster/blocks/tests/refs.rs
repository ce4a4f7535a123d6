//! The block-reference table and block GC.

use super::*;
use crate::cluster::blocks::BlockRefs;
use crate::cluster::crdt::tests::TestRng;
use crate::cluster::{Crdt, Lww, Stamp};

fn version(index: usize) -> String {
    format!("bucket/key#v{index}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_added_and_removed_through_different_nodes_decide_gc_on_the_owners() {
    bounded(async {
        let cluster = BlockCluster::start(5, QuorumPolicy::Sloppy).await;
        let (hash, data) = block_avoiding(&cluster, &[], "gc");
        cluster.nodes[0]
            .service
            .put_block(hash, data.clone())
            .await
            .unwrap();
        eventually("all owners hold the block", || async {
            cluster.holders(hash).await.len() == 3
        })
        .await;
        let owners = cluster.owners(&hash);
        assert_eq!(
            cluster.node(&owners[0]).refs.table().replicas_of(&hash),
            owners,
            "references live on the block's owners"
        );

        cluster.nodes[1]
            .refs
            .add_refs(hash, &[version(1), version(2)])
            .await
            .unwrap();
        cluster.nodes[2]
            .refs
            .remove_refs(hash, &[version(1)])
            .await
            .unwrap();
        let entry = cluster.nodes[3].refs.get(&hash).await.unwrap().unwrap();
        assert!(entry.is_referenced());
        assert!(entry.refs[&version(1)].is_tombstone());

        // Still referenced: no owner deletes it, even without grace.
        for owner in &owners {
            let node = cluster.node(owner);
            let report = node
                .service
                .collect_garbage(&node.refs, Duration::ZERO)
                .await
                .unwrap();
            assert_eq!((report.referenced, report.removed), (1, 0), "{report:?}");
        }

        cluster.nodes[4]
            .refs
            .remove_refs(hash, &[version(2)])
            .await
            .unwrap();
        let entry = cluster.nodes[0].refs.get(&hash).await.unwrap().unwrap();
        assert!(!entry.is_referenced());
        // Inside the grace period the block stays.
        let owner = cluster.node(&owners[0]);
        let report = owner
            .service
            .collect_garbage(&owner.refs, Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!((report.in_grace, report.removed), (1, 0), "{report:?}");
        for owner in &owners {
            let node = cluster.node(owner);
            let report = node
                .service
                .collect_garbage(&node.refs, Duration::ZERO)
                .await
                .unwrap();
            assert_eq!(report.removed, 1, "{report:?}");
        }
        assert!(cluster.holders(hash).await.is_empty());
    })
    .await;
}

fn arbitrary_refs(rng: &mut TestRng) -> BlockRefs {
    let mut refs = std::collections::BTreeMap::new();
    for _ in 0..rng.below(4) {
        let hlc = rng.below(5);
        let node = rng.below(2);
        let name = version(rng.below(3) as usize);
        // The stamp's uuid is a function of (name, hlc, node): equal stamps mean equal
        // versions, as the register requires.
        let mut uuid = [0u8; 16];
        uuid[0] = name.len() as u8;
        uuid[1] = name.as_bytes()[name.len() - 1];
        let stamp = Stamp { hlc, node, uuid };
        let register = if (hlc + node).is_multiple_of(2) {
            Lww::new(stamp, ())
        } else {
            Lww::tombstone(stamp)
        };
        refs.insert(name, register);
    }
    BlockRefs {
        hash: [7; 32],
        refs,
    }
}

#[test]
fn reference_merge_obeys_the_crdt_laws() {
    let mut rng = TestRng::new(11);
    let merged = |a: &BlockRefs, b: &BlockRefs| {
        let mut out = a.clone();
        out.merge(b);
        out
    };
    for case in 0..2_000 {
        let a = arbitrary_refs(&mut rng);
        let b = arbitrary_refs(&mut rng);
        let c = arbitrary_refs(&mut rng);
        assert_eq!(merged(&a, &b), merged(&b, &a), "case {case}");
        assert_eq!(
            merged(&merged(&a, &b), &c),
            merged(&a, &merged(&b, &c)),
            "case {case}"
        );
        assert_eq!(merged(&a, &a), a, "case {case}");
    }
}
