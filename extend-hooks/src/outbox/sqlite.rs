//! The SQLite outbox: one file, one writer thread that owns the connection.
//!
//! Recording an invocation is a message to that thread, which commits every
//! recording waiting at that moment in one transaction (group commit) and
//! then answers each caller: a burst of calls costs one commit, not one each.
//! The other operations run on the same thread, in order.

use std::path::Path;
use std::sync::mpsc;

use rusqlite::{Connection, OptionalExtension, params};

use super::{
    Attempt, BoxFuture, Committed, DeadLetter, DeadLetterFilter, NewRecord, OutboxError, Pending,
    Record, Refused, Store, history, history_text, now_ms,
};

/// Recordings committed together at most.
const GROUP: usize = 1024;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

enum Op {
    Enqueue { row: Row, reply: Committed },
    Run(Job),
}

pub(crate) struct SqliteOutbox {
    ops: mpsc::Sender<Op>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS extend_outbox (
    id          TEXT    PRIMARY KEY,
    point       TEXT    NOT NULL,
    container   TEXT    NOT NULL,
    body        BLOB    NOT NULL,
    created_ms  INTEGER NOT NULL,
    dead        INTEGER NOT NULL DEFAULT 0,
    died_ms     INTEGER,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_ms     INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER NOT NULL DEFAULT 0,
        history     TEXT    NOT NULL DEFAULT '[]',
    trace_id    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS extend_outbox_due ON extend_outbox (dead, next_ms);
";

fn db(what: &str) -> impl Fn(rusqlite::Error) -> OutboxError + '_ {
    move |e| OutboxError::new(format!("{what}: {e}")).caused_by(e)
}

impl SqliteOutbox {
    pub(crate) fn open(path: &Path, fsync: bool) -> Result<Self, OutboxError> {
        let mut conn = Connection::open(path).map_err(|e| {
            OutboxError::new(format!("opening {}: {e}", path.display())).caused_by(e)
        })?;
        // One process owns the file (exclusive locking mode, taken by the
        // first write below and kept): so every lease in it is a dead
        // process's, handed back at once instead of after the lease time.
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
            .and_then(|()| conn.busy_timeout(std::time::Duration::from_secs(5)))
            .and_then(|()| conn.pragma_update(None, "journal_mode", "WAL"))
            .and_then(|()| {
                conn.pragma_update(None, "synchronous", if fsync { "FULL" } else { "NORMAL" })
            })
            .and_then(|()| conn.execute_batch(SCHEMA))
            .map_err(|e| {
                let busy = matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                );
                OutboxError::new(if busy {
                    format!(
                        "{} is in use by another process: a SQLite outbox belongs to one process (use PostgreSQL for replicas)",
                        path.display()
                    )
                } else {
                    format!("preparing {}: {e}", path.display())
                })
                .caused_by(e)
            })?;
        // A damaged file is refused here, not discovered by the worker after
        // invocations were acknowledged into it.
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| OutboxError::new(format!("checking {}: {e}", path.display())))?;
        if check != "ok" {
            return Err(OutboxError::new(format!(
                "{} is damaged ({check}); move it aside to start with an empty outbox, or restore it",
                path.display()
            )));
        }
        let reclaimed = conn
            .execute(
                "UPDATE extend_outbox SET lease_owner = NULL, lease_until = 0
                 WHERE lease_owner IS NOT NULL AND dead = 0",
                [],
            )
            .map_err(|e| {
                OutboxError::new(format!("reclaiming leases in {}: {e}", path.display()))
            })?;
        if reclaimed > 0 {
            tracing::info!(reclaimed, path = %path.display(), "outbox: took back the leases of a process that stopped");
        }
        let (ops, rx) = mpsc::channel::<Op>();
        std::thread::Builder::new()
            .name("extend-outbox".into())
            .spawn(move || writer(&mut conn, &rx))
            .map_err(|e| OutboxError::new(format!("starting the outbox thread: {e}")))?;
        Ok(SqliteOutbox { ops })
    }

    /// Runs `f` on the writer thread and awaits its answer.
    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, OutboxError> + Send + 'static,
    ) -> BoxFuture<'_, Result<T, OutboxError>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.ops.send(Op::Run(Box::new(move |conn| {
            let _ = tx.send(f(conn));
        })));
        Box::pin(async move {
            sent.map_err(|_| stopped())?;
            rx.await.map_err(|_| stopped())?
        })
    }
}

