//! [`WebtaskDiscovery`]: discovery through a webtask host's management API,
//! cached per (container, point) with single-flight misses.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;

use super::api::{WebtaskApi, check_name};
use super::installed::InstalledExtension;
use super::options::{RUN_SECRET, WebtaskOptions};
use crate::discovery::{BoxFuture, Discovery, DiscoveryError, Endpoint};

/// What the cache remembers for a (container, point).
type Cached = Option<Endpoint>;

struct TtlByAnswer {
    found: Duration,
    none: Duration,
}

impl Expiry<String, Cached> for TtlByAnswer {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Cached,
        _now: Instant,
    ) -> Option<Duration> {
        Some(if value.is_some() {
            self.found
        } else {
            self.none
        })
    }
}

/// Extensions are webtasks whose metadata names their point, found with
/// `GET /api/webtask/{container}?meta=…` as the Extend developer guide
/// prescribes. Built by [`ExtendBuilder::webtask`](crate::ExtendBuilder::webtask).
#[derive(Clone)]
pub(crate) struct WebtaskDiscovery {
    shared: Arc<Shared>,
}

struct Shared {
    api: Arc<WebtaskApi>,
    options: WebtaskOptions,
    cache: Cache<String, Cached>,
    /// Bumped by every invalidation: a lookup that started before one
    /// answers its caller but is not cached, since it may predate the change.
    epoch: AtomicU64,
}

/// Why a single-flight lookup produced no cacheable answer.
enum Uncached {
    Failed(DiscoveryError),
    /// Answered, but an invalidation came while it was under way.
    Stale(Cached),
}

impl fmt::Debug for WebtaskDiscovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebtaskDiscovery")
            .field("api", &self.shared.api)
            .field("options", &self.shared.options)
            .field("cached", &self.shared.cache.entry_count())
            .finish_non_exhaustive()
    }
}

fn key(container: &str, point: &str) -> String {
    let mut k = String::with_capacity(container.len() + point.len() + 1);
    k.push_str(container);
    k.push('\0');
    k.push_str(point);
    k
}

impl WebtaskDiscovery {
    pub(crate) fn new(api: Arc<WebtaskApi>, options: WebtaskOptions) -> Self {
        let cache = Cache::builder()
            .max_capacity(options.max_entries)
            .expire_after(TtlByAnswer {
                found: options.ttl,
                none: options.none_ttl,
            })
            .support_invalidation_closures()
            .build();
        WebtaskDiscovery {
            shared: Arc::new(Shared {
                api,
                options,
                cache,
                epoch: AtomicU64::new(0),
            }),
        }
    }

    pub(crate) fn api(&self) -> &WebtaskApi {
        &self.shared.api
    }

    /// Forgets every cached answer.
    pub(crate) fn invalidate_all(&self) {
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        self.shared.cache.invalidate_all();
    }

    /// Forgets every cached answer for `container`.
    pub(crate) fn invalidate_container(&self, container: &str) {
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        let prefix = key(container, "");
        // Only fails when closures are unsupported, and the cache is built with them.
        let _ = self
            .shared
            .cache
            .invalidate_entries_if(move |k, _| k.starts_with(&prefix));
    }

    /// The webtasks of `container` that name `point`, enabled or not, with
    /// their secrets when `decrypt`.
    async fn of_point(
        &self,
        container: &str,
        point: &str,
        decrypt: bool,
    ) -> Result<Vec<super::api::WireWebtask>, DiscoveryError> {
        let s = &*self.shared;
        s.api
            .list(
                "list extensions",
                container,
                Some((extend_wire::meta::EXTENSION_TYPE, point)),
                decrypt,
            )
            .await
            .map_err(|e| DiscoveryError::Failed(Box::new(e)))
    }

