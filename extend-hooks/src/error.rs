//! The error of an invocation: which point, which container, what went wrong.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::catalog::human_duration;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An invocation failed. It always names the point and the container, and its
/// [`kind`](Error::kind) says what to act on.
///
/// Its `Display` is one sentence meant for a log line or an operator:
///
/// ```text
/// extension point "on-new-lead" for container "acme" timed out after 2s
/// ```
pub struct Error {
    point: &'static str,
    container: Arc<str>,
    kind: ErrorKind,
    source: Option<BoxError>,
}

/// What went wrong. New kinds may be added: match with a `_` arm.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Finding the container's extension failed (e.g. the management API was unreachable).
    Discovery {
        /// What the discovery backend reported.
        message: String,
    },
    /// More than one extension is installed for the point in this container,
    /// and there is no way to choose.
    Ambiguous {
        /// The names of the candidate extensions.
        names: Vec<String>,
    },
    /// The deadline passed: the point's timeout for a sync call (discovery
    /// included), or one delivery attempt's for an async one.
    Timeout {
        /// The deadline that passed.
        after: Duration,
    },
    /// The request could not be delivered or its answer not read (connection
    /// reset, DNS, TLS).
    Transport {
        /// What the HTTP client reported.
        message: String,
    },
    /// The extension's answer is larger than the client's
    /// [`max_response_bytes`](crate::ExtendBuilder::max_response_bytes); it
    /// was not read further.
    ResponseTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The extension's code ran and reported an error: `cb(err)`, a rejected
    /// promise, or a status the code chose (`x-wt-response-source: webtask`).
    ExtensionFailed {
        /// The HTTP status (400, or the error's `statusCode`).
        status: u16,
        /// The error's `message`.
        message: String,
        /// The error's `details` (usually `"Error: message"`), when sent.
        details: Option<String>,
    },
    /// The extension's code threw an exception it did not catch, or the host
    /// stopped it at its time or memory limit (500 from the code's side).
    ExtensionCrashed {
        /// The host's description (`error`) and the exception's message.
        message: String,
    },
    /// The extension's code does not compile (`x-wt-response-source: compiler`).
    CompilationFailed {
        /// The compiler's message, e.g. `Compilation failed: expecting ';'`.
        message: String,
    },
    /// The host refused the credentials: the extension secret (401) or a token (403).
    Unauthorized {
        /// 401 or 403.
        status: u16,
        /// The host's message.
        message: String,
    },
    /// The host asked to slow down (429): too many runs in flight for the
    /// container, or the container is quarantined.
    RateLimited {
        /// The `Retry-After` the host sent, if any.
        retry_after: Option<Duration>,
        /// The host's message.
        message: String,
    },
    /// The host could not be reached, or answered 502/503/504 or a 5xx of
    /// its own (`x-wt-response-source: proxy` or `network`) before the code ran.
    HostUnavailable {
        /// The status, when the host answered at all.
        status: Option<u16>,
        /// What went wrong.
        message: String,
    },
    /// The extension answered with a status other than 2xx that fits none of
    /// the kinds above (e.g. a plain HTTP server, or 404 for a removed extension).
    Status {
        /// The HTTP status code.
        status: u16,
        /// The start of the response body, for diagnosis.
        body: String,
    },
    /// The extension answered 2xx, but not with the point's declared response type.
    InvalidResponse {
        /// serde's description of the mismatch.
        message: String,
        /// The start of the response body.
        body: String,
    },
    /// The payload could not be serialized to JSON.
    Payload {
        /// serde's message.
        message: String,
    },
    /// The async queue is full; the invocation was not queued.
    QueueFull {
        /// How many invocations may be queued or in flight at once.
        capacity: usize,
    },
    /// The client is shut down (or shutting down) and takes no new async work.
    ShutDown,
    /// The durable outbox could not record the invocation; it was not queued.
    Outbox {
        /// What the outbox reported.
        message: String,
    },
}

