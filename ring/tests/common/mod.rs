//! Layout builders and measurements shared by the ring's property tests.
#![allow(dead_code)] // each test binary uses a different subset
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::HashMap;

use mucura_ring::{Layout, NodeId, NodeInfo, Ring};

/// The whole hash space, 2^64 hashes.
pub const SPACE: f64 = 18_446_744_073_709_551_616.0;

/// Seeds per property: each gives a different set of node names, hence different tokens.
pub const SEEDS: u64 = 20;

pub fn node(id: &str, zone: &str, capacity: u64) -> NodeInfo {
    NodeInfo {
        id: NodeId::from(id),
        rpc_addr: format!("10.0.0.1:{}", 7000 + id.len()),
        zone: zone.to_owned(),
        capacity,
    }
}

/// `count` nodes named after `seed`, spread round-robin over `zones` zones.
pub fn layout(seed: u64, count: usize, zones: usize, capacity_of: impl Fn(usize) -> u64) -> Layout {
    let nodes = (0..count)
        .map(|i| {
            node(
                &format!("s{seed}-node-{i}"),
                &format!("zone-{}", i % zones),
                capacity_of(i),
            )
        })
        .collect();
    Layout::new(1, nodes, 3).unwrap()
}

pub fn range_len(start: u64, end: u64) -> f64 {
    (u128::from(end - start) + 1) as f64
}

/// Fraction of the hash space each node holds as primary.
pub fn primary_shares(ring: &Ring) -> HashMap<NodeId, f64> {
    let mut shares = HashMap::new();
    for (start, end, list) in ring.ranges() {
        *shares.entry(list[0].clone()).or_insert(0.0) += range_len(start, end) / SPACE;
    }
    shares
}

/// Fraction of all replica-bytes each node holds (each range counts once per replica).
pub fn replica_shares(ring: &Ring) -> HashMap<NodeId, f64> {
    let mut shares = HashMap::new();
    for (start, end, list) in ring.ranges() {
        for node in list {
            *shares.entry(node.clone()).or_insert(0.0) +=
                range_len(start, end) / (SPACE * list.len() as f64);
        }
    }
    shares
}

/// Largest |share / ideal − 1| over the layout's nodes, ideal = capacity / total capacity.
pub fn worst_deviation(layout: &Layout, shares: &HashMap<NodeId, f64>) -> f64 {
    let total: u64 = layout.nodes.iter().map(|n| n.capacity).sum();
    layout
        .nodes
        .iter()
        .map(|n| {
            let ideal = n.capacity as f64 / total as f64;
            (shares.get(&n.id).copied().unwrap_or(0.0) / ideal - 1.0).abs()
        })
        .fold(0.0, f64::max)
}
