//! The HTTP connection loop: accepts TCP connections and serves the router over HTTP/1.1 and
//! HTTP/2 with hyper, with the protections `axum::serve` does not configure:
//! - a connection without a request in flight — one that never sends a byte after accept, or a
//!   keep-alive connection after its last response — is closed after
//!   `security.connection_idle_secs`; once a request's first byte arrives its head must be
//!   complete within `header_read_timeout_secs` (slowloris). The idle limit is longer than the
//!   pool idle time of common HTTP clients (90 s for reqwest and Go), so a client never reuses a
//!   pooled connection the server is just closing;
//! - a minimum request body rate (`security.min_body_bytes_per_sec` after a grace period): a
//!   body trickling in slower fails the request;
//! - a size limit on request heads, TCP_NODELAY (SSE chunks leave at once), the peer address for
//!   rate limits, and a graceful shutdown that lets in-flight requests finish.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Largest request head (request line and headers) we read.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Connection settings.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Once a request's first byte arrived, its head must be complete within this.
    pub header_read_timeout: Duration,
    /// A connection without a request in flight (silent since accept, or idle after its last
    /// response) is closed after this.
    pub connection_idle: Duration,
    /// Least average body rate in bytes per second once `body_rate_grace` has passed; 0 = off.
    pub min_body_bytes_per_sec: u64,
    pub body_rate_grace: Duration,
}

impl ConnectionLimits {
    /// The limits of a configuration.
    pub fn from_config(config: &crate::config::Config) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(config.header_read_timeout_secs),
            connection_idle: Duration::from_secs(config.security.connection_idle_secs),
            min_body_bytes_per_sec: config.security.min_body_bytes_per_sec,
            body_rate_grace: Duration::from_secs(config.security.body_rate_grace_secs),
        }
    }
}

/// What the watchdog of one connection knows: requests in flight, and since when it is idle.
struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `started` when the last request ended (0: since accept).
    idle_since_ms: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
        })
    }

    fn begin(self: &Arc<Activity>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// When the connection must be closed if nothing changes; `None` while a request is open.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let idle = Duration::from_millis(self.idle_since_ms.load(Ordering::SeqCst));
        Some(self.started + idle + limits.connection_idle)
    }
}

/// One request in flight (until its response body is done or dropped).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let ms = u64::try_from(self.0.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.idle_since_ms.store(ms, Ordering::SeqCst);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A request body that fails when it arrives slower than the minimum rate.
struct RateLimitedBody {
    inner: Body,
    min_bytes_per_sec: u64,
    grace: Duration,
    started: Instant,
    received: u64,
    timer: Pin<Box<Sleep>>,
}

impl RateLimitedBody {
    /// When the body falls below the rate if no more bytes arrive.
    fn due(&self) -> Instant {
        let covered = Duration::from_secs_f64(self.received as f64 / self.min_bytes_per_sec as f64);
        self.started + self.grace + covered
    }
}

/// The error a too-slow body ends with (the handler answers 400; the connection is closed).
#[derive(Debug, thiserror::Error)]
#[error("request body arrived slower than the minimum rate")]
struct TooSlow;

impl HttpBody for RateLimitedBody {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let due = this.due();
                if Instant::now() >= due {
                    tracing::debug!(received = this.received, "request body too slow");
                    return Poll::Ready(Some(Err(Box::new(TooSlow))));
                }
                this.timer.as_mut().reset(due);
                if this.timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Err(Box::new(TooSlow))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serve `app` on `listener` until `stop`; then stop accepting and wait for open connections
/// to finish their requests (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // Request line + headers beyond this are refused (431) instead of buffered.
        .max_buf_size(MAX_HEADER_BYTES)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    let graceful = GracefulShutdown::new();
    // One task per connection; they end with their connections, which the graceful shutdown
    // below waits for.
    let connections = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and similar: wait a moment instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let app = app.clone();
        let activity = Activity::new();
        let watched = activity.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let app = app.clone();
            let in_flight = watched.begin();
            let request = request.map(|incoming| {
                if limits.min_body_bytes_per_sec == 0 || incoming.is_end_stream() {
                    Body::new(incoming)
                } else {
                    Body::new(RateLimitedBody {
                        inner: Body::new(incoming),
                        min_bytes_per_sec: limits.min_body_bytes_per_sec,
                        grace: limits.body_rate_grace,
                        started: Instant::now(),
                        received: 0,
                        timer: Box::pin(tokio::time::sleep(limits.body_rate_grace)),
                    })
                }
            });
            async move {
                let response = match app.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                // The request counts as in flight until its response body is sent (streams).
                Ok::<_, Infallible>(response.map(|body| {
                    Body::new(body.map_frame(move |frame| {
                        let _ = &in_flight;
                        frame
                    }))
                }))
            }
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            tokio::pin!(connection);
            loop {
                let check = activity
                    .deadline(&limits)
                    .unwrap_or_else(|| Instant::now() + limits.connection_idle);
                tokio::select! {
                    ended = &mut connection => {
                        if let Err(e) = ended {
                            tracing::debug!(error = %e, peer = %peer, "connection ended with an error");
                        }
                        break;
                    }
                    () = tokio::time::sleep_until(check) => {
                        if activity.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                            tracing::debug!(peer = %peer, "closing a silent or idle connection");
                            break;
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    connections.close();
    connections.wait().await;
}
