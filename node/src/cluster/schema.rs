//! What a replicated table stores ([`TableSchema`]) and, apart from it, where it is
//! replicated ([`Replication`]).

use std::marker::PhantomData;

use super::crdt::Crdt;
use super::error::TableError;
use crate::store::codec::{self, Record};

/// Describes one replicated table: its name, its entry type and how an entry's partition key
/// is found, encoded and placed on the ring.
///
/// Entries are persisted and sent between nodes as [`Record`]s (a format-version byte, then
/// bincode): bump `Entry::FORMAT_VERSION` and decode the older layout in `store::codec` when
/// the entry changes shape.
pub trait TableSchema: Send + Sync + 'static {
    /// The table's name on the wire and on disk. Unique per cluster, without NUL bytes, and
    /// never renamed (stored entries are keyed by it).
    const TABLE_NAME: &'static str;

    /// What the table holds per key; merging two entries of a key must obey the CRDT laws.
    type Entry: Crdt + Record + Clone + Send + Sync + 'static;

    /// What identifies an entry (for objects: bucket and key).
    type Key: Send + Sync + 'static;

    /// The key of an entry.
    fn key_of(entry: &Self::Entry) -> Self::Key;

    /// The key's bytes as stored and sent; must be injective (two keys, two byte strings).
    fn encode_key(key: &Self::Key) -> Vec<u8>;

    /// The key's position on the ring; decides which nodes replicate it. Defaults to
    /// [`ring::hash_key`] of the encoded key.
    fn hash_key(key: &Self::Key) -> u64 {
        ring::hash_key(&Self::encode_key(key))
    }

    /// If the WHOLE entry is a deletion (every register in it a tombstone), the wall-clock
    /// Unix milliseconds of its newest change ([`super::crdt::Stamp::wall_millis`]);
    /// otherwise `None`. The tombstone purge ([`super::tombstones`]) deletes such entries
    /// from every replica once they are older than its grace period. The default, `None`,
    /// keeps every entry forever: right for tables whose deletions must never be forgotten.
    fn tombstoned_since(_entry: &Self::Entry) -> Option<u64> {
        None
    }
}

/// Where a table's entries live and how many answers an operation waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replication {
    /// Each key on the first `n` nodes of its preference list (`n` ≤ the layout's replication
    /// factor). A write succeeds after `write_quorum` of them acknowledged, a read after
    /// `read_quorum` answered; `write_quorum + read_quorum > n` makes reads see the last
    /// acknowledged write.
    Sharded {
        /// Replicas per key.
        n: usize,
        /// Acknowledgements a write needs (W).
        write_quorum: usize,
        /// Answers a read needs (R).
        read_quorum: usize,
    },
    /// Every entry on every node of the layout, for small tables read on every request
    /// (buckets, users, access keys). Writes go to all reachable nodes and succeed at a
    /// majority of the layout; reads answer from the local copy alone (R = 1), so they cost
    /// no round trip and may briefly miss a write this node has not received yet.
    FullCopy,
}

impl Replication {
    /// Dynamo's usual setting: N = 3, W = 2, R = 2.
    pub const DEFAULT_SHARDED: Replication = Replication::Sharded {
        n: 3,
        write_quorum: 2,
        read_quorum: 2,
    };

    /// Checks `1 ≤ W ≤ n` and `1 ≤ R ≤ n`.
    pub fn validate(&self, table: &'static str) -> Result<(), TableError> {
        if let Replication::Sharded {
            n,
            write_quorum,
            read_quorum,
        } = *self
        {
            let in_range = |quorum: usize| (1..=n).contains(&quorum);
            if n == 0 || !in_range(write_quorum) || !in_range(read_quorum) {
                return Err(TableError::InvalidReplication {
                    table,
                    reason: format!(
                        "need 1 <= W <= n and 1 <= R <= n, got n={n} W={write_quorum} R={read_quorum}"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Merges encoded entries of one table without knowing its type: what the RPC handler and
/// hint store use, since requests name tables by string.
pub trait EntryMerger: Send + Sync {
    /// Merges the encoded `incoming` entry into the encoded `current` one (if any). Returns
    /// the new encoding, or `None` when `current` already contains `incoming`.
    fn merge_encoded(
        &self,
        current: Option<&[u8]>,
        incoming: &[u8],
    ) -> Result<Option<Vec<u8>>, TableError>;
}

/// The [`EntryMerger`] of schema `S`: decode, [`Crdt::merge`], re-encode.
pub(crate) struct SchemaMerger<S>(PhantomData<fn() -> S>);

impl<S> SchemaMerger<S> {
    pub(crate) fn new() -> Self {
        SchemaMerger(PhantomData)
    }
}

impl<S: TableSchema> EntryMerger for SchemaMerger<S> {
    fn merge_encoded(
        &self,
        current: Option<&[u8]>,
        incoming: &[u8],
    ) -> Result<Option<Vec<u8>>, TableError> {
        // Replicas usually agree: equal encodings merge to themselves (merging is
        // idempotent), so skip decoding and re-encoding them on every read.
        if current == Some(incoming) {
            return Ok(None);
        }
        let incoming: S::Entry = codec::decode(incoming)?;
        let Some(current_bytes) = current else {
            // Re-encoding (rather than storing the received bytes) writes only what this
            // node's format produces.
            return Ok(Some(codec::encode(&incoming)?));
        };
        let mut entry: S::Entry = codec::decode(current_bytes)?;
        entry.merge(&incoming);
        let merged = codec::encode(&entry)?;
        Ok((merged != current_bytes).then_some(merged))
    }
}
