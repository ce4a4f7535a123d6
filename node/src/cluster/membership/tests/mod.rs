//! Whole membership services on loopback RPC: discovery through a seed, failure detection,
//! recovery, and layout gossip. Timing is shrunk tenfold; every wait is bounded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ring::{Layout, NodeId, NodeInfo};

use super::*;
use crate::rpc::{ClusterSecret, RpcClient, RpcConfig, RpcServer};

mod clock;

const HEARTBEAT: Duration = Duration::from_millis(100);
const SUSPECT: Duration = Duration::from_millis(400);
const DOWN: Duration = Duration::from_millis(1_000);
/// Allowance for a loaded two-core machine on top of each protocol bound.
const SLACK: Duration = Duration::from_secs(3);

fn config() -> MembershipConfig {
    MembershipConfig {
        heartbeat_interval: HEARTBEAT,
        suspect_after: SUSPECT,
        down_after: DOWN,
        forget_after: Duration::from_secs(600),
        call_timeout: HEARTBEAT,
    }
}

fn rpc_config() -> RpcConfig {
    RpcConfig {
        backoff_max: Duration::from_millis(200),
        ..RpcConfig::default()
    }
}

fn secret() -> ClusterSecret {
    ClusterSecret::new(b"membership-test-secret".to_vec()).unwrap()
}

/// One node: its RPC server (gossip only) and its membership service.
struct TestNode {
    info: NodeInfo,
    server: RpcServer,
    membership: MembershipHandle,
}

/// Binds a gossip-only RPC server on `addr` (port 0 for a fresh one).
async fn bind(addr: SocketAddr) -> (RpcServer, Arc<GossipRpcHandler>) {
    let handler = GossipRpcHandler::new();
    let server = RpcServer::bind(addr, secret(), Arc::clone(&handler), rpc_config())
        .await
        .unwrap();
    (server, handler)
}

fn info(id: &str, server: &RpcServer) -> NodeInfo {
    NodeInfo {
        id: NodeId::from(id),
        rpc_addr: server.local_addr().to_string(),
        zone: format!("zone-{id}"),
        capacity: 100,
    }
}

async fn start(
    info: NodeInfo,
    server: RpcServer,
    handler: Arc<GossipRpcHandler>,
    seeds: Vec<SocketAddr>,
    layout: Option<Layout>,
) -> TestNode {
    let client: RpcClient<GossipRequest, GossipResponse> =
        RpcClient::new(secret(), info.id.as_str(), rpc_config()).unwrap();
    let transport = RpcGossipTransport::new(client, tokio::runtime::Handle::current());
    let mut setup = MembershipSetup::new(info.clone(), seeds, layout);
    setup.config = config();
    let membership = Membership::start(setup, Arc::new(transport)).await.unwrap();
    handler.attach(membership.clone());
    TestNode {
        info,
        server,
        membership,
    }
}

/// Three nodes; `b` and `c` know only `a`'s address. Node `a` starts with `layout_of(infos)`.
async fn three_nodes(layout_of: impl Fn(&[NodeInfo]) -> Option<Layout>) -> Vec<TestNode> {
    let mut bound = Vec::new();
    for id in ["a", "b", "c"] {
        let (server, handler) = bind("127.0.0.1:0".parse().unwrap()).await;
        bound.push((info(id, &server), server, handler));
    }
    let infos: Vec<NodeInfo> = bound.iter().map(|(info, ..)| info.clone()).collect();
    let seed = bound[0].1.local_addr();
    let mut nodes = Vec::new();
    for (index, (info, server, handler)) in bound.into_iter().enumerate() {
        let (seeds, layout) = match index {
            0 => (Vec::new(), layout_of(&infos)),
            _ => (vec![seed], None),
        };
        nodes.push(start(info, server, handler, seeds, layout).await);
    }
    nodes
}

fn layout(version: u64, infos: &[NodeInfo], replication: usize) -> Layout {
    Layout::new(version, infos.to_vec(), replication).unwrap()
}

