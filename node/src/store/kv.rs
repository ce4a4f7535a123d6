//! The key-value engine under the metadata tables, behind a narrow trait.
//!
//! This is the only module of the node that names `sled`. Everything above it sees
//! [`KvStore`]: point reads and writes, ordered range scans, atomic multi-table transactions and
//! a durable flush. Replacing the engine (or measuring another one against it) means writing one
//! more implementation of that trait and passing its conformance tests below.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::ops::{Bound, Deref};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The metadata tables; each is an independent ordered key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Bucket name → bucket record.
    Buckets,
    /// bucket + 0x00 + key → object record (LWW register).
    Objects,
    /// bucket + 0x00 + key + 0x00 + upload id → multipart upload record.
    Uploads,
    /// upload id + part number (big-endian u32) → part record.
    Parts,
    /// Entries of the cluster's replicated tables (`crate::cluster`): table name + 0x00 +
    /// partition key → encoded CRDT entry.
    Replicated,
    /// Hinted-handoff writes held for a down replica (`crate::cluster`): owner + table +
    /// partition key (each length-prefixed) → encoded hint.
    Hints,
    /// User id → user record (`crate::identity`, single node only; a cluster keeps users in
    /// a replicated table).
    Users,
    /// Access key id → access key record with its sealed secret (`crate::identity`).
    AccessKeys,
}

impl Table {
    const ALL: [Table; 8] = [
        Table::Buckets,
        Table::Objects,
        Table::Uploads,
        Table::Parts,
        Table::Replicated,
        Table::Hints,
        Table::Users,
        Table::AccessKeys,
    ];

    fn index(self) -> usize {
        match self {
            Table::Buckets => 0,
            Table::Objects => 1,
            Table::Uploads => 2,
            Table::Parts => 3,
            Table::Replicated => 4,
            Table::Hints => 5,
            Table::Users => 6,
            Table::AccessKeys => 7,
        }
    }

    fn tree_name(self) -> &'static str {
        match self {
            Table::Buckets => "buckets",
            Table::Objects => "objects",
            Table::Uploads => "uploads",
            Table::Parts => "parts",
            Table::Replicated => "replicated",
            Table::Hints => "hints",
            Table::Users => "users",
            Table::AccessKeys => "access_keys",
        }
    }
}

/// Failures of the key-value engine.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The engine failed to read or write its files (disk full, EIO, ...).
    #[error("metadata engine I/O: {0}")]
    Io(#[source] io::Error),
    /// Any other engine failure (corruption, unsupported use, engine bug).
    #[error("metadata engine: {0}")]
    Engine(String),
    /// A transaction body asked to abort; nothing was written.
    #[error("transaction aborted")]
    Aborted,
}

impl From<sled::Error> for KvError {
    fn from(err: sled::Error) -> Self {
        match err {
            sled::Error::Io(io_err) => KvError::Io(io_err),
            other => KvError::Engine(other.to_string()),
        }
    }
}

/// A value (or key) handed out by the engine; cheap to clone, reads as a byte slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvBytes(sled::IVec);

impl Deref for KvBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// One ordered scan: `(key, value)` pairs in ascending byte order of the key.
pub type KvIter = Box<dyn Iterator<Item = Result<(KvBytes, KvBytes), KvError>> + Send>;

