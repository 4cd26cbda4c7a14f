//! Extractors that every endpoint goes through: a handler that takes
//! [`Authorized`] cannot forget to authenticate, authorize the container or
//! check the names in its path.

use super::App;
use crate::error::ApiError;
use crate::names;
use crate::query::Query;
use crate::rate::Permit;
use crate::token::Claims;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use std::collections::HashMap;
use std::sync::Arc;

/// A caller with a verified, unrevoked token (from `Authorization: Bearer`
/// or `?key=`), and the request's query.
#[derive(Debug)]
pub(crate) struct Caller {
    pub(crate) claims: Claims,
    pub(crate) query: Query,
}

/// A [`Caller`] allowed to manage the `{container}` of the path (and, on
/// routes that have one, a valid `{name}`).
#[derive(Debug)]
pub(crate) struct Authorized {
    pub(crate) claims: Claims,
    pub(crate) container: String,
    /// The `{name}` path parameter, checked, on routes that have one.
    name: Option<String>,
    pub(crate) query: Query,
    /// The container's place among its management requests in progress,
    /// held while the handler runs (see `Limits::management_in_flight_per_container`).
    permit: Option<Permit>,
}

impl Authorized {
    /// Gives back the place among the container's management requests in
    /// progress: for a stream, which lives on and has its own limits.
    pub(crate) fn release(&mut self) {
        self.permit = None;
    }

    /// The webtask named in the path. Only on `/{container}/{name}` routes.
    pub(crate) fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    /// The same caller and container, for another (already checked) webtask name.
    pub(crate) fn with_name(&self, name: String) -> Authorized {
        Authorized {
            claims: self.claims.clone(),
            container: self.container.clone(),
            name: Some(name),
            query: Query::parse(None),
            permit: None,
        }
    }
}

/// The path's parameters, as written.
async fn path_params(
    parts: &mut Parts,
    state: &Arc<App>,
) -> Result<HashMap<String, String>, ApiError> {
    let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(|e| ApiError::bad_request(format!("the request path is not valid: {e}")))?;
    Ok(params)
}

/// `container` and `name` must be valid names.
fn check_names(params: &HashMap<String, String>) -> Result<(), ApiError> {
    for (key, what) in [("container", "container"), ("name", "webtask")] {
        if let Some(value) = params.get(key) {
            names::check(what, value)?;
        }
    }
    Ok(())
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let query = Query::parse(parts.uri.query());
        let claims = app.auth.authenticate(&parts.headers, &query)?;
        Ok(Caller { claims, query })
    }
}

impl FromRequestParts<Arc<App>> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let Caller { claims, query } = Caller::from_request_parts(parts, app).await?;
        let mut params = path_params(parts, app).await?;
        let container = params
            .remove("container")
            .ok_or_else(|| ApiError::internal("this route has no {container}"))?;
        // Authorization first: a tenant learns nothing about names outside its container.
        claims.authorize(&container)?;
        names::check("container", &container)?;
        check_names(&params)?;
        let permit = Some(
            app.in_flight
                .enter(&container)
                .inspect_err(|_| app.metrics.reject("management_in_flight"))?,
        );
        Ok(Authorized {
            claims,
            container,
            name: params.remove("name"),
            query,
            permit,
        })
    }
}

/// An [`Authorized`] caller about to deploy: not a webtask token (a deploy
/// issues the webtask's token, and `dd = 0` tokens issue none: the
/// original's rule), and within the container's write rate. PUT, rollback,
/// rename and a draft's deploy take it.
#[derive(Debug)]
pub(crate) struct Deployer(pub(crate) Authorized);

impl FromRequestParts<Arc<App>> for Deployer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let auth = Authorized::from_request_parts(parts, app).await?;
        if auth.claims.dd == Some(0) {
            return Err(ApiError::forbidden(
                "The authentication webtask token cannot be used to issue new webtask tokens.",
            ));
        }
        app.admit_write(&auth.container)?;
        Ok(Deployer(auth))
    }
}

/// Reads a body of at most `limit` bytes; more is 413 `Request body size exceeds {limit}`.
pub(crate) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::too_large(limit))
}

/// A management request's body, at most [`Limits::management_body`]
/// bytes (more is 413, before more is read).
///
/// [`Limits::management_body`]: crate::config::Limits::management_body
#[derive(Debug)]
pub(crate) struct ManagementBody(pub(crate) bytes::Bytes);

impl FromRequest<Arc<App>> for ManagementBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &Arc<App>) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        read_body(body, &parts.headers, app.limits.management_body)
            .await
            .map(ManagementBody)
    }
}

/// A body type [`Json`] reads: what its error messages call it.
pub(crate) trait JsonBody: serde::de::DeserializeOwned {
    /// What the whole body must be, e.g. "a JSON object with `code`".
    const SHAPE: &'static str;
    /// What a field belongs to, e.g. "the webtask".
    const OF: &'static str;
}

/// A management body read as JSON into `T`, size-limited as
/// [`ManagementBody`]; a bad body is 400 naming the field at fault
/// (`field `secrets` of the webtask is not valid: …`), as svix's
/// `ValidatedJson` does.
#[derive(Debug)]
pub(crate) struct Json<T>(pub(crate) T);

impl<T: JsonBody> Json<T> {
    /// Parses `body` as a `T`, with the field path in the error.
    pub(crate) fn parse(body: &[u8]) -> Result<T, ApiError> {
        let de = &mut serde_json::Deserializer::from_slice(body);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            ApiError::bad_request(if path == "." {
                format!("the body must be {}: {inner}", T::SHAPE)
            } else {
                format!("field `{path}` of {} is not valid: {inner}", T::OF)
            })
        })
    }
}

impl<T: JsonBody> FromRequest<Arc<App>> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &Arc<App>) -> Result<Self, ApiError> {
        let ManagementBody(body) = ManagementBody::from_request(req, app).await?;
        Self::parse(&body).map(Json)
    }
}
