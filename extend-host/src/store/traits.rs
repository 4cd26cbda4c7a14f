//! What a store implements: the narrow [`Store`] every host needs, and the
//! capabilities beside it ([`Drafts`], [`History`], [`Recordings`],
//! [`Catalogs`], [`Feed`], [`Settings`]) whose defaults refuse or keep
//! nothing, each saying so where that matters.

use super::*;
use std::fmt;
use tokio::sync::broadcast;

impl fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dyn Store")
    }
}

/// What a host stores. Every write is durable when its future resolves.
pub trait Store:
    Drafts + History + Recordings + Catalogs + Feed + Settings + Send + Sync + 'static
{
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

/// Per-container settings the platform manages with the master token: the
/// hosts a container's extensions may call beyond the host's egress
/// policy. Without it, setting them is refused and no container has any.
pub trait Settings: Send + Sync + 'static {
    /// `container`'s extra egress hosts (`HOST[:PORT]`, as given). The
    /// default keeps none.
    fn container_egress<'a>(
        &'a self,
        container: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        let _ = container;
        Box::pin(async { Ok(Vec::new()) })
    }
    /// Replaces `container`'s extra egress hosts; an empty list removes
    /// them. The default refuses ([`StoreError::Unsupported`]).
    fn set_container_egress<'a>(
        &'a self,
        container: &'a str,
        allow: Vec<String>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = (container, allow);
        Box::pin(async { Err(StoreError::Unsupported("container egress")) })
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
