//! [`Drafts`] on the SQLite store.

use super::*;
use crate::store::Drafts;

impl Drafts for SqliteStore {
    fn put_draft(&self, mut d: Draft) -> BoxFuture<'_, Result<Draft, StoreError>> {
        self.with(move |conn| {
            let meta =
                serde_json::to_string(&d.meta).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            d.saved_at = now();
            conn.execute(
                "INSERT INTO webtask_drafts (container, name, code, meta, secrets, saved_by, saved_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (container, name) DO UPDATE SET code = excluded.code, meta = excluded.meta,
                    secrets = excluded.secrets, saved_by = excluded.saved_by, saved_at = excluded.saved_at",
                params![d.container, d.name, d.code, meta, d.sealed_secrets, d.saved_by, d.saved_at],
            )
            .map_err(db)?;
            Ok(d)
        })
    }

    fn draft_usage<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(Usage, Option<u64>), StoreError>> {
        let (c, n) = (container.to_owned(), name.to_owned());
        self.read(move |conn| {
            conn.query_row(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(code AS BLOB))), 0),
                    MAX(CASE WHEN name = ?2 THEN LENGTH(CAST(code AS BLOB)) END)
                 FROM webtask_drafts WHERE container = ?1",
                params![c, n],
                |r| {
                    Ok((
                        Usage::new(r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64),
                        r.get::<_, Option<i64>>(2)?.map(|b| b as u64),
                    ))
                },
            )
            .map_err(db)
        })
    }

    fn draft<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Draft>, StoreError>> {
        let (c, n) = (container.to_owned(), name.to_owned());
        self.read(move |conn| {
            let found = conn
                .query_row(
                    "SELECT code, meta, secrets, saved_by, saved_at FROM webtask_drafts
                     WHERE container = ?1 AND name = ?2",
                    params![c, n],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Option<Vec<u8>>>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, i64>(4)?,
                        ))
                    },
                )
                .optional()
                .map_err(db)?;
            found
                .map(|(code, meta, secrets, by, at)| {
                    let meta = serde_json::from_str(&meta)
                        .map_err(|e| StoreError::Corrupt(format!("a draft's meta: {e}")))?;
                    let mut d = Draft::new(c.clone(), n.clone(), code, meta, secrets, by);
                    d.saved_at = at;
                    Ok(d)
                })
                .transpose()
        })
    }

    fn drafts<'a>(
        &'a self,
        container: &'a str,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<Draft>, StoreError>> {
        let c = container.to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT name, meta, saved_by, saved_at FROM webtask_drafts
                     WHERE container = ?1 ORDER BY name LIMIT ?2",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map(params![c, limit.min(i64::MAX as u64) as i64], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })
                .map_err(db)?;
            rows.map(|r| {
                let (name, meta, by, at) = r.map_err(db)?;
                let meta = serde_json::from_str(&meta).map_err(|e| {
                    StoreError::Corrupt(format!("the meta of draft {c}/{name}: {e}"))
                })?;
                let mut d = Draft::new(c.clone(), name, String::new(), meta, None, by);
                d.saved_at = at;
                Ok(d)
            })
            .collect()
        })
    }

    fn delete_draft<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let (c, n) = (container.to_owned(), name.to_owned());
        self.with(move |conn| Ok(conn.execute(sql::DRAFT_DELETE, params![c, n]).map_err(db)? > 0))
    }
}
