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

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One `--allow-egress` entry: a host name or address, and a port (without
/// one, the default ports 80 and 443).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    host: String,
    port: Option<u16>,
}

impl AllowedHost {
    fn matches(&self, host: &str, port: u16) -> bool {
        self.host == host && self.port.map_or(port == 80 || port == 443, |p| p == port)
    }
}

impl FromStr for AllowedHost {
    type Err = String;

    /// `HOST`, `HOST:PORT`, `[IPv6]` or `[IPv6]:PORT`.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad = || format!("`{s}` is not HOST or HOST:PORT (an IPv6 address in brackets)");
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (addr, after) = rest.split_once(']').ok_or_else(bad)?;
            addr.parse::<Ipv6Addr>().map_err(|_| bad())?;
            match after {
                "" => (addr.to_owned(), None),
                p => (addr.to_owned(), Some(p.strip_prefix(':').ok_or_else(bad)?)),
            }
        } else {
            match s.rsplit_once(':') {
                // An IPv6 address needs brackets: `::1` is not host `:` port 1.
                Some((h, _)) if h.contains(':') => return Err(bad()),
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (s.to_owned(), None),
            }
        };
        let port = match port {
            Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?),
            None => None,
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
        {
            return Err(bad());
        }
        Ok(AllowedHost {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

impl std::fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(p) => write!(f, "{host}:{p}"),
            None => f.write_str(&host),
        }
    }
}

/// What extensions may call: the default rules, hosts the operator allows
/// beyond them, and whether only those hosts may be called.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    allowed: Vec<AllowedHost>,
    only_allowed: bool,
    propagate_trace: bool,
}

impl EgressPolicy {
    /// Allows `host` (`HOST` or `HOST:PORT`) whatever its address, and that
    /// port besides 80 and 443.
    pub fn allow(mut self, host: &str) -> Result<Self, String> {
        self.allowed.push(host.parse()?);
        Ok(self)
    }

    /// Refuses every host the policy does not list.
    pub fn only_allowed(mut self, only: bool) -> Self {
        self.only_allowed = only;
        self
    }

    /// Sends the run's trace (`traceparent`, with a new span id) to the
    /// hosts the policy lists, so that the platform's own services join the
    /// caller's trace. Never to other hosts: a trace id is not a third
    /// party's business. Default: off.
    pub fn propagate_trace(mut self, propagate: bool) -> Self {
        self.propagate_trace = propagate;
        self
    }

    fn listed(&self, host: &str, port: u16) -> bool {
        self.allowed.iter().any(|a| a.matches(host, port))
    }

    fn listed_host(&self, host: &str) -> bool {
        self.allowed.iter().any(|a| a.host == host)
    }

    /// Checks a URL before anything is sent: its scheme, port and, for an
    /// address written in the URL, the address.
    pub(crate) fn check_url(&self, url: &url::Url) -> Result<(), String> {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "egress refused: the scheme `{scheme}:` is not allowed (only http and https)"
            ));
        }
        let Some(host) = url.host_str() else {
            return Err("egress refused: the URL has no host".to_owned());
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = url.port_or_known_default().unwrap_or(0);
        if self.listed(host, port) {
            return Ok(());
        }
        if self.only_allowed {
            return Err(format!(
                "egress refused: `{host}:{port}` is not on this host's allow list (--allow-egress)"
            ));
        }
        if port != 80 && port != 443 {
            return Err(format!(
                "egress refused: port {port} is not allowed (only 80 and 443 unless the operator allows `{host}:{port}`)"
            ));
        }
        if let Ok(ip) = host.parse::<IpAddr>()
            && let Some(why) = forbidden(ip)
        {
            return Err(refused_address(host, ip, why));
        }
        Ok(())
    }
}

fn refused_address(host: &str, ip: IpAddr, why: &str) -> String {
    if host == ip.to_string() {
        format!("egress refused: {ip} is {why}")
    } else {
        format!("egress refused: `{host}` resolves to {ip}, which is {why}")
    }
}

/// Why an address may not be called by default, or `None` when it may.
pub(crate) fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => forbidden_v4(a),
        IpAddr::V6(a) => forbidden_v6(a),
    }
}

