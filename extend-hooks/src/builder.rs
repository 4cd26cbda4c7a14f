//! [`ExtendBuilder`]: every setting of an [`Extend`] client, checked when
//! it is built ([`BuildError`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::client::{Extend, Inner};
use crate::discovery::Discovery;
use crate::invoke::Invoker;
use crate::outcome::{Outcome, OutcomeFn};
use crate::webtask::{Management, WebtaskApi, WebtaskDiscovery, WebtaskOptions};

impl Extend {
    /// Starts configuring a client.
    pub fn builder() -> ExtendBuilder {
        ExtendBuilder::default()
    }
}

/// Configures an [`Extend`] client. Every setting but the discovery has a default.
pub struct ExtendBuilder {
    discovery: Option<Arc<dyn Discovery>>,
    webtask: Option<(String, String)>,
    webtask_options: Option<WebtaskOptions>,
    http: Option<reqwest::Client>,
    max_response_bytes: usize,
    queue_capacity: usize,
    concurrency: usize,
    /// The in-memory queue's retries: attempts, then the backoff's base and
    /// cap (see [`RetrySchedule::exponential`](crate::outbox::RetrySchedule::exponential)).
    max_attempts: u32,
    backoff: (Duration, Duration),
    /// The in-memory queue's settings called, which an outbox would ignore.
    queue_settings: Vec<&'static str>,
    on_outcome: Option<OutcomeFn>,
    watch_changes: bool,
    outbox: Option<crate::outbox::OutboxConfig>,
    trace_parent: Option<crate::observe::TraceParentFn>,
}

impl Default for ExtendBuilder {
    fn default() -> Self {
        ExtendBuilder {
            discovery: None,
            webtask: None,
            webtask_options: None,
            http: None,
            max_response_bytes: 10 * 1024 * 1024,
            queue_capacity: 10_000,
            concurrency: 64,
            queue_settings: Vec::new(),
            max_attempts: 4,
            backoff: (Duration::from_millis(200), Duration::from_secs(10)),
            on_outcome: None,
            watch_changes: false,
            outbox: None,
            trace_parent: None,
        }
    }
}

impl ExtendBuilder {
    /// Where invocations take their trace from: `f` returns the W3C
    /// `traceparent` of the caller's current span (e.g. from
    /// `tracing-opentelemetry`), and each invocation joins that trace: its
    /// `extension_point` span records the trace id and each exchange sends
    /// a `traceparent` in it, which extend-host puts on the run's log lines.
    /// Without it (or when `f` returns `None`), each invocation starts a
    /// trace of its own. Async invocations call `f` when they are queued.
    #[must_use]
    pub fn trace_parent(mut self, f: impl Fn() -> Option<String> + Send + Sync + 'static) -> Self {
        self.trace_parent = Some(Arc::new(f));
        self
    }

    /// Records async invocations durably before the call returns `Ok`, and
    /// delivers them at least once from there (see [`crate::outbox`]).
    /// Without it they wait in memory and are lost with the process.
    /// [`build`](ExtendBuilder::build) opens it (the SQLite file, or a first
    /// PostgreSQL connection and the table) and fails with
    /// [`BuildError::Outbox`] when it can't.
    #[must_use]
    pub fn outbox(mut self, config: crate::outbox::OutboxConfig) -> Self {
        self.outbox = Some(config);
        self
    }

    /// How extensions are found: exactly one of this and
    /// [`ExtendBuilder::webtask`] is required; [`build`](ExtendBuilder::build)
    /// refuses both.
    #[must_use]
    pub fn discovery(mut self, discovery: impl Discovery) -> Self {
        self.discovery = Some(Arc::new(discovery));
        self
    }

    /// Finds extensions through a webtask host's management API (a
    /// webtask discovery, cached) at `base_url` with `token`: the master
    /// token, or a tenant token when the client serves one tenant. Also enables
    /// [`Extend::management`]. Exactly one of this and
    /// [`ExtendBuilder::discovery`] is required.
    #[must_use]
    pub fn webtask(mut self, base_url: impl Into<String>, token: impl Into<String>) -> Self {
        self.webtask = Some((base_url.into(), token.into()));
        self
    }

    /// Follows the host's change stream (`GET /api/changes`, which needs the
    /// master token) and drops cached discovery answers as soon as an
    /// extension of their container is installed, replaced or removed,
    /// through this replica or any other: without it, another replica's
    /// install is seen only when the cached answer expires
    /// ([`WebtaskOptions::ttl`]). The stream reconnects with backoff,
    /// resuming where it left off; while it is down, answers are dropped
    /// when it fails and cached for their TTL until it is back. Only with
    /// [`ExtendBuilder::webtask`]. Default off.
    #[must_use]
    pub fn watch_changes(mut self, on: bool) -> Self {
        self.watch_changes = on;
        self
    }

