//! The service every connection calls. It applies the host's request
//! limits and the management API's CORS to every request, sends runs
//! straight to their handler and everything else through the router.
//!
//! Runs skip the router because a run is the host's hot path: in the
//! c=32 benchmark, routing (URL parameters, the matched path, a boxed
//! clone of the route) and two `from_fn` middlewares were about 30 of the
//! 80 allocations of a run request on the tokio side. Everything else is
//! served by the router as before.

use super::{App, run};
use crate::error::ApiError;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The host's HTTP service (see the module documentation).
#[derive(Clone)]
pub(crate) struct Front {
    app: Arc<App>,
    router: TowerToHyperService<Router>,
}

impl std::fmt::Debug for Front {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Front").finish_non_exhaustive()
    }
}

type Answer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl Front {
    pub(crate) fn new(app: Arc<App>) -> Self {
        let router = TowerToHyperService::new(super::router(Arc::clone(&app)));
        Front { app, router }
    }
}

/// What a path is, for the request counter.
fn kind(path: &str) -> &'static str {
    if path.starts_with("/api/run/") {
        "run"
    } else if path.starts_with("/api/") {
        "management"
    } else if path.starts_with("/edit") {
        "editor"
    } else {
        "other"
    }
}

impl hyper::service::Service<Request<Incoming>> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, request: Request<Incoming>) -> Answer {
        let path = request.uri().path();
        let kind = kind(path);
        self.app.metrics.request(request.method(), kind);
        if let Err(refusal) = within_limits(&self.app, &request) {
            return answer(refusal.into_response());
        }
        if kind == "run"
            && let Some(target) = run::target(path)
        {
            let app = Arc::clone(&self.app);
            return Box::pin(async move { Ok(run::serve(&app, target, request).await) });
        }
        let api = kind == "management" && request.headers().contains_key(header::ORIGIN);
        if !api {
            return Box::pin(self.router.call(request));
        }
        if request.method() == Method::OPTIONS
            && request
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return answer(preflight());
        }
        let routed = self.router.call(request);
        Box::pin(async move {
            let mut response = routed.await?;
            allow_any_origin(response.headers_mut());
            Ok(response)
        })
    }
}

fn answer(response: Response) -> Answer {
    Box::pin(std::future::ready(Ok(response)))
}

/// Refuses, as JSON, requests whose path and query or headers are over the
/// host's limits, before anything reads them.
fn within_limits<B>(app: &App, request: &Request<B>) -> Result<(), ApiError> {
    let limits = &app.limits;
    let uri = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if uri > limits.uri_length {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            format!(
                "the request's path and query are {uri} bytes; the limit is {} bytes",
                limits.uri_length
            ),
        ));
    }
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if headers.len() > limits.header_count || bytes > limits.header_bytes {
        return Err(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "the request has {} headers of {bytes} bytes; the limits are {} headers and {} bytes",
                headers.len(),
                limits.header_count,
                limits.header_bytes
            ),
        ));
    }
    Ok(())
}

/// The answer to a CORS preflight of the management API. A platform's
/// pages (the embedded editor) call it from their own origin; tokens travel
/// in `Authorization`, never in cookies, so allowing any origin grants
/// nothing a page did not already hold. Run URLs are left alone: their
/// CORS is the extension's to decide.
fn preflight() -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "authorization, content-type, last-event-id, x-extend-deadline-ms",
        ),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    res
}

fn allow_any_origin(h: &mut HeaderMap) {
    let any = HeaderValue::from_static("*");
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, any.clone());
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, any);
}
