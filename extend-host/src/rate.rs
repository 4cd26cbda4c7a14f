//! Per-container write rate limits: a token bucket of writes per container.

use crate::error::ApiError;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

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
