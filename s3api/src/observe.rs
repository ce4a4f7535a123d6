//! The hook metrics and access logs hang on: one [`RequestRecord`] per request, handed to a
//! [`RequestObserver`] when the request is really over.
//!
//! "Over" means the response body was sent to its end, failed, or was dropped because the
//! client went away, so a streaming GET reports the bytes that actually left and the time
//! they took, not the moment its headers were ready. [`ObservedBody`] wraps the response body
//! to see that moment; [`CountingBody`] wraps the request body to count the bytes the
//! handlers actually read. A [`RecordEmitter`] owns the record and delivers it exactly once:
//! explicitly at the end of the body, or from its `Drop` (a client that hangs up mid-request
//! drops the whole request future, and the record still comes out, with status
//! [`CLIENT_CLOSED_REQUEST`] if no response existed yet).
//!
//! This module knows nothing of Prometheus or log files: the node implements the observer.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::auth::Identity;
use crate::error::S3Error;
use crate::service::ResponseBody;

/// Status recorded for a request whose client disconnected before any response existed
/// (nginx's convention; no real HTTP response carries it).
pub const CLIENT_CLOSED_REQUEST: u16 = 499;

/// Receives one record per finished request. Called on the task that finished the request:
/// implementations must return quickly and never block on I/O.
pub trait RequestObserver: Send + Sync + 'static {
    /// Takes note of one finished request.
    fn observe(&self, record: &RequestRecord);
}

/// The client's socket address, put into the request's extensions by the HTTP server (it
/// knows the peer from `accept`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// What happened to one request.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// When the request arrived.
    pub time: SystemTime,
    /// The id sent back in `x-amz-request-id`.
    pub request_id: String,
    /// The S3 operation, or `None` when routing or authentication failed before naming it.
    pub operation: Option<&'static str>,
    /// Target bucket, when the request named one.
    pub bucket: Option<String>,
    /// Target key, when the request named one.
    pub key: Option<String>,
    /// Access key of a verified signature (`None`: anonymous or not authenticated).
    pub access_key: Option<String>,
    /// The user owning that access key.
    pub user: Option<String>,
    /// The client's address, when the server provided [`PeerAddr`].
    pub remote_addr: Option<SocketAddr>,
    /// The HTTP method.
    pub method: http::Method,
    /// HTTP status sent, or [`CLIENT_CLOSED_REQUEST`].
    pub status: u16,
    /// S3 error code of an error response, or of an error that cut a response body short.
    pub error_code: Option<&'static str>,
    /// Request body bytes read from the transport (aws-chunked framing included).
    pub bytes_in: u64,
    /// Response body bytes handed to the transport.
    pub bytes_out: u64,
    /// From arrival until the response body ended or was dropped.
    pub duration: Duration,
}

impl RequestRecord {
    /// A record of a request that just arrived; the service fills in the rest as it learns it.
    pub fn arriving(
        request_id: String,
        method: http::Method,
        remote_addr: Option<SocketAddr>,
    ) -> Self {
        RequestRecord {
            time: SystemTime::now(),
            request_id,
            operation: None,
            bucket: None,
            key: None,
            access_key: None,
            user: None,
            remote_addr,
            method,
            status: CLIENT_CLOSED_REQUEST,
            error_code: None,
            bytes_in: 0,
            bytes_out: 0,
            duration: Duration::ZERO,
        }
    }

    /// Records who signed the request.
    pub fn set_identity(&mut self, identity: &Identity) {
        if let Identity::User { access_key, user } = identity {
            self.access_key = Some(access_key.clone());
            self.user = Some(user.clone());
        }
    }
}

/// Owns a record and hands it to the observer exactly once: on [`RecordEmitter::emit`] or on
/// drop, whichever comes first.
pub struct RecordEmitter {
    observer: Arc<dyn RequestObserver>,
    record: Option<RequestRecord>,
    started: Instant,
    bytes_in: Arc<AtomicU64>,
}

impl RecordEmitter {
    /// Starts timing `record`; `bytes_in` is the counter of a [`CountingBody`].
    pub fn new(
        observer: Arc<dyn RequestObserver>,
        record: RequestRecord,
        bytes_in: Arc<AtomicU64>,
    ) -> Self {
        RecordEmitter {
            observer,
            record: Some(record),
            started: Instant::now(),
            bytes_in,
        }
    }

    /// The record while it is still pending (`None` once emitted).
    pub fn record_mut(&mut self) -> Option<&mut RequestRecord> {
        self.record.as_mut()
    }

    /// Completes the record (bytes in, duration) and delivers it, if not done already.
    pub fn emit(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.bytes_in = self.bytes_in.load(Ordering::Relaxed);
            record.duration = self.started.elapsed();
            self.observer.observe(&record);
        }
    }
}

impl Drop for RecordEmitter {
    fn drop(&mut self) {
        self.emit();
    }
}

/// A request body that adds the length of every data frame it passes to a shared counter.
pub struct CountingBody<B> {
    inner: B,
    counter: Arc<AtomicU64>,
}

impl<B> CountingBody<B> {
    /// Wraps `inner`, counting into `counter`.
    pub fn new(inner: B, counter: Arc<AtomicU64>) -> Self {
        CountingBody { inner, counter }
    }
}

