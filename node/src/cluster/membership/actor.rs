//! The membership actor: owns the layout, the known peers and the failure detector; runs the
//! heartbeat rounds; answers gossip; publishes a [`Snapshot`] on every change.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use actix::prelude::*;
use ring::{Layout, NodeId, NodeInfo, Ring};
use tokio::sync::watch;

use super::detector::{Clock, FailureDetector, NodeStatus};
use super::transport::GossipTransport;
use super::view::{MembershipView, PeerEntry, Snapshot};
use super::wire::{GossipRequest, GossipResponse, PeerDigest};
use super::{MembershipConfig, MembershipSetup};
use crate::rpc::RpcError;

mod handlers;

pub(super) use self::handlers::{ApplyLayout, Incoming};

/// See the module doc.
pub(super) struct MembershipActor {
    config: MembershipConfig,
    clock: Arc<dyn Clock>,
    transport: Arc<dyn GossipTransport>,
    local: NodeInfo,
    seeds: Vec<SocketAddr>,
    /// Addresses that turned out to be this node (a seed list often includes it).
    own_addrs: HashSet<SocketAddr>,
    layout: Arc<Layout>,
    ring: Arc<Ring>,
    /// Highest layout version whose ring is being built, to start each build only once.
    building: u64,
    /// Peers as they announced themselves (first hand), or as gossip described them.
    announced: HashMap<NodeId, NodeInfo>,
    detector: FailureDetector,
    /// Peers with a heartbeat outstanding: at most one per peer, so a dead peer costs nothing
    /// more than its timeout.
    in_flight: HashSet<SocketAddr>,
    snapshots: watch::Sender<Arc<Snapshot>>,
    layouts: watch::Sender<Arc<Layout>>,
}

impl Actor for MembershipActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.heartbeat_round(ctx);
        ctx.run_interval(self.config.heartbeat_interval, |actor, ctx| {
            actor.heartbeat_round(ctx)
        });
    }
}

impl MembershipActor {
    /// The actor and the view of its snapshots. Builds the first ring here, before the actor
    /// runs: nothing waits on the actor yet.
    pub(super) fn new(
        setup: MembershipSetup,
        layout: Layout,
        transport: Arc<dyn GossipTransport>,
    ) -> (Self, MembershipView) {
        let ring = Arc::new(Ring::new(&layout));
        let layout = Arc::new(layout);
        let own_addrs = setup.local.rpc_addr.parse().into_iter().collect();
        let snapshot = Snapshot {
            local: setup.local.clone(),
            layout: Arc::clone(&layout),
            ring: Arc::clone(&ring),
            peers: BTreeMap::new(),
        };
        let (snapshots, snapshot_rx) = watch::channel(Arc::new(snapshot));
        let (layouts, layout_rx) = watch::channel(Arc::clone(&layout));
        let config = setup.config;
        let mut actor = Self {
            detector: FailureDetector::new(config.suspect_after, config.down_after),
            config,
            clock: setup.clock,
            transport,
            local: setup.local,
            seeds: setup.seeds,
            own_addrs,
            building: layout.version,
            layout,
            ring,
            announced: HashMap::new(),
            in_flight: HashSet::new(),
            snapshots,
            layouts,
        };
        actor.watch_layout_members();
        actor.publish();
        (actor, MembershipView::new(snapshot_rx, layout_rx))
    }

    /// Re-evaluates liveness, then pings every known peer and unidentified seed.
    fn heartbeat_round(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        self.detector.sweep(now);
        self.forget_departed(now);
        self.publish();
        for peer in self.ping_targets() {
            if !self.in_flight.insert(peer) {
                continue;
            }
            let call = self
                .transport
                .exchange(peer, self.ping(), self.config.call_timeout);
            ctx.spawn(call.into_actor(self).map(move |answer, actor, ctx| {
                actor.in_flight.remove(&peer);
                actor.on_pong(peer, answer, ctx);
            }));
        }
    }

    /// Addresses of every known peer, plus the seeds no known peer answers at.
    fn ping_targets(&self) -> Vec<SocketAddr> {
        let peers = self
            .known_peers()
            .into_values()
            .filter_map(|info| info.rpc_addr.parse().ok());
        let mut seen = self.own_addrs.clone();
        peers
            .chain(self.seeds.iter().copied())
            .filter(|addr| seen.insert(*addr))
            .collect()
    }

    /// Every other node we know, described first hand where possible.
    fn known_peers(&self) -> BTreeMap<NodeId, NodeInfo> {
        let mut peers: BTreeMap<NodeId, NodeInfo> = self
            .layout
            .nodes
            .iter()
            .map(|node| (node.id.clone(), node.clone()))
            .collect();
        for (id, info) in &self.announced {
            peers.insert(id.clone(), info.clone());
        }
        peers.remove(&self.local.id);
        peers
    }

    fn digests(&self) -> Vec<PeerDigest> {
        self.known_peers()
            .into_values()
            .map(|info| PeerDigest {
                status: self.detector.status(&info.id).unwrap_or(NodeStatus::Down),
                info,
            })
            .collect()
    }

    fn ping(&self) -> GossipRequest {
        GossipRequest::Ping {
            from: self.local.clone(),
            layout_version: self.layout.version,
            peers: self.digests(),
        }
    }

