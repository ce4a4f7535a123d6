//! Bucket names agreed by a majority ([`crate::cluster::paxos`]), not by last-writer-wins.
//!
//! # The mechanism
//!
//! Each bucket name has a log of Paxos instances among all nodes of the layout, numbered
//! from 0: even instances decide a [`BucketEvent::Created`], odd ones a
//! [`BucketEvent::Deleted`]. The name is a live bucket when its last decided instance is
//! even. No proposer ever proposes a creation at an odd instance or a deletion at an even
//! one, so the log alternates.
//!
//! - **CreateBucket** proposes `Created(stamp)` (a fresh hybrid-clock stamp of this node; its
//!   uuid identifies the request) at instance 0. If its own value is chosen, it won. If
//!   another creation was chosen there, it asks instance 1 (a Paxos read: a prepare, plus
//!   completing any half-accepted deletion it finds); if a deletion was decided, it moves on
//!   to instance 2, and so on; if not, the bucket exists and the answer is
//!   `BucketAlreadyExists`. Two racing creators propose at the same instance, and Paxos
//!   chooses exactly one value there: one success, one `BucketAlreadyExists`, whatever the
//!   timing. The decided value carries the creator's user id, so a loser learns who won:
//!   `BucketAlreadyOwnedByYou` when it was the same user, `BucketAlreadyExists` otherwise.
//!   The winner then writes the bucket record (owner and ACL) to the full-copy table under
//!   the creation stamp (the same on every node, so copies agree).
//! - **Reads** (HeadBucket and every object operation) look at the node's full copy first;
//!   when it holds no live record, they walk the log by Paxos reads before answering
//!   `NoSuchBucket`, and store the record they learned. A successful CreateBucket means a
//!   majority accepted the creation, and every Paxos read meets that majority: no window in
//!   which another node denies the bucket.
//! - **DeleteBucket** (once the bucket is empty) proposes `Deleted(stamp)` at the instance
//!   after the live creation, then writes a tombstone to the full-copy table under the
//!   *chosen* deletion's stamp (newer than the creation's: the proposer observed it first),
//!   so racing deleters write identical tombstones. A later CreateBucket of the name then
//!   wins the next even instance. Deletion keeps last-writer-wins visibility: a node whose
//!   full copy still shows the deleted bucket answers from it until the tombstone (or
//!   anti-entropy) arrives; only creation is guaranteed immediately visible.
//!
//! Acceptors are the nodes of the current layout; a decision needs a majority of them up
//! (with 5 nodes, 2 may be down). A layout change that replaces a majority of the nodes at
//! once would lose the acceptors' memory: layouts should change a minority at a time.

use serde::{Deserialize, Serialize};

use super::{unavailable, Inner};
use crate::cluster::paxos::proposer::decide;
use crate::cluster::paxos::InstanceId;
use crate::cluster::Stamp;
use crate::rpc::Payload;
use crate::store::codec::{self, CodecError, Record};
use crate::store::records::LEGACY_OWNER;
use s3api::S3Result;

/// The value decided by one instance of a bucket name's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum BucketEvent {
    /// The bucket was created by the user named; the stamp is its record's version and
    /// names the request.
    Created(Stamp, String),
    /// The bucket was deleted; the stamp is its tombstone's version.
    Deleted(Stamp),
}

/// [`BucketEvent`] version 1, before creations named their owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum BucketEventV1 {
    Created(Stamp),
    Deleted(Stamp),
}

/// Version 2 added the creator; version 1 creations were the root user's.
impl Record for BucketEvent {
    const FORMAT_VERSION: u8 = 2;
    const NAME: &'static str = "bucket event";

    fn decode_older(version: u8, payload: &[u8]) -> Option<Result<Self, CodecError>> {
        (version == 1).then(|| {
            codec::decode_payload::<BucketEventV1>(Self::NAME, payload).map(|old| match old {
                BucketEventV1::Created(stamp) => {
                    BucketEvent::Created(stamp, LEGACY_OWNER.to_owned())
                }
                BucketEventV1::Deleted(stamp) => BucketEvent::Deleted(stamp),
            })
        })
    }
}

/// How a creation attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CreationOutcome {
    /// This request's creation was chosen, with this stamp.
    Created(Stamp),
    /// The bucket exists through another creation, by this owner.
    Taken {
        /// The user who created it.
        owner: String,
    },
}

/// What the log of a name says now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum BucketState {
    /// No live bucket.
    Absent,
    /// A live bucket created at `instance` with record version `created`.
    Exists {
        /// The creation's instance (even).
        instance: u64,
        /// The creation's stamp.
        created: Stamp,
        /// The creator's user id.
        owner: String,
    },
}