fn forbidden_v4(a: Ipv4Addr) -> Option<&'static str> {
    let [o0, o1, ..] = a.octets();
    Some(match () {
        _ if o0 == 0 => "unspecified (0.0.0.0/8)",
        _ if o0 == 127 => "loopback (127.0.0.0/8)",
        _ if o0 == 10 || (o0 == 172 && (16..32).contains(&o1)) || (o0 == 192 && o1 == 168) => {
            "private (RFC 1918)"
        }
        _ if o0 == 169 && o1 == 254 => "link-local (169.254.0.0/16, cloud metadata included)",
        _ if o0 == 100 && (64..128).contains(&o1) => "shared address space (CGNAT, 100.64.0.0/10)",
        _ if (224..240).contains(&o0) => "multicast (224.0.0.0/4)",
        _ if o0 >= 240 => "reserved (240.0.0.0/4) or broadcast",
        _ if o0 == 192 && o1 == 0 && a.octets()[2] == 0 => {
            "IETF protocol assignments (192.0.0.0/24)"
        }
        _ if o0 == 198 && (o1 == 18 || o1 == 19) => "benchmarking (198.18.0.0/15)",
        _ => return None,
    })
}

fn forbidden_v6(a: Ipv6Addr) -> Option<&'static str> {
    let s = a.segments();
    if a.is_unspecified() {
        return Some("unspecified (::)");
    }
    if a.is_loopback() {
        return Some("loopback (::1)");
    }
    // IPv4 inside IPv6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d),
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 address.
    if let Some(v4) = a.to_ipv4_mapped() {
        return forbidden_v4(v4).map(|_| "an IPv4-mapped form of an address that is not allowed");
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    if s[..6] == [0; 6] {
        return Some("an IPv4-compatible IPv6 address (::/96)");
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && forbidden_v4(embedded(s[6], s[7])).is_some() {
        return Some("a NAT64 form of an address that is not allowed");
    }
    if s[0] == 0x2002 && forbidden_v4(embedded(s[1], s[2])).is_some() {
        return Some("a 6to4 form of an address that is not allowed");
    }
    Some(match s[0] {
        x if x & 0xfe00 == 0xfc00 => "private (unique local, fc00::/7)",
        x if x & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        x if x & 0xffc0 == 0xfec0 => "site-local (fec0::/10)",
        x if x & 0xff00 == 0xff00 => "multicast (ff00::/8)",
        _ if s[0] == 0x2001 && s[1] == 0x0db8 => "documentation (2001:db8::/32)",
        _ => return None,
    })
}

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

/// Bytes each container moved in its current minute, on this host.
#[derive(Debug, Default)]
struct Meter(std::sync::Mutex<std::collections::HashMap<String, (Instant, u64)>>);

/// The window the per-minute egress allowance is counted over.
const MINUTE: std::time::Duration = std::time::Duration::from_secs(60);

impl Meter {
    /// Counts `bytes` for `container`; `Err` with the refusal once the
    /// container is past `limit` this minute.
    fn take(&self, container: &str, bytes: u64, limit: u64) -> Result<(), String> {
        let mut m = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if m.len() >= 10_000 {
            m.retain(|_, (start, _)| now.duration_since(*start) < MINUTE);
        }
        let (start, used) = m.entry(container.to_owned()).or_insert((now, 0));
        if now.duration_since(*start) >= MINUTE {
            *start = now;
            *used = 0;
        }
        *used = used.saturating_add(bytes);
        if *used > limit {
            return Err(format!(
                "egress limit reached: container `{container}` may move {limit} bytes a minute (subrequest_bytes_per_minute)"
            ));
        }
        Ok(())
    }
}

/// What the host's outbound requests came to, since it started.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Answered (any status).
    pub(crate) ok: AtomicU64,
    /// Refused by the egress policy.
    pub(crate) refused: AtomicU64,
    /// Refused by a limit (count, size, bytes a minute).
    pub(crate) limited: AtomicU64,
    /// Failed on the network or ran out of time.
    pub(crate) failed: AtomicU64,
    /// Request body bytes sent.
    pub(crate) sent_bytes: AtomicU64,
    /// Response body bytes received.
    pub(crate) received_bytes: AtomicU64,
}

