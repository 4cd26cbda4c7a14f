//! The [`Invoker`]: the HTTP side of an invocation, shared by the sync path and
//! the async queue. All of it is non-generic: generated code serializes, calls
//! in here, and decodes.
//!
//! Dependencies run one way: `client` and `deliver` hold an `Arc<Invoker>`;
//! the invoker knows discovery and HTTP, and nothing above it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use tracing::Instrument as _;

use crate::classify::{ResponseSource, classify, retry_after};
use crate::discovery::{Discovery, DiscoveryError, Endpoint};
use crate::error::{Error, ErrorKind, excerpt};
use crate::observe::{self, TraceParentFn};
use crate::point::PointDescriptor;

/// The request header that tells the host how many milliseconds the caller
/// will still wait (plus 50 ms, so that the caller's own timeout fires
/// first); extend-host caps the run's time limit at it.
const DEADLINE_HEADER: &str = extend_wire::headers::DEADLINE;

/// How much later than the caller the host is told to give up: the host's
/// "time limit" answer must never arrive before the caller's own timeout
/// fires, or a point that timed out would be reported as a crashed extension.
const DEADLINE_SLACK: Duration = Duration::from_millis(50);

/// Whole milliseconds until `deadline` plus [`DEADLINE_SLACK`]: a run the
/// caller has given up on should stop soon after, not get the host's full limit.
fn remaining_ms(deadline: tokio::time::Instant) -> u64 {
    let left = deadline.saturating_duration_since(tokio::time::Instant::now()) + DEADLINE_SLACK;
    u64::try_from(left.as_millis()).unwrap_or(u64::MAX)
}

/// What every invocation needs: the HTTP client, discovery and the limits.
pub(crate) struct Invoker {
    pub(crate) http: reqwest::Client,
    pub(crate) discovery: Arc<dyn Discovery>,
    pub(crate) max_response_bytes: usize,
    /// The caller's trace context, when the application provides it.
    pub(crate) trace_parent: Option<TraceParentFn>,
}

/// Headers of one exchange besides the fixed ones.
pub(crate) struct ExchangeHeaders<'a> {
    delivery_id: Option<&'a str>,
    traceparent: String,
}

/// An extension's 2xx answer.
pub(crate) struct Delivered {
    pub status: u16,
    pub body: Bytes,
}

/// A failed exchange, with the server's `Retry-After` when it sent one.
pub(crate) struct Failed {
    pub error: Error,
    pub retry_after: Option<Duration>,
}

/// How one attempt at an async delivery ended: the verdict both delivery
/// engines (the in-memory queue and the durable outbox) act on.
pub(crate) enum Attempted {
    /// The extension answered 2xx.
    Delivered {
        /// The HTTP status.
        status: u16,
    },
    /// The container has no (enabled) extension for the point.
    NoExtension,
    /// Discovery or the exchange failed, or the point's timeout ran out.
    Failed(Failed),
}

impl From<Error> for Failed {
    fn from(error: Error) -> Self {
        Failed {
            error,
            retry_after: None,
        }
    }
}

impl Invoker {
    /// A sync invocation, under one deadline that covers discovery and the
    /// exchange. `Ok(None)`: the container has no extension for the point.
    pub(crate) async fn sync(
        &self,
        point: &'static PointDescriptor,
        container: &Arc<str>,
        body: Bytes,
    ) -> Result<Option<Bytes>, Error> {
        let started = std::time::Instant::now();
        let trace_id = self.trace_id();
        let span = observe::span(point.name(), container, "sync", &trace_id);
        let deadline = tokio::time::Instant::now() + point.timeout();
        let work = async {
            self.attempt(point.name(), container, body, deadline, None, &trace_id)
                .await
                .map_err(|failed| failed.error)
        };
        let result = tokio::time::timeout(point.timeout(), work)
            .instrument(span.clone())
            .await
            .unwrap_or_else(|_elapsed| Err(timeout_error(point, container)));
        let status = match &result {
            Ok(found) => found.as_ref().map(|d| d.status),
            Err(e) => e.status(),
        };
        observe::finish(
            &span,
            point.name(),
            "sync",
            started,
            observe::outcome_name(result.as_ref().map(Option::is_some)),
            status,
            1,
        );
        result.map(|found| found.map(|d| d.body))
    }

    /// The trace of a new invocation: the caller's, or a new one.
    pub(crate) fn trace_id(&self) -> String {
        observe::trace_id(self.trace_parent.as_ref())
    }

