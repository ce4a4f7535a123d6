//! State-based CRDTs: what every replicated entry must be, and the last-writer-wins register
//! most of them are built from.
//!
//! Replication, hinted handoff, read repair and anti-entropy all do the same thing: send an
//! entry and merge it into what the receiver holds. That is only safe because merging obeys
//! the laws written on [`Crdt`]; the property tests below check them for [`Lww`].

use serde::{Deserialize, Serialize};

/// A state-based CRDT (a join semilattice). For all states `a`, `b`, `c` of one key,
/// `merge` must be
/// - **commutative**: `a ⊔ b == b ⊔ a`,
/// - **associative**: `(a ⊔ b) ⊔ c == a ⊔ (b ⊔ c)`,
/// - **idempotent**: `a ⊔ a == a`,
///
/// where `a ⊔ b` is `a` after `a.merge(&b)`. Then replicas that receive the same states in
/// any order, any number of times, end equal: retries, duplicates and reordering are harmless.
pub trait Crdt {
    /// Replaces `self` by the least upper bound of `self` and `other`.
    fn merge(&mut self, other: &Self);
}

/// Low bits of a [`Stamp::hlc`] that hold the logical counter; the bits above are Unix
/// milliseconds.
pub const HLC_COUNTER_BITS: u32 = 16;

/// Orders versions of one entry: hybrid-logical-clock time of the write, then the node that
/// wrote, then a random id. Every version gets a fresh uuid, so two different versions never
/// share a stamp and the order is total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamp {
    /// Hybrid logical clock (Unix milliseconds << 16 | counter) when the version was written.
    pub hlc: u64,
    /// A number identifying the writing node (for example the ring hash of its id).
    pub node: u64,
    /// Random tie-breaker, unique per version.
    pub uuid: [u8; 16],
}

impl Stamp {
    /// A stamp for a new version written at `hlc` by `node`, with a fresh random uuid.
    pub fn new(hlc: u64, node: u64) -> Stamp {
        Stamp {
            hlc,
            node,
            uuid: *uuid::Uuid::new_v4().as_bytes(),
        }
    }

    /// The wall-clock time of the write, in Unix milliseconds (the clock part of `hlc`).
    pub fn wall_millis(&self) -> u64 {
        self.hlc >> HLC_COUNTER_BITS
    }
}

/// Issues the stamps of one node's writes: a hybrid logical clock (wall-clock milliseconds,
/// and a counter when writes come faster or the clock goes back) that never repeats a value
/// and moves past every stamp the node observes, so a version this node writes after reading
/// another wins over it.
#[derive(Debug)]
pub struct StampClock {
    node: u64,
    last_hlc: std::sync::atomic::AtomicU64,
}

impl StampClock {
    /// The clock of the node numbered `node` (for example the ring hash of its id).
    pub fn new(node: u64) -> StampClock {
        StampClock {
            node,
            last_hlc: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The node number stamps carry.
    pub fn node(&self) -> u64 {
        self.node
    }

    /// Moves the clock past `hlc` (a stamp seen in stored or received data).
    pub fn observe(&self, hlc: u64) {
        self.last_hlc
            .fetch_max(hlc, std::sync::atomic::Ordering::AcqRel);
    }

    /// A stamp for a version written now: later than every stamp issued or observed.
    pub fn next(&self) -> Stamp {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let millis = u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX);
        let wall = millis.min(u64::MAX >> HLC_COUNTER_BITS) << HLC_COUNTER_BITS;
        let mut next = 0;
        // The closure always returns Some, so this cannot fail.
        let _ = self.last_hlc.fetch_update(
            std::sync::atomic::Ordering::AcqRel,
            std::sync::atomic::Ordering::Acquire,
            |last| {
                next = wall.max(last.saturating_add(1));
                Some(next)
            },
        );
        Stamp::new(next, self.node)
    }
}

/// A last-writer-wins register: one version of a value (or a tombstone) and its [`Stamp`].
///
/// Merging keeps the version with the larger stamp. Callers must never build two different
/// registers with the same stamp ([`Stamp::new`] draws a fresh uuid, so this holds unless a
/// stamp is copied by hand); with that, the merge is a CRDT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lww<T> {
    /// When and by whom this version was written.
    pub stamp: Stamp,
    /// The value; `None` is a tombstone (a delete that must win over older writes).
    pub value: Option<T>,
}

impl<T> Lww<T> {
    /// A live version.
    pub fn new(stamp: Stamp, value: T) -> Lww<T> {
        Lww {
            stamp,
            value: Some(value),
        }
    }

    /// A delete: a version without value that hides every older one.
    pub fn tombstone(stamp: Stamp) -> Lww<T> {
        Lww { stamp, value: None }
    }

    /// Whether this version is a delete.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }
}

