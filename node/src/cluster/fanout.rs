//! Quorum fan-out of one write or read to a key's replicas, with hinted handoff and read
//! repair. Works on encoded entries (through the table's [`EntryMerger`]), so it is compiled
//! once for all tables.
//!
//! Each replica's call runs in its own task and reports on a channel. The coordinator answers
//! as soon as the quorum is reached; the remaining tasks carry on detached, so a write still
//! reaches (or is hinted for) all N replicas and a read still repairs every stale replica
//! that answers after the client got its value. A write asks all N owners; a read asks only
//! R of them (more when one fails, is slow, or the answers disagree, and all of them on
//! every few reads), since each extra replica asked is one more RPC per GET or HEAD.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use ring::NodeId;
use tokio::sync::mpsc;

use super::error::{Operation, QuorumError, ReplicaFailure, TableError};
use super::protocol::{TableRequest, TableResponse};
use super::schema::EntryMerger;
use super::system::TableSystem;
use crate::rpc::Payload;

/// Where a write for an unreachable owner is held.
pub(crate) enum HintHolders {
    /// The nodes after the preference list on the ring, each used for at most one owner.
    /// Under a sloppy quorum a hint placed there counts toward W.
    Ring {
        /// Candidates in ring order.
        candidates: Vec<NodeId>,
        /// Whether hinted writes count toward the write quorum.
        count_toward_quorum: bool,
    },
    /// The coordinator itself (full-copy tables: every node is an owner, so there is no
    /// node outside the list). Such hints never count toward W.
    Coordinator(NodeId),
}

/// One write to fan out.
pub(crate) struct WritePlan {
    pub table: &'static str,
    pub key: Payload,
    pub entry: Payload,
    pub owners: Vec<NodeId>,
    pub holders: HintHolders,
    pub write_quorum: usize,
}

/// What happened to the write for one owner.
enum ReplicaWrite {
    Stored,
    Hinted {
        holder: NodeId,
        counts: bool,
        owner_error: String,
    },
    Failed(String),
}

/// The plan's data shared by the per-owner tasks.
struct SharedWrite {
    table: &'static str,
    key: Payload,
    entry: Payload,
    holders: HintHolders,
    /// Ring candidates not yet taken by another owner's hint.
    unused_candidates: Mutex<VecDeque<NodeId>>,
}

/// Sends the entry to every owner; returns once `write_quorum` of them (or, under a sloppy
/// quorum, hints for them) are durable.
pub(crate) async fn write(system: &Arc<TableSystem>, plan: WritePlan) -> Result<(), TableError> {
    let unused = match &plan.holders {
        HintHolders::Ring { candidates, .. } => candidates.iter().cloned().collect(),
        HintHolders::Coordinator(_) => VecDeque::new(),
    };
    let shared = Arc::new(SharedWrite {
        table: plan.table,
        key: plan.key,
        entry: plan.entry,
        holders: plan.holders,
        unused_candidates: Mutex::new(unused),
    });
    let (sender, mut outcomes) = mpsc::unbounded_channel();
    for owner in plan.owners {
        let (system, shared, sender) = (Arc::clone(system), Arc::clone(&shared), sender.clone());
        tokio::spawn(async move {
            let outcome = write_one(&system, &owner, &shared).await;
            // The coordinator may have answered already; the write happened regardless.
            let _ = sender.send((owner, outcome));
        });
    }
    drop(sender);

    let (mut succeeded, mut hinted, mut failures) = (0, 0, Vec::new());
    while let Some((owner, outcome)) = outcomes.recv().await {
        match outcome {
            ReplicaWrite::Stored => succeeded += 1,
            ReplicaWrite::Hinted {
                holder,
                counts,
                owner_error,
            } => {
                hinted += 1;
                if counts {
                    succeeded += 1;
                } else {
                    failures.push(ReplicaFailure {
                        node: owner,
                        reason: format!("{owner_error} (write hinted to {holder})"),
                    });
                }
            }
            ReplicaWrite::Failed(reason) => failures.push(ReplicaFailure {
                node: owner,
                reason,
            }),
        }
        if succeeded >= plan.write_quorum {
            return Ok(());
        }
    }
    system.counters().count_quorum_failure(Operation::Write);
    Err(QuorumError {
        operation: Operation::Write,
        table: shared.table,
        needed: plan.write_quorum,
        succeeded,
        hinted,
        failures,
    }
    .into())
}

