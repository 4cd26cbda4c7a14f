//! The HTTP API: routing, authentication and the shared state of a host.

mod logs;
mod run;
mod tokens;
mod webtasks;

use crate::config::Limits;
use crate::crypto::Keys;
use crate::error::ApiError;
use crate::logs::LogHub;
use crate::sandbox::{Executor, RunInput, Webtask};
use crate::store::{Store, StoredWebtask};
use crate::token::{self, Claims};
use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, header};
use axum::routing::{any, get, post};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use tokio_util::sync::CancellationToken;

/// Everything the handlers share.
pub(crate) struct App {
    pub(crate) keys: Keys,
    pub(crate) store: Arc<dyn Store>,
    /// Base of `webtask_url`s, without a trailing slash.
    pub(crate) base_url: String,
    pub(crate) limits: Limits,
    pub(crate) master_jti: String,
    pub(crate) revoked: RwLock<HashSet<String>>,
    pub(crate) executor: Executor,
    pub(crate) logs: LogHub,
    pub(crate) shutdown: CancellationToken,
    // Decrypted webtasks for runs, by container then name. Writes through this
    // host bump `generation`, so a load that raced a write is not cached.
    cache: RwLock<HashMap<String, HashMap<String, Arc<Webtask>>>>,
    generation: AtomicU64,
    // Serialises writes, so the cache ends up with the last write's webtask.
    writes: tokio::sync::Mutex<()>,
    requests: AtomicU64,
    /// `GET /api/webtask/{container}` calls served: discovery traffic.
    pub(crate) lists: AtomicU64,
    request_prefix: String,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

pub(crate) struct AppParts {
    pub(crate) keys: Keys,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) base_url: String,
    pub(crate) limits: Limits,
    pub(crate) master_jti: String,
    pub(crate) revoked: Vec<String>,
    pub(crate) executor: Executor,
    pub(crate) logs: LogHub,
}

impl App {
    pub(crate) fn new(p: AppParts) -> Self {
        App {
            keys: p.keys,
            store: p.store,
            base_url: p.base_url.trim_end_matches('/').to_owned(),
            limits: p.limits,
            master_jti: p.master_jti,
            revoked: RwLock::new(p.revoked.into_iter().collect()),
            executor: p.executor,
            logs: p.logs,
            shutdown: CancellationToken::new(),
            cache: RwLock::default(),
            generation: AtomicU64::new(0),
            writes: tokio::sync::Mutex::new(()),
            requests: AtomicU64::new(0),
            lists: AtomicU64::new(0),
            request_prefix: crate::crypto::random_hex::<4>(),
        }
    }

    pub(crate) fn webtask_url(&self, container: &str, name: &str) -> String {
        format!("{}/api/run/{container}/{name}", self.base_url)
    }

