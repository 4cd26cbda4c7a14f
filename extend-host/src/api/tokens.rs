//! `POST /api/tokens/issue`, `GET /api/tokens/inspect`, `POST /api/tokens/revoke`.

use super::{App, Query, read_body};
use crate::crypto::random_hex;
use crate::error::ApiError;
use crate::token::{self, Claims, IssueRequest};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError};

/// Issues a token; with `jtn` it also creates or replaces that named webtask
/// (how `wt create` and `wt update` work). Answers the token as text, with the
/// webtask URL in `Location`.
pub(super) async fn issue(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = app.authenticate(&headers, &Query::parse(q.as_deref()))?;
    let body = read_body(body, &headers, app.limits.management_body).await?;
    let req = IssueRequest::parse(&body)?;
    let now = crate::time::unix_now();
    let mut claims = token::derive(&caller, &req, now)?;
    claims.jti = random_hex::<16>();
    let Some(name) = claims.jtn.clone() else {
        if let Some(ectx) = &req.ectx {
            let sealed = app.keys.seal(
                serde_json::to_string(ectx)
                    .expect("string map serializes")
                    .as_bytes(),
            );
            claims.ectx = Some(STANDARD.encode(sealed));
        }
        let token = app.sign(&claims);
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], token).into_response());
    };
    let container = claims
        .ten
        .clone()
        .expect("derive requires one container with jtn");
    let token = app.sign(&claims);
    let secrets = req.ectx.unwrap_or_default();
    app.save_webtask(
        &container,
        &name,
        req.code.unwrap_or_default(),
        &secrets,
        req.meta.unwrap_or_default(),
        token.clone(),
    )
    .await?;
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
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let query = Query::parse(q.as_deref());
    let caller = app.authenticate(&headers, &query)?;
    let token = query
        .get("token")
        .ok_or_else(|| ApiError::bad_request("the `token` query parameter is required"))?;
    let target = app.verify(token)?;
    may_inspect(&caller, &target)?;
    let mut out = serde_json::to_value(&target).expect("claims serialize");
    let obj = out.as_object_mut().expect("claims are an object");
    let sealed_ectx = obj.remove("ectx");
    if let (Some(container), Some(name)) = (target.ten.as_deref(), target.jtn.as_deref()) {
        obj.insert(
            "webtask_url".into(),
            app.webtask_url(container, name).into(),
        );
        if let Some(w) = app.store.get(container, name).await? {
            if query.flag("meta") && !w.meta.is_empty() {
                obj.insert("meta".into(), json!(w.meta));
            }
            if query.flag("fetch_code") {
                obj.insert("code".into(), w.code.clone().into());
            }
            if query.flag("decrypt") {
                let secrets = app.unseal(&w)?;
                if !secrets.is_empty() {
                    obj.insert("ectx".into(), json!(secrets));
                }
            }
        }
    } else if let Some(Value::String(sealed)) = sealed_ectx {
        if query.flag("decrypt") {
            let plain = STANDARD
                .decode(&sealed)
                .ok()
                .and_then(|b| app.keys.open(&b));
            let secrets: BTreeMap<String, String> = plain
                .and_then(|p| serde_json::from_slice(&p).ok())
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
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let query = Query::parse(q.as_deref());
    let caller = app.authenticate(&headers, &query)?;
    let body = read_body(body, &headers, app.limits.management_body).await?;
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
    let target = app.verify(&token)?;
    if target.jti == app.master_jti {
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
    app.store.revoke(&target.jti).await?;
    app.revoked
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(target.jti.clone());
    tracing::info!(jti = %target.jti, "token revoked");
    Ok((
        StatusCode::OK,
        axum::Json(json!({ "jti": target.jti, "revoked": true })),
    )
        .into_response())
}
