//! For operators: `GET /healthz` (the process answers), `GET /readyz` (the
//! store answers and the executor runs) and `GET /metrics` (Prometheus text;
//! the metrics token, or the master token, as `Authorization: Bearer`).

use super::App;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// `GET /healthz`: 200 while the process serves HTTP.
pub(super) async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

/// `GET /readyz`: 200 when the store answers and the executor has threads,
/// is not shutting down and makes progress (see `Executor::wedged`); 503 naming what is not ready otherwise.
pub(super) async fn readyz(State(app): State<Arc<App>>) -> Response {
    let store = match tokio::time::timeout(
        std::time::Duration::from_secs(2),
        app.webtasks.stored_catalogs(),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("the store does not answer: {e}")),
        Err(_) => Err("the store did not answer within 2 s".to_owned()),
    };
    let executor = if app.shutdown.is_cancelled() {
        Err("the host is shutting down".to_owned())
    } else if app.executor.stats().workers == 0 {
        Err("the executor has no threads".to_owned())
    } else if let Some(why) = app.executor.wedged() {
        Err(why)
    } else {
        Ok(())
    };
    let problems: Vec<String> = [store, executor]
        .into_iter()
        .filter_map(Result::err)
        .collect();
    if problems.is_empty() && app.webtasks.feed_connected() == Some(false) {
        // Still serving: a balancer should keep sending traffic, and an
        // operator should look, since other nodes' writes wait for the
        // reconnect to reach this host's caches.
        axum::Json(json!({
            "status": "degraded",
            "degraded": ["the database's change feed is lost: other nodes' changes reach this host's caches once it reconnects (it is retrying)"],
        }))
        .into_response()
    } else if problems.is_empty() {
        axum::Json(json!({ "status": "ready" })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "unavailable", "problems": problems })),
        )
            .into_response()
    }
}

/// `GET /metrics`: every metric of this host in the Prometheus text format.
pub(super) async fn metrics(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "metrics need `Authorization: Bearer <metrics token or master token>`",
            )
        })?;
    let by_metrics_token = app
        .metrics_token
        .as_deref()
        .is_some_and(|t| bool::from(t.as_bytes().ct_eq(given.as_bytes())));
    if !by_metrics_token {
        let claims = app.auth.verify(given).map_err(|_| {
            ApiError::forbidden("the token is neither the metrics token nor a valid host token")
        })?;
        if !app.auth.is_master(&claims) {
            return Err(ApiError::forbidden(
                "metrics need the metrics token or the master token",
            ));
        }
    }
    let mut res = app.metrics.render().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(res)
}
