//! Extensions' outbound requests (`fetch`): the one place they are made and
//! the one place the egress policy is enforced. Worker processes never open
//! sockets; they hand each request to the host, which checks it here.
//!
//! The policy is safe by default: only `http` and `https`, only ports 80
//! and 443, and never an address inside the operator's network (loopback,
//! private, link-local with the cloud metadata address, CGNAT, multicast,
//! unspecified, and the IPv6 spellings of all of them). Addresses are
//! checked as the connection is made — the resolver hands the connector only
//! addresses that pass — so a name cannot resolve to a public address when
//! checked and a private one when connected. Redirects are followed here,
//! one hop at a time, and each hop is checked again.
//!
//! Split by job: [`policy`] (what may be called, and why not), [`meter`]
//! (bytes per container per minute, and the host's counters), and here the
//! client that makes requests by them.

mod meter;
mod policy;

pub(crate) use meter::Counters;
use meter::Meter;
pub use policy::{AllowedHost, EgressPolicy};
use policy::{forbidden, refused_address};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The resolver the egress client connects through: it hands the connector
/// only addresses the policy allows, so what is checked is what is
/// connected to.
struct CheckedResolver(Arc<EgressPolicy>);

/// A refusal made while resolving, found again in reqwest's error chain.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = Arc::clone(&self.0);
        let host = name.as_str().to_ascii_lowercase();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> {
                    Box::new(Refused(format!("cannot resolve `{host}`: {e}")))
                })?
                .collect();
            if policy.listed_host(&host) {
                return Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs);
            }
            let mut first_refusal = None;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match forbidden(a.ip()) {
                    None => true,
                    Some(why) => {
                        first_refusal.get_or_insert_with(|| refused_address(&host, a.ip(), why));
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = first_refusal
                    .unwrap_or_else(|| format!("cannot resolve `{host}`: no addresses"));
                return Err(Box::new(Refused(why)) as _);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// How a request treats a redirect (`RequestInit.redirect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Redirect {
    /// Followed, each hop checked (at most [`MAX_REDIRECTS`]).
    Follow,
    /// Answered as it is.
    Manual,
    /// A failure.
    Error,
}

/// Hops a followed request may take, as browsers allow.
const MAX_REDIRECTS: usize = 20;

/// One outbound request of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) url: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) redirect: Redirect,
}

/// What came back: a response, or why there is none (the `TypeError`
/// message the extension sees).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Response {
        status: u16,
        status_text: String,
        url: String,
        redirected: bool,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    Failed(String),
}

/// Limits on one run's outbound requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    pub(crate) response_size: usize,
    pub(crate) request_size: usize,
    /// Bytes (request and response bodies) one container may move per minute.
    pub(crate) per_minute: u64,
}

/// Reads a container's extra egress hosts (the store's
/// [`Settings`](crate::store::Settings), through the host).
pub(crate) type ExtrasLoader = Arc<
    dyn Fn(String) -> crate::store::BoxFuture<'static, Result<Vec<String>, String>> + Send + Sync,
>;

/// How long a host trusts its copy of a container's extra egress hosts:
/// another host may have changed them (this host forgets its copy at once
/// when the change is made through it).
const EXTRAS_FRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// Containers' extra egress hosts as last read, with when.
type ExtrasCache =
    std::sync::Mutex<std::collections::HashMap<String, (Instant, Arc<Vec<AllowedHost>>)>>;

