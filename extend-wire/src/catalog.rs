//! The catalog document: the platform's extension points as it publishes
//! them (`Catalog::to_json()` in extend-hooks, `PUT /api/catalog` on the
//! host): `{"points": [{"name", "mode", "timeout_ms", "description",
//! "payload_schema", "response_schema", "record_inputs", …}], "typescript"}`.

use crate::names::{POINT_NAME_MAX, is_point_name};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A catalog document, typed. Every field a reader may meet in a document
/// an older or newer framework wrote is optional, and fields this version
/// does not know are kept (`other`), so that reading and writing one back
/// loses nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// The points, sorted by name when the framework writes them.
    pub points: Vec<Point>,
    /// The points' TypeScript declarations, in a published document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typescript: Option<String>,
    /// The platform's languages by name (see [`Point::language`]): each a
    /// compiler that turns a tenant's source into a handler, which the
    /// webtask meta [`crate::meta::COMPILER`] names.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub languages: std::collections::BTreeMap<String, Language>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One point of a [`Document`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Its name (see [`crate::names`]).
    pub name: String,
    /// `sync` or `async` (see [`MODES`]).
    pub mode: String,
    /// The time one invocation may take, in milliseconds.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// What the point is for (its doc comment).
    #[serde(default)]
    pub description: Option<String>,
    /// The Rust path of the declaring function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rust_path: Option<String>,
    /// Where it is declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The language its extensions are written in, when not JavaScript: the
    /// name of one of the document's [`Document::compilers`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Whether the platform runs a default when the tenant has no extension.
    #[serde(default)]
    pub has_default: bool,
    /// Whether the host keeps the last inputs of its extensions.
    #[serde(default)]
    pub record_inputs: bool,
    /// The payload's Rust type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_type: Option<String>,
    /// The payload's JSON Schema.
    #[serde(default)]
    pub payload_schema: Option<Value>,
    /// The response's Rust type (a sync point).
    #[serde(default)]
    pub response_type: Option<String>,
    /// The response's JSON Schema (a sync point).
    #[serde(default)]
    pub response_schema: Option<Value>,
    /// A starter extension, in a published document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// A payload that fits the schema, in a published document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<Value>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A language the platform offers its tenants besides JavaScript (Extend's
/// "middleware": a Mustache template, a query, …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Language {
    /// The compiler: a CommonJS module whose export is called with
    /// `({ script, meta }, cb)` (Webtask's `wt-compiler` signature) and
    /// answers, through `cb` or by returning it, the handler that runs the
    /// tenant's `script`. It runs inside the tenant's sandbox; an error it
    /// throws or passes to `cb` is the tenant's compile error.
    pub compiler: String,
    /// The code a new extension starts from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starter: Option<String>,
    /// The editor's syntax mode for it (a Monaco language id, e.g. `handlebars`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub editor_mode: Option<String>,
}

/// Where a point is declared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The file, as `file!()` gives it.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl Document {
    /// Reads and checks a document: the rules of [`point_names`], then the
    /// types of the fields. The message says what is wrong and where.
    pub fn parse(document: &Value) -> Result<Document, String> {
        point_names(document)?;
        serde_json::from_value(document.clone())
            .map_err(|e| format!("the catalog is not a catalog document: {e}"))
    }

    /// Each point whose language has no compiler in the document, with
    /// that language.
    pub fn missing_languages(&self) -> Vec<(&str, &str)> {
        self.points
            .iter()
            .filter_map(|p| Some((p.name.as_str(), p.language.as_deref()?)))
            .filter(|(_, l)| !self.languages.contains_key(*l))
            .collect()
    }

    /// The point named `name`.
    pub fn point(&self, name: &str) -> Option<&Point> {
        self.points.iter().find(|p| p.name == name)
    }

    /// The points that record their inputs, with their payload schemas.
    pub fn recording(&self) -> impl Iterator<Item = (&str, Option<&Value>)> {
        self.points
            .iter()
            .filter(|p| p.record_inputs)
            .map(|p| (p.name.as_str(), p.payload_schema.as_ref()))
    }
}

