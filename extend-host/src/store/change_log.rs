//! What both stores share about the change log and version history: its
//! sizes, announcing a committed change to the feed, whether a log still
//! holds a reader's position, and reading a version row back.

use super::{BoxFuture, Change, Deployment, StoreError, WebtaskChange, WebtaskVersion};
use tokio::sync::broadcast;

/// Changes the feed buffers for a slow follower before it lags.
pub(crate) const FEED_BACKLOG: usize = 4096;

/// Rows the change log keeps; a client further behind starts over.
pub(crate) const CHANGE_LOG_ROWS: i64 = 10_000;

/// A version read back: meta and secret names are JSON text.
pub(crate) fn version_row(
    version: i64,
    code: String,
    meta: &str,
    secrets: &str,
    by: String,
    at: i64,
) -> Result<WebtaskVersion, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("a webtask version: {e}"));
    Ok(WebtaskVersion {
        version: version as u64,
        code,
        meta: serde_json::from_str(meta).map_err(corrupt)?,
        deployment: Deployment::new(by, serde_json::from_str(secrets).map_err(corrupt)?),
        deployed_at: at,
    })
}

/// Sends the change a write logged to the feed, once the write committed.
pub(crate) fn announce<T: Send + 'static>(
    write: BoxFuture<'static, Result<(T, Option<WebtaskChange>), StoreError>>,
    feed: &broadcast::Sender<Change>,
) -> BoxFuture<'static, Result<T, StoreError>> {
    let feed = feed.clone();
    Box::pin(async move {
        let (value, change) = write.await?;
        if let Some(change) = change {
            let _ = feed.send(Change::Webtask(change));
        }
        Ok(value)
    })
}

/// [`announce`] for a write that made several changes.
pub(crate) fn announce_all<T: Send + 'static>(
    write: BoxFuture<'static, Result<(T, Vec<WebtaskChange>), StoreError>>,
    feed: &broadcast::Sender<Change>,
) -> BoxFuture<'static, Result<T, StoreError>> {
    let feed = feed.clone();
    Box::pin(async move {
        let (value, changes) = write.await?;
        for change in changes {
            let _ = feed.send(Change::Webtask(change));
        }
        Ok(value)
    })
}

/// Whether a change log whose rows go from `oldest` to `latest` still
/// holds everything after position `after`: the row `after` itself must
/// still be there (ids may have gaps, so `oldest == after + 1` proves
/// nothing), and `after` must be a position the log reached (a reader
/// past the end has seen another log, or made its position up).
pub(crate) fn log_is_complete(oldest: Option<i64>, latest: Option<i64>, after: i64) -> bool {
    match (oldest, latest) {
        (Some(oldest), Some(latest)) => oldest <= after && after <= latest,
        _ => after == 0,
    }
}
