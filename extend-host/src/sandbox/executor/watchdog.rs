//! The watchdog of the in-process backend: writes off a thread whose run is
//! past its hard limit and quarantines the container.

use super::spawn::*;
use super::state::*;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Every tick, writes off executor threads whose run is past its hard
/// limit (in-process backend): the container is quarantined (its queued and
/// new runs get 429) and a new thread takes the stuck one's place.
pub(super) fn watch(shared: &Arc<Shared>) {
    let tick =
        (shared.limits.run_time / 20).clamp(Duration::from_millis(5), Duration::from_millis(50));
    while !shared.stopping.load(Ordering::Acquire) {
        std::thread::sleep(tick);
        let workers: Vec<Arc<Worker>> = lock(&shared.workers).clone();
        for worker in workers {
            let stuck = lock(&worker.busy).as_ref().and_then(|b| {
                let elapsed = b.since.elapsed();
                (elapsed > b.hard_limit).then(|| (Arc::clone(&b.slot), elapsed))
            });
            if let Some((slot, elapsed)) = stuck {
                write_off(shared, &worker, &slot, elapsed);
            }
        }
    }
}

pub(super) fn write_off(
    shared: &Arc<Shared>,
    worker: &Arc<Worker>,
    slot: &Arc<Slot>,
    elapsed: Duration,
) {
    if worker.written_off.swap(true, Ordering::AcqRel) {
        return;
    }
    slot.quarantined.store(true, Ordering::Release);
    shared.quarantines.fetch_add(1, Ordering::Relaxed);
    lock(&shared.workers).retain(|w| !Arc::ptr_eq(w, worker));
    refuse_queued(slot, quarantine_reply);
    tracing::warn!(
        container = %slot.container,
        elapsed_ms = elapsed.as_millis() as u64,
        "a run passed its hard time limit and holds its thread; container quarantined, thread replaced"
    );
    if let Err(e) = spawn_worker(shared, false) {
        tracing::error!(error = %e, "cannot start a replacement executor thread");
    }
    // Counted after the replacement exists, so readers see capacity restored.
    shared.replaced.fetch_add(1, Ordering::Release);
}
