//! Recorded run inputs: the last [`KEEP`] requests a live webtask received,
//! for points whose catalog entry opts in (`"record_inputs": true`), so
//! that the editor can run a draft on real traffic before it is deployed.
//!
//! Inputs are sealed like secrets. Fields the point's payload schema marks
//! `writeOnly` (passwords, card numbers: what the platform sends but must
//! not be read back) are replaced before sealing, so they never reach the
//! store. Recording happens off the run path: a run only parses and
//! redacts its body and hands it to a background writer, which drops
//! records rather than slow runs down when it falls behind.

use crate::crypto::Keys;
use crate::store::Store;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How many inputs are kept per webtask.
pub(crate) const KEEP: u32 = 20;

/// What a redacted field is replaced with.
pub(crate) const REDACTED: &str = "[redacted]";

/// How long a node trusts its copy of which points record, when another
/// node may have published a catalog.
const REFRESH_AFTER: Duration = Duration::from_secs(5);

/// Records waiting for the writer; more are dropped.
const QUEUE: usize = 256;

struct Pending {
    container: String,
    name: String,
    input: Value,
}

/// Points that record, by name, with their payload schema (for redaction).
type Points = HashMap<String, Arc<Value>>;

pub(crate) struct Recorder {
    store: Arc<dyn Store>,
    /// When it was loaded (`None`: never) and the points that record.
    points: Arc<RwLock<(Option<Instant>, Arc<Points>)>>,
    refreshing: Arc<AtomicBool>,
    queue: mpsc::Sender<Pending>,
}

impl Recorder {
    /// A recorder writing to `store`, sealing with `keys`. Must be called
    /// inside a tokio runtime (it starts the writer).
    pub(crate) fn new(store: Arc<dyn Store>, keys: Arc<Keys>) -> Self {
        let (queue, mut rx) = mpsc::channel::<Pending>(QUEUE);
        let writer = Arc::clone(&store);
        tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                let sealed = keys.seal(p.input.to_string().as_bytes());
                if let Err(e) = writer
                    .record_input(&p.container, &p.name, sealed, KEEP)
                    .await
                {
                    tracing::warn!(container = %p.container, webtask = %p.name, error = %e, "a run input was not recorded");
                }
            }
        });
        Recorder {
            store,
            // Stale from the start, so that the first run loads the catalog.
            points: Arc::new(RwLock::new((None, Arc::new(Points::new())))),
            refreshing: Arc::new(AtomicBool::new(false)),
            queue,
        }
    }

    /// Re-reads which points record from the current catalog.
    pub(crate) async fn refresh(&self) {
        let points = load(&*self.store).await;
        if let Ok(mut slot) = self.points.write() {
            *slot = (Some(Instant::now()), Arc::new(points));
        }
    }

    fn current(&self) -> Arc<Points> {
        let (at, points) = match self.points.read() {
            Ok(slot) => (slot.0, Arc::clone(&slot.1)),
            Err(_) => return Arc::new(Points::new()),
        };
        // Another node may have published a catalog: reload in the
        // background now and then; this run uses what is known.
        if at.is_none_or(|t| t.elapsed() > REFRESH_AFTER)
            && !self.refreshing.swap(true, Ordering::AcqRel)
        {
            let store = Arc::clone(&self.store);
            let slot = Arc::clone(&self.points);
            let refreshing = Arc::clone(&self.refreshing);
            tokio::spawn(async move {
                let points = load(&*store).await;
                if let Ok(mut slot) = slot.write() {
                    *slot = (Some(Instant::now()), Arc::new(points));
                }
                refreshing.store(false, Ordering::Release);
            });
        }
        points
    }

    /// Whether runs of `point` are recorded.
    pub(crate) fn records(&self, point: &str) -> bool {
        self.current().contains_key(point)
    }

    /// Offers a live run's input: recorded when its point opts in and its
    /// body is JSON (what extend-hooks sends), redacted, without waiting.
    pub(crate) fn offer(
        &self,
        container: &str,
        name: &str,
        point: &str,
        method: &str,
        body: &[u8],
    ) {
        let Some(schema) = self.current().get(point).cloned() else {
            return;
        };
        let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
            return;
        };
        redact(&schema, &schema, &mut value, 0);
        let input = json!({ "method": method, "body": value });
        let _ = self.queue.try_send(Pending {
            container: container.to_owned(),
            name: name.to_owned(),
            input,
        });
    }
}

