//! [`Catalogs`] on the PostgreSQL store.

use super::*;
use crate::store::Catalogs;

impl Catalogs for PostgresStore {
    fn publish_catalog(
        &self,
        document: String,
    ) -> BoxFuture<'_, Result<StoredCatalog, StoreError>> {
        Box::pin(async move {
            let t = now();
            let mut conn = self.conn().await?;
            let tx = conn.transaction().await.map_err(db)?;
            // Two nodes publishing at once take turns for the next version.
            tx.batch_execute("LOCK TABLE catalogs IN EXCLUSIVE MODE")
                .await
                .map_err(db)?;
            let version: i64 = tx
                .query_one(sql::CATALOG_PUBLISH, &[&document, &t])
                .await
                .map_err(db)?
                .get(0);
            tx.execute(sql::CATALOGS_BEFORE_DELETE, &[&(version - 1)])
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(StoredCatalog::new(version as u64, document, t))
        })
    }

    fn catalogs(&self) -> BoxFuture<'_, Result<Vec<StoredCatalog>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.reader().await?;
            Ok(conn
                .query(sql::CATALOGS_LAST_TWO, &[])
                .await
                .map_err(db)?
                .iter()
                .map(|r| StoredCatalog::new(r.get::<_, i64>(0) as u64, r.get(1), r.get(2)))
                .collect())
        })
    }
}
