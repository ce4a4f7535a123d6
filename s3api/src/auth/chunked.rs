//! `aws-chunked` payload decoding with per-chunk and trailer signature verification.
//!
//! The wire format (SigV4 streaming, with or without chunk signatures):
//!
//! ```text
//! <hex-size>[;chunk-signature=<64 hex>]\r\n<data>\r\n      (repeated)
//! 0[;chunk-signature=<64 hex>]\r\n                          (final, empty chunk)
//! [<trailer-name>:<value>\r\n ... [x-amz-trailer-signature:<64 hex>\r\n]]
//! \r\n
//! ```
//!
//! [`AwsChunkedDecoder`] is a push parser: the caller hands it transport frames split anywhere
//! (inside a header, inside the data, between `\r` and `\n`) and gets back payload slices of
//! those same frames, never copies. Only header and trailer lines are buffered (bounded).
//! Payload bytes are released before their chunk's signature is checked; the signature failure
//! surfaces as an error before the body can end, so a consumer that commits only at the verified
//! end never stores unsigned data.

use bytes::{Buf, Bytes, BytesMut};
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{S3Error, S3ErrorCode, S3Result};

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

/// Largest chunk we accept. SDKs send 64 KiB to 8 MiB; the bound keeps a hostile size field
/// from promising more than any client uses.
pub const MAX_CHUNK_SIZE: u64 = 16 * 1024 * 1024;

/// Longest chunk-header or trailer line; real ones are under 200 bytes. Bounds the carry-over
/// buffer while a line is split across frames.
const MAX_LINE_LEN: usize = 4096;

/// Total size of all trailer lines; S3 clients send one checksum and one signature.
const MAX_TRAILER_LEN: usize = 16 * 1024;

/// Name of the trailer line that signs the other trailers.
const TRAILER_SIGNATURE: &str = "x-amz-trailer-signature";

/// Hex SHA-256 of the empty string: the "headers hash" in every chunk string to sign.
const EMPTY_SHA256_HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Where the decoder is in the framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Reading `<hex-size>[;ext]\r\n`.
    ChunkHeader,
    /// Inside a chunk's data, with this many bytes left.
    ChunkData { remaining: u64 },
    /// After a chunk's data: this many bytes of the closing `\r\n` seen.
    ChunkDataEnd { matched: usize },
    /// After the final zero-size chunk: trailer lines, ended by an empty line.
    Trailer,
    /// The terminating empty line was read; nothing may follow.
    Done,
}

/// The chain of chunk signatures, each signing its data and the previous signature.
struct SignatureChain {
    ctx: ChunkSigningContext,
    /// Lowercase hex of the last verified signature (the seed at first).
    previous: String,
    /// SHA-256 of the current chunk's data so far.
    data_hash: Sha256,
    /// The signature announced in the current chunk's header.
    announced: String,
    /// Canonical trailer lines (`name:value\n`) hashed for the trailer signature.
    canonical_trailers: String,
    trailer_verified: bool,
}

impl SignatureChain {
    fn new(ctx: ChunkSigningContext) -> Self {
        SignatureChain {
            previous: ctx.seed_signature.to_ascii_lowercase(),
            ctx,
            data_hash: Sha256::new(),
            announced: String::new(),
            canonical_trailers: String::new(),
            trailer_verified: false,
        }
    }

    /// Checks the announced signature of the chunk whose data was hashed, and chains from it.
    fn verify_chunk(&mut self) -> S3Result<()> {
        let data_hash = hex::encode(self.data_hash.finalize_reset());
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256_HEX}\n{data_hash}",
            self.ctx.amz_date, self.ctx.scope, self.previous
        );
        let announced = std::mem::take(&mut self.announced);
        self.verify(&string_to_sign, &announced)
    }

    /// Checks `x-amz-trailer-signature` over the trailer lines seen before it.
    fn verify_trailer(&mut self, announced: &str) -> S3Result<()> {
        let trailers_hash = hex::encode(Sha256::digest(self.canonical_trailers.as_bytes()));
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{trailers_hash}",
            self.ctx.amz_date, self.ctx.scope, self.previous
        );
        self.verify(&string_to_sign, announced)?;
        self.trailer_verified = true;
        Ok(())
    }

    fn verify(&mut self, string_to_sign: &str, announced: &str) -> S3Result<()> {
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&self.ctx.signing_key)
            .map_err(|e| S3Error::internal(format!("chunk HMAC key: {e}")))?;
        mac.update(string_to_sign.as_bytes());
        let computed = hex::encode(mac.finalize().into_bytes());
        let announced = announced.to_ascii_lowercase();
        if !bool::from(computed.as_bytes().ct_eq(announced.as_bytes())) {
            return Err(S3Error::new(
                S3ErrorCode::SignatureDoesNotMatch,
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
            ));
        }
        self.previous = computed;
        Ok(())
    }
}

