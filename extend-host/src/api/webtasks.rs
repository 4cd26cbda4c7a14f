//! `GET /api/webtask/{container}` and `GET|PUT|DELETE /api/webtask/{container}/{name}`.

use super::App;
use super::deploy::{PutBody, apply_secret_changes, deploy, deployed, item};
use super::extract::{Authorized, Deployer, Json, JsonBody};
use crate::error::ApiError;
use crate::query::Query;
use crate::store::{Deployment, StoredWebtask};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The most items one list call returns.
const MAX_LIMIT: u64 = 1000;

fn number(query: &Query, key: &str, default: u64) -> Result<u64, ApiError> {
    query.get(key).map_or(Ok(default), |v| {
        v.parse().map_err(|_| {
            ApiError::bad_request(format!("`{key}` must be a non-negative integer, not `{v}`"))
        })
    })
}

/// Lists a container's webtasks; repeated `meta=key:value` filters must all
/// match. `decrypt` adds each one's `secrets` (discovery reads the run secret
/// there): the caller's token already may read them one by one.
pub(super) async fn list(
    State(app): State<Arc<App>>,
    auth: Authorized,
) -> Result<Response, ApiError> {
    app.counters
        .lists
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (container, query) = (&auth.container, &auth.query);
    let offset = number(query, "offset", 0)?;
    let limit = number(query, "limit", 100)?.min(MAX_LIMIT);
    let filters: Vec<&str> = query.all("meta").collect();
    if filters.len() > app.limits.meta_filters {
        return Err(ApiError::bad_request(format!(
            "{} `meta` filters given; at most {} are allowed",
            filters.len(),
            app.limits.meta_filters
        )));
    }
    let filters = filters
        .into_iter()
        .map(|f| {
            // Split on the first `:`: values may contain colons.
            f.split_once(':')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| {
                    ApiError::bad_request(format!("meta filter `{f}` must have the form key:value"))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let found = app
        .webtasks
        .list(container, &filters, offset, limit)
        .await?;
    let decrypt = query.flag("decrypt");
    let items = found
        .iter()
        .map(|w| {
            let mut m = item(&app, w);
            if decrypt {
                m.insert("secrets".into(), json!(app.webtasks.unseal(w)?));
            }
            Ok(Value::Object(m))
        })
        .collect::<Result<Vec<Value>, ApiError>>()?;
    Ok(axum::Json(items).into_response())
}

fn no_such(name: &str) -> ApiError {
    ApiError::not_found(format!("No such webtask: {name}"))
}

/// One webtask; `decrypt` adds `secrets`, `fetch_code` adds `code`.
pub(super) async fn get(
    State(app): State<Arc<App>>,
    auth: Authorized,
) -> Result<Response, ApiError> {
    let w = app
        .webtasks
        .get(&auth.container, auth.name())
        .await?
        .ok_or_else(|| no_such(auth.name()))?;
    let mut out = item(&app, &w);
    if auth.query.flag("decrypt") {
        out.insert("secrets".into(), json!(app.webtasks.unseal(&w)?));
    }
    if auth.query.flag("fetch_code") {
        out.insert("code".into(), w.code.clone().into());
    }
    Ok(axum::Json(out).into_response())
}

/// Creates or replaces a webtask from `{code, secrets?, meta?}`. Omitted
/// secrets keep the stored ones (`wt update` with an OAuth profile does not
/// resend them); omitted meta clears it, as the original documented.
pub(super) async fn put(
    State(app): State<Arc<App>>,
    Deployer(auth): Deployer,
    Json(body): Json<PutBody>,
) -> Result<Response, ApiError> {
    let (container, name) = (&auth.container, auth.name());
    if body.url.is_some() {
        return Err(ApiError::bad_request(
            "`url` is not supported: this host runs stored code only; send `code`",
        ));
    }
    let code = body
        .code
        .ok_or_else(|| ApiError::bad_request("`code` is required and must be a string"))?;
    let secrets = match body.secrets {
        Some(s) => s,
        None => app.webtasks.live_secrets(container, name).await?,
    };
    let secrets = apply_secret_changes(secrets, body.secret_changes)?;
    let saved = deploy(&app, &auth, code, &secrets, body.meta.unwrap_or_default()).await?;
    Ok(deployed(&app, &saved, item(&app, &saved)))
}

/// `GET /api/webtask/{container}/{name}/versions`: the version history,
/// newest (the live one) first, without code.
pub(super) async fn versions(
    State(app): State<Arc<App>>,
    auth: Authorized,
) -> Result<Response, ApiError> {
    let (container, name) = (&auth.container, auth.name());
    let history = app.webtasks.versions(container, name).await?;
    if history.is_empty() && app.webtasks.get(container, name).await?.is_none() {
        return Err(no_such(name));
    }
    let items: Vec<Value> = history.iter().map(|v| version_item(v, false)).collect();
    Ok(axum::Json(items).into_response())
}

fn version_item(v: &crate::store::WebtaskVersion, with_code: bool) -> Value {
    let mut m = json!({
        "version": v.version,
        "deployed_at": v.deployed_at,
        "deployed_by": v.deployment.by,
        "meta": v.meta,
        "secrets": v.deployment.secret_names,
        "code_bytes": v.code.len(),
    });
    if with_code {
        m["code"] = v.code.clone().into();
    }
    m
}

/// The version named in the path, from the history.
async fn find_version(
    app: &App,
    auth: &Authorized,
    version: &str,
) -> Result<crate::store::WebtaskVersion, ApiError> {
    let (container, name) = (&auth.container, auth.name());
    let wanted: u64 = version
        .parse()
        .map_err(|_| ApiError::bad_request(format!("`{version}` is not a version number")))?;
    let history = app.webtasks.versions(container, name).await?;
    let kept = history.iter().map(|v| v.version).collect::<Vec<_>>();
    history
        .into_iter()
        .find(|v| v.version == wanted)
        .ok_or_else(|| {
            ApiError::not_found(if kept.is_empty() {
                format!("webtask `{container}/{name}` has no version history")
            } else {
                format!(
                    "webtask `{container}/{name}` has no version {wanted}; the kept versions are {}",
                    kept.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
                )
            })
        })
}

/// `GET /api/webtask/{container}/{name}/versions/{version}`: one version, with its code.
pub(super) async fn version(
    State(app): State<Arc<App>>,
    auth: Authorized,
    axum::extract::Path(params): axum::extract::Path<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let v = find_version(
        &app,
        &auth,
        params.get("version").map_or("", String::as_str),
    )
    .await?;
    Ok(axum::Json(version_item(&v, true)).into_response())
}

/// `POST /api/webtask/{container}/{name}/versions/{version}/rollback`: makes
/// that version's code and metadata live again, as a new version. Secrets
/// are not versioned: the live ones stay, and the answer lists the names
/// that version had and the live webtask lacks.
pub(super) async fn rollback(
    State(app): State<Arc<App>>,
    Deployer(auth): Deployer,
    axum::extract::Path(params): axum::extract::Path<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let v = find_version(
        &app,
        &auth,
        params.get("version").map_or("", String::as_str),
    )
    .await?;
    let secrets = app
        .webtasks
        .live_secrets(&auth.container, auth.name())
        .await?;
    let missing: Vec<&String> = v
        .deployment
        .secret_names
        .iter()
        .filter(|n| !secrets.contains_key(*n))
        .collect();
    let missing = json!(missing);
    let saved = deploy(&app, &auth, v.code, &secrets, v.meta).await?;
    let mut body = item(&app, &saved);
    body.insert("rolled_back_to".into(), v.version.into());
    body.insert("secrets_missing".into(), missing);
    Ok(deployed(&app, &saved, body))
}

/// The body of a rename: `{"name": "new name"}`.
#[derive(Deserialize)]
pub(super) struct Rename {
    name: String,
}

impl JsonBody for Rename {
    const SHAPE: &'static str = "`{\"name\": \"new name\"}`";
    const OF: &'static str = "the rename body `{\"name\": \"new name\"}`";
}

/// `POST /api/webtask/{container}/{name}/rename` with `{"name": "new"}`:
/// the live webtask (code, secrets, metadata) and its draft move to the new
/// name, which starts a new version history; the old name stops answering.
/// One store step: of two renames to one name, or of one webtask to two
/// names, one wins and the other gets 409.
pub(super) async fn rename(
    State(app): State<Arc<App>>,
    Deployer(auth): Deployer,
    Json(Rename { name: to }): Json<Rename>,
) -> Result<Response, ApiError> {
    let (container, name) = (&auth.container, auth.name());
    crate::names::check("webtask", &to)?;
    if to == name {
        return Err(ApiError::bad_request(format!(
            "`{name}` already has that name"
        )));
    }
    let old = app
        .webtasks
        .get(container, name)
        .await?
        .ok_or_else(|| no_such(name))?;
    let secret_names = app.webtasks.unseal(&old)?.into_keys().collect();
    let target = auth.with_name(to.clone());
    let record = StoredWebtask::new(
        container.clone(),
        to.clone(),
        String::new(),
        Vec::new(),
        BTreeMap::new(),
        app.auth
            .webtask_token(&target.claims, &target.container, target.name()),
    )
    .deployed_by(Deployment::new(auth.claims.jti.clone(), secret_names));
    // The store moves what the old name holds when it renames, in one
    // step: code, secrets and meta, whatever a concurrent write left there.
    let (saved, runnable) = app.webtasks.rename(name, record).await?;
    app.compile_ahead(runnable);
    tracing::info!(%container, webtask = %name, to = %to, "webtask renamed");
    let mut out = item(&app, &saved);
    out.insert("renamed_from".into(), name.into());
    Ok(deployed(&app, &saved, out))
}

/// Deletes a webtask: 204, or 404 when there is none.
pub(super) async fn delete(
    State(app): State<Arc<App>>,
    auth: Authorized,
) -> Result<Response, ApiError> {
    let (container, name) = (&auth.container, auth.name());
    app.admit_write(container)?;
    if !app.webtasks.delete(container, name).await? {
        return Err(no_such(name));
    }
    app.executor.forget(container);
    tracing::info!(%container, webtask = %name, "webtask deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}
