//! [`History`] on the SQLite store.

use super::*;
use crate::store::History;

impl History for SqliteStore {
    fn versions<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<WebtaskVersion>, StoreError>> {
        let (c, n) = (container.to_owned(), name.to_owned());
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT version, code, meta, secrets, deployed_by, deployed_at FROM webtask_versions
                     WHERE container = ?1 AND name = ?2 ORDER BY version DESC",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map(params![c, n], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, i64>(5)?,
                    ))
                })
                .map_err(db)?;
            rows.map(|r| {
                let (version, code, meta, secrets, by, at) = r.map_err(db)?;
                version_row(version, code, &meta, &secrets, by, at)
            })
            .collect()
        })
    }
}
