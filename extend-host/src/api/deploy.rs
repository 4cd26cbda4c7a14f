//! What every handler that makes a live version shares: the PUT body, secret
//! changes, deploying (the domain's save with the webtask token `Auth` issues,
//! then a compile ahead) and the answer.
//! Used by PUT, rollback and a draft's deploy, so that none of them imports
//! another handler's file.

use super::App;
use super::extract::{Authorized, JsonBody};
use crate::error::ApiError;
use crate::store::StoredWebtask;
use crate::webtasks::NewWebtask;
use crate::wire::opt_string_map;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The body of `PUT /api/webtask/{container}/{name}`. Fields this host does
/// not use (`host`, `name`) are ignored, as the original ignored them.
#[derive(Deserialize)]
pub(super) struct PutBody {
    pub(super) code: Option<String>,
    #[serde(default, deserialize_with = "opt_string_map")]
    pub(super) secrets: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "opt_string_map")]
    pub(super) meta: Option<BTreeMap<String, String>>,
    /// Changes to the secrets the webtask has: a string sets one, `null`
    /// removes one, names left out keep their values. This is how the
    /// editor changes secrets without ever reading their values.
    #[serde(default)]
    pub(super) secret_changes: Option<BTreeMap<String, Option<String>>>,
    pub(super) url: Option<serde::de::IgnoredAny>,
}

impl JsonBody for PutBody {
    const SHAPE: &'static str = "a JSON object with `code` and optional `secrets` and `meta`";
    const OF: &'static str = "the webtask";
}

/// `base` with `changes` applied (see [`PutBody::secret_changes`]).
pub(super) fn apply_secret_changes(
    mut base: BTreeMap<String, String>,
    changes: Option<BTreeMap<String, Option<String>>>,
) -> Result<BTreeMap<String, String>, ApiError> {
    for (name, value) in changes.into_iter().flatten() {
        if name.is_empty() || name.contains('\0') {
            return Err(ApiError::bad_request(
                "a secret name in `secret_changes` is empty or contains a NUL character",
            ));
        }
        match value {
            Some(v) => base.insert(name, v),
            None => base.remove(&name),
        };
    }
    Ok(base)
}

pub(super) fn item(app: &App, w: &StoredWebtask) -> Map<String, Value> {
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

/// The answer to a deploy: 200, `Location` = the run URL, and `body`.
pub(super) fn deployed(app: &App, saved: &StoredWebtask, body: Map<String, Value>) -> Response {
    let url = app.webtask_url(&saved.container, &saved.name);
    (StatusCode::OK, [(header::LOCATION, url)], axum::Json(body)).into_response()
}

/// Makes `code`, `secrets` and `meta` the live version of the path's
/// webtask (a PUT, or a rollback), issuing its webtask token.
pub(super) async fn deploy(
    app: &App,
    auth: &Authorized,
    code: String,
    secrets: &BTreeMap<String, String>,
    meta: BTreeMap<String, String>,
) -> Result<StoredWebtask, ApiError> {
    let (container, name, caller) = (&auth.container, auth.name(), &auth.claims);
    let (saved, runnable) = app
        .webtasks
        .save(NewWebtask {
            container,
            name,
            code,
            secrets,
            meta,
            token: app.auth.webtask_token(caller, container, name),
            by: &caller.jti,
        })
        .await?;
    app.compile_ahead(runnable);
    tracing::info!(%container, webtask = %name, "webtask created or replaced");
    Ok(saved)
}
