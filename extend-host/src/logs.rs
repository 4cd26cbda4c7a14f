//! Per-container log streams: what extensions write with `console.*`, fanned
//! out to `GET /api/logs/tenant/{container}` subscribers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::broadcast;

/// How many records a slow subscriber may fall behind before it misses some.
const BACKLOG: usize = 1024;
/// Longest `msg` kept in a record; longer lines are cut.
const MAX_LINE: usize = 8 * 1024;

/// The log streams of every container.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogHub {
    streams: Arc<Mutex<HashMap<String, broadcast::Sender<Arc<str>>>>>,
}

impl LogHub {
    fn sender(&self, container: &str) -> broadcast::Sender<Arc<str>> {
        let mut s = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        s.entry(container.to_owned())
            .or_insert_with(|| broadcast::channel(BACKLOG).0)
            .clone()
    }

    /// A new subscriber to `container`'s records (JSON text, one per record).
    pub(crate) fn subscribe(&self, container: &str) -> broadcast::Receiver<Arc<str>> {
        self.sender(container).subscribe()
    }

    /// How many clients follow `container`'s stream right now.
    pub(crate) fn subscribers(&self, container: &str) -> usize {
        let s = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        s.get(container)
            .map_or(0, broadcast::Sender::receiver_count)
    }

    /// The sink a container's JavaScript runtime writes to.
    pub(crate) fn sink(&self, container: &str) -> LogSink {
        LogSink(Arc::new(SinkInner {
            container: container.to_owned(),
            tx: self.sender(container),
            run: Mutex::new(RunInfo::default()),
        }))
    }
}

#[derive(Debug, Default)]
struct RunInfo {
    webtask: String,
    request_id: String,
    left: usize,
    cut: bool,
}

#[derive(Debug)]
struct SinkInner {
    container: String,
    tx: broadcast::Sender<Arc<str>>,
    run: Mutex<RunInfo>,
}

/// Where one container's `console.*` calls go.
#[derive(Debug, Clone)]
pub(crate) struct LogSink(Arc<SinkInner>);

impl LogSink {
    /// Marks the start of a run: records name its webtask and request, and at
    /// most `lines` are written.
    pub(crate) fn begin(&self, webtask: &str, request_id: &str, lines: usize) {
        let mut r = self.0.run.lock().unwrap_or_else(PoisonError::into_inner);
        r.webtask.clear();
        r.webtask.push_str(webtask);
        r.request_id.clear();
        r.request_id.push_str(request_id);
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
        if msg.len() > MAX_LINE {
            let mut end = MAX_LINE;
            while !msg.is_char_boundary(end) {
                end -= 1;
            }
            msg.truncate(end);
            msg.push('…');
        }
        self.send(&r, level, &msg);
    }

    fn send(&self, r: &RunInfo, level: i32, msg: &str) {
        if self.0.tx.receiver_count() == 0 {
            return;
        }
        let record = serde_json::json!({
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
        let _ = self.0.tx.send(record.to_string().into());
    }
}
