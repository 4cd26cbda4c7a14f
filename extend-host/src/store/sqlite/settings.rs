//! [`Settings`] on the SQLite store.

use super::*;
use crate::store::Settings;

impl Settings for SqliteStore {
    fn container_egress<'a>(
        &'a self,
        container: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        let container = container.to_owned();
        self.read(move |conn| {
            let allow: Option<String> = conn
                .prepare_cached(sql::CONTAINER_EGRESS)
                .and_then(|mut s| s.query_row(params![container], |r| r.get(0)).optional())
                .map_err(db)?;
            allow
                .map(|a| serde_json::from_str(&a).map_err(|e| StoreError::Corrupt(e.to_string())))
                .unwrap_or(Ok(Vec::new()))
        })
    }

    fn set_container_egress<'a>(
        &'a self,
        container: &'a str,
        allow: Vec<String>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let container = container.to_owned();
        self.with(move |conn| {
            if allow.is_empty() {
                conn.execute(sql::CONTAINER_EGRESS_DELETE, params![container])
                    .map_err(db)?;
            } else {
                let json = serde_json::to_string(&allow).unwrap_or_else(|_| "[]".to_owned());
                conn.execute(sql::CONTAINER_EGRESS_SET, params![container, json, now()])
                    .map_err(db)?;
            }
            Ok(())
        })
    }
}
