//! The HTTP side of an invocation, shared by the sync and async paths. All of
//! it is non-generic: generated code serializes, calls in here, and decodes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER};

use crate::client::Inner;
use crate::discovery::{DiscoveryError, Extension};
use crate::error::{Error, ErrorKind, excerpt};
use crate::{Container, PointDescriptor};

/// An extension's 2xx answer.
pub(crate) struct Answer {
    pub status: u16,
    pub body: Bytes,
}

/// A failed exchange, with the server's `Retry-After` when it sent one.
pub(crate) struct Failed {
    pub error: Error,
    pub retry_after: Option<Duration>,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Self {
        Failed {
            error,
            retry_after: None,
        }
    }
}

/// A sync invocation, under one deadline that covers discovery and the
/// exchange. `Ok(None)`: the container has no extension for the point.
pub(crate) async fn sync(
    point: &'static PointDescriptor,
    container: &Container,
    body: Result<Vec<u8>, serde_json::Error>,
) -> Result<Option<Bytes>, Error> {
    let body = payload_bytes(point, container, body)?;
    let inner = &*container.extend.inner;
    let work = async {
        let Some(extension) = discover(inner, point.name(), &container.name).await? else {
            return Ok(None);
        };
        exchange(inner, point.name(), &container.name, &extension, body)
            .await
            .map(|answer| Some(answer.body))
            .map_err(|failed| failed.error)
    };
    match tokio::time::timeout(point.timeout(), work).await {
        Ok(result) => result,
        Err(_elapsed) => Err(Error::new(
            point.name(),
            container.name.clone(),
            ErrorKind::Timeout {
                after: point.timeout(),
            },
        )),
    }
}

/// Queues an async invocation (see [`crate::deliver`]).
pub(crate) fn enqueue(
    point: &'static PointDescriptor,
    container: &Container,
    body: Result<Vec<u8>, serde_json::Error>,
) -> Result<(), Error> {
    let body = payload_bytes(point, container, body)?;
    container.extend.inner.queue.enqueue(point, container, body)
}

fn payload_bytes(
    point: &'static PointDescriptor,
    container: &Container,
    body: Result<Vec<u8>, serde_json::Error>,
) -> Result<Bytes, Error> {
    body.map(Bytes::from).map_err(|e| {
        Error::new(
            point.name(),
            container.name.clone(),
            ErrorKind::Payload {
                message: e.to_string(),
            },
        )
        .with_source(e)
    })
}

/// The error for a 2xx body that is not the declared response type.
pub(crate) fn invalid_response(
    point: &'static PointDescriptor,
    container: &Container,
    body: &[u8],
    e: serde_json::Error,
) -> Error {
    Error::new(
        point.name(),
        container.name.clone(),
        ErrorKind::InvalidResponse {
            message: e.to_string(),
            body: excerpt(body),
        },
    )
    .with_source(e)
}

pub(crate) async fn discover(
    inner: &Inner,
    point: &'static str,
    container: &Arc<str>,
) -> Result<Option<Extension>, Error> {
    inner
        .discovery
        .discover(container, point)
        .await
        .map_err(|e| {
            let kind = match &e {
                DiscoveryError::Ambiguous { names } => ErrorKind::Ambiguous {
                    names: names.clone(),
                },
                DiscoveryError::Failed(source) => ErrorKind::Discovery {
                    message: error_chain(&**source),
                },
            };
            Error::new(point, container.clone(), kind).with_source(e)
        })
}

/// One POST to an extension and its answer, read up to the size limit.
pub(crate) async fn exchange(
    inner: &Inner,
    point: &'static str,
    container: &Arc<str>,
    extension: &Extension,
    body: Bytes,
) -> Result<Answer, Failed> {
    let error = |kind| Error::new(point, container.clone(), kind);
    let transport = |e: reqwest::Error| {
        let message = error_chain(&e);
        let kind = if e.is_connect() {
            ErrorKind::HostUnavailable {
                status: None,
                message,
            }
        } else {
            ErrorKind::Transport { message }
        };
        error(kind).with_source(e)
    };
    let mut request = inner
        .http
        .post(extension.url().clone())
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json")
        .body(body);
    if let Some(secret) = extension.secret() {
        request = request.bearer_auth(secret);
    }
    let mut response = request.send().await.map_err(transport)?;
    let status = response.status();
    let source = response
        .headers()
        .get("x-wt-response-source")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);

    let limit = inner.max_response_bytes;
    let too_large = || {
        error(ErrorKind::Transport {
            message: format!("the response is larger than the limit of {limit} bytes"),
        })
    };
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large().into());
    }
    let mut buf = Vec::with_capacity(response.content_length().unwrap_or(0) as usize);
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if buf.len() + chunk.len() > limit {
            return Err(too_large().into());
        }
        buf.extend_from_slice(&chunk);
    }
    if status.is_success() {
        Ok(Answer {
            status: status.as_u16(),
            body: Bytes::from(buf),
        })
    } else {
        if status == reqwest::StatusCode::NOT_FOUND
            && source.as_deref() == Some("proxy")
            && let Some(webtask) = &inner.webtask
        {
            // The host no longer has the extension the cache pointed at (removed
            // by another client): the next invocation asks again.
            webtask.invalidate(container, point).await;
        }
        Err(Failed {
            error: error(classify(
                status.as_u16(),
                source.as_deref(),
                &buf,
                retry_after,
            )),
            retry_after,
        })
    }
}

/// Sorts a non-2xx answer into the kinds a platform acts on, by status,
/// `x-wt-response-source` and the `{code, error, details, message}` body of
/// the Extend error table.
pub(crate) fn classify(
    status: u16,
    source: Option<&str>,
    body: &[u8],
    retry_after: Option<Duration>,
) -> ErrorKind {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|v| v.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let message = || {
        field("message")
            .or_else(|| field("error"))
            .unwrap_or_else(|| excerpt(body))
    };
    let ran = source == Some("webtask");
    match (status, source) {
        (429, _) => ErrorKind::RateLimited {
            retry_after,
            message: message(),
        },
        (401 | 403, _) if !ran => ErrorKind::Unauthorized {
            status,
            message: message(),
        },
        (502..=504, _) | (500..=599, Some("proxy" | "network")) => ErrorKind::HostUnavailable {
            status: Some(status),
            message: message(),
        },
        (_, Some("compiler")) => ErrorKind::CompilationFailed { message: message() },
        (500, Some("webtask")) => ErrorKind::ExtensionCrashed {
            message: match (field("error"), field("message")) {
                (Some(e), Some(m)) => format!("{e} {m}"),
                (e, m) => e.or(m).unwrap_or_else(|| excerpt(body)),
            },
        },
        (_, Some("webtask")) => ErrorKind::ExtensionFailed {
            status,
            message: message(),
            details: field("details"),
        },
        _ => ErrorKind::Status {
            status,
            body: excerpt(body),
        },
    }
}

/// `e` and its sources, joined: reqwest's own message alone ("error sending
/// request") hides the cause (connection refused, reset, ...).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    message
}
