//! `GET /api/logs/tenant/{container}`: server-sent events.
//!
//! Each record is written as one chunk `data: {json}\n\n` with LF endings, and
//! keep-alives are comments: the webtask-log-stream parser used by wt-cli loses
//! events split across chunks and crashes on a blank line with no field.

use super::App;
use super::extract::Authorized;
use crate::error::ApiError;
use crate::logs::Full;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

const KEEP_ALIVE: Duration = Duration::from_secs(15);

fn event(record: &str) -> Bytes {
    Bytes::from(format!("data: {record}\n\n"))
}

/// Streams the container's `console` output. `max` ends the stream after that many records.
pub(super) async fn stream(
    State(app): State<Arc<App>>,
    mut auth: Authorized,
) -> Result<Response, ApiError> {
    // A stream has its own subscriber limits.
    auth.release();
    let container = &auth.container;
    let max = match auth.query.get("max") {
        None => u64::MAX,
        Some(m) => m.parse().map_err(|_| {
            ApiError::bad_request(format!("`max` must be a positive integer, not `{m}`"))
        })?,
    };
    let sub = app
        .logs
        .subscribe(container)
        .inspect_err(|_| app.metrics.reject("log_subscribers"));
    let sub = sub.map_err(|full| match full {
        Full::Container(n) => ApiError::too_many(
            format!("container `{container}` already has {n} log-stream subscribers, its limit"),
            5,
        ),
        Full::Host(n) => ApiError::too_many(
            format!("the host already has {n} log-stream subscribers, its limit"),
            5,
        ),
    })?;
    // Ends at shutdown, or when the caller's token is revoked or expires.
    let (stop, guard) = app.stream_stop(auth.claims.clone());
    // The first chunk is a comment so that clients see the stream open at once.
    let first = futures_util::stream::once(async {
        Ok::<_, Infallible>(Bytes::from_static(b": connected\n\n"))
    });
    let records = futures_util::stream::unfold(
        (sub, (stop, guard), max),
        |(mut sub, (stop, guard), left)| async move {
            if left == 0 {
                return None;
            }
            let chunk = tokio::select! {
                () = stop.cancelled() => return None,
                r = tokio::time::timeout(KEEP_ALIVE, sub.rx.recv()) => match r {
                    Err(_) => return Some((Ok::<_, Infallible>(Bytes::from_static(b": ping\n\n")), (sub, (stop, guard), left))),
                    Ok(Ok(record)) => event(&record),
                    Ok(Err(RecvError::Lagged(n))) => event(
                        &serde_json::json!({ "msg": format!("{n} log records were dropped because this client fell behind"), "level": 40 })
                            .to_string(),
                    ),
                    Ok(Err(RecvError::Closed)) => return None,
                },
            };
            Some((Ok(chunk), (sub, (stop, guard), left - 1)))
        },
    );
    let body = Body::from_stream(futures_util::StreamExt::chain(first, records));
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONNECTION, "keep-alive"),
        ],
        body,
    )
        .into_response())
}
