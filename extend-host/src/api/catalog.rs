//! `PUT /api/catalog` (master token) and `GET /api/catalog` (any valid
//! token): the platform's extension points as it published them, so that
//! editors, extension authors and the host itself know them.
//!
//! The document is the platform's `Catalog::to_json()`: `{"points": [{"name",
//! "mode", "timeout_ms", "description", "payload_schema", "response_schema",
//! …}]}`. The host checks its shape and point names, keeps the current
//! version and the previous one, and from then on refuses to install an
//! extension whose `auth0-extension-type` names no published point.

use super::extract::Caller;
use super::{App, read_body};
use crate::error::ApiError;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use extend_wire::catalog::Document;
use serde_json::{Value, json};
use std::sync::Arc;

/// Stores the caller's catalog as the current one.
pub(super) async fn put(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if !app.auth.is_master(&caller.claims) {
        return Err(ApiError::forbidden(
            "publishing the catalog needs the master token",
        ));
    }
    let body = read_body(body, &headers, app.limits.catalog_size).await?;
    let document: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the catalog is not valid JSON: {e}")))?;
    let parsed = Document::parse(&document).map_err(ApiError::bad_request)?;
    if let Some((point, language)) = parsed.missing_languages().first() {
        return Err(ApiError::bad_request(format!(
            "point `{point}` is written in `{language}`, and the catalog publishes no such language: add it to the catalog (`Catalog::language`) with its compiler"
        )));
    }
    let names: Vec<String> = parsed.points.into_iter().map(|p| p.name).collect();
    let stored = app.webtasks.publish_catalog(document.to_string()).await?;
    app.recorder.refresh().await;
    tracing::info!(
        version = stored.version,
        points = names.len(),
        "catalog published"
    );
    Ok(axum::Json(json!({
        "version": stored.version,
        "published_at": stored.published_at,
        "points": names,
    }))
    .into_response())
}

fn unpublished() -> ApiError {
    ApiError::not_found("no catalog has been published on this host")
}

/// The current catalog and the previous one; 404 before the first publish.
pub(super) async fn get(
    State(app): State<Arc<App>>,
    _caller: Caller,
) -> Result<Response, ApiError> {
    let served = app.webtasks.published_catalog().await?;
    let answer = served.answer.clone().ok_or_else(unpublished)?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        answer,
    )
        .into_response())
}

/// The current catalog's document; 404 before the first publish.
async fn current(app: &App) -> Result<Arc<Value>, ApiError> {
    app.webtasks
        .published_catalog()
        .await?
        .current
        .clone()
        .ok_or_else(unpublished)
}

fn text(content_type: &'static str, body: String) -> Response {
    ([(axum::http::header::CONTENT_TYPE, content_type)], body).into_response()
}

/// `GET /api/catalog/types.d.ts` (any valid token): the TypeScript types of
/// the published points, as the platform generated them.
pub(super) async fn types(
    State(app): State<Arc<App>>,
    _caller: Caller,
) -> Result<Response, ApiError> {
    let doc = current(&app).await?;
    let doc = typed(&doc)?;
    let ts = doc.typescript.ok_or_else(|| {
        ApiError::not_found(
            "the published catalog has no TypeScript types (it was published without them)",
        )
    })?;
    Ok(text("application/typescript; charset=utf-8", ts))
}

/// `GET /api/catalog/{point}/template.js` (any valid token): a starter
/// extension for the point, typed against `types.d.ts`.
pub(super) async fn template(
    State(app): State<Arc<App>>,
    _caller: Caller,
    axum::extract::Path(point): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let doc = current(&app).await?;
    let doc = typed(&doc)?;
    let found = doc.point(&point).ok_or_else(|| {
        ApiError::not_found(format!("the published catalog has no point `{point}`"))
    })?;
    let template = found.template.clone().ok_or_else(|| {
        ApiError::not_found(format!(
            "the published catalog has no template for `{point}`"
        ))
    })?;
    Ok(text("application/javascript; charset=utf-8", template))
}

/// Most extensions listed per point by `GET /api/catalog/usage`.
const USAGE_LIMIT: u64 = 10_000;

/// `GET /api/catalog/usage?point=a&point=b` (master token): the extensions
/// installed for those points, in every container, so that a platform about
/// to change a point's contract knows whom it affects.
pub(super) async fn usage(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    if !app.auth.is_master(&caller.claims) {
        return Err(ApiError::forbidden(
            "listing extensions across containers needs the master token",
        ));
    }
    let points: Vec<&str> = caller.query.all("point").collect();
    if points.is_empty() || points.len() > 100 {
        return Err(ApiError::bad_request(
            "name 1 to 100 points to look up, as `?point=name`",
        ));
    }
    let mut out = Vec::new();
    for point in points {
        for w in app.webtasks.extensions_of(point, USAGE_LIMIT).await? {
            out.push(json!({
                "point": point,
                "container": w.container,
                "name": w.name,
                "webtask_url": app.webtask_url(&w.container, &w.name),
            }));
        }
    }
    Ok(axum::Json(Value::Array(out)).into_response())
}

/// The published document, typed; it was checked when it was published.
fn typed(document: &Value) -> Result<Document, ApiError> {
    use serde::Deserialize as _;
    Document::deserialize(document)
        .map_err(|e| ApiError::internal(format!("the stored catalog cannot be read: {e}")))
}
