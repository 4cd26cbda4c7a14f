//! `GET /api/changes`: the store's webtask changes as server-sent events, so
//! that platforms drop their discovery caches as soon as an extension is
//! installed, replaced or deleted through any host.
//!
//! ```text
//! id: 57
//! event: webtask
//! data: {"id":57,"container":"acme","name":"on-new-lead","deleted":false}
//! ```
//!
//! A client that reconnects with `Last-Event-ID` first gets the changes it
//! missed, from the store's change log. When they cannot be known (the log
//! was pruned past that id, the stream fell behind, or the host lost the
//! database's feed) it gets `event: reset`, after which it must forget
//! everything it cached. `?container=` keeps one container's changes; the
//! master token may watch every container, another token only a container
//! it manages.

use super::App;
use super::extract::Caller;
use crate::error::ApiError;
use crate::store::{Change, WebtaskChange};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Logged changes read per query when catching a client up.
const PAGE: u64 = 100;

fn change_event(c: &WebtaskChange) -> Bytes {
    let data = serde_json::json!({
        "id": c.id, "container": c.container, "name": c.name, "deleted": c.deleted,
    });
    Bytes::from(format!("id: {}\nevent: webtask\ndata: {data}\n\n", c.id))
}

fn reset_event(reason: &str) -> Bytes {
    let data = serde_json::json!({ "reason": reason });
    Bytes::from(format!("event: reset\ndata: {data}\n\n"))
}

/// Streams webtask changes; see the module documentation.
pub(super) async fn stream(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let container = caller.query.get("container").map(str::to_owned);
    match &container {
        Some(c) => {
            caller.claims.authorize(c)?;
            crate::names::check("container", c)?;
        }
        None if !app.auth.is_master(&caller.claims) => {
            return Err(ApiError::forbidden(
                "watching every container's changes needs the master token; give `?container=` to watch one",
            ));
        }
        None => {}
    }
    let after = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request("`Last-Event-ID` must be an event id this host sent")
                })?,
        ),
    };
    // One tenant cannot hold the host's memory with subscriptions: a cap
    // per container watched (and for the master's stream of all of them).
    let permit = app
        .change_subscribers
        .enter(container.as_deref().unwrap_or("*"))
        .inspect_err(|_| app.metrics.reject("change_subscribers"))?;
    // Subscribed before the log is read, so nothing falls between the two.
    let live = app.webtasks.changes().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "this host's store keeps no change feed",
        )
    })?;
    let (stop, guard) = app.stream_stop(caller.claims.clone());
    let state = Watch {
        first: VecDeque::from([Bytes::from_static(b": connected\n\n")]),
        backlog: VecDeque::new(),
        catching_up: after,
        app: Arc::clone(&app),
        live,
        last: after.unwrap_or(0),
        container,
        stop,
        _held: (permit, guard),
    };
    let body = Body::from_stream(futures_util::stream::unfold(state, |mut s| async move {
        let chunk = s.next().await?;
        Some((Ok::<_, Infallible>(chunk), s))
    }));
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}

struct Watch {
    first: VecDeque<Bytes>,
    /// Logged changes read and not yet sent: at most one [`PAGE`].
    backlog: VecDeque<WebtaskChange>,
    /// While catching a reconnected client up: the position to read the
    /// log from. Read a page at a time as the client takes them, so a slow
    /// client holds one page, not the whole log.
    catching_up: Option<u64>,
    app: Arc<App>,
    live: broadcast::Receiver<Change>,
    /// The highest id sent: live changes the backlog already had are skipped.
    last: u64,
    container: Option<String>,
    /// Cancelled at shutdown and when the caller's token is revoked or expires.
    stop: tokio_util::sync::CancellationToken,
    /// Given back when the stream ends: the subscriber's place, and the
    /// guard that ends the task watching its token.
    _held: (crate::rate::Permit, tokio_util::sync::DropGuard),
}

impl Watch {
    /// Reads the next page of the log into the backlog; a reset event when
    /// the log cannot tell what the client missed.
    async fn catch_up(&mut self, after: u64) -> Option<Bytes> {
        let log = match self
            .app
            .webtasks
            .changes_since(after, self.container.as_deref(), PAGE)
            .await
        {
            Ok(log) => log,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the change log for a reconnecting client");
                self.catching_up = None;
                self.last = 0;
                return Some(reset_event("the change log could not be read"));
            }
        };
        if !log.complete {
            // The client starts over from what is there now: a change the
            // log already has is in what it lists next, and one that a
            // lagging live feed (PostgreSQL's notifications) still brings
            // is not sent again after the reset.
            self.catching_up = None;
            self.last = log.latest;
            return Some(reset_event(
                "the changes after the last event id are not known to this host",
            ));
        }
        self.catching_up = match log.changes.last() {
            Some(c) if log.changes.len() as u64 == PAGE => Some(c.id),
            _ => None,
        };
        if let Some(c) = log.changes.last() {
            self.last = c.id;
        }
        self.backlog.extend(log.changes);
        None
    }

    async fn next(&mut self) -> Option<Bytes> {
        if let Some(chunk) = self.first.pop_front() {
            return Some(chunk);
        }
        loop {
            if self.stop.is_cancelled() {
                return None;
            }
            if let Some(c) = self.backlog.pop_front() {
                return Some(change_event(&c));
            }
            let Some(after) = self.catching_up else { break };
            if let Some(reset) = self.catch_up(after).await {
                return Some(reset);
            }
        }
        loop {
            let received = tokio::select! {
                () = self.stop.cancelled() => return None,
                r = tokio::time::timeout(KEEP_ALIVE, self.live.recv()) => r,
            };
            let change = match received {
                Err(_) => return Some(Bytes::from_static(b": ping\n\n")),
                Ok(Ok(change)) => change,
                Ok(Err(RecvError::Lagged(_))) => {
                    return Some(reset_event("this client fell behind the changes"));
                }
                Ok(Err(RecvError::Closed)) => return None,
            };
            match change {
                Change::Webtask(c)
                    if (c.id == 0 || c.id > self.last)
                        && self.container.as_ref().is_none_or(|f| *f == c.container) =>
                {
                    self.last = c.id;
                    return Some(change_event(&c));
                }
                Change::Missed => {
                    return Some(reset_event("the host lost the database's change feed"));
                }
                _ => {}
            }
        }
    }
}