impl Error {
    pub(crate) fn new(point: &'static str, container: Arc<str>, kind: ErrorKind) -> Self {
        Error {
            point,
            container,
            kind,
            source: None,
        }
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The point's name.
    pub fn point(&self) -> &str {
        self.point
    }

    /// The container (tenant) the invocation was for.
    pub fn container(&self) -> &str {
        &self.container
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The HTTP status the extension or its host answered with, when the
    /// error comes from an answer.
    pub fn status(&self) -> Option<u16> {
        match &self.kind {
            ErrorKind::ExtensionFailed { status, .. }
            | ErrorKind::Unauthorized { status, .. }
            | ErrorKind::Status { status, .. } => Some(*status),
            ErrorKind::HostUnavailable { status, .. } => *status,
            ErrorKind::RateLimited { .. } => Some(429),
            ErrorKind::ExtensionCrashed { .. } | ErrorKind::CompilationFailed { .. } => Some(500),
            _ => None,
        }
    }

    /// Whether trying again later may succeed: [`ErrorKind::RateLimited`] and
    /// [`ErrorKind::HostUnavailable`] (connection failures, 502, 503, 504).
    /// The async path retries exactly these.
    pub fn is_transient(&self) -> bool {
        match &self.kind {
            // Every 429, 502-504 and connect error is classified into these two.
            ErrorKind::RateLimited { .. } | ErrorKind::HostUnavailable { .. } => true,
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (point, container) = (self.point, &self.container);
        let ext = format_args!("the extension for \"{point}\" in container \"{container}\"");
        match &self.kind {
            ErrorKind::Discovery { message } => write!(
                f,
                "could not find the extension for \"{point}\" in container \"{container}\": {message}"
            ),
            ErrorKind::Ambiguous { names } => write!(
                f,
                "container \"{container}\" has {} extensions for \"{point}\" ({}); remove or disable all but one",
                names.len(),
                names.join(", ")
            ),
            ErrorKind::Timeout { after } => write!(
                f,
                "extension point \"{point}\" for container \"{container}\" timed out after {}",
                human_duration(*after)
            ),
            ErrorKind::Transport { message } => write!(f, "{ext} could not be reached: {message}"),
            ErrorKind::ResponseTooLarge { limit } => write!(
                f,
                "{ext} answered with a body larger than the limit of {limit} bytes"
            ),
            ErrorKind::ExtensionFailed {
                status, message, ..
            } => {
                write!(f, "{ext} reported an error ({status}): {message}")
            }
            ErrorKind::ExtensionCrashed { message } => write!(f, "{ext} crashed: {message}"),
            ErrorKind::CompilationFailed { message } => {
                write!(f, "{ext} does not compile: {message}")
            }
            ErrorKind::Unauthorized { status, message } => {
                write!(f, "{ext} refused the credentials ({status}): {message}")
            }
            ErrorKind::RateLimited {
                retry_after,
                message,
            } => {
                write!(f, "{ext} is rate limited: {message}")?;
                match retry_after {
                    Some(d) => write!(f, " (retry after {})", human_duration(*d)),
                    None => Ok(()),
                }
            }
            ErrorKind::HostUnavailable { status, message } => match status {
                Some(s) => write!(f, "the host of {ext} is unavailable ({s}): {message}"),
                None => write!(f, "the host of {ext} is unavailable: {message}"),
            },
            ErrorKind::Status { status, body } => {
                let reason = reqwest::StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                write!(f, "{ext} answered {status} {reason}")?;
                if body.is_empty() {
                    Ok(())
                } else {
                    write!(f, ": {body}")
                }
            }
            ErrorKind::InvalidResponse { message, body } => write!(
                f,
                "{ext} answered with a body that is not the declared response type ({message}): {body}"
            ),
            ErrorKind::Payload { message } => write!(
                f,
                "the payload for \"{point}\" in container \"{container}\" could not be serialized: {message}"
            ),
            ErrorKind::QueueFull { capacity } => write!(
                f,
                "async invocation of \"{point}\" for container \"{container}\" was not queued: all {capacity} queue places are taken"
            ),
            ErrorKind::ShutDown => write!(
                f,
                "async invocation of \"{point}\" for container \"{container}\" was refused: the client is shutting down"
            ),
            ErrorKind::Outbox { message } => write!(
                f,
                "async invocation of \"{point}\" for container \"{container}\" was not recorded: {message}"
            ),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("point", &self.point)
            .field("container", &self.container)
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as _)
    }
}

/// The start of a body, for error messages: at most 256 characters, lossy UTF-8.
pub(crate) fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 256;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX * 4)]);
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None if body.len() > MAX * 4 => format!("{text}…"),
        None => text.to_owned(),
    }
}
