//! Whether a new catalog keeps the contract of the one extensions were
//! written against.
//!
//! Extensions *read* payloads, so a payload may narrow (accept less) but not
//! widen: an extension must never meet a value it was not told about.
//! Extensions *write* responses that the platform reads, so a response may
//! widen but not narrow: what an existing extension returns must still be
//! accepted. Points are matched by name; a removed point or a changed mode
//! breaks, a new point or a changed timeout does not.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// One difference between two catalogs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Difference {
    /// Where, as a JSON Pointer into the new catalog's document (into the old
    /// one for what was removed): `/points/on-new-lead/payload_schema/properties/email`.
    /// Points are addressed by name.
    pub pointer: String,
    /// Whether extensions written against the old catalog may fail with the new one.
    pub breaking: bool,
    /// One sentence saying what changed and why it breaks or doesn't.
    pub reason: String,
}

/// Every difference between an old catalog and a new one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Comparison {
    /// In pointer order.
    pub differences: Vec<Difference>,
}

impl Comparison {
    /// Whether any difference breaks.
    pub fn is_breaking(&self) -> bool {
        self.differences.iter().any(|d| d.breaking)
    }

    /// The breaking differences.
    pub fn breaking(&self) -> impl Iterator<Item = &Difference> {
        self.differences.iter().filter(|d| d.breaking)
    }

    /// The names of the points with a breaking difference.
    pub fn broken_points(&self) -> BTreeSet<String> {
        self.breaking()
            .filter_map(|d| d.pointer.strip_prefix("/points/"))
            .map(|rest| unescape(rest.split('/').next().unwrap_or_default()))
            .collect()
    }
}

/// A report: the breaking differences first, then the compatible ones.
impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.differences.is_empty() {
            return writeln!(f, "the catalogs have the same contract");
        }
        let breaking: Vec<_> = self.breaking().collect();
        if !breaking.is_empty() {
            writeln!(f, "{} breaking change(s):", breaking.len())?;
            for d in &breaking {
                writeln!(f, "  BREAKING {}: {}", d.pointer, d.reason)?;
            }
        }
        let compatible: Vec<_> = self.differences.iter().filter(|d| !d.breaking).collect();
        if !compatible.is_empty() {
            writeln!(f, "{} compatible change(s):", compatible.len())?;
            for d in &compatible {
                writeln!(f, "  ok       {}: {}", d.pointer, d.reason)?;
            }
        }
        Ok(())
    }
}

/// Compares catalog documents (`Catalog::to_json()`, or a published one).
///
/// # Errors
/// A message when either is not a catalog document.
pub fn compare_documents(old: &Value, new: &Value) -> Result<Comparison, String> {
    let old_points = points(old).map_err(|e| format!("the old catalog: {e}"))?;
    let new_points = points(new).map_err(|e| format!("the new catalog: {e}"))?;
    let mut out = Vec::new();
    for (name, old_p) in &old_points {
        let at = format!("/points/{}", escape(name));
        let Some(new_p) = new_points.get(name) else {
            out.push(diff(
                &at,
                true,
                format!(
                    "point `{name}` was removed: extensions installed for it would no longer run"
                ),
            ));
            continue;
        };
        let (om, nm) = (old_p.get("mode"), new_p.get("mode"));
        if om != nm {
            out.push(diff(
                &format!("{at}/mode"),
                true,
                format!(
                    "the mode changed from {} to {}: extensions were written for the other calling convention",
                    show(om),
                    show(nm)
                ),
            ));
        }
        if old_p.get("timeout_ms") != new_p.get("timeout_ms") {
            out.push(diff(
                &format!("{at}/timeout_ms"),
                false,
                format!(
                    "the timeout changed from {} to {} ms: a platform setting, not part of what extensions read or write",
                    show(old_p.get("timeout_ms")),
                    show(new_p.get("timeout_ms"))
                ),
            ));
        }
        let records = |p: &serde_json::Map<String, Value>| {
            p.get("record_inputs").and_then(Value::as_bool) == Some(true)
        };
        if records(old_p) != records(new_p) {
            out.push(diff(
                &format!("{at}/record_inputs"),
                false,
                if records(new_p) {
                    "the host now keeps the last inputs of each extension (sealed, writeOnly fields redacted) for replaying drafts".to_owned()
                } else {
                    "the host no longer keeps the inputs of extensions for replaying drafts".to_owned()
                },
            ));
        }
        let null = Value::Null;
        for (key, side) in [
            ("payload_schema", Side::Payload),
            ("response_schema", Side::Response),
        ] {
            let (os, ns) = (
                old_p.get(key).unwrap_or(&null),
                new_p.get(key).unwrap_or(&null),
            );
            match (os.is_null(), ns.is_null()) {
                (true, true) => {}
                (true, false) => out.push(diff(
                    &format!("{at}/{key}"),
                    side == Side::Payload,
                    format!("the point now has a {}", side.noun()),
                )),
                (false, true) => out.push(diff(
                    &format!("{at}/{key}"),
                    side == Side::Response,
                    format!("the point no longer has a {}", side.noun()),
                )),
                (false, false) => {
                    let mut walk = Walk {
                        old_root: os,
                        new_root: ns,
                        side,
                        seen: BTreeSet::new(),
                        out: &mut out,
                    };
                    walk.schema(os, ns, &format!("{at}/{key}"));
                }
            }
        }
    }
    for name in new_points.keys() {
        if !old_points.contains_key(name) {
            out.push(diff(
                &format!("/points/{}", escape(name)),
                false,
                format!("point `{name}` is new: no extension depends on it yet"),
            ));
        }
    }
    out.sort_by(|a, b| a.pointer.cmp(&b.pointer));
    Ok(Comparison { differences: out })
}

