//! The durable outbox: async invocations are recorded in a database before
//! the call returns `Ok`, and delivered at least once from there, by this
//! process or, after it died, by the next one that opens the same outbox.
//!
//! - **Backends**: an embedded SQLite file ([`OutboxConfig::sqlite`], feature
//!   `outbox-sqlite`) for one process, and PostgreSQL
//!   ([`OutboxConfig::postgres`], feature `outbox-postgres`) for several
//!   platform replicas sharing one outbox. Both record an invocation with
//!   group commit: concurrent calls share one transaction.
//! - **Delivery ids**: each invocation gets an id when it is recorded, sent
//!   as [`DELIVERY_ID_HEADER`] on every attempt and kept by replays. It is the
//!   idempotency key: an extension that must not act twice on one event
//!   remembers the ids it has seen.
//! - **Leases**: a replica takes due invocations for a while (the lease,
//!   longer than any point's timeout), so two replicas never deliver the same
//!   invocation at once; PostgreSQL takes them `FOR UPDATE SKIP LOCKED`. A
//!   lease that runs out (its replica died) makes the invocation due again.
//! - **Retries** follow a [`RetrySchedule`] (by default Svix's: at once, then
//!   5 s, 5 min, 30 min, 2 h, 5 h, 10 h later), never sooner than the
//!   extension's `Retry-After`. After the last attempt, or on a permanent
//!   error, the invocation is a [`DeadLetter`] with every attempt kept, until
//!   [`Outbox::replay`] makes it due again or [`Outbox::purge`] removes it.

mod schedule;
mod worker;

#[cfg(feature = "outbox-postgres")]
mod postgres;
#[cfg(feature = "outbox-sqlite")]
mod sqlite;

pub use schedule::RetrySchedule;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The request header that carries an invocation's delivery id, the same on
/// every attempt and replay of it: the idempotency key of async deliveries.
pub const DELIVERY_ID_HEADER: &str = "x-extend-delivery-id";

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where the outbox lives, and how it delivers. Pass it to
/// [`ExtendBuilder::outbox`](crate::ExtendBuilder::outbox).
#[derive(Clone)]
pub struct OutboxConfig {
    backend: Backend,
    pub(crate) schedule: RetrySchedule,
    pub(crate) lease: Duration,
    pub(crate) concurrency: usize,
    pub(crate) per_container: usize,
    pub(crate) batch: usize,
    pub(crate) poll: Duration,
}

#[derive(Clone)]
enum Backend {
    #[cfg(feature = "outbox-sqlite")]
    Sqlite {
        path: std::path::PathBuf,
        fsync: bool,
    },
    #[cfg(feature = "outbox-postgres")]
    Postgres { url: String },
    /// Keeps the enum inhabited when no backend feature is enabled.
    #[allow(dead_code)]
    None,
}

impl OutboxConfig {
    fn with(backend: Backend) -> Self {
        OutboxConfig {
            backend,
            schedule: RetrySchedule::default(),
            lease: Duration::from_secs(4),
            concurrency: 64,
            per_container: 16,
            batch: 256,
            poll: Duration::from_secs(1),
        }
    }

    /// An outbox in the SQLite file at `path` (created with its folder's
    /// permissions if missing), for one process at a time. A record survives
    /// the process being killed; see [`OutboxConfig::fsync`] for power loss.
    #[cfg(feature = "outbox-sqlite")]
    pub fn sqlite(path: impl Into<std::path::PathBuf>) -> Self {
        OutboxConfig::with(Backend::Sqlite {
            path: path.into(),
            fsync: false,
        })
    }

    /// With `true`, every commit of a SQLite outbox waits for the disk
    /// (`synchronous = FULL`), so that a record also survives a power cut;
    /// the default (`NORMAL`, in WAL mode) survives a killed process and
    /// costs no fsync per commit.
    #[cfg(feature = "outbox-sqlite")]
    #[must_use]
    pub fn fsync(mut self, on: bool) -> Self {
        if let Backend::Sqlite { fsync, .. } = &mut self.backend {
            *fsync = on;
        }
        self
    }

    /// An outbox in PostgreSQL at `url` (`postgres://user@host:port/db`),
    /// which several replicas may share. Its table is created on first use.
    #[cfg(feature = "outbox-postgres")]
    pub fn postgres(url: impl Into<String>) -> Self {
        OutboxConfig::with(Backend::Postgres { url: url.into() })
    }

