//! Preference lists: distinct nodes and zones, independence from input order, and placement
//! pinned across versions.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::collections::HashSet;

use common::{layout, node};
use mucura_ring::{hash_key, hash_object_key, Layout, NodeId, Ring};

fn zone_of<'a>(layout: &'a Layout, id: &NodeId) -> &'a str {
    &layout.node(id).unwrap().zone
}

#[test]
fn every_list_spans_n_distinct_zones_when_there_are_enough() {
    for (count, zones) in [(3, 3), (6, 3), (9, 4), (12, 5)] {
        for seed in 0..5 {
            let layout = layout(seed, count, zones, |i| 1_000 + i as u64 * 300);
            let ring = Ring::new(&layout);
            for (start, _, list) in ring.ranges() {
                let distinct: HashSet<&str> = list.iter().map(|id| zone_of(&layout, id)).collect();
                assert_eq!(
                    distinct.len(),
                    3,
                    "{count} nodes in {zones} zones, range at {start:#x}"
                );
            }
        }
    }
}

#[test]
fn with_fewer_zones_than_replicas_lists_use_every_zone_and_distinct_nodes() {
    for seed in 0..5 {
        let layout = layout(seed, 6, 2, |_| 1_000);
        let ring = Ring::new(&layout);
        for (_, _, list) in ring.ranges() {
            let nodes: HashSet<&NodeId> = list.iter().collect();
            let zones: HashSet<&str> = list.iter().map(|id| zone_of(&layout, id)).collect();
            assert_eq!((list.len(), nodes.len(), zones.len()), (3, 3, 2));
            // Zones first: the two leading replicas sit in different zones.
            assert_ne!(zone_of(&layout, &list[0]), zone_of(&layout, &list[1]));
        }
    }
}

#[test]
fn ranges_cover_the_space_and_agree_with_lookups() {
    let ring = Ring::new(&layout(3, 5, 5, |_| 1_000));
    let ranges: Vec<_> = ring.ranges().collect();
    assert_eq!(ranges.first().unwrap().0, 0);
    assert_eq!(ranges.last().unwrap().1, u64::MAX);
    for pair in ranges.windows(2) {
        assert_eq!(pair[0].1 + 1, pair[1].0, "ranges are contiguous");
    }
    for (start, end, list) in ranges.iter().step_by(97) {
        assert_eq!(ring.preference_list(*start), *list);
        assert_eq!(ring.preference_list(*end), *list);
    }
}

#[test]
fn same_layout_in_any_order_gives_the_same_ring() {
    for seed in 0..5 {
        let forward = layout(seed, 10, 4, |i| 500 + i as u64 * 100);
        let mut reversed = forward.clone();
        reversed.nodes.reverse();
        let mut rotated = forward.clone();
        rotated.nodes.rotate_left(3);
        let expected: Vec<_> = Ring::new(&forward)
            .ranges()
            .map(|(s, e, l)| (s, e, l.to_vec()))
            .collect();
        for other in [&forward, &reversed, &rotated] {
            let got: Vec<_> = Ring::new(other)
                .ranges()
                .map(|(s, e, l)| (s, e, l.to_vec()))
                .collect();
            assert!(got == expected, "seed {seed}: ring depends on node order");
        }
    }
}

#[test]
fn handoff_candidates_are_the_remaining_nodes() {
    let ring = Ring::new(&layout(2, 6, 3, |_| 1_000));
    let hash = hash_key(b"some block");
    let preferred = ring.preference_list(hash);
    let candidates = ring.handoff_candidates(hash);
    assert_eq!(candidates.len(), 3);
    assert!(candidates.iter().all(|c| !preferred.contains(c)));
}

#[test]
fn empty_ring_places_nothing() {
    let ring = Ring::new(&Layout {
        version: 0,
        nodes: vec![],
        replication: 3,
    });
    assert!(ring.preference_list(42).is_empty());
    assert!(ring.handoff_candidates(42).is_empty());
    assert_eq!(ring.ranges().count(), 0);
}

/// Placement must never change silently: a different hash, token derivation or walk would
/// strand every stored object. If this fails on purpose, the change needs a migration.
#[test]
fn pinned_placement() {
    let layout = Layout::new(
        7,
        vec![
            node("node-a", "rack-1", 4_000),
            node("node-b", "rack-1", 4_000),
            node("node-c", "rack-2", 2_000),
            node("node-d", "rack-3", 8_000),
            node("node-e", "rack-2", 4_000),
        ],
        3,
    )
    .unwrap();
    let ring = Ring::new(&layout);
    assert_eq!(
        ring.token_count(),
        10_241,
        "vnodes proportional to capacity"
    );
    let first_tokens: Vec<u64> = ring.ranges().take(2).map(|(_, end, _)| end).collect();
    assert_eq!(first_tokens, [0x6d76_3375_887f, 0x1_0d27_5858_b0d1]);

    let expected: [(u64, [&str; 3]); 5] = [
        (
            hash_object_key("photos", "cat.jpg"),
            ["node-b", "node-e", "node-d"],
        ),
        (
            hash_object_key("photos", "dog.jpg"),
            ["node-d", "node-b", "node-c"],
        ),
        (
            hash_object_key("logs", "2026/11/01.gz"),
            ["node-b", "node-e", "node-d"],
        ),
        (hash_key(b"block-0001"), ["node-d", "node-b", "node-e"]),
        (hash_key(b"block-0002"), ["node-e", "node-d", "node-a"]),
    ];
    let hashes: Vec<u64> = expected.iter().map(|(hash, _)| *hash).collect();
    assert_eq!(
        hashes,
        [
            0x94fc_df5c_37f5_20ec,
            0x38b5_7f55_3049_c874,
            0x60e9_b716_1c84_0095,
            0xe593_dfb7_612e_ead6,
            0xe9c8_4d84_0e0d_8720
        ]
    );
    for (hash, list) in expected {
        let got: Vec<&str> = ring
            .preference_list(hash)
            .iter()
            .map(NodeId::as_str)
            .collect();
        assert_eq!(got, list, "hash {hash:#x}");
    }
}
