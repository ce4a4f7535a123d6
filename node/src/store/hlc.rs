//! A hybrid logical clock: wall-clock milliseconds with a logical counter, packed in a `u64`.
//!
//! The upper 48 bits hold Unix milliseconds, the lower 16 a counter that orders events within
//! one millisecond (and keeps the clock moving forward when the wall clock steps back). Version
//! stamps compare these values first, so a later commit on any node normally wins.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Bits reserved for the logical counter.
const COUNTER_BITS: u32 = 16;

/// A monotonic hybrid logical clock, safe to share between threads.
#[derive(Debug, Default)]
pub struct HybridClock {
    last: AtomicU64,
}

impl HybridClock {
    /// A clock that starts at the current wall time.
    pub fn new() -> HybridClock {
        HybridClock::default()
    }

    /// A new timestamp, strictly greater than every one this clock issued or observed.
    pub fn now(&self) -> u64 {
        let wall = wall_millis() << COUNTER_BITS;
        let mut next = 0;
        // fetch_update retries until no other thread raced us; the closure always succeeds.
        let _ = self
            .last
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                next = wall.max(last.saturating_add(1));
                Some(next)
            });
        next
    }

    /// Moves the clock past a timestamp seen elsewhere (a stored record, a peer's message).
    pub fn observe(&self, seen: u64) {
        self.last.fetch_max(seen, Ordering::AcqRel);
    }
}

/// The wall-clock milliseconds part of a timestamp.
pub fn millis_of(timestamp: u64) -> u64 {
    timestamp >> COUNTER_BITS
}

fn wall_millis() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    // 48 bits of milliseconds last until the year 10889.
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX >> COUNTER_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_strictly_increase_and_track_wall_time() {
        let clock = HybridClock::new();
        let first = clock.now();
        let mut previous = first;
        for _ in 0..10_000 {
            let next = clock.now();
            assert!(next > previous);
            previous = next;
        }
        let wall = wall_millis();
        assert!(millis_of(first) <= wall && wall - millis_of(first) < 60_000);
    }

    #[test]
    fn observing_a_future_timestamp_moves_the_clock_past_it() {
        let clock = HybridClock::new();
        let future = (wall_millis() + 3_600_000) << COUNTER_BITS;
        clock.observe(future);
        assert!(clock.now() > future);
        // Observing an older value never moves the clock back.
        clock.observe(1);
        assert!(clock.now() > future);
    }
}
