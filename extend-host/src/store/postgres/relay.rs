//! Log records between nodes, over `NOTIFY extend_logs`.
//!
//! A payload is at most [`PAYLOAD`] bytes (PostgreSQL refuses 8,000 and
//! more), so records are batched up to that size, and a record too long for
//! one payload is sent in parts that the receiving nodes put back together:
//! a subscriber on any node sees the same records.
//!
//! Payloads, JSON: `{"node", "container", "records": [text…]}` for whole
//! records, `{"node", "container", "part": text, "more": bool}` for a part.
//! One task per node sends them in order, and NOTIFYs are delivered in
//! commit order, so parts arrive in sequence and a run's lines stay in order.

use super::conn::{LOGS_CHANNEL, db};
use crate::store::RemoteLog;
use deadpool_postgres::Pool;
use std::collections::HashMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Largest payload sent, in bytes.
pub(super) const PAYLOAD: usize = 7_900;
/// Room left for the envelope around records or a part.
const ENVELOPE: usize = 300;
/// Records waiting to be relayed before new ones are dropped.
const QUEUE: usize = 4096;
/// Remote records buffered for this node's log streams.
pub(super) const BACKLOG: usize = 1024;
/// The longest record put back together from parts.
const MAX_RECORD: usize = 1 << 20;

/// A record of a run on this node, to relay.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) container: String,
    pub(super) record: String,
}

/// Starts the task that relays this node's records; it ends with `stop`.
pub(super) fn start(pool: Pool, node: String, stop: CancellationToken) -> mpsc::Sender<Outgoing> {
    let (tx, mut rx) = mpsc::channel::<Outgoing>(QUEUE);
    tokio::spawn(async move {
        let mut batch = Vec::new();
        loop {
            let first = tokio::select! {
                () = stop.cancelled() => return,
                r = rx.recv() => match r { Some(r) => r, None => return },
            };
            batch.push(first);
            // Whatever queued while the last send was under way goes in one go.
            while batch.len() < 256 {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            let payloads = payloads(&node, &batch);
            batch.clear();
            if let Err(e) = send(&pool, &payloads).await {
                tracing::warn!(error = %e, "log records not relayed to other hosts");
            }
        }
    });
    tx
}

async fn send(pool: &Pool, payloads: &[String]) -> Result<(), crate::store::StoreError> {
    let conn = pool
        .get()
        .await
        .map_err(|e| crate::store::StoreError::Database(e.to_string()))?;
    // One statement per payload in one transaction: delivered together, in order.
    conn.batch_execute("BEGIN").await.map_err(db)?;
    for p in payloads {
        if let Err(e) = conn
            .execute("SELECT pg_notify($1, $2)", &[&LOGS_CHANNEL, p])
            .await
        {
            let _ = conn.batch_execute("ROLLBACK").await;
            return Err(db(e));
        }
    }
    conn.batch_execute("COMMIT").await.map_err(db)
}

/// Bytes `s` takes as a JSON string, quotes included.
fn json_len(s: &str) -> usize {
    2 + s.chars().map(escaped_len).sum::<usize>()
}

fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// The payloads that carry `batch`, in order: consecutive records of one
/// container share a payload; a record too long for one is split.
pub(super) fn payloads(node: &str, batch: &[Outgoing]) -> Vec<String> {
    let mut out = Vec::new();
    let mut records: Vec<&str> = Vec::new();
    let mut size = 0;
    let mut container = "";
    let flush = |out: &mut Vec<String>, container: &str, records: &mut Vec<&str>| {
        if !records.is_empty() {
            out.push(
                serde_json::json!({ "node": node, "container": container, "records": records })
                    .to_string(),
            );
            records.clear();
        }
    };
    for r in batch {
        let len = json_len(&r.record) + 1;
        let room = PAYLOAD - ENVELOPE - json_len(&r.container);
        if r.container != container || size + len > room {
            flush(&mut out, container, &mut records);
            size = 0;
            container = &r.container;
        }
        if len <= room {
            records.push(&r.record);
            size += len;
            continue;
        }
        let mut rest = r.record.as_str();
        while !rest.is_empty() {
            let mut taken = 0;
            let mut end = 0;
            for (i, c) in rest.char_indices() {
                taken += escaped_len(c);
                if taken > room {
                    break;
                }
                end = i + c.len_utf8();
            }
            let (part, tail) = rest.split_at(end);
            rest = tail;
            out.push(
                serde_json::json!({
                    "node": node, "container": r.container, "part": part, "more": !rest.is_empty(),
                })
                .to_string(),
            );
        }
    }
    flush(&mut out, container, &mut records);
    out
}

/// Records being put back together from parts, per sending node.
#[derive(Debug, Default)]
pub(super) struct Reassembly {
    partial: HashMap<String, String>,
}

impl Reassembly {
    /// The records a payload completes; none for this node's own payloads.
    pub(super) fn receive(&mut self, payload: &str, me: &str) -> Vec<RemoteLog> {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(payload) else {
            return Vec::new();
        };
        let (Some(node), Some(container)) = (v["node"].as_str(), v["container"].as_str()) else {
            return Vec::new();
        };
        if node == me {
            return Vec::new();
        }
        let log = |record: String| RemoteLog {
            container: container.to_owned(),
            record,
        };
        if let Some(records) = v["records"].as_array() {
            return records
                .iter()
                .filter_map(|r| r.as_str().map(|r| log(r.to_owned())))
                .collect();
        }
        let Some(part) = v["part"].as_str() else {
            return Vec::new();
        };
        let buf = self.partial.entry(node.to_owned()).or_default();
        if buf.len() + part.len() <= MAX_RECORD {
            buf.push_str(part);
        }
        if v["more"].as_bool() == Some(true) {
            return Vec::new();
        }
        let record = self.partial.remove(node).unwrap_or_default();
        vec![log(record)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(container: &str, record: String) -> Outgoing {
        Outgoing {
            container: container.into(),
            record,
        }
    }

    #[test]
    fn records_of_any_length_arrive_whole_in_order_and_every_payload_fits() {
        // Quotes and control characters double or sextuple when escaped.
        let long = format!("{{\"msg\":\"{}\u{1}é\"}}", "\"x\n".repeat(9_000));
        let batch = vec![
            out("a", "one".into()),
            out("a", "two".into()),
            out("a", long.clone()),
            out("b", "three".into()),
        ];
        let payloads = payloads("n1", &batch);
        assert!(payloads.len() > 4, "the long record is split");
        for p in &payloads {
            assert!(p.len() <= PAYLOAD, "payload of {} bytes", p.len());
        }
        let mut r = Reassembly::default();
        let got: Vec<(String, String)> = payloads
            .iter()
            .flat_map(|p| r.receive(p, "n2"))
            .map(|l| (l.container, l.record))
            .collect();
        let want: Vec<(String, String)> =
            batch.into_iter().map(|o| (o.container, o.record)).collect();
        assert_eq!(got, want);
        assert!(
            payloads.iter().all(|p| r.receive(p, "n1").is_empty()),
            "a node skips its own records"
        );
    }
}
