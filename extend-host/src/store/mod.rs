//! Storage of everything a host keeps (webtasks with their version history
//! and drafts, recorded inputs, the published catalog, revoked tokens and
//! the change log), behind a narrow [`Store`] trait and capability traits
//! beside it ([`Drafts`], [`History`], [`Recordings`], [`Catalogs`],
//! [`Feed`]): SQLite for one host
//! ([`SqliteStore`]), PostgreSQL for several hosts on one database
//! ([`PostgresStore`]), or a backend of your own through
//! [`HostBuilder::store`](crate::HostBuilder::store).

mod change_log;
mod postgres;
mod sql;
mod sqlite;
mod traits;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future, as the [`Store`] methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A named webtask as stored. Secrets are sealed by the host before they reach
/// the store, so a store never sees them in the clear.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct StoredWebtask {
    /// The container (isolation scope) it belongs to.
    pub container: String,
    /// Its name, unique in the container.
    pub name: String,
    /// The JavaScript source.
    pub code: String,
    /// The secrets, sealed (nonce followed by ciphertext).
    pub sealed_secrets: Vec<u8>,
    /// The metadata.
    pub meta: BTreeMap<String, String>,
    /// The webtask token handed to clients.
    pub token: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Last replacement, Unix seconds.
    pub updated_at: i64,
    /// Who wrote it and the names of its secrets, recorded in its version
    /// history by [`Store::put`]. Empty when read back.
    pub deployment: Deployment,
    /// The change-log position ([`WebtaskChange::id`]) of the write that
    /// returned it, set by [`Store::put`]; 0 when read back or when the
    /// store keeps no log. Hosts sharing a store order their caches by it.
    pub change_id: u64,
}

/// Who wrote a version of a webtask, and which secrets it had.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Deployment {
    /// The writer's token id (`jti`).
    pub by: String,
    /// The names of the webtask's secrets (their values are not versioned).
    pub secret_names: Vec<String>,
}

impl Deployment {
    /// A deployment by `by` of a webtask with these secret names.
    pub fn new(by: String, secret_names: Vec<String>) -> Self {
        Deployment { by, secret_names }
    }
}

/// One version of a webtask, as its history keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebtaskVersion {
    /// 1 for the first write, then one more each time.
    pub version: u64,
    /// Its code.
    pub code: String,
    /// Its metadata.
    pub meta: BTreeMap<String, String>,
    /// Who wrote it and which secrets it had.
    pub deployment: Deployment,
    /// When, Unix seconds.
    pub deployed_at: i64,
}

/// A webtask's draft: not what runs at its URL until deployed.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Draft {
    /// The container.
    pub container: String,
    /// The webtask's name.
    pub name: String,
    /// The draft's code.
    pub code: String,
    /// The draft's metadata.
    pub meta: BTreeMap<String, String>,
    /// The draft's secrets, sealed; `None` to use the live webtask's.
    pub sealed_secrets: Option<Vec<u8>>,
    /// The saver's token id.
    pub saved_by: String,
    /// When, Unix seconds (set by [`Store::put_draft`]).
    pub saved_at: i64,
}

/// A run input recorded for replaying drafts ([`Store::record_input`]).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordedInput {
    /// When, Unix seconds.
    pub recorded_at: i64,
    /// The input, sealed by the host.
    pub sealed: Vec<u8>,
}

impl RecordedInput {
    /// A recorded input.
    pub fn new(recorded_at: i64, sealed: Vec<u8>) -> Self {
        RecordedInput {
            recorded_at,
            sealed,
        }
    }
}

impl fmt::Debug for RecordedInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordedInput")
            .field("recorded_at", &self.recorded_at)
            .field("sealed_bytes", &self.sealed.len())
            .finish()
    }
}

impl Draft {
    /// A draft; `saved_at` is set when it is stored.
    pub fn new(
        container: String,
        name: String,
        code: String,
        meta: BTreeMap<String, String>,
        sealed_secrets: Option<Vec<u8>>,
        saved_by: String,
    ) -> Self {
        Draft {
            container,
            name,
            code,
            meta,
            sealed_secrets,
            saved_by,
            saved_at: 0,
        }
    }
}

impl fmt::Debug for Draft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Draft")
            .field("container", &self.container)
            .field("name", &self.name)
            .field("code_len", &self.code.len())
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// Versions kept per webtask.
pub const VERSIONS_KEPT: u64 = 10;

impl StoredWebtask {
    /// A webtask record; `created_at` and `updated_at` are set by [`Store::put`].
    pub fn new(
        container: String,
        name: String,
        code: String,
        sealed_secrets: Vec<u8>,
        meta: BTreeMap<String, String>,
        token: String,
    ) -> Self {
        StoredWebtask {
            container,
            name,
            code,
            sealed_secrets,
            meta,
            token,
            created_at: 0,
            updated_at: 0,
            deployment: Deployment::default(),
            change_id: 0,
        }
    }

    /// The same, recording who writes it and its secrets' names.
    pub fn deployed_by(mut self, deployment: Deployment) -> Self {
        self.deployment = deployment;
        self
    }
}

