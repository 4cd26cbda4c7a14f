//! [`Catalogs`] on the SQLite store.

use super::*;
use crate::store::Catalogs;

impl Catalogs for SqliteStore {
    fn publish_catalog(
        &self,
        document: String,
    ) -> BoxFuture<'_, Result<StoredCatalog, StoreError>> {
        self.with(move |conn| {
            let t = now();
            let tx = conn.transaction().map_err(db)?;
            let version: i64 = tx
                .query_row(sql::CATALOG_PUBLISH, params![document, t], |r| r.get(0))
                .map_err(db)?;
            tx.execute(sql::CATALOGS_BEFORE_DELETE, params![version - 1])
                .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(StoredCatalog::new(version as u64, document, t))
        })
    }

    fn catalogs(&self) -> BoxFuture<'_, Result<Vec<StoredCatalog>, StoreError>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(sql::CATALOGS_LAST_TWO).map_err(db)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(StoredCatalog::new(
                        r.get::<_, i64>(0)? as u64,
                        r.get(1)?,
                        r.get(2)?,
                    ))
                })
                .map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }
}
