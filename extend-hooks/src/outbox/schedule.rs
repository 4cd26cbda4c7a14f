//! When the outbox tries again.

use std::time::Duration;

/// The delays between the attempts of one invocation: attempt `n + 1`
/// comes `delays[n - 1]` after attempt `n` failed (or later, when the
/// extension's `Retry-After` says so). The first attempt is immediate, so a
/// schedule of `k` delays makes `k + 1` attempts before a dead letter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl RetrySchedule {
    /// A schedule with these delays between attempts.
    pub fn new(delays: impl IntoIterator<Item = Duration>) -> Self {
        RetrySchedule {
            delays: delays.into_iter().collect(),
        }
    }

    /// Attempts in all, the first included.
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.delays.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    /// The wait after `failed` attempts (1 after the first failure), or
    /// `None` when none is left; never shorter than `retry_after`.
    pub fn next(&self, failed: u32, retry_after: Option<Duration>) -> Option<Duration> {
        let i = usize::try_from(failed.checked_sub(1)?).ok()?;
        let delay = *self.delays.get(i)?;
        Some(delay.max(retry_after.unwrap_or_default()))
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
}
