//! `GET /api/webtask/{container}` and `GET|PUT|DELETE /api/webtask/{container}/{name}`.

use super::{App, Query, read_body};
use crate::error::ApiError;
use crate::names;
use crate::store::StoredWebtask;
use crate::token::{Claims, string_map};
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The most items one list call returns.
const MAX_LIMIT: u64 = 1000;

fn item(app: &App, w: &StoredWebtask) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("container".into(), w.container.clone().into());
    m.insert("name".into(), w.name.clone().into());
    m.insert("token".into(), w.token.clone().into());
    m.insert("meta".into(), json!(w.meta));
    m.insert(
        "webtask_url".into(),
        app.webtask_url(&w.container, &w.name).into(),
    );
    m
}

fn number(query: &Query, key: &str, default: u64) -> Result<u64, ApiError> {
    query.get(key).map_or(Ok(default), |v| {
        v.parse().map_err(|_| {
            ApiError::bad_request(format!("`{key}` must be a non-negative integer, not `{v}`"))
        })
    })
}

/// Lists a container's webtasks; repeated `meta=key:value` filters must all match.
pub(super) async fn list(
    State(app): State<Arc<App>>,
    Path(container): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    app.lists.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let query = Query::parse(q.as_deref());
    app.authenticate(&headers, &query)?.authorize(&container)?;
    names::check("container", &container)?;
    let offset = number(&query, "offset", 0)?;
    let limit = number(&query, "limit", 100)?.min(MAX_LIMIT);
    let filters = query
        .all("meta")
        .map(|f| {
            // Split on the first `:`: values may contain colons.
            f.split_once(':')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| {
                    ApiError::bad_request(format!("meta filter `{f}` must have the form key:value"))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let found = app.store.list(&container, &filters, offset, limit).await?;
    let items: Vec<Value> = found.iter().map(|w| Value::Object(item(&app, w))).collect();
    Ok(axum::Json(items).into_response())
}

fn no_such(name: &str) -> ApiError {
    ApiError::not_found(format!("No such webtask: {name}"))
}

/// One webtask; `decrypt` adds `secrets`, `fetch_code` adds `code`.
pub(super) async fn get(
    State(app): State<Arc<App>>,
    Path((container, name)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let query = Query::parse(q.as_deref());
    app.authenticate(&headers, &query)?.authorize(&container)?;
    names::check("container", &container)?;
    names::check("webtask", &name)?;
    let w = app
        .store
        .get(&container, &name)
        .await?
        .ok_or_else(|| no_such(&name))?;
    let mut out = item(&app, &w);
    if query.flag("decrypt") {
        out.insert("secrets".into(), json!(app.unseal(&w)?));
    }
    if query.flag("fetch_code") {
        out.insert("code".into(), w.code.clone().into());
    }
    Ok(axum::Json(out).into_response())
}

/// Creates or replaces a webtask from `{code, secrets?, meta?}`. Omitted
/// secrets keep the stored ones (`wt update` with an OAuth profile does not
/// resend them); omitted meta clears it, as the original documented.
pub(super) async fn put(
    State(app): State<Arc<App>>,
    Path((container, name)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = app.authenticate(&headers, &Query::parse(q.as_deref()))?;
    caller.authorize(&container)?;
    names::check("container", &container)?;
    names::check("webtask", &name)?;
    let body = read_body(body, &headers, app.limits.management_body).await?;
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return Err(ApiError::bad_request(
            "the body must be a JSON object with `code` and optional `secrets` and `meta`",
        ));
    };
    if body.contains_key("url") {
        return Err(ApiError::bad_request(
            "`url` is not supported: this host runs stored code only; send `code`",
        ));
    }
    let code = body
        .get("code")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("`code` is required and must be a string"))?
        .to_owned();
    let meta = body
        .get("meta")
        .filter(|v| !v.is_null())
        .map(|m| string_map("meta", m))
        .transpose()?
        .unwrap_or_default();
    let secrets = match body.get("secrets").filter(|v| !v.is_null()) {
        Some(s) => string_map("secrets", s)?,
        None => match app.store.get(&container, &name).await? {
            Some(old) => app.unseal(&old)?,
            None => Default::default(),
        },
    };
    let mut ca = caller.ca.clone();
    ca.push(caller.jti.clone());
    let claims = Claims {
        jti: crate::crypto::random_hex::<16>(),
        iat: crate::time::unix_now(),
        ca,
        ten: Some(container.clone()),
        jtn: Some(name.clone()),
        dd: Some(0),
        dr: Some(1),
        exp: caller.exp,
        ..Claims::default()
    };
    let token = app.sign(&claims);
    let saved = app
        .save_webtask(&container, &name, code, &secrets, meta, token)
        .await?;
    tracing::info!(%container, webtask = %name, "webtask created or replaced");
    let url = app.webtask_url(&container, &name);
    Ok((
        StatusCode::OK,
        [(header::LOCATION, url)],
        axum::Json(item(&app, &saved)),
    )
        .into_response())
}

/// Deletes a webtask: 204, or 404 when there is none.
pub(super) async fn delete(
    State(app): State<Arc<App>>,
    Path((container, name)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    app.authenticate(&headers, &Query::parse(q.as_deref()))?
        .authorize(&container)?;
    names::check("container", &container)?;
    names::check("webtask", &name)?;
    if !app.delete_webtask(&container, &name).await? {
        return Err(no_such(&name));
    }
    tracing::info!(%container, webtask = %name, "webtask deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}
