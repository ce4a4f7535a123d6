//! This node's copy of the replicated tables and the hints it holds for other nodes, in the
//! metadata engine ([`KvStore`] tables `Replicated` and `Hints`).
//!
//! Every change is a read-merge-write of one key. Instead of engine transactions (which in
//! sled 0.34 block the async worker and can stall against flushes, see `store::kv`), writes
//! of one key are serialised by a striped in-process lock held only around the synchronous
//! get and insert; all writers of these two tables go through this type, so that suffices.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use serde::{Deserialize, Serialize};

use super::error::TableError;
use super::schema::EntryMerger;
use crate::store::codec::{self, Record};
use crate::store::kv::{KvStore, Table as KvTable};
use ring::NodeId;

/// Lock stripes: enough that unrelated keys rarely wait on each other at a node's
/// concurrency (RPC handlers run at most 64 requests per connection), small enough to cost
/// nothing.
const LOCK_STRIPES: usize = 64;

/// An encoded key and its encoded entry, as listed by [`LocalStore::scan_prefix`].
pub type KeyedEntry = (Vec<u8>, Vec<u8>);

/// A write held for a replica that was down, persisted until the owner acknowledges it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HintRecord {
    /// The replica the write belongs to.
    pub owner: NodeId,
    /// The table's name.
    pub table: String,
    /// The encoded partition key.
    pub key: Vec<u8>,
    /// The encoded entry (merged with later hints for the same owner and key).
    pub entry: Vec<u8>,
}

impl Record for HintRecord {
    const FORMAT_VERSION: u8 = 1;
    const NAME: &'static str = "hint";
}

/// A hint as read from disk, with what is needed to delete exactly this version of it.
#[derive(Debug, Clone)]
pub struct StoredHint {
    /// The hint.
    pub hint: HintRecord,
    db_key: Vec<u8>,
    encoded: Vec<u8>,
}

/// Told of every change to this node's copy of one table, while the changed key is still
/// locked: derived state (usage counters) then moves in step with the stored entries, and
/// replication, hints, read repair and anti-entropy, which all land here, are counted once.
pub trait LocalChangeObserver: Send + Sync {
    /// `key`'s stored entry changed from `before` to `after` (`None`: absent). Called with
    /// the key's lock held, so it must be quick and must not touch the store.
    fn changed(&self, key: &[u8], before: Option<&[u8]>, after: Option<&[u8]>);
}

/// This node's replicated-table storage.
pub struct LocalStore {
    /// The engine; anti-entropy scans the `Replicated` tree through it.
    pub(crate) kv: Arc<dyn KvStore>,
    stripes: Vec<Mutex<()>>,
    /// Observers by table name (see [`LocalStore::observe`]).
    observers: RwLock<HashMap<String, Arc<dyn LocalChangeObserver>>>,
}

impl LocalStore {
    /// Storage over `kv`, which may be shared with the rest of the node.
    pub fn new(kv: Arc<dyn KvStore>) -> LocalStore {
        LocalStore {
            kv,
            stripes: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            observers: RwLock::new(HashMap::new()),
        }
    }

    /// Tells `observer` of every later change to this node's entries of `table` (replacing
    /// an earlier observer of it).
    pub fn observe(&self, table: &str, observer: Arc<dyn LocalChangeObserver>) {
        self.observers
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(table.to_owned(), observer);
    }

    fn observer(&self, table: &str) -> Option<Arc<dyn LocalChangeObserver>> {
        self.observers
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(table)
            .cloned()
    }