/// A point's `mode` values.
pub const MODES: [&str; 2] = ["sync", "async"];

/// The point names of a catalog document, checked: an object whose `points`
/// is an array of objects, each with a unique valid point name (see
/// [`crate::names`]) and a `mode` of `sync` or `async`. The message says
/// what is wrong and where.
pub fn point_names(document: &Value) -> Result<Vec<String>, String> {
    let points = document
        .get("points")
        .and_then(Value::as_array)
        .ok_or("the catalog must be a JSON object with a `points` array")?;
    let mut names: Vec<String> = Vec::with_capacity(points.len());
    for (i, p) in points.iter().enumerate() {
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| is_point_name(n))
            .ok_or_else(|| {
                format!(
                    "point {i} of the catalog needs a `name` in kebab-case of at most {POINT_NAME_MAX} characters"
                )
            })?;
        if !p
            .get("mode")
            .and_then(Value::as_str)
            .is_some_and(|m| MODES.contains(&m))
        {
            return Err(format!(
                "point `{name}` needs a `mode` of \"sync\" or \"async\""
            ));
        }
        if names.iter().any(|n| n == name) {
            return Err(format!("the catalog names point `{name}` twice"));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_document_is_checked_point_by_point() {
        let ok = json!({"points": [{"name": "on-new-lead", "mode": "sync"}, {"name": "b", "mode": "async"}]});
        assert_eq!(point_names(&ok).unwrap(), ["on-new-lead", "b"]);
        for (doc, needle) in [
            (json!([]), "a `points` array"),
            (
                json!({"points": [{"mode": "sync"}]}),
                "point 0 of the catalog needs a `name`",
            ),
            (
                json!({"points": [{"name": "Bad Name", "mode": "sync"}]}),
                "kebab-case",
            ),
            (
                json!({"points": [{"name": "a".repeat(65), "mode": "sync"}]}),
                "at most 64",
            ),
            (
                json!({"points": [{"name": "a", "mode": "later"}]}),
                "point `a` needs a `mode`",
            ),
            (
                json!({"points": [{"name": "a", "mode": "sync"}, {"name": "a", "mode": "async"}]}),
                "names point `a` twice",
            ),
        ] {
            let e = point_names(&doc).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn recording_points_are_those_that_opt_in() {
        let doc = json!({"points": [
            {"name": "a", "mode": "sync", "record_inputs": true, "payload_schema": {"type": "object"}},
            {"name": "b", "mode": "sync"},
        ]});
        let doc = super::Document::parse(&doc).unwrap();
        let got: Vec<_> = doc.recording().collect();
        assert_eq!(got, [("a", Some(&json!({"type": "object"})))]);
    }

    #[test]
    fn a_document_round_trips_with_the_fields_it_does_not_know() {
        let raw = json!({
            "points": [{
                "name": "on-new-lead", "mode": "sync", "timeout_ms": 2000, "description": null,
                "has_default": true, "record_inputs": false, "payload_schema": {"type": "object"},
                "response_type": null, "response_schema": null,
                "source": {"file": "crm.rs", "line": 3, "column": 1},
                "future_field": [1, 2],
            }],
            "typescript": "export {}",
            "generator": "next-version",
        });
        let doc = super::Document::parse(&raw).unwrap();
        assert_eq!(doc.point("on-new-lead").unwrap().timeout_ms, Some(2000));
        assert_eq!(doc.points[0].other["future_field"], json!([1, 2]));
        assert_eq!(serde_json::to_value(&doc).unwrap(), raw);
        let e = super::Document::parse(
            &json!({"points": [{"name": "a", "mode": "sync", "timeout_ms": "soon"}]}),
        )
        .unwrap_err();
        assert!(e.contains("not a catalog document"), "{e}");
    }
}
