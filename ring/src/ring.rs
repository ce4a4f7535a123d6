//! The token ring and its precomputed preference lists.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

use hashring::HashRing;

use crate::hash;
use crate::layout::{Layout, NodeId, NodeInfo};

/// Virtual nodes given to a node of average capacity; a node's count scales with its capacity
/// (at least one), so a layout of n nodes has about `n × 2048` tokens and as many ranges.
///
/// Why 2048: with random tokens a node's share of the hash space has a relative standard
/// deviation of about `1/sqrt(vnodes)`. Measured over 20 seeds of 8-, 12- and 16-node layouts
/// (`tests/balance.rs`), the worst node's primary share was off its capacity share by 17% at
/// 256 vnodes, 8.8% at 1024 and 6.9% at 2048; with capacities 1:2:3:4 (the smallest node gets
/// only 2/5 of the average count) 32%, 14% and 6.8%. 2048 is the smallest power of two that
/// keeps every node within the 10% target with margin. Adding a node to 4..16 nodes then moves
/// at most 1.04× its ideal 1/(n+1) of primaries and 0.96× of replicas (`tests/movement.rs`).
/// The cost is memory and build time linear in tokens: about 40 bytes per token; in a debug
/// build a 16-node ring (32 768 tokens) builds in ~35 ms and a 100-node ring in ~0.45 s, once
/// per layout version. Changing this number moves data.
pub const VNODES_PER_AVERAGE_NODE: u64 = 2048;

/// A consistent-hash ring built from one [`Layout`], with the preference list of every range
/// computed once. Cheap to query, immutable; build a new one for each layout version.
#[derive(Clone, Debug)]
pub struct Ring {
    version: u64,
    replication: usize,
    /// Member ids sorted by id; `u32` indexes below point into this.
    nodes: Vec<NodeId>,
    /// Distinct sorted tokens. Range `i` holds the hashes in `(tokens[i-1], tokens[i]]`; range 0
    /// wraps around and also holds everything above the last token.
    tokens: Vec<u64>,
    /// The node whose virtual node owns each token.
    token_owner: Vec<u32>,
    /// For each range, an index into `lists` (many ranges share a list).
    range_list: Vec<u32>,
    /// Distinct preference lists.
    lists: Vec<Vec<NodeId>>,
    /// Maps a key hash to the range that owns it (first token clockwise, wrapping).
    lookup: HashRing<RangeToken, TokenAsHash>,
}

/// A token as stored in the `hashring` ring: it hashes to itself, remembering its range.
#[derive(Clone, Debug)]
struct RangeToken {
    token: u64,
    range: u32,
}

impl Hash for RangeToken {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.token);
    }
}

/// Makes `hashring` place a value at the `u64` it hashes to, instead of its SipHash: our
/// tokens and key hashes are already BLAKE3 prefixes that every platform agrees on.
#[derive(Clone, Debug, PartialEq)]
struct TokenAsHash;

impl BuildHasher for TokenAsHash {
    type Hasher = IdentityHasher;

    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher(0)
    }
}

/// Returns the last `u64` written to it.
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached for non-u64 input, which this crate never hashes; stay deterministic.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

impl Ring {
    /// Builds the ring of a layout.
    ///
    /// Meant for layouts that passed [`Layout::validate`]. On others it still builds a
    /// deterministic ring: nodes with capacity 0 get no tokens, a repeated id keeps its first
    /// entry, and preference lists are shorter when there are fewer nodes than replicas.
    pub fn new(layout: &Layout) -> Ring {
        let members = members_sorted_by_id(layout);
        let nodes: Vec<NodeId> = members.iter().map(|node| node.id.clone()).collect();
        let (tokens, token_owner) = place_tokens(&members);
        let zone_of = zone_indexes(&members);
        let zone_count = zone_of.iter().map(|&zone| zone + 1).max().unwrap_or(0) as usize;

        let walk = PreferenceWalk {
            token_owner: &token_owner,
            zone_of: &zone_of,
            zone_count,
            wanted: layout.replication.min(nodes.len()),
        };
        let mut list_index: HashMap<Vec<u32>, u32> = HashMap::new();
        let mut lists = Vec::new();
        let mut range_list = Vec::with_capacity(tokens.len());
        for range in 0..tokens.len() {
            let list = walk.preference_from(range);
            let index = *list_index.entry(list).or_insert_with_key(|list| {
                lists.push(list.iter().map(|&n| nodes[n as usize].clone()).collect());
                (lists.len() - 1) as u32
            });
            range_list.push(index);
        }

        let mut lookup = HashRing::with_hasher(TokenAsHash);
        lookup.batch_add(
            tokens
                .iter()
                .enumerate()
                .map(|(range, &token)| RangeToken {
                    token,
                    range: range as u32,
                })
                .collect(),
        );

        Ring {
            version: layout.version,
            replication: layout.replication,
            nodes,
            tokens,
            token_owner,
            range_list,
            lists,
            lookup,
        }
    }

