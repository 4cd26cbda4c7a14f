//! A webtask's draft: `PUT|GET|DELETE /api/webtask/{container}/{name}/draft`,
//! `POST …/draft/run` and `POST …/draft/deploy`.
//!
//! A draft is saved code, metadata and (optionally) secrets that neither the
//! webtask's URL nor discovery sees. Its container's tokens may run it (the
//! request body is the payload, as at the run URL) and deploy it, which makes
//! it the live version (a new entry in the version history) and removes it.

use super::extract::Authorized;
use super::webtasks::{PutBody, deploy, deployed, item};
use super::{App, read_body};
use crate::error::ApiError;
use crate::store::Draft;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

fn no_draft(auth: &Authorized) -> ApiError {
    ApiError::not_found(format!(
        "webtask `{}/{}` has no draft",
        auth.container,
        auth.name()
    ))
}

fn view(d: &Draft, secret_names: Option<&[String]>) -> Value {
    json!({
        "container": d.container,
        "name": d.name,
        "code": d.code,
        "meta": d.meta,
        // Names only, as everywhere: values are never shown back.
        "secrets": secret_names,
        "saved_by": d.saved_by,
        "saved_at": d.saved_at,
    })
}

/// Saves `{code, secrets?, meta?}` as the draft. Omitted secrets mean "the
/// live webtask's, whatever they are when it runs or deploys".
pub(super) async fn put(
    State(app): State<Arc<App>>,
    auth: Authorized,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    app.writes.admit(&auth.container)?;
    let body = PutBody::parse(&read_body(body, &headers, app.limits.management_body).await?)?;
    let code = body
        .code
        .ok_or_else(|| ApiError::bad_request("`code` is required and must be a string"))?;
    if code.len() > app.limits.code_size {
        return Err(ApiError::bad_request(format!(
            "the code is {} bytes; the limit is {} bytes",
            code.len(),
            app.limits.code_size
        )));
    }
    if code.contains('\0') {
        return Err(ApiError::bad_request(
            "the code contains a NUL character (\\u0000)",
        ));
    }
    let meta = body.meta.unwrap_or_default();
    if let Some(point) = meta.get(crate::webtasks::EXTENSION_TYPE) {
        app.webtasks.check_point(point).await?;
    }
    let names: Option<Vec<String>> = body.secrets.as_ref().map(|s| s.keys().cloned().collect());
    let sealed = body.secrets.as_ref().map(|s| app.webtasks.seal(s));
    let saved = app
        .webtasks
        .store
        .put_draft(Draft::new(
            auth.container.clone(),
            auth.name().to_owned(),
            code,
            meta,
            sealed,
            auth.claims.jti.clone(),
        ))
        .await?;
    Ok(axum::Json(view(&saved, names.as_deref())).into_response())
}

/// The draft: code, meta, secret names (or `null`: the live ones apply).
pub(super) async fn get(
    State(app): State<Arc<App>>,
    auth: Authorized,
) -> Result<Response, ApiError> {
    let d = app
        .webtasks
        .store
        .draft(&auth.container, auth.name())
        .await?
        .ok_or_else(|| no_draft(&auth))?;
    let names = match &d.sealed_secrets {
        Some(sealed) => Some(open(&app, sealed, &auth)?.into_keys().collect::<Vec<_>>()),
        None => None,
    };
    Ok(axum::Json(view(&d, names.as_deref())).into_response())
}

/// Deletes the draft: 204, or 404.
pub(super) async fn delete(
    State(app): State<Arc<App>>,
    auth: Authorized,
) -> Result<Response, ApiError> {
    if !app
        .webtasks
        .store
        .delete_draft(&auth.container, auth.name())
        .await?
    {
        return Err(no_draft(&auth));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn open(app: &App, sealed: &[u8], auth: &Authorized) -> Result<BTreeMap<String, String>, ApiError> {
    app.webtasks.open(sealed).ok_or_else(|| {
        ApiError::internal(format!(
            "error decrypting the secrets of the draft of `{}/{}`",
            auth.container,
            auth.name()
        ))
    })
}

/// The draft and the secrets it runs with.
async fn load(app: &App, auth: &Authorized) -> Result<(Draft, BTreeMap<String, String>), ApiError> {
    let d = app
        .webtasks
        .store
        .draft(&auth.container, auth.name())
        .await?
        .ok_or_else(|| no_draft(auth))?;
    let secrets = match &d.sealed_secrets {
        Some(sealed) => open(app, sealed, auth)?,
        None => match app.webtasks.store.get(&auth.container, auth.name()).await? {
            Some(live) => app.webtasks.unseal(&live)?,
            None => BTreeMap::new(),
        },
    };
    Ok((d, secrets))
}

/// Runs the draft with the request's body, query and headers as the run
/// URL would (its `console` lines name the webtask `{name}#draft`).
pub(super) async fn run(
    State(app): State<Arc<App>>,
    auth: Authorized,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let (d, secrets) = load(&app, &auth).await?;
    let w = Arc::new(crate::webtasks::draft_runnable(&d, &secrets));
    // The caller's token is not the extension's business.
    let mut headers = headers;
    headers.remove(axum::http::header::AUTHORIZATION);
    super::run::execute_webtask(&app, w, "", method, headers, q, body).await
}

/// Makes the draft the live version and removes it.
pub(super) async fn deploy_draft(
    State(app): State<Arc<App>>,
    auth: Authorized,
) -> Result<Response, ApiError> {
    if auth.claims.dd == Some(0) {
        return Err(ApiError::forbidden(
            "The authentication webtask token cannot be used to issue new webtask tokens.",
        ));
    }
    app.writes.admit(&auth.container)?;
    let (d, secrets) = load(&app, &auth).await?;
    let saved = deploy(&app, &auth, d.code.clone(), &secrets, d.meta.clone()).await?;
    app.webtasks
        .store
        .delete_draft(&auth.container, auth.name())
        .await?;
    let mut body = item(&app, &saved);
    body.insert("deployed_draft_saved_at".into(), d.saved_at.into());
    Ok(deployed(&app, &saved, body))
}
