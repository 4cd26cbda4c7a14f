//! Storage of webtasks and revocations, behind a trait: SQLite for one host
//! ([`SqliteStore`]), PostgreSQL for several hosts on one database
//! ([`PostgresStore`]), or a backend of your own through
//! [`HostBuilder::store`](crate::HostBuilder::store).

mod change_log;
mod postgres;
mod sqlite;

pub use postgres::PostgresStore;
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

impl fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dyn Store")
    }
}

/// What a host stores. Every write is durable when its future resolves.
pub trait Store: Drafts + History + Recordings + Catalogs + Feed + Send + Sync + 'static {
    /// One webtask.
    fn get<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredWebtask>, StoreError>>;
    /// Creates or replaces a webtask, and adds it to its version history
    /// (keeping the last [`VERSIONS_KEPT`]); returns it with its timestamps.
    fn put(&self, webtask: StoredWebtask) -> BoxFuture<'_, Result<StoredWebtask, StoreError>>;
    /// [`Store::put`] if the container stays within `quota` counting the
    /// webtask, else [`StoreError::OverQuota`] and nothing written; then
    /// drops the container's oldest versions past [`Quota::history_bytes`]
    /// (both stores here; this default does not).
    ///
    /// This default reads the usage, then writes: two writers can both
    /// pass. The host serialises its own writes, which is enough for a
    /// store only one host uses; a store that several hosts share must
    /// check inside the write's transaction (the PostgreSQL store locks the
    /// container for it).
    fn put_within(
        &self,
        webtask: StoredWebtask,
        quota: Quota,
    ) -> BoxFuture<'_, Result<StoredWebtask, StoreError>> {
        Box::pin(async move {
            let usage = self.usage(&webtask.container).await?;
            let old = self.get(&webtask.container, &webtask.name).await?;
            quota.admits(&webtask, usage, old.map(|o| o.code.len() as u64))?;
            self.put(webtask).await
        })
    }
    /// Renames webtask `from` of `container` to `renamed.name`, in one
    /// step: its code, secrets and metadata move with `renamed.token` as its
    /// token; its draft moves too (replacing any draft of the new name); its
    /// version history starts anew with one version by `renamed.deployment`;
    /// its recorded inputs are dropped; the change log records the old
    /// name's deletion and the new name's creation. Returns the webtask
    /// under its new name. [`StoreError::Conflict`] and nothing written
    /// when the new name is taken or `from` does not exist (a concurrent
    /// rename or delete took it first). The default keeps no renames.
    fn rename<'a>(
        &'a self,
        from: &'a str,
        renamed: StoredWebtask,
    ) -> BoxFuture<'a, Result<StoredWebtask, StoreError>> {
        let _ = (from, renamed);
        Box::pin(async { Err(StoreError::Unsupported("renames")) })
    }
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
    /// The webtasks of every container whose meta has `key` = `value`, in
    /// (container, name) order, at most `limit`: who uses an extension point.
    /// The default keeps no such index.
    fn find<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<StoredWebtask>, StoreError>> {
        let _ = (key, value, limit);
        Box::pin(async { Err(StoreError::Unsupported("index of webtasks by meta")) })
    }
    /// How many webtasks `container` has and the bytes of their code, for quotas.
    fn usage<'a>(&'a self, container: &'a str) -> BoxFuture<'a, Result<Usage, StoreError>>;
    /// Records a revoked token id.
    fn revoke<'a>(&'a self, jti: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Every revoked token id.
    fn revoked(&self) -> BoxFuture<'_, Result<Vec<String>, StoreError>>;
}

/// Drafts: code saved beside a live webtask, run and deployed from the
/// editor. Without it, saving a draft is refused ([`StoreError::Unsupported`]).
pub trait Drafts: Send + Sync + 'static {
    /// Stores `draft` as the webtask's draft, replacing any; returns it
    /// with its time. The default keeps none.
    fn put_draft(&self, draft: Draft) -> BoxFuture<'_, Result<Draft, StoreError>> {
        let _ = draft;
        Box::pin(async { Err(StoreError::Unsupported("drafts")) })
    }
    /// How many drafts `container` has and the bytes of their code, and the
    /// code bytes of `name`'s draft if it has one: for the drafts' quota.
    /// The default keeps no drafts: none.
    fn draft_usage<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(Usage, Option<u64>), StoreError>> {
        let _ = (container, name);
        Box::pin(async { Ok((Usage::default(), None)) })
    }
    /// The webtask's draft, if it has one.
    fn draft<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Draft>, StoreError>> {
        let _ = (container, name);
        Box::pin(async { Ok(None) })
    }
    /// The drafts of `container`, in name order, at most `limit`, without
    /// their code (`code` is empty) or secrets: what an editor lists,
    /// including drafts of webtasks never deployed. The default keeps none.
    fn drafts<'a>(
        &'a self,
        container: &'a str,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<Draft>, StoreError>> {
        let _ = (container, limit);
        Box::pin(async { Ok(Vec::new()) })
    }
    /// Deletes the webtask's draft; `false` when there was none.
    fn delete_draft<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let _ = (container, name);
        Box::pin(async { Ok(false) })
    }
}

