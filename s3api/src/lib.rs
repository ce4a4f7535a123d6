//! The S3 wire protocol for Mucura.
//!
//! A request flows through this crate as follows:
//!
//! 1. [`service`] receives a hyper request, assigns a request id and finds the target bucket
//!    and key ([`router`], path-style or virtual-host style).
//! 2. [`auth`] verifies the signature (SigV4 header or query, SigV2) against a
//!    [`auth::CredentialProvider`] and says what remains to check in the body.
//! 3. [`router`] names the operation from method, path and query.
//! 4. The handlers in [`handlers`] parse headers and XML ([`xml`]), evaluate conditions
//!    ([`conditional`], [`range`]) and call the [`backend::S3Backend`] the node implements. Object
//!    bodies arrive through [`body::ObjectBody`], which decodes `aws-chunked` and verifies
//!    signatures, MD5 and checksums while streaming.
//!    Browser form uploads (POST Object) check their form's signature and policy with
//!    [`post_policy`]; [`cors`] answers preflights and adds CORS headers to responses.
//! 5. Errors anywhere become [`error::S3Error`] XML bodies with AWS's codes.
//! 6. [`observe`] counts the bytes in and out and, once the response body is over, hands a
//!    [`observe::RequestRecord`] to the node's [`observe::RequestObserver`] (metrics, access log).

pub mod access;
pub mod auth;
pub mod backend;
pub mod body;
pub mod error;

pub use error::{S3Error, S3ErrorCode, S3Result};
pub mod conditional;
pub mod cors;
pub mod enforce;
pub mod handlers;
pub mod observe;
pub mod post_policy;
pub mod range;
pub mod router;
pub mod service;
pub mod sts;
pub mod xml;
