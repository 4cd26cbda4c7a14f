//! `{ANY} /api/run/{container}/{name}[/*]`: runs an extension.

mod body;
mod reply;

use super::{App, read_body};
use crate::error::{ApiError, Source};
use crate::query::Query;
use crate::sandbox::{Rejected, Reply, RunInput, Webtask};
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use body::*;
use reply::*;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The container and webtask a run is for, with checked names, and the
/// rest of the path after them.
#[derive(Debug)]
pub(super) struct RunTarget {
    container: String,
    name: String,
    rest: String,
}

/// The target of a run path, `/api/run/{container}/{name}[/{rest}]`, each
/// part percent-decoded; `None` when the path names no webtask (not a run
/// URL: the router answers it). Names must be valid (400 otherwise).
pub(super) fn target(path: &str) -> Option<Result<RunTarget, ApiError>> {
    let mut parts = path.strip_prefix("/api/run/")?.splitn(3, '/');
    let (container, name) = (parts.next()?, parts.next()?);
    if container.is_empty() || name.is_empty() {
        return None;
    }
    let rest = parts.next().unwrap_or_default();
    Some((|| {
        let container = decode(container)?;
        crate::names::check("container", &container)?;
        let name = decode(name)?;
        crate::names::check("webtask", &name)?;
        Ok(RunTarget {
            container,
            name,
            rest: decode(rest)?,
        })
    })())
}

fn decode(part: &str) -> Result<String, ApiError> {
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| {
            ApiError::bad_request(format!(
                "the request path is not valid: `{}` is not UTF-8 once percent-decoded",
                part.escape_debug()
            ))
        })
}

