//! The worker-process backend: a task per worker that owns one process and
//! pipelines a container's runs through it (a session), killing it when a run
//! passes its hard limit.

use super::budget::*;
use super::scheduler::*;
use super::state::*;
use super::threads::*;
use crate::error::Source;
use crate::sandbox::Reply;
use crate::sandbox::engine::timeout_message;
use crate::sandbox::process::{Answer, PIPELINE, Routing, WorkerProcess};
use flume::Receiver;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A worker task (worker-process backend): it owns one process, started on
/// its first job and again after one was killed.
pub(super) async fn work_async(shared: &Shared, me: &Arc<Worker>, inbox: &Receiver<Arc<Slot>>) {
    let Backend::Processes { program, budget } = &shared.backend else {
        return;
    };
    let mut process: Option<WorkerProcess> = None;
    let mut seq = 0;
    while let Some(slot) = next_async(shared, me, inbox).await {
        let Some(first) = take_job(shared, &slot) else {
            continue;
        };
        if process.is_none() {
            match WorkerProcess::spawn(program, &shared.limits, *budget, me.low) {
                Ok(p) => process = Some(p),
                Err(e) => {
                    tracing::error!(program = %program.display(), error = %e, "cannot start a worker process");
                    let (job, _) = first;
                    release(&slot, &job);
                    let _ = job.reply.send(Reply::error(
                        500,
                        Source::Proxy,
                        "Runtime unavailable.",
                        &format!("the host could not start a worker process: {e}"),
                    ));
                    hand_on(shared, &slot);
                    continue;
                }
            }
        }
        if let Some(p) = process.as_mut()
            && !session(shared, me, p, &slot, first, &mut seq).await
        {
            // Killed or dead: the next job starts a new process.
            process = None;
            me.resident.store(0, Ordering::Relaxed);
        }
        *lock(&me.busy) = None;
        hand_on(shared, &slot);
    }
}

/// A sent, unanswered run.
pub(super) struct Sent {
    pub(super) seq: u64,
    pub(super) job: Job,
}

