//! `POST /api/tokens/issue`, `GET /api/tokens/inspect`, `POST /api/tokens/revoke`.

use super::App;
use super::extract::{Caller, ManagementBody};
use crate::crypto::random_hex;
use crate::error::ApiError;
use crate::query::Query;
use crate::token::{self, Claims, IssueRequest};
use crate::webtasks::NewWebtask;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use std::sync::Arc;

/// Issues a token; with `jtn` it also creates or replaces that named webtask
/// (how `wt create` and `wt update` work). Answers the token as text, with the
/// webtask URL in `Location`.
pub(super) async fn issue(
    State(app): State<Arc<App>>,
    Caller { claims: caller, .. }: Caller,
    ManagementBody(body): ManagementBody,
) -> Result<Response, ApiError> {
    let req = IssueRequest::parse(&body)?;
    let now = crate::time::unix_now();
    let mut claims = token::derive(&caller, &req, now)?;
    claims.jti = random_hex::<16>();
    let Some(name) = claims.jtn.clone() else {
        if let Some(ectx) = &req.ectx {
            claims.ectx = Some(STANDARD.encode(app.webtasks.seal(ectx)));
        }
        let token = app.auth.sign(&claims);
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], token).into_response());
    };
    // `derive` grants `jtn` only together with exactly one container.
    let container = claims
        .ten
        .clone()
        .ok_or_else(|| ApiError::internal("a token with `jtn` was derived without a container"))?;
    // A write like a PUT: the same rate (its checks and quota are `save`'s).
    app.admit_write(&container)?;
    let token = app.auth.sign(&claims);
    let secrets = req.ectx.unwrap_or_default();
    let (_, runnable) = app
        .webtasks
        .save(NewWebtask {
            container: &container,
            name: &name,
            code: req.code.unwrap_or_default(),
            secrets: &secrets,
            meta: req.meta.unwrap_or_default(),
            token: token.clone(),
            by: &caller.jti,
        })
        .await?;
    app.compile_ahead(runnable);
    tracing::info!(%container, webtask = %name, "webtask created or replaced through token issue");
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (header::LOCATION, app.webtask_url(&container, &name)),
        ],
        token,
    )
        .into_response())
}

/// Checks that `caller` may see `target`: not a webtask token, and every
/// container of the target is one of the caller's.
fn may_inspect(caller: &Claims, target: &Claims) -> Result<(), ApiError> {
    if caller.jtn.is_some() {
        return Err(ApiError::forbidden(
            "a webtask token (one with a `jtn` claim) cannot inspect tokens",
        ));
    }
    match (caller.containers(), target.containers()) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(ApiError::forbidden(
            "only a master token may inspect a token that is not limited to containers",
        )),
        (Some(mine), Some(theirs)) => match theirs.iter().find(|c| !mine.contains(c)) {
            None => Ok(()),
            Some(c) => Err(ApiError::forbidden(format!(
                "not authorized to inspect a token for tenant `{c}`"
            ))),
        },
    }
}

/// Returns a token's claims; with `decrypt`, its secrets as an object under
/// `ectx` (what `wt update` copies back); with `meta`/`fetch_code`, the named
/// webtask's metadata and code.
pub(super) async fn inspect(
    State(app): State<Arc<App>>,
    Caller {
        claims: caller,
        query,
    }: Caller,
) -> Result<Response, ApiError> {
    let token = query
        .get("token")
        .ok_or_else(|| ApiError::bad_request("the `token` query parameter is required"))?;
    let target = app.auth.verify(token)?;
    may_inspect(&caller, &target)?;
    let mut out = serde_json::to_value(&target)
        .map_err(|e| ApiError::internal(format!("the claims could not be written: {e}")))?;
    let Some(obj) = out.as_object_mut() else {
        return Err(ApiError::internal("the claims are not a JSON object"));
    };
    let sealed_ectx = obj.remove("ectx");
    if let (Some(container), Some(name)) = (target.ten.as_deref(), target.jtn.as_deref()) {
        obj.insert(
            "webtask_url".into(),
            app.webtask_url(container, name).into(),
        );
        if let Some(w) = app.webtasks.get(container, name).await? {
            if query.flag("meta") && !w.meta.is_empty() {
                obj.insert("meta".into(), json!(w.meta));
            }
            if query.flag("fetch_code") {
                obj.insert("code".into(), w.code.clone().into());
            }
            if query.flag("decrypt") {
                let secrets = app.webtasks.unseal(&w)?;
                if !secrets.is_empty() {
                    obj.insert("ectx".into(), json!(secrets));
                }
            }
        }
    } else if let Some(Value::String(sealed)) = sealed_ectx {
        if query.flag("decrypt") {
            let secrets = STANDARD
                .decode(&sealed)
                .ok()
                .and_then(|b| app.webtasks.open(&b))
                .ok_or_else(|| ApiError::internal("error decrypting JWT token context"))?;
            obj.insert("ectx".into(), json!(secrets));
        } else {
            obj.insert("ectx".into(), sealed.into());
        }
    }
    Ok(axum::Json(out).into_response())
}

/// Revokes a token and, through the `ca` chain, every token issued from it.
pub(super) async fn revoke(
    State(app): State<Arc<App>>,
    Caller {
        claims: caller,
        query,
    }: Caller,
    ManagementBody(body): ManagementBody,
) -> Result<Response, ApiError> {
    let from_body = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_owned))
        .or_else(|| {
            Query::parse(std::str::from_utf8(&body).ok())
                .get("token")
                .map(str::to_owned)
        });
    let token = query
        .get("token")
        .map(str::to_owned)
        .or(from_body)
        .ok_or_else(|| {
            ApiError::bad_request("the token to revoke is required, as `?token=` or in the body")
        })?;
    let target = app.auth.verify(&token)?;
    if app.auth.is_master(&target) {
        return Err(ApiError::forbidden("the master token cannot be revoked"));
    }
    let is_self = caller.jti == target.jti;
    if is_self && target.dr == Some(1) {
        return Err(ApiError::forbidden(
            "this token was issued with `dr` and cannot revoke itself",
        ));
    }
    if !is_self && !target.ca.contains(&caller.jti) {
        return Err(ApiError::forbidden(
            "a token may only be revoked by itself or by a token it was issued from",
        ));
    }
    app.webtasks.revoke(&target.jti).await?;
    app.auth.revoked(target.jti.clone());
    tracing::info!(jti = %target.jti, "token revoked");
    Ok((
        StatusCode::OK,
        axum::Json(json!({ "jti": target.jti, "revoked": true })),
    )
        .into_response())
}
