//! A run's request body as the `ctx.body` its extension sees: parsed once,
//! its nesting bounded, and the JSON of `ctx` written without a round trip.

use crate::error::ApiError;
use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};

/// What `ctx.body` is made of.
pub(super) enum CtxBody {
    /// The request body itself, checked to be JSON.
    Json,
    /// A form, as an object of strings.
    Form(Value),
}

/// Writes `pairs` as a JSON object; a repeated key keeps its last value, as
/// an object built from them would.
pub(super) fn json_object<'a>(out: &mut String, pairs: impl Iterator<Item = (&'a str, &'a str)>) {
    let pairs: Vec<(&str, &str)> = pairs.collect();
    out.push('{');
    let mut first = true;
    for (i, (k, v)) in pairs.iter().enumerate() {
        if pairs[i + 1..].iter().any(|(later, _)| later == k) {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        push_json_string(out, k);
        out.push(':');
        push_json_string(out, v);
    }
    out.push('}');
}

pub(super) fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    escape_json(out, s);
    out.push('"');
}

/// Writes `s` escaped for the inside of a JSON string, as serde_json
/// does, without allocating (a run's `ctx` holds a dozen such strings).
pub(super) fn escape_json(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        // `b` is ASCII, so `i` and `i + 1` are character boundaries.
        out.push_str(&s[plain..i]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            _ => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
}

/// The deepest nesting of a JSON body: serde_json's own limit, which
/// `JSON.parse` lacks (it would meet the runtime's stack limit instead,
/// and the caller's mistake would look like the extension's).
pub(super) const MAX_DEPTH: usize = 128;

/// How deep arrays and objects nest in `json`, outside strings.
pub(super) fn nesting(json: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
    for &b in json {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// `ctx.body`: JSON or form bodies are parsed; anything else is left to `req.body`.
pub(super) fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Option<CtxBody>, ApiError> {
    if body.is_empty() {
        return Ok(None);
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ct.starts_with("application/x-www-form-urlencoded") {
        let map: Map<String, Value> = form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        return Ok(Some(CtxBody::Form(Value::Object(map))));
    }
    let looks_json = ct.is_empty() || ct.starts_with("application/json") || ct.contains("+json");
    if !looks_json {
        return Ok(None);
    }
    // Checked without building it, and the text itself goes to the
    // sandbox instead of a re-serialization.
    let checked = if nesting(body) > MAX_DEPTH {
        Err(format!("it nests deeper than {MAX_DEPTH} levels"))
    } else {
        serde_json::from_slice::<serde::de::IgnoredAny>(body)
            .map(drop)
            .map_err(|e| e.to_string())
    };
    match checked {
        Ok(()) => Ok(Some(CtxBody::Json)),
        Err(_) if ct.is_empty() => Ok(None),
        Err(e) => Err(ApiError::bad_request(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}
