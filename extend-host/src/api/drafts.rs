//! A webtask's draft: `PUT|GET|DELETE /api/webtask/{container}/{name}/draft`,
//! `POST …/draft/run` and `POST …/draft/deploy`.
//!
//! A draft is saved code, metadata and (optionally) secrets that neither the
//! webtask's URL nor discovery sees. Its container's tokens may run it (the
//! request body is the payload, as at the run URL) and deploy it, which makes
//! it the live version (a new entry in the version history) and removes it.

use super::App;
use super::deploy::{PutBody, apply_secret_changes, deploy, deployed, item};
use super::extract::{Authorized, Deployer, Json};
use crate::error::ApiError;
use crate::sandbox::io::Subrequest;
use crate::store::Draft;
use crate::webtasks::NewDraft;
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

/// Saves `{code, secrets?, secret_changes?, meta?}` as the draft. Omitted
/// secrets keep the draft's own, if it has pinned some; otherwise they mean
/// "the live webtask's, whatever they are when it runs or deploys".
/// `secret_changes` applies to the draft's secrets (or, when it has none,
/// the live webtask's) and then pins the result to the draft.
pub(super) async fn put(
    State(app): State<Arc<App>>,
    auth: Authorized,
    Json(body): Json<PutBody>,
) -> Result<Response, ApiError> {
    app.admit_write(&auth.container)?;
    let code = body
        .code
        .ok_or_else(|| ApiError::bad_request("`code` is required and must be a string"))?;
    let meta = body.meta.unwrap_or_default();
    let secrets = match (body.secrets, body.secret_changes) {
        (Some(explicit), changes) => Some(apply_secret_changes(explicit, changes)?),
        (None, changes) => {
            // The draft's own secrets stay unless the save changes them, as
            // a PUT keeps a webtask's: a second save without them dropped
            // them, and the deploy went live without its run secret.
            let own = match app.webtasks.draft(&auth.container, auth.name()).await? {
                Some(Draft {
                    sealed_secrets: Some(sealed),
                    ..
                }) => Some(open(&app, &sealed, &auth)?),
                _ => None,
            };
            match (own, changes) {
                (own, None) => own,
                (Some(own), changes) => Some(apply_secret_changes(own, changes)?),
                (None, changes) => {
                    let live = app
                        .webtasks
                        .live_secrets(&auth.container, auth.name())
                        .await?;
                    Some(apply_secret_changes(live, changes)?)
                }
            }
        }
    };
    let names: Option<Vec<String>> = secrets.as_ref().map(|s| s.keys().cloned().collect());
    let saved = app
        .webtasks
        .save_draft(NewDraft {
            container: &auth.container,
            name: auth.name(),
            code,
            meta,
            secrets: secrets.as_ref(),
            by: &auth.claims.jti,
        })
        .await?;
    Ok(axum::Json(view(&saved, names.as_deref())).into_response())
}

/// The most drafts one `GET /api/drafts/{container}` lists.
const MAX_DRAFTS_LISTED: u64 = 1000;

/// `GET /api/drafts/{container}`: the container's drafts, in name order,
/// without code or secrets (`name`, `meta`, `saved_by`, `saved_at`), so
/// that an editor lists drafts of webtasks never deployed.
pub(super) async fn list(
    State(app): State<Arc<App>>,
    auth: Authorized,
) -> Result<Response, ApiError> {
    let drafts = app
        .webtasks
        .drafts(&auth.container, MAX_DRAFTS_LISTED)
        .await?;
    let items: Vec<Value> = drafts
        .iter()
        .map(|d| json!({ "name": d.name, "meta": d.meta, "saved_by": d.saved_by, "saved_at": d.saved_at }))
        .collect();
    Ok(axum::Json(items).into_response())
}

