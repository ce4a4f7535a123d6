//! Single-decree Paxos among the nodes of the layout: agreement where last-writer-wins is
//! wrong (bucket names today; conditional writes later).
//!
//! An *instance* is named by an opaque key and a number (`(key, instance)`); each instance
//! decides at most one opaque value, once and for all. Every node of the current layout is
//! an acceptor; a value is chosen once a majority of them accepted it under one ballot.
//!
//! - [`acceptor`]: what each node persists per instance (promised ballot, accepted ballot
//!   and value, and the chosen value once known) and how it answers [`PaxosRequest`]s. The
//!   state lives in this node's metadata engine, in the `Replicated` tree under the table
//!   name [`ACCEPTOR_TABLE`], which no replicated table registers: anti-entropy, hints and
//!   read repair never touch it (acceptor state must never be merged between nodes).
//! - [`proposer`]: [`proposer::decide`], the two phases run by the node that wants a value
//!   chosen (or wants to learn what was chosen): prepare with a ballot `(round, node
//!   number)`, adopt the highest accepted value among a majority of promises (else its own
//!   proposal), then ask a majority to accept it; on rejection, retry with a higher round.
//!   Once chosen, the value is announced to every acceptor ([`PaxosRequest::Commit`]) so
//!   later readers learn it in one round trip.
//!
//! Messages travel inside the table protocol ([`super::TableRequest::Paxos`]), so they
//! share the node's RPC port, secret and connections.

pub mod acceptor;
pub mod proposer;

use serde::{Deserialize, Serialize};

use crate::rpc::Payload;

/// Table name under which acceptor state is kept in the `Replicated` tree. Never
/// registered as a replicated table.
pub const ACCEPTOR_TABLE: &str = "paxos.acceptor";

/// A proposal number: rounds first, then the proposer's node number, so two proposers never
/// use the same ballot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ballot {
    /// Attempt number; a proposer rejected at round r retries above r.
    pub round: u64,
    /// The proposer's node number (ring hash of its id).
    pub node: u64,
}

/// Names one Paxos instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceId {
    /// The opaque key the instance belongs to (for buckets, the bucket name).
    pub key: Payload,
    /// The instance number under that key.
    pub instance: u64,
}

/// A request from a proposer to an acceptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaxosRequest {
    /// Phase 1: promise to ignore ballots below `ballot`; answered with
    /// [`PaxosResponse::Promised`] or [`PaxosResponse::Rejected`].
    Prepare {
        /// The instance.
        id: InstanceId,
        /// The proposer's ballot.
        ballot: Ballot,
    },
    /// Phase 2: accept `value` under `ballot` unless a higher ballot was promised; answered
    /// with [`PaxosResponse::Accepted`] or [`PaxosResponse::Rejected`].
    Accept {
        /// The instance.
        id: InstanceId,
        /// The ballot the proposer prepared.
        ballot: Ballot,
        /// The value proposed.
        value: Payload,
    },
    /// `value` is chosen for the instance: remember it. Answered with
    /// [`PaxosResponse::Committed`].
    Commit {
        /// The instance.
        id: InstanceId,
        /// The chosen value.
        value: Payload,
    },
}

/// An acceptor's answer to a [`PaxosRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaxosResponse {
    /// The promise is durable. Carries the highest-ballot value this acceptor accepted, and
    /// the chosen value if it already knows it.
    Promised {
        /// Ballot and value of the last accepted proposal.
        accepted: Option<(Ballot, Payload)>,
        /// The chosen value, once committed.
        chosen: Option<Payload>,
    },
    /// The acceptance is durable.
    Accepted,
    /// The acceptor promised a higher ballot than the one asked about.
    Rejected {
        /// The ballot it promised.
        promised: Ballot,
    },
    /// The chosen value is recorded.
    Committed,
}