impl<T: Clone> Crdt for Lww<T> {
    /// Keeps the larger stamp. Equal stamps mean the same version, so keeping `self` is right.
    fn merge(&mut self, other: &Self) {
        if other.stamp > self.stamp {
            *self = other.clone();
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn stamp_clock_never_repeats_and_moves_past_what_it_observes() {
        let clock = StampClock::new(7);
        let mut last = clock.next();
        assert_eq!(last.node, 7);
        for _ in 0..10_000 {
            let next = clock.next();
            assert!(next.hlc > last.hlc);
            last = next;
        }
        // A stamp from a node whose clock runs an hour ahead.
        let ahead = last.hlc + (3_600_000 << HLC_COUNTER_BITS);
        clock.observe(ahead);
        assert!(clock.next().hlc > ahead);
        // Observing the past changes nothing.
        let now = clock.next();
        clock.observe(1);
        assert!(clock.next().hlc > now.hlc);
    }

    /// SplitMix64: a tiny deterministic generator, so failures reproduce from the seed.
    pub(crate) struct TestRng(u64);

    impl TestRng {
        pub(crate) fn new(seed: u64) -> TestRng {
            TestRng(seed)
        }

        pub(crate) fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        pub(crate) fn below(&mut self, bound: u64) -> u64 {
            self.next_u64() % bound
        }
    }

    /// A register from a deliberately small stamp space, so that generated registers often
    /// share clock values or nodes and the tie-breaking paths run. The value and the uuid are
    /// functions of (hlc, node, variant), which keeps "equal stamp ⇒ equal version" true.
    fn arbitrary_register(rng: &mut TestRng) -> Lww<u32> {
        let hlc = rng.below(6);
        let node = rng.below(3);
        let variant = rng.below(2) as u8;
        let mut uuid = [0u8; 16];
        uuid[0] = variant;
        let stamp = Stamp { hlc, node, uuid };
        let value_seed = (hlc * 31 + node * 7 + u64::from(variant)) as u32;
        if value_seed % 5 == 1 {
            Lww::tombstone(stamp)
        } else {
            Lww::new(stamp, value_seed)
        }
    }

    fn merged<T: Crdt + Clone>(a: &T, b: &T) -> T {
        let mut out = a.clone();
        out.merge(b);
        out
    }

    const CASES: usize = 5_000;

    #[test]
    fn lww_merge_is_commutative() {
        let mut rng = TestRng::new(1);
        for case in 0..CASES {
            let (a, b) = (arbitrary_register(&mut rng), arbitrary_register(&mut rng));
            assert_eq!(merged(&a, &b), merged(&b, &a), "case {case}: {a:?} {b:?}");
        }
    }

    #[test]
    fn lww_merge_is_associative() {
        let mut rng = TestRng::new(2);
        for case in 0..CASES {
            let a = arbitrary_register(&mut rng);
            let b = arbitrary_register(&mut rng);
            let c = arbitrary_register(&mut rng);
            assert_eq!(
                merged(&merged(&a, &b), &c),
                merged(&a, &merged(&b, &c)),
                "case {case}: {a:?} {b:?} {c:?}"
            );
        }
    }

    #[test]
    fn lww_merge_is_idempotent() {
        let mut rng = TestRng::new(3);
        for case in 0..CASES {
            let a = arbitrary_register(&mut rng);
            let b = arbitrary_register(&mut rng);
            assert_eq!(merged(&a, &a), a, "case {case}: {a:?}");
            // Merging the same state again changes nothing either.
            let ab = merged(&a, &b);
            assert_eq!(merged(&ab, &b), ab, "case {case}: {a:?} {b:?}");
        }
    }

    #[test]
    fn any_delivery_order_converges_to_the_largest_stamp() {
        let mut rng = TestRng::new(4);
        for case in 0..500 {
            let versions: Vec<Lww<u32>> = (0..8).map(|_| arbitrary_register(&mut rng)).collect();
            let newest = versions
                .iter()
                .max_by_key(|version| version.stamp)
                .cloned()
                .unwrap();
            // Deliver in a shuffled order with duplicates, starting from a random version.
            let mut replica = versions[rng.below(8) as usize].clone();
            for _ in 0..16 {
                replica.merge(&versions[rng.below(8) as usize]);
            }
            for version in &versions {
                replica.merge(version);
            }
            assert_eq!(replica, newest, "case {case}");
        }
    }

    #[test]
    fn tombstones_win_over_older_values_and_lose_to_newer_ones() {
        let old = Lww::new(Stamp::new(10, 1), "a".to_string());
        let delete = Lww::<String>::tombstone(Stamp::new(20, 2));
        let rewrite = Lww::new(Stamp::new(30, 1), "b".to_string());
        assert!(merged(&old, &delete).is_tombstone());
        assert!(merged(&delete, &old).is_tombstone());
        assert_eq!(merged(&delete, &rewrite).value.as_deref(), Some("b"));
        assert!(
            Stamp::new(5, 9) < Stamp::new(6, 0),
            "clock time orders first"
        );
    }

    #[test]
    fn wall_millis_drops_the_counter_bits() {
        let hlc = (1_700_000_000_123 << HLC_COUNTER_BITS) | 0xBEEF;
        assert_eq!(Stamp::new(hlc, 1).wall_millis(), 1_700_000_000_123);
        assert_eq!(Stamp::new(0xFFFF, 1).wall_millis(), 0);
    }
}