    /// Cache lifetimes, size and metadata key names of webtask discovery.
    /// Only with [`ExtendBuilder::webtask`]: [`build`](ExtendBuilder::build)
    /// refuses them with another discovery, where they would do nothing.
    #[must_use]
    pub fn webtask_options(mut self, options: WebtaskOptions) -> Self {
        self.webtask_options = Some(options);
        self
    }

    /// The HTTP client to use, e.g. one with a proxy or custom TLS roots.
    /// By default one is built with rustls, no redirects, and a 10 s connect
    /// timeout. With the `rustls` feature, call [`install_crypto_provider`]
    /// before building your own client.
    #[must_use]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The largest response body accepted from an extension (default 10 MiB).
    #[must_use]
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// How many async invocations may be queued or in flight at once (default
    /// 10,000). Beyond that, async calls fail at once with
    /// [`ErrorKind::QueueFull`](crate::ErrorKind::QueueFull): memory stays bounded.
    #[must_use]
    pub fn async_queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self.queue_settings.push("async_queue_capacity");
        self
    }

    /// How many async deliveries run at once (default 64).
    #[must_use]
    pub fn async_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self.queue_settings.push("async_concurrency");
        self
    }

    /// Attempts per async delivery, the first included (default 4). Only
    /// transient failures are retried: connection errors, 429, 502, 503, 504.
    #[must_use]
    pub fn async_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self.queue_settings.push("async_max_attempts");
        self
    }

    /// The backoff between async attempts: `base` doubling per attempt, capped
    /// at `max`, with jitter; a longer `Retry-After` is honoured up to `max`
    /// (defaults 200 ms and 10 s).
    #[must_use]
    pub fn async_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff = (base, max);
        self.queue_settings.push("async_backoff");
        self
    }

    /// Called with every async outcome, after it is logged: to record outcomes
    /// in the platform's own store. Keep it quick; it runs on the delivery task.
    #[must_use]
    pub fn on_outcome(mut self, callback: impl Fn(&Outcome) + Send + Sync + 'static) -> Self {
        self.on_outcome = Some(Arc::new(callback));
        self
    }

    /// Builds the client. Call it inside a Tokio runtime: async deliveries run
    /// on the runtime that built the client.
    ///
    /// # Errors
    /// [`BuildError`] when no discovery is set or two are, webtask options
    /// are set without a webtask host, a setting is zero, there is no Tokio
    /// runtime, or the HTTP client can't be built.
    pub fn build(self) -> Result<Extend, BuildError> {
        match (&self.discovery, &self.webtask, &self.webtask_options) {
            (None, None, _) => return Err(BuildError::NoDiscovery),
            (Some(_), Some(_), _) => return Err(BuildError::TwoDiscoveries),
            (Some(_), None, Some(_)) => return Err(BuildError::WebtaskOptionsWithoutWebtask),
            _ => {}
        }
        if self.watch_changes && self.webtask.is_none() {
            return Err(BuildError::WatchWithoutWebtask);
        }
        // With an outbox, async calls never reach the in-memory queue: its
        // settings would silently do nothing.
        if let (Some(_), Some(setting)) = (&self.outbox, self.queue_settings.first()) {
            return Err(BuildError::QueueSettingWithOutbox(setting));
        }
        for (value, setting) in [
            (self.queue_capacity, "async_queue_capacity"),
            (self.concurrency, "async_concurrency"),
            (self.max_attempts as usize, "async_max_attempts"),
            (self.max_response_bytes, "max_response_bytes"),
        ] {
            if value == 0 {
                return Err(BuildError::Zero(setting));
            }
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
        let http = match self.http {
            Some(http) => http,
            None => default_http_client()?,
        };
        let mut watch = None;
        let (discovery, management): (Arc<dyn Discovery>, _) = match (self.discovery, self.webtask)
        {
            (Some(d), _) => (d, None),
            (None, Some((url, token))) => {
                let api = Arc::new(
                    WebtaskApi::new(http.clone(), &url, token).map_err(BuildError::WebtaskUrl)?,
                );
                let w = WebtaskDiscovery::new(
                    Arc::clone(&api),
                    self.webtask_options.unwrap_or_default(),
                );
                if self.watch_changes {
                    watch = Some(crate::webtask::watch_changes(api, w.clone(), &runtime));
                }
                (Arc::new(w.clone()), Some(Management::new(w)))
            }
            (None, None) => return Err(BuildError::NoDiscovery),
        };
        let invoker = Arc::new(Invoker {
            http,
            discovery,
            max_response_bytes: self.max_response_bytes,
            trace_parent: self.trace_parent,
        });
        let durable = self.outbox.is_some();
        let config = self.outbox.unwrap_or_else(|| {
            crate::outbox::OutboxConfig::in_memory(
                self.queue_capacity,
                self.concurrency,
                crate::outbox::RetrySchedule::exponential(
                    self.backoff.0,
                    self.backoff.1,
                    self.max_attempts,
                ),
            )
        });
        let engine =
            crate::outbox::Worker::start(config, Arc::clone(&invoker), self.on_outcome, &runtime)
                .map_err(BuildError::Outbox)?;
        let outbox = durable.then(|| crate::outbox::Outbox {
            store: Arc::clone(&engine.store),
            worker: Arc::clone(&engine),
        });
        Ok(Extend {
            inner: Arc::new(Inner {
                invoker,
                engine,
                outbox,
                management,
                watch,
            }),
        })
    }
}