/// A set of writes over several tables applied atomically by [`KvStore::apply`].
#[derive(Debug, Default)]
pub struct WriteBatch {
    ops: Vec<(Table, Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteBatch {
    /// Adds an insert (or overwrite) of `key` in `table`.
    // Part of the engine contract; the store itself only batches removals so far.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn insert(&mut self, table: Table, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push((table, key, Some(value)));
    }

    /// Adds a removal of `key` from `table`.
    pub fn remove(&mut self, table: Table, key: Vec<u8>) {
        self.ops.push((table, key, None));
    }

    /// Whether the batch holds no writes.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// The view a transaction body reads and writes through. Reads see the body's own writes.
pub trait KvTxn {
    /// Reads `key` from `table`.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<KvBytes>, KvError>;
    /// Writes `value` at `key` when the transaction commits.
    fn insert(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), KvError>;
    /// Removes `key` when the transaction commits.
    fn remove(&self, table: Table, key: &[u8]) -> Result<(), KvError>;
}

/// The body of a transaction. It may run several times (the engine retries on conflicts), so it
/// must not have effects outside the transaction other than recording its latest outcome.
pub type TxnBody<'a> = dyn FnMut(&dyn KvTxn) -> Result<(), KvError> + 'a;

/// The narrow interface the metadata layer needs from an ordered key-value engine.
pub trait KvStore: Send + Sync + 'static {
    /// Reads one key.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<KvBytes>, KvError>;
    /// Writes one key (not yet durable: see [`KvStore::flush`]).
    // Part of the engine contract; the store writes through transactions so far.
    #[cfg_attr(not(test), allow(dead_code))]
    fn insert(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), KvError>;
    /// Removes one key.
    fn remove(&self, table: Table, key: &[u8]) -> Result<(), KvError>;
    /// Applies all writes of the batch atomically: all or none become visible.
    fn apply(&self, batch: WriteBatch) -> Result<(), KvError>;
    /// Runs `body` as a serializable transaction over all tables. A body returning
    /// `Err(KvError::Aborted)` aborts without writing; the error is returned.
    fn transact(&self, body: &mut TxnBody<'_>) -> Result<(), KvError>;
    /// Scans `table` from `start` upwards, in key order, to the end of the table.
    fn scan_from(&self, table: Table, start: Bound<Vec<u8>>) -> KvIter;
    /// Makes every write done so far durable. Concurrent calls share the engine's fsyncs.
    fn flush(&self) -> Pin<Box<dyn Future<Output = Result<(), KvError>> + Send + '_>>;
    /// Bytes the engine occupies on disk.
    fn size_on_disk(&self) -> Result<u64, KvError>;
}

/// Runs `body` in a transaction and returns its result: `Ok` commits, `Err` aborts and is
/// returned as is. The body may run more than once.
pub fn transaction<T, E>(
    kv: &dyn KvStore,
    mut body: impl FnMut(&dyn KvTxn) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<KvError>,
{
    let mut outcome: Option<Result<T, E>> = None;
    let run = kv.transact(&mut |txn| {
        let result = body(txn);
        let failed = result.is_err();
        outcome = Some(result);
        if failed {
            Err(KvError::Aborted)
        } else {
            Ok(())
        }
    });
    match (run, outcome) {
        (Ok(()), Some(result)) | (Err(KvError::Aborted), Some(result)) => result,
        (Err(err), _) => Err(err.into()),
        (Ok(()), None) => Err(KvError::Engine("transaction body never ran".into()).into()),
    }
}

/// sled's page cache. Its default (1 GiB) lets a burst of small objects (bodies inline) grow the
/// node past its memory budget; 64 MiB keeps hot metadata cached and the node well under 200 MiB.
const CACHE_CAPACITY: u64 = 64 * 1024 * 1024;

/// How often a poisoned database is tried to be reopened.
const REOPEN_INTERVAL: Duration = Duration::from_secs(1);

/// [`KvStore`] over one `sled` database with a tree per [`Table`].
///
/// # Recovering from a failed write
///
/// sled 0.34 remembers the first failed log write (a full disk, an I/O error) as a global
/// error and refuses every later write until the database is opened again, even once the
/// disk has room. So a failed write *poisons* this store: the next operation at least
/// [`REOPEN_INTERVAL`] later closes the database and opens it again (sled replays its log,
/// keeping every write a flush made durable), provided no scan or flush still holds the old
/// one (sled locks its files). Until that succeeds, operations report the original error.
pub struct SledKv {
    dir: PathBuf,
    /// The open database; `None` only while a reopen failed (every operation then fails).
    engine: RwLock<Option<Arc<SledEngine>>>,
    /// Set by a failed write; cleared by a successful reopen.
    poisoned: AtomicBool,
    /// When a reopen was last tried.
    last_reopen: Mutex<Option<Instant>>,
}

/// One open sled database and its trees.
struct SledEngine {
    db: sled::Db,
    trees: [sled::Tree; 8],
}

impl SledEngine {
    fn open(dir: &Path) -> Result<SledEngine, KvError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_CAPACITY)
            .open()?;
        let open = |table: Table| db.open_tree(table.tree_name());
        let trees = [
            open(Table::ALL[0])?,
            open(Table::ALL[1])?,
            open(Table::ALL[2])?,
            open(Table::ALL[3])?,
            open(Table::ALL[4])?,
            open(Table::ALL[5])?,
            open(Table::ALL[6])?,
            open(Table::ALL[7])?,
        ];
        Ok(SledEngine { db, trees })
    }

    fn tree(&self, table: Table) -> &sled::Tree {
        &self.trees[table.index()]
    }
}

impl SledKv {
    /// Opens (or creates) the database in `dir`. Only one process may hold it.
    pub fn open(dir: &Path) -> Result<SledKv, KvError> {
        let engine = SledEngine::open(dir)?;
        Ok(SledKv {
            dir: dir.to_path_buf(),
            engine: RwLock::new(Some(Arc::new(engine))),
            poisoned: AtomicBool::new(false),
            last_reopen: Mutex::new(None),
        })
    }

