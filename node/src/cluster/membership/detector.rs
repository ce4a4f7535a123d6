//! The failure detector: a pure state machine from "when did we last hear from each peer" to
//! [`NodeStatus`]. It owns no timer and reads no clock: every call takes `now`, so tests drive
//! it through minutes of silence without sleeping.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ring::NodeId;
use serde::{Deserialize, Serialize};

/// Where the failure detector's idea of "now" comes from: [`SystemClock`] in a node, a
/// hand-driven clock in tests.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The monotonic operating-system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// What this node believes about a peer's liveness. Liveness never changes the layout: a
/// `Down` node keeps its ranges and is covered by sloppy quorum and hinted handoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NodeStatus {
    /// Heard from within the suspicion timeout.
    Up,
    /// Silent for longer than the suspicion timeout, or never heard from yet: still worth
    /// trying, but coordinators should prefer other replicas.
    Suspect,
    /// Silent for longer than the down timeout (or unknown): treat as unavailable.
    Down,
}

/// One watched peer.
#[derive(Debug, Clone, Copy)]
struct Watched {
    /// When we started watching it; stands in for `last_heard` until the first message.
    since: Instant,
    last_heard: Option<Instant>,
    status: NodeStatus,
}

/// Heartbeat-timeout failure detector with a suspicion stage.
///
/// A peer heard from within `suspect_after` is [`NodeStatus::Up`]; silent longer, it is
/// [`NodeStatus::Suspect`]; silent for `down_after`, [`NodeStatus::Down`]. Any message from
/// it makes it `Up` at once. A peer never heard from since we started watching it is
/// `Suspect` (not `Up`: we have no evidence it runs) and becomes `Down` after `down_after`.
#[derive(Debug, Clone)]
pub struct FailureDetector {
    suspect_after: Duration,
    down_after: Duration,
    watched: HashMap<NodeId, Watched>,
}

impl FailureDetector {
    /// A detector with the given timeouts; `down_after` is raised to `suspect_after` if lower.
    pub fn new(suspect_after: Duration, down_after: Duration) -> Self {
        Self {
            suspect_after,
            down_after: down_after.max(suspect_after),
            watched: HashMap::new(),
        }
    }

    /// Starts watching `peer` if it is not watched yet. Returns true if it was new.
    pub fn watch(&mut self, peer: &NodeId, now: Instant) -> bool {
        if self.watched.contains_key(peer) {
            return false;
        }
        let watched = Watched {
            since: now,
            last_heard: None,
            status: NodeStatus::Suspect,
        };
        self.watched.insert(peer.clone(), watched);
        true
    }

    /// Stops watching `peer`; its status becomes unknown.
    pub fn forget(&mut self, peer: &NodeId) {
        self.watched.remove(peer);
    }

    /// Records a message from `peer` (watching it if needed). Returns true if its status
    /// changed, which is the case unless it was already `Up`.
    pub fn heard_from(&mut self, peer: &NodeId, now: Instant) -> bool {
        self.watch(peer, now);
        let Some(watched) = self.watched.get_mut(peer) else {
            return false;
        };
        // A message delivered late must not move the clock backwards.
        if watched.last_heard.is_none_or(|last| last < now) {
            watched.last_heard = Some(now);
        }
        let changed = watched.status != NodeStatus::Up;
        watched.status = NodeStatus::Up;
        changed
    }

    /// Re-evaluates every peer at `now` and returns those whose status changed.
    pub fn sweep(&mut self, now: Instant) -> Vec<(NodeId, NodeStatus)> {
        let mut changed = Vec::new();
        for (peer, watched) in &mut self.watched {
            let status = evaluate(watched, now, self.suspect_after, self.down_after);
            if status != watched.status {
                watched.status = status;
                changed.push((peer.clone(), status));
            }
        }
        changed
    }

    /// The status as of the last [`Self::sweep`] or message; `None` for a peer not watched.
    pub fn status(&self, peer: &NodeId) -> Option<NodeStatus> {
        self.watched.get(peer).map(|watched| watched.status)
    }

