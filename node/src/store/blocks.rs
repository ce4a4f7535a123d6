//! Content-addressed block files: `blocks/<first two hex digits>/<64 hex digits of BLAKE3>`.
//!
//! A block is written to `blocks/tmp/`, fsynced, then renamed into place, so a block file is
//! either absent or complete. A block that already exists is not rewritten; its mtime is bumped
//! so that garbage collection (which spares recently touched files) keeps it while the record
//! that references it is being committed. All functions here block: call them from
//! `spawn_blocking`. File I/O that may fail in interesting ways goes through [`BlockIo`], the
//! seam tests use to inject ENOSPC and EIO.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use super::error::StoreError;
use super::records::BlockRef;

/// The file operations whose failures matter for durability.
pub trait BlockIo: Send + Sync + 'static {
    /// Writes all of `data` to a freshly created temp file.
    fn write(&self, file: &mut File, data: &[u8]) -> io::Result<()> {
        file.write_all(data)
    }
    /// Makes the file's contents durable.
    fn sync_file(&self, file: &File) -> io::Result<()> {
        file.sync_all()
    }
    /// Makes a directory's entries (renames into it) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// The real file system.
pub struct OsBlockIo;

impl BlockIo for OsBlockIo {}

/// A block on disk, as seen by garbage collection.
pub struct BlockFile {
    pub hash: [u8; 32],
    pub path: PathBuf,
    pub modified: SystemTime,
}

/// The result of storing one block.
pub struct StoredBlock {
    pub block: BlockRef,
    /// The directory holding the block, to fsync before acknowledging. Also for blocks that
    /// already existed: their rename may belong to a writer that has not synced it yet.
    pub dir: PathBuf,
}

/// The block directory of one node.
pub struct BlockStore {
    root: PathBuf,
    tmp: PathBuf,
    io: Arc<dyn BlockIo>,
    block_files: AtomicU64,
}

