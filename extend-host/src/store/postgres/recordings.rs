//! [`Recordings`] on the PostgreSQL store.

use super::*;
use crate::store::Recordings;

impl Recordings for PostgresStore {
    fn record_input<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
        sealed: Vec<u8>,
        keep: u32,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let tx = conn.transaction().await.map_err(db)?;
            // Two hosts recording the same webtask at once may pick the same
            // sequence number; one of those two recordings is then dropped.
            let seq: Option<i64> = tx
                .query_opt(
                    "INSERT INTO recorded_inputs (container, name, seq, recorded_at, input)
                     SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4 FROM recorded_inputs
                     WHERE container = $1 AND name = $2
                     ON CONFLICT DO NOTHING RETURNING seq",
                    &[&container, &name, &now(), &sealed],
                )
                .await
                .map_err(db)?
                .map(|r| r.get(0));
            if let Some(seq) = seq {
                tx.execute(
                    sql::RECORDINGS_TRIM,
                    &[&container, &name, &(seq - i64::from(keep))],
                )
                .await
                .map_err(db)?;
            }
            tx.commit().await.map_err(db)
        })
    }

    fn recorded_inputs<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<crate::store::RecordedInput>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.reader().await?;
            let rows = conn
                .query(sql::RECORDINGS_NEWEST_FIRST, &[&container, &name])
                .await
                .map_err(db)?;
            Ok(rows
                .iter()
                .map(|r| crate::store::RecordedInput::new(r.get(0), r.get(1)))
                .collect())
        })
    }
}
