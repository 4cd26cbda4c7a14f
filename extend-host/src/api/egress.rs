//! `GET / PUT /api/egress/{container}` (master token): the hosts one
//! container's extensions may call beyond the host's egress policy, e.g.
//! the platform's own internal API for a tenant that pays for it. Entries
//! are `HOST[:PORT]`, as `--allow-egress` takes them: the host at any
//! address it resolves to, and that port besides 80 and 443.

use super::App;
use super::extract::{Caller, Json, JsonBody};
use crate::egress::AllowedHost;
use crate::error::ApiError;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

/// Entries one container may have.
const MAX_ENTRIES: usize = 100;

/// `{"allow": ["HOST[:PORT]", …]}`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EgressBody {
    allow: Vec<String>,
}

impl JsonBody for EgressBody {
    const SHAPE: &'static str = "`{\"allow\": [\"HOST[:PORT]\", …]}`";
    const OF: &'static str = "the egress body";
}

fn master_only(app: &App, caller: &Caller) -> Result<(), ApiError> {
    if app.auth.is_master(&caller.claims) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "a container's egress is set by the platform: it needs the master token",
        ))
    }
}

/// The container's extra hosts.
pub(super) async fn get(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(container): Path<String>,
) -> Result<Response, ApiError> {
    master_only(&app, &caller)?;
    crate::names::check("container", &container)?;
    let allow = app.webtasks.container_egress(&container).await?;
    Ok(axum::Json(json!({ "container": container, "allow": allow })).into_response())
}

/// Replaces the container's extra hosts; `{"allow": []}` removes them.
pub(super) async fn put(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(container): Path<String>,
    Json(body): Json<EgressBody>,
) -> Result<Response, ApiError> {
    master_only(&app, &caller)?;
    crate::names::check("container", &container)?;
    if body.allow.len() > MAX_ENTRIES {
        return Err(ApiError::bad_request(format!(
            "a container may have at most {MAX_ENTRIES} extra egress hosts, not {}",
            body.allow.len()
        )));
    }
    let mut allow = Vec::with_capacity(body.allow.len());
    for entry in &body.allow {
        let parsed: AllowedHost = entry
            .parse()
            .map_err(|e| ApiError::bad_request(format!("allow: {e}")))?;
        allow.push(parsed.to_string());
    }
    allow.dedup();
    app.webtasks
        .set_container_egress(&container, allow.clone())
        .await?;
    app.executor.egress().forget_extras(&container);
    tracing::info!(container = %container, hosts = allow.len(), "container egress set");
    Ok(axum::Json(json!({ "container": container, "allow": allow })).into_response())
}