    /// The open database, reopening it first if a write failed since.
    fn engine(&self) -> Result<Arc<SledEngine>, KvError> {
        if self.poisoned.load(Ordering::Acquire) {
            self.try_reopen();
        }
        self.engine
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .ok_or_else(|| {
                KvError::Engine(
                    "the metadata database is closed after a failed write; reopening".into(),
                )
            })
    }

    /// Passes `result` on, poisoning the store if it is an I/O failure.
    fn checked<T>(&self, result: Result<T, KvError>) -> Result<T, KvError> {
        if let Err(KvError::Io(err)) = &result {
            if !self.poisoned.swap(true, Ordering::AcqRel) {
                tracing::error!(error = %err, dir = %self.dir.display(), "metadata write failed: the database will be reopened");
            }
        }
        result
    }

    /// Closes and reopens the database, at most every [`REOPEN_INTERVAL`], and only when
    /// nothing else holds it.
    fn try_reopen(&self) {
        let Ok(mut last) = self.last_reopen.try_lock() else {
            return; // another thread is at it
        };
        if last.is_some_and(|at| at.elapsed() < REOPEN_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        let mut slot = self
            .engine
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(engine) = slot.as_ref() {
            if Arc::strong_count(engine) > 1 {
                return; // a scan or flush still uses it: next time
            }
        }
        // sled holds a lock on its files until the last handle is gone.
        drop(slot.take());
        match SledEngine::open(&self.dir) {
            Ok(engine) => {
                *slot = Some(Arc::new(engine));
                self.poisoned.store(false, Ordering::Release);
                tracing::warn!(dir = %self.dir.display(), "metadata database reopened after a failed write");
            }
            Err(err) => {
                tracing::error!(error = %err, dir = %self.dir.display(), "reopening the metadata database failed; retrying");
            }
        }
    }
}

/// The per-attempt view of a sled transaction over all eight trees.
struct SledTxn<'a> {
    trees: &'a (
        sled::transaction::TransactionalTree,
        sled::transaction::TransactionalTree,
        sled::transaction::TransactionalTree,
        sled::transaction::TransactionalTree,
        sled::transaction::TransactionalTree,
        sled::transaction::TransactionalTree,
        sled::transaction::TransactionalTree,
        sled::transaction::TransactionalTree,
    ),
}

