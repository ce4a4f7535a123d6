//! One membership service against a fake peer, with time taken from a hand-driven clock.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use ring::{NodeId, NodeInfo};

use super::{layout, wait_until, SLACK};
use crate::cluster::membership::*;
use crate::rpc::RpcError;

/// A clock that moves only when told to.
struct ManualClock(Mutex<Instant>);

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap()
    }
}

impl ManualClock {
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

/// A peer that answers pings while `alive`, without any network.
struct FakePeer {
    info: NodeInfo,
    alive: AtomicBool,
}

impl GossipTransport for FakePeer {
    fn exchange(
        &self,
        peer: SocketAddr,
        _request: GossipRequest,
        _timeout: Duration,
    ) -> BoxFuture<'static, Result<GossipResponse, RpcError>> {
        let answer = if self.alive.load(Ordering::SeqCst) {
            Ok(GossipResponse::Pong {
                from: self.info.clone(),
                layout_version: 1,
                newer_layout: None,
                peers: Vec::new(),
            })
        } else {
            Err(RpcError::Connect {
                peer,
                reason: "the fake peer is stopped".to_string(),
            })
        };
        Box::pin(std::future::ready(answer))
    }
}

/// The production timeouts (3 s, 8 s) driven by an injected clock: rounds run every 10 ms of
/// real time, but silence is measured on the manual clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_uses_the_injected_clock_for_the_production_timeouts() {
    let node = |id: &str, port: u16| NodeInfo {
        id: NodeId::from(id),
        rpc_addr: format!("127.0.0.1:{port}"),
        zone: "z".to_string(),
        capacity: 1,
    };
    let (local, peer) = (node("a", 1), node("b", 2));
    let transport = Arc::new(FakePeer {
        info: peer.clone(),
        alive: true.into(),
    });
    let clock = Arc::new(ManualClock(Mutex::new(Instant::now())));
    let layout = layout(1, &[local.clone(), peer.clone()], 2);
    let mut setup = MembershipSetup::new(local, Vec::new(), Some(layout));
    setup.config.heartbeat_interval = Duration::from_millis(10);
    setup.clock = Arc::clone(&clock) as Arc<dyn Clock>;
    let membership = Membership::start(setup, Arc::clone(&transport) as Arc<dyn GossipTransport>)
        .await
        .unwrap();
    let view = membership.view();
    let status = || view.status(&peer.id);
    wait_until("b up", SLACK, || status() == NodeStatus::Up).await;

    transport.alive.store(false, Ordering::SeqCst);
    clock.advance(SUSPECT_AFTER - Duration::from_millis(1));
    // Many rounds run meanwhile; none may suspect b before 3 s of (manual) silence.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(status(), NodeStatus::Up);
    clock.advance(Duration::from_millis(1));
    wait_until("b suspect at 3 s", SLACK, || {
        status() == NodeStatus::Suspect
    })
    .await;
    clock.advance(DOWN_AFTER - SUSPECT_AFTER - Duration::from_millis(1));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(status(), NodeStatus::Suspect);
    clock.advance(Duration::from_millis(1));
    wait_until("b down at 8 s", SLACK, || status() == NodeStatus::Down).await;

    transport.alive.store(true, Ordering::SeqCst);
    wait_until("b up after answering", SLACK, || status() == NodeStatus::Up).await;
    membership.shutdown().await;
}
