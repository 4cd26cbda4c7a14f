//! The published catalog's rules, which the domain checks extensions against.

use crate::error::ApiError;
use crate::store::{Store, StoredCatalog};
use bytes::Bytes;
use serde_json::{Value, json};
use std::sync::Arc;

pub(crate) use extend_wire::catalog::point_names;

/// How long a host serves the catalog it read before reading it again (a
/// catalog published on another node shows within this; one published on
/// this node shows at once).
const CATALOG_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// The published catalog as this host serves it: read and built once, and
/// shared by every request while fresh, so that many readers of a 4 MiB
/// catalog hold one copy, not one each.
#[derive(Default)]
pub(crate) struct CatalogCache {
    // A tokio mutex, held across the store read: concurrent misses make one
    // read, not one each.
    slot: tokio::sync::Mutex<Option<Arc<Served>>>,
}

/// One read of the store's catalogs, ready to serve.
pub(crate) struct Served {
    at: std::time::Instant,
    /// The `GET /api/catalog` answer; `None` before the first publish.
    pub(crate) answer: Option<Bytes>,
    /// The current document.
    pub(crate) current: Option<Arc<Value>>,
    /// What the current document says of languages.
    pub(crate) languages: Arc<crate::languages::Languages>,
}

impl CatalogCache {
    /// Forgets what was read: this host just published.
    pub(crate) async fn invalidate(&self) {
        *self.slot.lock().await = None;
    }

    pub(crate) async fn get(&self, store: &dyn Store) -> Result<Arc<Served>, ApiError> {
        let mut slot = self.slot.lock().await;
        if let Some(served) = slot.as_ref()
            && served.at.elapsed() < CATALOG_FRESH
        {
            return Ok(Arc::clone(served));
        }
        let mut catalogs = store.catalogs().await?.into_iter();
        let parse = |c: &StoredCatalog| -> Result<Value, ApiError> {
            serde_json::from_str(&c.document).map_err(|e| {
                ApiError::internal(format!(
                    "the stored catalog {} is unreadable: {e}",
                    c.version
                ))
            })
        };
        let served = match catalogs.next() {
            None => Served {
                at: std::time::Instant::now(),
                answer: None,
                current: None,
                languages: Arc::default(),
            },
            Some(current) => {
                let document = parse(&current)?;
                let previous = match catalogs.next() {
                    Some(p) => {
                        json!({ "version": p.version, "published_at": p.published_at, "catalog": parse(&p)? })
                    }
                    None => Value::Null,
                };
                let answer = json!({
                    "version": current.version,
                    "published_at": current.published_at,
                    "catalog": document,
                    "previous": previous,
                });
                let document = answer["catalog"].clone();
                Served {
                    at: std::time::Instant::now(),
                    answer: Some(Bytes::from(answer.to_string())),
                    languages: Arc::new(
                        serde_json::from_value::<extend_wire::catalog::Document>(document.clone())
                            .map(|d| crate::languages::Languages::of(&d))
                            .unwrap_or_default(),
                    ),
                    current: Some(Arc::new(document)),
                }
            }
        };
        let served = Arc::new(served);
        *slot = Some(Arc::clone(&served));
        Ok(served)
    }
}