    fn on_pong(
        &mut self,
        peer: SocketAddr,
        answer: Result<GossipResponse, RpcError>,
        ctx: &mut Context<Self>,
    ) {
        match answer {
            Ok(GossipResponse::Pong {
                from,
                layout_version,
                newer_layout,
                peers,
            }) => {
                if from.id == self.local.id {
                    self.own_addrs.insert(peer);
                    return;
                }
                self.heard_from(from);
                self.learn(peers);
                match newer_layout {
                    Some(layout) => self.consider_layout(layout, ctx),
                    None if layout_version > self.layout.version => self.pull_layout(peer, ctx),
                    None => {}
                }
                self.publish();
            }
            Ok(other) => tracing::debug!(%peer, answer = ?other, "unexpected answer to a ping"),
            // Silence is what the failure detector measures; nothing else to do.
            Err(err) => tracing::trace!(%peer, error = %err, "heartbeat failed"),
        }
    }

    /// Records first-hand contact with `info.id`: it is up and reachable where it says.
    fn heard_from(&mut self, info: NodeInfo) {
        self.detector.heard_from(&info.id, self.clock.now());
        self.announced.insert(info.id.clone(), info);
    }

    /// Starts watching peers we only heard of; first-hand descriptions are kept.
    fn learn(&mut self, digests: Vec<PeerDigest>) {
        let now = self.clock.now();
        for digest in digests {
            let id = digest.info.id.clone();
            if id == self.local.id || self.layout.node(&id).is_some() {
                continue;
            }
            self.detector.watch(&id, now);
            self.announced.entry(id).or_insert(digest.info);
        }
    }

    /// Drops gossip-only peers (not in the layout) that have been silent for `forget_after`.
    fn forget_departed(&mut self, now: std::time::Instant) {
        let forget_after = self.config.forget_after;
        let layout = Arc::clone(&self.layout);
        let detector = &mut self.detector;
        self.announced.retain(|id, _| {
            let departed = layout.node(id).is_none()
                && detector
                    .silent_for(id, now)
                    .is_some_and(|silent| silent >= forget_after);
            if departed {
                detector.forget(id);
            }
            !departed
        });
    }

    fn watch_layout_members(&mut self) {
        let now = self.clock.now();
        for node in &self.layout.nodes {
            if node.id != self.local.id {
                self.detector.watch(&node.id, now);
            }
        }
    }

    fn pull_layout(&mut self, peer: SocketAddr, ctx: &mut Context<Self>) {
        let call =
            self.transport
                .exchange(peer, GossipRequest::PullLayout, self.config.call_timeout);
        ctx.spawn(
            call.into_actor(self)
                .map(move |answer, actor, ctx| match answer {
                    Ok(GossipResponse::Layout(layout)) => actor.consider_layout(layout, ctx),
                    Ok(other) => {
                        tracing::debug!(%peer, answer = ?other, "unexpected layout answer")
                    }
                    Err(err) => tracing::debug!(%peer, error = %err, "layout pull failed"),
                }),
        );
    }

    /// Adopts a gossiped layout if it is newer than anything we have or are building.
    fn consider_layout(&mut self, layout: Layout, ctx: &mut Context<Self>) {
        if layout.version <= self.building.max(self.layout.version) {
            return;
        }
        if let Err(err) = layout.validate() {
            tracing::warn!(version = layout.version, error = %err, "ignoring an invalid gossiped layout");
            return;
        }
        self.building = layout.version;
        ctx.spawn(
            build_ring(layout)
                .into_actor(self)
                .map(|built, actor, ctx| match built {
                    Ok((layout, ring)) => actor.install(layout, ring, ctx),
                    Err(version) => actor.build_failed(version),
                }),
        );
    }

    fn build_failed(&mut self, version: u64) {
        tracing::error!(version, "building the ring of a layout failed");
        if self.building == version {
            self.building = self.layout.version;
        }
    }

    /// Switches to `layout` if it is still the newest, tells subscribers, and pings everyone
    /// at once so the new version spreads without waiting for the next round.
    fn install(&mut self, layout: Layout, ring: Ring, ctx: &mut Context<Self>) {
        if layout.version <= self.layout.version {
            return;
        }
        tracing::info!(
            version = layout.version,
            nodes = layout.nodes.len(),
            "new layout"
        );
        self.layout = Arc::new(layout);
        self.ring = Arc::new(ring);
        self.watch_layout_members();
        self.layouts.send_replace(Arc::clone(&self.layout));
        self.publish();
        self.heartbeat_round(ctx);
    }

    /// Replaces the published snapshot if anything a reader can see changed.
    fn publish(&mut self) {
        let peers = self
            .known_peers()
            .into_iter()
            .map(|(id, info)| {
                let entry = PeerEntry {
                    addr: info.rpc_addr.parse().ok(),
                    status: self.detector.status(&id).unwrap_or(NodeStatus::Down),
                    in_layout: self.layout.node(&id).is_some(),
                    info,
                };
                (id, entry)
            })
            .collect();
        let snapshot = Snapshot {
            local: self.local.clone(),
            layout: Arc::clone(&self.layout),
            ring: Arc::clone(&self.ring),
            peers,
        };
        self.snapshots.send_if_modified(|current| {
            let modified = !current.same_as(&snapshot);
            if modified {
                *current = Arc::new(snapshot);
            }
            modified
        });
    }
}

/// Builds a layout's ring on the blocking pool (tens of milliseconds for a large layout);
/// fails with the layout's version if the build panicked.
async fn build_ring(layout: Layout) -> Result<(Layout, Ring), u64> {
    let version = layout.version;
    tokio::task::spawn_blocking(move || {
        let ring = Ring::new(&layout);
        (layout, ring)
    })
    .await
    .map_err(|_| version)
}