fn points(doc: &Value) -> Result<BTreeMap<String, &Map<String, Value>>, String> {
    let list = doc
        .get("points")
        .and_then(Value::as_array)
        .ok_or("it is not an object with a `points` array")?;
    list.iter()
        .map(|p| {
            let p = p.as_object().ok_or("a point is not an object")?;
            let name = p
                .get("name")
                .and_then(Value::as_str)
                .ok_or("a point has no `name`")?;
            Ok((name.to_owned(), p))
        })
        .collect()
}

fn diff(pointer: &str, breaking: bool, reason: String) -> Difference {
    Difference {
        pointer: pointer.to_owned(),
        breaking,
        reason,
    }
}

fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "nothing".to_owned(), Value::to_string)
}

/// JSON Pointer escaping of one segment.
fn escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn unescape(s: &str) -> String {
    s.replace("~1", "/").replace("~0", "~")
}

/// Which way a schema is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Sent to extensions: it may narrow, not widen.
    Payload,
    /// Returned by extensions: it may widen, not narrow.
    Response,
}

impl Side {
    fn noun(self) -> &'static str {
        match self {
            Side::Payload => "payload",
            Side::Response => "response",
        }
    }
}

/// A schema's set of JSON types, `null` included when it is nullable.
fn types(s: &Value) -> Option<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    match s.get("type") {
        Some(Value::String(t)) => {
            out.insert(t.clone());
        }
        Some(Value::Array(ts)) => {
            out.extend(ts.iter().filter_map(|t| t.as_str().map(str::to_owned)))
        }
        _ => return None,
    }
    // `integer` is a kind of `number`: keep both names comparable.
    Some(out)
}

/// The values of a closed set: `enum`, `const`, or a `oneOf`/`anyOf` whose
/// branches are all `const` or `enum`.
fn closed_values(s: &Value) -> Option<BTreeSet<String>> {
    if let Some(Value::Array(vs)) = s.get("enum") {
        return Some(vs.iter().map(Value::to_string).collect());
    }
    if let Some(c) = s.get("const") {
        return Some(BTreeSet::from([c.to_string()]));
    }
    let branches = s.get("oneOf").or_else(|| s.get("anyOf"))?.as_array()?;
    let mut out = BTreeSet::new();
    for b in branches {
        out.extend(closed_values(b)?);
    }
    Some(out)
}

struct Walk<'a, 'o> {
    old_root: &'a Value,
    new_root: &'a Value,
    side: Side,
    /// `$ref` pairs being compared (on the way down), so recursive types end.
    seen: BTreeSet<(String, String)>,
    out: &'o mut Vec<Difference>,
}

