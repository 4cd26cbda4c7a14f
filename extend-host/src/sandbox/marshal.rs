//! What crosses between the engine and the JavaScript of `prelude.js` and
//! `fetch.js`: a run's outcome, the calls of a run that waits, the host's
//! answers to them, and what a run came to when it failed.

use super::Reply;
use super::io::{HostCall, Wait};
use crate::egress::{Outcome, Request};
use crate::error::Source;
use rquickjs::{Ctx, Object, Value};
use std::time::Duration;

/// Why a run failed (the engine turns it into the Extend error table's reply).
pub(super) enum Failure {
    Timeout,
    OutOfMemory,
    Other(String),
}

/// Reads `[calls, ms until the next timer or -1]` from `wait` in prelude.js;
/// each call `['fetch', id, method, url, flat headers, body, redirect]` or
/// `['cancel', id]` (fetch.js).
pub(super) fn read_wait(v: &Value<'_>) -> rquickjs::Result<Wait> {
    let arr = v
        .as_array()
        .ok_or_else(|| rquickjs::Error::new_from_js("value", "array"))?;
    let calls: rquickjs::Array<'_> = arr.get(0)?;
    let wake: f64 = arr.get(1)?;
    let mut out = Vec::with_capacity(calls.len());
    for call in calls.iter::<rquickjs::Array<'_>>() {
        let call = call?;
        let kind: String = call.get(0)?;
        let id = call.get::<f64>(1)? as u64;
        if kind == "cancel" {
            out.push(HostCall::Cancel(id));
            continue;
        }
        let flat: Vec<String> = call.get(4)?;
        let headers = flat
            .chunks_exact(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect();
        let body: Option<rquickjs::TypedArray<'_, u8>> = call.get(5)?;
        let body = body.as_ref().map(super::web::bytes);
        out.push(HostCall::Fetch(
            id,
            Request {
                method: call.get(2)?,
                url: call.get(3)?,
                headers,
                body,
                redirect: super::io::redirect_of(call.get::<f64>(6)?.max(0.0) as u64),
            },
        ));
    }
    Ok(Wait {
        calls: out,
        wake_after: (wake >= 0.0).then(|| Duration::from_millis(wake as u64)),
    })
}

/// The host's outcomes as `resume` in prelude.js takes them: `[id, 1,
/// [status, statusText, url, redirected, flat headers, bytes]]` or `[id, 0,
/// message]`.
pub(super) fn completions<'js>(
    ctx: &Ctx<'js>,
    completions: Vec<(u64, Outcome)>,
) -> rquickjs::Result<rquickjs::Array<'js>> {
    let out = rquickjs::Array::new(ctx.clone())?;
    for (i, (id, outcome)) in completions.into_iter().enumerate() {
        let entry = rquickjs::Array::new(ctx.clone())?;
        entry.set(0, id as f64)?;
        match outcome {
            Outcome::Response {
                status,
                status_text,
                url,
                redirected,
                headers,
                body,
            } => {
                entry.set(1, 1)?;
                let raw = rquickjs::Array::new(ctx.clone())?;
                raw.set(0, status)?;
                raw.set(1, status_text)?;
                raw.set(2, url)?;
                raw.set(3, redirected)?;
                let flat: Vec<String> = headers.into_iter().flat_map(|(k, v)| [k, v]).collect();
                raw.set(4, flat)?;
                raw.set(5, rquickjs::ArrayBuffer::new(ctx.clone(), body)?)?;
                entry.set(2, raw)?;
            }
            Outcome::Failed(message) => {
                entry.set(1, 0)?;
                entry.set(2, message)?;
            }
        }
        out.set(i, entry)?;
    }
    Ok(out)
}

/// What a run produced, as `__extend_host.outcome` in `prelude.js` reports it
/// (and `run`, when the run settled at once): an array
/// `[kind, status, body, headers]`, read by index, which costs less than
/// named properties.
///
/// | `kind` | meaning | `status` | `body` | `headers` |
/// |---|---|---|---|---|
/// | 0, `RESULT` | the callback's or promise's value | 200 | the value as JSON | `null` |
/// | 1, `ERROR` | `cb(err)`, a rejection, or a result JSON cannot serialize | 400 or the error's `statusCode` | the error table's JSON | `null` |
/// | 2, `EXCEPTION` | a synchronous throw, or no result at all | 500 | the error table's JSON | `null` |
/// | 3, `RAW` | `res.end` of a `(ctx, req, res)` extension | as the code set it | as written | an object of strings |
/// | 4, `OOM` | the code ran out of memory | - | - | - |
///
/// `kind` is a number (the prelude's constants of those names): reading a
/// string would cost a conversion and an allocation every run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutcomeKind {
    Result,
    Error,
    Exception,
    Raw,
    OutOfMemory,
}

impl OutcomeKind {
    fn from_code(kind: i32) -> Option<Self> {
        Some(match kind {
            0 => OutcomeKind::Result,
            1 => OutcomeKind::Error,
            2 => OutcomeKind::Exception,
            3 => OutcomeKind::Raw,
            4 => OutcomeKind::OutOfMemory,
            _ => return None,
        })
    }
}

pub(super) fn read_outcome(out: &Object<'_>) -> rquickjs::Result<Result<Reply, Failure>> {
    let kind: i32 = out.get(0)?;
    let Some(kind) = OutcomeKind::from_code(kind) else {
        return Ok(Err(Failure::Other(format!(
            "the host's prelude reported an unknown outcome `{kind}`"
        ))));
    };
    if kind == OutcomeKind::OutOfMemory {
        return Ok(Err(Failure::OutOfMemory));
    }
    let status: i32 = out.get(1)?;
    let body: rquickjs::Coerced<String> = out.get(2)?;
    let mut reply = Reply::json(u16::try_from(status).unwrap_or(0), Source::Webtask, body.0);
    if kind == OutcomeKind::Raw {
        reply.json = false;
        if let Some(headers) = out.get::<_, Option<Object<'_>>>(3)? {
            for key in headers.keys::<String>() {
                let key = key?;
                let value: rquickjs::Coerced<String> = headers.get(key.as_str())?;
                reply.headers.push((key, value.0));
            }
        }
        // 1xx are interim responses: a final answer cannot be one.
        if !(200..=599).contains(&status) {
            return Ok(Ok(Reply::error(
                500,
                Source::Webtask,
                "Script produced an invalid response.",
                &format!(
                    "the extension set the status code {status}; a response needs a final status from 200 to 599"
                ),
            )));
        }
    }
    Ok(Ok(reply))
}
