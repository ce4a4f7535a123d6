//! The proposer: [`decide`] runs both phases of single-decree Paxos for one instance from
//! this node, against every node of the current layout as acceptors.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use ring::NodeId;
use thiserror::Error;

use super::{Ballot, InstanceId, PaxosRequest, PaxosResponse};
use crate::cluster::protocol::{TableRequest, TableResponse};
use crate::cluster::system::TableSystem;
use crate::rpc::Payload;

/// Ballots tried before giving up on a contended instance. Two proposers duel only while
/// their retries overlap; jittered backoff separates them within a few attempts.
const MAX_ATTEMPTS: u32 = 12;
/// Upper bound of the random pause before retry `n` is `n` times this.
const BACKOFF_STEP: Duration = Duration::from_millis(15);

/// Why no decision could be reached.
#[derive(Debug, Error)]
pub enum PaxosError {
    /// Too few acceptors answered for a majority.
    #[error("no majority of acceptors: {reached} of {needed} needed answered ({failures})")]
    NoQuorum {
        /// Majority size.
        needed: usize,
        /// Acceptors that answered favourably.
        reached: usize,
        /// What went wrong with the others, one per failed acceptor.
        failures: String,
    },
    /// Competing proposers kept pre-empting this one.
    #[error("instance still contended after {0} ballots")]
    Contended(u32),
    /// The layout has no nodes.
    #[error("the ring of layout version {0} has no nodes")]
    EmptyRing(u64),
}

/// How one phase ended.
enum PhaseOutcome<T> {
    /// A majority answered favourably.
    Majority(T),
    /// The value was already chosen (an acceptor knew it).
    Chosen(Payload),
    /// Pre-empted by a higher ballot: retry above this round.
    Preempted(u64),
}

/// Runs Paxos for `id` from this node (ballots carry `node_number`) and returns the chosen
/// value: the value some proposer already got accepted (or chosen), else `proposal`. With
/// `proposal == None` this is a linearizable read: `Ok(None)` means nothing was chosen when
/// a majority was asked (and it completes any half-finished proposal it finds).
pub async fn decide(
    system: &Arc<TableSystem>,
    node_number: u64,
    id: &InstanceId,
    proposal: Option<&[u8]>,
) -> Result<Option<Vec<u8>>, PaxosError> {
    let ring = system.liveness().ring();
    let acceptors = ring.nodes().to_vec();
    if acceptors.is_empty() {
        return Err(PaxosError::EmptyRing(ring.version()));
    }
    let majority = acceptors.len() / 2 + 1;
    let mut round = 1;
    for attempt in 1..=MAX_ATTEMPTS {
        let ballot = Ballot {
            round,
            node: node_number,
        };
        let promised = match prepare(system, &acceptors, majority, id, ballot).await? {
            PhaseOutcome::Majority(accepted) => accepted,
            PhaseOutcome::Chosen(value) => return Ok(Some(value.to_vec())),
            PhaseOutcome::Preempted(seen) => {
                round = seen.max(round) + 1;
                backoff(attempt).await;
                continue;
            }
        };
        let value = match (promised, proposal) {
            (Some((_, accepted)), _) => accepted,
            (None, Some(own)) => Payload::new(own.to_vec()),
            (None, None) => return Ok(None),
        };
        match accept(system, &acceptors, majority, id, ballot, &value).await? {
            PhaseOutcome::Majority(()) => {
                announce(system, acceptors, id, &value);
                return Ok(Some(value.to_vec()));
            }
            PhaseOutcome::Chosen(value) => return Ok(Some(value.to_vec())),
            PhaseOutcome::Preempted(seen) => {
                round = seen.max(round) + 1;
                backoff(attempt).await;
            }
        }
    }
    Err(PaxosError::Contended(MAX_ATTEMPTS))
}

/// Sends `request` to every acceptor believed up; yields answers as they come.
fn fan_out<'a>(
    system: &'a TableSystem,
    acceptors: &'a [NodeId],
    request: &'a PaxosRequest,
    failures: &mut Vec<String>,
) -> FuturesUnordered<impl std::future::Future<Output = (NodeId, Result<TableResponse, String>)> + 'a>
{
    let calls = FuturesUnordered::new();
    for node in acceptors {
        if !system.liveness().is_up(node) {
            failures.push(format!("{node}: marked down"));
            continue;
        }
        calls.push(async move {
            let answer = system
                .call(node, TableRequest::Paxos(request.clone()))
                .await;
            (node.clone(), answer)
        });
    }
    calls
}

