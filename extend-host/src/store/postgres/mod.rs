//! The PostgreSQL store, for several hosts on one database.
//!
//! Every write is one transaction that also appends to the change log and
//! announces itself with `NOTIFY extend_changes`; each host keeps one
//! connection that `LISTEN`s ([`listen`]) and turns notifications into its
//! change feed. Log records of runs travel the same way on `extend_logs`
//! ([`relay`]). Schema migrations and the shared keys ([`keys`]) are
//! handled under a session advisory lock, so nodes that start together take
//! turns.

mod catalogs;
mod drafts;
mod feed;
mod history;
mod recordings;
mod settings;
mod webtasks;

mod conn;
mod keys;
mod listen;
mod relay;

use super::change_log::{FEED_BACKLOG, log_is_complete};
use super::sql;
use super::{
    BoxFuture, Change, ChangeLog, Quota, RemoteLog, Store, StoreError, StoredCatalog,
    StoredWebtask, Usage, WebtaskChange,
};
use conn::{CHANGES_CHANNEL, POOL_SIZE, POOL_WAIT, change_payload, db, lost, now, pool_error};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};
use tokio_postgres::NoTls;
use tokio_util::sync::{CancellationToken, DropGuard};

/// The migrations, applied in order; `extend_schema` records which ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/postgres/0001_init.sql"),
    include_str!("../../../migrations/postgres/0002_catalog.sql"),
    include_str!("../../../migrations/postgres/0003_versions.sql"),
    include_str!("../../../migrations/postgres/0004_drafts.sql"),
    include_str!("../../../migrations/postgres/0005_recorded_inputs.sql"),
    include_str!("../../../migrations/postgres/0006_container_egress.sql"),
];

/// Session advisory lock under which migrations run and the shared keys are
/// made ("extend" in ASCII).
const SETUP_LOCK: i64 = i64::from_be_bytes(*b"\0\0extend");
/// Transaction advisory lock under which change-log ids are taken, so that
/// they increase in commit order.
const CHANGE_LOCK: i64 = SETUP_LOCK + 1;

/// A [`Store`] on PostgreSQL that several hosts share. It announces every
/// committed change to every host ([`Store::changes`]) and carries log
/// records between them ([`Store::relay_log`]).
///
/// Cheap to clone; the listening connection and the log relay stop when the
/// last clone is dropped.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    feed: broadcast::Sender<Change>,
    remote_logs: broadcast::Sender<RemoteLog>,
    relay: mpsc::Sender<relay::Outgoing>,
    relay_dropped: std::sync::atomic::AtomicU64,
    /// Whether the listening connection is up (see [`Store::feed_connected`]).
    listening: Arc<std::sync::atomic::AtomicBool>,
    _stop: DropGuard,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

type Params<'p> = &'p [&'p (dyn tokio_postgres::types::ToSql + Sync)];

/// A pooled connection for reads. A read that fails because the server had
/// closed the connection is made again on another one: the pool hands out
/// a connection the server just ended until its task notices, and a read is
/// safe to repeat (a write is not: it may have committed).
struct Reader<'s> {
    store: &'s PostgresStore,
    conn: Object,
}

macro_rules! read_once_more {
    ($self:ident, $sql:ident, $params:ident, $call:ident) => {{
        // Each closed connection is tried once: when the server ended them
        // all, the pool may hand out several before a live or new one.
        let mut tries = POOL_SIZE + 1;
        loop {
            let result = match $self.conn.prepare_cached($sql).await {
                Ok(stmt) => $self.conn.$call(&stmt, $params).await,
                Err(e) => Err(e),
            };
            match result {
                Err(e) if lost(&e) && tries > 1 => {
                    tries -= 1;
                    let Ok(fresh) = $self.store.inner.pool.get().await else {
                        return Err(e);
                    };
                    $self.conn = fresh;
                }
                other => break other,
            }
        }
    }};
}