impl<B> Body for CountingBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.counter.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that counts the bytes it hands out and emits the request's record when
/// it ends, fails or is dropped.
pub struct ObservedBody {
    inner: ResponseBody,
    emitter: RecordEmitter,
}

impl ObservedBody {
    /// Wraps `inner`; `emitter`'s record should already carry the response status.
    pub fn new(inner: ResponseBody, emitter: RecordEmitter) -> Self {
        ObservedBody { inner, emitter }
    }
}

impl Body for ObservedBody {
    type Data = Bytes;
    type Error = S3Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, S3Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Pending => {}
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(record)) = (frame.data_ref(), this.emitter.record_mut()) {
                    record.bytes_out += data.len() as u64;
                }
                // The transport may never poll again once the body says it is done.
                if this.inner.is_end_stream() {
                    this.emitter.emit();
                }
            }
            Poll::Ready(Some(Err(err))) => {
                if let Some(record) = this.emitter.record_mut() {
                    record.error_code.get_or_insert(err.code.as_str());
                }
                this.emitter.emit();
            }
            Poll::Ready(None) => this.emitter.emit(),
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::S3ErrorCode;
    use crate::service::full_body;
    use futures_util::stream;
    use http_body_util::{BodyExt, StreamBody};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Collect(Mutex<Vec<RequestRecord>>);

    impl RequestObserver for Collect {
        fn observe(&self, record: &RequestRecord) {
            self.0.lock().unwrap().push(record.clone());
        }
    }

    fn emitter(observer: &Arc<Collect>, bytes_in: Arc<AtomicU64>) -> RecordEmitter {
        let mut record = RequestRecord::arriving("ID1".into(), http::Method::GET, None);
        record.status = 200;
        RecordEmitter::new(observer.clone(), record, bytes_in)
    }

    fn chunks(parts: Vec<Result<&'static str, S3Error>>) -> ResponseBody {
        let frames = parts
            .into_iter()
            .map(|part| part.map(|text| Frame::data(Bytes::from_static(text.as_bytes()))));
        StreamBody::new(stream::iter(frames)).boxed_unsync()
    }

    #[tokio::test]
    async fn fires_once_at_the_end_with_the_bytes_sent() {
        let observer = Arc::new(Collect::default());
        let body = chunks(vec![Ok("hello "), Ok("world")]);
        let observed = ObservedBody::new(body, emitter(&observer, Arc::default()));
        let collected = observed.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"hello world");
        let records = observer.0.lock().unwrap();
        assert_eq!(records.len(), 1, "exactly one record after end and drop");
        assert_eq!(records[0].bytes_out, 11);
        assert_eq!(records[0].status, 200);
        assert_eq!(records[0].error_code, None);
    }

    #[tokio::test]
    async fn fires_when_a_full_body_is_done_even_if_never_polled_again() {
        let observer = Arc::new(Collect::default());
        let mut observed = ObservedBody::new(full_body("abc"), emitter(&observer, Arc::default()));
        let frame = observed.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap().len(), 3);
        assert!(observed.is_end_stream());
        assert_eq!(observer.0.lock().unwrap().len(), 1, "emitted before drop");
        drop(observed);
        let records = observer.0.lock().unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].bytes_out, 3);
    }

    #[tokio::test]
    async fn fires_on_drop_mid_stream_with_the_bytes_sent_so_far() {
        let observer = Arc::new(Collect::default());
        let body = chunks(vec![Ok("12345"), Ok("67890"), Ok("never sent")]);
        let mut observed = ObservedBody::new(body, emitter(&observer, Arc::default()));
        observed.frame().await.unwrap().unwrap();
        observed.frame().await.unwrap().unwrap();
        assert!(
            observer.0.lock().unwrap().is_empty(),
            "not emitted mid-stream"
        );
        drop(observed);
        let records = observer.0.lock().unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].bytes_out, 10);
    }

    #[tokio::test]
    async fn an_error_mid_stream_is_recorded_once() {
        let observer = Arc::new(Collect::default());
        let body = chunks(vec![Ok("part"), Err(S3ErrorCode::InternalError.into())]);
        let mut observed = ObservedBody::new(body, emitter(&observer, Arc::default()));
        observed.frame().await.unwrap().unwrap();
        assert!(observed.frame().await.unwrap().is_err());
        drop(observed);
        let records = observer.0.lock().unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].bytes_out, 4);
        assert_eq!(records[0].error_code, Some("InternalError"));
    }

    #[tokio::test]
    async fn counting_body_counts_the_request_bytes_read() {
        let observer = Arc::new(Collect::default());
        let counter = Arc::new(AtomicU64::new(0));
        let request = CountingBody::new(chunks(vec![Ok("abcd"), Ok("efg")]), counter.clone());
        let read = request.collect().await.unwrap().to_bytes();
        assert_eq!(read.len(), 7);
        assert_eq!(counter.load(Ordering::Relaxed), 7);
        drop(emitter(&observer, counter));
        let records = observer.0.lock().unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].bytes_in, 7);
    }

    #[test]
    fn an_emitter_dropped_before_any_response_reports_a_closed_request() {
        let observer = Arc::new(Collect::default());
        let record = RequestRecord::arriving("ID2".into(), http::Method::PUT, None);
        drop(RecordEmitter::new(observer.clone(), record, Arc::default()));
        let records = observer.0.lock().unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].status, CLIENT_CLOSED_REQUEST);
    }
}
