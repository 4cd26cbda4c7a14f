//! [`Recordings`] on the SQLite store.

use super::*;
use crate::store::Recordings;

impl Recordings for SqliteStore {
    fn record_input<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
        sealed: Vec<u8>,
        keep: u32,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let (c, n) = (container.to_owned(), name.to_owned());
        self.with(move |conn| {
            let tx = conn.transaction().map_err(db)?;
            let seq: i64 = tx
                .query_row(
                    "INSERT INTO recorded_inputs (container, name, seq, recorded_at, input)
                     SELECT ?1, ?2, COALESCE(MAX(seq), 0) + 1, ?3, ?4 FROM recorded_inputs
                     WHERE container = ?1 AND name = ?2 RETURNING seq",
                    params![c, n, now(), sealed],
                    |r| r.get(0),
                )
                .map_err(db)?;
            tx.execute(sql::RECORDINGS_TRIM, params![c, n, seq - i64::from(keep)])
                .map_err(db)?;
            tx.commit().map_err(db)
        })
    }

    fn recorded_inputs<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<crate::store::RecordedInput>, StoreError>> {
        let (c, n) = (container.to_owned(), name.to_owned());
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(sql::RECORDINGS_NEWEST_FIRST)
                .map_err(db)?;
            let rows = stmt
                .query_map(params![c, n], |r| {
                    Ok(crate::store::RecordedInput::new(r.get(0)?, r.get(1)?))
                })
                .map_err(db)?;
            rows.map(|r| r.map_err(db)).collect()
        })
    }
}
