//! This node's block files as replication sees them, and the blocks it holds for others.
//!
//! Everything here blocks (file I/O, hashing 1 MiB): call it from `spawn_blocking`, except
//! the metadata flush, which is async.
//!
//! Handoff records live in the metadata engine's `Replicated` table under keys that start
//! with a NUL byte. Replicated-table keys start with the table name, which is never empty, so
//! these keys cannot collide with any table's entries: `0x00 "block-handoff" 0x00`, the
//! block hash, then the owner's id. All records of one block are adjacent, which makes
//! "does anyone still need my copy" one prefix scan.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use ring::NodeId;

use super::BlockHash;
use crate::store::blocks::{BlockFile, BlockStore};
use crate::store::kv::{scan_prefix, KvStore, Table as KvTable};
use crate::store::StoreError;

const HANDOFF_PREFIX: &[u8] = b"\0block-handoff\0";

/// A block file's state, after hashing it.
pub(crate) enum LocalRead {
    /// No file for this hash.
    Missing,
    /// The file's content hashes to its name.
    Intact(Vec<u8>),
    /// The file exists but its content does not match its name.
    Corrupt,
}

/// A block this node holds for `owner`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Handoff {
    pub owner: NodeId,
    pub hash: BlockHash,
}

/// The local block files and handoff records of one node.
pub(crate) struct LocalBlocks {
    store: Arc<BlockStore>,
    kv: Arc<dyn KvStore>,
    /// Serialises handoff-record changes with the decision to drop a delivered copy, so a
    /// new handoff of the same block cannot lose its file to a concurrent cleanup.
    handoffs: Mutex<()>,
}

impl LocalBlocks {
    pub(crate) fn new(store: Arc<BlockStore>, kv: Arc<dyn KvStore>) -> LocalBlocks {
        LocalBlocks {
            store,
            kv,
            handoffs: Mutex::new(()),
        }
    }

    pub(crate) fn kv(&self) -> &Arc<dyn KvStore> {
        &self.kv
    }

    pub(crate) fn store(&self) -> &BlockStore {
        &self.store
    }

    /// Stores `data` as block `hash` durably, after checking that it hashes to `hash`.
    pub(crate) fn write_verified(&self, hash: &BlockHash, data: &[u8]) -> Result<(), StoreError> {
        check_hash(hash, data)?;
        let stored = self.store.write_block(data)?;
        self.store.sync_dirs(&BTreeSet::from([stored.dir]))
    }

    /// Like [`LocalBlocks::write_verified`], but an existing corrupt file is moved aside and
    /// replaced (a plain write keeps any existing file). Returns whether a corrupt file was
    /// replaced.
    pub(crate) fn repair(&self, hash: &BlockHash, data: &[u8]) -> Result<bool, StoreError> {
        check_hash(hash, data)?;
        let replaced = match self.read_verified(hash)? {
            LocalRead::Corrupt => {
                self.quarantine(hash)?;
                true
            }
            LocalRead::Missing | LocalRead::Intact(_) => false,
        };
        self.write_verified(hash, data)?;
        Ok(replaced)
    }

