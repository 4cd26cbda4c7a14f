//! [`Settings`] on the PostgreSQL store.

use super::*;
use crate::store::Settings;

impl Settings for PostgresStore {
    fn container_egress<'a>(
        &'a self,
        container: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.reader().await?;
            let row = conn
                .query_opt(sql::CONTAINER_EGRESS, &[&container])
                .await
                .map_err(db)?;
            match row {
                Some(r) => serde_json::from_str(&r.get::<_, String>(0))
                    .map_err(|e| StoreError::Corrupt(e.to_string())),
                None => Ok(Vec::new()),
            }
        })
    }

    fn set_container_egress<'a>(
        &'a self,
        container: &'a str,
        allow: Vec<String>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let conn = self.conn().await?;
            if allow.is_empty() {
                conn.execute(sql::CONTAINER_EGRESS_DELETE, &[&container])
                    .await
                    .map_err(db)?;
            } else {
                let json = serde_json::to_string(&allow).unwrap_or_else(|_| "[]".to_owned());
                conn.execute(sql::CONTAINER_EGRESS_SET, &[&container, &json, &now()])
                    .await
                    .map_err(db)?;
            }
            Ok(())
        })
    }
}
