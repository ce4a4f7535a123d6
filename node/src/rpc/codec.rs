//! The wire frame, and the one place where RPC messages become bytes and back.
//!
//! ```text
//! +----------------+---------+-----------------+----------------------+
//! | length: u32 BE | version | request id: u64 | bincode 1.3 body     |
//! +----------------+---------+-----------------+----------------------+
//!                   `-------- `length` bytes, at most MAX_FRAME -------'
//! ```
//!
//! The body is encoded with `bincode::DefaultOptions` (varint integers) with a size limit and
//! trailing bytes rejected. A reader checks the announced length against [`MAX_FRAME`] before
//! allocating anything, so a hostile or corrupt length costs nothing. The version byte lets a
//! later release change the body's layout and still read this one during a rolling upgrade.

use std::io;
use std::net::SocketAddr;

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

use super::RpcError;

/// Format version written in every frame; bump it when a message's encoding changes.
pub const WIRE_VERSION: u8 = 1;

/// Bytes between the length prefix and the body: the version byte and the request id.
pub const HEADER_LEN: usize = 1 + 8;

/// Largest encoded message body. A block is 1 MiB by default, so a block call needs 1 MiB plus
/// a few dozen bytes; 4 MiB leaves room for larger configured blocks and for batched record
/// exchanges (anti-entropy, rebalancing), while bounding what one frame can make a node
/// buffer: with 64 requests in flight per peer, at most 256 MiB even if every frame is full.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Largest value a frame's length prefix may carry (header + body).
pub const MAX_FRAME: usize = HEADER_LEN + MAX_BODY;

/// Request id used by the connection handshake, before any call exists.
pub const HANDSHAKE_ID: u64 = 0;

/// One frame read off the wire: its request id and undecoded body.
#[derive(Debug)]
pub struct Frame {
    /// Pairs a response with its request.
    pub id: u64,
    /// The bincode body.
    pub body: Vec<u8>,
}

/// Why a frame could not be written or read; [`FrameError::at`] adds the peer.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The frame is larger than the limit (at most [`MAX_FRAME`]).
    #[error("frame of {size} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Size of the frame (or the size its prefix announced).
        size: u64,
        /// The limit in force.
        max: usize,
    },
    /// The frame was written by a format this code does not read.
    #[error("frame has wire version {found}, this node speaks version {WIRE_VERSION}")]
    UnknownVersion {
        /// The version byte found.
        found: u8,
    },
    /// The length prefix is too small to hold a header.
    #[error("frame length {len} is shorter than the {HEADER_LEN}-byte header")]
    Truncated {
        /// The announced length.
        len: u32,
    },
    /// The body is not a valid encoding of the expected message.
    #[error("malformed message: {0}")]
    Malformed(bincode::Error),
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl FrameError {
    /// The same failure as an [`RpcError`] naming `peer`.
    pub fn at(self, peer: SocketAddr) -> RpcError {
        match self {
            Self::TooLarge { size, max } => RpcError::FrameTooLarge { peer, size, max },
            Self::Io(err) => RpcError::ConnectionLost {
                peer,
                reason: err.to_string(),
            },
            other => RpcError::Protocol {
                peer,
                reason: other.to_string(),
            },
        }
    }
}

fn body_options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_limit(MAX_BODY as u64)
        .reject_trailing_bytes()
}

/// Encodes `message` as one complete frame (length prefix included) under request `id`.
///
/// The size is computed first, so an oversized message fails with [`FrameError::TooLarge`]
/// before any buffer for it is allocated.
pub fn encode_frame<T: Serialize + ?Sized>(id: u64, message: &T) -> Result<Vec<u8>, FrameError> {
    // Counting needs no limit: it allocates nothing, and gives the true size for the error.
    let body_len = bincode::DefaultOptions::new()
        .serialized_size(message)
        .map_err(FrameError::Malformed)?;
    let frame_len = body_len + HEADER_LEN as u64;
    if body_len > MAX_BODY as u64 {
        return Err(FrameError::TooLarge {
            size: frame_len,
            max: MAX_FRAME,
        });
    }
    // Bounded by MAX_FRAME just above, so the casts cannot truncate.
    let mut frame = Vec::with_capacity(4 + frame_len as usize);
    frame.extend_from_slice(&(frame_len as u32).to_be_bytes());
    frame.push(WIRE_VERSION);
    frame.extend_from_slice(&id.to_be_bytes());
    body_options()
        .serialize_into(&mut frame, message)
        .map_err(FrameError::Malformed)?;
    Ok(frame)
}

/// Decodes a frame body as a `T`, rejecting trailing bytes.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    body_options()
        .deserialize(body)
        .map_err(FrameError::Malformed)
}

/// Reads the next frame; `Ok(None)` when the peer closed the stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Option<Frame>, FrameError> {
    read_frame_within(reader, MAX_FRAME).await
}

/// Like [`read_frame`] with a tighter limit than [`MAX_FRAME`] (for the handshake, where the
/// peer has proven nothing yet and its messages are small).
pub async fn read_frame_within<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_frame: usize,
) -> Result<Option<Frame>, FrameError> {
    let mut prefix = [0u8; 4];
    match reader.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err.into()),
    }
    let frame_len = u32::from_be_bytes(prefix);
    let max = max_frame.min(MAX_FRAME);
    if frame_len as usize > max {
        return Err(FrameError::TooLarge {
            size: u64::from(frame_len),
            max,
        });
    }
    if (frame_len as usize) < HEADER_LEN {
        return Err(FrameError::Truncated { len: frame_len });
    }
    let mut header = [0u8; HEADER_LEN];
    reader.read_exact(&mut header).await?;
    if header[0] != WIRE_VERSION {
        return Err(FrameError::UnknownVersion { found: header[0] });
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&header[1..]);
    let mut body = vec![0u8; frame_len as usize - HEADER_LEN];
    reader.read_exact(&mut body).await?;
    Ok(Some(Frame {
        id: u64::from_be_bytes(id),
        body,
    }))
}

/// Writes one frame and flushes it (used during the handshake, before the writer task runs).
pub async fn write_frame<W, T>(writer: &mut W, id: u64, message: &T) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    T: Serialize + ?Sized,
{
    let frame = encode_frame(id, message)?;
    writer.write_all(&frame).await?;
    writer.flush().await?;
    Ok(())
}

/// Writes every queued frame to `writer` until the queue closes or the socket fails.
///
/// Frames queued together are written before one flush, so many small concurrent calls share
/// TLS records and system calls; a 1 MiB frame bypasses the buffer.
pub async fn pump_frames<W: AsyncWrite + Unpin>(
    writer: W,
    mut queue: mpsc::Receiver<Vec<u8>>,
) -> io::Result<()> {
    const WRITE_BUFFER: usize = 64 * 1024;
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, writer);
    while let Some(frame) = queue.recv().await {
        out.write_all(&frame).await?;
        while let Ok(next) = queue.try_recv() {
            out.write_all(&next).await?;
        }
        out.flush().await?;
    }
    out.shutdown().await
}