fn instance_id(name: &str, instance: u64) -> InstanceId {
    InstanceId {
        key: Payload::new(name.as_bytes().to_vec()),
        instance,
    }
}

fn corrupt_log(name: &str, instance: u64) -> s3api::S3Error {
    unavailable(
        "reading the bucket name log",
        format!("instance {instance} of {name:?} holds an event of the wrong kind"),
    )
}

impl Inner {
    /// Runs Paxos on instance `instance` of `name`'s log, proposing `proposal` (or only
    /// reading with `None`); returns the chosen event.
    async fn decide_event(
        &self,
        name: &str,
        instance: u64,
        proposal: Option<BucketEvent>,
    ) -> S3Result<Option<BucketEvent>> {
        let encoded = proposal
            .map(|event| codec::encode(&event))
            .transpose()
            .map_err(|err| unavailable("encoding a bucket event", err))?;
        let chosen = decide(
            &self.system,
            self.clock.node(),
            &instance_id(name, instance),
            encoded.as_deref(),
        )
        .await
        .map_err(|err| unavailable("agreeing on the bucket name", err))?;
        let event = chosen
            .map(|bytes| codec::decode::<BucketEvent>(&bytes))
            .transpose()
            .map_err(|err| unavailable("decoding a bucket event", err))?;
        if let Some(BucketEvent::Created(stamp, _) | BucketEvent::Deleted(stamp)) = event {
            // Later stamps of this node (a deletion, a re-creation) must order after it.
            self.observe(stamp.hlc);
        }
        Ok(event)
    }

    /// Whether the deletion instance following a creation at `instance` is decided.
    async fn deleted_after(&self, name: &str, instance: u64) -> S3Result<bool> {
        match self.decide_event(name, instance + 1, None).await? {
            None => Ok(false),
            Some(BucketEvent::Deleted(_)) => Ok(true),
            Some(BucketEvent::Created(..)) => Err(corrupt_log(name, instance + 1)),
        }
    }

    /// Walks `name`'s log by Paxos reads to its current state.
    pub(super) async fn agreed_state(&self, name: &str) -> S3Result<BucketState> {
        let mut instance = 0;
        loop {
            match self.decide_event(name, instance, None).await? {
                None => return Ok(BucketState::Absent),
                Some(BucketEvent::Created(created, owner)) => {
                    if !self.deleted_after(name, instance).await? {
                        return Ok(BucketState::Exists {
                            instance,
                            created,
                            owner,
                        });
                    }
                }
                Some(BucketEvent::Deleted(_)) => return Err(corrupt_log(name, instance)),
            }
            instance += 2;
        }
    }

    /// Tries to create `name` for `owner`: [`CreationOutcome::Created`] if this request's
    /// creation was chosen, [`CreationOutcome::Taken`] if the bucket exists through another.
    pub(super) async fn agree_creation(
        &self,
        name: &str,
        owner: &str,
    ) -> S3Result<CreationOutcome> {
        let mut instance = 0;
        loop {
            // Minted per attempt, after observing the deletion that freed the instance.
            let mine = self.new_stamp();
            let proposal = BucketEvent::Created(mine, owner.to_owned());
            match self.decide_event(name, instance, Some(proposal)).await? {
                Some(BucketEvent::Created(chosen, _)) if chosen == mine => {
                    return Ok(CreationOutcome::Created(mine))
                }
                Some(BucketEvent::Created(_, winner)) => {
                    if !self.deleted_after(name, instance).await? {
                        return Ok(CreationOutcome::Taken { owner: winner });
                    }
                }
                Some(BucketEvent::Deleted(_)) | None => {
                    return Err(corrupt_log(name, instance));
                }
            }
            instance += 2;
        }
    }

    /// Deletes `name` in its log: `Some(stamp of the tombstone)` once a deletion is
    /// chosen, `None` if there was no live bucket.
    pub(super) async fn agree_deletion(&self, name: &str) -> S3Result<Option<Stamp>> {
        let BucketState::Exists { instance, .. } = self.agreed_state(name).await? else {
            return Ok(None);
        };
        let proposal = BucketEvent::Deleted(self.new_stamp());
        match self
            .decide_event(name, instance + 1, Some(proposal))
            .await?
        {
            Some(BucketEvent::Deleted(stamp)) => Ok(Some(stamp)),
            _ => Err(corrupt_log(name, instance + 1)),
        }
    }
}
