//! Mucura's operator API: JSON over HTTP on the admin port.
//!
//! - [`api`]: the documents exchanged (node and cluster status, errors); layouts are
//!   `ring::Layout` as JSON.
//! - [`server`]: routes a request to an [`server::AdminBackend`] the node implements, checking
//!   the bearer token; `/health` needs no token so load balancers and tests can poll it.
//! - [`client`]: the HTTP client the `mucura admin …` commands use.
//! - [`usage`]: the documents and filters of `GET /v1/usage` (usage per user and bucket).

pub mod api;
pub mod client;
pub mod server;
pub mod usage;