    /// The retry schedule (see [`RetrySchedule`]).
    #[must_use]
    pub fn retry_schedule(mut self, schedule: RetrySchedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// How long a replica holds the invocations it took before others may
    /// take them again. The replica renews the leases of what it is still
    /// delivering every quarter of this, so an attempt may take longer; a
    /// replica that dies leaves leases that run out within this, after
    /// which another replica (or its restart) delivers them. Default 4 s.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Deliveries in flight at once from this replica. Default 64.
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Deliveries to one container in flight at once from this replica,
    /// within what a host admits (extend-host's `in_flight_per_container`
    /// is 32); the container's other due invocations wait their turn.
    /// Default 16.
    #[must_use]
    pub fn per_container(mut self, n: usize) -> Self {
        self.per_container = n.max(1);
        self
    }

    /// How often a replica looks for invocations other replicas recorded or
    /// leases that ran out, when nothing woke it sooner. Default 1 s.
    #[must_use]
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll = every.max(Duration::from_millis(10));
        self
    }

    pub(crate) fn open(&self) -> Result<Arc<dyn Store>, OutboxError> {
        match &self.backend {
            #[cfg(feature = "outbox-sqlite")]
            Backend::Sqlite { path, fsync } => {
                Ok(Arc::new(sqlite::SqliteOutbox::open(path, *fsync)?))
            }
            #[cfg(feature = "outbox-postgres")]
            Backend::Postgres { url } => Ok(Arc::new(postgres::PostgresOutbox::open(url)?)),
            Backend::None => Err(OutboxError::new(
                "no outbox backend: enable the `outbox-sqlite` or `outbox-postgres` feature",
            )),
        }
    }
}

impl fmt::Debug for OutboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match &self.backend {
            #[cfg(feature = "outbox-sqlite")]
            Backend::Sqlite { path, .. } => format!("sqlite:{}", path.display()),
            // The URL may hold a password.
            #[cfg(feature = "outbox-postgres")]
            Backend::Postgres { .. } => "postgres".to_owned(),
            Backend::None => "none".to_owned(),
        };
        f.debug_struct("OutboxConfig")
            .field("backend", &backend)
            .field("schedule", &self.schedule)
            .field("lease", &self.lease)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

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

/// Which dead letters [`Outbox::dead_letters`] lists and
/// [`Outbox::replay`] revives: every field set must match.
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
    pub body: Vec<u8>,
    pub created_ms: i64,
    pub attempts: u32,
    pub history: Vec<Attempt>,
    /// The trace of the call that recorded it.
    pub trace_id: String,
}

/// What a backend does. Every call is one transaction.
pub(crate) trait Store: Send + Sync + 'static {
    /// Records an invocation, due now; returns once it is committed.
    fn enqueue(
        &self,
        id: String,
        point: &str,
        container: &str,
        body: Vec<u8>,
        trace_id: String,
    ) -> Result<(), OutboxError>;
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

/// The outbox of an [`Extend`](crate::Extend) client: what is waiting, what
/// died, and replaying it. From [`Extend::outbox`](crate::Extend::outbox).
#[derive(Clone)]
pub struct Outbox {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) worker: Arc<worker::Worker>,
}

impl Outbox {
    /// Invocations not delivered yet and not dead, oldest first.
    ///
    /// # Errors
    /// [`OutboxError`] when the database can't be read.
    pub async fn pending(&self) -> Result<Vec<Pending>, OutboxError> {
        self.store.pending().await
    }

    /// How many invocations are not dead (waiting, scheduled or being
    /// delivered), counted by the database without reading them.
    ///
    /// # Errors
    /// [`OutboxError`] when the database can't be read.
    pub async fn depth(&self) -> Result<u64, OutboxError> {
        self.store.depth().await
    }

    /// Dead letters matching `filter`, oldest first.
    ///
    /// # Errors
    /// [`OutboxError`] when the database can't be read.
    pub async fn dead_letters(
        &self,
        filter: &DeadLetterFilter,
    ) -> Result<Vec<DeadLetter>, OutboxError> {
        self.store.dead(filter).await
    }

    /// Makes the matching dead letters due again now (e.g. after the tenant
    /// fixed the extension), with a fresh retry schedule and the same
    /// delivery ids; their past attempts are kept. Returns how many.
    ///
    /// # Errors
    /// [`OutboxError`] when the database can't be written.
    pub async fn replay(&self, filter: &DeadLetterFilter) -> Result<u64, OutboxError> {
        let n = self.store.revive(filter, now_ms()).await?;
        self.worker.wake();
        Ok(n)
    }

    /// Removes dead letters that died more than `older_than` ago. Returns how many.
    ///
    /// # Errors
    /// [`OutboxError`] when the database can't be written.
    pub async fn purge(&self, older_than: Duration) -> Result<u64, OutboxError> {
        self.store
            .purge(now_ms().saturating_sub(ms(older_than)))
            .await
    }
}

impl fmt::Debug for Outbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

pub(crate) use worker::Worker;
