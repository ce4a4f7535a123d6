//! The counted figures ([`Usage`]) and the single node's per-bucket counters
//! ([`BucketCounters`]).

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Objects and bytes stored, or a change of them (hence signed). Bytes are the objects'
/// logical sizes (what S3 reports), not the disk space their replicas take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Usage {
    /// Live objects (or their change).
    pub objects: i64,
    /// Sum of the live objects' sizes (or its change).
    pub bytes: i64,
}

impl Usage {
    /// One object of `size` bytes.
    pub fn object(size: u64) -> Usage {
        Usage {
            objects: 1,
            bytes: i64::try_from(size).unwrap_or(i64::MAX),
        }
    }

    /// What a key contributes: one object of `size` if live, nothing otherwise.
    pub fn of_live(size: Option<u64>) -> Usage {
        size.map(Usage::object).unwrap_or_default()
    }

    /// The change from a key's contribution `before` to `after`.
    pub fn delta(before: Usage, after: Usage) -> Usage {
        Usage {
            objects: after.objects - before.objects,
            bytes: after.bytes.saturating_sub(before.bytes),
        }
    }

    /// Adds `other` (saturating).
    pub fn add(&mut self, other: Usage) {
        self.objects = self.objects.saturating_add(other.objects);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }

    /// Whether both figures are zero.
    pub fn is_zero(&self) -> bool {
        self.objects == 0 && self.bytes == 0
    }

    /// The objects, never below zero (a transiently negative sum shows as 0).
    pub fn objects_u64(&self) -> u64 {
        u64::try_from(self.objects).unwrap_or(0)
    }

    /// The bytes, never below zero.
    pub fn bytes_u64(&self) -> u64 {
        u64::try_from(self.bytes).unwrap_or(0)
    }
}

/// Per-bucket usage of a single node's store, kept exactly: the store adds the delta of
/// every committed change of an object register, and counts from a scan when it opens.
#[derive(Debug, Default)]
pub struct BucketCounters {
    buckets: Mutex<HashMap<String, Usage>>,
}

impl BucketCounters {
    /// Empty counters.
    pub fn new() -> BucketCounters {
        BucketCounters::default()
    }

    /// Adds `delta` to `bucket`'s figures; a bucket whose figures reach zero is forgotten.
    pub fn apply(&self, bucket: &str, delta: Usage) {
        if delta.is_zero() {
            return;
        }
        let mut buckets = self.lock();
        let entry = buckets.entry(bucket.to_owned()).or_default();
        entry.add(delta);
        if entry.is_zero() {
            buckets.remove(bucket);
        }
    }

    /// Replaces every figure (after a full scan).
    pub fn replace(&self, figures: HashMap<String, Usage>) {
        *self.lock() = figures;
    }

    /// `bucket`'s figures (zero if it holds nothing).
    pub fn bucket(&self, bucket: &str) -> Usage {
        self.lock().get(bucket).copied().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Usage>> {
        // Plain figures: a panic elsewhere leaves nothing half-updated worth refusing.
        self.buckets
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_follow_a_key_through_put_overwrite_and_delete() {
        let counters = BucketCounters::new();
        let none = Usage::of_live(None);
        let small = Usage::of_live(Some(10));
        let large = Usage::of_live(Some(300));
        counters.apply("b", Usage::delta(none, small));
        assert_eq!(
            counters.bucket("b"),
            Usage {
                objects: 1,
                bytes: 10
            }
        );
        counters.apply("b", Usage::delta(small, large));
        assert_eq!(
            counters.bucket("b"),
            Usage {
                objects: 1,
                bytes: 300
            }
        );
        counters.apply("c", Usage::delta(none, small));
        assert_eq!(
            counters.bucket("c"),
            Usage {
                objects: 1,
                bytes: 10
            }
        );
        counters.apply("b", Usage::delta(large, none));
        assert_eq!(counters.bucket("b"), Usage::default());
        assert!(
            counters.lock().get("b").is_none(),
            "empty buckets are forgotten"
        );
    }

    #[test]
    fn negative_figures_read_as_zero() {
        let usage = Usage {
            objects: -1,
            bytes: -5,
        };
        assert_eq!((usage.objects_u64(), usage.bytes_u64()), (0, 0));
    }
}
