//! What an outbox records and the narrow trait its backends implement: an
//! invocation, its attempts, its dead letter, and the delivery id that is
//! its idempotency key.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The request header that carries an invocation's delivery id, the same on
/// every attempt and replay of it: the idempotency key of async deliveries.
pub const DELIVERY_ID_HEADER: &str = extend_wire::headers::DELIVERY_ID;

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An outbox operation failed: the database could not be opened, read or
/// written. Names what was being done; the database's error is its source.
#[derive(Debug, Clone)]
pub struct OutboxError {
    message: String,
    /// The database's error, kept so that callers can walk the chain.
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl OutboxError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        OutboxError {
            message: message.into(),
            source: None,
        }
    }

    /// The same, with the error that caused it as its source.
    #[cfg_attr(
        not(any(feature = "outbox-sqlite", feature = "outbox-postgres")),
        allow(dead_code)
    )]
    pub(crate) fn caused_by(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.source = Some(Arc::new(source));
        self
    }
}

/// Errors compare by what they say.
impl PartialEq for OutboxError {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl Eq for OutboxError {}

impl fmt::Display for OutboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "outbox: {}", self.message)
    }
}

impl std::error::Error for OutboxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// One delivery attempt, as the outbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Attempt {
    /// When it ended, Unix milliseconds.
    pub at_ms: i64,
    /// The HTTP status, when the extension (or its host) answered.
    pub status: Option<u16>,
    /// What went wrong.
    pub error: String,
}

/// An invocation waiting in the outbox: due now, scheduled for a retry, or
/// being delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pending {
    /// The delivery id ([`DELIVERY_ID_HEADER`]).
    pub id: String,
    /// The point's name.
    pub point: String,
    /// The container.
    pub container: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it was recorded, Unix milliseconds.
    pub created_ms: i64,
    /// When the next attempt is due, Unix milliseconds.
    pub next_ms: i64,
}

/// An invocation whose delivery failed for good, with every attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The delivery id ([`DELIVERY_ID_HEADER`]).
    pub id: String,
    /// The point's name.
    pub point: String,
    /// The container.
    pub container: String,
    /// The JSON payload that was sent.
    pub body: Vec<u8>,
    /// When it was recorded, Unix milliseconds.
    pub created_ms: i64,
    /// When it became a dead letter, Unix milliseconds.
    pub died_ms: i64,
    /// Every attempt, oldest first; the last one says why it died.
    pub attempts: Vec<Attempt>,
}

/// Which dead letters [`Outbox::dead_letters`](super::Outbox::dead_letters) lists and
/// [`Outbox::replay`](super::Outbox::replay) revives: every field set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetterFilter {
    /// Only this point's.
    pub point: Option<String>,
    /// Only this container's.
    pub container: Option<String>,
    /// Only this one.
    pub id: Option<String>,
}

impl DeadLetterFilter {
    /// Every dead letter.
    pub fn all() -> Self {
        DeadLetterFilter::default()
    }

    /// The dead letter with this delivery id.
    pub fn id(id: impl Into<String>) -> Self {
        DeadLetterFilter {
            id: Some(id.into()),
            ..DeadLetterFilter::default()
        }
    }

    /// Only `point`'s.
    #[must_use]
    pub fn point(mut self, point: impl Into<String>) -> Self {
        self.point = Some(point.into());
        self
    }

    /// Only `container`'s.
    #[must_use]
    pub fn container(mut self, container: impl Into<String>) -> Self {
        self.container = Some(container.into());
        self
    }
}

/// A recorded invocation, as the worker delivers it.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub id: String,
    pub point: String,
    pub container: String,
    /// Shared, not copied, between the in-memory queue and its attempts.
    pub body: bytes::Bytes,
    pub created_ms: i64,
    pub attempts: u32,
    pub history: Vec<Attempt>,
    /// The trace of the call that recorded it.
    pub trace_id: String,
}

/// An invocation to record: delivery id, point, container, body, trace id.
pub(crate) type NewRecord = (String, String, String, bytes::Bytes, String);

/// How a backend's writer tells the caller that its invocation is committed
/// (or is not): a thread blocked on it (a point declared as a plain `fn`),
/// or a task awaiting it (`async fn`), so that no tokio worker thread waits
/// on the database.
pub(crate) enum Committed {
    /// A thread waits on the other end.
    Blocking(std::sync::mpsc::SyncSender<Result<(), OutboxError>>),
    /// A task awaits the other end.
    Awaiting(tokio::sync::oneshot::Sender<Result<(), OutboxError>>),
}