/// `{ANY} /api/run/{container}/{name}[/{rest}]`. A refusal before the code
/// runs is marked `x-wt-response-source: proxy`.
pub(super) async fn serve(
    app: &App,
    target: Result<RunTarget, ApiError>,
    request: Request<hyper::body::Incoming>,
) -> Response {
    let (parts, body) = request.into_parts();
    let result = match target {
        Ok(target) => {
            let query = parts.uri.query().map(str::to_owned);
            let body = Body::new(body);
            execute(app, &target, parts.method, parts.headers, query, body).await
        }
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

use extend_wire::trace::trace_id_of;

pub(crate) use extend_wire::headers::DEADLINE as DEADLINE_HEADER;

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
    let body = read_body(body, &headers, app.limits.run_body).await?;
    let reply = run_reply(
        app,
        w,
        rest,
        &method,
        &headers,
        raw_query.as_deref(),
        body,
        if record {
            RunMode::Record
        } else {
            RunMode::Plain
        },
    )
    .await?;
    let retry = (reply.status == 429).then_some(1);
    // A draft's run (not recorded) tells the editor's runner what it fetched.
    let listed = (!record && !reply.subrequests.is_empty())
        .then(|| reply::subrequests_header(&reply.subrequests));
    let mut res = respond(reply, retry);
    if let Some(v) = listed {
        res.headers_mut().insert(reply::SUBREQUESTS, v);
    }
    Ok(res)
}

/// Whether a run's input is recorded, or what the run is a replay of.
#[derive(Debug)]
pub(super) enum RunMode {
    /// A live run: its input is recorded when its point records inputs.
    Record,
    /// Not recorded (a draft's run).
    Plain,
    /// A replay on a recorded input: `fetch` is answered from these.
    Replay(Arc<Vec<crate::sandbox::io::Subrequest>>),
}

/// Runs `w` on a request already read: the sandbox's reply (a response over
/// the size limit is replaced by the error saying so), or why the run was
/// refused. Replay calls this directly, with no HTTP round trip.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_reply(
    app: &App,
    w: Arc<Webtask>,
    rest: &str,
    method: &Method,
    headers: &HeaderMap,
    raw_query: Option<&str>,
    body: bytes::Bytes,
    mode: RunMode,
) -> Result<Reply, ApiError> {
    let caller = app.executor.caller();
    let container = w.container.clone();
    let container = &container;
    // Recorded after the run, with the requests it made.
    let recorded = matches!(mode, RunMode::Record).then(|| Arc::clone(&w));
    let replay = match mode {
        RunMode::Replay(r) => Some(r),
        _ => None,
    };
    let parsed = parse_body(headers, &body)?;
    let query = Query::parse(raw_query);
    let deadline = caller_deadline(headers)?;
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
    let mut req_json = String::with_capacity(48 + rest.len() + body.len());
    req_json.push_str("{\"method\":");
    push_json_string(&mut req_json, method.as_str());
    req_json.push_str(",\"url\":\"/");
    escape_json(&mut req_json, rest);
    if let Some(q) = raw_query {
        req_json.push('?');
        escape_json(&mut req_json, q);
    }
    req_json.push_str("\",\"body\":");
    push_json_string(&mut req_json, &String::from_utf8_lossy(&body));
    req_json.push('}');
    let input = RunInput {
        webtask: w,
        request_id,
        trace_id,
        ctx_json,
        req_json,
        compile_only: false,
        time_limit: crate::sandbox::limit::for_request(&app.limits, deadline),
        replay,
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
            return Ok(crate::sandbox::quarantine_reply());
        }
        Err(Rejected::ShuttingDown) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the host is shutting down",
            ));
        }
    };
    let in_flight = app.metrics.running();
    let reply = crate::sandbox::reply(rx, caller.reply_spin()).await;
    drop(caller);
    drop(in_flight);
    let reply =
        reply.map_err(|_| ApiError::internal("the executor stopped before the run finished"))?;
    if let Some(w) = recorded
        && let Some(point) = &w.point
    {
        app.recorder.offer(
            &crate::recording::Offered {
                container,
                name: &w.name,
                point,
                method: method.as_str(),
                body: &body,
            },
            &reply.subrequests,
            &w.secrets_json,
        );
    }
    app.metrics.ran(container, reply.source, started.elapsed());
    let source = reply.source.as_str();
    tracing::debug!(parent: &span, status = reply.status, source, elapsed_us = started.elapsed().as_micros() as u64, "run answered");
    let size = reply.body.len() + header_bytes(&reply);
    if size > app.limits.response_size {
        return Ok(Reply::error(
            500,
            crate::error::Source::Webtask,
            "Script produced a response too large.",
            &format!(
                "the extension's response (body and headers) is {size} bytes; the limit is {} bytes",
                app.limits.response_size
            ),
        ));
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        for s in [
            "",
            "plain",
            "quote \" and backslash \\",
            "lines\nand\r\ttabs",
            "\u{0}\u{1}\u{8}\u{b}\u{c}\u{1f}\u{7f}",
            "unicode é 😀 \u{2028}",
        ] {
            let mut out = String::new();
            push_json_string(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
            assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s);
        }
    }

    #[test]
    fn nesting_counts_brackets_outside_strings_only() {
        assert_eq!(nesting(b"1"), 0);
        assert_eq!(nesting(br#"{"a":[1,{"b":[]}]}"#), 4);
        assert_eq!(nesting(br#"["[[[{", "\"[[", {}]"#), 2);
        let deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
        assert_eq!(nesting(deep.as_bytes()), 129);
    }

    #[test]
    fn run_paths_parse_into_checked_decoded_targets() {
        let t = target("/api/run/acme/on-lead").unwrap().unwrap();
        assert_eq!(
            (t.container.as_str(), t.name.as_str(), t.rest.as_str()),
            ("acme", "on-lead", "")
        );
        let t = target("/api/run/acme/hook/a/b%20c").unwrap().unwrap();
        assert_eq!(t.rest, "a/b c");
        let t = target("/api/run/%61cme/hook/").unwrap().unwrap();
        assert_eq!((t.container.as_str(), t.rest.as_str()), ("acme", ""));
        for not_a_run in [
            "/api/run/",
            "/api/run/acme",
            "/api/run/acme/",
            "/api/runs/a/b",
        ] {
            assert!(target(not_a_run).is_none(), "{not_a_run}");
        }
        let e = target("/api/run/a%20b/hook").unwrap().unwrap_err();
        assert!(
            e.message.contains("invalid container name"),
            "{}",
            e.message
        );
        let e = target("/api/run/acme/%FF").unwrap().unwrap_err();
        assert!(e.message.contains("not UTF-8"), "{}", e.message);
    }
}
