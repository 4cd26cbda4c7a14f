//! Per-container log streams: what extensions write with `console.*`, fanned
//! out to `GET /api/logs/tenant/{container}` subscribers.

use crate::config::Limits;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::broadcast;

/// How many records a slow subscriber may fall behind before it misses some.
const BACKLOG: usize = 1024;

/// The log streams of every container. A container's channel exists only
/// while someone follows it; lines written when nobody does cost a lookup.
#[derive(Debug, Clone)]
pub(crate) struct LogHub(Arc<HubInner>);

#[derive(Debug)]
struct HubInner {
    streams: Mutex<HashMap<String, broadcast::Sender<Arc<str>>>>,
    subscribers: AtomicUsize,
    per_container: usize,
    total: usize,
    line: usize,
    /// Where records also go for the other hosts sharing the store, when
    /// there are any (PostgreSQL).
    relay: Option<Arc<dyn crate::store::Store>>,
}

/// A subscription to one container's records; dropping it unsubscribes.
#[derive(Debug)]
pub(crate) struct Subscription {
    // Before `guard`: the receiver must be gone when the guard counts what is left.
    pub(crate) rx: broadcast::Receiver<Arc<str>>,
    _guard: Guard,
}

#[derive(Debug)]
struct Guard {
    hub: LogHub,
    container: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let hub = &self.hub.0;
        hub.subscribers.fetch_sub(1, Ordering::AcqRel);
        let mut s = hub.streams.lock().unwrap_or_else(PoisonError::into_inner);
        if s.get(&self.container)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            s.remove(&self.container);
        }
    }
}

/// Why a subscription was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// The container has its limit of subscribers.
    Container(usize),
    /// The host has its limit of subscribers.
    Host(usize),
}

impl LogHub {
    pub(crate) fn new(limits: &Limits, relay: Option<Arc<dyn crate::store::Store>>) -> Self {
        LogHub(Arc::new(HubInner {
            streams: Mutex::default(),
            subscribers: AtomicUsize::new(0),
            per_container: limits.log_subscribers_per_container,
            total: limits.log_subscribers,
            line: limits.log_line,
            relay,
        }))
    }

    /// Sends a record written on another host to `container`'s subscribers here.
    pub(crate) fn publish(&self, container: &str, record: Arc<str>) {
        if let Some(tx) = self.sender(container) {
            let _ = tx.send(record);
        }
    }

    /// A new subscriber to `container`'s records (JSON text, one per record),
    /// unless the container or the host has its limit of subscribers.
    pub(crate) fn subscribe(&self, container: &str) -> Result<Subscription, Full> {
        let hub = &self.0;
        let mut s = hub.streams.lock().unwrap_or_else(PoisonError::into_inner);
        if s.get(container)
            .is_some_and(|tx| tx.receiver_count() >= hub.per_container)
        {
            return Err(Full::Container(hub.per_container));
        }
        if hub.subscribers.fetch_add(1, Ordering::AcqRel) >= hub.total {
            hub.subscribers.fetch_sub(1, Ordering::AcqRel);
            return Err(Full::Host(hub.total));
        }
        let tx = s
            .entry(container.to_owned())
            .or_insert_with(|| broadcast::channel(BACKLOG).0);
        Ok(Subscription {
            rx: tx.subscribe(),
            _guard: Guard {
                hub: self.clone(),
                container: container.to_owned(),
            },
        })
    }

    /// How many clients follow `container`'s stream right now.
    pub(crate) fn subscribers(&self, container: &str) -> usize {
        let s = self
            .0
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        s.get(container)
            .map_or(0, broadcast::Sender::receiver_count)
    }

    /// Containers with a log channel (someone follows them).
    pub(crate) fn channels(&self) -> usize {
        self.0
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn sender(&self, container: &str) -> Option<broadcast::Sender<Arc<str>>> {
        let s = self
            .0
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        s.get(container).cloned()
    }

    /// The sink a container's runs write to.
    pub(crate) fn sink(&self, container: &str) -> LogSink {
        LogSink(Arc::new(SinkInner {
            container: container.to_owned(),
            hub: self.clone(),
            run: Mutex::new(RunInfo::default()),
        }))
    }
}

#[derive(Debug, Default)]
struct RunInfo {
    webtask: String,
    request_id: String,
    trace_id: String,
    left: usize,
    cut: bool,
}

#[derive(Debug)]
struct SinkInner {
    container: String,
    hub: LogHub,
    run: Mutex<RunInfo>,
}

/// Where one container's `console.*` calls go.
#[derive(Debug, Clone)]
pub(crate) struct LogSink(Arc<SinkInner>);

impl LogSink {
    /// Marks the start of a run: records name its webtask and request, and at
    /// most `lines` are written.
    pub(crate) fn begin(&self, webtask: &str, request_id: &str, trace_id: &str, lines: usize) {
        let mut r = self.0.run.lock().unwrap_or_else(PoisonError::into_inner);
        r.webtask.clear();
        r.webtask.push_str(webtask);
        r.request_id.clear();
        r.request_id.push_str(request_id);
        r.trace_id.clear();
        r.trace_id.push_str(trace_id);
        r.left = lines;
        r.cut = false;
    }

    pub(crate) fn end(&self) {
        self.0
            .run
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .left = 0;
    }

    /// Writes one record at bunyan `level` (20 debug, 30 info, 40 warn, 50 error).
    pub(crate) fn emit(&self, level: i32, mut msg: String) {
        let mut r = self.0.run.lock().unwrap_or_else(PoisonError::into_inner);
        if r.left == 0 {
            if !r.cut && !r.webtask.is_empty() {
                r.cut = true;
                let note = "log limit of this run reached; further lines are dropped".to_owned();
                self.send(&r, 40, &note);
            }
            return;
        }
        r.left -= 1;
        let max = self.0.hub.0.line;
        if msg.len() > max {
            let mut end = max;
            while !msg.is_char_boundary(end) {
                end -= 1;
            }
            msg.truncate(end);
            msg.push('…');
        }
        self.send(&r, level, &msg);
    }

    fn send(&self, r: &RunInfo, level: i32, msg: &str) {
        let hub = &self.0.hub.0;
        let tx = self.0.hub.sender(&self.0.container);
        if tx.is_none() && hub.relay.is_none() {
            return;
        }
        let mut record = serde_json::json!({
            "name": "extend-host",
            "hostname": "extend-host",
            "pid": std::process::id(),
            "level": level,
            "time": crate::time::iso8601_now(),
            "msg": msg,
            "v": 0,
            "container": self.0.container,
            "webtask": r.webtask,
            "req_id": r.request_id,
        });
        if !r.trace_id.is_empty() {
            record["trace_id"] = r.trace_id.as_str().into();
        }
        let record: Arc<str> = record.to_string().into();
        if let Some(relay) = &hub.relay {
            relay.relay_log(&self.0.container, &record);
        }
        if let Some(tx) = tx {
            let _ = tx.send(record);
        }
    }
}
