//! Request bodies for object data: aws-chunked decoding, payload signature checks, MD5 (the
//! ETag), Content-MD5, additional checksums and length checks, all while streaming.
//!
//! [`ObjectBody`] pulls transport frames one at a time and hands out slices of them (no copy
//! of payload bytes). Every hash is updated as the slice passes; the comparisons happen when the
//! transport ends, and only when all of them hold does [`ObjectBody::chunk`] return `Ok(None)`.
//! Memory held: the current frame plus, for `aws-chunked`, one partial header line.

mod checksum;
#[cfg(test)]
mod tests;

use std::pin::Pin;
use std::task::{ready, Poll};

use bytes::Bytes;
use futures_util::StreamExt;
use md5::{Digest, Md5};
use sha2::Sha256;

use crate::auth::chunked::AwsChunkedDecoder;
use crate::auth::PayloadCheck;
use crate::backend::{ByteStream, ChecksumAlgorithm};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use checksum::{ChecksumHasher, Expected, RequestedChecksum};

/// A raw HTTP request body as the S3 front end accepts it (hyper's `Incoming` in the server,
/// any `http_body::Body` of `Bytes` in tests).
pub trait RequestBody:
    http_body::Body<Data = Bytes, Error: std::fmt::Display> + Send + Unpin + 'static
{
}

impl<B> RequestBody for B where
    B: http_body::Body<Data = Bytes, Error: std::fmt::Display> + Send + Unpin + 'static
{
}

/// An object body being received. [`ObjectBody::chunk`] returns `Ok(None)` only after every
/// integrity check passed, so a backend that commits after `Ok(None)` never stores bad data.
pub struct ObjectBody {
    /// Transport frames (already mapped to S3 errors).
    source: ByteStream,
    /// The not yet consumed rest of the current frame.
    pending: Bytes,
    /// The `aws-chunked` decoder, or `None` when the frames are the payload itself.
    decoder: Option<AwsChunkedDecoder>,
    hashers: Hashers,
    expected: Expectations,
    declared_len: Option<u64>,
    received: u64,
    state: State,
    md5: [u8; 16],
    checksum: Option<(ChecksumAlgorithm, String)>,
}

/// Hashes updated as payload passes; only the ones some check needs are present.
struct Hashers {
    md5: Md5,
    /// For `x-amz-content-sha256` or a SHA-256 additional checksum (one pass serves both).
    sha256: Option<Sha256>,
    /// For a CRC32, CRC32C or SHA-1 additional checksum.
    checksum: Option<ChecksumHasher>,
}

/// What the finished payload must match.
#[derive(Default)]
struct Expectations {
    /// Lowercase hex SHA-256 from `x-amz-content-sha256`.
    payload_sha256: Option<String>,
    content_md5: Option<[u8; 16]>,
    checksum: Option<RequestedChecksum>,
}

enum State {
    Streaming,
    /// All checks passed; `chunk` keeps answering `Ok(None)`.
    Verified,
    /// A check or the transport failed; `chunk` keeps answering this error.
    Failed(S3Error),
}

impl ObjectBody {
    /// Builds the reader over a raw HTTP body with the checks the headers and auth call for.
    pub fn from_request<B>(
        body: B,
        payload: PayloadCheck,
        headers: &http::HeaderMap,
    ) -> S3Result<ObjectBody>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::fmt::Display,
    {
        let (decoder, payload_sha256) = match payload {
            PayloadCheck::Unsigned => (None, None),
            PayloadCheck::Sha256(hex) => (None, Some(hex.to_ascii_lowercase())),
            PayloadCheck::SignedChunks(ctx) => (Some(AwsChunkedDecoder::new(Some(ctx))), None),
            PayloadCheck::UnsignedChunks => (Some(AwsChunkedDecoder::new(None)), None),
        };
        let chunked = decoder.is_some();
        let declared_len = if chunked {
            header_len(headers, "x-amz-decoded-content-length")?
        } else {
            header_len(headers, http::header::CONTENT_LENGTH.as_str())?
        };
        let expected = Expectations {
            payload_sha256,
            content_md5: checksum::content_md5(headers)?,
            checksum: checksum::requested_checksum(headers, chunked)?,
        };
        let checksum_algorithm = expected.checksum.as_ref().map(|c| c.algorithm);
        let needs_sha256 = expected.payload_sha256.is_some()
            || checksum_algorithm == Some(ChecksumAlgorithm::Sha256);
        let hashers = Hashers {
            md5: Md5::new(),
            sha256: needs_sha256.then(Sha256::new),
            checksum: checksum_algorithm.and_then(ChecksumHasher::new),
        };
        Ok(ObjectBody::new(
            http_byte_stream(body),
            decoder,
            hashers,
            expected,
            declared_len,
        ))
    }

