//! [`History`] on the PostgreSQL store.

use super::*;
use crate::store::History;

impl History for PostgresStore {
    fn versions<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<crate::store::WebtaskVersion>, StoreError>> {
        Box::pin(async move {
            self.reader().await?.query(
                "SELECT version, code, meta::text, secrets::text, deployed_by, deployed_at FROM webtask_versions
                 WHERE container = $1 AND name = $2 ORDER BY version DESC",
                &[&container, &name],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|r| {
                crate::store::change_log::version_row(
                    r.get(0),
                    r.get(1),
                    r.get::<_, String>(2).as_str(),
                    r.get::<_, String>(3).as_str(),
                    r.get(4),
                    r.get(5),
                )
            })
            .collect()
        })
    }
}
