//! Discovery: finding the extension a container has installed for a point.
//! [`ExtendBuilder::webtask`](crate::ExtendBuilder::webtask) discovers
//! through a webtask host (cached, tuned by [`WebtaskOptions`]);
//! [`StaticDiscovery`] serves a fixed map (tests, a single tenant); a
//! platform with its own registry implements [`Discovery`]. Each answers
//! with an [`Endpoint`]: where to call the extension, with which secret.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::RwLock;

pub use crate::webtask::WebtaskOptions;

/// A boxed, `Send` future: what [`Discovery::discover`] returns, so the trait
/// stays object-safe without a macro.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Finds the extension a container has for a point.
///
/// The client calls it on every invocation (under the sync deadline), so an
/// implementation that talks to a remote service should cache.
pub trait Discovery: Send + Sync + 'static {
    /// The extension `container` has installed for `point`, `None` when it has
    /// none (the point's default runs), or an error.
    fn discover<'a>(
        &'a self,
        container: &'a str,
        point: &'a str,
    ) -> BoxFuture<'a, Result<Option<Endpoint>, DiscoveryError>>;

    /// Forgets what the backend remembers about (container, point), so the
    /// next [`discover`](Discovery::discover) asks its source again. Called by
    /// [`Extend::invalidate`](crate::Extend::invalidate), and by the client
    /// when a host says the extension discovery pointed at is gone. The
    /// default does nothing: right for a backend that does not cache.
    fn invalidate<'a>(&'a self, container: &'a str, point: &'a str) -> BoxFuture<'a, ()> {
        let _ = (container, point);
        Box::pin(std::future::ready(()))
    }

    /// The names of extensions `container` has installed for `point` but
    /// disabled, which [`discover`](Discovery::discover) passes over. The
    /// durable outbox asks when a delivery finds no extension, and keeps
    /// the invocation as a dead letter to replay once one is enabled again
    /// rather than dropping it. The default knows of none.
    fn disabled<'a>(
        &'a self,
        container: &'a str,
        point: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, DiscoveryError>> {
        let _ = (container, point);
        Box::pin(std::future::ready(Ok(Vec::new())))
    }
}

/// Why discovery could not give an answer.
#[derive(Debug)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// Several extensions match and none can be preferred.
    Ambiguous {
        /// Their names.
        names: Vec<String>,
    },
    /// The discovery backend failed.
    Failed(Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiscoveryError::Ambiguous { names } => {
                write!(f, "several extensions match: {}", names.join(", "))
            }
            DiscoveryError::Failed(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DiscoveryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DiscoveryError::Failed(e) => Some(&**e),
            DiscoveryError::Ambiguous { .. } => None,
        }
    }
}

/// Where to call an installed extension: the URL to POST to and the secret it expects as
/// `Authorization: Bearer`.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: reqwest::Url,
    secret: Option<String>,
}

/// The URL given for an extension is not an absolute `http` or `https` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidUrl {
    url: String,
    reason: String,
}

impl fmt::Display for InvalidUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a valid extension URL: {}",
            self.url, self.reason
        )
    }
}

impl std::error::Error for InvalidUrl {}

impl Endpoint {
    /// An extension at `url`, which must be absolute `http` or `https`.
    ///
    /// # Errors
    /// [`InvalidUrl`] saying what is wrong with the URL.
    pub fn new(url: &str) -> Result<Self, InvalidUrl> {
        let invalid = |reason: String| InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        match parsed.scheme() {
            "http" | "https" => Ok(Endpoint {
                url: parsed,
                secret: None,
            }),
            other => Err(invalid(format!(
                "the scheme is `{other}`; only http and https are supported"
            ))),
        }
    }

    /// Sets the secret sent as `Authorization: Bearer <secret>`.
    #[must_use]
    pub fn with_secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// The URL invocations are POSTed to.
    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// The bearer secret, if any.
    pub fn secret(&self) -> Option<&str> {
        self.secret.as_deref()
    }
}

impl fmt::Debug for Endpoint {
    /// Never prints the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url.as_str())
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Discovery from a map filled in code: for tests, demos, and platforms whose
/// extensions are configured rather than discovered.
///
/// ```
/// # use extend_hooks::discovery::{Endpoint, StaticDiscovery};
/// let discovery = StaticDiscovery::new().with(
///     "acme",
///     "on-new-lead",
///     Endpoint::new("https://extensions.example/acme/score")?.with_secret("s3cret"),
/// );
/// # Ok::<(), extend_hooks::discovery::InvalidUrl>(())
/// ```
#[derive(Default)]
pub struct StaticDiscovery {
    // Nested so a lookup can borrow both keys: no allocation per invocation.
    map: RwLock<HashMap<String, HashMap<String, Endpoint>>>,
}

impl StaticDiscovery {
    /// An empty map: every point runs its default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) `container`'s extension for `point`.
    #[must_use]
    pub fn with(self, container: &str, point: &str, extension: Endpoint) -> Self {
        self.insert(container, point, extension);
        self
    }

    /// Adds (or replaces) an extension while in use.
    pub fn insert(&self, container: &str, point: &str, extension: Endpoint) {
        self.map
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(container.to_owned())
            .or_default()
            .insert(point.to_owned(), extension);
    }

    /// Removes `container`'s extension for `point`, returning it.
    pub fn remove(&self, container: &str, point: &str) -> Option<Endpoint> {
        self.map
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get_mut(container)?
            .remove(point)
    }

    fn get(&self, container: &str, point: &str) -> Option<Endpoint> {
        let map = self
            .map
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(container)?.get(point).cloned()
    }
}

impl Discovery for StaticDiscovery {
    fn discover<'a>(
        &'a self,
        container: &'a str,
        point: &'a str,
    ) -> BoxFuture<'a, Result<Option<Endpoint>, DiscoveryError>> {
        let found = self.get(container, point);
        Box::pin(std::future::ready(Ok(found)))
    }
}

impl fmt::Debug for StaticDiscovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let map = self
            .map
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f.debug_struct("StaticDiscovery")
            .field("extensions", &map.values().map(HashMap::len).sum::<usize>())
            .finish()
    }
}
