//! Settings of webtask discovery.

use std::time::Duration;

/// The name of the webtask secret that holds an extension's run secret: the
/// host refuses a run without `Authorization: Bearer <it>`. It is stored
/// sealed, never in metadata; discovery reads it with `?decrypt=true`.
pub const RUN_SECRET: &str = "auth0-extension-secret";

/// Settings of webtask discovery: cache lifetimes and size, metadata key names.
#[derive(Debug, Clone)]
pub struct WebtaskOptions {
    pub(crate) ttl: Duration,
    pub(crate) none_ttl: Duration,
    pub(crate) max_entries: u64,
    pub(crate) type_key: String,
    pub(crate) disabled_key: String,
}

impl Default for WebtaskOptions {
    fn default() -> Self {
        WebtaskOptions {
            ttl: Duration::from_secs(60),
            none_ttl: Duration::from_secs(10),
            max_entries: 100_000,
            type_key: "auth0-extension-type".to_owned(),
            disabled_key: "auth0-extension-disabled".to_owned(),
        }
    }
}

impl WebtaskOptions {
    /// How long a found extension is remembered (default 60 s).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long "this container has no extension for this point" is remembered
    /// (default 10 s): shorter, so a new extension is picked up soon even when
    /// it was installed by another client.
    #[must_use]
    pub fn none_ttl(mut self, ttl: Duration) -> Self {
        self.none_ttl = ttl;
        self
    }

    /// The most (container, point) answers kept (default 100,000).
    #[must_use]
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = n;
        self
    }

    /// The metadata keys: the point name (default `auth0-extension-type`) and
    /// the disabled flag (`auth0-extension-disabled`).
    ///
    /// The run secret has no such option: it is always the *secret* named
    /// [`RUN_SECRET`], because that is the one the host checks. A renamed
    /// secret would be one the host does not know, and the extension would run
    /// for anyone.
    #[must_use]
    pub fn meta_keys(mut self, point: impl Into<String>, disabled: impl Into<String>) -> Self {
        self.type_key = point.into();
        self.disabled_key = disabled.into();
        self
    }
}
