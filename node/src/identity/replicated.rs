//! A cluster's users and keys: two full-copy replicated tables, `identity.users` and
//! `identity.keys`, whose entries are last-writer-wins registers ([`Lww`]).
//!
//! Every node holds every entry, so the S3 path reads its own copy without a round trip.
//! A write goes to every reachable node and succeeds at a majority of the layout; the other
//! nodes get it from hinted handoff or anti-entropy. Deleting a key writes a tombstone,
//! which must win over the older live versions still travelling, so tombstones are kept
//! (like the bucket table's: full-copy tables are never purged).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::records::{AccessKey, User, UserV1};
use super::store::{IdentityStore, WriteFuture};
use super::IdentityError;
use crate::cluster::{
    AntiEntropy, Crdt, Lww, Replication, Stamp, StampClock, Table, TableSchema, TableSystem,
};
use crate::store::codec::{decode_payload, CodecError, Record};

/// Entries read per page when listing a table.
const LIST_PAGE: usize = 1000;

/// One user (never a tombstone: deleted users keep a record, see
/// [`super::records::Status::Deleted`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEntry {
    /// The user id.
    pub id: String,
    /// The user's latest version.
    pub user: Lww<User>,
}

impl Crdt for UserEntry {
    fn merge(&mut self, other: &Self) {
        self.user.merge(&other.user);
    }
}

impl Record for UserEntry {
    const FORMAT_VERSION: u8 = 2;
    const NAME: &'static str = "cluster user";

    fn decode_older(version: u8, payload: &[u8]) -> Option<Result<Self, CodecError>> {
        (version == 1).then(|| {
            decode_payload::<UserEntryV1>(Self::NAME, payload).map(|old| UserEntry {
                id: old.id,
                user: Lww {
                    stamp: old.user.stamp,
                    value: old.user.value.map(User::from),
                },
            })
        })
    }
}

/// A user entry as format version 1 stored it (users before session revocation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct UserEntryV1 {
    id: String,
    user: Lww<UserV1>,
}

/// The users table: a full copy on every node.
pub struct UsersSchema;

impl TableSchema for UsersSchema {
    const TABLE_NAME: &'static str = "identity.users";
    type Entry = UserEntry;
    type Key = String;

    fn key_of(entry: &UserEntry) -> String {
        entry.id.clone()
    }

    fn encode_key(key: &String) -> Vec<u8> {
        key.as_bytes().to_vec()
    }
}

/// One access key (a tombstone once deleted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    /// The access key id.
    pub id: String,
    /// The key's latest version.
    pub key: Lww<AccessKey>,
}

impl Crdt for KeyEntry {
    fn merge(&mut self, other: &Self) {
        self.key.merge(&other.key);
    }
}

impl Record for KeyEntry {
    const FORMAT_VERSION: u8 = 1;
    const NAME: &'static str = "cluster access key";
}

/// The access keys table: a full copy on every node.
pub struct KeysSchema;

impl TableSchema for KeysSchema {
    const TABLE_NAME: &'static str = "identity.keys";
    type Entry = KeyEntry;
    type Key = String;

    fn key_of(entry: &KeyEntry) -> String {
        entry.id.clone()
    }

    fn encode_key(key: &String) -> Vec<u8> {
        key.as_bytes().to_vec()
    }
}

/// [`IdentityStore`] over the cluster's replicated tables.
pub struct ReplicatedIdentityStore {
    users: Table<UsersSchema>,
    keys: Table<KeysSchema>,
    /// Stamps this node's versions (node number: the ring hash of its id).
    clock: StampClock,
}

impl ReplicatedIdentityStore {
    /// The store of the node `system` belongs to. Registers both tables with `system`, so
    /// this node merges peers' writes from now on.
    pub fn new(system: &Arc<TableSystem>) -> Result<ReplicatedIdentityStore, IdentityError> {
        let users = Table::new(Arc::clone(system), Replication::FullCopy)?;
        let keys = Table::new(Arc::clone(system), Replication::FullCopy)?;
        Ok(ReplicatedIdentityStore {
            users,
            keys,
            clock: StampClock::new(ring::hash_key(
                system.liveness().local_id().as_str().as_bytes(),
            )),
        })
    }

    /// Has `anti_entropy` compare and repair both tables (the tables must exist: see
    /// [`ReplicatedIdentityStore::new`]).
    pub fn register_with(anti_entropy: &AntiEntropy) {
        anti_entropy.register::<UsersSchema>(Replication::FullCopy);
        anti_entropy.register::<KeysSchema>(Replication::FullCopy);
    }

    /// A stamp newer than `previous` (the version being replaced, if any) and than every
    /// stamp this node issued, so an update made here wins over what it read.
    fn next_stamp(&self, previous: Option<&Stamp>) -> Stamp {
        if let Some(previous) = previous {
            self.clock.observe(previous.hlc);
        }
        self.clock.next()
    }

    /// Every live value of this node's copy of `table`, in key order.
    fn scan<S, T>(
        table: &Table<S>,
        value: impl Fn(S::Entry) -> Option<T>,
    ) -> Result<Vec<T>, IdentityError>
    where
        S: TableSchema,
    {
        let mut out = Vec::new();
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            let page = table.local_scan(cursor.as_deref(), LIST_PAGE)?;
            let full = page.len() == LIST_PAGE;
            for (key, entry) in page {
                out.extend(value(entry));
                cursor = Some(key);
            }
            if !full {
                return Ok(out);
            }
        }
    }
}

impl IdentityStore for ReplicatedIdentityStore {
    fn user(&self, id: &str) -> Result<Option<User>, IdentityError> {
        let entry = self.users.local_get(&id.to_owned())?;
        Ok(entry.and_then(|entry| entry.user.value))
    }

    fn users(&self) -> Result<Vec<User>, IdentityError> {
        Self::scan(&self.users, |entry: UserEntry| entry.user.value)
    }

    fn key(&self, id: &str) -> Result<Option<AccessKey>, IdentityError> {
        let entry = self.keys.local_get(&id.to_owned())?;
        Ok(entry.and_then(|entry| entry.key.value))
    }

    fn keys(&self) -> Result<Vec<AccessKey>, IdentityError> {
        Self::scan(&self.keys, |entry: KeyEntry| entry.key.value)
    }

    fn put_user<'a>(&'a self, user: &'a User) -> WriteFuture<'a> {
        Box::pin(async move {
            let current = self.users.local_get(&user.id)?;
            let stamp = self.next_stamp(current.as_ref().map(|entry| &entry.user.stamp));
            let entry = UserEntry {
                id: user.id.clone(),
                user: Lww::new(stamp, user.clone()),
            };
            Ok(self.users.insert(&entry).await?)
        })
    }

    fn put_key<'a>(&'a self, key: &'a AccessKey) -> WriteFuture<'a> {
        Box::pin(async move {
            let current = self.keys.local_get(&key.id)?;
            let stamp = self.next_stamp(current.as_ref().map(|entry| &entry.key.stamp));
            let entry = KeyEntry {
                id: key.id.clone(),
                key: Lww::new(stamp, key.clone()),
            };
            Ok(self.keys.insert(&entry).await?)
        })
    }

    fn delete_key<'a>(&'a self, id: &'a str) -> WriteFuture<'a> {
        Box::pin(async move {
            let current = self.keys.local_get(&id.to_owned())?;
            let stamp = self.next_stamp(current.as_ref().map(|entry| &entry.key.stamp));
            let entry = KeyEntry {
                id: id.to_owned(),
                key: Lww::tombstone(stamp),
            };
            Ok(self.keys.insert(&entry).await?)
        })
    }
}