/// Runs `slot`'s jobs in the worker process, up to [`PIPELINE`] at a time:
/// while one runs, the next are already in the pipe, so the process does
/// not sleep between them. Returns `false` when the process was killed or died.
pub(super) async fn session(
    shared: &Shared,
    me: &Arc<Worker>,
    p: &mut WorkerProcess,
    slot: &Arc<Slot>,
    (first, left): (Job, Duration),
    seq: &mut u64,
) -> bool {
    let generation = slot.generation.load(Ordering::Acquire);
    let lines = shared.limits.log_lines_per_run;
    let mut pipe: VecDeque<Sent> = VecDeque::with_capacity(2);
    let mut send = async |p: &mut WorkerProcess,
                          pipe: &mut VecDeque<Sent>,
                          job: Job,
                          left: Duration,
                          with_code: bool| {
        *seq += 1;
        let routing = Routing {
            seq: *seq,
            after: pipe.front().map_or(0, |s| s.seq),
            cpu_left: left,
            spin: if quiet(shared) {
                shared.limits.idle_spin
            } else {
                Duration::ZERO
            },
        };
        let sent = p
            .send(&job.input, generation, lines, with_code, routing)
            .await;
        pipe.push_back(Sent { seq: *seq, job });
        sent
    };
    let mut alive = send(p, &mut pipe, first, left, false).await.is_ok();
    let mut sent_runs = 1;
    let mut since = match pipe.front() {
        Some(front) => begin(shared, me, slot, &front.job),
        None => return true,
    };
    while alive {
        // The next run: when the pipe is empty, or behind the running ones
        // unless the container is low on budget (runs sent ahead could not
        // be stopped by it); never past the session's share or when stopping.
        let room = pipe.is_empty() || (pipe.len() < PIPELINE && !penalized(shared, slot));
        if room
            && sent_runs < SESSION_RUNS
            && !shared.stopping.load(Ordering::Acquire)
            && let Some((job, left)) = take_more(shared, slot)
        {
            let was_empty = pipe.is_empty();
            alive = send(p, &mut pipe, job, left, false).await.is_ok();
            sent_runs += 1;
            if was_empty && let Some(front) = pipe.front() {
                since = begin(shared, me, slot, &front.job);
            }
            continue;
        }
        let Some(front) = pipe.front() else { break };
        let deadline =
            since + crate::sandbox::limit::hard_limit(&shared.limits, front.job.input.time_limit);
        match tokio::time::timeout_at(deadline.into(), p.answer(&slot.log)).await {
            Ok(Ok(Answer::NeedCode)) => {
                let Some(sent) = pipe.pop_front() else { break };
                match cpu_left(slot, &shared.limits) {
                    Ok(left) => alive = send(p, &mut pipe, sent.job, left, true).await.is_ok(),
                    Err(retry_after) => {
                        slot.log.end();
                        release(slot, &sent.job);
                        let _ = sent.job.reply.send(cpu_refusal(slot, retry_after));
                    }
                }
                if let Some(next) = pipe.front() {
                    since = begin(shared, me, slot, &next.job);
                }
            }
            Ok(Ok(Answer::Done {
                reply,
                resident,
                evicted,
            })) => {
                me.resident.store(resident, Ordering::Relaxed);
                shared.evictions.fetch_add(evicted, Ordering::Relaxed);
                let Some(sent) = pipe.pop_front() else { break };
                complete(shared, me, slot, &sent.job, &reply, since);
                if me.low {
                    shared.penalized.fetch_add(1, Ordering::Relaxed);
                }
                match pipe.front() {
                    Some(next) => since = begin(shared, me, slot, &next.job),
                    // Idle before the answer goes out, for whoever reads the stats.
                    None => *lock(&me.busy) = None,
                }
                let _ = sent.job.reply.send(reply);
            }
            Ok(Err(e)) => {
                tracing::error!(container = %slot.container, error = %e, "a worker process died during a run");
                fail_pipe(shared, me, slot, &mut pipe, since, died_reply);
                return false;
            }
            Err(_elapsed) => {
                // SIGKILL (kill_on_drop, by the caller): the run never polled its interrupt.
                shared.killed.fetch_add(1, Ordering::Relaxed);
                let limit = front.job.input.time_limit;
                tracing::warn!(
                    container = %slot.container,
                    limit_ms = limit.as_millis() as u64,
                    "a run passed its hard time limit; its worker process was killed"
                );
                fail_pipe(shared, me, slot, &mut pipe, since, || {
                    Reply::error(
                        500,
                        Source::Webtask,
                        "Script exceeded the time limit.",
                        &format!(
                            "{}; it did not stop in time and its worker process was killed",
                            timeout_message(limit)
                        ),
                    )
                });
                return false;
            }
        }
    }
    if !alive {
        tracing::error!(container = %slot.container, "a worker process's pipe broke");
        fail_pipe(shared, me, slot, &mut pipe, since, died_reply);
        return false;
    }
    true
}

/// The process is gone: the running job gets `reply()`; the ones sent after
/// it never ran and go back to the front of the slot's queue.
pub(super) fn fail_pipe(
    shared: &Shared,
    me: &Arc<Worker>,
    slot: &Arc<Slot>,
    pipe: &mut VecDeque<Sent>,
    since: Instant,
    reply: impl Fn() -> Reply,
) {
    let front = pipe.pop_front();
    {
        let mut st = lock(&slot.state);
        while let Some(sent) = pipe.pop_back() {
            st.queue.push_front(sent.job);
        }
    }
    *lock(&me.busy) = None;
    if let Some(front) = front {
        let r = reply();
        complete(shared, me, slot, &front.job, &r, since);
        let _ = front.job.reply.send(r);
    }
}
