//! What the API reads through the domain rather than from the store: a
//! webtask and its history, drafts, recorded inputs, the published catalog,
//! the change feed and revocations. Thin on purpose; keeping them here is
//! what keeps the store private to the domain.

use super::Webtasks;
use crate::catalog::Served;
use crate::error::ApiError;
use crate::store::{
    Change, ChangeLog, Draft, RecordedInput, StoreError, StoredCatalog, StoredWebtask, Usage,
    WebtaskVersion,
};
use std::sync::Arc;
use tokio::sync::broadcast;

impl Webtasks {
    /// One stored webtask (secrets sealed).
    pub(crate) async fn get(
        &self,
        container: &str,
        name: &str,
    ) -> Result<Option<StoredWebtask>, StoreError> {
        self.store.get(container, name).await
    }

    /// A container's webtasks whose meta has every `(key, value)` of `meta`.
    pub(crate) async fn list(
        &self,
        container: &str,
        meta: &[(String, String)],
        offset: u64,
        limit: u64,
    ) -> Result<Vec<StoredWebtask>, StoreError> {
        self.store.list(container, meta, offset, limit).await
    }

    /// A webtask's version history, newest first.
    pub(crate) async fn versions(
        &self,
        container: &str,
        name: &str,
    ) -> Result<Vec<WebtaskVersion>, StoreError> {
        self.store.versions(container, name).await
    }

    /// The extensions of `point` in every container, at most `limit`.
    pub(crate) async fn extensions_of(
        &self,
        point: &str,
        limit: u64,
    ) -> Result<Vec<StoredWebtask>, StoreError> {
        self.store.find(super::EXTENSION_TYPE, point, limit).await
    }

    /// What a container holds, for quotas and metrics.
    pub(crate) async fn usage(&self, container: &str) -> Result<Usage, StoreError> {
        self.store.usage(container).await
    }

    /// A webtask's draft.
    pub(crate) async fn draft(
        &self,
        container: &str,
        name: &str,
    ) -> Result<Option<Draft>, StoreError> {
        self.store.draft(container, name).await
    }

    /// A container's drafts, at most `limit`.
    pub(crate) async fn drafts(
        &self,
        container: &str,
        limit: u64,
    ) -> Result<Vec<Draft>, StoreError> {
        self.store.drafts(container, limit).await
    }

    /// Drops a webtask's draft; whether there was one.
    pub(crate) async fn delete_draft(
        &self,
        container: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        self.store.delete_draft(container, name).await
    }

    /// A webtask's recorded inputs, newest first (sealed).
    pub(crate) async fn recorded_inputs(
        &self,
        container: &str,
        name: &str,
    ) -> Result<Vec<RecordedInput>, StoreError> {
        self.store.recorded_inputs(container, name).await
    }

    /// Stores `document` (already checked) as the current catalog, and
    /// forgets the one this host served.
    /// The hosts `container`'s extensions may call beyond the host's
    /// egress policy, as the platform set them.
    pub(crate) async fn container_egress(
        &self,
        container: &str,
    ) -> Result<Vec<String>, StoreError> {
        self.store.container_egress(container).await
    }

    /// Replaces them (an empty list removes them).
    pub(crate) async fn set_container_egress(
        &self,
        container: &str,
        allow: Vec<String>,
    ) -> Result<(), StoreError> {
        self.store.set_container_egress(container, allow).await
    }

    pub(crate) async fn publish_catalog(
        &self,
        document: String,
    ) -> Result<StoredCatalog, StoreError> {
        let stored = self.store.publish_catalog(document).await?;
        self.catalog.invalidate().await;
        // A language's compiler may have changed: webtasks in it compile
        // again from the new one. (Other hosts' caches keep what they
        // compiled until the webtask is written or their cache drops it.)
        self.cache.clear();
        Ok(stored)
    }

    /// The published catalog as served (read at most once a second).
    pub(crate) async fn published_catalog(&self) -> Result<Arc<Served>, ApiError> {
        self.catalog.get(self.store.as_ref()).await
    }

    /// The stored catalogs, read from the store (the readiness probe's
    /// question whether the store answers).
    pub(crate) async fn stored_catalogs(&self) -> Result<Vec<StoredCatalog>, StoreError> {
        self.store.catalogs().await
    }

    /// Committed changes as they happen; `None` when the store has no feed.
    pub(crate) fn changes(&self) -> Option<broadcast::Receiver<Change>> {
        self.store.changes()
    }

    /// The change log after position `after`, at most `limit` changes.
    pub(crate) async fn changes_since(
        &self,
        after: u64,
        container: Option<&str>,
        limit: u64,
    ) -> Result<ChangeLog, StoreError> {
        self.store.changes_since(after, container, limit).await
    }

    /// Whether the store's feed connection is up (`None`: it has none).
    pub(crate) fn feed_connected(&self) -> Option<bool> {
        self.store.feed_connected()
    }

    /// Revokes a token id for good.
    pub(crate) async fn revoke(&self, jti: &str) -> Result<(), StoreError> {
        self.store.revoke(jti).await
    }

    /// Every revoked token id.
    pub(crate) async fn revoked(&self) -> Result<Vec<String>, StoreError> {
        self.store.revoked().await
    }

    /// The recorder of run inputs, on this domain's store and keys.
    pub(crate) fn recorder(&self) -> crate::recording::Recorder {
        crate::recording::Recorder::new(Arc::clone(&self.store), self.keys())
    }
}
