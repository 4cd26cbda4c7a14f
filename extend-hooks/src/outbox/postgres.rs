//! The PostgreSQL outbox, which several platform replicas share.
//!
//! Recording runs on a thread of its own with its own connection, so that
//! the (synchronous) async-point call can wait for the commit without
//! blocking on the caller's runtime; it commits every recording waiting at
//! that moment with one `INSERT … SELECT FROM UNNEST` (group commit). The
//! other operations use a small pool on the caller's runtime. Due
//! invocations are taken `FOR UPDATE SKIP LOCKED`, so replicas never take
//! the same one while its lease runs.

use std::sync::mpsc;

use deadpool_postgres::{Manager, Pool};
use tokio_postgres::NoTls;

use super::{
    Attempt, BoxFuture, Committed, DeadLetter, DeadLetterFilter, NewRecord, OutboxError, Pending,
    Record, Refused, Store, history, history_text, now_ms,
};

/// Recordings committed together at most.
const GROUP: usize = 1024;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS extend_outbox (
    id          TEXT    PRIMARY KEY,
    point       TEXT    NOT NULL,
    container   TEXT    NOT NULL,
    body        BYTEA   NOT NULL,
    created_ms  BIGINT  NOT NULL,
    dead        BOOLEAN NOT NULL DEFAULT false,
    died_ms     BIGINT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_ms     BIGINT  NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT  NOT NULL DEFAULT 0,
        history     TEXT    NOT NULL DEFAULT '[]',
    trace_id    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS extend_outbox_due ON extend_outbox (dead, next_ms);
";

type Row = NewRecord;
type Reply = Committed;

pub(crate) struct PostgresOutbox {
    writer: mpsc::Sender<(Row, Reply)>,
    pool: Pool,
}

fn db(what: &'static str) -> impl Fn(tokio_postgres::Error) -> OutboxError {
    move |e| {
        let detail = e.as_db_error().map_or_else(
            || e.to_string(),
            |d| format!("{} (SQLSTATE {})", d.message(), d.code().code()),
        );
        OutboxError::new(format!("{what}: {detail}")).caused_by(e)
    }
}

impl PostgresOutbox {
    /// Connects, creates the table if needed, and starts the writer. Blocks
    /// until the writer's connection is up, so that a wrong URL is a build error.
    pub(crate) fn open(url: &str) -> Result<Self, OutboxError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| OutboxError::new(format!("the PostgreSQL URL is not valid: {e}")))?;
        let pool = Pool::builder(Manager::new(config.clone(), NoTls))
            .max_size(8)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| OutboxError::new(format!("building the connection pool: {e}")))?;
        let (writer, rx) = mpsc::channel::<(Row, Reply)>();
        let (ready_tx, ready) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("extend-outbox-pg".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx
                            .send(Err(OutboxError::new(format!("starting the writer: {e}"))));
                        return;
                    }
                };
                runtime.block_on(writer_loop(config, rx, ready_tx));
            })
            .map_err(|e| OutboxError::new(format!("starting the outbox thread: {e}")))?;
        ready.recv().map_err(|_| stopped())??;
        Ok(PostgresOutbox { writer, pool })
    }

    async fn conn(&self) -> Result<deadpool_postgres::Object, OutboxError> {
        self.pool
            .get()
            .await
            .map_err(|e| OutboxError::new(format!("connecting to PostgreSQL: {e}")))
    }
}

fn stopped() -> OutboxError {
    OutboxError::new("the outbox thread has stopped")
}

async fn writer_loop(
    config: tokio_postgres::Config,
    rx: mpsc::Receiver<(Row, Reply)>,
    ready: mpsc::SyncSender<Result<(), OutboxError>>,
) {
    let client = match connect(&config).await {
        Ok(c) => {
            let _ = ready.send(Ok(()));
            c
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut client = Some(client);
    // Blocking receives on this thread are fine: it serves nothing else.
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < GROUP {
            match rx.try_recv() {
                Ok(more) => group.push(more),
                Err(_) => break,
            }
        }
        let result = match client.as_ref() {
            Some(c) => insert(c, &group).await,
            None => Err(OutboxError::new("the connection was lost")),
        };
        if result.is_err() {
            // Reconnect for the next group; this one is answered with the error.
            client = connect(&config).await.ok();
        }
        for (_, reply) in group {
            reply.send(result.clone());
        }
    }
}

/// How long connecting (TCP and PostgreSQL's startup) and creating the
/// table may take: a server that accepts connections and never answers is
/// an error at `build()`, not a hang.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn connect(config: &tokio_postgres::Config) -> Result<tokio_postgres::Client, OutboxError> {
    tokio::time::timeout(CONNECT_TIMEOUT, connect_now(config))
        .await
        .map_err(|_| {
            OutboxError::new(format!(
                "connecting to PostgreSQL: no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            ))
        })?
}

async fn connect_now(
    config: &tokio_postgres::Config,
) -> Result<tokio_postgres::Client, OutboxError> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| OutboxError::new(format!("connecting to PostgreSQL: {e}")))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    // Several replicas may start at once: one creates the table. The
    // statements of one simple query are one transaction, and the lock is
    // the transaction's, so it is held until the table is committed (a
    // session lock released before the commit let a second replica create
    // the table's type again).
    client
        .batch_execute(&format!(
            "SELECT pg_advisory_xact_lock(hashtext('extend_outbox'));{SCHEMA}"
        ))
        .await
        .map_err(db("creating the outbox table"))?;
    Ok(client)
}

