//! What a run asks of the host while it waits (outbound requests, a timer)
//! and what the host hands back: the types the engine, the worker protocol
//! and both backends share, with their frame encoding side by side.
//!
//! A run that has nothing left to do but wait *parks*: the engine returns
//! [`Wait`], the backend hands the requests to [`Outbound`](super::outbound)
//! and frees the worker for other containers, and the run goes on when
//! [`Resume`] comes back. The run's time limit counts the wait; its CPU
//! budget does not. Their frame encoding is in [`super::frame`].

use crate::egress::{Outcome, Redirect, Request};
use std::time::Duration;

/// One thing a parked run asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostCall {
    /// Make this request; its id comes back with the outcome.
    Fetch(u64, Request),
    /// The run no longer wants this request's outcome (its signal aborted).
    Cancel(u64),
}

/// A parked run's requests, and when its next timer is due.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Wait {
    pub(crate) calls: Vec<HostCall>,
    pub(crate) wake_after: Option<Duration>,
}

/// What ends a wait: the outcomes that came in, or the run's time is up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Resume {
    pub(crate) completions: Vec<(u64, Outcome)>,
    pub(crate) expired: bool,
}

/// The redirect mode numbered as fetch.js numbers it (its index in
/// `['follow', 'manual', 'error']`), and as frames carry it.
pub(crate) fn redirect_of(n: u64) -> Redirect {
    match n {
        1 => Redirect::Manual,
        2 => Redirect::Error,
        _ => Redirect::Follow,
    }
}

pub(crate) fn redirect_code(r: Redirect) -> u64 {
    match r {
        Redirect::Follow => 0,
        Redirect::Manual => 1,
        Redirect::Error => 2,
    }
}

/// One outbound request of a run as the host saw it: what the run sent and
/// what came back. Kept in a run's reply, recorded with the run's input
/// (redacted, see `recording.rs`) and answered from on replay.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Subrequest {
    pub(crate) method: String,
    pub(crate) url: String,
    /// SHA-256 of the request body (hex; of nothing when it had none).
    pub(crate) body_sha256: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) request_headers: Vec<(String, String)>,
    /// The response's status, or none when the request failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<u16>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) status_text: String,
    /// The URL answered (after redirects).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) final_url: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) redirected: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) headers: Vec<(String, String)>,
    /// The response body (as text: UTF-8, or base64 when `body_base64`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) body: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) body_base64: bool,
    /// The body was cut to the recording limit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) truncated: bool,
    /// Why there is no response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// How long it took.
    #[serde(default)]
    pub(crate) ms: u64,
}

/// The hex SHA-256 of a request body, for matching on replay.
pub(crate) fn body_sha256(body: Option<&[u8]>) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(body.unwrap_or_default());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The largest response body kept in a subrequest's record.
pub(crate) const SUBREQUEST_BODY_BYTES: usize = 16 << 10;

impl Subrequest {
    /// The record of `request` and what came of it after `ms`.
    pub(crate) fn of(request: &Request, outcome: &Outcome, ms: u64) -> Self {
        let mut s = Subrequest {
            method: request.method.clone(),
            url: request.url.clone(),
            body_sha256: body_sha256(request.body.as_deref()),
            request_headers: request.headers.clone(),
            status: None,
            status_text: String::new(),
            final_url: String::new(),
            redirected: false,
            headers: Vec::new(),
            body: String::new(),
            body_base64: false,
            truncated: false,
            error: None,
            ms,
        };
        match outcome {
            Outcome::Response {
                status,
                status_text,
                url,
                redirected,
                headers,
                body,
            } => {
                use base64::Engine as _;
                s.status = Some(*status);
                s.status_text = status_text.clone();
                s.final_url = url.clone();
                s.redirected = *redirected;
                s.headers = headers.clone();
                let kept = &body[..body.len().min(SUBREQUEST_BODY_BYTES)];
                s.truncated = kept.len() < body.len();
                match std::str::from_utf8(kept) {
                    Ok(text) => s.body = text.to_owned(),
                    Err(_) => {
                        s.body = base64::engine::general_purpose::STANDARD.encode(kept);
                        s.body_base64 = true;
                    }
                }
            }
            Outcome::Failed(message) => s.error = Some(message.clone()),
        }
        s
    }

    /// What a replayed run gets for this request: the recorded answer.
    pub(crate) fn outcome(&self) -> Outcome {
        use base64::Engine as _;
        match (self.status, &self.error) {
            (Some(status), _) => Outcome::Response {
                status,
                status_text: self.status_text.clone(),
                url: if self.final_url.is_empty() {
                    self.url.clone()
                } else {
                    self.final_url.clone()
                },
                redirected: self.redirected,
                headers: self.headers.clone(),
                body: if self.body_base64 {
                    base64::engine::general_purpose::STANDARD
                        .decode(&self.body)
                        .unwrap_or_default()
                } else {
                    self.body.clone().into_bytes()
                },
            },
            (None, Some(e)) => Outcome::Failed(e.clone()),
            (None, None) => Outcome::Failed("the recorded request has no answer".to_owned()),
        }
    }

    /// Whether `request` is this one: same method, URL and body.
    pub(crate) fn matches(&self, request: &Request) -> bool {
        self.method == request.method
            && self.url == request.url
            && self.body_sha256 == body_sha256(request.body.as_deref())
    }
}