    /// Walks every entry of `table` in key order and calls `visit(key, entry)` for each
    /// while holding that key's lock, then calls `finish` while holding every lock. A merge
    /// of a key therefore either lands before its visit (the visit sees it) or after (an
    /// observer sees it after the visit): what rebuilding derived state from a scan, while
    /// writes go on, needs. Blocking: run it off the async workers.
    pub fn walk_locked(
        &self,
        table: &str,
        visit: &mut dyn FnMut(&[u8], &[u8]),
        finish: &mut dyn FnMut(),
    ) -> Result<(), TableError> {
        let base = entry_key(table, &[]);
        let mut last: Option<Vec<u8>> = None;
        let start = |last: &Option<Vec<u8>>| match last {
            Some(key) => Bound::Excluded(key.clone()),
            None => Bound::Included(base.clone()),
        };
        for item in self.kv.scan_from(KvTable::Replicated, start(&last)) {
            let (db_key, _) = item?;
            if !db_key.starts_with(&base) {
                break;
            }
            let _guard = self.lock(&db_key);
            // Re-read under the lock: the scanned value may predate a merge.
            if let Some(value) = self.kv.get(KvTable::Replicated, &db_key)? {
                visit(&db_key[base.len()..], &value);
            }
            last = Some(db_key.to_vec());
        }
        // Keys written after the scan passed the end: visit them with every key locked.
        let _all: Vec<MutexGuard<'_, ()>> = self
            .stripes
            .iter()
            .map(|stripe| stripe.lock().unwrap_or_else(|poison| poison.into_inner()))
            .collect();
        for item in self.kv.scan_from(KvTable::Replicated, start(&last)) {
            let (db_key, value) = item?;
            if !db_key.starts_with(&base) {
                break;
            }
            visit(&db_key[base.len()..], &value);
        }
        finish();
        Ok(())
    }

