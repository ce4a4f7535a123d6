//! Request bodies for object data: aws-chunked decoding, payload signature checks, MD5 (the
//! ETag), Content-MD5, additional checksums and length checks, all while streaming.
//!
//! INTERFACE SKELETON — being implemented.

use bytes::Bytes;

use crate::auth::PayloadCheck;
use crate::backend::{ByteStream, ChecksumAlgorithm};
use crate::error::S3Result;

/// An object body being received. [`ObjectBody::chunk`] returns `Ok(None)` only after every
/// integrity check passed, so a backend that commits after `Ok(None)` never stores bad data.
pub struct ObjectBody {}

impl ObjectBody {
    /// Builds the reader over a raw HTTP body with the checks the headers and auth call for.
    pub fn from_request<B>(
        _body: B,
        _payload: PayloadCheck,
        _headers: &http::HeaderMap,
    ) -> S3Result<ObjectBody>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::fmt::Display,
    {
        todo!()
    }

    /// Wraps trusted bytes (copies): computes the MD5 only; `expected_len` is checked if given.
    pub fn from_stream(_stream: ByteStream, _expected_len: Option<u64>) -> ObjectBody {
        todo!()
    }

    /// The next payload bytes; `Ok(None)` at the verified end.
    pub async fn chunk(&mut self) -> S3Result<Option<Bytes>> {
        todo!()
    }

    /// MD5 of the payload, complete after `chunk` returned `Ok(None)`.
    pub fn md5(&self) -> [u8; 16] {
        todo!()
    }

    /// The verified additional checksum, if the client sent one.
    pub fn checksum(&self) -> Option<(ChecksumAlgorithm, String)> {
        todo!()
    }

    /// The decoded payload length the client declared, if it did.
    pub fn declared_len(&self) -> Option<u64> {
        todo!()
    }
}
