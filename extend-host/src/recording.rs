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
use std::collections::{HashMap, HashSet};
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

/// The largest run body recorded. A larger one is recorded as a note of
/// its size, so that one webtask's inputs stay within 20 × 64 KiB and a
/// replay or `GET …/inputs` answer stays small.
pub(crate) const MAX_INPUT_BYTES: usize = 64 << 10;

/// Bytes of inputs one container may record per second, sustained, and in
/// a burst; past them its inputs are not recorded until the budget refills,
/// so that one tenant's traffic writes a bounded amount to disk.
const RECORD_BYTES_PER_SECOND: f64 = 256.0 * 1024.0;
const RECORD_BYTES_BURST: f64 = 2.0 * 1024.0 * 1024.0;

/// Containers whose byte budget is tracked, at most; past it the full
/// ones are forgotten.
const MAX_BUDGETS: usize = 10_000;

/// Each container's budget of recorded bytes: a token bucket.
#[derive(Default)]
struct Budgets(std::sync::Mutex<HashMap<String, (f64, Instant)>>);

impl Budgets {
    /// Takes `bytes` from `container`'s budget; `false` when it has not
    /// that much left.
    fn take(&self, container: &str, bytes: usize) -> bool {
        let now = Instant::now();
        let mut all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if all.len() >= MAX_BUDGETS && !all.contains_key(container) {
            all.retain(|_, (left, at)| {
                *left + now.duration_since(*at).as_secs_f64() * RECORD_BYTES_PER_SECOND
                    < RECORD_BYTES_BURST
            });
        }
        let (left, at) = all
            .entry(container.to_owned())
            .or_insert((RECORD_BYTES_BURST, now));
        *left = (*left + now.duration_since(*at).as_secs_f64() * RECORD_BYTES_PER_SECOND)
            .min(RECORD_BYTES_BURST);
        *at = now;
        if *left < bytes as f64 {
            return false;
        }
        *left -= bytes as f64;
        true
    }
}

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
    /// Bytes each container may still record.
    budgets: Budgets,
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
            budgets: Budgets::default(),
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

    /// Offers a live run's input, after the run: recorded when its point
    /// opts in and its body is JSON (what extend-hooks sends), redacted,
    /// with the outbound requests the run made (`subrequests`, their
    /// credentials redacted: see [`redact_subrequests`]), without waiting.
    pub(crate) fn offer(
        &self,
        run: &Offered<'_>,
        subrequests: &[crate::sandbox::io::Subrequest],
        secrets_json: &str,
    ) {
        let Offered {
            container,
            name,
            point,
            method,
            body,
        } = *run;
        let Some(schema) = self.current().get(point).cloned() else {
            return;
        };
        let subrequests = &subrequests[..subrequests.len().min(MAX_SUBREQUESTS)];
        let sub_bytes: usize = subrequests.iter().map(|s| s.body.len() + s.url.len()).sum();
        // Past its byte rate a container's inputs are not recorded, so its
        // disk writes stay bounded.
        if !self
            .budgets
            .take(container, body.len().min(MAX_INPUT_BYTES) + sub_bytes)
        {
            return;
        }
        let input = if body.len() > MAX_INPUT_BYTES {
            json!({
                "method": method,
                "body": null,
                "not_recorded": format!(
                    "the body was {} bytes; inputs over {MAX_INPUT_BYTES} bytes are not recorded",
                    body.len()
                ),
            })
        } else {
            let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
                return;
            };
            redact(&schema, &mut value);
            json!({ "method": method, "body": value })
        };
        let mut input = input;
        if !subrequests.is_empty() {
            let secrets: Vec<String> =
                serde_json::from_str::<HashMap<String, String>>(secrets_json)
                    .map(|m| m.into_values().collect())
                    .unwrap_or_default();
            input["subrequests"] =
                serde_json::to_value(redact_subrequests(subrequests, &secrets)).unwrap_or_default();
        }
        let _ = self.queue.try_send(Pending {
            container: container.to_owned(),
            name: name.to_owned(),
            input,
        });
    }
}

/// A live run whose input may be recorded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Offered<'a> {
    pub(crate) container: &'a str,
    pub(crate) name: &'a str,
    pub(crate) point: &'a str,
    pub(crate) method: &'a str,
    pub(crate) body: &'a [u8],
}

/// Outbound requests recorded per input, at most (each body up to
/// [`SUBREQUEST_BODY_BYTES`](crate::sandbox::io::SUBREQUEST_BODY_BYTES)).
const MAX_SUBREQUESTS: usize = 20;

/// Header names whose values are always redacted in a recording.
const CREDENTIAL_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// The shortest secret value looked for in headers: shorter ones would
/// redact ordinary values that happen to contain them.
const MIN_SECRET_LEN: usize = 4;

