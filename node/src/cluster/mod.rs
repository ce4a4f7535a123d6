//! Dynamo-style replication of metadata tables across the cluster.
//!
//! # Map of the module
//!
//! - [`antientropy`]: Merkle-tree comparison of replicas per replica group, on a schedule
//!   ([`AntiEntropyWorker`]), repairing what writes, hints and read repair missed.
//! - [`crdt`]: the [`Crdt`] trait (merge laws in its doc) and the last-writer-wins register
//!   [`Lww`] ordered by [`Stamp`] (hybrid clock, node, uuid); property tests of the laws.
//! - [`schema`]: what a table stores ([`TableSchema`]: name, entry type, key, key hash) and,
//!   apart from it, where ([`Replication`]: sharded N/W/R or a full copy on every node).
//! - [`liveness`]: the [`Liveness`] trait through which membership tells the engine the
//!   ring, addresses and who is up; [`StaticLiveness`] for tests.
//! - [`membership`]: seeds, gossip of layout and liveness, failure detection; implements
//!   [`Liveness`] for the running node.
//! - [`system`]: [`TableSystem`], one per node: local storage, table registry, RPC client,
//!   and the [`crate::rpc::RpcHandler`] answering peers' table requests.
//! - [`protocol`]: the table RPC messages ([`TableRequest`], [`TableResponse`]).
//! - [`paxos`]: single-decree Paxos among the layout's nodes (acceptor state in the local
//!   engine, the proposer's two phases), carried by [`TableRequest::Paxos`]; decides bucket
//!   names, where last-writer-wins is wrong.
//! - [`local`]: this node's copy of the entries and the hints it holds, in the metadata
//!   engine (`Replicated` and `Hints` trees).
//! - [`table`]: [`Table`], the coordinator: `insert`, `get`, local access.
//! - [`fanout`]: the quorum fan-out behind `insert` and `get`, hinted writes, read repair.
//! - [`hints`]: the hint-replay pass and its background worker.
//! - [`tombstones`]: the purge of old deletions from the sharded tables once every owner
//!   holds them ([`purge_tombstones`], [`TombstonePurger`]); why the grace period is long.
//! - [`rebalance`]: after a layout change, pushes moved ranges' entries and blocks to their
//!   new owners and drops them from nodes that lost them ([`rebalance::Rebalancer`]).
//! - [`error`]: [`TableError`] and [`QuorumError`] (which replica failed how).
//! - [`wire`]: [`wire::NodeRequest`] / [`wire::NodeResponse`], the one RPC vocabulary that
//!   carries every cluster protocol on a node's single RPC port, and [`wire::NodeRpcHandler`].
//!
//! # How a write flows
//!
//! `Table::insert(entry)` on any node (the coordinator) hashes the entry's key, takes the
//! first N nodes of the ring's preference list and starts one task per owner. Each task sends
//! `Merge` (to itself without the network when the coordinator is an owner); the owner merges
//! the entry into its copy under a per-key lock, flushes the engine and answers `Done`. When
//! an owner is marked down, unreachable, or times out, its task takes the next healthy node
//! after the preference list and sends it `StoreHint` naming the owner; that node persists
//! the hint. The coordinator answers the client once W owners acknowledged (under the
//! default sloppy quorum, a placed hint counts as one); the other tasks finish on their own.
//! Failing that, it returns a [`QuorumError`] listing every owner's error. Later, the hint
//! holder's [`HintReplayWorker`] sends each hint to its owner when the owner answers, and
//! deletes the hint once the owner acknowledged it.
//!
//! A read asks all N owners, merges the first R answers and returns; in the background it
//! waits for the remaining answers and sends the merged entry to every owner whose answer
//! was older or missing (read repair). Since every entry is a CRDT, writes, hints and
//! repairs are all the same idempotent merge, in any order.

pub mod antientropy;
pub mod blocks;
pub mod crdt;
pub mod error;
mod fanout;
pub mod hints;
pub mod liveness;
pub mod local;
pub mod membership;
pub mod paxos;
pub mod protocol;
pub mod rebalance;
pub mod schema;
pub mod system;
pub mod table;
pub mod tombstones;
pub mod wire;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

// Until the node wires the cluster in, only the tests use some of these short paths.
#[allow(unused_imports)]
pub use self::{
    antientropy::{
        AntiEntropy, AntiEntropyConfig, AntiEntropyStatus, AntiEntropyWorker, RoundReport,
        RpcAeTransport,
    },
    crdt::{Crdt, Lww, Stamp, StampClock},
    error::{Operation, QuorumError, ReplicaFailure, TableError},
    hints::{replay_hints, HintReplayWorker, ReplayReport, WorkerStatus},
    liveness::{Liveness, StaticLiveness},
    protocol::{TableRequest, TableResponse},
    schema::{EntryMerger, Replication, TableSchema},
    system::{SystemConfig, TableSystem, TableTransport},
    table::{QuorumPolicy, Table},
    tombstones::{purge_tombstones, PurgeReport, TombstonePurger},
};