/// The draft: code, meta, secret names (or `null`: the live ones apply).
pub(super) async fn get(
    State(app): State<Arc<App>>,
    auth: Authorized,
) -> Result<Response, ApiError> {
    let d = app
        .webtasks
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
        .draft(&auth.container, auth.name())
        .await?
        .ok_or_else(|| no_draft(auth))?;
    let secrets = match &d.sealed_secrets {
        Some(sealed) => open(app, sealed, auth)?,
        None => {
            app.webtasks
                .live_secrets(&auth.container, auth.name())
                .await?
        }
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
    let w = Arc::new(crate::webtasks::draft_runnable(
        &d,
        &secrets,
        &*app.webtasks.languages().await?,
    ));
    // The caller's token is not the extension's business.
    let mut headers = headers;
    headers.remove(axum::http::header::AUTHORIZATION);
    super::run::execute_webtask(&app, w, "", method, headers, q, body, false).await
}

/// Makes the draft the live version and removes it.
pub(super) async fn deploy_draft(
    State(app): State<Arc<App>>,
    Deployer(auth): Deployer,
) -> Result<Response, ApiError> {
    let (d, secrets) = load(&app, &auth).await?;
    let saved = deploy(&app, &auth, d.code.clone(), &secrets, d.meta.clone()).await?;
    app.webtasks
        .delete_draft(&auth.container, auth.name())
        .await?;
    let mut body = item(&app, &saved);
    body.insert("deployed_draft_saved_at".into(), d.saved_at.into());
    Ok(deployed(&app, &saved, body))
}

/// The recorded inputs of the live webtask, newest first, opened.
async fn recorded(app: &App, container: &str, name: &str) -> Result<Vec<(i64, Value)>, ApiError> {
    let mut out = Vec::new();
    for r in app.webtasks.recorded_inputs(container, name).await? {
        let input = app
            .webtasks
            .open_bytes(&r.sealed)
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .ok_or_else(|| {
                ApiError::internal(format!(
                    "error decrypting a recorded input of `{container}/{name}`"
                ))
            })?;
        out.push((r.recorded_at, input));
    }
    Ok(out)
}

/// `GET /api/webtask/{container}/{name}/inputs`: the run inputs recorded
/// for replaying drafts (`writeOnly` fields already redacted), newest first.
pub(super) async fn inputs(
    State(app): State<Arc<App>>,
    auth: Authorized,
) -> Result<Response, ApiError> {
    let (container, name) = (&auth.container, auth.name());
    let w = app
        .webtasks
        .runnable(container, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No such webtask: {container}/{name}")))?;
    let recording = w.point.as_deref().is_some_and(|p| app.recorder.records(p));
    let inputs: Vec<Value> = recorded(&app, container, name)
        .await?
        .into_iter()
        .map(|(at, input)| json!({ "recorded_at": at, "request": input }))
        .collect();
    Ok(axum::Json(json!({ "recording": recording, "inputs": inputs })).into_response())
}

/// The most of one answer a replay report shows.
const REPLAY_ANSWER_BYTES: usize = 64 << 10;

/// What one run answered, for the replay report: the status and the body
/// (as JSON when it is JSON).
async fn outcome(res: Response, limit: usize) -> Value {
    let status = res.status().as_u16();
    let source = res
        .headers()
        .get("x-wt-response-source")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut out = json!({ "status": status, "source": source });
    out["body"] = match axum::body::to_bytes(res.into_body(), limit.saturating_add(1)).await {
        // A large answer is cut, so that a replay's report stays small.
        Ok(bytes) if bytes.len() > REPLAY_ANSWER_BYTES => {
            out["truncated"] = format!(
                "the answer is {} bytes; replay shows the first {REPLAY_ANSWER_BYTES}",
                bytes.len()
            )
            .into();
            Value::String(String::from_utf8_lossy(&bytes[..REPLAY_ANSWER_BYTES]).into_owned())
        }
        Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) => Value::String(format!("the answer could not be read: {e}")),
    };
    out
}

/// A run's reply as the replay report shows it: status, source, and the
/// body (JSON when it is JSON), cut at [`REPLAY_ANSWER_BYTES`].
fn reply_outcome(reply: &crate::sandbox::Reply) -> Value {
    let mut out = json!({ "status": reply.status, "source": reply.source.as_str() });
    out["body"] = if reply.body.len() > REPLAY_ANSWER_BYTES {
        out["truncated"] = format!(
            "the answer is {} bytes; replay shows the first {REPLAY_ANSWER_BYTES}",
            reply.body.len()
        )
        .into();
        let mut end = REPLAY_ANSWER_BYTES;
        while !reply.body.is_char_boundary(end) {
            end -= 1;
        }
        Value::String(reply.body[..end].to_owned())
    } else {
        serde_json::from_str::<Value>(&reply.body)
            .unwrap_or_else(|_| Value::String(reply.body.clone()))
    };
    out
}

/// Outbound requests as the replay report and the runner list them:
/// method, URL, status (or the error) and milliseconds.
fn summary(subrequests: &[Subrequest]) -> Value {
    Value::Array(
        subrequests
            .iter()
            .map(|s| {
                let mut v = json!({ "method": s.method, "url": s.url, "ms": s.ms });
                match (s.status, &s.error) {
                    (Some(status), _) => v["status"] = status.into(),
                    (None, Some(e)) => v["error"] = e.clone().into(),
                    (None, None) => {}
                }
                v
            })
            .collect(),
    )
}

/// `POST …/draft/replay`: runs the draft and the live version on each
/// recorded input of the live webtask (newest first) and answers both
/// outcomes side by side, for the editor to compare before deploying.
/// `recording` says whether the webtask's point records inputs at all.
/// Each input lists the requests the recorded run made (`subrequests`),
/// and each side the requests it made, answered from that recording;
/// `needs_network` marks an input one of them asked something the
/// recording lacks (its `fetch` was rejected "not recorded").
pub(super) async fn replay(
    State(app): State<Arc<App>>,
    auth: Authorized,
) -> Result<Response, ApiError> {
    let (d, secrets) = load(&app, &auth).await?;
    let (container, name) = (&auth.container, auth.name());
    let live = app.webtasks.runnable(container, name).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "webtask `{container}/{name}` is not deployed: there is nothing to compare the draft with"
        ))
    })?;
    let draft = Arc::new(crate::webtasks::draft_runnable(
        &d,
        &secrets,
        &*app.webtasks.languages().await?,
    ));
    let recording = live
        .point
        .as_deref()
        .is_some_and(|p| app.recorder.records(p));
    let mut inputs = Vec::new();
    for (recorded_at, input) in recorded(&app, container, name).await? {
        let method = input
            .get("method")
            .and_then(Value::as_str)
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
            .unwrap_or(Method::POST);
        let body = input
            .get("body")
            .cloned()
            .unwrap_or(Value::Null)
            .to_string();
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        );
        // Both runs' `fetch` calls are answered from what the recorded run
        // got: replaying never repeats a side effect.
        let recorded_requests: Vec<Subrequest> = input
            .get("subrequests")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let recorded_requests = Arc::new(recorded_requests);
        let mut answers = Vec::with_capacity(2);
        let mut needs_network = false;
        for w in [&live, &draft] {
            let answer = super::run::run_reply(
                &app,
                Arc::clone(w),
                "",
                &method,
                &headers,
                None,
                bytes::Bytes::from(body.clone()),
                super::run::RunMode::Replay(Arc::clone(&recorded_requests)),
            )
            .await;
            answers.push(match answer {
                Ok(reply) => {
                    needs_network |= reply.needs_network;
                    let mut out = reply_outcome(&reply);
                    if !reply.subrequests.is_empty() {
                        out["subrequests"] = summary(&reply.subrequests);
                    }
                    out
                }
                // Refused before it ran (busy, out of CPU): as the caller would see it.
                Err(e) => outcome(e.into_response(), app.limits.response_size).await,
            });
        }
        let draft_answer = answers.pop().unwrap_or(Value::Null);
        let live_answer = answers.pop().unwrap_or(Value::Null);
        let differ = draft_answer["subrequests"] != live_answer["subrequests"];
        let mut request = input;
        if let Some(obj) = request.as_object_mut() {
            obj.remove("subrequests");
        }
        inputs.push(json!({
            "recorded_at": recorded_at,
            "request": request,
            "subrequests": summary(&recorded_requests),
            "live": live_answer,
            "draft": draft_answer,
            "subrequests_differ": differ,
            "needs_network": needs_network,
        }));
    }
    Ok(axum::Json(json!({ "recording": recording, "inputs": inputs })).into_response())
}