    /// Asks the host (a cache miss).
    async fn lookup(&self, container: &str, point: &str) -> Result<Cached, DiscoveryError> {
        let items = self.of_point(container, point, true).await?;
        let enabled: Vec<(Option<String>, InstalledExtension)> = items
            .into_iter()
            .map(|mut w| {
                // Extensions installed before the secret moved out of meta
                // still carry it there.
                let secret = w
                    .secrets
                    .take()
                    .and_then(|mut s| s.remove(RUN_SECRET))
                    .or_else(|| w.meta.get(RUN_SECRET).cloned());
                (secret, InstalledExtension::from_wire(container, w))
            })
            .filter(|(_, x)| x.enabled)
            .collect();
        match enabled.as_slice() {
            [] => Ok(None),
            [(secret, one)] => {
                let ext =
                    Endpoint::new(&one.url).map_err(|e| DiscoveryError::Failed(Box::new(e)))?;
                Ok(Some(match secret {
                    Some(secret) => ext.with_secret(secret.clone()),
                    None => ext,
                }))
            }
            many => Err(DiscoveryError::Ambiguous {
                names: many.iter().map(|(_, x)| x.name.clone()).collect(),
            }),
        }
    }
}

impl Discovery for WebtaskDiscovery {
    fn discover<'a>(
        &'a self,
        container: &'a str,
        point: &'a str,
    ) -> BoxFuture<'a, Result<Option<Endpoint>, DiscoveryError>> {
        Box::pin(async move {
            check_name("container", container).map_err(|m| DiscoveryError::Failed(m.into()))?;
            let k = key(container, point);
            if let Some(hit) = self.shared.cache.get(&k).await {
                crate::observe::discovery_cache(true);
                return Ok(hit);
            }
            crate::observe::discovery_cache(false);
            // Concurrent misses for one key share this one request; errors
            // and answers an invalidation overtook are not cached.
            let epoch = self.shared.epoch.load(Ordering::SeqCst);
            let lookup = async {
                let found = self
                    .lookup(container, point)
                    .await
                    .map_err(Uncached::Failed)?;
                if self.shared.epoch.load(Ordering::SeqCst) != epoch {
                    return Err(Uncached::Stale(found));
                }
                Ok(found)
            };
            self.shared
                .cache
                .try_get_with(k, lookup)
                .await
                .or_else(|shared| match &*shared {
                    Uncached::Stale(found) => Ok(found.clone()),
                    Uncached::Failed(DiscoveryError::Ambiguous { names }) => {
                        Err(DiscoveryError::Ambiguous {
                            names: names.clone(),
                        })
                    }
                    Uncached::Failed(_) => {
                        Err(DiscoveryError::Failed(Box::new(SharedError(shared))))
                    }
                })
        })
    }

    fn invalidate<'a>(&'a self, container: &'a str, point: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.shared.epoch.fetch_add(1, Ordering::SeqCst);
            self.shared.cache.invalidate(&key(container, point)).await;
        })
    }

    fn disabled<'a>(
        &'a self,
        container: &'a str,
        point: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, DiscoveryError>> {
        Box::pin(async move {
            check_name("container", container).map_err(|m| DiscoveryError::Failed(m.into()))?;
            let items = self.of_point(container, point, false).await?;
            Ok(items
                .into_iter()
                .map(|w| InstalledExtension::from_wire(container, w))
                .filter(|x| !x.enabled)
                .map(|x| x.name)
                .collect())
        })
    }
}

/// An error shared by every caller of one single-flight discovery.
struct SharedError(Arc<Uncached>);

impl SharedError {
    fn error(&self) -> Option<&DiscoveryError> {
        match &*self.0 {
            Uncached::Failed(e) => Some(e),
            Uncached::Stale(_) => None,
        }
    }
}

impl fmt::Debug for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.error(), f)
    }
}

impl fmt::Display for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.error() {
            Some(e) => e.fmt(f),
            None => f.write_str("stale answer"),
        }
    }
}

impl std::error::Error for SharedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(self.error()?)
    }
}