impl Reader<'_> {
    async fn query(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        read_once_more!(self, sql, params, query)
    }

    async fn query_opt(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<tokio_postgres::Row>, tokio_postgres::Error> {
        read_once_more!(self, sql, params, query_opt)
    }

    async fn query_one(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<tokio_postgres::Row, tokio_postgres::Error> {
        read_once_more!(self, sql, params, query_one)
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`),
    /// applies the migrations this version has not applied yet, and starts
    /// listening for changes. Must be called within a tokio runtime.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Database(format!("`{}` is not a PostgreSQL URL: {e}", redact(url)))
        })?;
        if config.get_application_name().is_none() {
            config.application_name("extend-host");
        }
        // A node that vanishes from the network is noticed, not waited for.
        config.keepalives(true);
        config.keepalives_idle(std::time::Duration::from_secs(10));
        config.connect_timeout(std::time::Duration::from_secs(10));
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .create_timeout(Some(std::time::Duration::from_secs(10)))
            // A request waits this long for a connection, then gets 503:
            // slow requests holding the pool delay others, never forever.
            .wait_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| StoreError::Database(format!("cannot make a connection pool: {e}")))?;
        let setup = pool.get().await.map_err(|e| {
            StoreError::Database(format!(
                "cannot connect to PostgreSQL at {}: {}",
                redact(url),
                match e {
                    deadpool_postgres::PoolError::Backend(e) => db(e).to_string(),
                    other => other.to_string(),
                }
            ))
        })?;
        with_setup_lock(&setup, migrate(&setup)).await?;
        drop(setup);

        let stop = CancellationToken::new();
        let (feed, _) = broadcast::channel(FEED_BACKLOG);
        let (remote_logs, _) = broadcast::channel(relay::BACKLOG);
        let node = crate::crypto::random_hex::<8>();
        // Listening starts before `connect` returns, so no change committed
        // after it is missed.
        let listening = Arc::new(std::sync::atomic::AtomicBool::new(false));
        listen::start(
            config,
            feed.clone(),
            remote_logs.clone(),
            node.clone(),
            Arc::clone(&listening),
            stop.clone(),
        )
        .await?;
        let relay = relay::start(pool.clone(), node, stop.clone());
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                pool,
                feed,
                remote_logs,
                relay,
                relay_dropped: Default::default(),
                listening,
                _stop: stop.drop_guard(),
            }),
        })
    }

    async fn conn(&self) -> Result<Object, StoreError> {
        self.inner.pool.get().await.map_err(pool_error)
    }

    /// A connection for reads (see [`Reader`]).
    async fn reader(&self) -> Result<Reader<'_>, StoreError> {
        Ok(Reader {
            store: self,
            conn: self.conn().await?,
        })
    }

    /// The keys every node shares, and the master token: read and opened
    /// with `kek`, or made and stored on the first start of the database.
    /// The master token the nodes of this database share, opened with
    /// `kek`; `None` before the first node started on it.
    pub async fn master_token(
        &self,
        kek: &crate::crypto::KeyEncryptionKey,
    ) -> Result<Option<String>, StoreError> {
        let conn = self.conn().await?;
        Ok(keys::load(&conn, kek).await?.map(|s| s.master_token))
    }

    pub(crate) async fn shared_keys(
        &self,
        kek: &crate::crypto::KeyEncryptionKey,
        mint_master: impl FnOnce(&crate::crypto::Keys) -> String + Send,
    ) -> Result<keys::Shared, StoreError> {
        let conn = self.conn().await?;
        with_setup_lock(&conn, keys::load_or_create(&conn, kek, mint_master)).await
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Runs `work` holding the session advisory lock [`SETUP_LOCK`], and
/// releases it whether `work` succeeds or not.
async fn with_setup_lock<T>(
    conn: &Object,
    work: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    conn.execute("SELECT pg_advisory_lock($1)", &[&SETUP_LOCK])
        .await
        .map_err(db)?;
    let result = work.await;
    let unlocked = conn
        .execute("SELECT pg_advisory_unlock($1)", &[&SETUP_LOCK])
        .await
        .map_err(db);
    let value = result?;
    unlocked?;
    Ok(value)
}

async fn migrate(conn: &Object) -> Result<(), StoreError> {
    conn.batch_execute(
        "CREATE TABLE IF NOT EXISTS extend_schema (version INT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .await
    .map_err(db)?;
    let done: i32 = conn
        .query_one("SELECT COALESCE(MAX(version), 0) FROM extend_schema", &[])
        .await
        .map_err(db)?
        .get(0);
    let done = usize::try_from(done).unwrap_or(0);
    if done > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {done}, newer than this host knows ({}); use a newer extend-host",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        // A migration and its record commit together or not at all.
        conn.batch_execute("BEGIN").await.map_err(db)?;
        let applied = async {
            conn.batch_execute(sql).await?;
            conn.execute(
                "INSERT INTO extend_schema (version, applied_at) VALUES ($1, $2)",
                &[&(i as i32 + 1), &now()],
            )
            .await?;
            conn.batch_execute("COMMIT").await
        }
        .await;
        if let Err(e) = applied {
            let _ = conn.batch_execute("ROLLBACK").await;
            return Err(StoreError::Database(format!(
                "migration {} failed: {}",
                i + 1,
                db(e)
            )));
        }
    }
    Ok(())
}

const COLUMNS: &str = "container, name, code, secrets, meta::text, token, created_at, updated_at";

fn row(r: &tokio_postgres::Row) -> Result<StoredWebtask, StoreError> {
    let container: String = r.get(0);
    let name: String = r.get(1);
    let meta: String = r.get(4);
    let meta = serde_json::from_str(&meta)
        .map_err(|e| StoreError::Corrupt(format!("meta of {container}/{name}: {e}")))?;
    Ok(StoredWebtask {
        container,
        name,
        code: r.get(2),
        sealed_secrets: r.get(3),
        meta,
        token: r.get(5),
        created_at: r.get(6),
        updated_at: r.get(7),
        deployment: crate::store::Deployment::default(),
        change_id: 0,
    })
}

/// Takes the change-log lock; held until commit, so ids are taken in commit order.
const CHANGE_LOCK_SQL: &str = "SELECT pg_advisory_xact_lock($1)";

/// Appends a webtask write to the change log, prunes it, and announces the
/// change (the notification goes out at commit): one statement, after
/// [`CHANGE_LOCK_SQL`]. Parameters: container, name, deleted, time, rows
/// kept, channel.
const LOG_CHANGE_SQL: &str = "WITH c AS (
        INSERT INTO changes (container, name, deleted, at) VALUES ($1, $2, $3, $4) RETURNING id
    ), pruned AS (
        DELETE FROM changes WHERE id <= (SELECT id FROM c) - $5
    )
    SELECT c.id, pg_notify($6, json_build_object(
        'kind', 'webtask', 'id', c.id, 'container', $1::text, 'name', $2::text, 'deleted', $3::boolean
    )::text) FROM c";

/// Logs and announces a webtask write in its transaction (see [`LOG_CHANGE_SQL`]).
async fn log_change(
    tx: &deadpool_postgres::Transaction<'_>,
    container: &str,
    name: &str,
    deleted: bool,
) -> Result<WebtaskChange, tokio_postgres::Error> {
    let (lock, log) = futures_util::future::try_join(
        tx.prepare_cached(CHANGE_LOCK_SQL),
        tx.prepare_cached(LOG_CHANGE_SQL),
    )
    .await?;
    let (_, row) = futures_util::future::try_join(
        tx.execute(&lock, &[&CHANGE_LOCK]),
        tx.query_one(&log, &change_params(&container, &name, &deleted, &now())),
    )
    .await?;
    Ok(WebtaskChange::new(
        row.get::<_, i64>(0) as u64,
        container.to_owned(),
        name.to_owned(),
        deleted,
    ))
}

/// Rows the change log keeps, as a statement parameter.
use super::change_log::CHANGE_LOG_ROWS;

fn change_params<'a>(
    container: &'a &'a str,
    name: &'a &'a str,
    deleted: &'a bool,
    at: &'a i64,
) -> [&'a (dyn tokio_postgres::types::ToSql + Sync); 6] {
    [
        container,
        name,
        deleted,
        at,
        &CHANGE_LOG_ROWS,
        &CHANGES_CHANNEL,
    ]
}

/// Creates or replaces a webtask.
const UPSERT_SQL: &str =
    "INSERT INTO webtasks (container, name, code, secrets, meta, token, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, $7, $7)
     ON CONFLICT (container, name) DO UPDATE SET
        code = excluded.code, secrets = excluded.secrets, meta = excluded.meta,
        token = excluded.token, updated_at = excluded.updated_at
     RETURNING created_at";

/// Adds a version; the upsert's row lock orders concurrent writers of one webtask.
const VERSION_SQL: &str = "INSERT INTO webtask_versions (container, name, version, code, meta, secrets, deployed_by, deployed_at)
     SELECT $1, $2, COALESCE(MAX(version), 0) + 1, $3, $4::text::jsonb, $5::text::jsonb, $6, $7
     FROM webtask_versions WHERE container = $1 AND name = $2";

/// Drops a container's oldest versions, other than each webtask's newest,
/// while its version histories hold more than `$2` bytes of code: the live
/// versions count first, then the others newest first.
/// Parameters: container, bytes.
const PRUNE_HISTORY_SQL: &str =
    "DELETE FROM webtask_versions WHERE container = $1 AND (name, version) IN (
    SELECT name, version FROM (
        SELECT name, version, newest,
            SUM(bytes) OVER (ORDER BY newest = 1 DESC, deployed_at DESC, version DESC, name
                ROWS UNBOUNDED PRECEDING) AS kept
        FROM (
            SELECT name, version, deployed_at, octet_length(code) AS bytes,
                ROW_NUMBER() OVER (PARTITION BY name ORDER BY version DESC) AS newest
            FROM webtask_versions WHERE container = $1) r) v
    WHERE kept > $2 AND newest > 1)";

impl PostgresStore {
    /// [`Store::put`], checking `quota` first inside the transaction.
    fn write(
        &self,
        mut w: StoredWebtask,
        quota: Option<Quota>,
    ) -> BoxFuture<'_, Result<StoredWebtask, StoreError>> {
        let this = self.clone();
        let write: BoxFuture<'static, _> = Box::pin(async move {
            let meta =
                serde_json::to_string(&w.meta).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let t = now();
            let secret_names = serde_json::to_string(&w.deployment.secret_names)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let kept = super::VERSIONS_KEPT as i64;
            let deleted = false;
            let mut conn = this.conn().await?;
            let tx = conn.transaction().await.map_err(db)?;
            if let Some(quota) = quota {
                // The container's lock, held to commit, makes check and
                // write one step across hosts; the lock and the read go in
                // one round trip.
                let (lock, usage) = futures_util::future::try_join(
                    tx.prepare_cached(QUOTA_LOCK_SQL),
                    tx.prepare_cached(QUOTA_USAGE_SQL),
                )
                .await
                .map_err(db)?;
                let (_, usage) = futures_util::future::try_join(
                    tx.execute(&lock, &[&w.container]),
                    tx.query_one(&usage, &[&w.container, &w.name]),
                )
                .await
                .map_err(db)?;
                let held = Usage::new(usage.get::<_, i64>(0) as u64, usage.get::<_, i64>(1) as u64);
                let old = usage.get::<_, Option<i64>>(2).map(|n| n as u64);
                quota.admits(&w, held, old)?;
            }
            // Prepared once per connection, then sent together: the whole
            // write is one round trip between BEGIN and COMMIT.
            let (upsert, version, prune, lock, log) = futures_util::future::try_join5(
                tx.prepare_cached(UPSERT_SQL),
                tx.prepare_cached(VERSION_SQL),
                tx.prepare_cached(sql::VERSIONS_PRUNE),
                tx.prepare_cached(CHANGE_LOCK_SQL),
                tx.prepare_cached(LOG_CHANGE_SQL),
            )
            .await
            .map_err(db)?;
            // The history's bound, when the quota sets one, in the same
            // round trip after the rest.
            let history = quota
                .map(|q| q.history_bytes)
                .filter(|b| *b < u64::MAX)
                .map(|b| b.min(i64::MAX as u64) as i64);
            let history_stmt = match history {
                Some(_) => Some(tx.prepare_cached(PRUNE_HISTORY_SQL).await.map_err(db)?),
                None => None,
            };
            let prune_history = async {
                match (&history_stmt, &history) {
                    (Some(stmt), Some(bytes)) => tx.execute(stmt, &[&w.container, bytes]).await,
                    _ => Ok(0),
                }
            };
            let ((row, _, _, _, logged), _) = futures_util::future::try_join(
                futures_util::future::try_join5(
                    tx.query_one(
                        &upsert,
                        &[
                            &w.container,
                            &w.name,
                            &w.code,
                            &w.sealed_secrets,
                            &meta,
                            &w.token,
                            &t,
                        ],
                    ),
                    tx.execute(
                        &version,
                        &[
                            &w.container,
                            &w.name,
                            &w.code,
                            &meta,
                            &secret_names,
                            &w.deployment.by,
                            &t,
                        ],
                    ),
                    tx.execute(&prune, &[&w.container, &w.name, &kept]),
                    tx.execute(&lock, &[&CHANGE_LOCK]),
                    tx.query_one(
                        &log,
                        &change_params(&w.container.as_str(), &w.name.as_str(), &deleted, &t),
                    ),
                ),
                prune_history,
            )
            .await
            .map_err(db)?;
            let created: i64 = row.get(0);
            let change = WebtaskChange::new(
                logged.get::<_, i64>(0) as u64,
                w.container.clone(),
                w.name.clone(),
                false,
            );
            tx.commit().await.map_err(db)?;
            w.created_at = created;
            w.updated_at = t;
            w.change_id = change.id;
            Ok((w, Some(change)))
        });
        announce_local(write)
    }
}

/// Serialises quota-checked writes of one container across hosts, until
/// the transaction ends. Parameter: container.
const QUOTA_LOCK_SQL: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('extend-quota:' || $1, 0))";

/// A container's usage, and the code size of the webtask being replaced
/// (NULL when it is new). Parameters: container, name.
const QUOTA_USAGE_SQL: &str = "SELECT COUNT(*), COALESCE(SUM(octet_length(code)), 0)::bigint,
     MAX(CASE WHEN name = $2 THEN octet_length(code) END)::bigint
     FROM webtasks WHERE container = $1";

/// A write's change reaches this host through `LISTEN` like every other
/// host's, in commit order, so it is not announced locally twice.
fn announce_local<T: Send + 'static>(
    write: BoxFuture<'static, Result<(T, Option<WebtaskChange>), StoreError>>,
) -> BoxFuture<'static, Result<T, StoreError>> {
    Box::pin(async move { Ok(write.await?.0) })
}

#[cfg(test)]
mod tests {
    use super::conn::parse_change;
    use super::*;

    #[test]
    fn change_payloads_round_trip_and_urls_lose_their_password() {
        for change in [
            Change::Webtask(WebtaskChange::new(7, "acme".into(), "x".into(), true)),
            Change::Revoked { jti: "j".into() },
        ] {
            assert_eq!(parse_change(&change_payload(&change)), Some(change));
        }
        assert_eq!(parse_change("{\"kind\":\"other\"}"), None);
        assert_eq!(
            redact("postgres://u:secret@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(redact("postgres://u@db/x"), "postgres://u@db/x");
    }
}
