//! Sample values from a JSON Schema, for the starter templates and the
//! editor's test payloads.

use serde_json::{Map, Value};

/// A value that fits `s`: required fields filled in, the first alternative
/// of a union, the least of a range.
pub(super) fn sample(s: &Value, root: &Value, depth: usize) -> Value {
    if depth > 16 {
        return Value::Null;
    }
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let target = r
            .strip_prefix('#')
            .and_then(|p| root.pointer(p))
            .unwrap_or(&Value::Null);
        return sample(target, root, depth + 1);
    }
    if let Some(c) = s.get("const") {
        return c.clone();
    }
    if let Some(Value::Array(vs)) = s.get("enum")
        && let Some(v) = vs.first()
    {
        return v.clone();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(bs)) = s.get(key) {
            let base = without(s, &[key]);
            let non_null = bs
                .iter()
                .find(|b| b.get("type").and_then(Value::as_str) != Some("null"))
                .or(bs.first());
            if let Some(b) = non_null {
                return sample(&merge(&base, b), root, depth + 1);
            }
        }
    }
    let t = match s.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        None if s.get("properties").is_some() => "object",
        _ => return Value::Null,
    };
    match t {
        "string" => Value::String(String::new()),
        "integer" | "number" => s.get("minimum").cloned().unwrap_or(Value::from(0)),
        "boolean" => Value::Bool(false),
        "array" => match s.get("prefixItems") {
            Some(Value::Array(items)) => {
                Value::Array(items.iter().map(|i| sample(i, root, depth + 1)).collect())
            }
            _ => Value::Array(Vec::new()),
        },
        "object" => {
            let mut m = Map::new();
            let required: Vec<&str> = s
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (k, p) in props {
                    if required.contains(&k.as_str()) {
                        m.insert(k.clone(), sample(p, root, depth + 1));
                    }
                }
            }
            Value::Object(m)
        }
        _ => Value::Null,
    }
}

pub(super) fn without(s: &Value, keys: &[&str]) -> Value {
    let mut m = s.as_object().cloned().unwrap_or_default();
    for k in keys {
        m.remove(*k);
    }
    Value::Object(m)
}

/// A branch of a `oneOf` with what its parent says besides (schemars puts
/// `type: object` and shared properties beside the branches of some enums).
pub(super) fn merge(base: &Value, branch: &Value) -> Value {
    let mut m = base.as_object().cloned().unwrap_or_default();
    if let Some(b) = branch.as_object() {
        for (k, v) in b {
            match (k.as_str(), m.get_mut(k)) {
                ("properties", Some(Value::Object(p))) => {
                    if let Value::Object(bp) = v {
                        p.extend(bp.clone());
                    }
                }
                ("required", Some(Value::Array(r))) => {
                    if let Value::Array(br) = v {
                        r.extend(br.clone());
                    }
                }
                _ => {
                    m.insert(k.clone(), v.clone());
                }
            }
        }
    }
    if m.is_empty() {
        return branch.clone();
    }
    Value::Object(m)
}