impl SledTxn<'_> {
    fn tree(&self, table: Table) -> &sled::transaction::TransactionalTree {
        match table {
            Table::Buckets => &self.trees.0,
            Table::Objects => &self.trees.1,
            Table::Uploads => &self.trees.2,
            Table::Parts => &self.trees.3,
            Table::Replicated => &self.trees.4,
            Table::Hints => &self.trees.5,
            Table::Users => &self.trees.6,
            Table::AccessKeys => &self.trees.7,
        }
    }
}

fn txn_error(err: sled::transaction::UnabortableTransactionError) -> KvError {
    match err {
        sled::transaction::UnabortableTransactionError::Storage(e) => e.into(),
        // Reads in sled 0.34 retry internally; a conflict here is reported as an engine error.
        other => KvError::Engine(other.to_string()),
    }
}

impl KvTxn for SledTxn<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<KvBytes>, KvError> {
        let value = self.tree(table).get(key).map_err(txn_error)?;
        Ok(value.map(KvBytes))
    }

    fn insert(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), KvError> {
        self.tree(table).insert(key, value).map_err(txn_error)?;
        Ok(())
    }

    fn remove(&self, table: Table, key: &[u8]) -> Result<(), KvError> {
        self.tree(table).remove(key).map_err(txn_error)?;
        Ok(())
    }
}

impl KvStore for SledKv {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<KvBytes>, KvError> {
        let engine = self.engine()?;
        let value = engine.tree(table).get(key).map_err(KvError::from);
        Ok(self.checked(value)?.map(KvBytes))
    }

    fn insert(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), KvError> {
        let engine = self.engine()?;
        let written = engine.tree(table).insert(key, value).map_err(KvError::from);
        self.checked(written).map(drop)
    }

    fn remove(&self, table: Table, key: &[u8]) -> Result<(), KvError> {
        let engine = self.engine()?;
        let removed = engine.tree(table).remove(key).map_err(KvError::from);
        self.checked(removed).map(drop)
    }

    fn apply(&self, batch: WriteBatch) -> Result<(), KvError> {
        self.transact(&mut |txn| {
            for (table, key, value) in &batch.ops {
                match value {
                    Some(value) => txn.insert(*table, key, value)?,
                    None => txn.remove(*table, key)?,
                }
            }
            Ok(())
        })
    }

    fn transact(&self, body: &mut TxnBody<'_>) -> Result<(), KvError> {
        use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
        let engine = self.engine()?;
        // sled wants an `Fn`; the body is `FnMut` and runs once per attempt, never re-entrantly.
        let body = RefCell::new(body);
        let trees = (
            &engine.trees[0],
            &engine.trees[1],
            &engine.trees[2],
            &engine.trees[3],
            &engine.trees[4],
            &engine.trees[5],
            &engine.trees[6],
            &engine.trees[7],
        );
        let result: Result<(), TransactionError<KvError>> = trees.transaction(|view| {
            let txn = SledTxn { trees: view };
            let mut body = body.borrow_mut();
            (*body)(&txn).map_err(ConflictableTransactionError::Abort)
        });
        self.checked(match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(err)) => Err(err),
            Err(TransactionError::Storage(err)) => Err(err.into()),
        })
    }

    fn scan_from(&self, table: Table, start: Bound<Vec<u8>>) -> KvIter {
        let engine = match self.engine() {
            Ok(engine) => engine,
            Err(err) => return Box::new(std::iter::once(Err(err))),
        };
        let iter = engine
            .tree(table)
            .range::<Vec<u8>, _>((start, Bound::Unbounded));
        // The iterator keeps the engine counted as in use, so it is not reopened under it.
        Box::new(iter.map(move |item| {
            let _in_use = &engine;
            item.map(|(key, value)| (KvBytes(key), KvBytes(value)))
                .map_err(KvError::from)
        }))
    }

    fn flush(&self) -> Pin<Box<dyn Future<Output = Result<(), KvError>> + Send + '_>> {
        // sled's own `flush_async` runs on sled's small I/O pool, and with 0.34.7 it can
        // deadlock against a transaction waiting on the same lock (spacejam/sled#1308: every
        // sled thread stuck in flush, the node frozen). A synchronous flush on a tokio blocking
        // thread never occupies sled's pool; concurrent flushes still share one fsync, because
        // sled makes the whole log stable up to the newest write and wakes every waiter.
        Box::pin(async move {
            let engine = self.engine()?;
            let flushed = tokio::task::spawn_blocking(move || engine.db.flush())
                .await
                .map_err(|err| KvError::Engine(format!("flush task failed: {err}")))?;
            self.checked(flushed.map_err(KvError::from)).map(drop)
        })
    }

    fn size_on_disk(&self) -> Result<u64, KvError> {
        Ok(self.engine()?.db.size_on_disk()?)
    }
}

