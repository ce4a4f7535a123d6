//! A cluster node's usage counters, derived from its *local* copy of the objects table
//! ([`LocalObjectCounters`]).
//!
//! The counters are per (bucket, replica group): the group of a key is the set of its N
//! owners under the ring the counters were built with, and only keys this node owns are
//! counted. They change exactly where the stored entries change: the objects table's
//! [`LocalChangeObserver`] receives the old and new encoding of every entry this node
//! merges or purges (client writes, replication, hint replay, read repair, anti-entropy,
//! rebalancing) under that key's lock and adds the difference of the two entries'
//! contributions. A merge that changes nothing (the same entry arriving twice) is not
//! reported, and a changed entry is counted by what it *is*, not by how often it arrived, so
//! nothing is counted twice.
//!
//! The counters live in memory. They are rebuilt from a scan of the local table
//! ([`LocalObjectCounters::rebuild`]) at startup and whenever the ring changes (groups are
//! ring-relative); the scan runs while writes go on ([`LocalStore::walk_locked`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use ring::{NodeId, Ring};

use super::counters::Usage;
use crate::cluster::local::{LocalChangeObserver, LocalStore};
use crate::cluster::{TableError, TableSchema};
use crate::clustered::backend::schemas::{ObjectEntry, ObjectsSchema};
use crate::store::codec;

/// A replica group: the hash of its sorted member ids, and the members.
pub type GroupId = u64;

/// Per-bucket, per-group figures.
pub type GroupFigures = HashMap<String, HashMap<GroupId, Usage>>;

/// Figures counted under one ring.
struct Counting {
    ring: Arc<Ring>,
    figures: GroupFigures,
}

/// A rebuild in progress: keys up to `cursor` are counted in `figures`.
struct Rebuild {
    ring: Arc<Ring>,
    cursor: Option<Vec<u8>>,
    figures: GroupFigures,
}

struct State {
    live: Counting,
    rebuild: Option<Rebuild>,
    /// Whether `live` came from a completed scan (false until the first rebuild ends).
    ready: bool,
    /// Buckets whose figures changed since [`LocalObjectCounters::take_dirty`].
    dirty: HashSet<String>,
    /// Members of every group seen.
    groups: HashMap<GroupId, Vec<String>>,
}

/// This node's counters of the objects it holds as an owner.
pub struct LocalObjectCounters {
    local: NodeId,
    replicas: usize,
    state: Mutex<State>,
}

impl LocalObjectCounters {
    /// Counters of node `local` for a table replicated on `replicas` owners per key,
    /// empty (not ready) until [`LocalObjectCounters::rebuild`] ran.
    pub fn new(local: NodeId, replicas: usize, ring: Arc<Ring>) -> LocalObjectCounters {
        LocalObjectCounters {
            local,
            replicas,
            state: Mutex::new(State {
                live: Counting {
                    ring,
                    figures: GroupFigures::new(),
                },
                rebuild: None,
                ready: false,
                dirty: HashSet::new(),
                groups: HashMap::new(),
            }),
        }
    }

    /// Recounts from a scan of `local`'s objects table under `ring`, while writes go on,
    /// then swaps the result in. Blocking (a full scan): run it on a blocking thread.
    pub fn rebuild(&self, local: &LocalStore, ring: Arc<Ring>) -> Result<(), TableError> {
        self.lock().rebuild = Some(Rebuild {
            ring,
            cursor: None,
            figures: GroupFigures::new(),
        });
        let mut visit = |key: &[u8], value: &[u8]| {
            let mut state = self.lock();
            let state = &mut *state;
            if let Some(rebuild) = state.rebuild.as_mut() {
                let usage = contribution(value);
                if let Some((bucket, group, members)) = self.group_of(&rebuild.ring, key, usage) {
                    add(&mut rebuild.figures, bucket, group, usage);
                    state.groups.entry(group).or_insert(members);
                }
                rebuild.cursor = Some(key.to_vec());
            }
        };
        let mut finish = || {
            let mut state = self.lock();
            if let Some(rebuild) = state.rebuild.take() {
                let changed: Vec<String> = state
                    .live
                    .figures
                    .keys()
                    .chain(rebuild.figures.keys())
                    .cloned()
                    .collect();
                state.dirty.extend(changed);
                state.live = Counting {
                    ring: rebuild.ring,
                    figures: rebuild.figures,
                };
                state.ready = true;
            }
        };
        let outcome = local.walk_locked(ObjectsSchema::TABLE_NAME, &mut visit, &mut finish);
        if outcome.is_err() {
            self.lock().rebuild = None;
        }
        outcome
    }

