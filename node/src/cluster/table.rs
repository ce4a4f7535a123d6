//! [`Table`]: the coordinator's handle on one replicated table.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ring::NodeId;

use super::error::{Operation, TableError};
use super::fanout::{self, HintHolders, ReadPlan, WritePlan};
use super::rebalance;
use super::schema::{EntryMerger, Replication, SchemaMerger, TableSchema};
use super::system::TableSystem;
use crate::rpc::Payload;
use crate::store::codec;

/// Whether hinted writes count toward the write quorum W.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuorumPolicy {
    /// Dynamo's sloppy quorum: a write held as a hint by a healthy node outside the
    /// preference list counts as one acknowledgement, so writes go on while up to N - 1 of
    /// a key's owners are down (reads still need R owners).
    Sloppy,
    /// Only owners' acknowledgements count; hints are still placed for failed owners, but a
    /// write fails unless W owners stored it. Reads after a successful write then always
    /// meet a replica holding it (W + R > N).
    Strict,
}

/// Running totals of what this node's table work met since it started: coordinated writes
/// and reads that missed their quorum, and hints delivered to their owners. One per node (on
/// the [`TableSystem`]), plain atomics so counting costs no lock on the request path; the
/// cluster status and `/metrics` read them.
#[derive(Debug, Default)]
pub struct TableCounters {
    write_quorum_failures: AtomicU64,
    read_quorum_failures: AtomicU64,
    hints_delivered: AtomicU64,
}