/// Writes to `owner`, or failing that, places a hint for it.
async fn write_one(system: &TableSystem, owner: &NodeId, shared: &SharedWrite) -> ReplicaWrite {
    let owner_error = if system.liveness().is_up(owner) {
        let request = TableRequest::Merge {
            table: shared.table.to_owned(),
            key: shared.key.clone(),
            entry: shared.entry.clone(),
        };
        match system.call(owner, request).await {
            Ok(TableResponse::Done) => return ReplicaWrite::Stored,
            Ok(other) => format!("unexpected answer {other:?}"),
            Err(reason) => reason,
        }
    } else {
        "marked down".to_owned()
    };
    let mut errors = vec![owner_error.clone()];
    while let Some((holder, counts)) = next_holder(system, owner, shared, errors.len() > 1) {
        let request = TableRequest::StoreHint {
            owner: owner.clone(),
            table: shared.table.to_owned(),
            key: shared.key.clone(),
            entry: shared.entry.clone(),
        };
        match system.call(&holder, request).await {
            Ok(TableResponse::Done) => {
                return ReplicaWrite::Hinted {
                    holder,
                    counts,
                    owner_error,
                }
            }
            Ok(other) => errors.push(format!("hint to {holder}: unexpected answer {other:?}")),
            Err(reason) => errors.push(format!("hint to {holder}: {reason}")),
        }
    }
    if errors.len() == 1 {
        errors.push("no node available to hold a hint".to_owned());
    }
    ReplicaWrite::Failed(errors.join("; "))
}

/// The next node to hold `owner`'s hint and whether that hint counts toward W.
fn next_holder(
    system: &TableSystem,
    owner: &NodeId,
    shared: &SharedWrite,
    already_tried: bool,
) -> Option<(NodeId, bool)> {
    match &shared.holders {
        HintHolders::Coordinator(coordinator) => {
            (!already_tried && coordinator != owner).then(|| (coordinator.clone(), false))
        }
        HintHolders::Ring {
            count_toward_quorum,
            ..
        } => {
            let mut unused = shared
                .unused_candidates
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            while let Some(candidate) = unused.pop_front() {
                if system.liveness().is_up(&candidate) {
                    return Some((candidate, *count_toward_quorum));
                }
            }
            None
        }
    }
}

/// One read to fan out.
pub(crate) struct ReadPlan {
    pub table: &'static str,
    pub key: Payload,
    pub replicas: Vec<NodeId>,
    pub read_quorum: usize,
}

/// The answers gathered so far and their merge.
struct ReadState {
    merged: Option<Vec<u8>>,
    answers: Vec<(NodeId, Option<Vec<u8>>)>,
    failures: Vec<ReplicaFailure>,
}

impl ReadState {
    fn absorb(
        &mut self,
        node: NodeId,
        answer: Result<Option<Vec<u8>>, String>,
        merger: &dyn EntryMerger,
    ) {
        let entry = match answer {
            Ok(entry) => entry,
            Err(reason) => return self.failures.push(ReplicaFailure { node, reason }),
        };
        if let Some(bytes) = &entry {
            match merger.merge_encoded(self.merged.as_deref(), bytes) {
                Ok(Some(merged)) => self.merged = Some(merged),
                Ok(None) => {}
                Err(err) => {
                    let reason = format!("answered an unreadable entry: {err}");
                    return self.failures.push(ReplicaFailure { node, reason });
                }
            }
        }
        self.answers.push((node, entry));
    }
}

type ReadAnswer = (NodeId, Result<Option<Vec<u8>>, String>);

/// Asks a read quorum of replicas (this node first when it is one, then the preference
/// order; every [`super::system::SystemConfig::full_read_every`]-th read asks them all),
/// asks the next replica whenever one fails or the first answers are slow, returns the merge
/// of the first `read_quorum` answers (encoded), and repairs stale or missing replicas in
/// the background. When the quorum's answers disagree, the replicas not yet asked are asked
/// too, so the repair reaches every replica that may be behind.
pub(crate) async fn read(
    system: &Arc<TableSystem>,
    plan: ReadPlan,
    merger: Arc<dyn EntryMerger>,
) -> Result<Option<Vec<u8>>, TableError> {
    let (sender, mut answers) = mpsc::unbounded_channel::<ReadAnswer>();
    let first_wave = if system.full_read_due() {
        plan.replicas.len()
    } else {
        plan.read_quorum
    };
    let mut asker = ReplicaAsker {
        system,
        table: plan.table,
        key: &plan.key,
        standby: read_order(system, plan.replicas),
        sender: Some(sender),
    };
    for _ in 0..first_wave {
        asker.ask_next();
    }

    let mut state = ReadState {
        merged: None,
        answers: Vec::new(),
        failures: Vec::new(),
    };
    let speculate_after = system.config().speculative_read_after;
    while state.answers.len() < plan.read_quorum {
        let answer = match tokio::time::timeout(speculate_after, answers.recv()).await {
            Ok(answer) => answer,
            Err(_slow) => {
                // Hedge: a replica that has not answered yet may be frozen.
                asker.ask_next();
                continue;
            }
        };
        let Some((node, answer)) = answer else {
            system.counters().count_quorum_failure(Operation::Read);
            return Err(QuorumError {
                operation: Operation::Read,
                table: plan.table,
                needed: plan.read_quorum,
                succeeded: state.answers.len(),
                hinted: 0,
                failures: state.failures,
            }
            .into());
        };
        let failed = answer.is_err();
        state.absorb(node, answer, &*merger);
        if failed {
            asker.ask_next();
        }
    }
    let result = state.merged.clone();
    let disagree = state
        .answers
        .iter()
        .any(|(_, entry)| entry.as_deref() != result.as_deref());
    if disagree {
        while asker.ask_next() {}
    }
    // The repair ends once every call already started has answered.
    drop(asker);
    let repair = ReadRepair {
        system: Arc::clone(system),
        table: plan.table,
        key: plan.key,
        merger,
    };
    tokio::spawn(repair.run(state, answers));
    Ok(result)
}