/// `subrequests` as they are recorded: `Authorization`, `Cookie` (and their
/// proxy and response kin) redacted, and any header whose value contains
/// one of the webtask's secrets. Request bodies are never kept (only their
/// hash, for matching on replay).
pub(crate) fn redact_subrequests(
    subrequests: &[crate::sandbox::io::Subrequest],
    secrets: &[String],
) -> Vec<crate::sandbox::io::Subrequest> {
    let secret = |v: &str| {
        secrets
            .iter()
            .any(|s| s.len() >= MIN_SECRET_LEN && v.contains(s.as_str()))
    };
    let clean = |headers: &mut Vec<(String, String)>| {
        for (k, v) in headers.iter_mut() {
            if CREDENTIAL_HEADERS.contains(&k.to_ascii_lowercase().as_str()) || secret(v) {
                *v = REDACTED.to_owned();
            }
        }
    };
    subrequests
        .iter()
        .map(|s| {
            let mut s = s.clone();
            clean(&mut s.request_headers);
            clean(&mut s.headers);
            s
        })
        .collect()
}

/// The points of the current catalog that record, with their payload schemas.
async fn load(store: &dyn Store) -> Points {
    let Ok(catalogs) = store.catalogs().await else {
        return Points::new();
    };
    let Some(document) = catalogs
        .first()
        .and_then(|c| serde_json::from_str::<extend_wire::catalog::Document>(&c.document).ok())
    else {
        return Points::new();
    };
    document
        .recording()
        .map(|(name, schema)| {
            let schema = schema.cloned().unwrap_or(Value::Bool(true));
            (name.to_owned(), Arc::new(schema))
        })
        .collect()
}

/// Value nesting past which a subtree is redacted whole (a run body is
/// parsed with serde_json's limit of 128, so real payloads stay within).
const MAX_DEPTH: usize = 128;

/// Distinct schemas that may apply to one value, through `$ref` and the
/// combinators; past it the value is redacted whole.
const MAX_SCHEMAS: usize = 512;

/// Replaces every value `schema` (the payload schema, also the root that
/// `$ref`s resolve in) marks `writeOnly` with [`REDACTED`].
///
/// The walk follows the value, and at each value gathers every schema
/// that applies to it once (`$ref`, `allOf`/`anyOf`/`oneOf`, `then`/`else`,
/// `dependentSchemas`), so recursive schemas cost no more than the value
/// is deep, and nothing is missed at any depth. Where it cannot tell, it
/// redacts: a `$ref` it cannot resolve, a value nested past [`MAX_DEPTH`],
/// more than [`MAX_SCHEMAS`] schemas for one value, and a field that a
/// `patternProperties` schema may match (patterns are not evaluated: each
/// applies to every field).
pub(crate) fn redact(schema: &Value, value: &mut Value) {
    walk(schema, vec![schema], value, 0);
}

