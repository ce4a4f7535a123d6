//! `aws-chunked` payload decoding with per-chunk and trailer signature verification.
//!
//! INTERFACE SKELETON — being implemented.

/// What verifying chunk signatures needs, taken from the request's SigV4 header.
#[derive(Clone)]
pub struct ChunkSigningContext {
    /// The SigV4 signing key derived for the request's scope (date/region/s3/aws4_request).
    pub signing_key: [u8; 32],
    /// `x-amz-date` of the request, e.g. `20130524T000000Z`.
    pub amz_date: String,
    /// Credential scope, e.g. `20130524/us-east-1/s3/aws4_request`.
    pub scope: String,
    /// The request's header signature; the first chunk's signature chains from it.
    pub seed_signature: String,
    /// Whether trailing headers (STREAMING-…-TRAILER) follow the last chunk.
    pub has_trailer: bool,
}

impl std::fmt::Debug for ChunkSigningContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkSigningContext")
            .field("amz_date", &self.amz_date)
            .field("scope", &self.scope)
            .field("has_trailer", &self.has_trailer)
            .finish_non_exhaustive()
    }
}
