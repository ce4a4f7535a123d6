//! Each node's share of the hash space follows its capacity share within 10%.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{layout, primary_shares, replica_shares, worst_deviation, SEEDS};
use mucura_ring::Ring;

const TOLERANCE: f64 = 0.10;

#[test]
fn equal_capacities_share_the_space_evenly() {
    for count in [8, 12, 16] {
        for seed in 0..SEEDS {
            let layout = layout(seed, count, count, |_| 1_000);
            let ring = Ring::new(&layout);
            let primary = worst_deviation(&layout, &primary_shares(&ring));
            let replica = worst_deviation(&layout, &replica_shares(&ring));
            assert!(
                primary <= TOLERANCE,
                "{count} nodes, seed {seed}: primary off by {primary:.3}"
            );
            assert!(
                replica <= TOLERANCE,
                "{count} nodes, seed {seed}: replica off by {replica:.3}"
            );
        }
    }
}

#[test]
fn equal_capacities_in_three_zones_share_replicas_evenly() {
    for seed in 0..SEEDS {
        let layout = layout(seed, 9, 3, |_| 1_000);
        let ring = Ring::new(&layout);
        let replica = worst_deviation(&layout, &replica_shares(&ring));
        assert!(
            replica <= TOLERANCE,
            "seed {seed}: replica off by {replica:.3}"
        );
    }
}

#[test]
fn unequal_capacities_get_proportional_primary_shares() {
    // Capacities 1, 2, 3, 4 TB repeated: the largest node should own four times the smallest.
    for seed in 0..SEEDS {
        let layout = layout(seed, 8, 8, |i| (i as u64 % 4 + 1) << 40);
        let ring = Ring::new(&layout);
        let primary = worst_deviation(&layout, &primary_shares(&ring));
        assert!(
            primary <= TOLERANCE,
            "seed {seed}: primary off by {primary:.3}"
        );
    }
}
