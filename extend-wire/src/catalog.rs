//! The catalog document: the platform's extension points as it publishes
//! them (`Catalog::to_json()` in extend-hooks, `PUT /api/catalog` on the
//! host): `{"points": [{"name", "mode", "timeout_ms", "description",
//! "payload_schema", "response_schema", "record_inputs", …}], "typescript"}`.

use crate::names::{POINT_NAME_MAX, is_point_name};
use serde_json::Value;

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

/// The points of `document` that record their inputs (`"record_inputs":
/// true`), with their payload schemas.
pub fn recording_points(document: &Value) -> impl Iterator<Item = (&str, Option<&Value>)> {
    document
        .get("points")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p.get("record_inputs").and_then(Value::as_bool) == Some(true))
        .filter_map(|p| Some((p.get("name")?.as_str()?, p.get("payload_schema"))))
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
        let got: Vec<_> = recording_points(&doc).collect();
        assert_eq!(got, [("a", Some(&json!({"type": "object"})))]);
    }
}
