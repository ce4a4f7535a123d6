//! The acceptor: one durable state per instance, changed only under this module's lock and
//! flushed before any answer that depends on it leaves the node (a promise or acceptance
//! forgotten in a crash could let two values be chosen).

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{Ballot, InstanceId, PaxosRequest, PaxosResponse, ACCEPTOR_TABLE};
use crate::cluster::error::TableError;
use crate::cluster::local::{entry_key, LocalStore};
use crate::rpc::Payload;
use crate::store::codec::{self, Record};
use crate::store::kv::Table as KvTable;

/// Serialises the read-modify-write of acceptor states. Held only around one synchronous
/// get and insert (never across an await), so one lock for all instances costs nothing
/// noticeable at the rate buckets are created.
static STATE_LOCK: Mutex<()> = Mutex::new(());

/// What an acceptor remembers about one instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptorState {
    /// Highest ballot promised.
    pub promised: Option<Ballot>,
    /// Ballot and value of the last proposal accepted.
    pub accepted: Option<(Ballot, Vec<u8>)>,
    /// The chosen value, once a proposer announced it.
    pub chosen: Option<Vec<u8>>,
}

impl Record for AcceptorState {
    const FORMAT_VERSION: u8 = 1;
    const NAME: &'static str = "paxos acceptor state";
}

/// The engine key of an instance: length-prefixed key, then the big-endian instance number
/// (the key is opaque and may contain any byte).
fn state_key(id: &InstanceId) -> Vec<u8> {
    let key_len = u32::try_from(id.key.len()).unwrap_or(u32::MAX);
    let mut inner = Vec::with_capacity(4 + id.key.len() + 8);
    inner.extend_from_slice(&key_len.to_be_bytes());
    inner.extend_from_slice(&id.key);
    inner.extend_from_slice(&id.instance.to_be_bytes());
    entry_key(ACCEPTOR_TABLE, &inner)
}

/// This node's state for `id` (the default when it never heard of the instance).
pub fn read_state(local: &LocalStore, id: &InstanceId) -> Result<AcceptorState, TableError> {
    match local.kv.get(KvTable::Replicated, &state_key(id))? {
        Some(bytes) => Ok(codec::decode(&bytes)?),
        None => Ok(AcceptorState::default()),
    }
}

/// Applies `change` to the stored state of `id` atomically; writes back when `change`
/// returns `true`. Returns the state as it stands afterwards and whether it was written.
fn update_state(
    local: &LocalStore,
    id: &InstanceId,
    change: impl FnOnce(&mut AcceptorState) -> bool,
) -> Result<(AcceptorState, bool), TableError> {
    let db_key = state_key(id);
    let _guard = STATE_LOCK
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    let mut state = match local.kv.get(KvTable::Replicated, &db_key)? {
        Some(bytes) => codec::decode(&bytes)?,
        None => AcceptorState::default(),
    };
    let write = change(&mut state);
    if write {
        local
            .kv
            .insert(KvTable::Replicated, &db_key, &codec::encode(&state)?)?;
    }
    Ok((state, write))
}

/// Answers one proposer request from this node's durable state.
pub async fn handle(
    local: &LocalStore,
    request: PaxosRequest,
) -> Result<PaxosResponse, TableError> {
    let (response, wrote) = match request {
        PaxosRequest::Prepare { id, ballot } => {
            let (state, wrote) = update_state(local, &id, |state| {
                // Once the value is known there is nothing to protect: answer it as is.
                if state.chosen.is_some() || state.promised.is_some_and(|p| p > ballot) {
                    return false;
                }
                state.promised = Some(ballot);
                true
            })?;
            let response = match (state.chosen, state.promised) {
                (Some(chosen), _) => PaxosResponse::Promised {
                    accepted: None,
                    chosen: Some(Payload::new(chosen)),
                },
                (None, Some(promised)) if promised > ballot => PaxosResponse::Rejected { promised },
                (None, _) => PaxosResponse::Promised {
                    accepted: state
                        .accepted
                        .map(|(ballot, value)| (ballot, Payload::new(value))),
                    chosen: None,
                },
            };
            (response, wrote)
        }
        PaxosRequest::Accept { id, ballot, value } => {
            let (state, wrote) = update_state(local, &id, |state| {
                if state.promised.is_some_and(|p| p > ballot) {
                    return false;
                }
                state.promised = Some(ballot);
                state.accepted = Some((ballot, value.to_vec()));
                true
            })?;
            match state.promised {
                Some(promised) if promised > ballot => {
                    (PaxosResponse::Rejected { promised }, wrote)
                }
                _ => (PaxosResponse::Accepted, wrote),
            }
        }
        PaxosRequest::Commit { id, value } => {
            let (_, wrote) = update_state(local, &id, |state| {
                if state.chosen.is_some() {
                    return false;
                }
                state.chosen = Some(value.to_vec());
                true
            })?;
            (PaxosResponse::Committed, wrote)
        }
    };
    if wrote {
        local.kv.flush().await?;
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::kv::{KvStore, SledKv};

    fn ballot(round: u64, node: u64) -> Ballot {
        Ballot { round, node }
    }

    #[tokio::test]
    async fn promises_and_acceptances_follow_ballot_order() {
        let dir = tempfile::tempdir().unwrap();
        let kv: Arc<dyn KvStore> = Arc::new(SledKv::open(dir.path()).unwrap());
        let local = LocalStore::new(kv);
        let id = InstanceId {
            key: Payload::new(b"name".to_vec()),
            instance: 0,
        };
        let prepare = |b| PaxosRequest::Prepare {
            id: id.clone(),
            ballot: b,
        };
        let accept = |b, v: &[u8]| PaxosRequest::Accept {
            id: id.clone(),
            ballot: b,
            value: Payload::new(v.to_vec()),
        };
        let first = handle(&local, prepare(ballot(1, 1))).await.unwrap();
        assert_eq!(
            first,
            PaxosResponse::Promised {
                accepted: None,
                chosen: None
            }
        );
        assert_eq!(
            handle(&local, accept(ballot(1, 1), b"a")).await.unwrap(),
            PaxosResponse::Accepted
        );
        // A higher ballot sees the accepted value; the lower one is then shut out.
        assert_eq!(
            handle(&local, prepare(ballot(2, 0))).await.unwrap(),
            PaxosResponse::Promised {
                accepted: Some((ballot(1, 1), Payload::new(b"a".to_vec()))),
                chosen: None
            }
        );
        assert_eq!(
            handle(&local, accept(ballot(1, 1), b"b")).await.unwrap(),
            PaxosResponse::Rejected {
                promised: ballot(2, 0)
            }
        );
        assert_eq!(
            read_state(&local, &id).unwrap().accepted,
            Some((ballot(1, 1), b"a".to_vec()))
        );
        let commit = PaxosRequest::Commit {
            id: id.clone(),
            value: Payload::new(b"a".to_vec()),
        };
        assert_eq!(
            handle(&local, commit).await.unwrap(),
            PaxosResponse::Committed
        );
        assert_eq!(
            handle(&local, prepare(ballot(9, 9))).await.unwrap(),
            PaxosResponse::Promised {
                accepted: None,
                chosen: Some(Payload::new(b"a".to_vec()))
            }
        );
    }
}