async fn insert(
    client: &tokio_postgres::Client,
    group: &[(Row, Reply)],
) -> Result<(), OutboxError> {
    let mut ids = Vec::with_capacity(group.len());
    let mut points = Vec::with_capacity(group.len());
    let mut containers = Vec::with_capacity(group.len());
    let mut bodies = Vec::with_capacity(group.len());
    let mut traces = Vec::with_capacity(group.len());
    for ((id, point, container, body, trace), _) in group {
        ids.push(id.as_str());
        points.push(point.as_str());
        containers.push(container.as_str());
        bodies.push(body.as_ref());
        traces.push(trace.as_str());
    }
    client
        .execute(
            "INSERT INTO extend_outbox (id, point, container, body, created_ms, next_ms, trace_id)
             SELECT u.id, u.point, u.container, u.body, $5, $5, u.trace
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bytea[], $6::text[])
                  AS u(id, point, container, body, trace)",
            &[&ids, &points, &containers, &bodies, &now_ms(), &traces],
        )
        .await
        .map(drop)
        .map_err(db("recording"))
}

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or_default()
}

const FILTER: &str = "($1::text IS NULL OR point = $1) AND ($2::text IS NULL OR container = $2) AND ($3::text IS NULL OR id = $3)";

impl Store for PostgresOutbox {
    fn enqueue(&self, row: NewRecord, reply: Committed) -> Result<(), Refused> {
        self.writer.send((row, reply)).map_err(|_| stopped().into())
    }

    fn lease<'a>(
        &'a self,
        owner: &'a str,
        now_ms: i64,
        until_ms: i64,
        limit: usize,
        skip: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Record>, OutboxError>> {
        Box::pin(async move {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = self
                .conn()
                .await?
                .query(
                    "UPDATE extend_outbox SET lease_owner = $1, lease_until = $3
                     WHERE id IN (SELECT id FROM extend_outbox
                                  WHERE NOT dead AND next_ms <= $2 AND lease_until <= $2
                                    AND container <> ALL($5::text[])
                                  ORDER BY next_ms LIMIT $4 FOR UPDATE SKIP LOCKED)
                     RETURNING id, point, container, body, created_ms, attempts, history, trace_id",
                    &[&owner, &now_ms, &until_ms, &limit, &skip],
                )
                .await
                .map_err(db("leasing"))?;
            Ok(rows
                .iter()
                .map(|r| Record {
                    id: r.get(0),
                    point: r.get(1),
                    container: r.get(2),
                    body: r.get::<_, Vec<u8>>(3).into(),
                    created_ms: r.get(4),
                    attempts: count(r.get(5)),
                    history: history(r.get(6)),
                    trace_id: r.get(7),
                })
                .collect())
        })
    }

