//! The HTTP API: routing, the extractors that authorize every management
//! call, and the shared state of a host.

mod app;
mod catalog;
mod changes;
mod deploy;
mod drafts;
mod editor;
mod egress;
mod extract;
mod front;
mod logs;
mod ops;
mod run;
mod tokens;
mod webtasks;

use crate::error::ApiError;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};
use std::sync::Arc;

pub(crate) use app::App;
pub(crate) use extract::read_body;
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
        .route("/api/egress/{container}", get(egress::get).put(egress::put))
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