    /// The encoded entry of `key` in `table`, if this node holds one.
    pub fn read(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, TableError> {
        let value = self.kv.get(KvTable::Replicated, &entry_key(table, key))?;
        Ok(value.map(|bytes| bytes.to_vec()))
    }

    /// Up to `limit` (encoded key, encoded entry) pairs of `table` whose key starts with
    /// `prefix`, in key byte order, strictly after `start_after` when given.
    pub fn scan_prefix(
        &self,
        table: &str,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyedEntry>, TableError> {
        let table_base = entry_key(table, &[]);
        let full_prefix = entry_key(table, prefix);
        let start = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(entry_key(table, after)),
            _ => Bound::Included(full_prefix.clone()),
        };
        let mut entries = Vec::new();
        for item in self.kv.scan_from(KvTable::Replicated, start) {
            if entries.len() >= limit {
                break;
            }
            let (db_key, value) = item?;
            if !db_key.starts_with(&full_prefix) {
                break;
            }
            entries.push((db_key[table_base.len()..].to_vec(), value.to_vec()));
        }
        Ok(entries)
    }

    /// Merges the encoded `incoming` entry into this node's copy and waits until the result
    /// is durable. Returns whether the stored entry changed.
    pub async fn merge(
        &self,
        table: &str,
        key: &[u8],
        incoming: &[u8],
        merger: &dyn EntryMerger,
    ) -> Result<bool, TableError> {
        let db_key = entry_key(table, key);
        let changed = {
            let _guard = self.lock(&db_key);
            let current = self.kv.get(KvTable::Replicated, &db_key)?;
            match merger.merge_encoded(current.as_deref(), incoming)? {
                Some(merged) => {
                    self.kv.insert(KvTable::Replicated, &db_key, &merged)?;
                    if let Some(observer) = self.observer(table) {
                        observer.changed(key, current.as_deref(), Some(&merged));
                    }
                    true
                }
                None => false,
            }
        };
        // Flushed even when unchanged: the stored version may come from a concurrent write
        // whose flush has not finished, and an acknowledgement promises durability.
        self.kv.flush().await?;
        Ok(changed)
    }

    /// Deletes this node's copy of `key` in `table` if its encoded entry is exactly
    /// `expected`, and waits until the deletion is durable. Returns whether it deleted: a
    /// copy that changed since `expected` was read (a newer write merged in) stays.
    pub async fn remove_if_equal(
        &self,
        table: &str,
        key: &[u8],
        expected: &[u8],
    ) -> Result<bool, TableError> {
        let db_key = entry_key(table, key);
        let removed = {
            // The lock `merge` takes: no merge of this key runs between compare and delete.
            let _guard = self.lock(&db_key);
            let current = self.kv.get(KvTable::Replicated, &db_key)?;
            if current.as_deref() == Some(expected) {
                self.kv.remove(KvTable::Replicated, &db_key)?;
                if let Some(observer) = self.observer(table) {
                    observer.changed(key, Some(expected), None);
                }
                true
            } else {
                false
            }
        };
        if removed {
            self.kv.flush().await?;
        }
        Ok(removed)
    }

    /// Stores (merging with any earlier hint for the same owner and key) a write for `owner`
    /// and waits until it is durable.
    pub async fn store_hint(
        &self,
        owner: &NodeId,
        table: &str,
        key: &[u8],
        entry: &[u8],
        merger: &dyn EntryMerger,
    ) -> Result<(), TableError> {
        let db_key = hint_key(owner, table, key);
        {
            let _guard = self.lock(&db_key);
            let existing = match self.kv.get(KvTable::Hints, &db_key)? {
                Some(bytes) => Some(codec::decode::<HintRecord>(&bytes)?),
                None => None,
            };
            let current_entry = existing.as_ref().map(|hint| hint.entry.as_slice());
            if let Some(merged) = merger.merge_encoded(current_entry, entry)? {
                let record = HintRecord {
                    owner: owner.clone(),
                    table: table.to_owned(),
                    key: key.to_vec(),
                    entry: merged,
                };
                self.kv
                    .insert(KvTable::Hints, &db_key, &codec::encode(&record)?)?;
            }
        }
        self.kv.flush().await?;
        Ok(())
    }

    /// Every hint this node holds, in key order (grouped by owner).
    pub fn hints(&self) -> Result<Vec<StoredHint>, TableError> {
        let mut hints = Vec::new();
        for item in self
            .kv
            .scan_from(KvTable::Hints, std::ops::Bound::Unbounded)
        {
            let (db_key, encoded) = item?;
            hints.push(StoredHint {
                hint: codec::decode(&encoded)?,
                db_key: db_key.to_vec(),
                encoded: encoded.to_vec(),
            });
        }
        Ok(hints)
    }

    /// Deletes `stored` if the hint on disk is still that version: a hint merged with a newer
    /// write since it was read must stay until that write is delivered too. Returns whether
    /// it was deleted.
    pub fn remove_hint_if_unchanged(&self, stored: &StoredHint) -> Result<bool, TableError> {
        let _guard = self.lock(&stored.db_key);
        let current = self.kv.get(KvTable::Hints, &stored.db_key)?;
        if current.as_deref() != Some(stored.encoded.as_slice()) {
            return Ok(false);
        }
        self.kv.remove(KvTable::Hints, &stored.db_key)?;
        Ok(true)
    }

    fn lock(&self, db_key: &[u8]) -> MutexGuard<'_, ()> {
        let mut hasher = DefaultHasher::new();
        db_key.hash(&mut hasher);
        let stripe = (hasher.finish() % LOCK_STRIPES as u64) as usize;
        // The guarded data is `()`: a panic in another holder leaves nothing inconsistent.
        self.stripes[stripe]
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// `table` + 0x00 + `key`: table names hold no NUL, so tables never share a key.
pub(crate) fn entry_key(table: &str, key: &[u8]) -> Vec<u8> {
    let mut db_key = Vec::with_capacity(table.len() + 1 + key.len());
    db_key.extend_from_slice(table.as_bytes());
    db_key.push(0);
    db_key.extend_from_slice(key);
    db_key
}

/// Length-prefixed owner and table, then the key: one hint per (owner, table, key), and all
/// hints of one owner adjacent.
fn hint_key(owner: &NodeId, table: &str, key: &[u8]) -> Vec<u8> {
    let owner = owner.as_str().as_bytes();
    let mut db_key = Vec::with_capacity(8 + owner.len() + table.len() + key.len());
    for part in [owner, table.as_bytes()] {
        db_key.extend_from_slice(&(part.len() as u32).to_be_bytes());
        db_key.extend_from_slice(part);
    }
    db_key.extend_from_slice(key);
    db_key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layouts_keep_tables_and_owners_apart() {
        assert_ne!(entry_key("ab", b"c"), entry_key("a", b"bc"));
        let owner = |id: &str| NodeId::from(id);
        assert_ne!(
            hint_key(&owner("n1"), "t", b"k"),
            hint_key(&owner("n"), "1t", b"k")
        );
        assert!(
            hint_key(&owner("n1"), "t", b"k").starts_with(&hint_key(&owner("n1"), "", b"")[..6])
        );
    }
}
