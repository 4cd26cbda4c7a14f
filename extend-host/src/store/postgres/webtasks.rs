//! [`Store`] on the PostgreSQL store: webtasks, their index, quotas and revocations.

use super::*;

impl Store for PostgresStore {
    fn get<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredWebtask>, StoreError>> {
        Box::pin(async move {
            let sql = format!("SELECT {COLUMNS} FROM webtasks WHERE container = $1 AND name = $2");
            self.reader()
                .await?
                .query_opt(&sql, &[&container, &name])
                .await
                .map_err(db)?
                .map(|r| row(&r))
                .transpose()
        })
    }

    fn put(&self, w: StoredWebtask) -> BoxFuture<'_, Result<StoredWebtask, StoreError>> {
        self.write(w, None)
    }

    fn put_within(
        &self,
        w: StoredWebtask,
        quota: Quota,
    ) -> BoxFuture<'_, Result<StoredWebtask, StoreError>> {
        self.write(w, Some(quota))
    }

    fn rename<'a>(
        &'a self,
        from: &'a str,
        w: StoredWebtask,
    ) -> BoxFuture<'a, Result<StoredWebtask, StoreError>> {
        let (this, from) = (self.clone(), from.to_owned());
        let write: BoxFuture<'static, _> = Box::pin(async move {
            let t = now();
            let secret_names = serde_json::to_string(&w.deployment.secret_names)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let taken = || {
                StoreError::Conflict(format!(
                    "container `{}` already has a webtask named `{}`",
                    w.container, w.name
                ))
            };
            let mut conn = this.conn().await?;
            let tx = conn.transaction().await.map_err(db)?;
            if tx
                .query_opt(
                    "SELECT 1 FROM webtasks WHERE container = $1 AND name = $2",
                    &[&w.container, &w.name],
                )
                .await
                .map_err(db)?
                .is_some()
            {
                return Err(taken());
            }
            // The old history goes first: it refers to the old name.
            tx.execute(
                sql::VERSIONS_DELETE_BOTH_NAMES,
                &[&w.container, &from, &w.name],
            )
            .await
            .map_err(db)?;
            // A concurrent rename to the same name loses on the primary key;
            // one of the same webtask finds it gone once the other commits.
            let moved = match tx
                .execute(
                    "UPDATE webtasks SET name = $3, token = $4, updated_at = $5
                     WHERE container = $1 AND name = $2",
                    &[&w.container, &from, &w.name, &w.token, &t],
                )
                .await
            {
                Ok(n) => n,
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                    return Err(taken());
                }
                Err(e) => return Err(db(e)),
            };
            if moved == 0 {
                return Err(StoreError::Conflict(format!(
                    "webtask `{}/{from}` no longer exists: it was renamed or deleted meanwhile",
                    w.container
                )));
            }
            // Every parameter is used in each: PostgreSQL cannot type an unused one.
            for sql in [
                sql::RECORDINGS_DELETE_BOTH_NAMES,
                "DELETE FROM webtask_drafts WHERE container = $1 AND name = $3 AND $2 <> $3",
                "UPDATE webtask_drafts SET name = $3 WHERE container = $1 AND name = $2",
            ] {
                tx.execute(sql, &[&w.container, &from, &w.name])
                    .await
                    .map_err(db)?;
            }
            tx.execute(
                "INSERT INTO webtask_versions (container, name, version, code, meta, secrets, deployed_by, deployed_at)
                 SELECT container, name, 1, code, meta, $3::text::jsonb, $4, $5 FROM webtasks
                 WHERE container = $1 AND name = $2",
                &[&w.container, &w.name, &secret_names, &w.deployment.by, &t],
            )
            .await
            .map_err(db)?;
            let stored = tx
                .query_one(
                    &format!("SELECT {COLUMNS} FROM webtasks WHERE container = $1 AND name = $2"),
                    &[&w.container, &w.name],
                )
                .await
                .map_err(db)?;
            let mut stored = row(&stored)?;
            log_change(&tx, &w.container, &from, true)
                .await
                .map_err(db)?;
            let made = log_change(&tx, &w.container, &w.name, false)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            stored.change_id = made.id;
            Ok((stored, None))
        });
        announce_local(write)
    }

    fn delete<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let (this, c, n) = (self.clone(), container.to_owned(), name.to_owned());
        let write: BoxFuture<'static, _> = Box::pin(async move {
            let mut conn = this.conn().await?;
            let tx = conn.transaction().await.map_err(db)?;
            let deleted = tx
                .execute(sql::WEBTASK_DELETE, &[&c, &n])
                .await
                .map_err(db)?
                > 0;
            tx.execute(sql::RECORDINGS_DELETE, &[&c, &n])
                .await
                .map_err(db)?;
            let change = if deleted {
                Some(log_change(&tx, &c, &n, true).await.map_err(db)?)
            } else {
                None
            };
            tx.commit().await.map_err(db)?;
            Ok((deleted, change))
        });
        announce_local(write)
    }

    fn list<'a>(
        &'a self,
        container: &'a str,
        meta: &'a [(String, String)],
        offset: u64,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<StoredWebtask>, StoreError>> {
        Box::pin(async move {
            // One containment test per filter: two filters on one key with
            // different values match nothing, as in SQLite.
            let filters: Vec<String> = meta
                .iter()
                .map(|(k, v)| serde_json::json!({ k: v }).to_string())
                .collect();
            let mut sql = format!("SELECT {COLUMNS} FROM webtasks WHERE container = $1");
            for i in 0..filters.len() {
                sql.push_str(&format!(" AND meta @> ${}::text::jsonb", i + 2));
            }
            let n = filters.len();
            sql.push_str(&format!(
                " ORDER BY name LIMIT ${} OFFSET ${}",
                n + 2,
                n + 3
            ));
            let limit = limit.min(i64::MAX as u64) as i64;
            let offset = offset.min(i64::MAX as u64) as i64;
            let mut args: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&container];
            for f in &filters {
                args.push(f);
            }
            args.push(&limit);
            args.push(&offset);
            self.reader()
                .await?
                .query(&sql, &args)
                .await
                .map_err(db)?
                .iter()
                .map(row)
                .collect()
        })
    }

    fn find<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<StoredWebtask>, StoreError>> {
        Box::pin(async move {
            let filter = serde_json::json!({ key: value }).to_string();
            let limit = limit.min(i64::MAX as u64) as i64;
            self.reader().await?.query(
                &format!(
                    "SELECT {COLUMNS} FROM webtasks WHERE meta @> $1::text::jsonb ORDER BY container, name LIMIT $2"
                ),
                &[&filter, &limit],
            )
            .await
            .map_err(db)?
            .iter()
            .map(row)
            .collect()
        })
    }

    fn usage<'a>(&'a self, container: &'a str) -> BoxFuture<'a, Result<Usage, StoreError>> {
        Box::pin(async move {
            let mut conn = self.reader().await?;
            let r = conn
                .query_one(
                    "SELECT COUNT(*), COALESCE(SUM(octet_length(code)), 0)::bigint
                     FROM webtasks WHERE container = $1",
                    &[&container],
                )
                .await
                .map_err(db)?;
            Ok(Usage::new(
                r.get::<_, i64>(0) as u64,
                r.get::<_, i64>(1) as u64,
            ))
        })
    }

    fn revoke<'a>(&'a self, jti: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let tx = conn.transaction().await.map_err(db)?;
            tx.execute(
                "INSERT INTO revoked_tokens (jti, revoked_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&jti, &now()],
            )
            .await
            .map_err(db)?;
            let payload = change_payload(&Change::Revoked {
                jti: jti.to_owned(),
            });
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANGES_CHANNEL, &payload])
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)
        })
    }

    fn revoked(&self) -> BoxFuture<'_, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.reader().await?;
            Ok(conn
                .query(sql::REVOKED_ALL, &[])
                .await
                .map_err(db)?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })
    }
}