impl Committed {
    /// Answers the caller; one that stopped waiting is not an error.
    pub(crate) fn send(self, result: Result<(), OutboxError>) {
        match self {
            Committed::Blocking(tx) => {
                let _ = tx.send(result);
            }
            Committed::Awaiting(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

/// Why a backend did not take an invocation.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The in-memory queue holds `capacity` invocations already.
    Full {
        /// Its capacity.
        capacity: usize,
    },
    /// The in-memory queue is shutting down.
    ShutDown,
    /// A durable backend's writer has stopped.
    Failed(OutboxError),
}

impl From<OutboxError> for Refused {
    fn from(e: OutboxError) -> Self {
        Refused::Failed(e)
    }
}

/// What a backend does. Every call is one transaction.
pub(crate) trait Store: Send + Sync + 'static {
    /// Hands an invocation, due now, to the backend's writer, which answers
    /// `committed` once it is committed. An error here means the invocation
    /// was not taken: the queue is full or closed, or the writer has stopped.
    fn enqueue(&self, record: NewRecord, committed: Committed) -> Result<(), Refused>;
    /// Takes up to `limit` due invocations for `owner` until `until_ms`,
    /// none of a container in `skip` (held back or at its limit).
    fn lease<'a>(
        &'a self,
        owner: &'a str,
        now_ms: i64,
        until_ms: i64,
        limit: usize,
        skip: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Record>, OutboxError>>;
    /// Delivered (or nothing to deliver): removes it.
    fn done<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), OutboxError>>;
    /// Failed for now: due again at `next_ms`, with its attempts.
    fn retry<'a>(
        &'a self,
        id: &'a str,
        next_ms: i64,
        history: &'a [Attempt],
    ) -> BoxFuture<'a, Result<(), OutboxError>>;
    /// Not attempted, or held back by the host (429, unreachable): due again
    /// at `next_ms`, its attempts and history unchanged.
    fn postpone<'a>(&'a self, id: &'a str, next_ms: i64) -> BoxFuture<'a, Result<(), OutboxError>>;
    /// Failed for good.
    fn bury<'a>(
        &'a self,
        id: &'a str,
        now_ms: i64,
        history: &'a [Attempt],
    ) -> BoxFuture<'a, Result<(), OutboxError>>;
    /// Extends `owner`'s leases of `ids` (still being delivered) to `until_ms`.
    fn renew<'a>(
        &'a self,
        owner: &'a str,
        ids: &'a [String],
        until_ms: i64,
    ) -> BoxFuture<'a, Result<(), OutboxError>>;
    /// Gives leased invocations back (at shutdown), due now.
    fn release<'a>(&'a self, owner: &'a str) -> BoxFuture<'a, Result<(), OutboxError>>;
    /// Invocations not dead, oldest first.
    fn pending(&self) -> BoxFuture<'_, Result<Vec<Pending>, OutboxError>>;
    /// Dead letters matching `filter`, oldest first.
    fn dead<'a>(
        &'a self,
        filter: &'a DeadLetterFilter,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, OutboxError>>;
    /// Makes matching dead letters due now; returns how many.
    fn revive<'a>(
        &'a self,
        filter: &'a DeadLetterFilter,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<u64, OutboxError>>;
    /// Removes dead letters that died before `before_ms`; returns how many.
    fn purge(&self, before_ms: i64) -> BoxFuture<'_, Result<u64, OutboxError>>;
    /// Invocations not dead (waiting, scheduled or being delivered).
    fn depth(&self) -> BoxFuture<'_, Result<u64, OutboxError>>;
    /// The earliest `next_ms` of an invocation not dead, if any.
    fn next_due(&self) -> BoxFuture<'_, Result<Option<i64>, OutboxError>>;
    /// Gives back the space of removed invocations, called when the outbox
    /// has just emptied. PostgreSQL's autovacuum does this by itself, hence
    /// the default does nothing.
    fn compact(&self) -> BoxFuture<'_, Result<(), OutboxError>> {
        Box::pin(async { Ok(()) })
    }
}

/// The attempts of an invocation as stored (a JSON array); an unreadable
/// history reads as none rather than failing the delivery.
pub(crate) fn history(text: &str) -> Vec<Attempt> {
    serde_json::from_str(text).unwrap_or_default()
}

pub(crate) fn history_text(h: &[Attempt]) -> String {
    serde_json::to_string(h).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A new delivery id: 128 random bits in hex.
pub(crate) fn delivery_id() -> String {
    let mut bytes = [0u8; 16];
    // The OS generator failing leaves zeros plus the clock: still unique
    // enough in practice, and not a reason to refuse the invocation.
    if getrandom::fill(&mut bytes).is_err() {
        bytes[..8].copy_from_slice(&now_ms().to_be_bytes());
        bytes[8..].copy_from_slice(&fastrand::u64(..).to_be_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