/// Polls `condition` every 10 ms until it holds; fails the test after `bound`.
async fn wait_until(what: &str, bound: Duration, condition: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < bound, "not within {bound:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

fn all_up(nodes: &[TestNode]) -> bool {
    nodes.iter().all(|node| {
        let view = node.membership.view();
        nodes.iter().all(|other| {
            view.status(&other.info.id) == NodeStatus::Up
                && view.addr(&other.info.id) == other.info.rpc_addr.parse().ok()
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_three_nodes_with_one_seed_learn_each_other_and_the_layout() {
    let nodes = three_nodes(|infos| Some(layout(1, infos, 2))).await;
    wait_until("all three see each other up", SLACK, || all_up(&nodes)).await;
    wait_until("b and c pulled layout v1", SLACK, || {
        nodes
            .iter()
            .all(|node| node.membership.view().layout().version == 1)
    })
    .await;
    let view = nodes[2].membership.view();
    assert_eq!(view.local_id(), NodeId::from("c"));
    assert_eq!(view.ring().version(), 1);
    assert_eq!(view.ring().nodes().len(), 3);
    assert_eq!(view.status(&NodeId::from("nobody")), NodeStatus::Down);
    let liveness: &dyn crate::cluster::liveness::Liveness = &view;
    assert!(liveness.is_up(&NodeId::from("a")) && !liveness.is_up(&NodeId::from("nobody")));
    assert_eq!(
        liveness.addr(&NodeId::from("b")),
        nodes[1].info.rpc_addr.parse().ok()
    );
    let peer_b = &view.snapshot().peers[&NodeId::from("b")];
    assert!(peer_b.in_layout);
    assert_eq!(peer_b.info.zone, "zone-b", "first-hand description kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_a_stopped_node_turns_suspect_then_down_and_up_when_back() {
    let mut nodes = three_nodes(|_| None).await;
    wait_until("all three see each other up", SLACK, || all_up(&nodes)).await;

    // Stop c entirely, not only its RPC server: a live membership would keep pinging a and b,
    // and any message from c rightly keeps it Up.
    let stopped = nodes.pop().unwrap();
    let (c_id, c_info) = (stopped.info.id.clone(), stopped.info.clone());
    let c_addr = stopped.server.local_addr();
    stopped.membership.shutdown().await;
    stopped.server.shutdown().await;
    let stopped_at = Instant::now();

    // Record, on a and b, when c was first seen Suspect and when Down.
    let mut first_suspect = [None; 2];
    let mut first_down = [None; 2];
    while first_down.iter().any(Option::is_none) {
        assert!(stopped_at.elapsed() < DOWN + SLACK, "c not Down in time");
        for (index, node) in nodes.iter().enumerate() {
            match node.membership.view().status(&c_id) {
                NodeStatus::Up => {}
                NodeStatus::Suspect => {
                    first_suspect[index].get_or_insert(stopped_at.elapsed());
                }
                NodeStatus::Down => {
                    first_down[index].get_or_insert(stopped_at.elapsed());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for index in 0..2 {
        let suspect = first_suspect[index].expect("Suspect before Down");
        let down = first_down[index].unwrap();
        // c's last message left at most one heartbeat (plus a call) before it stopped.
        assert!(
            suspect + 2 * HEARTBEAT >= SUSPECT,
            "suspected early: {suspect:?}"
        );
        assert!(down + 2 * HEARTBEAT >= DOWN, "down early: {down:?}");
        assert!(suspect < down, "{suspect:?} then {down:?}");
    }
    assert_eq!(
        nodes[0].membership.view().status(&nodes[1].info.id),
        NodeStatus::Up
    );

    // Same identity, same address: the others see it Up again.
    let (server, handler) = bind(c_addr).await;
    let seeds = vec![nodes[0].server.local_addr()];
    nodes.push(start(c_info, server, handler, seeds, None).await);
    wait_until("c is up again everywhere", SLACK, || all_up(&nodes)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_layout_v2_reaches_every_node_and_stale_versions_are_refused() {
    let nodes = three_nodes(|infos| Some(layout(1, infos, 2))).await;
    wait_until("everyone on v1", SLACK, || {
        all_up(&nodes)
            && nodes
                .iter()
                .all(|n| n.membership.view().layout().version == 1)
    })
    .await;
    let mut changes: Vec<_> = nodes
        .iter()
        .map(|n| n.membership.view().subscribe())
        .collect();

    let infos: Vec<NodeInfo> = nodes.iter().map(|n| n.info.clone()).collect();
    let v2 = layout(2, &infos, 3);
    nodes[1].membership.apply_layout(v2.clone()).await.unwrap();
    assert_eq!(
        *nodes[1].membership.view().layout(),
        v2,
        "applied locally at once"
    );
    let took = wait_until("v2 everywhere", SLACK, || {
        nodes
            .iter()
            .all(|n| n.membership.view().ring().version() == 2)
    })
    .await;
    assert!(took < 5 * HEARTBEAT + SLACK / 3, "gossip took {took:?}");
    for (node, change) in nodes.iter().zip(&mut changes) {
        assert!(
            change.has_changed().unwrap(),
            "{} not notified",
            node.info.id
        );
        assert_eq!(**change.borrow_and_update(), v2);
        assert_eq!(node.membership.view().layout().replication, 3);
    }

    let stale = layout(2, &infos, 1);
    let refused = nodes[0].membership.apply_layout(stale).await.unwrap_err();
    assert_eq!(
        refused,
        ApplyLayoutError::WrongVersion {
            current: 2,
            proposed: 2
        }
    );
    let skipping = layout(4, &infos, 1);
    assert!(matches!(
        nodes[2].membership.apply_layout(skipping).await,
        Err(ApplyLayoutError::WrongVersion {
            current: 2,
            proposed: 4
        })
    ));
    let mut invalid = layout(3, &infos, 1);
    invalid.replication = 0;
    assert_eq!(
        nodes[0].membership.apply_layout(invalid).await,
        Err(ApplyLayoutError::Invalid(
            ring::LayoutError::ZeroReplication
        ))
    );
    assert!(nodes
        .iter()
        .all(|n| n.membership.view().layout().version == 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_refuses_a_ping_that_lies_about_its_sender() {
    let nodes = three_nodes(|_| None).await;
    let ping = GossipRequest::Ping {
        from: nodes[1].info.clone(),
        layout_version: 0,
        peers: Vec::new(),
    };
    let answer = nodes[0].membership.handle_gossip("c", ping).await;
    assert!(matches!(answer, GossipResponse::Refused(_)), "{answer:?}");
    nodes[0].membership.shutdown().await;
    let after = nodes[0]
        .membership
        .handle_gossip("b", GossipRequest::PullLayout)
        .await;
    assert!(matches!(after, GossipResponse::Refused(_)), "{after:?}");
    let empty = Layout {
        version: 1,
        nodes: Vec::new(),
        replication: 1,
    };
    let applied = nodes[0].membership.apply_layout(empty).await;
    assert_eq!(applied, Err(ApplyLayoutError::Stopped));
}
