//! The actor's mailbox: gossip arriving over RPC and operators' layout changes.

use std::net::SocketAddr;

use actix::prelude::*;
use ring::Layout;

use super::{build_ring, MembershipActor};
use crate::cluster::membership::wire::{GossipRequest, GossipResponse};
use crate::cluster::membership::ApplyLayoutError;

/// A gossip request that arrived over RPC.
#[derive(Message)]
#[rtype(result = "GossipResponse")]
pub(in crate::cluster::membership) struct Incoming(pub GossipRequest);

/// An operator's new layout.
#[derive(Message)]
#[rtype(result = "Result<(), ApplyLayoutError>")]
pub(in crate::cluster::membership) struct ApplyLayout(pub Layout);

impl Handler<Incoming> for MembershipActor {
    type Result = MessageResult<Incoming>;

    fn handle(&mut self, Incoming(request): Incoming, ctx: &mut Context<Self>) -> Self::Result {
        let response = match request {
            GossipRequest::Ping {
                from,
                layout_version,
                peers,
            } => {
                let sender = from.rpc_addr.parse::<SocketAddr>().ok();
                if from.id != self.local.id {
                    self.heard_from(from);
                    self.learn(peers);
                }
                if layout_version > self.layout.version {
                    if let Some(sender) = sender {
                        self.pull_layout(sender, ctx);
                    }
                }
                self.publish();
                GossipResponse::Pong {
                    from: self.local.clone(),
                    layout_version: self.layout.version,
                    newer_layout: (self.layout.version > layout_version)
                        .then(|| Layout::clone(&self.layout)),
                    peers: self.digests(),
                }
            }
            GossipRequest::PullLayout => GossipResponse::Layout(Layout::clone(&self.layout)),
        };
        MessageResult(response)
    }
}

impl Handler<ApplyLayout> for MembershipActor {
    type Result = ResponseActFuture<Self, Result<(), ApplyLayoutError>>;

    fn handle(&mut self, ApplyLayout(layout): ApplyLayout, _: &mut Context<Self>) -> Self::Result {
        let current = self.building.max(self.layout.version);
        if layout.version != current + 1 {
            let refused = ApplyLayoutError::WrongVersion {
                current,
                proposed: layout.version,
            };
            return Box::pin(fut::ready(Err(refused)));
        }
        if let Err(err) = layout.validate() {
            return Box::pin(fut::ready(Err(err.into())));
        }
        self.building = layout.version;
        Box::pin(
            build_ring(layout)
                .into_actor(self)
                .map(move |built, actor, ctx| {
                    let (layout, ring) = built.map_err(|version| {
                        actor.build_failed(version);
                        ApplyLayoutError::RingBuildFailed
                    })?;
                    let proposed = layout.version;
                    actor.install(layout, ring, ctx);
                    if actor.layout.version == proposed {
                        Ok(())
                    } else {
                        Err(ApplyLayoutError::WrongVersion {
                            current: actor.layout.version,
                            proposed,
                        })
                    }
                }),
        )
    }
}