/// Installs ring as the process's rustls crypto provider, unless one is
/// installed already (the application's choice wins).
///
/// reqwest is built here without a provider of its own, so that only ring is
/// compiled. [`ExtendBuilder::build`] calls this; call it yourself before
/// building a `reqwest::Client` to pass to [`ExtendBuilder::http_client`],
/// or reqwest panics for want of a provider.
#[cfg(feature = "rustls")]
pub fn install_crypto_provider() {
    // `Err` means a provider is installed already, which is the goal.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn default_http_client() -> Result<reqwest::Client, BuildError> {
    #[cfg(feature = "rustls")]
    install_crypto_provider();
    reqwest::Client::builder()
        // Extensions answer; they don't send us elsewhere with the tenant's secret.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("extend-hooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(BuildError::Http)
}

impl fmt::Debug for ExtendBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtendBuilder")
            .field("has_discovery", &self.discovery.is_some())
            .field("queue_capacity", &self.queue_capacity)
            .field("concurrency", &self.concurrency)
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

/// Why [`ExtendBuilder::build`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// No discovery was configured.
    NoDiscovery,
    /// Both `.discovery(...)` and `.webtask(...)` were called: one client
    /// finds extensions one way.
    TwoDiscoveries,
    /// `.webtask_options(...)` was called without `.webtask(...)`: the options
    /// would do nothing.
    WebtaskOptionsWithoutWebtask,
    /// A setting that must be at least 1 is 0.
    Zero(&'static str),
    /// `build` was called outside a Tokio runtime.
    NoRuntime,
    /// The HTTP client could not be built.
    Http(reqwest::Error),
    /// The webtask host URL is not an absolute http or https URL.
    WebtaskUrl(String),
    /// `.watch_changes(true)` was called without `.webtask(...)`: only a
    /// webtask host has a change stream.
    WatchWithoutWebtask,
    /// The outbox could not be opened.
    Outbox(crate::outbox::OutboxError),
    /// An `async_*` setting of the in-memory queue was called together with
    /// `.outbox(...)`, which replaces that queue: it would do nothing.
    QueueSettingWithOutbox(&'static str),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::NoDiscovery => f.write_str(
                "no discovery configured: call .webtask(url, token) or .discovery(...) on the builder",
            ),
            BuildError::TwoDiscoveries => f.write_str(
                "both .webtask(url, token) and .discovery(...) were called on the builder: keep one",
            ),
            BuildError::WebtaskOptionsWithoutWebtask => f.write_str(
                ".webtask_options(...) only applies to .webtask(url, token) discovery, which is not configured",
            ),
            BuildError::Zero(setting) => write!(f, "`{setting}` must be at least 1"),
            BuildError::NoRuntime => f.write_str(
                "Extend must be built inside a Tokio runtime: async deliveries run on it",
            ),
            BuildError::QueueSettingWithOutbox(setting) => write!(
                f,
                ".{setting}(...) configures the in-memory queue, which .outbox(...) replaces: \
                 set retries and concurrency on the OutboxConfig instead"
            ),
            BuildError::Http(e) => write!(f, "the HTTP client could not be built: {e}"),
            BuildError::WebtaskUrl(e) => write!(f, "the webtask host URL is not usable: {e}"),
            BuildError::WatchWithoutWebtask => f.write_str(
                ".watch_changes(true) follows a webtask host's change stream, and .webtask(url, token) is not configured",
            ),
            BuildError::Outbox(e) => write!(f, "the outbox could not be opened: {e}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Http(e) => Some(e),
            BuildError::Outbox(e) => Some(e),
            _ => None,
        }
    }
}