impl<'a> Walk<'a, '_> {
    fn push(&mut self, at: &str, widened: bool, what: &str) {
        // Widening breaks a payload; narrowing breaks a response.
        let breaking = match self.side {
            Side::Payload => widened,
            Side::Response => !widened,
        };
        let why = match (self.side, breaking) {
            (Side::Payload, true) => "extensions may now receive what they were not written for",
            (Side::Payload, false) => "extensions receive less than they handle",
            (Side::Response, true) => {
                "extensions written before may return what is no longer accepted"
            }
            (Side::Response, false) => "what extensions returned before is still accepted",
        };
        self.out.push(diff(at, breaking, format!("{what}: {why}")));
    }

    fn resolve(&self, s: &'a Value, root: &'a Value) -> (&'a Value, Option<String>) {
        let Some(r) = s.get("$ref").and_then(Value::as_str) else {
            return (s, None);
        };
        let target = r
            .strip_prefix('#')
            .and_then(|p| root.pointer(p))
            .unwrap_or(s);
        (target, Some(r.to_owned()))
    }

    /// `anyOf: [X, {type: null}]` (how an `Option` of a named type is
    /// written) as X and whether it is nullable.
    fn unwrap_nullable(s: &'a Value) -> (&'a Value, bool) {
        if let Some(Value::Array(branches)) = s.get("anyOf")
            && branches.len() == 2
            && let Some(i) = branches
                .iter()
                .position(|b| b.get("type").and_then(Value::as_str) == Some("null"))
        {
            return (&branches[1 - i], true);
        }
        (s, false)
    }

    fn schema(&mut self, old: &'a Value, new: &'a Value, at: &str) {
        let (old, old_null) = Self::unwrap_nullable(old);
        let (new, new_null) = Self::unwrap_nullable(new);
        if old_null != new_null {
            let what = if new_null {
                "it may now be null"
            } else {
                "it may no longer be null"
            };
            self.push(at, new_null, what);
        }
        let (old, old_ref) = self.resolve(old, self.old_root);
        let (new, new_ref) = self.resolve(new, self.new_root);
        if old == new {
            return;
        }
        // A pair of definitions already being compared further up is a
        // recursive type: its differences are reported there.
        let pair = old_ref.zip(new_ref);
        if let Some(pair) = &pair
            && !self.seen.insert(pair.clone())
        {
            return;
        }
        self.compare_resolved(old, new, at);
        if let Some(pair) = &pair {
            self.seen.remove(pair);
        }
    }

    fn compare_resolved(&mut self, old: &'a Value, new: &'a Value, at: &str) {
        if let (Some(ov), Some(nv)) = (closed_values(old), closed_values(new)) {
            for v in nv.difference(&ov) {
                self.push(at, true, &format!("it may now be {v}"));
            }
            for v in ov.difference(&nv) {
                self.push(at, false, &format!("it may no longer be {v}"));
            }
            return;
        }
        if let (Some(ot), Some(nt)) = (types(old), types(new)) {
            let number = |t: &BTreeSet<String>| t.contains("number");
            for t in nt.difference(&ot) {
                if t == "number" && ot.contains("integer") {
                    self.push(at, true, "it may now be a fractional number");
                } else if t == "integer" && number(&ot) {
                    continue;
                } else {
                    let what = if t == "null" {
                        "it may now be null".to_owned()
                    } else {
                        format!("it may now be of type {t}")
                    };
                    self.push(at, true, &what);
                }
            }
            for t in ot.difference(&nt) {
                if t == "number" && nt.contains("integer") {
                    self.push(at, false, "it must now be a whole number");
                } else if t == "integer" && number(&nt) {
                    continue;
                } else {
                    let what = if t == "null" {
                        "it may no longer be null".to_owned()
                    } else {
                        format!("it may no longer be of type {t}")
                    };
                    self.push(at, false, &what);
                }
            }
        }
        self.objects(old, new, at);
        for key in ["items", "additionalProperties"] {
            if let (Some(o), Some(n)) = (old.get(key), new.get(key))
                && o.is_object()
                && n.is_object()
            {
                self.schema(o, n, &format!("{at}/{key}"));
            }
        }
        self.prefix_items(old, new, at);
        self.variants(old, new, at);
    }

    fn objects(&mut self, old: &'a Value, new: &'a Value, at: &str) {
        static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
        let empty: &'static Map<String, Value> = &EMPTY;
        let (op, np) = (
            old.get("properties").and_then(Value::as_object),
            new.get("properties").and_then(Value::as_object),
        );
        if op.is_none() && np.is_none() {
            return;
        }
        let (op, np) = (op.unwrap_or(empty), np.unwrap_or(empty));
        let required = |s: &Value| -> BTreeSet<String> {
            s.get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let (or, nr) = (required(old), required(new));
        for (name, o) in op {
            let here = format!("{at}/properties/{}", escape(name));
            let Some(n) = np.get(name) else {
                let breaking = self.side == Side::Payload;
                let why = if breaking {
                    "extensions that read it would find it missing"
                } else {
                    "the platform no longer reads it; extensions may still send it"
                };
                self.out.push(diff(
                    &here,
                    breaking,
                    format!("field `{name}` was removed: {why}"),
                ));
                continue;
            };
            match (or.contains(name), nr.contains(name)) {
                (true, false) => self.push(&here, true, &format!("field `{name}` became optional")),
                (false, true) => {
                    self.push(&here, false, &format!("field `{name}` became required"))
                }
                _ => {}
            }
            self.schema(o, n, &here);
        }
        for name in np.keys().filter(|k| !op.contains_key(*k)) {
            let here = format!("{at}/properties/{}", escape(name));
            let (breaking, why) = match (self.side, nr.contains(name)) {
                (Side::Payload, _) => (false, "extensions that do not know it ignore it"),
                (Side::Response, true) => (true, "extensions written before do not return it"),
                (Side::Response, false) => {
                    (false, "it is optional, so extensions may leave it out")
                }
            };
            let kind = if nr.contains(name) {
                "required"
            } else {
                "optional"
            };
            self.out.push(diff(
                &here,
                breaking,
                format!("{kind} field `{name}` was added: {why}"),
            ));
        }
    }

    fn prefix_items(&mut self, old: &'a Value, new: &'a Value, at: &str) {
        let (Some(o), Some(n)) = (
            old.get("prefixItems").and_then(Value::as_array),
            new.get("prefixItems").and_then(Value::as_array),
        ) else {
            return;
        };
        if o.len() != n.len() {
            self.out.push(diff(
                &format!("{at}/prefixItems"),
                true,
                format!("the tuple has {} elements instead of {}: old and new readers disagree on its shape", n.len(), o.len()),
            ));
            return;
        }
        for (i, (a, b)) in o.iter().zip(n).enumerate() {
            self.schema(a, b, &format!("{at}/prefixItems/{i}"));
        }
    }

    /// Tagged enums: `oneOf`/`anyOf` branches matched by their tag (the
    /// `const` of a property, or the one required property of an
    /// externally tagged variant). A new branch widens; a lost one narrows.
    fn variants(&mut self, old: &'a Value, new: &'a Value, at: &str) {
        for key in ["oneOf", "anyOf"] {
            let (Some(o), Some(n)) = (
                old.get(key).and_then(Value::as_array),
                new.get(key).and_then(Value::as_array),
            ) else {
                continue;
            };
            let ok = self.keyed(o, self.old_root);
            let nk = self.keyed(n, self.new_root);
            let (Some(ok), Some(nk)) = (ok, nk) else {
                if o != n {
                    self.out.push(diff(&format!("{at}/{key}"), true, "the alternatives changed in a way that cannot be matched one to one: treated as breaking".to_owned()));
                }
                continue;
            };
            for (tag, (i, b)) in &nk {
                match ok.get(tag) {
                    Some((_, a)) => self.schema(a, b, &format!("{at}/{key}/{i}")),
                    None => self.push(
                        &format!("{at}/{key}/{i}"),
                        true,
                        &format!("variant {tag} was added"),
                    ),
                }
            }
            for (tag, (i, _)) in &ok {
                if !nk.contains_key(tag) {
                    self.push(
                        &format!("{at}/{key}/{i}"),
                        false,
                        &format!("variant {tag} was removed"),
                    );
                }
            }
        }
    }

    fn keyed(
        &self,
        branches: &'a [Value],
        root: &'a Value,
    ) -> Option<BTreeMap<String, (usize, &'a Value)>> {
        let mut out = BTreeMap::new();
        for (i, b) in branches.iter().enumerate() {
            let (b, _) = self.resolve(b, root);
            let tag = variant_tag(b)?;
            if out.insert(tag, (i, b)).is_some() {
                return None;
            }
        }
        Some(out)
    }
}

/// What identifies a variant of a tagged enum.
fn variant_tag(b: &Value) -> Option<String> {
    if let Some(c) = b
        .get("const")
        .or_else(|| b.get("enum").and_then(|e| e.get(0)))
    {
        return Some(c.to_string());
    }
    let props = b.get("properties").and_then(Value::as_object);
    if let Some(props) = props {
        // Internally or adjacently tagged: a property whose value is a constant.
        for (k, v) in props {
            if let Some(c) = v.get("const").or_else(|| {
                v.get("enum").and_then(|e| {
                    e.as_array()
                        .filter(|a| a.len() == 1)
                        .and_then(|a| a.first())
                })
            }) {
                return Some(format!("{k}={c}"));
            }
        }
        // Externally tagged: one required property named for the variant.
        let required = b.get("required").and_then(Value::as_array)?;
        if required.len() == 1 && props.len() == 1 {
            return required[0].as_str().map(|s| format!("\"{s}\""));
        }
    }
    None
}

#[cfg(test)]
mod tests;