    /// The ring position of arbitrary bytes (BLAKE3 prefix, big-endian); see [`hash::hash_key`].
    pub fn hash_key(bytes: &[u8]) -> u64 {
        hash::hash_key(bytes)
    }

    /// The ring position of an object's metadata; see [`hash::hash_object_key`].
    pub fn hash_object_key(bucket: &str, key: &str) -> u64 {
        hash::hash_object_key(bucket, key)
    }

    /// The nodes that hold `key_hash`, primary first: N distinct nodes, in as many distinct
    /// zones as the layout has (up to N). Empty only for a ring without nodes.
    pub fn preference_list(&self, key_hash: u64) -> &[NodeId] {
        match self.lookup.get(&key_hash) {
            Some(owner) => self.list_of_range(owner.range as usize),
            None => &[],
        }
    }

    /// The other members in clockwise order after the key's preference list: where a
    /// coordinator sends hinted writes when replicas are down.
    pub fn handoff_candidates(&self, key_hash: u64) -> Vec<NodeId> {
        let Some(owner) = self.lookup.get(&key_hash) else {
            return Vec::new();
        };
        let preferred = self.list_of_range(owner.range as usize);
        let mut seen = vec![false; self.nodes.len()];
        let mut candidates = Vec::new();
        let start = owner.range as usize;
        for step in 0..self.tokens.len() {
            let node = self.token_owner[(start + step) % self.tokens.len()] as usize;
            if !seen[node] && !preferred.contains(&self.nodes[node]) {
                candidates.push(self.nodes[node].clone());
            }
            seen[node] = true;
        }
        candidates
    }

    /// Every range of the hash space with its preference list, in ascending order, as inclusive
    /// bounds `(start, end, list)`. Together they cover `0..=u64::MAX` exactly once; the range
    /// that wraps around zero comes as two pieces (first and last item) with the same list.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64, &[NodeId])> + '_ {
        let inner = (0..self.tokens.len()).map(move |range| {
            let start = if range == 0 {
                0
            } else {
                self.tokens[range - 1] + 1
            };
            (start, self.tokens[range], self.list_of_range(range))
        });
        let wrapped_tail = match self.tokens.last() {
            Some(&last) if last < u64::MAX => Some((last + 1, u64::MAX, self.list_of_range(0))),
            _ => None,
        };
        inner.chain(wrapped_tail)
    }

    /// The layout version this ring was built from.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The layout's replication factor N.
    pub fn replication(&self) -> usize {
        self.replication
    }

    /// Member ids, sorted.
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    /// Number of tokens (virtual nodes after removing collisions).
    pub fn token_count(&self) -> usize {
        self.tokens.len()
    }

    fn list_of_range(&self, range: usize) -> &[NodeId] {
        &self.lists[self.range_list[range] as usize]
    }
}

/// Members that can own data, one entry per id, sorted by id so input order never matters.
fn members_sorted_by_id(layout: &Layout) -> Vec<&NodeInfo> {
    let mut members: Vec<&NodeInfo> = layout
        .nodes
        .iter()
        .filter(|node| node.capacity > 0)
        .collect();
    // Stable sort then dedup keeps the first listed entry of a repeated id.
    members.sort_by(|a, b| a.id.cmp(&b.id));
    members.dedup_by(|later, first| later.id == first.id);
    members
}

