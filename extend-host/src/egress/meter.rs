//! What extensions' requests may move, and what they moved: each
//! container's bytes per minute on this host, and the host's counters for
//! `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Bytes each container moved in its current minute, on this host.
#[derive(Debug, Default)]
pub(super) struct Meter(std::sync::Mutex<std::collections::HashMap<String, (Instant, u64)>>);

/// The window the per-minute egress allowance is counted over.
const MINUTE: std::time::Duration = std::time::Duration::from_secs(60);

impl Meter {
    /// Counts `bytes` for `container`; `Err` with the refusal once the
    /// container is past `limit` this minute.
    pub(super) fn take(&self, container: &str, bytes: u64, limit: u64) -> Result<(), String> {
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
    /// A request refused before it reached the host's client (the run's
    /// request count).
    pub(crate) fn limited(&self) {
        self.limited.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
