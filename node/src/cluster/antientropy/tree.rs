//! The Merkle tree one replica builds over the entries it holds in one replica group.
//!
//! Positions come from BLAKE3 of the encoded key, not from the ring hash: keys of one group
//! sit in a few thousand scattered ring ranges, but their BLAKE3 prefixes spread evenly, so
//! two replicas' trees have the same shape without exchanging a single key.
//!
//! The tree is 16-ary and [`DEPTH`] levels deep below the root: a leaf is a 12-bit prefix of
//! the key hash. A leaf's hash covers the (key, entry hash) items under it through an
//! order-independent accumulator (count and XOR of item hashes), so the tree builds in one
//! pass over the store with 40 bytes per non-empty leaf, whatever the scan order. XOR is
//! safe here because keys are unique: an item can never cancel itself out.

use std::collections::HashMap;

/// A node's hash in the tree; [`EMPTY`] for a subtree without entries.
pub type NodeHash = [u8; 32];

/// The hash of an empty subtree.
pub const EMPTY: NodeHash = [0; 32];

/// Children per inner node (one hash nibble per level).
pub const FANOUT: usize = 16;

/// Levels below the root. 16³ = 4096 leaves: a group of a million entries has about 250 per
/// leaf, so one differing entry costs one leaf's exchange; deeper trees cost 16× the
/// comparison messages per level for groups that small clusters never fill.
pub const DEPTH: u8 = 3;

/// Number of leaves.
pub const LEAF_COUNT: u32 = 1 << (4 * DEPTH as u32);

/// The leaf that holds `encoded_key`.
pub fn leaf_of(encoded_key: &[u8]) -> u32 {
    let hash = blake3::hash(encoded_key);
    let prefix = u32::from_be_bytes([
        hash.as_bytes()[0],
        hash.as_bytes()[1],
        hash.as_bytes()[2],
        hash.as_bytes()[3],
    ]);
    prefix >> (32 - 4 * DEPTH as u32)
}

/// The hash of an encoded entry, as compared between replicas.
pub fn entry_hash(encoded_entry: &[u8]) -> NodeHash {
    *blake3::hash(encoded_entry).as_bytes()
}

/// The number of nodes at `level` (0 is the root, [`DEPTH`] the leaves).
pub fn nodes_at(level: u8) -> u32 {
    1 << (4 * level as u32)
}

/// Collects items, then [`TreeBuilder::finish`]es into a [`MerkleTree`].
#[derive(Default)]
pub struct TreeBuilder {
    leaves: HashMap<u32, LeafAccumulator>,
}

#[derive(Default)]
struct LeafAccumulator {
    count: u64,
    xor: NodeHash,
}

impl TreeBuilder {
    /// An empty builder.
    pub fn new() -> TreeBuilder {
        TreeBuilder::default()
    }

    /// Adds one entry (its encoded key and [`entry_hash`]).
    pub fn add(&mut self, encoded_key: &[u8], entry_hash: &NodeHash) {
        let mut item = blake3::Hasher::new();
        item.update(&(encoded_key.len() as u64).to_be_bytes());
        item.update(encoded_key);
        item.update(entry_hash);
        let item = item.finalize();
        let leaf = self.leaves.entry(leaf_of(encoded_key)).or_default();
        leaf.count += 1;
        for (acc, byte) in leaf.xor.iter_mut().zip(item.as_bytes()) {
            *acc ^= byte;
        }
    }

    /// The tree over everything added.
    pub fn finish(self) -> MerkleTree {
        let mut levels: Vec<HashMap<u32, NodeHash>> = vec![HashMap::new(); DEPTH as usize + 1];
        let leaves = &mut levels[DEPTH as usize];
        for (index, acc) in self.leaves {
            let mut hasher = blake3::Hasher::new();
            hasher.update(&acc.count.to_be_bytes());
            hasher.update(&acc.xor);
            leaves.insert(index, *hasher.finalize().as_bytes());
        }
        for level in (0..DEPTH as usize).rev() {
            let parents: Vec<u32> = {
                let mut parents: Vec<u32> = levels[level + 1]
                    .keys()
                    .map(|child| child / FANOUT as u32)
                    .collect();
                parents.sort_unstable();
                parents.dedup();
                parents
            };
            for parent in parents {
                let children = children_of(&levels[level + 1], parent);
                let mut hasher = blake3::Hasher::new();
                for child in &children {
                    hasher.update(child);
                }
                levels[level].insert(parent, *hasher.finalize().as_bytes());
            }
        }
        MerkleTree { levels }
    }
}

