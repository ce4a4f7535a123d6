//! The cluster as this node sees it, for `GET /v1/cluster/status`.

use admin::api::{ClusterApiError, ClusterNodeStatus, ClusterStatus, PeerLiveness};
use ring::NodeInfo;

use super::ClusterNode;
use crate::cluster::membership::NodeStatus;

impl ClusterNode {
    /// This node's id, layout version, every known node with its liveness, and the hints it
    /// holds. Reads the hint store: call it off latency-sensitive paths.
    pub fn status(&self) -> Result<ClusterStatus, ClusterApiError> {
        let snapshot = self.view.snapshot();
        let local_id = &snapshot.local.id;
        // This node as the layout lists it, if it is a member (the operator's zone and
        // capacity are what placement uses), else as it announces itself.
        let me = snapshot
            .layout
            .node(local_id)
            .cloned()
            .unwrap_or_else(|| snapshot.local.clone());
        let mut nodes = vec![node_status(
            &me,
            NodeStatus::Up,
            snapshot.layout.node(local_id).is_some(),
            true,
        )];
        nodes.extend(
            snapshot
                .peers
                .values()
                .map(|peer| node_status(&peer.info, peer.status, peer.in_layout, false)),
        );
        let pending_hints = self
            .tables
            .pending_hints()
            .map_err(|err| ClusterApiError::Internal(format!("reading the hint store: {err}")))?
            .len() as u64;
        Ok(ClusterStatus {
            node_id: local_id.to_string(),
            layout_version: snapshot.layout.version,
            replication: snapshot.layout.replication,
            nodes,
            pending_hints,
        })
    }
}

fn node_status(
    info: &NodeInfo,
    status: NodeStatus,
    in_layout: bool,
    is_self: bool,
) -> ClusterNodeStatus {
    ClusterNodeStatus {
        id: info.id.to_string(),
        zone: info.zone.clone(),
        capacity: info.capacity,
        rpc_addr: info.rpc_addr.clone(),
        status: match status {
            NodeStatus::Up => PeerLiveness::Up,
            NodeStatus::Suspect => PeerLiveness::Suspect,
            NodeStatus::Down => PeerLiveness::Down,
        },
        in_layout,
        is_self,
    }
}
