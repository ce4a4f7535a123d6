//! Replica groups and the scans that build their trees.
//!
//! A node holds about 2048 ring ranges per node of the cluster, far too many for one tree
//! each. Ranges with the same owners (the first N nodes of their preference list, as a set)
//! form one replica group, and anti-entropy keeps one tree per (table, group): a 5-node
//! cluster with N = 3 has at most 10 groups, each node is in about 6 of them. An entry's group
//! follows from its ring hash, so a node builds the trees of all its groups in one scan of
//! its copy of the table.

use std::collections::{BTreeMap, BTreeSet};

use ring::{NodeId, Ring};

use super::tree::{entry_hash, leaf_of, MerkleTree, TreeBuilder};
use super::AntiEntropyError;
use crate::cluster::error::TableError;
use crate::cluster::local::entry_key;
use crate::cluster::schema::{Replication, TableSchema};
use crate::store::codec;
use crate::store::kv::{scan_prefix, KvStore, Table as KvTable};

/// The owners of a group, sorted by id: the group's name on the wire.
pub type Owners = Vec<NodeId>;

/// Finds an encoded entry's ring hash (its key's position) without knowing its type.
pub(crate) type RingHashFn = fn(&[u8]) -> Result<u64, TableError>;

/// A table anti-entropy covers: its name, where its entries live and how to place them.
#[derive(Clone, Copy)]
pub(crate) struct RegisteredTable {
    pub(crate) name: &'static str,
    pub(crate) replication: Replication,
    pub(crate) ring_hash: RingHashFn,
}

impl RegisteredTable {
    /// The description of schema `S`'s table.
    pub(crate) fn of<S: TableSchema>(replication: Replication) -> RegisteredTable {
        RegisteredTable {
            name: S::TABLE_NAME,
            replication,
            ring_hash: ring_hash_of::<S>,
        }
    }

    /// The owners of an encoded entry under `ring`.
    pub(crate) fn owners_of_entry(&self, ring: &Ring, entry: &[u8]) -> Result<Owners, TableError> {
        Ok(owners_of(ring, self.replication, (self.ring_hash)(entry)?))
    }
}

fn ring_hash_of<S: TableSchema>(entry: &[u8]) -> Result<u64, TableError> {
    let entry: S::Entry = codec::decode(entry)?;
    Ok(S::hash_key(&S::key_of(&entry)))
}

/// The owners of `ring_hash`, sorted.
pub(crate) fn owners_of(ring: &Ring, replication: Replication, ring_hash: u64) -> Owners {
    let mut owners: Owners = match replication {
        Replication::Sharded { n, .. } => ring
            .preference_list(ring_hash)
            .iter()
            .take(n)
            .cloned()
            .collect(),
        Replication::FullCopy => ring.nodes().to_vec(),
    };
    owners.sort();
    owners
}

/// Every group of `table` that `local` belongs to, whether or not it holds entries there (a
/// wiped replica must still compare, to get everything back).
pub(crate) fn local_groups(ring: &Ring, replication: Replication, local: &NodeId) -> Vec<Owners> {
    let mut groups = BTreeSet::new();
    match replication {
        Replication::Sharded { n, .. } => {
            for (_, _, list) in ring.ranges() {
                if list.iter().take(n).any(|node| node == local) {
                    let mut owners: Owners = list.iter().take(n).cloned().collect();
                    owners.sort();
                    groups.insert(owners);
                }
            }
        }
        Replication::FullCopy => {
            if ring.nodes().contains(local) {
                groups.insert(ring.nodes().to_vec());
            }
        }
    }
    groups.into_iter().collect()
}

/// Calls `visit(encoded key, encoded entry)` for every entry of `table` this node holds.
fn for_each_entry(
    kv: &dyn KvStore,
    table: &str,
    mut visit: impl FnMut(&[u8], &[u8]) -> Result<(), AntiEntropyError>,
) -> Result<(), AntiEntropyError> {
    let prefix = entry_key(table, b"");
    for item in scan_prefix(kv, KvTable::Replicated, &prefix) {
        let (db_key, entry) = item?;
        visit(&db_key[prefix.len()..], &entry)?;
    }
    Ok(())
}

/// The trees of all of `local`'s groups of `table`, from one scan.
pub(crate) fn build_local_trees(
    kv: &dyn KvStore,
    table: &RegisteredTable,
    ring: &Ring,
    local: &NodeId,
) -> Result<BTreeMap<Owners, MerkleTree>, AntiEntropyError> {
    let mut builders: BTreeMap<Owners, TreeBuilder> = local_groups(ring, table.replication, local)
        .into_iter()
        .map(|owners| (owners, TreeBuilder::new()))
        .collect();
    for_each_entry(kv, table.name, |key, entry| {
        let owners = table.owners_of_entry(ring, entry)?;
        // Entries of groups this node left (an older layout) are the rebalancer's business.
        if let Some(builder) = builders.get_mut(&owners) {
            builder.add(key, &entry_hash(entry));
        }
        Ok(())
    })?;
    Ok(builders
        .into_iter()
        .map(|(owners, builder)| (owners, builder.finish()))
        .collect())
}

/// The tree of one group of `table`.
pub(crate) fn build_group_tree(
    kv: &dyn KvStore,
    table: &RegisteredTable,
    ring: &Ring,
    owners: &Owners,
) -> Result<MerkleTree, AntiEntropyError> {
    let mut builder = TreeBuilder::new();
    for_each_entry(kv, table.name, |key, entry| {
        if &table.owners_of_entry(ring, entry)? == owners {
            builder.add(key, &entry_hash(entry));
        }
        Ok(())
    })?;
    Ok(builder.finish())
}

/// An entry as exchanged: (leaf, encoded key, encoded entry).
pub(crate) type LeafEntry = (u32, Vec<u8>, Vec<u8>);

/// The entries of group `owners` of `table` that fall into `leaves`, in key order.
pub(crate) fn collect_leaves(
    kv: &dyn KvStore,
    table: &RegisteredTable,
    ring: &Ring,
    owners: &Owners,
    leaves: &BTreeSet<u32>,
) -> Result<Vec<LeafEntry>, AntiEntropyError> {
    let mut found = Vec::new();
    for_each_entry(kv, table.name, |key, entry| {
        // The leaf test is one BLAKE3 of the key; only candidates pay for decoding the entry.
        let leaf = leaf_of(key);
        if leaves.contains(&leaf) && &table.owners_of_entry(ring, entry)? == owners {
            found.push((leaf, key.to_vec(), entry.to_vec()));
        }
        Ok(())
    })?;
    Ok(found)
}
