//! When the outbox tries again.

use std::time::Duration;

/// The delays between the attempts of one invocation: attempt `n + 1`
/// comes `delays[n - 1]` after attempt `n` failed (or later, when the
/// extension's `Retry-After` says so). The first attempt is immediate, so a
/// schedule of `k` delays makes `k + 1` attempts before a dead letter.
///
/// It is the one retry model of async deliveries: the durable outbox takes
/// one in [`OutboxConfig::retry_schedule`](crate::outbox::OutboxConfig),
/// and the in-memory queue builds one from
/// [`ExtendBuilder::async_max_attempts`](crate::ExtendBuilder::async_max_attempts)
/// and [`ExtendBuilder::async_backoff`](crate::ExtendBuilder::async_backoff)
/// ([`RetrySchedule::exponential`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
    /// Each wait is drawn in `[delay / 2, delay]`, so that invocations that
    /// failed together do not retry together.
    jitter: bool,
    /// No wait is longer, not even one a `Retry-After` asks for: a queue in
    /// memory must not hold an invocation for hours.
    cap: Option<Duration>,
}

impl RetrySchedule {
    /// A schedule with these delays between attempts.
    pub fn new(delays: impl IntoIterator<Item = Duration>) -> Self {
        RetrySchedule {
            delays: delays.into_iter().collect(),
            jitter: false,
            cap: None,
        }
    }

    /// `attempts` in all (at least one), waiting `base` after the first
    /// failure and doubling up to `max`, each wait jittered in
    /// `[delay / 2, delay]`; a longer `Retry-After` is honoured up to `max`.
    pub fn exponential(base: Duration, max: Duration, attempts: u32) -> Self {
        let delays = (0..attempts.saturating_sub(1))
            .map(|n| base.saturating_mul(1u32 << n.min(16)).min(max))
            .collect();
        RetrySchedule {
            delays,
            jitter: true,
            cap: Some(max),
        }
    }

    /// Attempts in all, the first included.
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.delays.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    /// The wait after `failed` attempts (1 after the first failure), or
    /// `None` when none is left; never shorter than `retry_after` (up to the
    /// schedule's cap, for an [`exponential`](RetrySchedule::exponential) one).
    pub fn next(&self, failed: u32, retry_after: Option<Duration>) -> Option<Duration> {
        let i = usize::try_from(failed.checked_sub(1)?).ok()?;
        let mut delay = *self.delays.get(i)?;
        if self.jitter {
            delay = delay / 2 + delay.mul_f64(fastrand::f64() / 2.0);
        }
        let wait = delay.max(retry_after.unwrap_or_default());
        Some(self.cap.map_or(wait, |cap| wait.min(cap)))
    }
}

/// Svix's schedule: at once, then 5 s, 5 min, 30 min, 2 h, 5 h and 10 h
/// later: 7 attempts over about 18 hours.
impl Default for RetrySchedule {
    fn default() -> Self {
        let m = |n: u64| Duration::from_secs(60 * n);
        RetrySchedule::new([Duration::from_secs(5), m(5), m(30), m(120), m(300), m(600)])
    }
}

#[cfg(test)]
mod tests {
    use super::RetrySchedule;
    use std::time::Duration;

    #[test]
    fn the_default_spans_hours_and_retry_after_only_delays() {
        let s = RetrySchedule::default();
        assert_eq!(s.attempts(), 7);
        assert_eq!(s.next(1, None), Some(Duration::from_secs(5)));
        assert_eq!(s.next(6, None), Some(Duration::from_secs(36_000)));
        assert_eq!(s.next(7, None), None, "the seventh failure is the last");
        assert_eq!(s.next(0, None), None);
        assert_eq!(
            s.next(1, Some(Duration::from_secs(90))),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            s.next(2, Some(Duration::from_secs(1))),
            Some(Duration::from_secs(300))
        );
        assert_eq!(RetrySchedule::new([]).attempts(), 1);
    }

    #[test]
    fn an_exponential_schedule_grows_is_jittered_and_capped() {
        let s = RetrySchedule::exponential(Duration::from_millis(100), Duration::from_secs(1), 5);
        assert_eq!(s.attempts(), 5);
        for _ in 0..100 {
            let first = s.next(1, None).unwrap();
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = s.next(3, None).unwrap();
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            assert!(s.next(4, None).unwrap() <= Duration::from_secs(1));
        }
        assert_eq!(s.next(5, None), None, "the fifth failure is the last");
        assert_eq!(
            s.next(1, Some(Duration::from_millis(700))),
            Some(Duration::from_millis(700))
        );
        assert_eq!(
            s.next(1, Some(Duration::from_secs(60))),
            Some(Duration::from_secs(1)),
            "Retry-After is honoured up to the cap"
        );
        assert_eq!(
            RetrySchedule::exponential(Duration::ZERO, Duration::ZERO, 0).attempts(),
            1
        );
    }
}
