//! The responder's side: answering a peer's exchange from a tree kept in a session.
//!
//! A session holds the tree built for `Open` so that the descent compares against one
//! snapshot; entries themselves are always read fresh from the store.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::groups::{build_group_tree, collect_leaves, Owners, RegisteredTable};
use super::protocol::{AeRequest, AeResponse, KeyedEntry};
use super::tree::{nodes_at, MerkleTree, DEPTH};
use super::AntiEntropy;
use crate::rpc::Payload;

/// A session unused this long is dropped: its initiator died or gave up (an exchange's calls
/// follow each other within one call timeout).
const SESSION_IDLE: Duration = Duration::from_secs(120);

/// Sessions kept at once. Each initiator syncs one group at a time, so a node sees at most
/// one session per peer; 64 covers large clusters and caps the memory of trees held.
const MAX_SESSIONS: usize = 64;

/// Inner nodes one `Children` request may ask about (a full level of the deepest inner level).
const MAX_NODES_PER_REQUEST: usize = 4096;

#[derive(Clone)]
struct Session {
    table: RegisteredTable,
    owners: Owners,
    layout_version: u64,
    tree: Arc<MerkleTree>,
    last_used: Instant,
}

/// The open sessions of a responder.
pub(super) struct Sessions {
    open: Mutex<HashMap<u64, Session>>,
}