fn walk<'s>(root: &'s Value, given: Vec<&'s Value>, value: &mut Value, depth: usize) {
    let redacted = || Value::String(REDACTED.to_owned());
    if depth > MAX_DEPTH {
        *value = redacted();
        return;
    }
    let mut applies: Vec<&'s Map<String, Value>> = Vec::new();
    let mut seen: HashSet<*const Value> = HashSet::new();
    let mut stack = given;
    while let Some(schema) = stack.pop() {
        if !seen.insert(std::ptr::from_ref(schema)) {
            continue;
        }
        if seen.len() > MAX_SCHEMAS {
            *value = redacted();
            return;
        }
        // `true` (anything) and `false` (nothing) mark nothing write-only.
        let Some(s) = schema.as_object() else {
            continue;
        };
        if s.get("writeOnly").and_then(Value::as_bool) == Some(true) {
            *value = redacted();
            return;
        }
        if let Some(reference) = s.get("$ref") {
            match reference
                .as_str()
                .and_then(|r| r.strip_prefix('#'))
                .and_then(|p| root.pointer(p))
            {
                Some(target) => stack.push(target),
                None => {
                    *value = redacted();
                    return;
                }
            }
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            stack.extend(s.get(key).and_then(Value::as_array).into_iter().flatten());
        }
        stack.extend(["then", "else"].iter().filter_map(|k| s.get(*k)));
        stack.extend(
            s.get("dependentSchemas")
                .and_then(Value::as_object)
                .into_iter()
                .flat_map(Map::values),
        );
        applies.push(s);
    }
    match value {
        Value::Object(fields) => {
            for (key, v) in fields.iter_mut() {
                let child: Vec<&Value> =
                    applies.iter().flat_map(|s| field_schemas(s, key)).collect();
                if !child.is_empty() {
                    walk(root, child, v, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                let child: Vec<&Value> = applies.iter().flat_map(|s| item_schemas(s, i)).collect();
                if !child.is_empty() {
                    walk(root, child, v, depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// The schemas of `s` that may apply to its object's field `key`.
fn field_schemas<'s>(s: &'s Map<String, Value>, key: &str) -> Vec<&'s Value> {
    let named = s
        .get("properties")
        .and_then(Value::as_object)
        .and_then(|p| p.get(key));
    let mut out: Vec<&Value> = named.into_iter().collect();
    out.extend(
        s.get("patternProperties")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(Map::values),
    );
    if named.is_none() {
        out.extend(
            ["additionalProperties", "unevaluatedProperties"]
                .iter()
                .filter_map(|k| s.get(*k)),
        );
    }
    out
}

/// The schemas of `s` that may apply to its array's item `i`.
fn item_schemas(s: &Map<String, Value>, i: usize) -> Vec<&Value> {
    let mut out = Vec::new();
    for key in ["prefixItems", "items"] {
        match s.get(key) {
            // A tuple (`items` as an array is the older spelling).
            Some(Value::Array(tuple)) => out.extend(tuple.get(i)),
            Some(one) if key == "items" => out.push(one),
            _ => {}
        }
    }
    out.extend(
        ["additionalItems", "unevaluatedItems", "contains"]
            .iter()
            .filter_map(|k| s.get(*k)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::{REDACTED, redact};
    use serde_json::{Value, json};

    /// A linked list `depth` nodes long, each node `{secret, next}`.
    fn chain(depth: usize) -> Value {
        let mut v = Value::Null;
        for i in 0..depth {
            v = json!({ "secret": format!("s{i}"), "plain": i, "next": v });
        }
        v
    }

    /// Every `secret` value left in clear in `v`.
    fn clear_secrets(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k == "secret" && x != REDACTED {
                        out.push(x.to_string());
                    }
                    clear_secrets(x, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| clear_secrets(x, out)),
            _ => {}
        }
    }

    #[test]
    fn write_only_fields_of_recursive_schemas_are_redacted_at_every_depth() {
        let node = json!({"type": "object", "properties": {
            "secret": {"type": "string", "writeOnly": true},
            "plain": {"type": "integer"},
            "next": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/Node"}]}
        }});
        let schemas = [
            // Nullable recursion through anyOf, as schemars writes Option<Box<Node>>.
            json!({"$ref": "#/$defs/Node", "$defs": {"Node": node}}),
            // The same through oneOf and a chain of $refs.
            json!({"$ref": "#/$defs/A", "$defs": {
                "A": {"$ref": "#/$defs/B"},
                "B": {"$ref": "#/$defs/Node"},
                "Node": {"type": "object", "properties": {
                    "secret": {"writeOnly": true},
                    "next": {"oneOf": [{"type": "null"}, {"$ref": "#/$defs/A"}]}
                }}
            }}),
            // Recursion through the root itself.
            json!({"type": "object", "properties": {
                "secret": {"writeOnly": true},
                "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}
            }}),
        ];
        for schema in &schemas {
            for depth in [1, 10, 33, 60, 120] {
                let mut v = chain(depth);
                redact(schema, &mut v);
                let mut left = Vec::new();
                clear_secrets(&v, &mut left);
                assert!(
                    left.is_empty(),
                    "depth {depth}: {left:?} in clear; schema {schema}"
                );
                assert_eq!(v["plain"], json!(depth - 1), "other fields are kept");
            }
        }
        // Arrays of recursive items: a tree.
        let tree = json!({"$ref": "#/$defs/T", "$defs": {"T": {"type": "object", "properties": {
            "secret": {"writeOnly": true},
            "children": {"type": "array", "items": {"$ref": "#/$defs/T"}}
        }}}});
        let mut v = json!({"secret": "root", "children": []});
        for i in 0..50 {
            v = json!({"secret": format!("t{i}"), "children": [v.clone(), {"secret": "leaf", "children": []}]});
        }
        redact(&tree, &mut v);
        let mut left = Vec::new();
        clear_secrets(&v, &mut left);
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn what_the_walk_cannot_tell_it_redacts() {
        // A $ref that does not resolve: the value it governs goes whole.
        let schema = json!({"type": "object", "properties": {
            "a": {"$ref": "#/$defs/Missing"}, "b": {"type": "string"}}});
        let mut v = json!({"a": {"x": "y"}, "b": "kept"});
        redact(&schema, &mut v);
        assert_eq!(v, json!({"a": REDACTED, "b": "kept"}));
        // Deeper than any run body can be: the subtree goes whole.
        let deep = json!({"$ref": "#/$defs/N", "$defs": {"N": {"type": "object",
            "properties": {"next": {"$ref": "#/$defs/N"}}}}});
        let mut v = Value::Null;
        for _ in 0..200 {
            v = json!({ "next": v });
        }
        redact(&deep, &mut v);
        let mut at = &v;
        let mut levels = 0;
        while let Some(next) = at.get("next") {
            at = next;
            levels += 1;
        }
        assert_eq!((levels, at), (129, &json!(REDACTED)));
        // Pattern properties are not evaluated: each may apply to any field.
        let patterned = json!({"type": "object", "patternProperties": {
            "^pin": {"writeOnly": true}}, "properties": {"name": {"type": "string"}}});
        let mut v = json!({"pin1": "1234", "other": "x"});
        redact(&patterned, &mut v);
        assert_eq!(v, json!({"pin1": REDACTED, "other": REDACTED}));
    }

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
        redact(&schema, &mut v);
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
