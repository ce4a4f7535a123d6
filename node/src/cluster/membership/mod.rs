//! Cluster membership: who is in the cluster (the layout), who is alive (liveness), and how
//! both spread between nodes.
//!
//! # Map
//!
//! - [`detector`]: [`FailureDetector`], a pure state machine from silence to [`NodeStatus`]
//!   (`Up` → `Suspect` after [`SUSPECT_AFTER`] → `Down` after [`DOWN_AFTER`]); time comes in
//!   as an argument, so it is tested without sleeping.
//! - [`wire`]: [`GossipRequest`] / [`GossipResponse`], the heartbeat that doubles as gossip.
//! - `actor`: the membership actor that owns all the state and runs the heartbeat rounds.
//! - [`view`]: [`MembershipView`], the lock-free read handle the data path uses.
//! - [`transport`]: [`GossipTransport`] (how the actor calls peers) with its RPC
//!   implementation, and [`GossipRpcHandler`] (how peers' calls reach the actor).
//!
//! # How it works
//!
//! Every [`HEARTBEAT_INTERVAL`] the node pings every peer it knows (layout members, nodes
//! learnt through gossip, and seed addresses not yet identified). A ping carries the sender's
//! own [`ring::NodeInfo`], its layout version and every peer it knows with the liveness it
//! sees; the pong carries the same from the other side. Any message from a peer marks it `Up`;
//! silence makes it `Suspect`, then `Down`. Liveness is local evidence only: a node never marks
//! a peer up or down because another node said so. Liveness never changes the layout.
//!
//! # Layout versions
//!
//! A layout is created only by an operator's action ([`MembershipHandle::apply_layout`]),
//! which accepts it only with `version == current + 1`; it is then gossiped and the newest
//! version always wins: a node that sees a higher version in a ping or pong pulls that layout
//! (a pong carries it directly when the pinger is behind). Two different layouts with the same
//! version must never exist: operators stage changes through one node and one CLI at a time,
//! and each node refuses a layout that does not extend its own. (Two operators applying a
//! v+1 on two nodes within the same gossip round would break this; the admin CLI is the place
//! to serialise layout changes.) Version 0 is "no layout yet": a node starts with an empty
//! layout of version 0 unless given one, and the first operator layout is version 1.
//! Persisting the layout is the owner's job: [`MembershipView::subscribe`] reports each new
//! version.
//!
//! # Why an actix actor
//!
//! DESIGN.md makes long-lived stateful services actors. The actor runs on its own
//! `actix_rt::System` thread ([`Membership::start`]), so heartbeats and their bookkeeping
//! never compete with the data path's runtime, and the data path never waits on it: it reads
//! [`MembershipView`]. The actor never blocks: RPC calls run as spawned futures (on the node's
//! multi-thread runtime, see [`RpcGossipTransport`]) and the ring of a new layout is built on
//! the blocking pool.

mod actor;
pub mod detector;
pub mod transport;
pub mod view;
pub mod wire;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use ring::{Layout, NodeId, NodeInfo};
use tokio::sync::oneshot;

// Until the node wires membership in, only the tests use some of these short paths.
#[allow(unused_imports)]
pub use self::detector::{Clock, FailureDetector, NodeStatus, SystemClock};
#[allow(unused_imports)]
pub use self::transport::{GossipRpcHandler, GossipTransport, RpcGossipTransport};
#[allow(unused_imports)]
pub use self::view::{MembershipView, PeerEntry, Snapshot};
#[allow(unused_imports)]
pub use self::wire::{GossipRequest, GossipResponse, PeerDigest};

use self::actor::{ApplyLayout, Incoming, MembershipActor};

/// How often each node pings every peer. One second keeps the traffic at one small message
/// per peer pair and second, and detects a failure within a few seconds.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// Silence after which a peer is `Suspect`: three missed heartbeats, so one lost or slow
/// ping does not cause suspicion.
pub const SUSPECT_AFTER: Duration = Duration::from_secs(3);

/// Silence after which a peer is `Down`: eight missed heartbeats, long enough to ride out a
/// garbage-collection pause or a brief network hiccup without flapping.
pub const DOWN_AFTER: Duration = Duration::from_secs(8);

/// How long a node that is outside the layout and `Down` is remembered: a decommissioned node
/// is then no longer pinged. An hour lets a node that is rebooting come back unnoticed.
pub const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// Timing of membership; [`MembershipConfig::default`] uses the constants above, tests
/// shrink them.
#[derive(Debug, Clone)]
pub struct MembershipConfig {
    /// Interval between heartbeat rounds (and liveness re-evaluations).
    pub heartbeat_interval: Duration,
    /// Silence after which a peer is `Suspect`.
    pub suspect_after: Duration,
    /// Silence after which a peer is `Down`.
    pub down_after: Duration,
    /// How long a node outside the layout is remembered once `Down`.
    pub forget_after: Duration,
    /// Timeout of each gossip call; at most one call per peer is in flight.
    pub call_timeout: Duration,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: HEARTBEAT_INTERVAL,
            suspect_after: SUSPECT_AFTER,
            down_after: DOWN_AFTER,
            forget_after: FORGET_AFTER,
            // A heartbeat older than the next round is worthless; waiting longer would only
            // hold the peer's in-flight slot.
            call_timeout: HEARTBEAT_INTERVAL,
        }
    }
}