    /// Wraps trusted bytes (copies): computes the MD5 only; `expected_len` is checked if given.
    pub fn from_stream(stream: ByteStream, expected_len: Option<u64>) -> ObjectBody {
        let hashers = Hashers {
            md5: Md5::new(),
            sha256: None,
            checksum: None,
        };
        let expected = Expectations::default();
        ObjectBody::new(stream, None, hashers, expected, expected_len)
    }

    fn new(
        source: ByteStream,
        decoder: Option<AwsChunkedDecoder>,
        hashers: Hashers,
        expected: Expectations,
        declared_len: Option<u64>,
    ) -> ObjectBody {
        ObjectBody {
            source,
            pending: Bytes::new(),
            decoder,
            hashers,
            expected,
            declared_len,
            received: 0,
            state: State::Streaming,
            md5: [0; 16],
            checksum: None,
        }
    }

    /// The next payload bytes; `Ok(None)` at the verified end.
    ///
    /// Bytes handed out before the end are not yet verified; a failure of any check is
    /// returned instead of the end, and every later call repeats it.
    pub async fn chunk(&mut self) -> S3Result<Option<Bytes>> {
        match &self.state {
            State::Failed(err) => return Err(err.clone()),
            State::Verified => return Ok(None),
            State::Streaming => {}
        }
        let result = self.advance().await;
        match &result {
            Err(err) => self.state = State::Failed(err.clone()),
            Ok(None) => self.state = State::Verified,
            Ok(Some(_)) => {}
        }
        result
    }

    /// MD5 of the payload, complete after `chunk` returned `Ok(None)`.
    pub fn md5(&self) -> [u8; 16] {
        self.md5
    }

    /// The verified additional checksum, if the client sent one.
    pub fn checksum(&self) -> Option<(ChecksumAlgorithm, String)> {
        self.checksum.clone()
    }

    /// The decoded payload length the client declared, if it did.
    pub fn declared_len(&self) -> Option<u64> {
        self.declared_len
    }

    async fn advance(&mut self) -> S3Result<Option<Bytes>> {
        loop {
            if let Some(data) = self.next_payload()? {
                self.account(&data)?;
                return Ok(Some(data));
            }
            match self.source.next().await {
                Some(frame) => self.pending = frame?,
                None => {
                    self.verify_end()?;
                    return Ok(None);
                }
            }
        }
    }

    /// Payload from the current frame, or `None` when the frame is used up.
    fn next_payload(&mut self) -> S3Result<Option<Bytes>> {
        match &mut self.decoder {
            Some(decoder) => decoder.decode(&mut self.pending),
            None if self.pending.is_empty() => Ok(None),
            None => Ok(Some(std::mem::take(&mut self.pending))),
        }
    }

    /// Counts and hashes payload bytes on their way out.
    fn account(&mut self, data: &Bytes) -> S3Result<()> {
        self.received += data.len() as u64;
        if self
            .declared_len
            .is_some_and(|declared| self.received > declared)
        {
            return Err(S3Error::new(
                S3ErrorCode::IncompleteBody,
                "The request body is longer than the declared content length.",
            ));
        }
        self.hashers.md5.update(data);
        if let Some(sha256) = &mut self.hashers.sha256 {
            sha256.update(data);
        }
        if let Some(checksum) = &mut self.hashers.checksum {
            checksum.update(data);
        }
        Ok(())
    }

