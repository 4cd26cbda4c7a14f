//! The CPU budget: each container's token bucket of CPU seconds, what a run
//! may use of it, and charging what it used.

use super::state::*;
use crate::config::Limits;
use crate::sandbox::Reply;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Seconds until the container's CPU bucket is positive again, if it is
/// empty now.
pub(super) fn cpu_debt(slot: &Slot, limits: &Limits) -> Option<u64> {
    cpu_left(slot, limits).err()
}

/// Less CPU than this left is none: a run given a few microseconds would
/// only be stopped (or its worker killed) before it did anything.
pub(super) const MIN_RUN_BUDGET: f64 = 0.01;

/// The CPU time the container has left, or the seconds until it has some.
pub(super) fn cpu_left(slot: &Slot, limits: &Limits) -> Result<Duration, u64> {
    let mut b = lock(&slot.cpu);
    refill(&mut b, limits);
    if b.seconds >= MIN_RUN_BUDGET {
        return Ok(Duration::from_secs_f64(b.seconds));
    }
    let rate = limits.cpu_per_second.max(1e-3);
    Err((((MIN_RUN_BUDGET - b.seconds) / rate).ceil() as u64).max(1))
}

/// The answer to a queued job of a container that went into CPU debt while
/// it waited: runs get 429; a compile-ahead job is dropped (no head start).
pub(super) fn cpu_refusal(slot: &Slot, retry_after: u64) -> Reply {
    Reply::cpu_exhausted(&slot.container, retry_after)
}

pub(super) fn refill(b: &mut CpuBucket, limits: &Limits) {
    let now = Instant::now();
    let earned = now.duration_since(b.at).as_secs_f64() * limits.cpu_per_second;
    b.seconds = (b.seconds + earned).min(limits.cpu_burst.as_secs_f64());
    b.at = now;
}

pub(super) fn charge(slot: &Slot, limits: &Limits, cpu: Duration) {
    let mut b = lock(&slot.cpu);
    refill(&mut b, limits);
    b.seconds -= cpu.as_secs_f64();
}

/// After a job ran: charges its CPU and gives back its run slot. The caller
/// answers the job.
pub(super) fn complete(
    shared: &Shared,
    me: &Arc<Worker>,
    slot: &Arc<Slot>,
    job: &Job,
    reply: &Reply,
    since: Instant,
) {
    slot.log.end();
    let cpu = if reply.cpu.is_zero() {
        since.elapsed()
    } else {
        reply.cpu
    };
    charge(slot, &shared.limits, cpu);
    if reply.heap > 0 {
        slot.heap.store(reply.heap, Ordering::Relaxed);
    }
    release(slot, job);
    *lock(&slot.home) = Some(Arc::clone(me));
}
