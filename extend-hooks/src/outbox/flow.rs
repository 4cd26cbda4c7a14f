//! A container's deliveries as one replica sees them: how many are in
//! flight, and how long the host asked it to wait (pausing and backoff).

use std::time::Duration;

use crate::error::{Error, ErrorKind};

/// A container's deliveries as this replica sees them.
#[derive(Debug, Default)]
pub(super) struct Flow {
    pub(super) in_flight: usize,
    /// The host asked to wait (429 with `Retry-After`) or could not be
    /// reached: nothing of the container is delivered before this.
    pub(super) paused_until_ms: i64,
    /// The next wait when the host gave none; doubles while it stays
    /// unavailable, from [`FIRST_PAUSE`] to [`LONGEST_PAUSE`].
    pub(super) backoff: Duration,
}

/// Disabled extensions' names, and when they were learnt.
pub(super) type Known = (std::time::Instant, Vec<String>);

/// How long the outbox trusts what it learnt of a container's disabled
/// extensions for a point.
pub(super) const DISABLED_FRESH: Duration = Duration::from_secs(10);

/// How often an emptied outbox gives its space back, at most.
pub(super) const COMPACT_EVERY: Duration = Duration::from_secs(10);

/// The first wait for a host that cannot take a container's deliveries.
pub(super) const FIRST_PAUSE: Duration = Duration::from_millis(500);
/// The longest: a host back after an outage gets its deliveries within it.
pub(super) const LONGEST_PAUSE: Duration = Duration::from_secs(10);

/// Whether a failed attempt is the host holding deliveries back (429, 502-504,
/// unreachable, discovery failing) rather than the extension failing: those
/// wait and are not counted as attempts.
pub(super) fn held_back(error: &Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::RateLimited { .. }
            | ErrorKind::HostUnavailable { .. }
            | ErrorKind::Discovery { .. }
    )
}
