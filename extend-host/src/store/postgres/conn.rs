//! What the PostgreSQL store's parts share: the channel names, the pool's
//! size, how driver errors become [`StoreError`]s, the clock, and the JSON a
//! change notification carries.

use crate::store::{Change, StoreError, WebtaskChange};

/// Channel of webtask changes and revocations.
pub(super) const CHANGES_CHANNEL: &str = "extend_changes";
/// Channel of log records.
pub(super) const LOGS_CHANNEL: &str = "extend_logs";

/// Connections in the pool of one host.
pub(super) const POOL_SIZE: usize = 16;

/// How long a request waits for a connection of the pool.
pub(super) const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

#[allow(clippy::needless_pass_by_value)] // used as `map_err(db)`
pub(super) fn db(e: tokio_postgres::Error) -> StoreError {
    // The server's message (and its detail) says more than the driver's summary.
    match e.as_db_error() {
        Some(d) => StoreError::Database(match d.detail() {
            Some(detail) => format!("{}: {detail}", d.message()),
            None => d.message().to_owned(),
        }),
        None => StoreError::Database(e.to_string()),
    }
}

pub(super) fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => db(e),
        deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => {
            StoreError::Busy(format!(
                "every database connection of this host ({POOL_SIZE}) stayed busy for {} s",
                POOL_WAIT.as_secs()
            ))
        }
        other => StoreError::Database(format!("no database connection: {other}")),
    }
}

/// Whether the server closed the connection a statement failed on (a
/// restarted, terminated or shut-down backend): a read may be repeated on
/// another connection.
pub(super) fn lost(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    e.is_closed()
        || e.code().is_some_and(|c| {
            [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
            ]
            .contains(c)
        })
}

pub(super) fn now() -> i64 {
    crate::time::unix_now() as i64
}

/// The JSON a change notification carries.
pub(super) fn change_payload(change: &Change) -> String {
    match change {
        Change::Webtask(w) => serde_json::json!({
            "kind": "webtask", "id": w.id, "container": w.container, "name": w.name, "deleted": w.deleted,
        }),
        Change::Revoked { jti } => serde_json::json!({ "kind": "revoked", "jti": jti }),
        Change::Missed => serde_json::json!({ "kind": "missed" }),
    }
    .to_string()
}

/// Reads what [`change_payload`] wrote; `None` for anything else.
pub(super) fn parse_change(payload: &str) -> Option<Change> {
    let v: serde_json::Value = serde_json::from_str(payload).ok()?;
    let text = |k: &str| v.get(k)?.as_str().map(str::to_owned);
    match v.get("kind")?.as_str()? {
        "webtask" => Some(Change::Webtask(WebtaskChange::new(
            v.get("id")?.as_u64()?,
            text("container")?,
            text("name")?,
            v.get("deleted")?.as_bool()?,
        ))),
        "revoked" => Some(Change::Revoked { jti: text("jti")? }),
        _ => None,
    }
}
