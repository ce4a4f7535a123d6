//! Where users and keys are kept: the [`IdentityStore`] trait and its single-node
//! implementation over the metadata engine ([`KvIdentityStore`]).

use std::future::Future;
use std::ops::Bound;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use super::records::{AccessKey, User};
use super::IdentityError;
use crate::store::codec::{self, Record};
use crate::store::kv::{KvStore, SledKv, Table};

/// A write in progress; it resolves once the write is durable (single node) or acknowledged
/// by a majority (cluster).
pub type WriteFuture<'a> = Pin<Box<dyn Future<Output = Result<(), IdentityError>> + Send + 'a>>;

/// Users and access keys. Reads are synchronous and local (the S3 path looks a key up on
/// every request); writes are asynchronous.
pub trait IdentityStore: Send + Sync + 'static {
    /// The user `id` (any status), if it was ever created.
    fn user(&self, id: &str) -> Result<Option<User>, IdentityError>;
    /// Every user ever created (deleted ones included), in id order.
    fn users(&self) -> Result<Vec<User>, IdentityError>;
    /// The access key `id`, unless it does not exist or was deleted.
    fn key(&self, id: &str) -> Result<Option<AccessKey>, IdentityError>;
    /// Every access key, in id order.
    fn keys(&self) -> Result<Vec<AccessKey>, IdentityError>;
    /// Creates or replaces the user `user.id`.
    fn put_user<'a>(&'a self, user: &'a User) -> WriteFuture<'a>;
    /// Creates or replaces the access key `key.id`.
    fn put_key<'a>(&'a self, key: &'a AccessKey) -> WriteFuture<'a>;
    /// Deletes the access key `id` (no error if it does not exist).
    fn delete_key<'a>(&'a self, id: &'a str) -> WriteFuture<'a>;
}

/// A single node's users and keys: two tables of the metadata engine, keyed by id.
pub struct KvIdentityStore {
    kv: Arc<dyn KvStore>,
}

impl KvIdentityStore {
    /// The store over `kv`'s [`Table::Users`] and [`Table::AccessKeys`].
    pub fn new(kv: Arc<dyn KvStore>) -> KvIdentityStore {
        KvIdentityStore { kv }
    }

    /// The store in its own engine directory `dir` (created if missing).
    pub fn open(dir: &Path) -> Result<KvIdentityStore, IdentityError> {
        Ok(KvIdentityStore::new(Arc::new(SledKv::open(dir)?)))
    }

    fn read<R: Record>(&self, table: Table, id: &str) -> Result<Option<R>, IdentityError> {
        match self.kv.get(table, id.as_bytes())? {
            Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    fn read_all<R: Record>(&self, table: Table) -> Result<Vec<R>, IdentityError> {
        self.kv
            .scan_from(table, Bound::Unbounded)
            .map(|item| {
                let (_, value) = item?;
                Ok(codec::decode(&value)?)
            })
            .collect()
    }

    async fn write(
        &self,
        table: Table,
        id: &str,
        record: &impl Record,
    ) -> Result<(), IdentityError> {
        self.kv
            .insert(table, id.as_bytes(), &codec::encode(record)?)?;
        Ok(self.kv.flush().await?)
    }
}

impl IdentityStore for KvIdentityStore {
    fn user(&self, id: &str) -> Result<Option<User>, IdentityError> {
        self.read(Table::Users, id)
    }

    fn users(&self) -> Result<Vec<User>, IdentityError> {
        self.read_all(Table::Users)
    }

    fn key(&self, id: &str) -> Result<Option<AccessKey>, IdentityError> {
        self.read(Table::AccessKeys, id)
    }

    fn keys(&self) -> Result<Vec<AccessKey>, IdentityError> {
        self.read_all(Table::AccessKeys)
    }

    fn put_user<'a>(&'a self, user: &'a User) -> WriteFuture<'a> {
        Box::pin(self.write(Table::Users, &user.id, user))
    }

    fn put_key<'a>(&'a self, key: &'a AccessKey) -> WriteFuture<'a> {
        Box::pin(self.write(Table::AccessKeys, &key.id, key))
    }

    fn delete_key<'a>(&'a self, id: &'a str) -> WriteFuture<'a> {
        Box::pin(async move {
            self.kv.remove(Table::AccessKeys, id.as_bytes())?;
            Ok(self.kv.flush().await?)
        })
    }
}
