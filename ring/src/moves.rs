//! What changes hands between two layouts.

use crate::layout::NodeId;
use crate::ring::Ring;

/// A sub-range of the hash space (inclusive bounds) whose preference list differs between two
/// rings. The rebalancer streams the keys in `start..=end` from `from` to the nodes of `to`
/// that lack them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeMove {
    /// First hash of the sub-range.
    pub start: u64,
    /// Last hash of the sub-range (inclusive).
    pub end: u64,
    /// Preference list under the old ring.
    pub from: Vec<NodeId>,
    /// Preference list under the new ring.
    pub to: Vec<NodeId>,
}

impl RangeMove {
    /// Number of hashes in the sub-range (up to 2^64, hence `u128`).
    pub fn len(&self) -> u128 {
        u128::from(self.end - self.start) + 1
    }

    /// Always false: a move covers at least one hash. Present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Nodes of the new list that were not in the old one: they must fetch this sub-range.
    pub fn gained_by(&self) -> impl Iterator<Item = &NodeId> {
        self.to.iter().filter(|node| !self.from.contains(node))
    }
}

/// The sub-ranges whose preference list differs between `old` and `new`, ascending, with
/// adjacent sub-ranges of identical (from, to) merged. A change of order alone (a new primary
/// among the same nodes) counts as a change, since the primary coordinates writes.
pub fn moved_ranges(old: &Ring, new: &Ring) -> Vec<RangeMove> {
    // The ends of both rings' ranges cut the space into pieces that each lie inside one range
    // of either ring, so one lookup per piece (at its end) gives both lists.
    let mut ends: Vec<u64> = old.ranges().chain(new.ranges()).map(|r| r.1).collect();
    ends.push(u64::MAX); // covers the whole space even when a ring is empty
    ends.sort_unstable();
    ends.dedup();

    let mut moves: Vec<RangeMove> = Vec::new();
    let mut start = 0u64;
    for end in ends {
        let from = old.preference_list(end);
        let to = new.preference_list(end);
        if from != to {
            match moves.last_mut() {
                Some(last)
                    if last.end.wrapping_add(1) == start && last.from == from && last.to == to =>
                {
                    last.end = end;
                }
                _ => moves.push(RangeMove {
                    start,
                    end,
                    from: from.to_vec(),
                    to: to.to_vec(),
                }),
            }
        }
        start = end.wrapping_add(1);
    }
    moves
}