/// The host's outbound clients and policy.
#[derive(Clone)]
pub(crate) struct Egress {
    policy: Arc<EgressPolicy>,
    /// For hosts the policy checks: its resolver hands the connector only
    /// allowed addresses.
    client: reqwest::Client,
    /// For hosts the operator or the platform named (any address).
    named: reqwest::Client,
    meter: Arc<Meter>,
    pub(crate) counters: Arc<Counters>,
    extras: Option<ExtrasLoader>,
    cache: Arc<ExtrasCache>,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Egress {
    pub(crate) fn new(policy: EgressPolicy) -> Self {
        // reqwest is built with rustls but no provider (as in extend-hooks):
        // ring becomes the process default unless the application chose one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let policy = Arc::new(policy);
        let builder = || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .user_agent(concat!("extend-host/", env!("CARGO_PKG_VERSION")))
        };
        let named = builder().build().unwrap_or_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver(Arc::clone(&policy))))
            .user_agent(concat!("extend-host/", env!("CARGO_PKG_VERSION")))
            // Connections are kept for reuse as reqwest does by default (90 s
            // idle): capping them at 8 per host made a busy host open a new
            // connection for most requests.
            .build()
            .unwrap_or_default();
        Egress {
            policy,
            client,
            named,
            meter: Arc::default(),
            counters: Arc::default(),
            extras: None,
            cache: Arc::default(),
        }
    }

    /// Reads containers' extra egress hosts with `loader`.
    pub(crate) fn with_extras(mut self, loader: ExtrasLoader) -> Self {
        self.extras = Some(loader);
        self
    }

    /// Drops this host's copy of `container`'s extra hosts (they changed).
    pub(crate) fn forget_extras(&self, container: &str) {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(container);
    }

    /// `container`'s extra egress hosts, read at most every [`EXTRAS_FRESH`].
    /// One that cannot be read counts as none (and says so in the host's log).
    async fn extras_of(&self, container: &str) -> Arc<Vec<AllowedHost>> {
        let Some(loader) = &self.extras else {
            return Arc::default();
        };
        if let Some((at, extra)) = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(container)
            && at.elapsed() < EXTRAS_FRESH
        {
            return Arc::clone(extra);
        }
        let extra: Vec<AllowedHost> = match loader(container.to_owned()).await {
            // Entries were checked when they were set.
            Ok(list) => list.iter().filter_map(|h| h.parse().ok()).collect(),
            Err(e) => {
                tracing::warn!(container, error = %e, "cannot read the container's extra egress hosts");
                Vec::new()
            }
        };
        let extra = Arc::new(extra);
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= 10_000 {
            cache.retain(|_, (at, _)| at.elapsed() < EXTRAS_FRESH);
        }
        cache.insert(container.to_owned(), (Instant::now(), Arc::clone(&extra)));
        extra
    }

    /// Makes `request` of a run of `container` by the policy, within `deadline`.
    /// `trace_id` is the run's W3C trace id (or empty), sent on only where
    /// the policy says so.
    pub(crate) async fn fetch(
        &self,
        container: &str,
        request: Request,
        budget: Budget,
        deadline: Instant,
        trace_id: &str,
    ) -> Outcome {
        let sent = request.body.as_ref().map_or(0, |b| b.len() as u64);
        let outcome = match self.meter.take(container, sent, budget.per_minute) {
            Err(refused) => Outcome::Failed(refused),
            Ok(()) => {
                let followed = self.follow(container, request, budget, trace_id);
                match tokio::time::timeout_at(deadline.into(), followed).await {
                    Ok(Ok(outcome)) => {
                        self.counters.sent_bytes.fetch_add(sent, Ordering::Relaxed);
                        outcome
                    }
                    Ok(Err(message)) => Outcome::Failed(message),
                    Err(_) => Outcome::Failed(
                        "the request did not finish within the run's remaining time".to_owned(),
                    ),
                }
            }
        };
        count(&self.counters, &outcome);
        outcome
    }

    /// The `traceparent` to send to `url`, when the policy propagates traces
    /// to it and the extension set none.
    fn traceparent(
        &self,
        url: &url::Url,
        trace_id: &str,
        headers: &[(String, String)],
    ) -> Option<String> {
        if !self.policy.propagate_trace
            || trace_id.len() != 32
            || headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("traceparent"))
        {
            return None;
        }
        let host = url
            .host_str()?
            .trim_start_matches('[')
            .trim_end_matches(']');
        if !self.policy.listed(host, url.port_or_known_default()?) {
            return None;
        }
        let mut span = [0u8; 8];
        getrandom::fill(&mut span).ok()?;
        let span: String = span.iter().map(|b| format!("{b:02x}")).collect();
        Some(format!("00-{trace_id}-{span}-01"))
    }

    async fn follow(
        &self,
        container: &str,
        mut request: Request,
        budget: Budget,
        trace_id: &str,
    ) -> Result<Outcome, String> {
        if request
            .body
            .as_ref()
            .is_some_and(|b| b.len() > budget.request_size)
        {
            return Err(format!(
                "the request body is larger than the limit of {} bytes",
                budget.request_size
            ));
        }
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| format!("`{}` is not a valid HTTP method", request.method))?;
        let mut method = method;
        let mut url = url::Url::parse(&request.url)
            .map_err(|e| format!("`{}` is not a valid URL: {e}", request.url))?;
        let extra = self.extras_of(container).await;
        let mut hops = 0;
        loop {
            self.policy.check_url_with(&url, &extra)?;
            // A host the operator or the platform named may be at any
            // address; every other one goes through the checking resolver.
            let named = url.host_str().is_some_and(|h| {
                let h = h.trim_start_matches('[').trim_end_matches(']');
                let port = url.port_or_known_default().unwrap_or(0);
                self.policy.listed(h, port) || extra.iter().any(|a| a.matches(h, port))
            });
            let client = if named { &self.named } else { &self.client };
            let mut r = client.request(method.clone(), url.clone());
            for (k, v) in &request.headers {
                r = r.header(k.as_str(), v.as_str());
            }
            if let Some(tp) = self.traceparent(&url, trace_id, &request.headers) {
                r = r.header("traceparent", tp);
            }
            if let Some(body) = &request.body {
                r = r.body(body.clone());
            }
            let response = r.send().await.map_err(|e| describe(&e))?;
            let status = response.status();
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if status.is_redirection()
                && let Some(location) = location
                && request.redirect != Redirect::Manual
            {
                if request.redirect == Redirect::Error {
                    return Err(format!(
                        "the response redirected (status {}) and the request's redirect mode is `error`",
                        status.as_u16()
                    ));
                }
                hops += 1;
                if hops > MAX_REDIRECTS {
                    return Err(format!("more than {MAX_REDIRECTS} redirects"));
                }
                let next = url
                    .join(&location)
                    .map_err(|e| format!("the redirect to `{location}` is not a valid URL: {e}"))?;
                // As browsers do: 303, and 301/302 after a POST, become a GET without a body.
                if status == reqwest::StatusCode::SEE_OTHER
                    || (matches!(status.as_u16(), 301 | 302) && method == reqwest::Method::POST)
                {
                    if method != reqwest::Method::HEAD {
                        method = reqwest::Method::GET;
                    }
                    request.body = None;
                    request.headers.retain(|(k, _)| {
                        !k.eq_ignore_ascii_case("content-type")
                            && !k.eq_ignore_ascii_case("content-length")
                    });
                }
                // Credentials are not sent to another origin.
                if next.origin() != url.origin() {
                    request.headers.retain(|(k, _)| {
                        !k.eq_ignore_ascii_case("authorization")
                            && !k.eq_ignore_ascii_case("cookie")
                    });
                }
                url = next;
                continue;
            }
            let count = |n: usize| {
                self.counters
                    .received_bytes
                    .fetch_add(n as u64, Ordering::Relaxed);
                self.meter.take(container, n as u64, budget.per_minute)
            };
            return read(response, url, hops > 0, budget, count).await;
        }
    }
}