    /// Discovery then one exchange: `Ok(None)` when there is no extension.
    /// `deadline` is when the caller gives up; the host is told, so that it
    /// stops the run then instead of at its own, longer limit. An async
    /// invocation sends its `delivery_id`, the same on every attempt; every
    /// exchange sends a `traceparent` in the invocation's trace.
    pub(crate) async fn attempt(
        &self,
        point: &'static str,
        container: &Arc<str>,
        body: Bytes,
        deadline: tokio::time::Instant,
        delivery_id: Option<&str>,
        trace_id: &str,
    ) -> Result<Option<Delivered>, Failed> {
        let Some(extension) = self
            .discover(point, container)
            .instrument(tracing::debug_span!("discovery"))
            .await?
        else {
            return Ok(None);
        };
        let headers = ExchangeHeaders {
            delivery_id,
            traceparent: observe::traceparent(trace_id),
        };
        self.exchange(point, container, &extension, body, deadline, &headers)
            .instrument(tracing::debug_span!("exchange", url = %extension.url()))
            .await
            .map(Some)
    }

    /// One attempt at an async delivery, bounded by the point's timeout.
    pub(crate) async fn attempt_async(
        &self,
        point: &'static PointDescriptor,
        container: &Arc<str>,
        body: Bytes,
        delivery_id: &str,
        trace_id: &str,
    ) -> Attempted {
        let deadline = tokio::time::Instant::now() + point.timeout();
        let attempt = self.attempt(
            point.name(),
            container,
            body,
            deadline,
            Some(delivery_id),
            trace_id,
        );
        match tokio::time::timeout_at(deadline, attempt).await {
            Ok(Ok(Some(delivered))) => Attempted::Delivered {
                status: delivered.status,
            },
            Ok(Ok(None)) => Attempted::NoExtension,
            Ok(Err(failed)) => Attempted::Failed(failed),
            Err(_elapsed) => Attempted::Failed(Failed::from(timeout_error(point, container))),
        }
    }

    async fn discover(
        &self,
        point: &'static str,
        container: &Arc<str>,
    ) -> Result<Option<Endpoint>, Error> {
        self.discovery
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
    async fn exchange(
        &self,
        point: &'static str,
        container: &Arc<str>,
        extension: &Endpoint,
        body: Bytes,
        deadline: tokio::time::Instant,
        extra: &ExchangeHeaders<'_>,
    ) -> Result<Delivered, Failed> {
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
        let mut request = self
            .http
            .post(extension.url().clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .header(DEADLINE_HEADER, remaining_ms(deadline))
            .body(body);
        if let Some(secret) = extension.secret() {
            request = request.bearer_auth(secret);
        }
        if let Some(id) = extra.delivery_id {
            request = request.header(crate::outbox::DELIVERY_ID_HEADER, id);
        }
        request = request.header(extend_wire::trace::TRACEPARENT, &extra.traceparent);
        let mut response = request.send().await.map_err(transport)?;
        let status = response.status();
        let source = ResponseSource::from_headers(response.headers());
        let retry_after = retry_after(response.headers());

        let limit = self.max_response_bytes;
        let too_large = || error(ErrorKind::ResponseTooLarge { limit });
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
            return Ok(Delivered {
                status: status.as_u16(),
                body: Bytes::from(buf),
            });
        }
        if (status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::UNAUTHORIZED)
            && source == Some(ResponseSource::Proxy)
        {
            // The host no longer has the extension discovery pointed at, or
            // no longer with that secret (removed or reinstalled by another
            // client): the next invocation asks again.
            self.discovery.invalidate(container, point).await;
        }
        Err(Failed {
            error: error(classify(
                status.as_u16(),
                source.as_ref(),
                &buf,
                retry_after,
            )),
            retry_after,
        })
    }
}

/// The one place a deadline error is made, for the sync call and for each
/// async attempt alike.
pub(crate) fn timeout_error(point: &'static PointDescriptor, container: &Arc<str>) -> Error {
    Error::new(
        point.name(),
        container.clone(),
        ErrorKind::Timeout {
            after: point.timeout(),
        },
    )
}

/// The serialized payload, or the error naming the point and container.
pub(crate) fn payload_bytes(
    point: &'static PointDescriptor,
    container: &Arc<str>,
    body: Result<Vec<u8>, serde_json::Error>,
) -> Result<Bytes, Error> {
    body.map(Bytes::from).map_err(|e| {
        Error::new(
            point.name(),
            container.clone(),
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
    container: &Arc<str>,
    body: &[u8],
    e: serde_json::Error,
) -> Error {
    Error::new(
        point.name(),
        container.clone(),
        ErrorKind::InvalidResponse {
            message: e.to_string(),
            body: excerpt(body),
        },
    )
    .with_source(e)
}

/// `e` and its sources, joined: reqwest's own message alone ("error sending
/// request") hides the cause (connection refused, reset, ...).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
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
