//! Storage of webtasks and revocations, behind a trait so that another
//! backend (PostgreSQL, for several hosts on one database) plugs in with
//! [`HostBuilder::store`](crate::HostBuilder::store) and nothing else.

mod sqlite;

pub use sqlite::SqliteStore;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use tokio::sync::broadcast;

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
}

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
        }
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
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Database(m) => write!(f, "database error: {m}"),
            StoreError::Corrupt(m) => write!(f, "stored data is unreadable: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// A change made to the store by another host sharing it, announced so that
/// this host's caches follow: its run cache and its set of revoked tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// A webtask was created, replaced or deleted.
    Webtask {
        /// Its container.
        container: String,
        /// Its name.
        name: String,
    },
    /// A token was revoked.
    Revoked {
        /// The token's id.
        jti: String,
    },
    /// Changes may have been missed (e.g. the feed reconnected): forget
    /// everything cached.
    Missed,
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

/// What a host stores. Every write is durable when its future resolves.
pub trait Store: Send + Sync + 'static {
    /// One webtask.
    fn get<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredWebtask>, StoreError>>;
    /// Creates or replaces a webtask; returns it with its timestamps.
    fn put(&self, webtask: StoredWebtask) -> BoxFuture<'_, Result<StoredWebtask, StoreError>>;
    /// Deletes a webtask; `false` when there was none.
    fn delete<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// The webtasks of a container whose meta has every `(key, value)` of `meta`,
    /// in name order, from `offset`, at most `limit`.
    fn list<'a>(
        &'a self,
        container: &'a str,
        meta: &'a [(String, String)],
        offset: u64,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<StoredWebtask>, StoreError>>;
    /// How many webtasks `container` has and the bytes of their code, for quotas.
    fn usage<'a>(&'a self, container: &'a str) -> BoxFuture<'a, Result<Usage, StoreError>>;
    /// Records a revoked token id.
    fn revoke<'a>(&'a self, jti: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Every revoked token id.
    fn revoked(&self) -> BoxFuture<'_, Result<Vec<String>, StoreError>>;
    /// The change feed: changes that *other* hosts sharing this store make,
    /// as they are committed. A host follows it for as long as it runs
    /// (a lagging receiver is treated as [`Change::Missed`]). `None`, the
    /// default, is right for a store only one process writes (SQLite): the
    /// host updates its caches on its own writes.
    fn changes(&self) -> Option<broadcast::Receiver<Change>> {
        None
    }
}