async fn read(
    mut response: reqwest::Response,
    url: url::Url,
    redirected: bool,
    budget: Budget,
    count: impl Fn(usize) -> Result<(), String>,
) -> Result<Outcome, String> {
    let status = response.status();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let too_large = || {
        format!(
            "the response body is larger than the limit of {} bytes",
            budget.response_size
        )
    };
    if response
        .content_length()
        .is_some_and(|n| n > budget.response_size as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + chunk.len() > budget.response_size {
            return Err(too_large());
        }
        count(chunk.len())?;
        body.extend_from_slice(&chunk);
    }
    Ok(Outcome::Response {
        status: status.as_u16(),
        status_text: status.canonical_reason().unwrap_or("").to_owned(),
        url: url.to_string(),
        redirected,
        headers,
        body,
    })
}

/// The message of a failed request: the policy's refusal when there was
/// one, else reqwest's error with its causes.
fn describe(e: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut parts = Vec::new();
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<Refused>() {
            return refused.0.clone();
        }
        let text = s.to_string();
        if !parts.iter().any(|p: &String| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    format!("network error: {}", parts.join(": "))
}

/// Counts an outcome under its result (see [`Counters`]).
fn count(counters: &Counters, outcome: &Outcome) {
    let c = match outcome {
        Outcome::Response { .. } => &counters.ok,
        Outcome::Failed(m) if m.starts_with("egress refused") => &counters.refused,
        Outcome::Failed(m) if is_limit(m) => &counters.limited,
        Outcome::Failed(_) => &counters.failed,
    };
    c.fetch_add(1, Ordering::Relaxed);
}

/// Whether a failure is a limit's refusal.
fn is_limit(message: &str) -> bool {
    message.starts_with("egress limit")
        || message.starts_with("subrequest limit")
        || message.contains("is larger than the limit")
}