/// The points of the current catalog that record, with their payload schemas.
async fn load(store: &dyn Store) -> Points {
    let Ok(catalogs) = store.catalogs().await else {
        return Points::new();
    };
    let Some(document) = catalogs
        .first()
        .and_then(|c| serde_json::from_str::<Value>(&c.document).ok())
    else {
        return Points::new();
    };
    document
        .get("points")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p.get("record_inputs").and_then(Value::as_bool) == Some(true))
        .filter_map(|p| {
            let name = p.get("name")?.as_str()?.to_owned();
            let schema = p
                .get("payload_schema")
                .cloned()
                .unwrap_or(Value::Bool(true));
            Some((name, Arc::new(schema)))
        })
        .collect()
}

/// Replaces every value `schema` marks `writeOnly` with [`REDACTED`].
pub(crate) fn redact(schema: &Value, root: &Value, value: &mut Value, depth: usize) {
    if depth > 32 {
        return;
    }
    let Some(s) = schema.as_object() else {
        return;
    };
    if s.get("writeOnly").and_then(Value::as_bool) == Some(true) {
        *value = Value::String(REDACTED.to_owned());
        return;
    }
    if let Some(target) = s
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|p| root.pointer(p))
    {
        redact(target, root, value, depth + 1);
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for branch in s.get(key).and_then(Value::as_array).into_iter().flatten() {
            redact(branch, root, value, depth + 1);
        }
    }
    match value {
        Value::Object(fields) => redact_fields(s, root, fields, depth),
        Value::Array(items) => {
            if let Some(item) = s.get("items") {
                for v in items.iter_mut() {
                    redact(item, root, v, depth + 1);
                }
            }
            if let Some(prefix) = s.get("prefixItems").and_then(Value::as_array) {
                for (v, item) in items.iter_mut().zip(prefix) {
                    redact(item, root, v, depth + 1);
                }
            }
        }
        _ => {}
    }
}

fn redact_fields(
    s: &Map<String, Value>,
    root: &Value,
    fields: &mut Map<String, Value>,
    depth: usize,
) {
    let props = s.get("properties").and_then(Value::as_object);
    let extra = s.get("additionalProperties").filter(|a| a.is_object());
    for (k, v) in fields.iter_mut() {
        if let Some(field) = props.and_then(|p| p.get(k)).or(extra) {
            redact(field, root, v, depth + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{REDACTED, redact};
    use serde_json::json;

    #[test]
    fn write_only_fields_are_redacted_wherever_the_schema_puts_them() {
        let schema = json!({
            "type": "object",
            "properties": {
                "email": {"type": "string"},
                "password": {"type": "string", "writeOnly": true},
                "cards": {"type": "array", "items": {"$ref": "#/$defs/Card"}},
                "extra": {"type": "object", "additionalProperties": {"type": "string", "writeOnly": true}},
                "either": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/Card"}]}
            },
            "$defs": {"Card": {"type": "object", "properties": {
                "number": {"type": "string", "writeOnly": true}, "brand": {"type": "string"}}}}
        });
        let mut v = json!({
            "email": "a@example.com", "password": "hunter2",
            "cards": [{"number": "4111", "brand": "visa"}, {"number": "5500", "brand": "mc"}],
            "extra": {"pin": "1234"},
            "either": {"number": "3700", "brand": "amex"},
            "unknown": "kept"
        });
        redact(&schema, &schema, &mut v, 0);
        assert_eq!(
            v,
            json!({
                "email": "a@example.com", "password": REDACTED,
                "cards": [{"number": REDACTED, "brand": "visa"}, {"number": REDACTED, "brand": "mc"}],
                "extra": {"pin": REDACTED},
                "either": {"number": REDACTED, "brand": "amex"},
                "unknown": "kept"
            })
        );
    }
}
