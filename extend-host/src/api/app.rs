//! The state every handler shares, in named parts.

use crate::auth::Auth;
use crate::config::Limits;
use crate::error::ApiError;
use crate::logs::LogHub;
use crate::rate::{InFlight, WriteLimiter};
use crate::sandbox::{Executor, RunInput, Webtask};
use crate::webtasks::Webtasks;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_util::sync::CancellationToken;

/// What the handlers share, in named parts.
pub(crate) struct App {
    /// Token checks and revocations.
    pub(crate) auth: Auth,
    /// The store, sealing and the run cache.
    pub(crate) webtasks: Webtasks,
    /// The JavaScript executor.
    pub(crate) executor: Executor,
    /// Per-container log streams.
    pub(crate) logs: LogHub,
    /// Per-container management write rates.
    pub(crate) writes: WriteLimiter,
    /// Per-container management requests being served.
    pub(crate) in_flight: Arc<InFlight>,
    /// Open `GET /api/changes` streams, per container watched (`*`: all).
    pub(crate) change_subscribers: Arc<InFlight>,
    /// Run inputs kept for replaying drafts.
    pub(crate) recorder: crate::recording::Recorder,
    /// What `GET /metrics` serves.
    pub(crate) metrics: crate::metrics::HostMetrics,
    /// A token that reads `/metrics` (besides the master token).
    pub(crate) metrics_token: Option<String>,
    pub(crate) limits: Limits,
    /// Base of `webtask_url`s, without a trailing slash.
    base_url: String,
    pub(crate) counters: Counters,
    pub(crate) shutdown: CancellationToken,
}

/// Request counters, for ids and for tests.
pub(crate) struct Counters {
    requests: AtomicU64,
    /// `GET /api/webtask/{container}` calls served: discovery traffic.
    pub(crate) lists: AtomicU64,
    request_prefix: String,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl App {
    pub(crate) fn new(
        auth: Auth,
        webtasks: Webtasks,
        executor: Executor,
        logs: LogHub,
        limits: Limits,
        base_url: &str,
    ) -> Self {
        let recorder = webtasks.recorder();
        let metrics = crate::metrics::HostMetrics::new(executor.clone());
        App {
            metrics,
            metrics_token: None,
            auth,
            webtasks,
            executor,
            logs,
            writes: WriteLimiter::new(limits.writes_per_second, limits.write_burst),
            in_flight: InFlight::new(
                limits.management_in_flight_per_container,
                "management requests in progress",
                "management_in_flight_per_container",
            ),
            change_subscribers: InFlight::new(
                limits.change_subscribers_per_container,
                "open change streams",
                "change_subscribers_per_container",
            ),
            recorder,
            limits,
            base_url: base_url.trim_end_matches('/').to_owned(),
            counters: Counters {
                requests: AtomicU64::new(0),
                lists: AtomicU64::new(0),
                request_prefix: crate::crypto::random_hex::<4>(),
            },
            shutdown: CancellationToken::new(),
        }
    }

    /// Admits a management write of `container` under its rate limit,
    /// counting a refusal.
    pub(crate) fn admit_write(&self, container: &str) -> Result<(), ApiError> {
        self.writes.admit(container).inspect_err(|_| {
            self.metrics.reject("writes");
        })
    }

    pub(crate) fn webtask_url(&self, container: &str, name: &str) -> String {
        format!("{}/api/run/{container}/{name}", self.base_url)
    }

    pub(crate) fn request_id(&self) -> String {
        let n = self.counters.requests.fetch_add(1, Ordering::Relaxed);
        request_id(&self.counters.request_prefix, n)
    }

    /// A token for a long-lived stream of `claims`' caller: cancelled at
    /// shutdown, and when the caller's token is revoked or expires. The
    /// guard, kept by the stream, cancels it when the stream is dropped,
    /// which ends the task that watches the token.
    pub(crate) fn stream_stop(
        self: &Arc<Self>,
        claims: crate::token::Claims,
    ) -> (CancellationToken, tokio_util::sync::DropGuard) {
        let stop = self.shutdown.child_token();
        let (app, watched) = (Arc::clone(self), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = app.auth.until_invalid(&claims) => watched.cancel(),
                () = watched.cancelled() => {}
            }
        });
        (stop.clone(), stop.drop_guard())
    }

    /// After a webtask was saved: compile it ahead, so that the first run
    /// finds it ready.
    pub(crate) fn compile_ahead(&self, w: Arc<Webtask>) {
        // A refusal (shutting down, quarantined) only means no head start.
        let _ = self.executor.submit(RunInput::compile(
            w,
            crate::sandbox::limit::for_request(&self.limits, None),
        ));
    }
}

/// `prefix` and `n` as `{prefix}{n:08x}`, written by hand: `format!` cost
/// ~1,600 instructions of a run request's ~53,000 in the host (#26,
/// callgrind).
fn request_id(prefix: &str, n: u64) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = (16 - n.leading_zeros() as usize / 4).max(8);
    let mut id = String::with_capacity(prefix.len() + digits);
    id.push_str(prefix);
    for i in (0..digits).rev() {
        id.push(char::from(HEX[((n >> (i * 4)) & 0xf) as usize]));
    }
    id
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_the_prefix_and_at_least_eight_hex_digits() {
        for n in [
            0,
            1,
            0xabc,
            0xffff_ffff,
            0x1_0000_0000,
            0x1234_5678_9abc,
            u64::MAX,
        ] {
            assert_eq!(super::request_id("a1b2", n), format!("a1b2{n:08x}"));
        }
    }
}
