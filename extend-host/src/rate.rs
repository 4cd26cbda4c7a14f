//! Per-container limits of management traffic: a token bucket of writes
//! per container ([`WriteLimiter`]), and a cap on the management requests
//! of one container being served at once ([`InFlight`]).

use crate::error::ApiError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// Counts the management requests of each container being served, and
/// refuses one past the limit: one tenant's large reads (recorded inputs,
/// replays, lists) cannot take the host's memory or the database's
/// connections from the others.
#[derive(Debug)]
pub(crate) struct InFlight {
    limit: usize,
    /// What is counted, in the refusal: "management requests in progress".
    what: &'static str,
    /// The [`Limits`](crate::Limits) field that sets the limit.
    setting: &'static str,
    counts: Mutex<HashMap<String, usize>>,
}

/// A place taken in [`InFlight`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Permit {
    of: Arc<InFlight>,
    container: String,
}

impl InFlight {
    pub(crate) fn new(limit: usize, what: &'static str, setting: &'static str) -> Arc<Self> {
        Arc::new(InFlight {
            limit: limit.max(1),
            what,
            setting,
            counts: Mutex::default(),
        })
    }

    /// Takes a place for a request of `container`, or refuses with 429.
    pub(crate) fn enter(self: &Arc<Self>, container: &str) -> Result<Permit, ApiError> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let n = counts.entry(container.to_owned()).or_insert(0);
        if *n >= self.limit {
            return Err(ApiError::too_many(
                format!(
                    "container `{container}` has {} {}, its limit ({}); retry when one ends",
                    self.limit, self.what, self.setting
                ),
                1,
            ));
        }
        *n += 1;
        Ok(Permit {
            of: Arc::clone(self),
            container: container.to_owned(),
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self
            .of
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = counts.get_mut(&self.container) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.container);
            }
        }
    }
}

/// Buckets kept before idle (full) ones are dropped.
const PRUNE_AT: usize = 10_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Admits or refuses a container's management writes (PUT, DELETE).
#[derive(Debug)]
pub(crate) struct WriteLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl WriteLimiter {
    pub(crate) fn new(per_second: f64, burst: u32) -> Self {
        WriteLimiter {
            per_second: per_second.max(1e-3),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::default(),
        }
    }

    /// Takes one write from `container`'s bucket, or refuses with 429 and
    /// the seconds until one is back.
    pub(crate) fn admit(&self, container: &str) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= PRUNE_AT && !buckets.contains_key(container) {
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let b = buckets.entry(container.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        b.tokens =
            (b.tokens + now.duration_since(b.at).as_secs_f64() * self.per_second).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - b.tokens) / self.per_second).ceil() as u64;
        Err(ApiError::too_many(
            format!(
                "container `{container}` is making changes faster than {} per second; retry in {} s",
                self.per_second,
                wait.max(1)
            ),
            wait.max(1),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_in_flight_are_capped_per_container_and_given_back() {
        let f = InFlight::new(
            2,
            "management requests in progress",
            "management_in_flight_per_container",
        );
        let a1 = f.enter("a").unwrap();
        let _a2 = f.enter("a").unwrap();
        let e = f.enter("a").unwrap_err();
        assert!(
            e.message.contains("2 management requests in progress"),
            "{}",
            e.message
        );
        let _b = f.enter("b").expect("another container is not affected");
        drop(a1);
        let _a3 = f.enter("a").expect("a place was given back");
        drop((_a2, _a3, _b));
        assert!(
            f.counts.lock().unwrap().is_empty(),
            "nothing is kept for idle containers"
        );
    }

    #[test]
    fn a_burst_is_admitted_then_refused_per_container() {
        let w = WriteLimiter::new(0.5, 3);
        for _ in 0..3 {
            w.admit("a").unwrap();
        }
        let e = w.admit("a").unwrap_err();
        assert_eq!((e.status.as_u16(), e.retry_after), (429, Some(2)));
        assert!(e.message.contains("`a`"), "{}", e.message);
        w.admit("b").unwrap();
    }
}