impl TableCounters {
    /// Counts one coordinated `operation` that could not reach its quorum.
    pub(crate) fn count_quorum_failure(&self, operation: Operation) {
        let counter = match operation {
            Operation::Write => &self.write_quorum_failures,
            Operation::Read => &self.read_quorum_failures,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one hint acknowledged by its owner and deleted.
    pub(crate) fn count_hint_delivered(&self) {
        self.hints_delivered.fetch_add(1, Ordering::Relaxed);
    }

    /// Coordinated `operation`s that could not reach their quorum (W or R).
    pub fn quorum_failures(&self, operation: Operation) -> u64 {
        match operation {
            Operation::Write => self.write_quorum_failures.load(Ordering::Relaxed),
            Operation::Read => self.read_quorum_failures.load(Ordering::Relaxed),
        }
    }

    /// Hints this node delivered to their owners and deleted.
    pub fn hints_delivered(&self) -> u64 {
        self.hints_delivered.load(Ordering::Relaxed)
    }
}

/// An encoded key and its decoded entry, as listed by [`Table::local_scan`].
pub type LocalEntry<S> = (Vec<u8>, <S as TableSchema>::Entry);

/// A replicated table of schema `S`, as seen by one node, which coordinates the operations
/// it is asked for. Cheap to clone.
pub struct Table<S: TableSchema> {
    system: Arc<TableSystem>,
    replication: Replication,
    policy: QuorumPolicy,
    merger: Arc<dyn EntryMerger>,
    _schema: PhantomData<fn() -> S>,
}

impl<S: TableSchema> Clone for Table<S> {
    fn clone(&self) -> Self {
        Table {
            system: Arc::clone(&self.system),
            replication: self.replication,
            policy: self.policy,
            merger: Arc::clone(&self.merger),
            _schema: PhantomData,
        }
    }
}

impl<S: TableSchema> Table<S> {
    /// The table `S::TABLE_NAME` of `system`, replicated as `replication`, with a sloppy
    /// quorum. Registers the schema so this node answers peers' requests for the table.
    pub fn new(system: Arc<TableSystem>, replication: Replication) -> Result<Table<S>, TableError> {
        replication.validate(S::TABLE_NAME)?;
        let merger: Arc<dyn EntryMerger> = Arc::new(SchemaMerger::<S>::new());
        system.register(S::TABLE_NAME, Arc::clone(&merger))?;
        Ok(Table {
            system,
            replication,
            policy: QuorumPolicy::Sloppy,
            merger,
            _schema: PhantomData,
        })
    }

    /// The same table with another quorum policy.
    pub fn with_quorum_policy(mut self, policy: QuorumPolicy) -> Table<S> {
        self.policy = policy;
        self
    }

    /// Writes `entry` (merged into whatever the replicas hold) to its key's replicas and
    /// returns once the write quorum is durable. Owners that fail get a hinted write on
    /// another node, replayed to them when they are back.
    pub async fn insert(&self, entry: &S::Entry) -> Result<(), TableError> {
        let key = S::key_of(entry);
        let ring = self.system.liveness().ring();
        let (owners, holders, write_quorum) = match self.replication {
            Replication::Sharded {
                n, write_quorum, ..
            } => {
                let hash = S::hash_key(&key);
                let owners: Vec<NodeId> =
                    ring.preference_list(hash).iter().take(n).cloned().collect();
                let holders = HintHolders::Ring {
                    candidates: ring.handoff_candidates(hash),
                    count_toward_quorum: self.policy == QuorumPolicy::Sloppy,
                };
                (owners, holders, write_quorum)
            }
            Replication::FullCopy => {
                let owners = ring.nodes().to_vec();
                let majority = owners.len() / 2 + 1;
                let holders = HintHolders::Coordinator(self.system.liveness().local_id());
                (owners, holders, majority)
            }
        };
        if owners.is_empty() {
            return Err(TableError::EmptyRing {
                layout_version: ring.version(),
            });
        }
        // A layout smaller than N (a one- or two-node cluster) cannot give more
        // acknowledgements than it has owners.
        let write_quorum = write_quorum.clamp(1, owners.len());
        let plan = WritePlan {
            table: S::TABLE_NAME,
            key: Payload::new(S::encode_key(&key)),
            entry: Payload::new(codec::encode(entry)?),
            owners,
            holders,
            write_quorum,
        };
        fanout::write(&self.system, plan).await
    }

    /// Reads `key` from a read quorum of its replicas and returns the merge of their
    /// answers (`None` if none holds it). Replicas found stale or empty are repaired in the
    /// background.
    pub async fn get(&self, key: &S::Key) -> Result<Option<S::Entry>, TableError> {
        let ring = self.system.liveness().ring();
        let local = self.system.liveness().local_id();
        let (replicas, read_quorum) = match self.replication {
            Replication::Sharded { n, read_quorum, .. } => {
                let list = ring.preference_list(S::hash_key(key));
                (
                    list.iter().take(n).cloned().collect::<Vec<_>>(),
                    read_quorum,
                )
            }
            // A member reads its own full copy; a node outside the layout asks everyone and
            // takes the first answer.
            Replication::FullCopy if ring.nodes().contains(&local) => (vec![local], 1),
            Replication::FullCopy => (ring.nodes().to_vec(), 1),
        };
        if replicas.is_empty() {
            return Err(TableError::EmptyRing {
                layout_version: ring.version(),
            });
        }
        let read_quorum = read_quorum.clamp(1, replicas.len());
        let encoded_key = Payload::new(S::encode_key(key));
        let plan = || ReadPlan {
            table: S::TABLE_NAME,
            key: encoded_key.clone(),
            replicas: replicas.clone(),
            read_quorum,
        };
        let mut merged = fanout::read(&self.system, plan(), Arc::clone(&self.merger)).await?;
        // During a rebalance the new owners may not have the key yet: ask the old ones.
        if let (None, Replication::Sharded { n, .. }) = (&merged, self.replication) {
            if self.system.previous_ring().is_some() {
                merged = rebalance::read_previous_owners(
                    &self.system,
                    S::TABLE_NAME,
                    &encoded_key,
                    S::hash_key(key),
                    n,
                    &replicas,
                    &*self.merger,
                )
                .await?;
                if merged.is_none() {
                    // Moved (and dropped by the old owners) between the two reads.
                    merged = fanout::read(&self.system, plan(), Arc::clone(&self.merger)).await?;
                }
            }
        }
        Ok(merged.map(|bytes| codec::decode(&bytes)).transpose()?)
    }

    /// The nodes that own `key` under the current ring (the debug view's answer to "where
    /// does this live").
    pub fn replicas_of(&self, key: &S::Key) -> Vec<NodeId> {
        let ring = self.system.liveness().ring();
        match self.replication {
            Replication::Sharded { n, .. } => ring
                .preference_list(S::hash_key(key))
                .iter()
                .take(n)
                .cloned()
                .collect(),
            Replication::FullCopy => ring.nodes().to_vec(),
        }
    }

    /// This node's own copy of `key`, without asking anyone.
    pub fn local_get(&self, key: &S::Key) -> Result<Option<S::Entry>, TableError> {
        let bytes = self
            .system
            .local()
            .read(S::TABLE_NAME, &S::encode_key(key))?;
        Ok(bytes.map(|bytes| codec::decode(&bytes)).transpose()?)
    }

    /// Up to `limit` of this node's own entries, in encoded-key order, strictly after the
    /// encoded key `start_after` when given; each with its encoded key, which is the cursor
    /// of the next page. For background passes (block resync, tombstone purge) that walk
    /// what this node holds.
    pub fn local_scan(
        &self,
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<LocalEntry<S>>, TableError> {
        self.system
            .local()
            .scan_prefix(S::TABLE_NAME, &[], start_after, limit)?
            .into_iter()
            .map(|(key, bytes)| Ok((key, codec::decode(&bytes)?)))
            .collect()
    }

    /// Merges `entry` into this node's own copy only (durably); returns whether it changed.
    /// For anti-entropy and rebalancing, which decide themselves where entries go.
    pub async fn local_merge(&self, entry: &S::Entry) -> Result<bool, TableError> {
        let key = S::encode_key(&S::key_of(entry));
        let encoded = codec::encode(entry)?;
        self.system.merge_local(S::TABLE_NAME, &key, &encoded).await
    }

    /// How the table is replicated.
    pub fn replication(&self) -> Replication {
        self.replication
    }

    /// The table system the table works through (for background passes that send their own
    /// requests, such as the tombstone purge).
    pub(crate) fn system(&self) -> &Arc<TableSystem> {
        &self.system
    }
}