/// How many virtual nodes each member gets: proportional to capacity, at least one.
fn vnode_counts(members: &[&NodeInfo]) -> Vec<u32> {
    let total: u128 = members.iter().map(|node| u128::from(node.capacity)).sum();
    let all_vnodes = u128::from(VNODES_PER_AVERAGE_NODE) * members.len() as u128;
    members
        .iter()
        .map(|node| {
            let share = (all_vnodes * u128::from(node.capacity) + total / 2) / total.max(1);
            u32::try_from(share).unwrap_or(u32::MAX).max(1)
        })
        .collect()
}

/// All tokens sorted, with their owner's index. On the (astronomically rare) collision of two
/// tokens the node with the smaller id keeps it, so every process agrees.
fn place_tokens(members: &[&NodeInfo]) -> (Vec<u64>, Vec<u32>) {
    let mut vnodes: Vec<(u64, u32)> = Vec::new();
    for (index, (node, count)) in members.iter().zip(vnode_counts(members)).enumerate() {
        for vnode in 0..count {
            vnodes.push((hash::vnode_token(node.id.as_str(), vnode), index as u32));
        }
    }
    vnodes.sort_unstable();
    vnodes.dedup_by_key(|(token, _)| *token);
    vnodes.into_iter().unzip()
}

/// Each member's zone as a small integer, numbered in order of first appearance by id.
fn zone_indexes(members: &[&NodeInfo]) -> Vec<u32> {
    let mut numbers: HashMap<&str, u32> = HashMap::new();
    members
        .iter()
        .map(|node| {
            let next = numbers.len() as u32;
            *numbers.entry(node.zone.as_str()).or_insert(next)
        })
        .collect()
}

/// Computes the preference list that starts at one range.
struct PreferenceWalk<'a> {
    token_owner: &'a [u32],
    zone_of: &'a [u32],
    zone_count: usize,
    /// N, capped at the number of members.
    wanted: usize,
}

impl PreferenceWalk<'_> {
    /// Walks clockwise from `start`: first takes one node from each zone not yet used, then,
    /// only if the zones run out before N, fills up with further distinct nodes in ring order.
    fn preference_from(&self, start: usize) -> Vec<u32> {
        let len = self.token_owner.len();
        let clockwise = || (0..len).map(|step| self.token_owner[(start + step) % len]);
        let mut chosen = Vec::with_capacity(self.wanted);
        let zones_wanted = self.wanted.min(self.zone_count);
        let mut zone_used = vec![false; self.zone_count];
        for node in clockwise() {
            if chosen.len() == zones_wanted {
                break;
            }
            let zone = self.zone_of[node as usize] as usize;
            if !zone_used[zone] {
                zone_used[zone] = true;
                chosen.push(node);
            }
        }
        for node in clockwise() {
            if chosen.len() == self.wanted {
                break;
            }
            if !chosen.contains(&node) {
                chosen.push(node);
            }
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, capacity: u64) -> NodeInfo {
        NodeInfo {
            id: NodeId::from(id),
            rpc_addr: String::new(),
            zone: String::new(),
            capacity,
        }
    }

    #[test]
    fn vnodes_follow_capacity_and_never_drop_to_zero() {
        let (a, b, tiny) = (member("a", 3 << 40), member("b", 1 << 40), member("t", 1));
        let counts = vnode_counts(&[&a, &b, &tiny]);
        assert_eq!(counts[0], 3 * counts[1]);
        assert_eq!(counts[2], 1);
    }

    #[test]
    fn hashring_places_key_hashes_at_themselves() {
        let mut lookup = HashRing::with_hasher(TokenAsHash);
        lookup.batch_add(vec![
            RangeToken {
                token: 10,
                range: 0,
            },
            RangeToken {
                token: 20,
                range: 1,
            },
        ]);
        let range_of = |hash: u64| lookup.get(&hash).map(|owner| owner.range);
        assert_eq!(range_of(5), Some(0));
        assert_eq!(range_of(10), Some(0));
        assert_eq!(range_of(11), Some(1));
        assert_eq!(range_of(21), Some(0), "wraps around");
    }
}