    /// The layout version the figures are counted under, and whether a completed scan
    /// produced them.
    pub fn ring_version(&self) -> (u64, bool) {
        let state = self.lock();
        (state.live.ring.version(), state.ready)
    }

    /// Takes the buckets changed since the last call.
    pub fn take_dirty(&self) -> HashSet<String> {
        std::mem::take(&mut self.lock().dirty)
    }

    /// Marks buckets changed again (their publication failed).
    pub fn mark_dirty(&self, buckets: impl IntoIterator<Item = String>) {
        self.lock().dirty.extend(buckets);
    }

    /// `bucket`'s figures by group, with each group's members.
    pub fn bucket(&self, bucket: &str) -> Vec<(Vec<String>, Usage)> {
        let state = self.lock();
        let Some(groups) = state.live.figures.get(bucket) else {
            return Vec::new();
        };
        groups
            .iter()
            .filter_map(|(group, usage)| Some((state.groups.get(group)?.clone(), *usage)))
            .collect()
    }

    /// The sum of every figure: what this node's replicas account for.
    pub fn total(&self) -> Usage {
        let state = self.lock();
        let mut total = Usage::default();
        for usage in state.live.figures.values().flat_map(HashMap::values) {
            total.add(*usage);
        }
        total
    }

    /// The bucket of an encoded key, its group under `ring` and the group's members, if
    /// this node owns the key there; `None` when nothing is to be counted.
    fn group_of<'k>(
        &self,
        ring: &Ring,
        key: &'k [u8],
        usage: Usage,
    ) -> Option<(&'k str, GroupId, Vec<String>)> {
        if usage.is_zero() {
            return None;
        }
        let nul = key.iter().position(|byte| *byte == 0)?;
        let bucket = std::str::from_utf8(&key[..nul]).ok()?;
        let owners: Vec<&NodeId> = ring
            .preference_list(ring::hash_key(key))
            .iter()
            .take(self.replicas)
            .collect();
        if !owners.contains(&&self.local) {
            return None;
        }
        let mut members: Vec<String> = owners.iter().map(|id| id.as_str().to_owned()).collect();
        members.sort();
        Some((bucket, group_id(&members), members))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Figures only: a panic elsewhere leaves them as consistent as between two changes.
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl LocalChangeObserver for LocalObjectCounters {
    fn changed(&self, key: &[u8], before: Option<&[u8]>, after: Option<&[u8]>) {
        let delta = Usage::delta(
            before.map(contribution).unwrap_or_default(),
            after.map(contribution).unwrap_or_default(),
        );
        if delta.is_zero() {
            return;
        }
        let mut state = self.lock();
        let state = &mut *state;
        if let Some((bucket, group, members)) = self.group_of(&state.live.ring, key, delta) {
            add(&mut state.live.figures, bucket, group, delta);
            state.groups.entry(group).or_insert(members);
            state.dirty.insert(bucket.to_owned());
        }
        if let Some(rebuild) = state.rebuild.as_mut() {
            // Keys the scan has passed are counted here; later keys the scan will read.
            let scanned = rebuild
                .cursor
                .as_deref()
                .is_some_and(|cursor| key <= cursor);
            if scanned {
                if let Some((bucket, group, members)) = self.group_of(&rebuild.ring, key, delta) {
                    add(&mut rebuild.figures, bucket, group, delta);
                    state.groups.entry(group).or_insert(members);
                }
            }
        }
    }
}

/// What one stored entry contributes: one object of its size while live.
pub fn contribution(encoded: &[u8]) -> Usage {
    match codec::decode::<ObjectEntry>(encoded) {
        Ok(entry) => Usage::of_live(entry.version.value.map(|live| live.size)),
        Err(err) => {
            tracing::warn!("usage: an objects-table entry does not decode: {err}");
            Usage::default()
        }
    }
}

/// The id of the group of the sorted `members`.
pub fn group_id(members: &[String]) -> GroupId {
    ring::hash_key(members.join("\0").as_bytes())
}

fn add(figures: &mut GroupFigures, bucket: &str, group: GroupId, delta: Usage) {
    let groups = figures.entry(bucket.to_owned()).or_default();
    let usage = groups.entry(group).or_default();
    usage.add(delta);
    if usage.is_zero() {
        groups.remove(&group);
        if groups.is_empty() {
            figures.remove(bucket);
        }
    }
}
