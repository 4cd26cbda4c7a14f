//! [`Outbox`]: the application's view of its outbox (pending, dead letters,
//! replay, purge).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::record::{DeadLetter, DeadLetterFilter, OutboxError, Pending, Store, ms, now_ms};
use super::worker;

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
