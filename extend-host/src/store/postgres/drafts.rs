//! [`Drafts`] on the PostgreSQL store.

use super::*;
use crate::store::Drafts;

impl Drafts for PostgresStore {
    fn put_draft(
        &self,
        mut d: crate::store::Draft,
    ) -> BoxFuture<'_, Result<crate::store::Draft, StoreError>> {
        Box::pin(async move {
            let meta =
                serde_json::to_string(&d.meta).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            d.saved_at = now();
            let conn = self.conn().await?;
            conn.execute(
                "INSERT INTO webtask_drafts (container, name, code, meta, secrets, saved_by, saved_at)
                 VALUES ($1, $2, $3, $4::text::jsonb, $5, $6, $7)
                 ON CONFLICT (container, name) DO UPDATE SET code = excluded.code, meta = excluded.meta,
                    secrets = excluded.secrets, saved_by = excluded.saved_by, saved_at = excluded.saved_at",
                &[&d.container, &d.name, &d.code, &meta, &d.sealed_secrets, &d.saved_by, &d.saved_at],
            )
            .await
            .map_err(db)?;
            Ok(d)
        })
    }

    fn draft_usage<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(Usage, Option<u64>), StoreError>> {
        Box::pin(async move {
            let mut conn = self.reader().await?;
            let r = conn
                .query_one(
                    "SELECT COUNT(*), COALESCE(SUM(octet_length(code)), 0)::bigint,
                        MAX(CASE WHEN name = $2 THEN octet_length(code) END)::bigint
                     FROM webtask_drafts WHERE container = $1",
                    &[&container, &name],
                )
                .await
                .map_err(db)?;
            Ok((
                Usage::new(r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as u64),
                r.get::<_, Option<i64>>(2).map(|b| b as u64),
            ))
        })
    }

    fn draft<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<crate::store::Draft>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.reader().await?;
            let Some(r) = conn
                .query_opt(
                    "SELECT code, meta::text, secrets, saved_by, saved_at FROM webtask_drafts
                     WHERE container = $1 AND name = $2",
                    &[&container, &name],
                )
                .await
                .map_err(db)?
            else {
                return Ok(None);
            };
            let meta: String = r.get(1);
            let meta = serde_json::from_str(&meta)
                .map_err(|e| StoreError::Corrupt(format!("a draft's meta: {e}")))?;
            let mut d = crate::store::Draft::new(
                container.to_owned(),
                name.to_owned(),
                r.get(0),
                meta,
                r.get(2),
                r.get(3),
            );
            d.saved_at = r.get(4);
            Ok(Some(d))
        })
    }

    fn drafts<'a>(
        &'a self,
        container: &'a str,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<crate::store::Draft>, StoreError>> {
        Box::pin(async move {
            let limit = limit.min(i64::MAX as u64) as i64;
            let rows = self
                .reader()
                .await?
                .query(
                    "SELECT name, meta::text, saved_by, saved_at FROM webtask_drafts
                     WHERE container = $1 ORDER BY name LIMIT $2",
                    &[&container, &limit],
                )
                .await
                .map_err(db)?;
            rows.iter()
                .map(|r| {
                    let name: String = r.get(0);
                    let meta: String = r.get(1);
                    let meta = serde_json::from_str(&meta).map_err(|e| {
                        StoreError::Corrupt(format!("the meta of draft {container}/{name}: {e}"))
                    })?;
                    let mut d = crate::store::Draft::new(
                        container.to_owned(),
                        name,
                        String::new(),
                        meta,
                        None,
                        r.get(2),
                    );
                    d.saved_at = r.get(3);
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
        Box::pin(async move {
            let conn = self.conn().await?;
            Ok(conn
                .execute(sql::DRAFT_DELETE, &[&container, &name])
                .await
                .map_err(db)?
                > 0)
        })
    }
}