    /// How long `peer` has been silent at `now` (since we started watching it if it never
    /// spoke); `None` for a peer not watched.
    pub fn silent_for(&self, peer: &NodeId, now: Instant) -> Option<Duration> {
        let watched = self.watched.get(peer)?;
        Some(now.saturating_duration_since(watched.last_heard.unwrap_or(watched.since)))
    }
}

fn evaluate(
    watched: &Watched,
    now: Instant,
    suspect_after: Duration,
    down_after: Duration,
) -> NodeStatus {
    let silent = now.saturating_duration_since(watched.last_heard.unwrap_or(watched.since));
    if silent >= down_after {
        NodeStatus::Down
    } else if watched.last_heard.is_none() || silent >= suspect_after {
        NodeStatus::Suspect
    } else {
        NodeStatus::Up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUSPECT: Duration = Duration::from_secs(3);
    const DOWN: Duration = Duration::from_secs(8);

    fn peer() -> NodeId {
        NodeId::from("peer")
    }

    #[test]
    fn a_silent_peer_goes_up_then_suspect_then_down() {
        let start = Instant::now();
        let mut detector = FailureDetector::new(SUSPECT, DOWN);
        assert!(detector.heard_from(&peer(), start));
        assert_eq!(detector.status(&peer()), Some(NodeStatus::Up));

        let at = |secs_ms: u64| start + Duration::from_millis(secs_ms);
        assert!(detector.sweep(at(2_999)).is_empty());
        assert_eq!(
            detector.sweep(at(3_000)),
            vec![(peer(), NodeStatus::Suspect)]
        );
        assert!(detector.sweep(at(7_999)).is_empty());
        assert_eq!(detector.sweep(at(8_000)), vec![(peer(), NodeStatus::Down)]);
        assert!(detector.sweep(at(60_000)).is_empty(), "Down is stable");
        assert_eq!(
            detector.silent_for(&peer(), at(60_000)),
            Some(at(60_000) - start)
        );
    }

    #[test]
    fn any_message_makes_a_peer_up_again() {
        let start = Instant::now();
        let mut detector = FailureDetector::new(SUSPECT, DOWN);
        detector.heard_from(&peer(), start);
        detector.sweep(start + Duration::from_secs(10));
        assert_eq!(detector.status(&peer()), Some(NodeStatus::Down));

        let back = start + Duration::from_secs(11);
        assert!(detector.heard_from(&peer(), back));
        assert_eq!(detector.status(&peer()), Some(NodeStatus::Up));
        assert!(
            !detector.heard_from(&peer(), back),
            "Up stays Up: no change"
        );
        // Silence is measured from the latest message, not the first.
        assert!(detector
            .sweep(back + Duration::from_millis(2_999))
            .is_empty());
        assert_eq!(
            detector.sweep(back + SUSPECT),
            vec![(peer(), NodeStatus::Suspect)]
        );
    }

    #[test]
    fn a_peer_never_heard_from_is_suspect_until_down() {
        let start = Instant::now();
        let mut detector = FailureDetector::new(SUSPECT, DOWN);
        assert!(detector.watch(&peer(), start));
        assert!(!detector.watch(&peer(), start), "watching twice is a no-op");
        assert_eq!(detector.status(&peer()), Some(NodeStatus::Suspect));
        assert!(detector.sweep(start + Duration::from_secs(5)).is_empty());
        assert_eq!(
            detector.sweep(start + DOWN),
            vec![(peer(), NodeStatus::Down)]
        );
    }

    #[test]
    fn a_late_message_does_not_rewind_the_silence() {
        let start = Instant::now();
        let mut detector = FailureDetector::new(SUSPECT, DOWN);
        detector.heard_from(&peer(), start + Duration::from_secs(5));
        detector.heard_from(&peer(), start);
        assert!(detector.sweep(start + Duration::from_secs(7)).is_empty());
        assert_eq!(detector.status(&peer()), Some(NodeStatus::Up));
    }

    #[test]
    fn forgotten_and_unknown_peers_have_no_status() {
        let start = Instant::now();
        let mut detector = FailureDetector::new(SUSPECT, DOWN);
        detector.heard_from(&peer(), start);
        detector.forget(&peer());
        assert_eq!(detector.status(&peer()), None);
        assert_eq!(detector.status(&NodeId::from("other")), None);
        assert!(detector.sweep(start + DOWN).is_empty());
    }
}
