//! The connection loop. `axum::serve` has no header-read timeout and no
//! connection cap: a client sending one header byte every few seconds held a
//! connection for minutes, and twenty thousand idle connections used up the
//! file descriptors. Here every connection gets hyper's header-read timeout
//! (which also ends idle keep-alive connections) and a permit from a cap;
//! past the cap, new connections are closed at once.

use crate::api::Front;
use crate::config::Limits;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// File descriptors kept back from the connection cap for the database,
/// worker pipes and outgoing sockets.
const RESERVED_FDS: u64 = 256;

/// The connection cap: the configured one, lowered to what the process's
/// file-descriptor limit allows (after raising the soft limit to the hard one).
pub(crate) fn connection_cap(configured: usize) -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return configured;
    };
    let soft = if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    let allowed = soft.saturating_sub(RESERVED_FDS).max(16);
    configured.min(usize::try_from(allowed).unwrap_or(usize::MAX))
}

/// Serves `front` on `listener` until `stop`, then lets open connections
/// finish their requests.
pub(crate) async fn serve(
    listener: TcpListener,
    front: Front,
    limits: Limits,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let cap = connection_cap(limits.connections);
    let permits = Arc::new(Semaphore::new(cap));
    let tracker = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // Room above our own limit, so that a few headers too many get our
        // JSON 431 and not hyper's empty one.
        .max_headers(limits.header_count.saturating_mul(2).max(100))
        .max_buf_size((limits.header_bytes.saturating_mul(2) + limits.uri_length).max(64 << 10));
    let http = Arc::new(http);
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors or a connection reset before accept:
                // back off briefly instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::warn!(cap, "connection cap reached; closing a new connection");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (http, service, stop) = (Arc::clone(&http), front.clone(), stop.clone());
        tracker.spawn(async move {
            let conn = http.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(permit);
        });
    }
    tracker.close();
    tracker.wait().await;
    Ok(())
}
