//! The scheduler: which worker takes which container next (its home worker
//! when idle, else a ready queue by priority), idle spinning, and taking a
//! container's next job.

use super::budget::*;
use super::state::*;
use flume::{Receiver, Sender};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The ready queue of normal (`low == false`) or low-priority workers.
pub(super) fn queue(shared: &Shared, low: bool) -> &Sender<Msg> {
    if low { &shared.low_tx } else { &shared.tx }
}

/// Whether `slot` belongs in the low-priority workers: it has used more than
/// half of what it can save up.
pub(super) fn penalized(shared: &Shared, slot: &Slot) -> bool {
    shared.low_workers > 0
        && cpu_left(slot, &shared.limits).map_or(true, |left| left < shared.limits.cpu_burst / 2)
}

/// Hands a container with work to its home worker if that one is idle and of
/// the right priority, else to the ready queue of its priority.
pub(super) fn dispatch(shared: &Shared, slot: Arc<Slot>) {
    let low = penalized(shared, &slot);
    let home = lock(&slot.home).clone();
    if let Some(home) = home
        && home.low == low
        && home
            .idle
            .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    {
        let _ = home.inbox.send(slot);
        return;
    }
    let _ = queue(shared, low).send(Msg::Run(slot));
}

/// What a worker took from the ready queue, given that a dispatcher may have
/// claimed it at the same moment.
pub(super) fn took(
    shared: &Shared,
    me: &Worker,
    msg: Result<Msg, flume::RecvError>,
) -> Option<Next> {
    match msg {
        Ok(Msg::Run(slot)) => {
            if me
                .idle
                .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                Some(Next::Slot(slot))
            } else {
                // A dispatcher claimed this worker and is sending to its
                // inbox: that one is ours; this one goes back for another.
                let _ = queue(shared, me.low).send(Msg::Run(slot));
                Some(Next::Inbox)
            }
        }
        Ok(Msg::Stop) | Err(_) => {
            me.idle.store(false, Ordering::Release);
            None
        }
    }
}

pub(super) enum Next {
    Slot(Arc<Slot>),
    /// The container is on its way to the inbox.
    Inbox,
}

/// Looks for work without sleeping for up to [`Limits::idle_spin`], when no
/// other thread does, none is in a run and at most one request waits: on a
/// VM, waking a sleeping thread takes tens of microseconds, more than a
/// small run, and at low load that is most of a run's latency. Under load
/// some thread is always running, so no CPU is spent here; when idle, one
/// thread spins once per run.
pub(super) fn spin(shared: &Shared, me: &Worker, inbox: &Receiver<Arc<Slot>>) -> Option<Next> {
    if shared.limits.idle_spin.is_zero()
        || !quiet(shared)
        || shared.running.load(Ordering::Acquire) > 0
        || shared
            .spinning
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
    {
        return None;
    }
    let until = Instant::now() + shared.limits.idle_spin;
    let mut found = None;
    let mut i = 0u32;
    while found.is_none() {
        if let Ok(slot) = inbox.try_recv() {
            found = Some(Next::Slot(slot));
        } else if let Ok(msg) = shared.rx.try_recv() {
            if let Msg::Stop = msg {
                // Back for the blocking wait below, which ends the thread.
                let _ = shared.tx.send(Msg::Stop);
                break;
            }
            found = took(shared, me, Ok(msg));
        } else {
            std::hint::spin_loop();
            i += 1;
            // Reading the clock every 64 turns keeps the loop cheap.
            if i.is_multiple_of(64)
                && (Instant::now() >= until || shared.running.load(Ordering::Acquire) > 0)
            {
                break;
            }
        }
    }
    shared.spinning.store(false, Ordering::Release);
    found
}

/// The next container for an executor thread; `None` when it should stop.
pub(super) fn next(shared: &Shared, me: &Worker, inbox: &Receiver<Arc<Slot>>) -> Option<Arc<Slot>> {
    me.idle.store(true, Ordering::Release);
    if let Some(picked) = spin(shared, me, inbox) {
        return match picked {
            Next::Slot(slot) => Some(slot),
            Next::Inbox => inbox.recv().ok(),
        };
    }
    let picked = flume::Selector::new()
        .recv(inbox, |slot| slot.ok().map(Next::Slot))
        .recv(&shared.rx, |msg| took(shared, me, msg))
        .wait()?;
    match picked {
        Next::Slot(slot) => Some(slot),
        Next::Inbox => inbox.recv().ok(),
    }
}

/// The next container for a worker task; `None` when it should stop.
pub(super) async fn next_async(
    shared: &Shared,
    me: &Worker,
    inbox: &Receiver<Arc<Slot>>,
) -> Option<Arc<Slot>> {
    me.idle.store(true, Ordering::Release);
    let picked = tokio::select! {
        slot = inbox.recv_async() => slot.ok().map(Next::Slot),
        msg = if me.low { shared.low_rx.recv_async() } else { shared.rx.recv_async() } => took(shared, me, msg),
    }?;
    match picked {
        Next::Slot(slot) => Some(slot),
        Next::Inbox => inbox.recv_async().await.ok(),
    }
}

/// Takes the next job of `slot`, or marks the slot unscheduled when it has
/// none. Refuses it at once when the container has no CPU budget left, and
/// otherwise cuts its time limit to the budget, which it returns too.
pub(super) fn take_job(shared: &Shared, slot: &Arc<Slot>) -> Option<(Job, Duration)> {
    let taken = take_more(shared, slot);
    if taken.is_none() {
        hand_on(shared, slot);
    }
    taken
}

/// [`take_job`] for a worker that keeps the slot scheduled (it is running
/// the slot's jobs): `None` when there is no job it can run now.
pub(super) fn take_more(shared: &Shared, slot: &Arc<Slot>) -> Option<(Job, Duration)> {
    let mut job = lock(&slot.state).queue.pop_front()?;
    match cpu_left(slot, &shared.limits) {
        Err(retry_after) => {
            release(slot, &job);
            let _ = job.reply.send(cpu_refusal(slot, retry_after));
            None
        }
        // A run cannot use more CPU than its container has left: it is
        // stopped when the budget runs out, not charged afterwards.
        Ok(left) => {
            job.input.time_limit = crate::sandbox::limit::within_budget(job.input.time_limit, left);
            Some((job, left))
        }
    }
}

/// When a worker is done with a slot for now: hands it on if more jobs wait,
/// or marks it unscheduled.
pub(super) fn hand_on(shared: &Shared, slot: &Arc<Slot>) {
    let mut st = lock(&slot.state);
    if shared.stopping.load(Ordering::Acquire) {
        drop(st);
        refuse_queued(slot, stopping_reply);
        lock(&slot.state).scheduled = false;
    } else if st.queue.is_empty() {
        st.scheduled = false;
    } else {
        drop(st);
        // To the back of the ready queue: other containers go first.
        let _ = queue(shared, penalized(shared, slot)).send(Msg::Run(Arc::clone(slot)));
    }
}

/// Runs one worker makes for a container before the container goes to the
/// back of the ready queue, so that busy containers take turns.
pub(super) const SESSION_RUNS: usize = 32;

/// Whether containers wait in `me`'s ready queue: a worker whose session
/// used its share goes on with it only when none does, since ending the
/// session drains the pipe (the process sleeps once per share).
pub(super) fn others_wait(shared: &Shared, me: &Worker) -> bool {
    let rx = if me.low { &shared.low_rx } else { &shared.rx };
    !rx.is_empty()
}
