//! The in-process backend: executor threads that run JavaScript in a
//! resident set of runtimes of their own process.

use super::budget::*;
use super::scheduler::*;
use super::state::*;
use crate::error::Source;
use crate::sandbox::engine::{Health, JsContainer, Logger, Step};
use crate::sandbox::resident::Resident;
use crate::sandbox::{Reply, RunInput};
use flume::Receiver;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// After an in-process job ran: completes it and answers. Returns the
/// slot's next job when this thread should run it too (the session goes on),
/// or hands the slot on. `Err(())` when this thread was written off and must end.
pub(super) fn finish(
    shared: &Shared,
    me: &Arc<Worker>,
    slot: &Arc<Slot>,
    job: Job,
    reply: Reply,
    since: Instant,
    more: bool,
) -> Result<Option<(Job, Duration)>, ()> {
    complete(shared, me, slot, &job, &reply, since);
    *lock(&me.busy) = None;
    let written_off = me.written_off.load(Ordering::Acquire);
    if written_off {
        slot.quarantined.store(false, Ordering::Release);
        tracing::warn!(container = %slot.container, "the stuck run ended; the container is out of quarantine");
    }
    // Staying on the container saves the ready queue and a thread wakeup
    // per run; the session's cap keeps busy containers taking turns.
    let next = if more && !written_off && !shared.stopping.load(Ordering::Acquire) {
        take_more(shared, slot)
    } else {
        None
    };
    if next.is_none() {
        hand_on(shared, slot);
    }
    // The reply goes last, so that a caller's next request finds the
    // container back in place and out of quarantine.
    let _ = job.reply.send(reply);
    if written_off { Err(()) } else { Ok(next) }
}

pub(super) fn begin(shared: &Shared, me: &Worker, slot: &Arc<Slot>, job: &Job) -> Instant {
    let since = Instant::now();
    *lock(&me.busy) = Some(Busy {
        slot: Arc::clone(slot),
        since,
        hard_limit: crate::sandbox::limit::hard_limit(&shared.limits, job.input.time_limit),
    });
    let lines = shared.limits.log_lines_per_run;
    slot.log.begin(
        &job.input.webtask.name,
        &job.input.request_id,
        &job.input.trace_id,
        lines,
    );
    since
}

/// An executor thread (in-process backend): runs up to [`SESSION_RUNS`]
/// jobs of a container in a row, then puts it at the back of the ready queue.
pub(super) fn work(shared: &Shared, me: &Arc<Worker>, inbox: &Receiver<Arc<Slot>>) {
    let Backend::InProcess(resident) = &shared.backend else {
        return;
    };
    while let Some(slot) = next(shared, me, inbox) {
        let mut job = take_job(shared, &slot);
        let mut runs = 0;
        while let Some((j, _)) = job {
            let since = begin(shared, me, &slot, &j);
            shared.running.fetch_add(1, Ordering::AcqRel);
            let reply = run_here(shared, resident, &slot, &j.input);
            shared.running.fetch_sub(1, Ordering::AcqRel);
            runs += 1;
            match finish(shared, me, &slot, j, reply, since, runs < SESSION_RUNS) {
                Ok(next) => job = next,
                Err(()) => return,
            }
        }
    }
}

/// Runs a job on this thread, in a runtime of the shared resident set.
pub(super) fn run_here(
    shared: &Shared,
    resident: &Mutex<Resident>,
    slot: &Slot,
    input: &RunInput,
) -> Reply {
    let generation = slot.generation.load(Ordering::Acquire);
    let (js, stale) = lock(resident).take(&slot.container, generation);
    drop(stale);
    let js = match js {
        Some(js) => Ok(js),
        None => {
            let sink = slot.log.clone();
            let logger: Logger = Arc::new(move |level, msg| sink.emit(level, msg));
            JsContainer::new(&shared.limits, logger).map(Box::new)
        }
    };
    let mut js = match js {
        Ok(js) => js,
        Err(e) => {
            tracing::error!(container = %slot.container, error = %e, "cannot create a JavaScript runtime");
            return Reply::error(500, Source::Proxy, "Runtime unavailable.", &e);
        }
    };
    let (reply, health) = run_to_end(shared, slot, &mut js, input);
    let keep = health == Health::Reusable
        && !shared.stopping.load(Ordering::Acquire)
        && slot.generation.load(Ordering::Acquire) == generation;
    if keep {
        let evicted = lock(resident).put(&slot.container, generation, js, reply.heap);
        shared
            .evictions
            .fetch_add(evicted.len() as u64, Ordering::Relaxed);
        // Dropping runtimes takes tens of microseconds each: not under the lock.
        drop(evicted);
    }
    reply
}

/// Runs `input` to its end. A run that parks waits here, on this thread:
/// in-process, a run awaiting `fetch` or a timer holds its executor thread
/// (there are more threads than cores). Worker processes do better: a
/// parked run frees its worker ([`super::sessions`]).
fn run_to_end(
    shared: &Shared,
    slot: &Slot,
    js: &mut JsContainer,
    input: &RunInput,
) -> (Reply, Health) {
    let started = Instant::now();
    // In-process, a run holds its thread to its end: one run per runtime at a time.
    let mut step = js.run(0, crate::sandbox::engine::Job::of(input));
    let mut outbound: Option<crate::sandbox::outbound::Outbound> = None;
    loop {
        match step {
            Step::Done(reply, health) => {
                let reply = match outbound {
                    Some(ob) => reply.with_made(ob.made()),
                    None => reply,
                };
                return (reply, health);
            }
            Step::Wait(wait) => {
                let mut ob = outbound
                    .take()
                    .unwrap_or_else(|| super::state::outbound(shared, slot, started, input));
                shared.running.fetch_sub(1, Ordering::AcqRel);
                // The wait runs as a task of the host's runtime: were the
                // runtime shutting down, the task is dropped and the run
                // ends as out of time, where waiting here inside the
                // runtime would panic.
                let (tx, rx) = tokio::sync::oneshot::channel();
                shared.runtime.spawn(async move {
                    ob.add(wait);
                    let resume = ob.next().await;
                    let _ = tx.send((ob, resume));
                });
                let resume = match rx.blocking_recv() {
                    Ok((mut ob, resume)) => {
                        ob.flush_log();
                        outbound = Some(ob);
                        resume
                    }
                    Err(_) => crate::sandbox::io::Resume {
                        completions: Vec::new(),
                        expired: true,
                    },
                };
                shared.running.fetch_add(1, Ordering::AcqRel);
                step = js.resume(0, resume);
            }
        }
    }
}
