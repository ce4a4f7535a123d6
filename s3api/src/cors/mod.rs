//! Cross-origin resource sharing (CORS) for buckets, as S3 does it.
//!
//! A bucket owner stores a configuration with PutBucketCors ([`CorsConfiguration::parse`]
//! validates the XML and [`CorsConfiguration::to_xml`] writes the canonical document that is
//! stored with the bucket and returned by GetBucketCors). It is then used twice:
//!
//! - **Preflight** (`OPTIONS /bucket/key`, unauthenticated): the first rule that allows the
//!   `Origin`, the `Access-Control-Request-Method` and every `Access-Control-Request-Headers`
//!   entry answers ([`CorsConfiguration::preflight`]); no match is 403 AccessForbidden.
//! - **Actual requests** carrying `Origin`: the first rule allowing origin and method adds
//!   `Access-Control-Allow-Origin` and friends to the response, error responses included
//!   ([`CorsConfiguration::actual_headers`]). The configuration comes with the bucket's
//!   permissions, which every request reads once anyway, and is parsed only for requests
//!   that carry an `Origin` header.

mod config;
mod matching;
#[cfg(test)]
mod tests;

pub use config::{CorsConfiguration, CorsRule, MAX_CORS_RULES};
pub use matching::{actual_response_headers, CorsHeaders};
