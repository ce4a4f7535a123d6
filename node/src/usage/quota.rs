//! Quota enforcement at write time ([`QuotaGuard`]): the bucket owner's limits against the
//! owner's cluster-wide usage, as a [`UsageView`] reports it.
//!
//! The usage of every owner is computed from the view at most every [`CACHE_TTL`] (it scans
//! the bucket list), and the writes this node admitted since (reservations) are added, so a
//! client writing through one node is stopped at once. Slack, stated in `docs/DESIGN.md`:
//! writes admitted concurrently (on this node, or on other nodes within the view's lag)
//! each see the usage without the others, so an owner can overshoot by what such writes
//! add; an overwrite is counted as a new object until the view catches up (stricter).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use s3api::{S3Error, S3ErrorCode};

use super::counters::Usage;
use super::traffic::Traffic;
use super::UsageError;
use crate::identity::IdentityStore;

/// How long a computed per-owner usage is reused: bounds the cost of a quota check (one
/// scan of the bucket list per second at most) while reservations keep it exact for this
/// node's own writes.
pub const CACHE_TTL: Duration = Duration::from_secs(1);

/// One bucket's cluster-wide usage and its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketUsage {
    /// The bucket's name.
    pub bucket: String,
    /// The owner's user id (whose quota the bucket counts toward).
    pub owner: String,
    /// Objects and bytes stored in it.
    pub usage: Usage,
    /// Requests and bytes transferred (in a cluster: the sum of every node's; a single
    /// node's view leaves it empty, its counters are read directly).
    pub traffic: Traffic,
}

/// Where usage comes from: the single node's exact counters, or the cluster's published
/// per-node reports.
pub trait UsageView: Send + Sync {
    /// Every bucket with its owner and usage.
    fn buckets(&self) -> Result<Vec<BucketUsage>, UsageError>;

    /// How far behind committed writes [`UsageView::buckets`] may be: reservations younger
    /// than this (before the figures were read) are still added.
    fn lag(&self) -> Duration;
}

/// One admitted write, counted until the view surely includes it.
#[derive(Debug, Clone)]
struct Reservation {
    at: Instant,
    owner: String,
    usage: Usage,
}

#[derive(Default)]
struct Cache {
    computed: Option<Instant>,
    by_owner: HashMap<String, Usage>,
}

/// Checks writes against the bucket owner's quota. Shared by a node's S3 backend.
pub struct QuotaGuard {
    users: Arc<dyn IdentityStore>,
    cache: Mutex<Cache>,
    reservations: Mutex<VecDeque<Reservation>>,
}

impl QuotaGuard {
    /// A guard reading quotas from `users`.
    pub fn new(users: Arc<dyn IdentityStore>) -> QuotaGuard {
        QuotaGuard {
            users,
            cache: Mutex::new(Cache::default()),
            reservations: Mutex::new(VecDeque::new()),
        }
    }

    /// `Ok` if `owner` may store `adding` more (objects and bytes) without exceeding a
    /// quota; `QuotaExceeded` naming the limit and the usage otherwise. Owners without a
    /// user record (root, legacy buckets) or without quotas are never limited. A failing
    /// view or user store refuses nothing: quotas must not make the store unavailable.
    pub fn check(&self, view: &dyn UsageView, owner: &str, adding: Usage) -> Result<(), S3Error> {
        let user = match self.users.user(owner) {
            Ok(Some(user)) => user,
            Ok(None) => return Ok(()),
            Err(err) => {
                tracing::warn!(owner, "reading the owner's quota: {err}");
                return Ok(());
            }
        };
        if user.quota_bytes.is_none() && user.quota_objects.is_none() {
            return Ok(());
        }
        let used = match self.usage_of(view, owner) {
            Ok(used) => used,
            Err(err) => {
                tracing::warn!(
                    owner,
                    "computing the owner's usage for a quota check: {err}"
                );
                return Ok(());
            }
        };
        check_limits(owner, used, adding, user.quota_bytes, user.quota_objects)
    }

    /// Records a write that was admitted and committed, so checks on this node count it
    /// until the view does.
    pub fn record(&self, owner: &str, usage: Usage) {
        if usage.is_zero() {
            return;
        }
        let mut reservations = self.reservations();
        reservations.push_back(Reservation {
            at: Instant::now(),
            owner: owner.to_owned(),
            usage,
        });
    }

    /// `owner`'s usage: the (cached) view's figures plus reservations the view may miss.
    pub fn usage_of(&self, view: &dyn UsageView, owner: &str) -> Result<Usage, UsageError> {
        let (computed, mut used) = {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            let fresh = cache.computed.is_some_and(|at| at.elapsed() < CACHE_TTL);
            if !fresh {
                // Taken before reading, so a write committed while the view is read is
                // covered by its reservation.
                let now = Instant::now();
                let mut by_owner: HashMap<String, Usage> = HashMap::new();
                for bucket in blocking(|| view.buckets())? {
                    by_owner.entry(bucket.owner).or_default().add(bucket.usage);
                }
                *cache = Cache {
                    computed: Some(now),
                    by_owner,
                };
            }
            let computed = cache.computed.unwrap_or_else(Instant::now);
            (
                computed,
                cache.by_owner.get(owner).copied().unwrap_or_default(),
            )
        };
        let lag = view.lag();
        let since = computed.checked_sub(lag);
        let mut reservations = self.reservations();
        // Forget reservations every view computed from now on includes.
        let keep_for = lag + CACHE_TTL * 2;
        while reservations
            .front()
            .is_some_and(|first| first.at.elapsed() > keep_for)
        {
            reservations.pop_front();
        }
        for reservation in reservations.iter() {
            let recent = since.is_none_or(|since| reservation.at >= since);
            if recent && reservation.owner == owner {
                used.add(reservation.usage);
            }
        }
        Ok(used)
    }

    fn reservations(&self) -> std::sync::MutexGuard<'_, VecDeque<Reservation>> {
        self.reservations
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// The refusal, if `used` + `adding` exceeds a limit. Only growth is refused: a write that
/// adds nothing (a same-size overwrite counted as zero) passes even at the limit.
pub fn check_limits(
    owner: &str,
    used: Usage,
    adding: Usage,
    quota_bytes: Option<u64>,
    quota_objects: Option<u64>,
) -> Result<(), S3Error> {
    let exceeds = |used: i64, adding: i64, limit: u64| {
        adding > 0 && i128::from(used.max(0)) + i128::from(adding) > i128::from(limit)
    };
    if let Some(limit) = quota_bytes {
        if exceeds(used.bytes, adding.bytes, limit) {
            return Err(refusal(
                owner,
                "bytes",
                limit,
                used.bytes_u64(),
                adding.bytes,
            ));
        }
    }
    if let Some(limit) = quota_objects {
        if exceeds(used.objects, adding.objects, limit) {
            return Err(refusal(
                owner,
                "objects",
                limit,
                used.objects_u64(),
                adding.objects,
            ));
        }
    }
    Ok(())
}

/// Runs `work` (a scan of local tables) telling a multi-thread runtime that this worker
/// blocks, so other requests move to other workers meanwhile.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

fn refusal(owner: &str, what: &str, limit: u64, used: u64, adding: i64) -> S3Error {
    S3Error::new(
        S3ErrorCode::QuotaExceeded,
        format!(
            "The quota of {limit} {what} of the bucket owner ({owner}) would be exceeded: \
             {used} {what} in use, this request adds {adding}."
        ),
    )
    .with_detail("QuotaLimit", what)
    .with_detail("Quota", limit.to_string())
    .with_detail("CurrentUsage", used.to_string())
}
