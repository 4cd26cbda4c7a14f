//! The SQLite store: one file in WAL mode with `synchronous = FULL`, so an
//! acknowledged write survives the process being killed, or `:memory:`.
//! Writes go through one connection; reads through a small pool of their
//! own, which WAL lets run beside the writer, so one tenant's slow list does
//! not hold up everyone's writes or reads.

mod catalogs;
mod drafts;
mod feed;
mod history;
mod recordings;
mod settings;
mod webtasks;

use super::change_log::{
    CHANGE_LOG_ROWS, FEED_BACKLOG, announce, announce_all, log_is_complete, version_row,
};
use super::sql;
use super::{
    BoxFuture, Change, ChangeLog, Deployment, Draft, Quota, Store, StoreError, StoredCatalog,
    StoredWebtask, Usage, VERSIONS_KEPT, WebtaskChange, WebtaskVersion,
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// The migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/0001_init.sql"),
    include_str!("../../../migrations/0002_meta_index.sql"),
    include_str!("../../../migrations/0003_changes.sql"),
    include_str!("../../../migrations/0004_catalog.sql"),
    include_str!("../../../migrations/0005_versions.sql"),
    include_str!("../../../migrations/0006_drafts.sql"),
    include_str!("../../../migrations/0007_recorded_inputs.sql"),
    include_str!("../../../migrations/0008_container_egress.sql"),
];

/// Read connections of a file database.
const READERS: usize = 4;