fn stopped() -> OutboxError {
    OutboxError::new("the outbox thread has stopped")
}

/// The writer thread: group commits of recordings, and every other operation in turn.
fn writer(conn: &mut Connection, rx: &mpsc::Receiver<Op>) {
    let mut next = None;
    loop {
        let op = match next.take() {
            Some(op) => op,
            None => match rx.recv() {
                Ok(op) => op,
                Err(_) => return,
            },
        };
        match op {
            Op::Run(job) => job(conn),
            Op::Enqueue { row, reply } => {
                let mut group = vec![(row, reply)];
                while group.len() < GROUP {
                    match rx.try_recv() {
                        Ok(Op::Enqueue { row, reply }) => group.push((row, reply)),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let result =
                    insert(conn, &group).map_err(|e| OutboxError::new(format!("recording: {e}")));
                for (_, reply) in group {
                    reply.send(result.clone());
                }
            }
        }
    }
}

type Row = NewRecord;

fn insert(conn: &mut Connection, group: &[(Row, Committed)]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let now = now_ms();
        let mut stmt = tx.prepare_cached(
            "INSERT INTO extend_outbox (id, point, container, body, created_ms, next_ms, trace_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
        )?;
        for ((id, point, container, body, trace), _) in group {
            stmt.execute(params![id, point, container, body.as_ref(), now, trace])?;
        }
    }
    tx.commit()
}

const FILTER: &str =
    "(?1 IS NULL OR point = ?1) AND (?2 IS NULL OR container = ?2) AND (?3 IS NULL OR id = ?3)";

impl Store for SqliteOutbox {
    fn enqueue(&self, row: NewRecord, reply: Committed) -> Result<(), Refused> {
        self.ops
            .send(Op::Enqueue { row, reply })
            .map_err(|_| stopped().into())
    }

    fn lease<'a>(
        &'a self,
        owner: &'a str,
        now_ms: i64,
        until_ms: i64,
        limit: usize,
        skip: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Record>, OutboxError>> {
        let owner = owner.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let skip = serde_json::to_string(skip).unwrap_or_else(|_| "[]".to_owned());
        self.call(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "UPDATE extend_outbox SET lease_owner = ?1, lease_until = ?3
                     WHERE id IN (SELECT id FROM extend_outbox
                                  WHERE dead = 0 AND next_ms <= ?2 AND lease_until <= ?2
                                    AND container NOT IN (SELECT value FROM json_each(?5))
                                  ORDER BY next_ms LIMIT ?4)
                     RETURNING id, point, container, body, created_ms, attempts, history, trace_id",
                )
                .map_err(db("leasing"))?;
            let rows = stmt
                .query_map(params![owner, now_ms, until_ms, limit, skip], |r| {
                    Ok(Record {
                        id: r.get(0)?,
                        point: r.get(1)?,
                        container: r.get(2)?,
                        body: r.get::<_, Vec<u8>>(3)?.into(),
                        created_ms: r.get(4)?,
                        attempts: r.get(5)?,
                        history: history(&r.get::<_, String>(6)?),
                        trace_id: r.get(7)?,
                    })
                })
                .map_err(db("leasing"))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db("leasing"))
        })
    }

    fn done<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), OutboxError>> {
        let id = id.to_owned();
        self.call(move |conn| {
            conn.execute("DELETE FROM extend_outbox WHERE id = ?1", params![id])
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
        let (id, text) = (id.to_owned(), history_text(h));
        self.call(move |conn| {
            conn.execute(
                "UPDATE extend_outbox SET attempts = attempts + 1, history = ?2, next_ms = ?3,
                    lease_owner = NULL, lease_until = 0 WHERE id = ?1",
                params![id, text, next_ms],
            )
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
        let owner = owner.to_owned();
        let ids = serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned());
        self.call(move |conn| {
            conn.execute(
                "UPDATE extend_outbox SET lease_until = ?3
                 WHERE lease_owner = ?1 AND id IN (SELECT value FROM json_each(?2))",
                params![owner, ids, until_ms],
            )
            .map(drop)
            .map_err(db("renewing leases"))
        })
    }

    fn compact(&self) -> BoxFuture<'_, Result<(), OutboxError>> {
        // The file and its WAL otherwise keep the size of the largest
        // backlog they ever held.
        self.call(|conn| {
            conn.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
                .map_err(db("compacting"))
        })
    }

    fn postpone<'a>(&'a self, id: &'a str, next_ms: i64) -> BoxFuture<'a, Result<(), OutboxError>> {
        let id = id.to_owned();
        self.call(move |conn| {
            conn.execute(
                "UPDATE extend_outbox SET next_ms = ?2, lease_owner = NULL, lease_until = 0
                 WHERE id = ?1",
                params![id, next_ms],
            )
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
        let (id, text) = (id.to_owned(), history_text(h));
        self.call(move |conn| {
            conn.execute(
                "UPDATE extend_outbox SET dead = 1, died_ms = ?2, history = ?3, attempts = attempts + 1,
                    lease_owner = NULL, lease_until = 0 WHERE id = ?1",
                params![id, now_ms, text],
            )
            .map(drop)
            .map_err(db("recording a dead letter"))
        })
    }

    fn release<'a>(&'a self, owner: &'a str) -> BoxFuture<'a, Result<(), OutboxError>> {
        let owner = owner.to_owned();
        self.call(move |conn| {
            conn.execute(
                "UPDATE extend_outbox SET lease_owner = NULL, lease_until = 0
                 WHERE lease_owner = ?1 AND dead = 0",
                params![owner],
            )
            .map(drop)
            .map_err(db("handing back leases"))
        })
    }

    fn pending(&self) -> BoxFuture<'_, Result<Vec<Pending>, OutboxError>> {
        self.call(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, point, container, attempts, created_ms, next_ms FROM extend_outbox
                     WHERE dead = 0 ORDER BY created_ms, id",
                )
                .map_err(db("listing pending invocations"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(Pending {
                        id: r.get(0)?,
                        point: r.get(1)?,
                        container: r.get(2)?,
                        attempts: r.get(3)?,
                        created_ms: r.get(4)?,
                        next_ms: r.get(5)?,
                    })
                })
                .map_err(db("listing pending invocations"))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db("listing pending invocations"))
        })
    }

    fn dead<'a>(
        &'a self,
        filter: &'a DeadLetterFilter,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, OutboxError>> {
        let f = filter.clone();
        self.call(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT id, point, container, body, created_ms, died_ms, history FROM extend_outbox
                     WHERE dead = 1 AND {FILTER} ORDER BY created_ms, id"
                ))
                .map_err(db("listing dead letters"))?;
            let rows = stmt
                .query_map(params![f.point, f.container, f.id], |r| {
                    Ok(DeadLetter {
                        id: r.get(0)?,
                        point: r.get(1)?,
                        container: r.get(2)?,
                        body: r.get(3)?,
                        created_ms: r.get(4)?,
                        died_ms: r.get::<_, Option<i64>>(5)?.unwrap_or_default(),
                        attempts: history(&r.get::<_, String>(6)?),
                    })
                })
                .map_err(db("listing dead letters"))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db("listing dead letters"))
        })
    }

    fn revive<'a>(
        &'a self,
        filter: &'a DeadLetterFilter,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<u64, OutboxError>> {
        let f = filter.clone();
        self.call(move |conn| {
            conn.execute(
                &format!(
                    "UPDATE extend_outbox SET dead = 0, died_ms = NULL, attempts = 0, next_ms = ?4
                     WHERE dead = 1 AND {FILTER}"
                ),
                params![f.point, f.container, f.id, now_ms],
            )
            .map(|n| n as u64)
            .map_err(db("replaying dead letters"))
        })
    }

    fn purge(&self, before_ms: i64) -> BoxFuture<'_, Result<u64, OutboxError>> {
        self.call(move |conn| {
            conn.execute(
                "DELETE FROM extend_outbox WHERE dead = 1 AND died_ms < ?1",
                params![before_ms],
            )
            .map(|n| n as u64)
            .map_err(db("purging dead letters"))
        })
    }

    fn depth(&self) -> BoxFuture<'_, Result<u64, OutboxError>> {
        self.call(|conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM extend_outbox WHERE dead = 0",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(db("counting pending invocations"))
        })
    }

    fn next_due(&self) -> BoxFuture<'_, Result<Option<i64>, OutboxError>> {
        self.call(|conn| {
            conn.query_row(
                "SELECT MIN(MAX(next_ms, lease_until)) FROM extend_outbox WHERE dead = 0",
                [],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(db("finding the next due invocation"))
        })
    }
}