impl Counters {
    fn count(&self, outcome: &Outcome) {
        let c = match outcome {
            Outcome::Response { .. } => &self.ok,
            Outcome::Failed(m) if m.starts_with("egress refused") => &self.refused,
            Outcome::Failed(m) if is_limit(m) => &self.limited,
            Outcome::Failed(_) => &self.failed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// A request refused before it reached the host's client (the run's
    /// request count).
    pub(crate) fn limited(&self) {
        self.limited.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether a failure is a limit's refusal.
fn is_limit(message: &str) -> bool {
    message.starts_with("egress limit")
        || message.starts_with("subrequest limit")
        || message.contains("is larger than the limit")
}

/// The host's outbound client and policy.
#[derive(Clone)]
pub(crate) struct Egress {
    policy: Arc<EgressPolicy>,
    client: reqwest::Client,
    meter: Arc<Meter>,
    pub(crate) counters: Arc<Counters>,
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
            meter: Arc::default(),
            counters: Arc::default(),
        }
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
        self.counters.count(&outcome);
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
        let mut hops = 0;
        loop {
            self.policy.check_url(&url)?;
            let mut r = self.client.request(method.clone(), url.clone());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str) -> Option<&'static str> {
        forbidden(s.parse().unwrap())
    }

    #[test]
    fn the_operator_s_network_is_refused_in_every_spelling() {
        for a in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "0.0.0.0",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
        ] {
            assert!(refused(a).is_some(), "{a} was allowed");
        }
        for a in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(refused(a), None, "{a} was refused");
        }
        assert_eq!(
            refused("169.254.169.254"),
            Some("link-local (169.254.0.0/16, cloud metadata included)")
        );
    }

    fn check(policy: &EgressPolicy, url: &str) -> Result<(), String> {
        policy.check_url(&url::Url::parse(url).unwrap())
    }

    #[test]
    fn urls_are_checked_for_scheme_port_and_written_addresses() {
        let p = EgressPolicy::default();
        assert!(check(&p, "https://api.example.com/x").is_ok());
        assert!(check(&p, "http://api.example.com:80/x").is_ok());
        let e = check(&p, "ftp://example.com/").unwrap_err();
        assert!(e.contains("scheme `ftp:`"), "{e}");
        let e = check(&p, "file:///etc/passwd").unwrap_err();
        assert!(e.contains("scheme `file:`"), "{e}");
        let e = check(&p, "https://example.com:8443/").unwrap_err();
        assert!(e.contains("port 8443"), "{e}");
        let e = check(&p, "http://169.254.169.254/latest/meta-data/").unwrap_err();
        assert!(e.contains("169.254.169.254 is link-local"), "{e}");
        let e = check(&p, "http://[::ffff:7f00:1]/").unwrap_err();
        assert!(e.contains("IPv4-mapped"), "{e}");
        // The WHATWG parser reads these spellings of 127.0.0.1 as an address.
        for url in ["http://2130706433/", "http://0x7f.1/", "http://127.1/"] {
            let e = check(&p, url).unwrap_err();
            assert!(e.contains("loopback"), "{url}: {e}");
        }
    }

    #[test]
    fn the_operator_allows_hosts_and_can_allow_only_them() {
        let p = EgressPolicy::default()
            .allow("127.0.0.1:9000")
            .unwrap()
            .allow("internal.example")
            .unwrap();
        assert!(check(&p, "http://127.0.0.1:9000/").is_ok());
        assert!(check(&p, "http://127.0.0.1:9001/").is_err());
        assert!(check(&p, "https://internal.example/").is_ok());
        assert!(check(&p, "https://internal.example:8443/").is_err());
        assert!(check(&p, "https://api.example.com/").is_ok());
        let only = p.only_allowed(true);
        let e = check(&only, "https://api.example.com/").unwrap_err();
        assert!(e.contains("not on this host's allow list"), "{e}");
        assert!(check(&only, "https://internal.example/").is_ok());
    }

    #[test]
    fn a_container_s_bytes_a_minute_are_counted_apart_from_others() {
        let m = Meter::default();
        assert!(m.take("acme", 600, 1000).is_ok());
        let e = m.take("acme", 500, 1000).unwrap_err();
        assert!(
            e.contains("container `acme` may move 1000 bytes a minute"),
            "{e}"
        );
        assert!(
            m.take("globex", 900, 1000).is_ok(),
            "another container has its own"
        );
        // A new minute starts afresh.
        m.0.lock().unwrap().get_mut("acme").unwrap().0 -= MINUTE;
        assert!(m.take("acme", 900, 1000).is_ok());
    }

    #[test]
    fn allow_entries_parse_or_say_why_not() {
        assert_eq!(
            "API.example.com:8080"
                .parse::<AllowedHost>()
                .unwrap()
                .to_string(),
            "api.example.com:8080"
        );
        assert_eq!(
            "[::1]:9000".parse::<AllowedHost>().unwrap().to_string(),
            "[::1]:9000"
        );
        assert_eq!("10.0.0.5".parse::<AllowedHost>().unwrap().port, None);
        for bad in ["", "host:0", "host:x", "[::1", "a b", "host:70000", "::1"] {
            let e = bad.parse::<AllowedHost>().unwrap_err();
            assert!(e.contains("is not HOST or HOST:PORT"), "{bad}: {e}");
        }
    }
}
