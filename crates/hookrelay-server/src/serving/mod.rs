//! Serving the API over HTTP/1.1 with bounds on what one client can hold: a connection
//! must send each request's headers within `header_timeout` (hyper's header read timer,
//! which also runs while a kept-alive connection waits for its next request, so it
//! closes idle connections too); a request must be received and answered within
//! `request_timeout` after its headers, body included, or it is answered 408 and its
//! connection closed; a connection whose client reads nothing of its answer for
//! `request_timeout` is closed (`stall`); and at most `max_connections` connections are
//! served at once. A connection past that is not accepted until one closes: it waits in
//! the kernel's listen backlog, where a client sees a slow connect rather than an error.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::{from_fn, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::error::ApiError;

mod stall;

/// How slow clients and open connections are bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// Time a request may take after its headers until it is answered.
    pub request_timeout: Duration,
    /// Connections served at once.
    pub max_connections: u32,
}

/// Pause after an accept error (out of file descriptors, say) before the next accept,
/// so the loop does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `stop` completes; then accepts no more
/// connections, lets each finish the request it is serving, closes idle ones, and
/// returns when all are closed.
pub async fn serve(listener: TcpListener, router: Router, limits: HttpLimits, stop: impl Future<Output = ()>) {
    let router = router.layer(from_fn(move |request: Request, next: Next| {
        answer_within(limits.request_timeout, request, next)
    }));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let permits = Arc::new(Semaphore::new(limits.max_connections as usize));
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut stop => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // Answers go out as soon as they are written, not held back by Nagle's
        // algorithm waiting for the client's acknowledgement.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on a connection");
        }
        let stream = stall::WriteStallLimit::new(stream, limits.request_timeout);
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "a connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Runs the rest of the stack (body reading included) for at most `timeout`.
async fn answer_within(timeout: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::RequestTimeout(timeout).into_response(),
    }
}