    /// The file's raw content, or `None` if there is no file.
    pub(crate) fn read_raw(&self, hash: &BlockHash) -> Result<Option<Vec<u8>>, StoreError> {
        match fs::read(self.store.path_of(hash)) {
            Ok(data) => Ok(Some(data)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(StoreError::io(
                format!("reading block {}", hex::encode(hash)),
                err,
            )),
        }
    }

    /// Reads and re-hashes the file of `hash`.
    pub(crate) fn read_verified(&self, hash: &BlockHash) -> Result<LocalRead, StoreError> {
        Ok(match self.read_raw(hash)? {
            None => LocalRead::Missing,
            Some(data) if blake3::hash(&data).as_bytes() == hash => LocalRead::Intact(data),
            Some(_) => LocalRead::Corrupt,
        })
    }

    /// Moves the file of `hash` into `blocks/corrupt/` (named with a random suffix, so
    /// repeated corruption keeps every sample) and removes it from the block directory.
    /// Returns where it went.
    pub(crate) fn quarantine(&self, hash: &BlockHash) -> Result<PathBuf, StoreError> {
        let path = self.store.path_of(hash);
        let corrupt_dir = match self.store.tmp_dir().parent() {
            Some(root) => root.join("corrupt"),
            None => return Err(StoreError::Corrupt("block root has no parent".into())),
        };
        fs::create_dir_all(&corrupt_dir)
            .map_err(|e| StoreError::io("creating corrupt-block dir", e))?;
        let aside = corrupt_dir.join(format!(
            "{}.{}",
            hex::encode(hash),
            uuid::Uuid::new_v4().simple()
        ));
        // Copy, then remove through the store, so its block count stays right.
        fs::copy(&path, &aside).map_err(|e| StoreError::io("moving corrupt block aside", e))?;
        let modified = fs::metadata(&path)
            .and_then(|meta| meta.modified())
            .map_err(|e| StoreError::io("reading corrupt block mtime", e))?;
        self.store.remove_block(&BlockFile {
            hash: *hash,
            path,
            modified,
        })?;
        Ok(aside)
    }

    /// Every block file's hash.
    pub(crate) fn list(&self) -> Result<Vec<BlockHash>, StoreError> {
        let mut hashes = Vec::new();
        self.store.for_each_block(|file| hashes.push(file.hash))?;
        Ok(hashes)
    }

    /// The file's modification time (bumped by every put of the block), if it exists.
    pub(crate) fn modified(&self, hash: &BlockHash) -> Result<Option<SystemTime>, StoreError> {
        match fs::metadata(self.store.path_of(hash)).and_then(|meta| meta.modified()) {
            Ok(modified) => Ok(Some(modified)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(StoreError::io("reading block mtime", err)),
        }
    }

    /// Deletes the file of `hash` (GC, or a delivered handoff copy).
    pub(crate) fn remove(&self, hash: &BlockHash) -> Result<(), StoreError> {
        let path = self.store.path_of(hash);
        let modified = match fs::metadata(&path).and_then(|meta| meta.modified()) {
            Ok(modified) => modified,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(StoreError::io("reading block mtime", err)),
        };
        self.store.remove_block(&BlockFile {
            hash: *hash,
            path,
            modified,
        })
    }

    /// Stores `data` and a record that it is held for `owner`. Not durable until
    /// [`LocalBlocks::flush`].
    pub(crate) fn store_handoff(
        &self,
        owner: &NodeId,
        hash: &BlockHash,
        data: &[u8],
    ) -> Result<(), StoreError> {
        let _guard = self.lock_handoffs();
        self.write_verified(hash, data)?;
        self.kv
            .insert(KvTable::Replicated, &handoff_key(hash, owner), &[])?;
        Ok(())
    }

    /// Every handoff record, grouped by block.
    pub(crate) fn handoffs(&self) -> Result<Vec<Handoff>, StoreError> {
        let mut handoffs = Vec::new();
        for item in scan_prefix(&*self.kv, KvTable::Replicated, HANDOFF_PREFIX) {
            let (key, _) = item?;
            let rest = &key[HANDOFF_PREFIX.len()..];
            if rest.len() < 32 {
                return Err(StoreError::Corrupt(format!(
                    "block handoff record key of {} bytes",
                    key.len()
                )));
            }
            let mut hash = [0u8; 32];
            hash.copy_from_slice(&rest[..32]);
            let owner = String::from_utf8(rest[32..].to_vec())
                .map_err(|_| StoreError::Corrupt("block handoff owner is not UTF-8".into()))?;
            handoffs.push(Handoff {
                owner: NodeId::new(owner),
                hash,
            });
        }
        Ok(handoffs)
    }

    /// Forgets a delivered handoff; drops the local copy too when `keep_copy` is false and
    /// no other owner is still waiting for it. Not durable until [`LocalBlocks::flush`].
    pub(crate) fn finish_handoff(
        &self,
        handoff: &Handoff,
        keep_copy: bool,
    ) -> Result<(), StoreError> {
        let _guard = self.lock_handoffs();
        self.kv.remove(
            KvTable::Replicated,
            &handoff_key(&handoff.hash, &handoff.owner),
        )?;
        if keep_copy {
            return Ok(());
        }
        let mut prefix = HANDOFF_PREFIX.to_vec();
        prefix.extend_from_slice(&handoff.hash);
        if scan_prefix(&*self.kv, KvTable::Replicated, &prefix)
            .next()
            .is_none()
        {
            self.remove(&handoff.hash)?;
        }
        Ok(())
    }

    /// Makes metadata changes (handoff records) durable.
    pub(crate) async fn flush(&self) -> Result<(), StoreError> {
        Ok(self.kv.flush().await?)
    }

    fn lock_handoffs(&self) -> MutexGuard<'_, ()> {
        // The guarded data is `()`: a panic in another holder leaves nothing inconsistent.
        self.handoffs
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Refuses `data` unless it hashes to `hash`.
pub(crate) fn check_hash(hash: &BlockHash, data: &[u8]) -> Result<(), StoreError> {
    let actual = blake3::hash(data);
    if actual.as_bytes() != hash {
        return Err(StoreError::Corrupt(format!(
            "block content hashes to {}, not to its name {}: transfer refused",
            actual.to_hex(),
            hex::encode(hash)
        )));
    }
    Ok(())
}

fn handoff_key(hash: &BlockHash, owner: &NodeId) -> Vec<u8> {
    let mut key = HANDOFF_PREFIX.to_vec();
    key.extend_from_slice(hash);
    key.extend_from_slice(owner.as_str().as_bytes());
    key
}