/// Push decoder for `aws-chunked` bodies; see the module docs for the format.
pub struct AwsChunkedDecoder {
    stage: Stage,
    /// A header or trailer line split across frames (at most [`MAX_LINE_LEN`]).
    line_carry: BytesMut,
    /// `None` for STREAMING-UNSIGNED-PAYLOAD-TRAILER.
    chain: Option<SignatureChain>,
    trailers: Vec<(String, String)>,
    trailer_len: usize,
}

impl AwsChunkedDecoder {
    /// A decoder verifying chunk signatures with `signing`, or none if `None` (unsigned chunks).
    pub fn new(signing: Option<ChunkSigningContext>) -> Self {
        AwsChunkedDecoder {
            stage: Stage::ChunkHeader,
            line_carry: BytesMut::new(),
            chain: signing.map(SignatureChain::new),
            trailers: Vec::new(),
            trailer_len: 0,
        }
    }

    /// Consumes `input` until a slice of payload is ready (returned, a view into `input`'s
    /// buffer) or `input` is exhausted (`Ok(None)`: feed the next frame).
    pub fn decode(&mut self, input: &mut Bytes) -> S3Result<Option<Bytes>> {
        while !input.is_empty() {
            match self.stage {
                Stage::ChunkHeader => {
                    if let Some(line) = self.take_line(input)? {
                        self.start_chunk(&line)?;
                    }
                }
                Stage::ChunkData { remaining } => {
                    let take =
                        usize::try_from(remaining).map_or(input.len(), |r| r.min(input.len()));
                    let data = input.split_to(take);
                    if let Some(chain) = &mut self.chain {
                        chain.data_hash.update(&data);
                    }
                    let remaining = remaining - take as u64;
                    self.stage = if remaining == 0 {
                        Stage::ChunkDataEnd { matched: 0 }
                    } else {
                        Stage::ChunkData { remaining }
                    };
                    return Ok(Some(data));
                }
                Stage::ChunkDataEnd { matched } => {
                    if input[0] != b"\r\n"[matched] {
                        return Err(malformed("chunk data is not followed by CRLF"));
                    }
                    input.advance(1);
                    if matched == 0 {
                        self.stage = Stage::ChunkDataEnd { matched: 1 };
                    } else {
                        if let Some(chain) = &mut self.chain {
                            chain.verify_chunk()?;
                        }
                        self.stage = Stage::ChunkHeader;
                    }
                }
                Stage::Trailer => {
                    if let Some(line) = self.take_line(input)? {
                        self.trailer_line(&line)?;
                    }
                }
                Stage::Done => return Err(malformed("data after the end of the aws-chunked body")),
            }
        }
        Ok(None)
    }

    /// Called when the transport ended: succeeds only if the framing ended properly. A final
    /// trailer line without its CRLF, or a missing terminating empty line, is tolerated.
    pub fn finish(&mut self) -> S3Result<()> {
        match self.stage {
            Stage::Done => Ok(()),
            Stage::Trailer => {
                if !self.line_carry.is_empty() {
                    let line = self.line_carry.split().freeze();
                    self.trailer_line(strip_line_end(&line))?;
                }
                match &self.chain {
                    Some(chain) if chain.ctx.has_trailer && !chain.trailer_verified => {
                        Err(S3Error::new(
                            S3ErrorCode::IncompleteBody,
                            "The trailer signature is missing.",
                        ))
                    }
                    _ => Ok(()),
                }
            }
            _ => Err(S3Error::new(
                S3ErrorCode::IncompleteBody,
                "The aws-chunked body ended before its final chunk.",
            )),
        }
    }

    /// Trailer lines received after the final chunk (lowercase name, value), in order.
    pub fn trailers(&self) -> &[(String, String)] {
        &self.trailers
    }

