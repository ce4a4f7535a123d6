//! Adding a node moves little more than the new node's fair share, and `moved_ranges` reports
//! exactly the hashes whose preference list changed.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{layout, node, range_len, SPACE};
use mucura_ring::{hash_key, moved_ranges, Layout, Ring};

/// Allowed movement relative to the ideal 1/(n+1) of the space.
const SLACK: f64 = 1.3;

fn grown(old: &Layout, zone: &str) -> Layout {
    let mut new = old.clone();
    new.version += 1;
    new.nodes
        .push(node("newcomer", zone, old.nodes[0].capacity));
    new
}

/// (fraction of the space whose primary changed, fraction of replica-bytes that must move).
fn movement(old: &Ring, new: &Ring) -> (f64, f64) {
    let mut primary = 0.0;
    let mut replica = 0.0;
    for change in moved_ranges(old, new) {
        let len = range_len(change.start, change.end) / SPACE;
        if change.from.first() != change.to.first() {
            primary += len;
        }
        replica += len * change.gained_by().count() as f64 / change.to.len() as f64;
    }
    (primary, replica)
}

fn assert_minimal_movement(zones: usize) {
    for n in 4..=16 {
        for seed in 0..4 {
            let old = layout(seed, n, zones.min(n), |_| 1_000);
            let new = grown(&old, "zone-0");
            let (primary, replica) = movement(&Ring::new(&old), &Ring::new(&new));
            let ideal = 1.0 / (n as f64 + 1.0);
            assert!(
                primary <= SLACK * ideal,
                "n={n} seed={seed}: primary moved {primary:.4}, ideal {ideal:.4}"
            );
            assert!(
                replica <= SLACK * ideal,
                "n={n} seed={seed}: replicas moved {replica:.4}, ideal {ideal:.4}"
            );
        }
    }
}

#[test]
fn adding_a_node_moves_about_its_fair_share() {
    assert_minimal_movement(usize::MAX);
}

#[test]
fn adding_a_node_moves_about_its_fair_share_with_three_zones() {
    assert_minimal_movement(3);
}

#[test]
fn moved_ranges_match_per_key_lookups() {
    let old = layout(7, 6, 3, |_| 1_000);
    let new = grown(&old, "zone-1");
    let (old_ring, new_ring) = (Ring::new(&old), Ring::new(&new));
    let moves = moved_ranges(&old_ring, &new_ring);
    assert!(!moves.is_empty());
    for pair in moves.windows(2) {
        assert!(
            pair[0].end < pair[1].start,
            "moves are ascending and disjoint"
        );
    }
    for i in 0..20_000u32 {
        let hash = hash_key(&i.to_be_bytes());
        let changed = old_ring.preference_list(hash) != new_ring.preference_list(hash);
        let reported = moves.iter().find(|m| m.start <= hash && hash <= m.end);
        assert_eq!(changed, reported.is_some(), "hash {hash:#x}");
        if let Some(m) = reported {
            assert_eq!(m.from, old_ring.preference_list(hash));
            assert_eq!(m.to, new_ring.preference_list(hash));
        }
    }
}

#[test]
fn identical_rings_move_nothing_and_empty_ring_moves_everything() {
    let layout = layout(1, 5, 5, |_| 1_000);
    let ring = Ring::new(&layout);
    assert!(moved_ranges(&ring, &Ring::new(&layout)).is_empty());

    let empty = Ring::new(&Layout {
        version: 0,
        nodes: vec![],
        replication: 3,
    });
    let everything = moved_ranges(&empty, &ring);
    assert_eq!(everything.first().map(|m| m.start), Some(0));
    assert_eq!(everything.last().map(|m| m.end), Some(u64::MAX));
    let covered: u128 = everything.iter().map(|m| m.len()).sum();
    assert_eq!(covered, 1u128 << 64);
    assert!(everything
        .iter()
        .all(|m| m.from.is_empty() && m.to.len() == 3));
}
