//! Grid identities: X.509 user certificates and their RFC 3820 / Globus proxy certificates,
//! authenticated on a dedicated mutual-TLS listener (issue #6).
//!
//! How a connection is authenticated:
//! - [`ca_dir`] loads the trust anchors and CRLs of a grid CA directory and reloads them when
//!   fetch-crl refreshes it;
//! - [`proxy_cert`] tells proxies from user certificates and reads their proxyCertInfo;
//! - [`proxy`] validates a presented chain (webpki for the user certificate, the RFC 3820 rules
//!   for each proxy) into a [`GridIdentity`];
//! - [`verifier`] plugs that into rustls as a client-certificate verifier that also checks the
//!   handshake signature against the proxy's key, builds the listener's `ServerConfig`, and
//!   recovers the identity of an accepted connection.
//!
//! [`der`] and [`dn`] are the byte-level helpers: raw DER splitting and DN spelling.

pub mod ca_dir;
pub mod der;
pub mod dn;
pub mod error;
pub mod listener;
pub mod proxy;
pub mod proxy_cert;
pub mod verifier;

#[cfg(test)]
mod tests;

// The crate-level names the listener wiring (issue #6) will use.
#[allow(unused_imports)]
pub use ca_dir::{CaDirError, CaDirectory, TrustStore};
#[allow(unused_imports)]
pub use dn::DistinguishedNames;
#[allow(unused_imports)]
pub use error::ChainError;
#[allow(unused_imports)]
pub use proxy::{verify_chain, CrlPolicy, GridIdentity, ValidationOptions};
#[allow(unused_imports)]
pub use proxy_cert::ProxyType;
#[allow(unused_imports)]
pub use verifier::{server_config, GridClientVerifier, GridTlsError};
