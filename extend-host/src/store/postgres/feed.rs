//! [`Feed`] on the PostgreSQL store.

use super::*;
use crate::store::Feed;

impl Feed for PostgresStore {
    fn changes(&self) -> Option<broadcast::Receiver<Change>> {
        Some(self.inner.feed.subscribe())
    }

    fn feed_connected(&self) -> Option<bool> {
        Some(
            self.inner
                .listening
                .load(std::sync::atomic::Ordering::Acquire),
        )
    }

    fn changes_since<'a>(
        &'a self,
        after: u64,
        container: Option<&'a str>,
        limit: u64,
    ) -> BoxFuture<'a, Result<ChangeLog, StoreError>> {
        Box::pin(async move {
            let after = after.min(i64::MAX as u64) as i64;
            let limit = limit.min(i64::MAX as u64) as i64;
            let mut conn = self.reader().await?;
            let bounds = conn.query_one(sql::CHANGES_RANGE, &[]).await.map_err(db)?;
            let (oldest, latest): (Option<i64>, Option<i64>) = (bounds.get(0), bounds.get(1));
            let rows = conn
                .query(
                    "SELECT id, container, name, deleted FROM changes
                     WHERE id > $1 AND ($2::text IS NULL OR container = $2) ORDER BY id LIMIT $3",
                    &[&after, &container, &limit],
                )
                .await
                .map_err(db)?;
            Ok(ChangeLog {
                changes: rows
                    .iter()
                    .map(|r| {
                        WebtaskChange::new(r.get::<_, i64>(0) as u64, r.get(1), r.get(2), r.get(3))
                    })
                    .collect(),
                complete: log_is_complete(oldest, latest, after),
                latest: latest.map_or(0, |id| id.max(0) as u64),
            })
        })
    }

    fn relay_log(&self, container: &str, record: &str) {
        let out = relay::Outgoing {
            container: container.to_owned(),
            record: record.to_owned(),
        };
        if self.inner.relay.try_send(out).is_err() {
            // The database is slower than the runs' logging: like a slow log
            // subscriber, other nodes miss some records rather than hold up runs.
            let n = self
                .inner
                .relay_dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n + 1,
                    "log records not relayed to other hosts: the relay is behind"
                );
            }
        }
    }

    fn remote_logs(&self) -> Option<broadcast::Receiver<RemoteLog>> {
        Some(self.inner.remote_logs.subscribe())
    }
}