impl BlockStore {
    /// Opens `root`, creating the temp and all 256 shard directories (fsynced once here, so
    /// writes only ever need to sync the shard directory they renamed into).
    pub fn open(root: PathBuf, io: Arc<dyn BlockIo>) -> Result<BlockStore, StoreError> {
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp).map_err(|e| StoreError::io("creating block dirs", e))?;
        for shard in 0..=u8::MAX {
            let dir = root.join(hex::encode([shard]));
            fs::create_dir_all(&dir).map_err(|e| StoreError::io("creating block dirs", e))?;
        }
        // The shard directories' entries, and the block root's entry in the data dir.
        for dir in [Some(root.as_path()), root.parent()].into_iter().flatten() {
            io.sync_dir(dir)
                .map_err(|e| StoreError::io("syncing block dir", e))?;
        }
        let store = BlockStore {
            root,
            tmp,
            io,
            block_files: AtomicU64::new(0),
        };
        let mut count = 0;
        store.for_each_block(|_| count += 1)?;
        store.block_files.store(count, Ordering::Relaxed);
        Ok(store)
    }

    /// Number of block files (approximate under concurrent writes of the same new block).
    pub fn block_count(&self) -> u64 {
        self.block_files.load(Ordering::Relaxed)
    }

    /// The temp directory (garbage collection sweeps it too).
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    fn shard_dir(&self, hash: &[u8; 32]) -> PathBuf {
        self.root.join(hex::encode(&hash[..1]))
    }

    pub(crate) fn path_of(&self, hash: &[u8; 32]) -> PathBuf {
        self.shard_dir(hash).join(hex::encode(hash))
    }

    /// Stores `data` as a block (hashing it here, off the async threads).
    pub fn write_block(&self, data: &[u8]) -> Result<StoredBlock, StoreError> {
        let hash: [u8; 32] = blake3::hash(data).into();
        let len = u32::try_from(data.len())
            .map_err(|_| StoreError::Corrupt(format!("block of {} bytes", data.len())))?;
        let block = BlockRef { hash, len };
        let path = self.path_of(&hash);
        if touch(&path).map_err(|e| StoreError::io("touching existing block", e))? {
            return Ok(StoredBlock {
                block,
                dir: self.shard_dir(&hash),
            });
        }
        let tmp_path = self.tmp.join(uuid::Uuid::new_v4().simple().to_string());
        let written = self.write_temp(&tmp_path, data).and_then(|()| {
            fs::rename(&tmp_path, &path).map_err(|e| StoreError::io("renaming block", e))
        });
        if let Err(err) = written {
            // Best effort: a leftover temp file is also removed by GC after the grace period.
            let _ = fs::remove_file(&tmp_path);
            return Err(err);
        }
        self.block_files.fetch_add(1, Ordering::Relaxed);
        Ok(StoredBlock {
            block,
            dir: self.shard_dir(&hash),
        })
    }

    fn write_temp(&self, tmp_path: &Path, data: &[u8]) -> Result<(), StoreError> {
        let mut file = File::options()
            .write(true)
            .create_new(true)
            .open(tmp_path)
            .map_err(|e| StoreError::io("creating block temp file", e))?;
        self.io
            .write(&mut file, data)
            .map_err(|e| StoreError::io("writing block", e))?;
        self.io
            .sync_file(&file)
            .map_err(|e| StoreError::io("syncing block", e))
    }

    /// Fsyncs each directory once.
    pub fn sync_dirs(&self, dirs: &BTreeSet<PathBuf>) -> Result<(), StoreError> {
        for dir in dirs {
            self.io
                .sync_dir(dir)
                .map_err(|e| StoreError::io("syncing block dir", e))?;
        }
        Ok(())
    }

    /// Reads `len` bytes at `offset` of a block.
    pub fn read(&self, hash: &[u8; 32], offset: u64, len: usize) -> Result<Bytes, StoreError> {
        let path = self.path_of(hash);
        let context = || format!("reading block {}", hex::encode(hash));
        let file = File::open(&path).map_err(|e| StoreError::io(context(), e))?;
        let mut buffer = vec![0; len];
        file.read_exact_at(&mut buffer, offset)
            .map_err(|e| StoreError::io(context(), e))?;
        Ok(Bytes::from(buffer))
    }

    /// Calls `visit` for every block file.
    pub fn for_each_block(&self, mut visit: impl FnMut(BlockFile)) -> Result<(), StoreError> {
        for shard in 0..=u8::MAX {
            let dir = self.root.join(hex::encode([shard]));
            let entries = fs::read_dir(&dir).map_err(|e| StoreError::io("listing blocks", e))?;
            for entry in entries {
                let entry = entry.map_err(|e| StoreError::io("listing blocks", e))?;
                let Some(hash) = parse_hash(&entry.file_name().to_string_lossy()) else {
                    continue;
                };
                let modified = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .map_err(|e| StoreError::io("reading block mtime", e))?;
                visit(BlockFile {
                    hash,
                    path: entry.path(),
                    modified,
                });
            }
        }
        Ok(())
    }

    /// Deletes a block file found by [`BlockStore::for_each_block`].
    pub fn remove_block(&self, file: &BlockFile) -> Result<(), StoreError> {
        match fs::remove_file(&file.path) {
            Ok(()) => {
                self.block_files.fetch_sub(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("removing block", e)),
        }
    }
}

/// Bumps the mtime of an existing file; `false` if it does not exist.
fn touch(path: &Path) -> io::Result<bool> {
    match File::options().write(true).open(path) {
        Ok(file) => {
            file.set_modified(SystemTime::now())?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn parse_hash(name: &str) -> Option<[u8; 32]> {
    let mut hash = [0; 32];
    hex::decode_to_slice(name, &mut hash).ok()?;
    Some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_named_by_hash_deduplicated_and_readable_by_range() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::open(dir.path().join("blocks"), Arc::new(OsBlockIo)).unwrap();
        let first = store.write_block(b"hello block").unwrap();
        assert_eq!(first.block.len, 11);
        let again = store.write_block(b"hello block").unwrap();
        assert_eq!(again.block, first.block);
        assert_eq!(store.block_count(), 1, "existing blocks are not rewritten");
        assert_eq!(again.dir, first.dir);
        let path = store.path_of(&first.block.hash);
        assert!(path.starts_with(dir.path().join("blocks")));
        assert_eq!(&store.read(&first.block.hash, 6, 5).unwrap()[..], b"block");
        assert!(store.read(&first.block.hash, 6, 50).is_err());
        let mut seen = Vec::new();
        store.for_each_block(|file| seen.push(file.hash)).unwrap();
        assert_eq!(seen, vec![first.block.hash]);
        let reopened = BlockStore::open(dir.path().join("blocks"), Arc::new(OsBlockIo)).unwrap();
        assert_eq!(reopened.block_count(), 1);
    }
}