/// What a node brings to membership when it starts.
pub struct MembershipSetup {
    /// This node, with the RPC address peers should call.
    pub local: NodeInfo,
    /// Addresses to contact at start to find the cluster (may include this node's own).
    pub seeds: Vec<SocketAddr>,
    /// The last layout this node had (from disk), or `None` for version 0, the empty layout.
    pub layout: Option<Layout>,
    /// Timing.
    pub config: MembershipConfig,
    /// Time source of the failure detector.
    pub clock: Arc<dyn Clock>,
}

impl MembershipSetup {
    /// A setup with the default timing and the system clock.
    pub fn new(local: NodeInfo, seeds: Vec<SocketAddr>, layout: Option<Layout>) -> Self {
        Self {
            local,
            seeds,
            layout,
            config: MembershipConfig::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Why a layout change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyLayoutError {
    /// The new layout's version is not exactly the current version plus one.
    #[error("layout version {proposed} does not follow the current version {current}; stage version {current} + 1")]
    WrongVersion {
        /// The version this node has (or is installing).
        current: u64,
        /// The version offered.
        proposed: u64,
    },
    /// The layout breaks an invariant (no nodes, duplicate ids, replication too high, …).
    #[error("invalid layout: {0}")]
    Invalid(#[from] ring::LayoutError),
    /// Building the layout's ring failed (a bug: the layout had passed validation).
    #[error("building the ring of the new layout failed")]
    RingBuildFailed,
    /// The membership service is not running.
    #[error("the membership service has stopped")]
    Stopped,
}

/// Why membership could not start.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// The initial layout is invalid.
    #[error("invalid initial layout: {0}")]
    InvalidLayout(#[from] ring::LayoutError),
    /// The actor thread could not be started.
    #[error("cannot start the membership thread: {0}")]
    Thread(String),
}

/// Starts the membership service.
pub struct Membership;

impl Membership {
    /// Starts the membership actor on a dedicated thread with its own `actix_rt::System`, and
    /// returns once it runs. Its first heartbeat round (which contacts the seeds) goes out at
    /// once.
    pub async fn start(
        setup: MembershipSetup,
        transport: Arc<dyn GossipTransport>,
    ) -> Result<MembershipHandle, MembershipError> {
        let layout = match setup.layout.clone() {
            Some(layout) => {
                layout.validate()?;
                layout
            }
            None => empty_layout(),
        };
        let local_id = setup.local.id.clone();
        let (started_tx, started_rx) = oneshot::channel();
        let (exited_tx, exited_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name(format!("membership-{local_id}"))
            .spawn(move || {
                let system = actix_rt::System::new();
                let started = system.block_on(async move {
                    let (actor, view) = MembershipActor::new(setup, layout, transport);
                    (actor.start(), view, System::current())
                });
                // If the caller gave up waiting, nobody will stop this system: do not run it.
                if started_tx.send(started).is_ok() {
                    let _ = system.run();
                }
                let _ = exited_tx.send(());
            })
            .map_err(|err| MembershipError::Thread(err.to_string()))?;
        let (addr, view, system) = started_rx
            .await
            .map_err(|_| MembershipError::Thread("the thread ended while starting".into()))?;
        Ok(MembershipHandle {
            addr,
            view,
            lifecycle: Arc::new(Lifecycle {
                system,
                exited: Mutex::new(Some(exited_rx)),
            }),
        })
    }
}

/// The empty layout every node has before the operator applies the first one.
fn empty_layout() -> Layout {
    Layout {
        version: 0,
        nodes: Vec::new(),
        replication: 1,
    }
}

/// Stops the actor's system when the last handle goes away.
struct Lifecycle {
    system: System,
    exited: Mutex<Option<oneshot::Receiver<()>>>,
}

impl Drop for Lifecycle {
    fn drop(&mut self) {
        self.system.stop();
    }
}

/// Commands to a running membership service; cheap to clone. The service stops when the last
/// handle is dropped or on [`MembershipHandle::shutdown`].
#[derive(Clone)]
pub struct MembershipHandle {
    addr: Addr<MembershipActor>,
    view: MembershipView,
    lifecycle: Arc<Lifecycle>,
}

impl MembershipHandle {
    /// The read handle.
    pub fn view(&self) -> MembershipView {
        self.view.clone()
    }

    /// Installs an operator's new layout if `new.version` is the current version + 1 and the
    /// layout is valid, then gossips it at once. Returns after this node uses it.
    pub async fn apply_layout(&self, new: Layout) -> Result<(), ApplyLayoutError> {
        self.addr
            .send(ApplyLayout(new))
            .await
            .unwrap_or(Err(ApplyLayoutError::Stopped))
    }

    /// Answers a gossip request that arrived over RPC from `caller` (the node id the
    /// connection authenticated). A ping claiming to come from another node is refused.
    pub async fn handle_gossip(&self, caller: &str, request: GossipRequest) -> GossipResponse {
        if let GossipRequest::Ping { from, .. } = &request {
            if from.id.as_str() != caller {
                return GossipResponse::Refused(format!(
                    "ping claims to come from {} but the connection authenticated {caller}",
                    from.id
                ));
            }
        }
        self.addr
            .send(Incoming(request))
            .await
            .unwrap_or_else(|_| GossipResponse::Refused("membership has stopped".into()))
    }

    /// This node's id.
    pub fn local_id(&self) -> NodeId {
        self.view.local_id()
    }

    /// Stops the service and waits until its thread has exited (every handle then gets
    /// [`ApplyLayoutError::Stopped`] or refusals).
    pub async fn shutdown(&self) {
        self.lifecycle.system.stop();
        let exited = self
            .lifecycle
            .exited
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(exited) = exited {
            let _ = exited.await;
        }
    }
}
