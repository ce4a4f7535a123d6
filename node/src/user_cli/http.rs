//! The HTTP plumbing of the CLI: a hyper connector that speaks plain TCP or rustls TLS
//! depending on the URI scheme (hyper-util's pooled client, keep-alive included, over either),
//! a file-streaming request body, and URI percent-encoding shared with `mucura bench`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::Uri;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, SizeHint};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// The body of every CLI request: streamed from a file, or small and in memory.
pub type RequestBody = UnsyncBoxBody<Bytes, io::Error>;

/// The pooled client type.
pub type HttpClient = Client<Connector, RequestBody>;

/// A host that has not accepted the TCP connection by then is down or filtered: say so
/// instead of waiting for the kernel's minutes-long SYN retries.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Boxed errors, as hyper-util's connector contract wants them.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connects plain TCP for `http://` and TLS (with the configured trust and, for the grid
/// endpoint, client certificate) for `https://`.
#[derive(Clone)]
pub struct Connector {
    tcp: HttpConnector,
    tls: Option<Arc<ClientConfig>>,
}

impl Connector {
    /// A connector; without `tls`, `https://` URIs are refused.
    pub fn new(tls: Option<Arc<ClientConfig>>) -> Connector {
        let mut tcp = HttpConnector::new();
        // The scheme is ours to interpret: the TCP connector must accept https URIs too.
        tcp.enforce_http(false);
        // Small requests (HEAD, DELETE) must not wait for Nagle's algorithm.
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
        Connector { tcp, tls }
    }
}

/// A connection: plain or TLS.
pub enum Stream {
    /// `http://`
    Plain(TokioIo<TcpStream>),
    /// `https://`
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

impl tower_service::Service<Uri> for Connector {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.tcp.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let mut tcp = self.tcp.clone();
        let tls = self.tls.clone();
        Box::pin(async move {
            let https = uri.scheme_str() == Some("https");
            let host = uri
                .host()
                .unwrap_or_default()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let stream = tcp.call(uri).await?;
            if !https {
                return Ok(Stream::Plain(stream));
            }
            let Some(config) = tls else {
                return Err("https is not configured for this client".into());
            };
            let name = ServerName::try_from(host.clone())
                .map_err(|err| format!("invalid TLS server name {host:?}: {err}"))?;
            let tls_stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream.into_inner())
                .await?;
            Ok(Stream::Tls(Box::new(TokioIo::new(tls_stream))))
        })
    }
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl hyper::rt::Write for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A pooled keep-alive client over [`Connector`].
pub fn client(tls: Option<Arc<ClientConfig>>) -> HttpClient {
    Client::builder(TokioExecutor::new()).build(Connector::new(tls))
}

/// An empty body.
pub fn empty_body() -> RequestBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A small in-memory body (XML documents).
pub fn bytes_body(bytes: impl Into<Bytes>) -> RequestBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// How much of a file one body frame carries: large enough for few syscalls, small enough
/// that a transfer's memory stays a few hundred KiB per part in flight.
const FILE_CHUNK: usize = 256 * 1024;

/// Streams `length` bytes of an (already positioned) file, reporting each chunk to
/// `progress`; a file that ends early fails the request instead of sending short data.
pub struct FileBody {
    file: tokio::fs::File,
    remaining: u64,
    buffer: Vec<u8>,
    progress: Option<indicatif::ProgressBar>,
}

impl FileBody {
    /// A body of the next `length` bytes of `file`.
    pub fn new(
        file: tokio::fs::File,
        length: u64,
        progress: Option<indicatif::ProgressBar>,
    ) -> FileBody {
        FileBody {
            file,
            remaining: length,
            buffer: Vec::new(),
            progress,
        }
    }
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(this.remaining)
            .unwrap_or(FILE_CHUNK)
            .min(FILE_CHUNK);
        this.buffer.resize(want, 0);
        let mut read = ReadBuf::new(&mut this.buffer[..want]);
        ready!(Pin::new(&mut this.file).poll_read(cx, &mut read))?;
        let filled = read.filled();
        if filled.is_empty() {
            return Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file became shorter while it was being sent",
            ))));
        }
        this.remaining -= filled.len() as u64;
        if let Some(progress) = &this.progress {
            progress.inc(filled.len() as u64);
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(filled)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (and `/` when `keep_slash`),
/// as SigV4 canonicalises paths and query values.
pub fn percent_encode(text: &str, keep_slash: bool) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        let unreserved = byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~');
        if unreserved || (keep_slash && byte == b'/') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn percent_encode_keeps_unreserved_and_optionally_slashes() {
        assert_eq!(percent_encode("a-b_c.d~e/f", true), "a-b_c.d~e/f");
        assert_eq!(percent_encode("a/b c+=", false), "a%2Fb%20c%2B%3D");
        assert_eq!(percent_encode("ü", true), "%C3%BC");
    }

    #[tokio::test]
    async fn file_bodies_stream_exactly_the_requested_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let data: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = tokio::fs::File::open(&path).await.unwrap();
        let body = FileBody::new(file, 600_000, None);
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(collected.as_ref(), &data[..600_000]);

        let file = tokio::fs::File::open(&path).await.unwrap();
        let too_long = FileBody::new(file, 800_000, None);
        let error = too_long.collect().await.err().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }
}