/// The replicas a read has not asked yet, and the means to ask them. Once none is left it
/// lets go of its end of the answer channel, so the channel closes when the last started
/// call has answered (that is how the read learns that no quorum can come).
struct ReplicaAsker<'a> {
    system: &'a Arc<TableSystem>,
    table: &'static str,
    key: &'a Payload,
    standby: VecDeque<NodeId>,
    sender: Option<mpsc::UnboundedSender<ReadAnswer>>,
}

impl ReplicaAsker<'_> {
    /// Asks the next replica; false if none was left.
    fn ask_next(&mut self) -> bool {
        let asked = match (self.standby.pop_front(), &self.sender) {
            (Some(replica), Some(sender)) => {
                ask_replica(self.system, self.table, self.key, replica, sender);
                true
            }
            _ => false,
        };
        if self.standby.is_empty() {
            self.sender = None;
        }
        asked
    }
}

/// The order in which a read asks `replicas`: this node first when it is one (no network),
/// then the others as listed, replicas known to be down last (asked only if others fail).
fn read_order(system: &TableSystem, replicas: Vec<NodeId>) -> VecDeque<NodeId> {
    let liveness = system.liveness();
    let local = liveness.local_id();
    let (mut up, down): (Vec<NodeId>, Vec<NodeId>) = replicas
        .into_iter()
        .partition(|replica| liveness.is_up(replica));
    if let Some(position) = up.iter().position(|replica| *replica == local) {
        let me = up.remove(position);
        up.insert(0, me);
    }
    up.into_iter().chain(down).collect()
}

/// Starts one replica's read; its answer (or failure) arrives on `answers`.
fn ask_replica(
    system: &Arc<TableSystem>,
    table: &str,
    key: &Payload,
    replica: NodeId,
    answers: &mpsc::UnboundedSender<ReadAnswer>,
) {
    let answers = answers.clone();
    if !system.liveness().is_up(&replica) {
        let _ = answers.send((replica, Err("marked down".to_owned())));
        return;
    }
    let system = Arc::clone(system);
    let request = TableRequest::Read {
        table: table.to_owned(),
        key: key.clone(),
    };
    tokio::spawn(async move {
        let answer = match system.call(&replica, request).await {
            Ok(TableResponse::Entry(entry)) => Ok(entry.map(Payload::into_vec)),
            Ok(other) => Err(format!("unexpected answer {other:?}")),
            Err(reason) => Err(reason),
        };
        let _ = answers.send((replica, answer));
    });
}

/// Sends the merged entry to every replica that answered with something older or nothing.
struct ReadRepair {
    system: Arc<TableSystem>,
    table: &'static str,
    key: Payload,
    merger: Arc<dyn EntryMerger>,
}

impl ReadRepair {
    async fn run(self, mut state: ReadState, mut late: mpsc::UnboundedReceiver<ReadAnswer>) {
        // Each call is bounded by the RPC timeout, so this ends soon after the slowest one.
        while let Some((node, answer)) = late.recv().await {
            state.absorb(node, answer, &*self.merger);
        }
        let Some(merged) = state.merged else {
            return;
        };
        for (node, answer) in state.answers {
            if answer.as_deref() == Some(merged.as_slice()) {
                continue;
            }
            let request = TableRequest::Merge {
                table: self.table.to_owned(),
                key: self.key.clone(),
                entry: Payload::new(merged.clone()),
            };
            match self.system.call(&node, request).await {
                Ok(_) => tracing::debug!(table = self.table, %node, "read repair sent"),
                Err(reason) => {
                    tracing::warn!(table = self.table, %node, %reason, "read repair failed")
                }
            }
        }
    }
}
