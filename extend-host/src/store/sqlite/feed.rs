//! [`Feed`] on the SQLite store.

use super::*;
use crate::store::Feed;

impl Feed for SqliteStore {
    fn changes(&self) -> Option<broadcast::Receiver<Change>> {
        Some(self.feed.subscribe())
    }

    fn changes_since<'a>(
        &'a self,
        after: u64,
        container: Option<&'a str>,
        limit: u64,
    ) -> BoxFuture<'a, Result<ChangeLog, StoreError>> {
        let container = container.map(str::to_owned);
        self.read(move |conn| {
            let after = after.min(i64::MAX as u64) as i64;
            let (oldest, latest): (Option<i64>, Option<i64>) = conn
                .query_row(sql::CHANGES_RANGE, [], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(db)?;
            let complete = log_is_complete(oldest, latest, after);
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, container, name, deleted FROM changes
                     WHERE id > ?1 AND (?2 IS NULL OR container = ?2) ORDER BY id LIMIT ?3",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map(
                    params![after, container, limit.min(i64::MAX as u64) as i64],
                    |r| {
                        Ok(WebtaskChange::new(
                            r.get::<_, i64>(0)? as u64,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                        ))
                    },
                )
                .map_err(db)?;
            Ok(ChangeLog {
                changes: rows.collect::<Result<_, _>>().map_err(db)?,
                complete,
                latest: latest.map_or(0, |id| id.max(0) as u64),
            })
        })
    }
}
