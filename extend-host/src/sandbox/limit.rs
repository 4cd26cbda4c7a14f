//! How long a run may take, defined once: the host's limit cut to what the
//! caller will wait and to the CPU its container has left, and when a run
//! past it is killed. The API, the scheduler, the worker process and the
//! watchdog all ask here.

use crate::config::Limits;
use std::time::Duration;

/// The wall-clock time a run may take as it is admitted: the host's
/// [`Limits::run_time`], or less when the caller said (`x-extend-deadline-ms`)
/// it will not wait that long.
pub(crate) fn for_request(limits: &Limits, caller_deadline: Option<Duration>) -> Duration {
    caller_deadline.map_or(limits.run_time, |d| d.min(limits.run_time))
}

/// `limit` cut to the CPU time its container has left: a run cannot use
/// more than that, and is stopped when the budget runs out rather than
/// charged afterwards.
pub(crate) fn within_budget(limit: Duration, cpu_left: Duration) -> Duration {
    limit.min(cpu_left)
}

/// When a run that started with `limit` is killed: two fifths of its limit
/// later, at most [`Limits::kill_grace`] and at least 50 ms later (the
/// interrupt of a very short run needs a moment to be answered). Not half:
/// the kill itself (SIGKILL, reaping the worker, answering) takes some
/// milliseconds, and the promise is that no run holds a core past 1.5× its
/// limit (the overrun bench measured 1.51 s for a 1 s limit killed at 1.5 s).
pub(crate) fn hard_limit(limits: &Limits, limit: Duration) -> Duration {
    limit
        + (limit * 2 / 5).clamp(
            Duration::from_millis(50),
            limits.kill_grace.max(Duration::from_millis(50)),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caller_and_the_budget_only_shorten_a_run_and_the_kill_comes_two_fifths_later() {
        let mut limits = Limits {
            run_time: Duration::from_secs(2),
            kill_grace: Duration::from_secs(5),
            ..Limits::default()
        };
        assert_eq!(for_request(&limits, None), Duration::from_secs(2));
        assert_eq!(
            for_request(&limits, Some(Duration::from_millis(300))),
            Duration::from_millis(300)
        );
        assert_eq!(
            for_request(&limits, Some(Duration::from_secs(9))),
            Duration::from_secs(2)
        );
        assert_eq!(
            within_budget(Duration::from_secs(2), Duration::from_millis(10)),
            Duration::from_millis(10)
        );
        assert_eq!(
            hard_limit(&limits, Duration::from_secs(2)),
            Duration::from_millis(2800)
        );
        assert_eq!(
            hard_limit(&limits, Duration::from_millis(10)),
            Duration::from_millis(60)
        );
        limits.kill_grace = Duration::from_millis(200);
        assert_eq!(
            hard_limit(&limits, Duration::from_secs(2)),
            Duration::from_millis(2200)
        );
    }
}
