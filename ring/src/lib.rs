//! Mucura's cluster layout and consistent-hash ring: pure placement math, no I/O, no async.
//!
//! # Map of the crate
//!
//! - [`layout`]: [`NodeId`], [`NodeInfo`], the versioned [`Layout`] an operator stages, and its
//!   validation ([`LayoutError`]).
//! - [`hash`]: the BLAKE3-based hashes that put keys ([`hash_key`], [`hash_object_key`]) and
//!   virtual-node tokens on a `u64` ring. Platform- and process-independent.
//! - [`ring`]: [`Ring::new`] turns a layout into a token ring and precomputes the preference
//!   list of every range; [`Ring::preference_list`] answers "who holds this key".
//! - [`moves`]: [`moved_ranges`] compares the rings of two layout versions and lists the
//!   sub-ranges whose owners change, for the rebalancer.
//!
//! # How a lookup flows
//!
//! The coordinator hashes `(bucket, key)` (or a block's hash) to a `u64`, asks the ring of the
//! current layout for the preference list, and fans the request out to those N nodes, falling
//! back to [`Ring::handoff_candidates`] for hinted writes when some are down.
//!
//! # Why we build on `hashring` instead of using it alone
//!
//! `hashring` 0.3.6 keeps a sorted ring of values and finds the first one clockwise from a key;
//! we use it for exactly that. What it lacks we add here:
//! - **Weights.** It has none, so each node gets virtual nodes in proportion to its capacity
//!   ([`VNODES_PER_AVERAGE_NODE`] for a node of average capacity), with tokens derived from
//!   BLAKE3 of (node id, vnode index) rather than its default SipHash of a Rust value.
//! - **Replicas.** Its `get_with_replicas` clones and rotates the whole ring on every call and
//!   may return the same physical node twice. Instead, once per layout, we cut the hash space
//!   into the ranges between consecutive tokens and compute each range's preference list: the
//!   first N distinct nodes clockwise, taking nodes from unused zones first and reusing zones
//!   only when every zone is already in the list. A lookup is then one binary search.

pub mod hash;
pub mod layout;
pub mod moves;
pub mod ring;

pub use hash::{hash_key, hash_object_key};
pub use layout::{Layout, LayoutError, NodeId, NodeInfo};
pub use moves::{moved_ranges, RangeMove};
pub use ring::{Ring, VNODES_PER_AVERAGE_NODE};