/// A [`Store`] on SQLite.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    // SQLite serialises writers anyway: one write connection.
    conn: Arc<Mutex<Connection>>,
    // Empty for an in-memory database, which reads through `conn`.
    readers: Arc<Vec<Mutex<Connection>>>,
    next_reader: Arc<std::sync::atomic::AtomicUsize>,
    // Every committed change, for the host and `GET /api/changes`.
    feed: broadcast::Sender<Change>,
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(db)`
fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and migrates it.
    /// The file is made readable by its owner only (SQLite gives its `-wal`
    /// and `-shm` files the same mode).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        private_file(path)
            .map_err(|e| StoreError::Database(format!("cannot create {}: {e}", path.display())))?;
        let conn = Connection::open(path).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        let mut store = Self::migrate(conn)?;
        let readers = (0..READERS)
            .map(|_| {
                let c = Connection::open(path).map_err(db)?;
                c.busy_timeout(std::time::Duration::from_secs(5))
                    .map_err(db)?;
                Ok(Mutex::new(c))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        store.readers = Arc::new(readers);
        Ok(store)
    }

    /// A database that lives in memory only.
    pub fn memory() -> Result<Self, StoreError> {
        Self::migrate(Connection::open_in_memory().map_err(db)?)
    }

    fn migrate(mut conn: Connection) -> Result<Self, StoreError> {
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
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
            readers: Arc::new(Vec::new()),
            next_reader: Arc::default(),
            feed: broadcast::channel(FEED_BACKLOG).0,
        })
    }

    /// Runs `f` on a read connection on a blocking thread: a free one if
    /// there is one, else the next in turn.
    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        if self.readers.is_empty() {
            return self.with(f);
        }
        let readers = Arc::clone(&self.readers);
        let turn = self
            .next_reader
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let free = readers.iter().find_map(|r| r.try_lock().ok());
                let mut c = match free {
                    Some(c) => c,
                    None => readers[turn % readers.len()]
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                };
                f(&mut c)
            })
            .await
            .map_err(|e| StoreError::Database(format!("storage thread failed: {e}")))?
        })
    }

    /// Runs `f` on the connection on a blocking thread.
    /// [`Store::put`], checking `quota` first and bounding the container's
    /// version history after, in the write's transaction.
    fn write(
        &self,
        mut w: StoredWebtask,
        quota: Option<Quota>,
    ) -> BoxFuture<'static, Result<StoredWebtask, StoreError>> {
        let write = self.with(move |conn| {
            let meta = serde_json::to_string(&w.meta).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let t = now();
            let tx = conn.transaction().map_err(db)?;
            if let Some(quota) = &quota {
                // One writer at a time: the check and the write are one step.
                let (count, code, old): (i64, i64, Option<i64>) = tx
                    .query_row(
                        "SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(code AS BLOB))), 0),
                            MAX(CASE WHEN name = ?2 THEN LENGTH(CAST(code AS BLOB)) END)
                         FROM webtasks WHERE container = ?1",
                        params![w.container, w.name],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .map_err(db)?;
                quota.admits(&w, Usage::new(count as u64, code as u64), old.map(|o| o as u64))?;
            }
            w.created_at = tx
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
            tx.execute(
                "DELETE FROM webtask_meta WHERE container = ?1 AND name = ?2",
                params![w.container, w.name],
            )
            .map_err(db)?;
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO webtask_meta (container, name, key, value) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(db)?;
                for (k, v) in &w.meta {
                    insert.execute(params![w.container, w.name, k, v]).map_err(db)?;
                }
            }
            let secret_names = serde_json::to_string(&w.deployment.secret_names)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            tx.execute(
                "INSERT INTO webtask_versions (container, name, version, code, meta, secrets, deployed_by, deployed_at)
                 SELECT ?1, ?2, COALESCE(MAX(version), 0) + 1, ?3, ?4, ?5, ?6, ?7
                 FROM webtask_versions WHERE container = ?1 AND name = ?2",
                params![w.container, w.name, w.code, meta, secret_names, w.deployment.by, t],
            )
            .map_err(db)?;
            tx.execute(
                sql::VERSIONS_PRUNE,
                params![w.container, w.name, VERSIONS_KEPT as i64],
            )
            .map_err(db)?;
            if let Some(bytes) = quota.map(|q| q.history_bytes).filter(|b| *b < u64::MAX) {
                tx.execute(PRUNE_HISTORY_SQL, params![w.container, bytes.min(i64::MAX as u64) as i64])
                    .map_err(db)?;
            }
            let change = log_change(&tx, &w.container, &w.name, false)?;
            tx.commit().map_err(db)?;
            w.updated_at = t;
            w.change_id = change.id;
            Ok((w, Some(change)))
        });
        announce(write, &self.feed)
    }

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

/// Appends a webtask write to the change log (pruning its oldest rows) in
/// the write's transaction.
fn log_change(
    tx: &Transaction<'_>,
    container: &str,
    name: &str,
    deleted: bool,
) -> Result<WebtaskChange, StoreError> {
    let id: i64 = tx
        .query_row(
            "INSERT INTO changes (container, name, deleted, at) VALUES (?1, ?2, ?3, ?4) RETURNING id",
            params![container, name, deleted, now()],
            |r| r.get(0),
        )
        .map_err(db)?;
    tx.execute(
        "DELETE FROM changes WHERE id <= ?1",
        params![id - CHANGE_LOG_ROWS],
    )
    .map_err(db)?;
    Ok(WebtaskChange::new(
        id as u64,
        container.to_owned(),
        name.to_owned(),
        deleted,
    ))
}

/// Drops a container's oldest versions, other than each webtask's newest,
/// while its version histories hold more than the given bytes of code:
/// the live versions count first, then the others newest first.
/// Parameters: container, bytes.
const PRUNE_HISTORY_SQL: &str =
    "DELETE FROM webtask_versions WHERE container = ?1 AND (name, version) IN (
    SELECT name, version FROM (
        SELECT name, version, newest,
            SUM(bytes) OVER (ORDER BY newest = 1 DESC, deployed_at DESC, version DESC, name
                ROWS UNBOUNDED PRECEDING) AS kept
        FROM (
            SELECT name, version, deployed_at, LENGTH(CAST(code AS BLOB)) AS bytes,
                ROW_NUMBER() OVER (PARTITION BY name ORDER BY version DESC) AS newest
            FROM webtask_versions WHERE container = ?1))
    WHERE kept > ?2 AND newest > 1)";

/// Creates `path` empty with mode 0600 if it does not exist, and makes an
/// existing one 0600: the database holds sealed secrets and tokens.
fn private_file(path: &Path) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    drop(opts.open(path)?);
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(())
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
            deployment: Deployment::default(),
            change_id: 0,
        },
        r.get(4)?,
    ))
}

fn with_meta((mut w, meta): (StoredWebtask, String)) -> Result<StoredWebtask, StoreError> {
    w.meta = serde_json::from_str(&meta)
        .map_err(|e| StoreError::Corrupt(format!("meta of {}/{}: {e}", w.container, w.name)))?;
    Ok(w)
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

    /// The statements shared with PostgreSQL use `$N`, which SQLite numbers
    /// by first appearance: each must name its parameters in order, or
    /// SQLite would bind them to the wrong places.
    #[test]
    fn the_shared_statements_prepare_and_number_their_parameters_in_order() {
        let conn = Connection::open_in_memory().unwrap();
        for sql in MIGRATIONS {
            conn.execute_batch(sql).unwrap();
        }
        for sql in crate::store::sql::ALL {
            let stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
            for i in 1..=stmt.parameter_count() {
                assert_eq!(
                    stmt.parameter_name(i),
                    Some(format!("${i}").as_str()),
                    "{sql}"
                );
            }
        }
    }

    #[tokio::test]
    async fn the_meta_index_is_filled_from_a_version_1_database_and_follows_writes() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO webtasks (container, name, code, secrets, meta, token, created_at, updated_at)
             VALUES ('acme', 'old', 'x', x'00', '{\"auth0-extension-type\":\"score\"}', 't', 1, 1)",
            [],
        )
        .unwrap();
        let store = SqliteStore::migrate(conn).unwrap();
        let filter = [("auth0-extension-type".to_owned(), "score".to_owned())];
        let found = store.list("acme", &filter, 0, 10).await.unwrap();
        assert_eq!(found.len(), 1, "migrated rows are indexed");
        store
            .put(wt("old", &[("auth0-extension-type", "other")]))
            .await
            .unwrap();
        assert!(
            store.list("acme", &filter, 0, 10).await.unwrap().is_empty(),
            "a replace re-indexes"
        );
        assert!(store.delete("acme", "old").await.unwrap());
        let left: i64 = store
            .with(|c| {
                c.query_row("SELECT COUNT(*) FROM webtask_meta", [], |r| r.get(0))
                    .map_err(db)
            })
            .await
            .unwrap();
        assert_eq!(left, 0, "a delete removes its index rows");
        assert_eq!(store.usage("acme").await.unwrap(), Usage::default());
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
