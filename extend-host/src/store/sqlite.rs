//! The SQLite store: one file in WAL mode with `synchronous = FULL`, so an
//! acknowledged write survives the process being killed, or `:memory:`.

use super::{BoxFuture, Store, StoreError, StoredWebtask};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[include_str!("../../migrations/0001_init.sql")];

/// A [`Store`] on SQLite.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    // One connection: SQLite serialises writers anyway, and management traffic
    // is light; runs read through the host's in-memory cache.
    conn: Arc<Mutex<Connection>>,
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(db)`
fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        Self::migrate(conn)
    }

    /// A database that lives in memory only.
    pub fn memory() -> Result<Self, StoreError> {
        Self::migrate(Connection::open_in_memory().map_err(db)?)
    }

    fn migrate(mut conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        let done: usize = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(db)?;
        if done > MIGRATIONS.len() {
            return Err(StoreError::Corrupt(format!(
                "the database has schema version {done}, newer than this host knows ({}); use a newer extend-host",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
            // Each migration and its version bump commit together or not at all.
            let tx = conn.transaction().map_err(db)?;
            tx.execute_batch(sql).map_err(db)?;
            tx.pragma_update(None, "user_version", i + 1).map_err(db)?;
            tx.commit().map_err(db)?;
        }
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection on a blocking thread.
    fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let conn = Arc::clone(&self.conn);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut c = conn
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                f(&mut c)
            })
            .await
            .map_err(|e| StoreError::Database(format!("storage thread failed: {e}")))?
        })
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

const COLUMNS: &str = "container, name, code, secrets, meta, token, created_at, updated_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(StoredWebtask, String)> {
    Ok((
        StoredWebtask {
            container: r.get(0)?,
            name: r.get(1)?,
            code: r.get(2)?,
            sealed_secrets: r.get(3)?,
            meta: Default::default(),
            token: r.get(5)?,
            created_at: r.get(6)?,
            updated_at: r.get(7)?,
        },
        r.get(4)?,
    ))
}

fn with_meta((mut w, meta): (StoredWebtask, String)) -> Result<StoredWebtask, StoreError> {
    w.meta = serde_json::from_str(&meta)
        .map_err(|e| StoreError::Corrupt(format!("meta of {}/{}: {e}", w.container, w.name)))?;
    Ok(w)
}

impl Store for SqliteStore {
    fn get<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredWebtask>, StoreError>> {
        let (c, n) = (container.to_owned(), name.to_owned());
        self.with(move |conn| {
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

    fn put(&self, mut w: StoredWebtask) -> BoxFuture<'_, Result<StoredWebtask, StoreError>> {
        self.with(move |conn| {
            let meta = serde_json::to_string(&w.meta).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let t = now();
            w.created_at = conn
                .query_row(
                    "INSERT INTO webtasks (container, name, code, secrets, meta, token, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                     ON CONFLICT (container, name) DO UPDATE SET
                        code = excluded.code, secrets = excluded.secrets, meta = excluded.meta,
                        token = excluded.token, updated_at = excluded.updated_at
                     RETURNING created_at",
                    params![w.container, w.name, w.code, w.sealed_secrets, meta, w.token, t],
                    |r| r.get(0),
                )
                .map_err(db)?;
            w.updated_at = t;
            Ok(w)
        })
    }

    fn delete<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let (c, n) = (container.to_owned(), name.to_owned());
        self.with(move |conn| {
            Ok(conn
                .execute(
                    "DELETE FROM webtasks WHERE container = ?1 AND name = ?2",
                    params![c, n],
                )
                .map_err(db)?
                > 0)
        })
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
        self.with(move |conn| {
            let mut sql = format!("SELECT {COLUMNS} FROM webtasks WHERE container = ?");
            for _ in &filters {
                sql.push_str(" AND EXISTS (SELECT 1 FROM json_each(webtasks.meta) WHERE key = ? AND value = ?)");
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

    fn revoke<'a>(&'a self, jti: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        let jti = jti.to_owned();
        self.with(move |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO revoked_tokens (jti, revoked_at) VALUES (?1, ?2)",
                params![jti, now()],
            )
            .map_err(db)?;
            Ok(())
        })
    }

    fn revoked(&self) -> BoxFuture<'_, Result<Vec<String>, StoreError>> {
        self.with(|conn| {
            let mut stmt = conn.prepare("SELECT jti FROM revoked_tokens").map_err(db)?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(db)?;
            rows.map(|r| r.map_err(db)).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wt(name: &str, meta: &[(&str, &str)]) -> StoredWebtask {
        StoredWebtask::new(
            "acme".into(),
            name.into(),
            "module.exports = cb => cb()".into(),
            vec![1, 2, 3],
            meta.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            "t".into(),
        )
    }

    #[tokio::test]
    async fn put_get_list_filter_and_delete() {
        let s = SqliteStore::memory().unwrap();
        s.put(wt(
            "b",
            &[("auth0-extension-type", "on-new-lead"), ("x", "a:b")],
        ))
        .await
        .unwrap();
        s.put(wt("a", &[("auth0-extension-type", "on-new-lead")]))
            .await
            .unwrap();
        s.put(wt("c", &[("auth0-extension-type", "other")]))
            .await
            .unwrap();
        let names = |v: Vec<StoredWebtask>| v.into_iter().map(|w| w.name).collect::<Vec<_>>();
        let f = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            names(s.list("acme", &[], 0, 100).await.unwrap()),
            ["a", "b", "c"]
        );
        assert_eq!(
            names(
                s.list("acme", &[f("auth0-extension-type", "on-new-lead")], 0, 100)
                    .await
                    .unwrap()
            ),
            ["a", "b"]
        );
        let both = [f("auth0-extension-type", "on-new-lead"), f("x", "a:b")];
        assert_eq!(names(s.list("acme", &both, 0, 100).await.unwrap()), ["b"]);
        assert_eq!(names(s.list("acme", &[], 1, 1).await.unwrap()), ["b"]);
        assert!(s.list("other", &[], 0, 100).await.unwrap().is_empty());
        let got = s.get("acme", "b").await.unwrap().unwrap();
        assert_eq!(
            (got.sealed_secrets.as_slice(), got.meta["x"].as_str()),
            (&[1u8, 2, 3][..], "a:b")
        );
        assert!(s.delete("acme", "b").await.unwrap());
        assert!(!s.delete("acme", "b").await.unwrap());
        assert_eq!(s.get("acme", "b").await.unwrap(), None);
    }

    #[tokio::test]
    async fn replacing_keeps_created_at_and_revocations_persist() {
        let dir = std::env::temp_dir().join(format!(
            "extend-host-store-{}",
            crate::crypto::random_hex::<6>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("extend.db");
        {
            let s = SqliteStore::open(&path).unwrap();
            let first = s.put(wt("a", &[])).await.unwrap();
            let mut next = wt("a", &[]);
            next.code = "changed".into();
            let second = s.put(next).await.unwrap();
            assert_eq!(second.created_at, first.created_at);
            s.revoke("j1").await.unwrap();
            s.revoke("j1").await.unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.get("acme", "a").await.unwrap().unwrap().code, "changed");
        assert_eq!(s.revoked().await.unwrap(), ["j1"]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
