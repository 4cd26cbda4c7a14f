//! [`OutboxConfig`]: where the outbox lives and how it delivers.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::memory::MemoryOutbox;
#[cfg(feature = "outbox-postgres")]
use super::postgres;
use super::record::{OutboxError, Store};
use super::schedule::RetrySchedule;
#[cfg(feature = "outbox-sqlite")]
use super::sqlite;

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
    /// The client's queue when it has no outbox: not durable (see
    /// [`MemoryOutbox`]); configured by the builder's `async_*` settings.
    Memory { capacity: usize },
}

/// An opened backend: the store the engine delivers from, and the same as
/// a [`MemoryOutbox`] when it is the in-memory one, whose end is the
/// process's.
pub(crate) struct Opened {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) memory: Option<Arc<MemoryOutbox>>,
}

impl Opened {
    fn durable(store: Arc<dyn Store>) -> Self {
        Opened {
            store,
            memory: None,
        }
    }
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

    /// The in-memory queue of a client without an outbox: at most
    /// `capacity` invocations, `concurrency` deliveries at once (to any
    /// container), retried on `schedule`.
    pub(crate) fn in_memory(capacity: usize, concurrency: usize, schedule: RetrySchedule) -> Self {
        let mut config = OutboxConfig::with(Backend::Memory { capacity });
        config.schedule = schedule;
        config.concurrency = concurrency;
        config.per_container = concurrency;
        config
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

    pub(crate) fn open(&self) -> Result<Opened, OutboxError> {
        match &self.backend {
            #[cfg(feature = "outbox-sqlite")]
            Backend::Sqlite { path, fsync } => Ok(Opened::durable(Arc::new(
                sqlite::SqliteOutbox::open(path, *fsync)?,
            ))),
            #[cfg(feature = "outbox-postgres")]
            Backend::Postgres { url } => Ok(Opened::durable(Arc::new(
                postgres::PostgresOutbox::open(url)?,
            ))),
            Backend::Memory { capacity } => {
                let memory = Arc::new(MemoryOutbox::new(*capacity));
                Ok(Opened {
                    store: Arc::clone(&memory) as Arc<dyn Store>,
                    memory: Some(memory),
                })
            }
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
            Backend::Memory { capacity } => format!("memory (capacity {capacity})"),
        };
        f.debug_struct("OutboxConfig")
            .field("backend", &backend)
            .field("schedule", &self.schedule)
            .field("lease", &self.lease)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}