    pub(crate) fn request_id(&self) -> String {
        format!(
            "{}{:08x}",
            self.request_prefix,
            self.requests.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// The caller's verified, unrevoked claims, from `Authorization: Bearer` or `?key=`.
    pub(crate) fn authenticate(
        &self,
        headers: &HeaderMap,
        query: &Query,
    ) -> Result<Claims, ApiError> {
        let token = match headers.get(header::AUTHORIZATION) {
            Some(h) => {
                let h = h.to_str().unwrap_or("");
                match h.split_once(' ') {
                    Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
                    _ => {
                        return Err(ApiError::forbidden(
                            "rejecting request with unexpected Authorization header",
                        ));
                    }
                }
            }
            None => query.get("key").ok_or_else(|| {
                ApiError::forbidden(
                    "rejecting request without Authorization header or key URL query parameter",
                )
            })?,
        };
        self.verify(token)
    }

    /// Checks a token: signature, validity window and revocation of it or any ancestor.
    pub(crate) fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let claims = token::decode(&self.keys, token, crate::time::unix_now())?;
        let revoked = self.revoked.read().unwrap_or_else(PoisonError::into_inner);
        if revoked.contains(&claims.jti) || claims.ca.iter().any(|j| revoked.contains(j)) {
            return Err(ApiError::forbidden("token is revoked"));
        }
        Ok(claims)
    }

    pub(crate) fn sign(&self, claims: &Claims) -> String {
        token::encode(&self.keys, claims)
    }

    /// Creates or replaces a named webtask, sealing its secrets.
    pub(crate) async fn save_webtask(
        &self,
        container: &str,
        name: &str,
        code: String,
        secrets: &BTreeMap<String, String>,
        meta: BTreeMap<String, String>,
        token: String,
    ) -> Result<StoredWebtask, ApiError> {
        if code.len() > self.limits.code_size {
            return Err(ApiError::bad_request(format!(
                "the code is {} bytes; the limit is {} bytes",
                code.len(),
                self.limits.code_size
            )));
        }
        let sealed = self.keys.seal(
            serde_json::to_string(secrets)
                .expect("string map serializes")
                .as_bytes(),
        );
        let w = StoredWebtask::new(
            container.to_owned(),
            name.to_owned(),
            code,
            sealed,
            meta,
            token,
        );
        let _write = self.writes.lock().await;
        self.generation.fetch_add(1, Ordering::AcqRel);
        let saved = self.store.put(w).await?;
        // The first run should find the webtask decrypted and its code compiled.
        let runnable = Arc::new(runnable(&saved, secrets));
        self.cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(container.to_owned())
            .or_default()
            .insert(name.to_owned(), Arc::clone(&runnable));
        let _ = self.executor.submit(RunInput::compile(runnable));
        Ok(saved)
    }

    pub(crate) async fn delete_webtask(
        &self,
        container: &str,
        name: &str,
    ) -> Result<bool, ApiError> {
        let _write = self.writes.lock().await;
        self.generation.fetch_add(1, Ordering::AcqRel);
        let deleted = self.store.delete(container, name).await?;
        self.uncache(container, name);
        Ok(deleted)
    }

    fn uncache(&self, container: &str, name: &str) {
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = cache.get_mut(container) {
            c.remove(name);
        }
    }

    /// The stored secrets of a webtask.
    pub(crate) fn unseal(&self, w: &StoredWebtask) -> Result<BTreeMap<String, String>, ApiError> {
        let plain = self.keys.open(&w.sealed_secrets).ok_or_else(|| {
            ApiError::internal(format!(
                "error decrypting the secrets of webtask `{}/{}`",
                w.container, w.name
            ))
        })?;
        serde_json::from_slice(&plain)
            .map_err(|e| ApiError::internal(format!("stored secrets are unreadable: {e}")))
    }

    /// A webtask ready to run, from the cache or storage.
    pub(crate) async fn runnable(
        &self,
        container: &str,
        name: &str,
    ) -> Result<Option<Arc<Webtask>>, ApiError> {
        if let Some(w) = self
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(container)
            .and_then(|c| c.get(name))
        {
            return Ok(Some(Arc::clone(w)));
        }
        let generation = self.generation.load(Ordering::Acquire);
        let Some(stored) = self.store.get(container, name).await? else {
            return Ok(None);
        };
        let secrets = self.unseal(&stored)?;
        let w = Arc::new(runnable(&stored, &secrets));
        if self.generation.load(Ordering::Acquire) == generation {
            let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
            cache
                .entry(container.to_owned())
                .or_default()
                .insert(name.to_owned(), Arc::clone(&w));
        }
        Ok(Some(w))
    }
}

/// The run view of a stored webtask.
fn runnable(stored: &StoredWebtask, secrets: &BTreeMap<String, String>) -> Webtask {
    Webtask {
        container: stored.container.clone(),
        name: stored.name.clone(),
        code: stored.code.as_str().into(),
        secrets_json: serde_json::to_string(secrets).expect("string map serializes"),
        meta_json: serde_json::to_string(&stored.meta).expect("string map serializes"),
        extension_secret: secrets.get("auth0-extension-secret").cloned(),
    }
}

/// A parsed query string; repeated keys are kept in order.
#[derive(Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        Query(
            raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
        )
    }

    /// The last value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A flag: clients send `1` or `true`.
    pub(crate) fn flag(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | ""))
    }

    pub(crate) fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

/// Reads a body of at most `limit` bytes; more is 413 `Request body size exceeds {limit}`.
pub(crate) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::too_large(limit))
}

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/api/tokens/issue", post(tokens::issue))
        .route("/api/tokens/inspect", get(tokens::inspect))
        .route("/api/tokens/revoke", post(tokens::revoke))
        .route("/api/webtask/{container}", get(webtasks::list))
        .route(
            "/api/webtask/{container}/{name}",
            get(webtasks::get)
                .put(webtasks::put)
                .delete(webtasks::delete),
        )
        .route("/api/logs/tenant/{container}", get(logs::stream))
        .route("/api/run/{container}/{name}", any(run::run))
        .route("/api/run/{container}/{name}/{*rest}", any(run::run_path))
        .route("/api/description", get(not_found))
        .fallback(not_found)
        // Bodies are read with our own limits so that the 413 is JSON.
        .layer(DefaultBodyLimit::disable())
        .with_state(app)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no endpoint at {}", uri.path()))
}