fn no_quorum(needed: usize, reached: usize, failures: &[String]) -> PaxosError {
    PaxosError::NoQuorum {
        needed,
        reached,
        failures: failures.join("; "),
    }
}

/// Phase 1. On a majority of promises, returns the highest-ballot accepted proposal among
/// them.
async fn prepare(
    system: &TableSystem,
    acceptors: &[NodeId],
    majority: usize,
    id: &InstanceId,
    ballot: Ballot,
) -> Result<PhaseOutcome<Option<(Ballot, Payload)>>, PaxosError> {
    let request = PaxosRequest::Prepare {
        id: id.clone(),
        ballot,
    };
    let mut failures = Vec::new();
    let mut calls = fan_out(system, acceptors, &request, &mut failures);
    let (mut promises, mut highest_rejection) = (0, None::<u64>);
    let mut best: Option<(Ballot, Payload)> = None;
    while let Some((node, answer)) = calls.next().await {
        match answer {
            Ok(TableResponse::Paxos(PaxosResponse::Promised {
                chosen: Some(value),
                ..
            })) => {
                return Ok(PhaseOutcome::Chosen(value));
            }
            Ok(TableResponse::Paxos(PaxosResponse::Promised { accepted, .. })) => {
                promises += 1;
                if let Some((seen, value)) = accepted {
                    if best.as_ref().is_none_or(|(current, _)| seen > *current) {
                        best = Some((seen, value));
                    }
                }
                if promises >= majority {
                    return Ok(PhaseOutcome::Majority(best));
                }
            }
            Ok(TableResponse::Paxos(PaxosResponse::Rejected { promised })) => {
                highest_rejection = highest_rejection.max(Some(promised.round));
            }
            Ok(other) => failures.push(format!("{node}: unexpected answer {other:?}")),
            Err(reason) => failures.push(format!("{node}: {reason}")),
        }
    }
    match highest_rejection {
        Some(round) => Ok(PhaseOutcome::Preempted(round)),
        None => Err(no_quorum(majority, promises, &failures)),
    }
}

/// Phase 2: asks the acceptors to accept `value` under `ballot`.
async fn accept(
    system: &TableSystem,
    acceptors: &[NodeId],
    majority: usize,
    id: &InstanceId,
    ballot: Ballot,
    value: &Payload,
) -> Result<PhaseOutcome<()>, PaxosError> {
    let request = PaxosRequest::Accept {
        id: id.clone(),
        ballot,
        value: value.clone(),
    };
    let mut failures = Vec::new();
    let mut calls = fan_out(system, acceptors, &request, &mut failures);
    let (mut accepted, mut highest_rejection) = (0, None::<u64>);
    while let Some((node, answer)) = calls.next().await {
        match answer {
            Ok(TableResponse::Paxos(PaxosResponse::Accepted)) => {
                accepted += 1;
                if accepted >= majority {
                    return Ok(PhaseOutcome::Majority(()));
                }
            }
            Ok(TableResponse::Paxos(PaxosResponse::Rejected { promised })) => {
                highest_rejection = highest_rejection.max(Some(promised.round));
            }
            Ok(other) => failures.push(format!("{node}: unexpected answer {other:?}")),
            Err(reason) => failures.push(format!("{node}: {reason}")),
        }
    }
    match highest_rejection {
        Some(round) => Ok(PhaseOutcome::Preempted(round)),
        None => Err(no_quorum(majority, accepted, &failures)),
    }
}

/// Tells every acceptor the chosen value, in the background: only an optimisation (readers
/// then learn it from any one answer), so failures are ignored.
fn announce(system: &Arc<TableSystem>, acceptors: Vec<NodeId>, id: &InstanceId, value: &Payload) {
    let system = Arc::clone(system);
    let request = PaxosRequest::Commit {
        id: id.clone(),
        value: value.clone(),
    };
    tokio::spawn(async move {
        let mut failures = Vec::new();
        let mut calls = fan_out(&system, &acceptors, &request, &mut failures);
        while calls.next().await.is_some() {}
    });
}

/// A random pause growing with the attempt number, so dueling proposers stop colliding.
async fn backoff(attempt: u32) {
    let ceiling = BACKOFF_STEP * attempt;
    let random = uuid::Uuid::new_v4().as_u128();
    let ceiling_ms = u128::max(ceiling.as_millis(), 1);
    let pause_ms = u64::try_from(random % ceiling_ms).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(pause_ms)).await;
}