/// Scans the keys of `table` that start with `prefix`, in order.
pub fn scan_prefix(kv: &dyn KvStore, table: Table, prefix: &[u8]) -> KvIter {
    let prefix_owned = prefix.to_vec();
    let iter = kv.scan_from(table, Bound::Included(prefix.to_vec()));
    Box::new(iter.take_while(move |item| match item {
        Ok((key, _)) => key.starts_with(&prefix_owned),
        Err(_) => true,
    }))
}

/// The smallest key greater than every key that starts with `prefix`, or `None` when no such
/// key exists (the prefix is all 0xFF).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_temp() -> (tempfile::TempDir, SledKv) {
        let dir = tempfile::tempdir().unwrap();
        let kv = SledKv::open(&dir.path().join("meta")).unwrap();
        (dir, kv)
    }

    fn keys(iter: KvIter) -> Vec<Vec<u8>> {
        iter.map(|item| item.unwrap().0.to_vec()).collect()
    }

    #[test]
    fn point_operations_are_per_table() {
        let (_dir, kv) = open_temp();
        kv.insert(Table::Objects, b"k", b"v1").unwrap();
        kv.insert(Table::Parts, b"k", b"v2").unwrap();
        assert_eq!(&*kv.get(Table::Objects, b"k").unwrap().unwrap(), b"v1");
        assert_eq!(&*kv.get(Table::Parts, b"k").unwrap().unwrap(), b"v2");
        assert!(kv.get(Table::Buckets, b"k").unwrap().is_none());
        kv.remove(Table::Objects, b"k").unwrap();
        assert!(kv.get(Table::Objects, b"k").unwrap().is_none());
        assert!(kv.get(Table::Parts, b"k").unwrap().is_some());
    }

    #[test]
    fn scans_are_ordered_and_bounded_by_prefix() {
        let (_dir, kv) = open_temp();
        for key in [&b"b\0z"[..], b"a\0b", b"a\0a", b"a\x01", b"b\0a"] {
            kv.insert(Table::Objects, key, b"").unwrap();
        }
        let all = keys(kv.scan_from(Table::Objects, Bound::Unbounded));
        assert_eq!(
            all,
            vec![
                b"a\0a".to_vec(),
                b"a\0b".to_vec(),
                b"a\x01".to_vec(),
                b"b\0a".to_vec(),
                b"b\0z".to_vec()
            ]
        );
        let in_a = keys(scan_prefix(&kv, Table::Objects, b"a\0"));
        assert_eq!(in_a, vec![b"a\0a".to_vec(), b"a\0b".to_vec()]);
        let after = keys(kv.scan_from(Table::Objects, Bound::Excluded(b"a\x01".to_vec())));
        assert_eq!(after, vec![b"b\0a".to_vec(), b"b\0z".to_vec()]);
    }

    #[test]
    fn batch_applies_across_tables_atomically() {
        let (_dir, kv) = open_temp();
        kv.insert(Table::Uploads, b"u", b"x").unwrap();
        let mut batch = WriteBatch::default();
        batch.insert(Table::Objects, b"o".to_vec(), b"1".to_vec());
        batch.remove(Table::Uploads, b"u".to_vec());
        assert!(!batch.is_empty());
        kv.apply(batch).unwrap();
        assert!(kv.get(Table::Objects, b"o").unwrap().is_some());
        assert!(kv.get(Table::Uploads, b"u").unwrap().is_none());
    }

    #[test]
    fn aborted_transaction_writes_nothing_and_returns_the_body_error() {
        let (_dir, kv) = open_temp();
        let result: Result<(), KvError> = transaction(&kv, |txn| {
            txn.insert(Table::Buckets, b"b", b"1")?;
            Err(KvError::Engine("refused".into()))
        });
        assert!(matches!(result, Err(KvError::Engine(reason)) if reason == "refused"));
        assert!(kv.get(Table::Buckets, b"b").unwrap().is_none());

        let value: Result<u32, KvError> = transaction(&kv, |txn| {
            assert!(txn.get(Table::Buckets, b"b")?.is_none());
            txn.insert(Table::Buckets, b"b", b"1")?;
            // Reads see the transaction's own writes.
            assert!(txn.get(Table::Buckets, b"b")?.is_some());
            Ok(7)
        });
        assert_eq!(value.unwrap(), 7);
        assert!(kv.get(Table::Buckets, b"b").unwrap().is_some());
    }

    #[test]
    fn flushed_writes_survive_reopen_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta");
        {
            let kv = SledKv::open(&path).unwrap();
            kv.insert(Table::Objects, b"k1", b"v1").unwrap();
            kv.insert(Table::Parts, b"k2", b"v2").unwrap();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(kv.flush()).unwrap();
            assert!(kv.size_on_disk().unwrap() > 0);
        }
        let kv = SledKv::open(&path).unwrap();
        assert_eq!(&*kv.get(Table::Objects, b"k1").unwrap().unwrap(), b"v1");
        assert_eq!(&*kv.get(Table::Parts, b"k2").unwrap().unwrap(), b"v2");
    }

    #[test]
    fn prefix_end_skips_every_key_with_the_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
    }

    #[test]
    fn a_failed_write_reopens_the_database_once_nothing_uses_it() {
        let (_dir, kv) = open_temp();
        kv.insert(Table::Objects, b"before", b"durable").unwrap();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(kv.flush())
            .unwrap();
        let first = Arc::as_ptr(&kv.engine().unwrap());
        let mut scan = kv.scan_from(Table::Objects, Bound::Unbounded);

        // What sled answers once a log write failed (ENOSPC): the store is poisoned.
        let full = io::Error::from_raw_os_error(28);
        assert!(kv.checked::<()>(Err(KvError::Io(full))).is_err());
        assert!(kv.poisoned.load(Ordering::Acquire));

        // A scan in progress holds the database: no reopen under it.
        assert_eq!(Arc::as_ptr(&kv.engine().unwrap()), first);
        assert!(kv.poisoned.load(Ordering::Acquire));
        assert!(scan.next().is_some());
        drop(scan);

        // Not again within the interval (one attempt was just made); after it, the database
        // is opened anew with every durable write, and writes work.
        assert_eq!(Arc::as_ptr(&kv.engine().unwrap()), first);
        std::thread::sleep(REOPEN_INTERVAL);
        let reopened = kv.engine().unwrap();
        assert_ne!(Arc::as_ptr(&reopened), first);
        drop(reopened);
        assert!(!kv.poisoned.load(Ordering::Acquire));
        assert_eq!(
            &*kv.get(Table::Objects, b"before").unwrap().unwrap(),
            b"durable"
        );
        kv.insert(Table::Objects, b"after", b"works").unwrap();
        assert_eq!(
            &*kv.get(Table::Objects, b"after").unwrap().unwrap(),
            b"works"
        );
    }

    #[test]
    fn other_errors_do_not_poison() {
        let (_dir, kv) = open_temp();
        assert!(kv.checked::<()>(Err(KvError::Aborted)).is_err());
        assert!(kv
            .checked::<()>(Err(KvError::Engine("bug".into())))
            .is_err());
        assert!(!kv.poisoned.load(Ordering::Acquire));
    }
}
