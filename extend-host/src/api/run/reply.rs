//! A run's reply as an HTTP response: the headers an extension may set, and
//! their bytes counted against the response limit.

use crate::error::Source;
use crate::sandbox::Reply;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;

/// Whether an extension may set response header `name` (lowercase).
///
/// Run responses come from the host's origin, which the management API and
/// the editor share, so the rule is an allow-list: what describes the
/// content, its caching and CORS for browsers that call the run URL, and
/// the platform's own `x-` headers. Everything else is dropped: framing
/// (the server's), cookies, `Location` (a redirect from the host's origin
/// to anywhere: an open redirect, so 3xx answers go without it),
/// `Refresh`, `Clear-Site-Data`, `WWW-Authenticate`, `Link`, security
/// policies and `Access-Control-Allow-Credentials`.
pub(super) fn allowed(name: &str) -> bool {
    match name {
        "content-type"
        | "content-language"
        | "content-disposition"
        | "cache-control"
        | "etag"
        | "last-modified"
        | "expires"
        | "vary"
        | "retry-after"
        | "access-control-allow-origin"
        | "access-control-allow-methods"
        | "access-control-allow-headers"
        | "access-control-expose-headers"
        | "access-control-max-age" => true,
        _ => {
            name.starts_with("x-")
                && !name.starts_with("x-wt-")
                && !matches!(
                    name,
                    "x-frame-options"
                        | "x-content-type-options"
                        | "x-xss-protection"
                        | "x-dns-prefetch-control"
                        | "x-permitted-cross-domain-policies"
                )
        }
    }
}

/// The bytes of the headers a reply may set, counted with its body against
/// [`Limits::response_size`](crate::Limits::response_size).
pub(super) fn header_bytes(reply: &Reply) -> usize {
    reply
        .headers
        .iter()
        .filter(|(k, _)| allowed(k))
        .map(|(k, v)| k.len() + v.len())
        .sum()
}

pub(super) fn respond(reply: Reply, retry_after: Option<u64>) -> Response {
    let mut res = Response::new(Body::from(reply.body));
    *res.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = res.headers_mut();
    // Room for the host's own headers in one allocation.
    h.reserve(6 + reply.headers.len());
    for (k, v) in &reply.headers {
        if !allowed(k) {
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
    h.insert(Source::HEADER, reply.source.header());
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

/// On a draft's run: the outbound requests it made, as a JSON array of
/// `{method, url, status | error, ms}` (non-ASCII escaped), for the
/// editor's runner.
pub(crate) const SUBREQUESTS: HeaderName = HeaderName::from_static("x-extend-subrequests");

/// The most of [`SUBREQUESTS`]: past it, later requests are counted, not listed.
const SUBREQUESTS_BYTES: usize = 8 << 10;

pub(super) fn subrequests_header(subrequests: &[crate::sandbox::io::Subrequest]) -> HeaderValue {
    let mut listed = Vec::new();
    let mut size = 2;
    for (i, s) in subrequests.iter().enumerate() {
        let mut v = serde_json::json!({ "method": s.method, "url": s.url, "ms": s.ms });
        match (s.status, &s.error) {
            (Some(status), _) => v["status"] = status.into(),
            (None, Some(e)) => v["error"] = e.clone().into(),
            (None, None) => {}
        }
        let text = v.to_string();
        if size + text.len() + 1 > SUBREQUESTS_BYTES {
            listed.push(serde_json::json!({ "more": subrequests.len() - i }));
            break;
        }
        size += text.len() + 1;
        listed.push(v);
    }
    let json = serde_json::Value::Array(listed).to_string();
    // Header values are ASCII: anything else is written as a JSON escape
    // (it can only be inside a string).
    let mut ascii = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() && !c.is_ascii_control() {
            ascii.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                ascii.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    HeaderValue::try_from(ascii).unwrap_or_else(|_| HeaderValue::from_static("[]"))
}