impl Sessions {
    pub(super) fn new() -> Sessions {
        Sessions {
            open: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Session>> {
        self.open
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn insert(&self, session: Session) -> u64 {
        let id = uuid::Uuid::new_v4().as_u64_pair().0;
        let mut open = self.lock();
        open.retain(|_, kept| kept.last_used.elapsed() < SESSION_IDLE);
        while open.len() >= MAX_SESSIONS {
            let oldest = open
                .iter()
                .min_by_key(|(_, kept)| kept.last_used)
                .map(|(id, _)| *id);
            match oldest {
                Some(oldest) => open.remove(&oldest),
                None => break,
            };
        }
        open.insert(id, session);
        id
    }

    fn get(&self, id: u64) -> Result<Session, String> {
        let mut open = self.lock();
        let session = open
            .get_mut(&id)
            .ok_or_else(|| format!("no anti-entropy session {id} (expired?)"))?;
        session.last_used = Instant::now();
        Ok(session.clone())
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }
}

impl AntiEntropy {
    /// Answers one request of a peer's exchange.
    pub async fn handle_request(&self, request: AeRequest) -> AeResponse {
        let outcome = match request {
            AeRequest::Open {
                table,
                owners,
                layout_version,
                root,
            } => self.open(&table, owners, layout_version, root).await,
            AeRequest::Children {
                session,
                level,
                nodes,
            } => self.children(session, level, &nodes),
            AeRequest::FetchLeaves { session, leaves } => self.fetch(session, &leaves).await,
            AeRequest::Push { session, entries } => self.absorb(session, entries).await,
            AeRequest::Close { session } => {
                self.sessions.remove(session);
                Ok(AeResponse::Closed)
            }
        };
        outcome.unwrap_or_else(AeResponse::Failed)
    }

    async fn open(
        &self,
        table: &str,
        owners: Owners,
        layout_version: u64,
        root: [u8; 32],
    ) -> Result<AeResponse, String> {
        let table = self
            .registered(table)
            .ok_or_else(|| format!("anti-entropy does not cover table {table:?} here"))?;
        let ring = self.system.liveness().ring();
        if ring.version() != layout_version {
            return Err(format!(
                "layout version {layout_version} asked, this node is at {}",
                ring.version()
            ));
        }
        if !owners.contains(&self.system.liveness().local_id()) {
            return Err("this node is not an owner of the group".to_owned());
        }
        let kv = Arc::clone(&self.system.local().kv);
        let group = owners.clone();
        let tree =
            tokio::task::spawn_blocking(move || build_group_tree(&*kv, &table, &ring, &group))
                .await
                .map_err(|err| format!("tree scan: {err}"))?
                .map_err(|err| format!("tree scan: {err}"))?;
        if tree.root() == root {
            return Ok(AeResponse::InSync);
        }
        let children = tree.children(0, 0);
        let session = self.sessions.insert(Session {
            table,
            owners,
            layout_version,
            tree: Arc::new(tree),
            last_used: Instant::now(),
        });
        Ok(AeResponse::Diverged { session, children })
    }

    fn children(&self, session: u64, level: u8, nodes: &[u32]) -> Result<AeResponse, String> {
        let session = self.sessions.get(session)?;
        if level == 0 || level >= DEPTH || nodes.len() > MAX_NODES_PER_REQUEST {
            return Err(format!(
                "bad Children request: level {level}, {} nodes",
                nodes.len()
            ));
        }
        if let Some(node) = nodes.iter().find(|&&node| node >= nodes_at(level)) {
            return Err(format!("no node {node} at level {level}"));
        }
        Ok(AeResponse::Children(
            nodes
                .iter()
                .map(|&node| session.tree.children(level, node))
                .collect(),
        ))
    }

    /// Reads the entries of the session's group in `leaves`, and answers with as many whole
    /// leaves (in the asked order, at least one) as fit in `message_bytes`.
    async fn fetch(&self, session: u64, leaves: &[u32]) -> Result<AeResponse, String> {
        let session = self.current(session)?;
        let wanted: BTreeSet<u32> = leaves.iter().copied().collect();
        let kv = Arc::clone(&self.system.local().kv);
        let ring = self.system.liveness().ring();
        let (table, owners) = (session.table, session.owners.clone());
        let found = tokio::task::spawn_blocking(move || {
            collect_leaves(&*kv, &table, &ring, &owners, &wanted)
        })
        .await
        .map_err(|err| format!("leaf scan: {err}"))?
        .map_err(|err| format!("leaf scan: {err}"))?;
        let mut by_leaf: BTreeMap<u32, Vec<KeyedEntry>> = BTreeMap::new();
        for (leaf, key, entry) in found {
            by_leaf
                .entry(leaf)
                .or_default()
                .push((Payload::new(key), Payload::new(entry)));
        }
        let mut entries = Vec::new();
        let mut size = 0;
        let mut leaves_done = 0u32;
        for leaf in leaves {
            let leaf_entries = by_leaf.remove(leaf).unwrap_or_default();
            let leaf_size: usize = leaf_entries.iter().map(|(k, e)| k.len() + e.len()).sum();
            if leaves_done > 0 && size + leaf_size > self.config.message_bytes {
                break;
            }
            size += leaf_size;
            entries.extend(leaf_entries);
            leaves_done += 1;
        }
        Ok(AeResponse::Entries {
            leaves_done,
            entries,
        })
    }

    /// Merges pushed entries that belong to the session's group; others are refused, so a
    /// confused peer cannot place entries on a node that does not own them.
    async fn absorb(&self, session: u64, entries: Vec<KeyedEntry>) -> Result<AeResponse, String> {
        let session = self.current(session)?;
        let ring = self.system.liveness().ring();
        for (_, entry) in &entries {
            let owners = session
                .table
                .owners_of_entry(&ring, entry)
                .map_err(|err| format!("pushed entry: {err}"))?;
            if owners != session.owners {
                return Err("pushed entry belongs to another group".to_owned());
            }
        }
        let changed = self
            .merge_entries(session.table.name, entries)
            .await
            .map_err(|err| format!("merge: {err}"))?;
        Ok(AeResponse::Pushed {
            changed: u32::try_from(changed).unwrap_or(u32::MAX),
        })
    }

    /// The session, provided the layout has not changed since it was opened.
    fn current(&self, id: u64) -> Result<Session, String> {
        let session = self.sessions.get(id)?;
        let version = self.system.liveness().ring().version();
        if version != session.layout_version {
            self.sessions.remove(id);
            return Err(format!(
                "layout changed from version {} to {version} during the exchange",
                session.layout_version
            ));
        }
        Ok(session)
    }
}
