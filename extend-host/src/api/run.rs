//! `{ANY} /api/run/{container}/{name}[/*]`: runs an extension.

use super::extract::RunTarget;
use super::{App, Query, read_body};
use crate::error::{ApiError, Source};
use crate::sandbox::{Rejected, Reply, RunInput, Webtask};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// `{ANY} /api/run/{container}/{name}` and `.../{name}/{*rest}`. A refusal
/// before the code runs is marked `x-wt-response-source: proxy`.
pub(super) async fn run(
    State(app): State<Arc<App>>,
    target: Result<RunTarget, ApiError>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Body,
) -> Response {
    let result = match target {
        Ok(target) => execute(&app, &target, method, headers, q, body).await,
        Err(e) => Err(e),
    };
    result.unwrap_or_else(|e| e.with_source(Source::Proxy).into_response())
}

/// Checks `Authorization: Bearer <secret>` in constant time when the webtask has
/// the `auth0-extension-secret` secret.
fn authorize(w: &Webtask, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(secret) = &w.extension_secret else {
        return Ok(());
    };
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, m);
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            h.split_once(' ')
                .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim())
        })
        .ok_or_else(|| {
            unauthorized("this extension requires `Authorization: Bearer <its extension secret>`")
        })?;
    if bool::from(given.as_bytes().ct_eq(secret.as_bytes())) {
        Ok(())
    } else {
        Err(unauthorized(
            "the bearer token does not match this extension's secret",
        ))
    }
}

/// What `ctx.body` is made of.
enum CtxBody {
    /// The request body itself, checked to be JSON.
    Json,
    /// A form, as an object of strings.
    Form(Value),
}

/// Writes `pairs` as a JSON object; a repeated key keeps its last value, as
/// an object built from them would.
fn json_object<'a>(out: &mut String, pairs: impl Iterator<Item = (&'a str, &'a str)>) {
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

fn push_json_string(out: &mut String, s: &str) {
    // Serializing a `str` cannot fail.
    if let Ok(quoted) = serde_json::to_string(s) {
        out.push_str(&quoted);
    }
}