    /// Runs every end-of-body check; on success records the MD5 and the verified checksum.
    fn verify_end(&mut self) -> S3Result<()> {
        if let Some(decoder) = &mut self.decoder {
            decoder.finish()?;
        }
        if self
            .declared_len
            .is_some_and(|declared| self.received != declared)
        {
            return Err(S3ErrorCode::IncompleteBody.into());
        }
        let md5: [u8; 16] = std::mem::take(&mut self.hashers.md5).finalize().into();
        let sha256: Option<[u8; 32]> = self.hashers.sha256.take().map(|h| h.finalize().into());
        if let Some(expected) = &self.expected.payload_sha256 {
            if sha256.map(hex::encode).as_ref() != Some(expected) {
                return Err(S3ErrorCode::XAmzContentSHA256Mismatch.into());
            }
        }
        if self
            .expected
            .content_md5
            .is_some_and(|expected| expected != md5)
        {
            return Err(S3ErrorCode::BadDigest.into());
        }
        self.checksum = self.verify_checksum(sha256)?;
        self.md5 = md5;
        Ok(())
    }

    /// Compares the computed additional checksum with the header or trailer value.
    fn verify_checksum(
        &mut self,
        sha256: Option<[u8; 32]>,
    ) -> S3Result<Option<(ChecksumAlgorithm, String)>> {
        let Some(requested) = &self.expected.checksum else {
            return Ok(None);
        };
        let algorithm = requested.algorithm;
        let computed =
            match self.hashers.checksum.take() {
                Some(hasher) => checksum::encode(&hasher.finalize()),
                None => checksum::encode(&sha256.ok_or_else(|| {
                    S3Error::internal("SHA-256 checksum requested but not computed")
                })?),
            };
        let trailer_name = checksum::checksum_header_name(algorithm);
        let trailer = self
            .decoder
            .as_ref()
            .and_then(|decoder| decoder.trailer(&trailer_name));
        let claimed = match (&requested.expected, trailer) {
            (Expected::Header(value), _) => Some(value.as_str()),
            (Expected::Trailer | Expected::ComputeOnly, Some(value)) => {
                checksum::validate_value(algorithm, value)?;
                Some(value)
            }
            (Expected::Trailer, None) => {
                return Err(S3Error::new(
                    S3ErrorCode::IncompleteBody,
                    format!("The trailer {trailer_name} announced in x-amz-trailer was not sent."),
                ))
            }
            (Expected::ComputeOnly, None) => None,
        };
        if claimed.is_some_and(|claimed| claimed.trim() != computed) {
            return Err(checksum::mismatch(algorithm));
        }
        Ok(Some((algorithm, computed)))
    }
}

/// A length header as a number; absent is `None`.
fn header_len(headers: &http::HeaderMap, name: &str) -> S3Result<Option<u64>> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            S3Error::new(
                S3ErrorCode::InvalidArgument,
                format!("The {name} header is not a valid length."),
            )
        })
}

/// The data frames of an HTTP body as a stream. Non-data frames (HTTP trailers) are skipped:
/// S3 clients carry their trailers inside the `aws-chunked` body. A transport failure (client
/// gone, connection reset) means the body is incomplete.
fn http_byte_stream<B>(mut body: B) -> ByteStream
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: std::fmt::Display,
{
    Box::pin(futures_util::stream::poll_fn(move |cx| loop {
        match ready!(Pin::new(&mut body).poll_frame(cx)) {
            None => return Poll::Ready(None),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Poll::Ready(Some(Ok(data)));
                }
            }
            Some(Err(err)) => {
                tracing::debug!(error = %err, "request body ended by a transport error");
                return Poll::Ready(Some(Err(S3ErrorCode::IncompleteBody.into())));
            }
        }
    }))
}
