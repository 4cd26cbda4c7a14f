//! The HTTP API: routing, the extractors that authorize every management
//! call, and the shared state of a host.

mod catalog;
mod changes;
mod drafts;
mod editor;
mod extract;
mod front;
mod logs;
mod ops;
mod run;
mod tokens;
mod webtasks;

use crate::auth::Auth;
use crate::config::Limits;
use crate::error::ApiError;
use crate::logs::LogHub;
use crate::rate::{InFlight, WriteLimiter};
use crate::sandbox::{Executor, RunInput, Webtask};
use crate::webtasks::Webtasks;
use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, header};
use axum::routing::{any, get, post};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_util::sync::CancellationToken;

/// What the handlers share, in named parts.
pub(crate) struct App {
    /// Token checks and revocations.
    pub(crate) auth: Auth,
    /// The store, sealing and the run cache.
    pub(crate) webtasks: Webtasks,
    /// The JavaScript executor.
    pub(crate) executor: Executor,
    /// Per-container log streams.
    pub(crate) logs: LogHub,
    /// Per-container management write rates.
    pub(crate) writes: WriteLimiter,
    /// Per-container management requests being served.
    pub(crate) in_flight: Arc<InFlight>,
    /// Open `GET /api/changes` streams, per container watched (`*`: all).
    pub(crate) change_subscribers: Arc<InFlight>,
    /// The published catalog, as served.
    pub(crate) catalog: catalog::CatalogCache,
    /// Run inputs kept for replaying drafts.
    pub(crate) recorder: crate::recording::Recorder,
    /// What `GET /metrics` serves.
    pub(crate) metrics: crate::metrics::HostMetrics,
    /// A token that reads `/metrics` (besides the master token).
    pub(crate) metrics_token: Option<String>,
    pub(crate) limits: Limits,
    /// Base of `webtask_url`s, without a trailing slash.
    base_url: String,
    pub(crate) counters: Counters,
    pub(crate) shutdown: CancellationToken,
}

/// Request counters, for ids and for tests.
pub(crate) struct Counters {
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

impl App {
    pub(crate) fn new(
        auth: Auth,
        webtasks: Webtasks,
        executor: Executor,
        logs: LogHub,
        limits: Limits,
        base_url: &str,
    ) -> Self {
        let recorder =
            crate::recording::Recorder::new(Arc::clone(&webtasks.store), webtasks.keys());
        let metrics = crate::metrics::HostMetrics::new(executor.clone());
        App {
            metrics,
            metrics_token: None,
            auth,
            webtasks,
            executor,
            logs,
            writes: WriteLimiter::new(limits.writes_per_second, limits.write_burst),
            in_flight: InFlight::new(
                limits.management_in_flight_per_container,
                "management requests in progress",
                "management_in_flight_per_container",
            ),
            change_subscribers: InFlight::new(
                limits.change_subscribers_per_container,
                "open change streams",
                "change_subscribers_per_container",
            ),
            catalog: catalog::CatalogCache::default(),
            recorder,
            limits,
            base_url: base_url.trim_end_matches('/').to_owned(),
            counters: Counters {
                requests: AtomicU64::new(0),
                lists: AtomicU64::new(0),
                request_prefix: crate::crypto::random_hex::<4>(),
            },
            shutdown: CancellationToken::new(),
        }
    }

    /// Admits a management write of `container` under its rate limit,
    /// counting a refusal.
    pub(crate) fn admit_write(&self, container: &str) -> Result<(), ApiError> {
        self.writes.admit(container).inspect_err(|_| {
            self.metrics.reject("writes");
        })
    }

    pub(crate) fn webtask_url(&self, container: &str, name: &str) -> String {
        format!("{}/api/run/{container}/{name}", self.base_url)
    }

    pub(crate) fn request_id(&self) -> String {
        format!(
            "{}{:08x}",
            self.counters.request_prefix,
            self.counters.requests.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A token for a long-lived stream of `claims`' caller: cancelled at
    /// shutdown, and when the caller's token is revoked or expires. The
    /// guard, kept by the stream, cancels it when the stream is dropped,
    /// which ends the task that watches the token.
    pub(crate) fn stream_stop(
        self: &Arc<Self>,
        claims: crate::token::Claims,
    ) -> (CancellationToken, tokio_util::sync::DropGuard) {
        let stop = self.shutdown.child_token();
        let (app, watched) = (Arc::clone(self), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = app.auth.until_invalid(&claims) => watched.cancel(),
                () = watched.cancelled() => {}
            }
        });
        (stop.clone(), stop.drop_guard())
    }

    /// After a webtask was saved: compile it ahead, so that the first run
    /// finds it ready.
    pub(crate) fn compile_ahead(&self, w: Arc<Webtask>) {
        // A refusal (shutting down, quarantined) only means no head start.
        let _ = self
            .executor
            .submit(RunInput::compile(w, self.limits.run_time));
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

pub(crate) use catalog::point_names;
pub(crate) use front::Front;

pub(super) fn router(app: Arc<App>) -> Router {
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
        .route(
            "/api/webtask/{container}/{name}/draft",
            get(drafts::get).put(drafts::put).delete(drafts::delete),
        )
        .route(
            "/api/webtask/{container}/{name}/draft/run",
            any(drafts::run),
        )
        .route(
            "/api/webtask/{container}/{name}/inputs",
            get(drafts::inputs),
        )
        .route(
            "/api/webtask/{container}/{name}/draft/replay",
            post(drafts::replay),
        )
        .route(
            "/api/webtask/{container}/{name}/draft/deploy",
            post(drafts::deploy_draft),
        )
        .route(
            "/api/webtask/{container}/{name}/rename",
            post(webtasks::rename),
        )
        .route(
            "/api/webtask/{container}/{name}/versions",
            get(webtasks::versions),
        )
        .route(
            "/api/webtask/{container}/{name}/versions/{version}",
            get(webtasks::version),
        )
        .route(
            "/api/webtask/{container}/{name}/versions/{version}/rollback",
            post(webtasks::rollback),
        )
        .route("/api/drafts/{container}", get(drafts::list))
        .route("/api/logs/tenant/{container}", get(logs::stream))
        .route("/api/changes", get(changes::stream))
        .route("/api/catalog", get(catalog::get).put(catalog::put))
        .route("/api/catalog/usage", get(catalog::usage))
        .route("/api/catalog/types.d.ts", get(catalog::types))
        .route("/api/catalog/{point}/template.js", get(catalog::template))
        .route("/api/description", get(not_found))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/edit/{container}", get(editor::page))
        .route("/edit/{version}/{container}", get(editor::versioned_page))
        .route("/editor.js", get(editor::script))
        .route("/editor/{*path}", get(editor::file))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Bodies are read with our own limits so that the 413 is JSON.
        .layer(DefaultBodyLimit::disable())
        .with_state(app)
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {}", method, uri.path()),
    )
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no endpoint at {}", uri.path()))
}
