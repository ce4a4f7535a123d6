//! HTTP listeners: the S3 endpoint and the admin API, with graceful shutdown.
//!
//! Each accepted socket gets TCP_NODELAY (without it small responses on keep-alive connections
//! wait ~40 ms for delayed ACKs) and its own task; the shutdown signal stops accepting, lets
//! in-flight requests finish and then returns.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use s3api::observe::PeerAddr;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How long in-flight requests may run after shutdown was asked before they are cut.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Binds a listener, reporting the address in the error if it is taken.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// Serves HTTP/1.1 and HTTP/2 (h2c) on `listener` with `handler` until `shutdown` turns true.
pub async fn serve<H, F, B>(
    listener: TcpListener,
    handler: H,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .max_buf_size(256 * 1024)
        .header_read_timeout(Duration::from_secs(60));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        // Running out of file descriptors must not kill the listener.
                        tracing::warn!("accept failed: {err}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if let Err(err) = stream.set_nodelay(true) {
                    tracing::debug!("TCP_NODELAY: {err}");
                }
                let handler = handler.clone();
                let service = service_fn(move |mut request: Request<Incoming>| {
                    // Handlers learn who is calling (access log, metrics) from this extension.
                    request.extensions_mut().insert(PeerAddr(peer));
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(request).await) }
                });
                let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                let connection = graceful.watch(connection.into_owned());
                tokio::spawn(async move {
                    if let Err(err) = connection.await {
                        tracing::debug!("connection ended: {err}");
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("in-flight requests did not finish within {SHUTDOWN_GRACE:?}");
        }
    }
    Ok(())
}

/// Resolves when the process receives SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}