/// `ctx.body`: JSON or form bodies are parsed; anything else is left to `req.body`.
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Option<CtxBody>, ApiError> {
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
    // Checked (with serde_json's nesting limit, which JSON.parse lacks), and
    // the text itself goes to the sandbox instead of a re-serialization.
    match serde_json::from_slice::<Value>(body) {
        Ok(_) => Ok(Some(CtxBody::Json)),
        Err(_) if ct.is_empty() => Ok(None),
        Err(e) => Err(ApiError::bad_request(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`),
/// when it is valid.
fn trace_id_of(traceparent: &str) -> Option<String> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    };
    (parts.next().is_none()
        && hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && trace.bytes().any(|c| c != b'0')
        && hex(span, 16)
        && hex(flags, 2))
    .then(|| trace.to_owned())
}

/// The header a caller sends with the milliseconds it will still wait
/// (extend-hooks sends it on every invocation). The run's time limit is
/// capped at it, so that a run nobody waits for stops.
pub(crate) const DEADLINE_HEADER: &str = "x-extend-deadline-ms";

fn caller_deadline(headers: &HeaderMap) -> Result<Option<std::time::Duration>, ApiError> {
    let Some(v) = headers.get(DEADLINE_HEADER) else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&ms| ms > 0)
        .map(|ms| Some(std::time::Duration::from_millis(ms)))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "`{DEADLINE_HEADER}` must be a positive whole number of milliseconds"
            ))
        })
}

async fn execute(
    app: &App,
    target: &RunTarget,
    method: Method,
    headers: HeaderMap,
    raw_query: Option<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let (container, name) = (&target.container, &target.name);
    let w = app
        .webtasks
        .runnable(container, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No such webtask: {container}/{name}")))?;
    authorize(&w, &headers)?;
    execute_webtask(app, w, &target.rest, method, headers, raw_query, body, true).await
}

/// Runs `w` for a request whose caller was already let through: the live
/// webtask after its secret check, or a draft for a management token.
/// `record` offers the input to the recorder (live traffic only).
#[allow(clippy::too_many_arguments)]
pub(super) async fn execute_webtask(
    app: &App,
    w: Arc<Webtask>,
    rest: &str,
    method: Method,
    headers: HeaderMap,
    raw_query: Option<String>,
    body: Body,
    record: bool,
) -> Result<Response, ApiError> {
    let caller = app.executor.caller();
    let container = w.container.clone();
    let container = &container;
    let body = read_body(body, &headers, app.limits.run_body).await?;
    if record && let Some(point) = &w.point {
        app.recorder
            .offer(container, &w.name, point, method.as_str(), &body);
    }
    let parsed = parse_body(&headers, &body)?;
    let query = Query::parse(raw_query.as_deref());
    let deadline = caller_deadline(&headers)?;
    let request_id = app.request_id();
    // The caller's trace (W3C `traceparent`): a malformed one is ignored,
    // as the specification asks.
    let trace_id = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(trace_id_of)
        .unwrap_or_default();
    let span = tracing::info_span!(
        "run",
        container = %container,
        webtask = %w.name,
        request_id = %request_id,
        trace_id = %trace_id,
    );

    // Written straight as JSON text: building `Value` maps first cost more
    // than the run of a small extension.
    let mut ctx_json =
        String::with_capacity(256 + body.len() + w.secrets_json.len() + w.meta_json.len());
    ctx_json.push('{');
    if let Some(b) = &parsed {
        ctx_json.push_str("\"body\":");
        match b {
            CtxBody::Json => ctx_json.push_str(std::str::from_utf8(&body).unwrap_or("null")),
            CtxBody::Form(v) => ctx_json.push_str(&v.to_string()),
        }
        ctx_json.push(',');
    }
    ctx_json.push_str("\"query\":");
    // The reserved `key` and the platform's `webtask_*` flags are not the extension's.
    json_object(
        &mut ctx_json,
        query
            .pairs()
            .iter()
            .filter(|(k, _)| k != "key" && !k.starts_with("webtask_"))
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    ctx_json.push_str(",\"headers\":");
    json_object(
        &mut ctx_json,
        headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))),
    );
    ctx_json.push_str(",\"secrets\":");
    ctx_json.push_str(&w.secrets_json);
    ctx_json.push_str(",\"meta\":");
    ctx_json.push_str(&w.meta_json);
    ctx_json.push_str(",\"id\":\"");
    ctx_json.push_str(&request_id);
    ctx_json.push_str("\"}");
    let url = match (rest, raw_query.as_deref()) {
        ("", None) => "/".to_owned(),
        (r, None) => format!("/{r}"),
        (r, Some(q)) => format!("/{r}?{q}"),
    };
    let req_json = serde_json::json!({
        "method": method.as_str(),
        "url": url,
        "body": String::from_utf8_lossy(&body),
    })
    .to_string();
    let input = RunInput {
        webtask: w,
        request_id,
        trace_id,
        ctx_json,
        req_json,
        compile_only: false,
        time_limit: deadline.map_or(app.limits.run_time, |d| d.min(app.limits.run_time)),
    };
    let started = std::time::Instant::now();
    let rx = match app.executor.submit(input) {
        Ok(rx) => rx,
        Err(Rejected::Busy) => {
            app.metrics.reject("in_flight");
            return Err(ApiError::too_many(
                format!(
                    "container `{container}` already has {} runs in flight, its limit; retry later",
                    app.limits.in_flight_per_container
                ),
                1,
            ));
        }
        Err(Rejected::CpuExhausted { retry_after }) => {
            app.metrics.reject("cpu_budget");
            return Err(ApiError::too_many(
                format!(
                    "container `{container}` used up its CPU budget; it refills in about {retry_after} s"
                ),
                retry_after,
            ));
        }
        Err(Rejected::Quarantined) => {
            app.metrics.reject("quarantine");
            return Ok(respond(crate::sandbox::quarantine_reply(), Some(1)));
        }
        Err(Rejected::ShuttingDown) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the host is shutting down",
            ));
        }
    };
    let in_flight = app.metrics.running();
    let spin = if caller.quiet() {
        app.limits.idle_spin
    } else {
        std::time::Duration::ZERO
    };
    let reply = crate::sandbox::reply(rx, spin).await;
    drop(caller);
    drop(in_flight);
    let reply =
        reply.map_err(|_| ApiError::internal("the executor stopped before the run finished"))?;
    app.metrics.ran(container, reply.source, started.elapsed());
    let source = reply.source.as_str();
    tracing::debug!(parent: &span, status = reply.status, source, elapsed_us = started.elapsed().as_micros() as u64, "run answered");
    if reply.body.len() > app.limits.response_size {
        return Ok(respond(
            Reply::error(
                500,
                crate::error::Source::Webtask,
                "Script produced a response too large.",
                &format!(
                    "the extension's response is {} bytes; the limit is {} bytes",
                    reply.body.len(),
                    app.limits.response_size
                ),
            ),
            None,
        ));
    }
    let retry = (reply.status == 429).then_some(1);
    Ok(respond(reply, retry))
}

/// Response headers an extension may not set: framing is the server's, and
/// cookies or redirects on the host's origin would let one tenant act on
/// another's (or the editor's) behalf.
fn reserved(name: &str) -> bool {
    matches!(
        name,
        "content-length"
            | "transfer-encoding"
            | "connection"
            | "x-wt-response-source"
            | "set-cookie"
            | "set-cookie2"
            | "content-security-policy"
            | "x-content-type-options"
            | "strict-transport-security"
            | "access-control-allow-credentials"
    )
}

fn respond(reply: Reply, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = (status, reply.body).into_response();
    let h = res.headers_mut();
    for (k, v) in &reply.headers {
        if reserved(k) {
            continue;
        }
        if let (Ok(k), Ok(v)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            h.insert(k, v);
        }
    }
    if reply.json || !h.contains_key(header::CONTENT_TYPE) {
        let ct = if reply.json {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        };
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    h.insert("x-wt-response-source", reply.source.header());
    // Run responses share the host's origin with the management API: a
    // browser must treat them as a sandboxed, scriptless document.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(s) = retry_after
        && !h.contains_key(header::RETRY_AFTER)
    {
        h.insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    res
}
