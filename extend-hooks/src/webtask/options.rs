//! Settings of webtask discovery.

use std::time::Duration;

/// The name of the webtask secret that holds an extension's run secret: the
/// host refuses a run without `Authorization: Bearer <it>`. It is stored
/// sealed, never in metadata; discovery reads it with `?decrypt=true`.
pub(crate) const RUN_SECRET: &str = extend_wire::meta::RUN_SECRET;

/// Settings of webtask discovery: cache lifetimes and size. The metadata
/// keys are fixed (`extend_wire::meta`): the host checks catalogs, records
/// inputs and lists usage by the same names, so a renamed key would silently
/// turn those off.
#[derive(Debug, Clone)]
pub struct WebtaskOptions {
    pub(crate) ttl: Duration,
    pub(crate) none_ttl: Duration,
    pub(crate) max_entries: u64,
}

impl Default for WebtaskOptions {
    fn default() -> Self {
        WebtaskOptions {
            ttl: Duration::from_secs(60),
            none_ttl: Duration::from_secs(10),
            max_entries: 100_000,
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
}