    fn done<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), OutboxError>> {
        Box::pin(async move {
            self.conn()
                .await?
                .execute("DELETE FROM extend_outbox WHERE id = $1", &[&id])
                .await
                .map(drop)
                .map_err(db("removing a delivered invocation"))
        })
    }

    fn retry<'a>(
        &'a self,
        id: &'a str,
        next_ms: i64,
        h: &'a [Attempt],
    ) -> BoxFuture<'a, Result<(), OutboxError>> {
        Box::pin(async move {
            self.conn()
                .await?
                .execute(
                    "UPDATE extend_outbox SET attempts = attempts + 1, history = $2, next_ms = $3,
                        lease_owner = NULL, lease_until = 0 WHERE id = $1",
                    &[&id, &history_text(h), &next_ms],
                )
                .await
                .map(drop)
                .map_err(db("scheduling a retry"))
        })
    }

    fn renew<'a>(
        &'a self,
        owner: &'a str,
        ids: &'a [String],
        until_ms: i64,
    ) -> BoxFuture<'a, Result<(), OutboxError>> {
        Box::pin(async move {
            self.conn()
                .await?
                .execute(
                    "UPDATE extend_outbox SET lease_until = $3
                     WHERE lease_owner = $1 AND id = ANY($2::text[])",
                    &[&owner, &ids, &until_ms],
                )
                .await
                .map(drop)
                .map_err(db("renewing leases"))
        })
    }

    fn postpone<'a>(&'a self, id: &'a str, next_ms: i64) -> BoxFuture<'a, Result<(), OutboxError>> {
        Box::pin(async move {
            self.conn()
                .await?
                .execute(
                    "UPDATE extend_outbox SET next_ms = $2, lease_owner = NULL, lease_until = 0
                     WHERE id = $1",
                    &[&id, &next_ms],
                )
                .await
                .map(drop)
                .map_err(db("postponing"))
        })
    }

    fn bury<'a>(
        &'a self,
        id: &'a str,
        now_ms: i64,
        h: &'a [Attempt],
    ) -> BoxFuture<'a, Result<(), OutboxError>> {
        Box::pin(async move {
            self.conn()
                .await?
                .execute(
                    "UPDATE extend_outbox SET dead = true, died_ms = $2, history = $3, attempts = attempts + 1,
                        lease_owner = NULL, lease_until = 0 WHERE id = $1",
                    &[&id, &now_ms, &history_text(h)],
                )
                .await
                .map(drop)
                .map_err(db("recording a dead letter"))
        })
    }

    fn release<'a>(&'a self, owner: &'a str) -> BoxFuture<'a, Result<(), OutboxError>> {
        Box::pin(async move {
            self.conn()
                .await?
                .execute(
                    "UPDATE extend_outbox SET lease_owner = NULL, lease_until = 0
                     WHERE lease_owner = $1 AND NOT dead",
                    &[&owner],
                )
                .await
                .map(drop)
                .map_err(db("handing back leases"))
        })
    }

    fn pending(&self) -> BoxFuture<'_, Result<Vec<Pending>, OutboxError>> {
        Box::pin(async move {
            let rows = self
                .conn()
                .await?
                .query(
                    "SELECT id, point, container, attempts, created_ms, next_ms FROM extend_outbox
                     WHERE NOT dead ORDER BY created_ms, id",
                    &[],
                )
                .await
                .map_err(db("listing pending invocations"))?;
            Ok(rows
                .iter()
                .map(|r| Pending {
                    id: r.get(0),
                    point: r.get(1),
                    container: r.get(2),
                    attempts: count(r.get(3)),
                    created_ms: r.get(4),
                    next_ms: r.get(5),
                })
                .collect())
        })
    }

    fn dead<'a>(
        &'a self,
        f: &'a DeadLetterFilter,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, OutboxError>> {
        Box::pin(async move {
            let rows = self
                .conn()
                .await?
                .query(
                    &format!(
                        "SELECT id, point, container, body, created_ms, died_ms, history FROM extend_outbox
                         WHERE dead AND {FILTER} ORDER BY created_ms, id"
                    ),
                    &[&f.point, &f.container, &f.id],
                )
                .await
                .map_err(db("listing dead letters"))?;
            Ok(rows
                .iter()
                .map(|r| DeadLetter {
                    id: r.get(0),
                    point: r.get(1),
                    container: r.get(2),
                    body: r.get(3),
                    created_ms: r.get(4),
                    died_ms: r.get::<_, Option<i64>>(5).unwrap_or_default(),
                    attempts: history(r.get(6)),
                })
                .collect())
        })
    }

    fn revive<'a>(
        &'a self,
        f: &'a DeadLetterFilter,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<u64, OutboxError>> {
        Box::pin(async move {
            self.conn()
                .await?
                .execute(
                    &format!(
                        "UPDATE extend_outbox SET dead = false, died_ms = NULL, attempts = 0, next_ms = $4
                         WHERE dead AND {FILTER}"
                    ),
                    &[&f.point, &f.container, &f.id, &now_ms],
                )
                .await
                .map_err(db("replaying dead letters"))
        })
    }

    fn purge(&self, before_ms: i64) -> BoxFuture<'_, Result<u64, OutboxError>> {
        Box::pin(async move {
            self.conn()
                .await?
                .execute(
                    "DELETE FROM extend_outbox WHERE dead AND died_ms < $1",
                    &[&before_ms],
                )
                .await
                .map_err(db("purging dead letters"))
        })
    }

    fn depth(&self) -> BoxFuture<'_, Result<u64, OutboxError>> {
        Box::pin(async move {
            let row = self
                .conn()
                .await?
                .query_one("SELECT COUNT(*) FROM extend_outbox WHERE NOT dead", &[])
                .await
                .map_err(db("counting pending invocations"))?;
            Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
        })
    }

    fn next_due(&self) -> BoxFuture<'_, Result<Option<i64>, OutboxError>> {
        Box::pin(async move {
            let row = self
                .conn()
                .await?
                .query_one(
                    "SELECT MIN(GREATEST(next_ms, lease_until)) FROM extend_outbox WHERE NOT dead",
                    &[],
                )
                .await
                .map_err(db("finding the next due invocation"))?;
            Ok(row.get::<_, Option<i64>>(0))
        })
    }
}
