//! [`Store`] on the SQLite store: webtasks, their index, quotas and revocations.

use super::*;

impl Store for SqliteStore {
    fn get<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredWebtask>, StoreError>> {
        let (c, n) = (container.to_owned(), name.to_owned());
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {COLUMNS} FROM webtasks WHERE container = ?1 AND name = ?2"),
                params![c, n],
                row,
            )
            .optional()
            .map_err(db)?
            .map(with_meta)
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

    fn delete<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let (c, n) = (container.to_owned(), name.to_owned());
        let write = self.with(move |conn| {
            let tx = conn.transaction().map_err(db)?;
            let deleted = tx.execute(sql::WEBTASK_DELETE, params![c, n]).map_err(db)? > 0;
            tx.execute(sql::RECORDINGS_DELETE, params![c, n])
                .map_err(db)?;
            let change = if deleted {
                Some(log_change(&tx, &c, &n, true)?)
            } else {
                None
            };
            tx.commit().map_err(db)?;
            Ok((deleted, change))
        });
        announce(write, &self.feed)
    }

    fn rename<'a>(
        &'a self,
        from: &'a str,
        mut w: StoredWebtask,
    ) -> BoxFuture<'a, Result<StoredWebtask, StoreError>> {
        let from = from.to_owned();
        let write = self.with(move |conn| {
            let t = now();
            let tx = conn.transaction().map_err(db)?;
            let taken: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM webtasks WHERE container = ?1 AND name = ?2)",
                    params![w.container, w.name],
                    |r| r.get(0),
                )
                .map_err(db)?;
            if taken {
                return Err(StoreError::Conflict(format!(
                    "container `{}` already has a webtask named `{}`",
                    w.container, w.name
                )));
            }
            // What refers to the old name goes first (foreign keys), and the
            // metadata index is made again for the new one.
            for sql in [
                sql::VERSIONS_DELETE_BOTH_NAMES,
                "DELETE FROM webtask_meta WHERE container = ?1 AND name IN (?2, ?3)",
            ] {
                tx.execute(sql, params![w.container, from, w.name]).map_err(db)?;
            }
            let moved = tx
                .execute(
                    "UPDATE webtasks SET name = ?3, token = ?4, updated_at = ?5
                     WHERE container = ?1 AND name = ?2",
                    params![w.container, from, w.name, w.token, t],
                )
                .map_err(db)?;
            if moved == 0 {
                return Err(StoreError::Conflict(format!(
                    "webtask `{}/{from}` no longer exists: it was renamed or deleted meanwhile",
                    w.container
                )));
            }
            for sql in [
                "INSERT INTO webtask_meta (container, name, key, value)
                 SELECT w.container, w.name, j.key, j.value FROM webtasks w, json_each(w.meta) j
                 WHERE w.container = ?1 AND w.name = ?3 AND ?2 <> ?3",
                sql::RECORDINGS_DELETE_BOTH_NAMES,
                "DELETE FROM webtask_drafts WHERE container = ?1 AND name = ?3",
                "UPDATE webtask_drafts SET name = ?3 WHERE container = ?1 AND name = ?2",
            ] {
                tx.execute(sql, params![w.container, from, w.name]).map_err(db)?;
            }
            let secret_names = serde_json::to_string(&w.deployment.secret_names)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            tx.execute(
                "INSERT INTO webtask_versions (container, name, version, code, meta, secrets, deployed_by, deployed_at)
                 SELECT container, name, 1, code, meta, ?3, ?4, ?5 FROM webtasks WHERE container = ?1 AND name = ?2",
                params![w.container, w.name, secret_names, w.deployment.by, t],
            )
            .map_err(db)?;
            let (stored, meta) = tx
                .query_row(
                    &format!("SELECT {COLUMNS} FROM webtasks WHERE container = ?1 AND name = ?2"),
                    params![w.container, w.name],
                    row,
                )
                .map_err(db)?;
            let gone = log_change(&tx, &w.container, &from, true)?;
            let made = log_change(&tx, &w.container, &w.name, false)?;
            tx.commit().map_err(db)?;
            let mut stored = with_meta((stored, meta))?;
            stored.change_id = made.id;
            w = stored;
            Ok((w, vec![gone, made]))
        });
        announce_all(write, &self.feed)
    }

    fn list<'a>(
        &'a self,
        container: &'a str,
        meta: &'a [(String, String)],
        offset: u64,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<StoredWebtask>, StoreError>> {
        let c = container.to_owned();
        let filters = meta.to_vec();
        self.read(move |conn| {
            let mut sql = format!("SELECT {COLUMNS} FROM webtasks WHERE container = ?");
            for _ in &filters {
                sql.push_str(
                    " AND EXISTS (SELECT 1 FROM webtask_meta m WHERE m.container = webtasks.container \
                     AND m.name = webtasks.name AND m.key = ? AND m.value = ?)",
                );
            }
            sql.push_str(" ORDER BY name LIMIT ? OFFSET ?");
            let mut args: Vec<rusqlite::types::Value> = vec![c.into()];
            for (k, v) in filters {
                args.push(k.into());
                args.push(v.into());
            }
            args.push((limit.min(i64::MAX as u64) as i64).into());
            args.push((offset.min(i64::MAX as u64) as i64).into());
            let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args), row).map_err(db)?;
            rows.map(|r| r.map_err(db).and_then(with_meta)).collect()
        })
    }

    fn find<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<StoredWebtask>, StoreError>> {
        let (k, v) = (key.to_owned(), value.to_owned());
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM webtasks w WHERE EXISTS (SELECT 1 FROM webtask_meta m
                     WHERE m.container = w.container AND m.name = w.name AND m.key = ?1 AND m.value = ?2)
                     ORDER BY container, name LIMIT ?3"
                ))
                .map_err(db)?;
            let rows = stmt
                .query_map(params![k, v, limit.min(i64::MAX as u64) as i64], row)
                .map_err(db)?;
            rows.map(|r| r.map_err(db).and_then(with_meta)).collect()
        })
    }

    fn revoke<'a>(&'a self, jti: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        let jti = jti.to_owned();
        let feed = self.feed.clone();
        let write = self.with({
            let jti = jti.clone();
            move |conn| {
                conn.execute(
                    "INSERT OR IGNORE INTO revoked_tokens (jti, revoked_at) VALUES (?1, ?2)",
                    params![jti, now()],
                )
                .map_err(db)?;
                Ok(())
            }
        });
        Box::pin(async move {
            write.await?;
            let _ = feed.send(Change::Revoked { jti });
            Ok(())
        })
    }

    fn usage<'a>(&'a self, container: &'a str) -> BoxFuture<'a, Result<Usage, StoreError>> {
        let c = container.to_owned();
        self.read(move |conn| {
            conn.query_row(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(code AS BLOB))), 0) FROM webtasks WHERE container = ?1",
                params![c],
                |r| {
                    Ok(Usage {
                        webtasks: r.get::<_, i64>(0)? as u64,
                        code_bytes: r.get::<_, i64>(1)? as u64,
                    })
                },
            )
            .map_err(db)
        })
    }

    fn revoked(&self) -> BoxFuture<'_, Result<Vec<String>, StoreError>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(sql::REVOKED_ALL).map_err(db)?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(db)?;
            rows.map(|r| r.map_err(db)).collect()
        })
    }
}