/// Version history of webtasks, for rollback. Without it, listing
/// versions is refused ([`StoreError::Unsupported`]).
pub trait History: Send + Sync + 'static {
    /// The version history of a webtask, newest first (empty when it has
    /// none). The default refuses: a store that keeps none says so rather
    /// than show an empty history.
    fn versions<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<WebtaskVersion>, StoreError>> {
        let _ = (container, name);
        Box::pin(async { Err(StoreError::Unsupported("version history")) })
    }
}

/// Run inputs recorded for replaying drafts. Without it, recording is
/// refused ([`StoreError::Unsupported`]), which the host logs: no input is
/// dropped silently.
pub trait Recordings: Send + Sync + 'static {
    /// Records a run input of a webtask (sealed by the host), keeping the
    /// last `keep` of that webtask. The default refuses.
    fn record_input<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
        sealed: Vec<u8>,
        keep: u32,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        // Refused, not dropped: the recorder logs each input it could not keep.
        let _ = (container, name, sealed, keep);
        Box::pin(async { Err(StoreError::Unsupported("recorded inputs")) })
    }
    /// The webtask's recorded inputs, newest first. Deleting the webtask
    /// deletes them.
    fn recorded_inputs<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<RecordedInput>, StoreError>> {
        let _ = (container, name);
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// The published catalog of extension points. Without it, publishing is
/// refused and no catalog exists.
pub trait Catalogs: Send + Sync + 'static {
    /// Stores `document` as the current catalog, keeping the one it
    /// replaces as the previous; returns it with its version and time. The
    /// default keeps none.
    fn publish_catalog(
        &self,
        document: String,
    ) -> BoxFuture<'_, Result<StoredCatalog, StoreError>> {
        let _ = document;
        Box::pin(async { Err(StoreError::Unsupported("catalog")) })
    }
    /// The current catalog and the one before it, newest first. The
    /// default keeps none.
    fn catalogs(&self) -> BoxFuture<'_, Result<Vec<StoredCatalog>, StoreError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// What a store that several hosts share announces: committed changes, the
/// change log, and log records of runs. A store only one host uses keeps the
/// defaults (no feed).
pub trait Feed: Send + Sync + 'static {
    /// The change feed: every change committed to this store, by this host
    /// or another sharing it, in commit order. A host follows it for as long
    /// as it runs (a lagging receiver is treated as [`Change::Missed`]), and
    /// `GET /api/changes` streams it. `None`, the default, means no feed:
    /// the host still updates its caches on its own writes, which is enough
    /// when it is the only writer.
    fn changes(&self) -> Option<broadcast::Receiver<Change>> {
        None
    }
    /// Whether the change feed is connected now: `Some(false)` while a
    /// store shared by several hosts has lost it (this host's caches are
    /// dropped meanwhile, and `/readyz` says the host is degraded). `None`,
    /// the default, for a store without a feed to lose.
    fn feed_connected(&self) -> Option<bool> {
        None
    }
    /// The logged webtask changes after position `after`, at most `limit`,
    /// optionally of one container: what a `GET /api/changes` client that
    /// reconnects with `Last-Event-ID` missed. The default keeps no log:
    /// every answer is incomplete, so such clients start over.
    fn changes_since<'a>(
        &'a self,
        after: u64,
        container: Option<&'a str>,
        limit: u64,
    ) -> BoxFuture<'a, Result<ChangeLog, StoreError>> {
        let _ = (after, container, limit);
        Box::pin(async { Ok(ChangeLog::default()) })
    }
    /// Hands a log record of a run on this host to the other hosts sharing
    /// the store, without waiting. The default, for a store one host uses,
    /// drops it.
    fn relay_log(&self, container: &str, record: &str) {
        let _ = (container, record);
    }
    /// Log records of runs on other hosts sharing the store, as
    /// [`Store::relay_log`] handed them over there. `None` by default.
    fn remote_logs(&self) -> Option<broadcast::Receiver<RemoteLog>> {
        None
    }
}