/// A finished tree; sparse (only non-empty subtrees are stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    /// `levels[0]` holds the root, `levels[DEPTH]` the leaves, keyed by position in level.
    levels: Vec<HashMap<u32, NodeHash>>,
}

impl MerkleTree {
    /// The root hash ([`EMPTY`] for a tree without entries).
    pub fn root(&self) -> NodeHash {
        self.node(0, 0)
    }

    /// The hash of node `index` at `level` ([`EMPTY`] when out of range or empty).
    pub fn node(&self, level: u8, index: u32) -> NodeHash {
        self.levels
            .get(level as usize)
            .and_then(|nodes| nodes.get(&index))
            .copied()
            .unwrap_or(EMPTY)
    }

    /// The [`FANOUT`] child hashes of inner node `index` at `level` (< [`DEPTH`]); child `i`
    /// is node `index * 16 + i` of the next level.
    pub fn children(&self, level: u8, index: u32) -> Vec<NodeHash> {
        match self.levels.get(level as usize + 1) {
            Some(next) if level < DEPTH => children_of(next, index).to_vec(),
            _ => vec![EMPTY; FANOUT],
        }
    }
}

fn children_of(level: &HashMap<u32, NodeHash>, parent: u32) -> [NodeHash; FANOUT] {
    let mut children = [EMPTY; FANOUT];
    for (offset, child) in children.iter_mut().enumerate() {
        if let Some(hash) = level.get(&(parent * FANOUT as u32 + offset as u32)) {
            *child = *hash;
        }
    }
    children
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(items: &[(&str, &str)]) -> MerkleTree {
        let mut builder = TreeBuilder::new();
        for (key, entry) in items {
            builder.add(key.as_bytes(), &entry_hash(entry.as_bytes()));
        }
        builder.finish()
    }

    #[test]
    fn equal_contents_give_equal_roots_in_any_order() {
        let a = tree(&[("k1", "v1"), ("k2", "v2"), ("k3", "v3")]);
        let b = tree(&[("k3", "v3"), ("k1", "v1"), ("k2", "v2")]);
        assert_eq!(a.root(), b.root());
        assert_ne!(a.root(), EMPTY);
        assert_eq!(tree(&[]).root(), EMPTY);
    }

    #[test]
    fn one_changed_entry_changes_exactly_one_path() {
        let items: Vec<(String, String)> = (0..500)
            .map(|i| (format!("key{i}"), format!("value{i}")))
            .collect();
        let borrowed: Vec<(&str, &str)> = items
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let a = tree(&borrowed);
        let mut changed = borrowed.clone();
        changed[42].1 = "other";
        let b = tree(&changed);
        assert_ne!(a.root(), b.root());

        let target = leaf_of(b"key42");
        let mut index = 0;
        for level in 0..DEPTH {
            let (left, right) = (a.children(level, index), b.children(level, index));
            let differing: Vec<usize> = (0..FANOUT).filter(|&i| left[i] != right[i]).collect();
            let expected = (target >> (4 * (DEPTH - level - 1) as u32)) % FANOUT as u32;
            assert_eq!(differing, vec![expected as usize], "level {level}");
            index = index * FANOUT as u32 + expected;
        }
        assert_eq!(index, target);
        assert!(target < LEAF_COUNT);
    }

    #[test]
    fn a_missing_entry_changes_the_root() {
        let full = tree(&[("a", "1"), ("b", "2")]);
        let partial = tree(&[("a", "1")]);
        assert_ne!(full.root(), partial.root());
        assert_eq!(nodes_at(DEPTH), LEAF_COUNT);
    }
}