impl fmt::Debug for StoredWebtask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredWebtask")
            .field("container", &self.container)
            .field("name", &self.name)
            .field("code_len", &self.code.len())
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// A storage failure.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The database reported an error.
    Database(String),
    /// A stored row could not be read back (corruption or a foreign writer).
    Corrupt(String),
    /// This store does not keep what was asked for.
    Unsupported(&'static str),
    /// The write would take its container over its [`Quota`]; nothing was
    /// written. The message names the container and the limit.
    OverQuota(String),
    /// The write conflicts with another: the name it would take exists, or
    /// the webtask it would change is gone. Nothing was written.
    Conflict(String),
    /// The store is too busy to take the operation now (e.g. no database
    /// connection came free in time); nothing was done, and the same
    /// operation may succeed later.
    Busy(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Database(m) => write!(f, "database error: {m}"),
            StoreError::Corrupt(m) => write!(f, "stored data is unreadable: {m}"),
            StoreError::Unsupported(what) => write!(f, "this store keeps no {what}"),
            StoreError::OverQuota(m) => f.write_str(m),
            StoreError::Busy(m) => write!(f, "the store is busy: {m}"),
            StoreError::Conflict(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for StoreError {}

/// A committed change to the store, announced so that every host's caches
/// follow (its run cache and its set of revoked tokens) and so that
/// `GET /api/changes` can tell platforms.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// A webtask was created, replaced or deleted.
    Webtask(WebtaskChange),
    /// A token was revoked.
    Revoked {
        /// The token's id.
        jti: String,
    },
    /// Changes may have been missed (e.g. the feed reconnected): forget
    /// everything cached.
    Missed,
}

/// One webtask write, as the change log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebtaskChange {
    /// Its position in the change log: increasing in commit order, so a
    /// reader that has seen `id` has seen every change before it. 0 when
    /// the store keeps no log.
    pub id: u64,
    /// The webtask's container.
    pub container: String,
    /// The webtask's name.
    pub name: String,
    /// Whether the write deleted it.
    pub deleted: bool,
}

impl WebtaskChange {
    /// A change of `container`/`name` at log position `id`.
    pub fn new(id: u64, container: String, name: String, deleted: bool) -> Self {
        WebtaskChange {
            id,
            container,
            name,
            deleted,
        }
    }
}

/// The webtask changes after a position of the change log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChangeLog {
    /// The changes, in log order.
    pub changes: Vec<WebtaskChange>,
    /// `false` when changes after the asked position were already pruned
    /// from the log: the reader has missed some and must start over.
    pub complete: bool,
    /// The id of the newest change in the whole log when it was read (0
    /// when empty): a reader that starts over has what came up to here,
    /// and skips it when a lagging live feed brings it again.
    pub latest: u64,
}

/// A log record written by a run on another host sharing the store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteLog {
    /// The container whose run wrote it.
    pub container: String,
    /// The record, JSON text, as `GET /api/logs` sends it.
    pub record: String,
}

/// A published catalog of extension points.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredCatalog {
    /// 1 for the first published, then one more each time.
    pub version: u64,
    /// The catalog, JSON text.
    pub document: String,
    /// When it was published, Unix seconds.
    pub published_at: i64,
}

impl StoredCatalog {
    /// A catalog record.
    pub fn new(version: u64, document: String, published_at: i64) -> Self {
        StoredCatalog {
            version,
            document,
            published_at,
        }
    }
}

/// What one container holds, for quotas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Usage {
    /// Webtasks in the container.
    pub webtasks: u64,
    /// Bytes of code across them.
    pub code_bytes: u64,
}

impl Usage {
    /// A usage of `webtasks` webtasks with `code_bytes` bytes of code.
    pub fn new(webtasks: u64, code_bytes: u64) -> Self {
        Usage {
            webtasks,
            code_bytes,
        }
    }
}

/// What one container may hold, checked by [`Store::put_within`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quota {
    /// Webtasks in the container, at most.
    pub webtasks: u64,
    /// Bytes of code across them, at most.
    pub code_bytes: u64,
    /// Bytes of code across the container's version histories: past it the
    /// oldest versions that are not a webtask's live one are dropped by the
    /// write (nothing is refused). `u64::MAX`, the default, keeps the last
    /// [`VERSIONS_KEPT`] of each webtask whatever their size.
    pub history_bytes: u64,
}

impl Quota {
    /// A quota of `webtasks` webtasks and `code_bytes` bytes of code.
    pub fn new(webtasks: u64, code_bytes: u64) -> Self {
        Quota {
            webtasks,
            code_bytes,
            history_bytes: u64::MAX,
        }
    }

    /// The same, keeping at most `bytes` of code in the container's version
    /// histories (see [`Quota::history_bytes`]).
    pub fn with_history(mut self, bytes: u64) -> Self {
        self.history_bytes = bytes;
        self
    }

    /// Whether a container holding `usage` may take `new` (replacing a
    /// webtask with `old_code` bytes of code, if the name exists).
    pub fn admits(
        &self,
        new: &StoredWebtask,
        usage: Usage,
        old_code: Option<u64>,
    ) -> Result<(), StoreError> {
        let (count, code) = match old_code {
            Some(old) => (usage.webtasks, usage.code_bytes.saturating_sub(old)),
            None => (usage.webtasks + 1, usage.code_bytes),
        };
        if count > self.webtasks {
            return Err(StoreError::OverQuota(format!(
                "container `{}` already has {} webtasks, its limit",
                new.container, usage.webtasks
            )));
        }
        let code = code + new.code.len() as u64;
        if code > self.code_bytes {
            return Err(StoreError::OverQuota(format!(
                "container `{}` would hold {code} bytes of code; its limit is {} bytes",
                new.container, self.code_bytes
            )));
        }
        Ok(())
    }
}

pub use traits::{Catalogs, Drafts, Feed, History, Recordings, Settings, Store};