    /// The value of the trailer `name` (lowercase), if it was sent.
    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Takes one line ending in `\n` (the `\r` before it is stripped if present). When `input`
    /// holds no line end, its bytes go to the carry-over and `None` is returned.
    fn take_line(&mut self, input: &mut Bytes) -> S3Result<Option<Bytes>> {
        let Some(end) = input.iter().position(|&b| b == b'\n') else {
            if self.line_carry.len() + input.len() > MAX_LINE_LEN {
                return Err(line_too_long());
            }
            self.line_carry.extend_from_slice(input);
            input.clear();
            return Ok(None);
        };
        let piece = input.split_to(end + 1);
        let line = if self.line_carry.is_empty() {
            piece
        } else {
            self.line_carry.extend_from_slice(&piece);
            self.line_carry.split().freeze()
        };
        if line.len() > MAX_LINE_LEN {
            return Err(line_too_long());
        }
        let content_len = strip_line_end(&line).len();
        Ok(Some(line.slice(..content_len)))
    }

    /// Parses a chunk header line and moves to its data (or to the trailers for the final one).
    fn start_chunk(&mut self, line: &[u8]) -> S3Result<()> {
        let line = std::str::from_utf8(line).map_err(|_| malformed("chunk header is not text"))?;
        let (size_field, extension) = match line.split_once(';') {
            Some((size, ext)) => (size, Some(ext)),
            None => (line, None),
        };
        let size_field = size_field.trim();
        if size_field.is_empty() || size_field.len() > 16 {
            return Err(malformed("chunk size is not a hex number"));
        }
        let size = u64::from_str_radix(size_field, 16)
            .map_err(|_| malformed("chunk size is not a hex number"))?;
        if size > MAX_CHUNK_SIZE {
            return Err(S3Error::new(
                S3ErrorCode::InvalidRequest,
                format!("Chunk size {size} exceeds the maximum of {MAX_CHUNK_SIZE} bytes."),
            ));
        }
        if let Some(chain) = &mut self.chain {
            let announced = extension
                .and_then(|ext| ext.trim().strip_prefix("chunk-signature="))
                .ok_or_else(|| {
                    S3Error::new(
                        S3ErrorCode::SignatureDoesNotMatch,
                        "A chunk of the signed aws-chunked body carries no chunk-signature.",
                    )
                })?;
            chain.announced = announced.trim().to_owned();
        }
        if size > 0 {
            self.stage = Stage::ChunkData { remaining: size };
            return Ok(());
        }
        if let Some(chain) = &mut self.chain {
            chain.verify_chunk()?;
        }
        self.stage = Stage::Trailer;
        Ok(())
    }

    /// Handles one line after the final chunk: a trailer, the trailer signature, or the
    /// terminating empty line.
    fn trailer_line(&mut self, line: &[u8]) -> S3Result<()> {
        let expects_signed_trailer = self.chain.as_ref().is_some_and(|c| c.ctx.has_trailer);
        let trailer_signed = self.chain.as_ref().is_some_and(|c| c.trailer_verified);
        if line.iter().all(u8::is_ascii_whitespace) {
            // Some signers put an empty line between the final chunk and its signed trailers;
            // otherwise the empty line ends the body.
            if !expects_signed_trailer || trailer_signed {
                self.stage = Stage::Done;
            }
            return Ok(());
        }
        if trailer_signed || self.chain.as_ref().is_some_and(|c| !c.ctx.has_trailer) {
            return Err(malformed("unexpected data after the final chunk"));
        }
        self.trailer_len += line.len();
        if self.trailer_len > MAX_TRAILER_LEN {
            return Err(S3Error::new(
                S3ErrorCode::InvalidRequest,
                "The aws-chunked trailers are too large.",
            ));
        }
        let line = std::str::from_utf8(line).map_err(|_| malformed("trailer is not text"))?;
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| malformed("trailer line has no ':'"))?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        match &mut self.chain {
            Some(chain) if name == TRAILER_SIGNATURE => chain.verify_trailer(value)?,
            Some(chain) => {
                chain.canonical_trailers.push_str(&name);
                chain.canonical_trailers.push(':');
                chain.canonical_trailers.push_str(value);
                chain.canonical_trailers.push('\n');
                self.trailers.push((name, value.to_owned()));
            }
            None => self.trailers.push((name, value.to_owned())),
        }
        Ok(())
    }
}

/// The line without its trailing `\n` or `\r\n`.
fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Broken framing: the bytes are not what the chunk sizes promised, so the body is
/// reported incomplete (a short chunk is the usual cause).
fn malformed(what: &str) -> S3Error {
    S3Error::new(
        S3ErrorCode::IncompleteBody,
        format!("The aws-chunked body is malformed: {what}."),
    )
}

fn line_too_long() -> S3Error {
    S3Error::new(
        S3ErrorCode::InvalidRequest,
        "An aws-chunked header or trailer line is too long.",
    )
}
