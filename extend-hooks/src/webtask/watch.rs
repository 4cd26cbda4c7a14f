//! Following the host's change stream (`GET /api/changes`), so that a
//! platform replica forgets cached discovery answers as soon as any replica
//! installs, replaces or removes an extension, instead of up to a TTL later.
//!
//! A `webtask` event drops the cached answers of its container (a write may
//! move a webtask from one point to another, so per point is not enough); a
//! `reset` event, a lost stream or a failed reconnect drops every answer,
//! since changes may have been missed. Reconnects send `Last-Event-ID`, so a
//! short outage costs no more than the events it hid.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use super::api::WebtaskApi;
use super::discovery::WebtaskDiscovery;

/// The first wait before reconnecting; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The host pings every 15 s; a stream silent for longer is dead.
const SILENCE: Duration = Duration::from_secs(45);

/// One parsed server-sent event.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Event {
    pub(crate) id: Option<String>,
    pub(crate) event: String,
    pub(crate) data: String,
}

/// Splits a buffer of server-sent-event text into complete events, leaving
/// an unfinished one in `buf`. Comments are skipped.
pub(crate) fn take_events(buf: &mut String) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some(end) = buf.find("\n\n") {
        let block: String = buf.drain(..end + 2).collect();
        let mut e = Event::default();
        let mut any = false;
        for line in block.lines() {
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => e.id = Some(value.to_owned()),
                "event" => e.event = value.to_owned(),
                "data" => {
                    if !e.data.is_empty() {
                        e.data.push('\n');
                    }
                    e.data.push_str(value);
                }
                _ => continue,
            }
            any = true;
        }
        if any {
            out.push(e);
        }
    }
    out
}

/// Starts following the stream; it stops when `stop` is dropped. `connected`
/// is `true` while a stream is open.
pub(crate) fn start(
    api: Arc<WebtaskApi>,
    discovery: WebtaskDiscovery,
    runtime: &tokio::runtime::Handle,
) -> (oneshot::Sender<()>, watch::Receiver<bool>) {
    let (stop_tx, mut stop) = oneshot::channel::<()>();
    let (connected_tx, connected) = watch::channel(false);
    runtime.spawn(async move {
        let mut last_id: Option<String> = None;
        let mut backoff = FIRST_BACKOFF;
        loop {
            let followed = tokio::select! {
                _ = &mut stop => return,
                r = follow(&api, &discovery, &mut last_id, &connected_tx) => r,
            };
            let _ = connected_tx.send(false);
            // Whatever changed while the stream was down is unknown.
            discovery.invalidate_all();
            match followed {
                Ok(()) => backoff = FIRST_BACKOFF,
                Err(e) => tracing::warn!(error = %e, retry_in = ?backoff, "the host's change stream is unavailable; discovery answers are cached for their TTL meanwhile"),
            }
            tokio::select! {
                _ = &mut stop => return,
                () = tokio::time::sleep(backoff + jitter(backoff)) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    });
    (stop_tx, connected)
}

fn jitter(d: Duration) -> Duration {
    // Replicas that lost one host reconnect spread out, not all at once.
    d.mul_f64(fastrand::f64() * 0.25)
}

/// Follows one stream until it ends: `Ok` when it opened and later ended,
/// `Err` when it could not be opened.
async fn follow(
    api: &WebtaskApi,
    discovery: &WebtaskDiscovery,
    last_id: &mut Option<String>,
    connected: &watch::Sender<bool>,
) -> Result<(), String> {
    let mut response = api.open_changes(last_id.as_deref()).await?;
    // Anything cached before the stream opened may be older than it.
    discovery.invalidate_all();
    let _ = connected.send(true);
    tracing::debug!("following the host's change stream");
    let mut buf = String::new();
    loop {
        let chunk = match tokio::time::timeout(SILENCE, response.chunk()).await {
            Err(_) => return Err("the change stream went silent".to_owned()),
            Ok(Err(e)) => return Err(format!("the change stream broke: {e}")),
            Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(chunk))) => chunk,
        };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        for event in take_events(&mut buf) {
            apply(&event, discovery);
            if event.id.is_some() {
                last_id.clone_from(&event.id);
            }
        }
    }
}

fn apply(event: &Event, discovery: &WebtaskDiscovery) {
    match event.event.as_str() {
        "webtask" => {
            let container = serde_json::from_str::<serde_json::Value>(&event.data)
                .ok()
                .and_then(|v| v.get("container")?.as_str().map(str::to_owned));
            match container {
                Some(c) => discovery.invalidate_container(&c),
                None => discovery.invalidate_all(),
            }
        }
        "reset" => discovery.invalidate_all(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_on_blank_lines_and_an_unfinished_one_waits() {
        let mut buf = String::from(
            ": connected\n\nid: 7\nevent: webtask\ndata: {\"container\":\"acme\"}\n\nevent: reset\ndata: {}\n\nid: 8\nev",
        );
        let events = take_events(&mut buf);
        assert_eq!(
            events,
            [
                Event {
                    id: Some("7".into()),
                    event: "webtask".into(),
                    data: "{\"container\":\"acme\"}".into()
                },
                Event {
                    id: None,
                    event: "reset".into(),
                    data: "{}".into()
                },
            ]
        );
        assert_eq!(buf, "id: 8\nev");
    }
}
