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
use crate::sandbox::frame::ResumeFrame;
use crate::sandbox::io::{Resume, Wait};
use crate::sandbox::outbound::Outbound;
use crate::sandbox::process::{Answer, PIPELINE, Routing, WorkerProcess};
use flume::Receiver;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A worker task (worker-process backend): it owns one process, started on
/// its first job and again after one was killed. Between sessions it also
/// resumes the runs parked in its process whose waits are over, and serves
/// the containers it holds (those with runs parked here) when they get work.
pub(super) async fn work_async(
    shared: &Shared,
    me: &Arc<Worker>,
    inbox: &Receiver<Arc<Slot>>,
    wake: &Receiver<Arc<Slot>>,
) {
    let Backend::Processes { program, budget } = &shared.backend else {
        return;
    };
    let mut process: Option<WorkerProcess> = None;
    let mut seq = 0;
    let mut parking = Parking::default();
    loop {
        let event = if parking.runs.is_empty() {
            next_async(shared, me, inbox).await.map(Event::Slot)
        } else {
            tokio::select! {
                slot = next_async(shared, me, inbox) => slot.map(Event::Slot),
                Some(done) = parking.waits.join_next() => Some(Event::Resume(Box::new(done))),
                Ok(slot) = wake.recv_async() => Some(Event::Held(slot)),
            }
        };
        let (slot, first) = match event {
            None => break,
            Some(Event::Slot(slot)) => match take_job(shared, &slot) {
                Some(first) => (slot, first),
                None => continue,
            },
            Some(other) => {
                // next_async had marked this worker idle: it is not. A
                // dispatcher that claimed it first has sent a container to
                // the inbox, taken on the next turn.
                let _ = me
                    .idle
                    .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire);
                let slot = match other {
                    Event::Resume(done) => {
                        // Every wait that is over goes in one batch: the
                        // frames are written together, so the process runs
                        // them back to back with one wake-up.
                        let mut batch: Vec<_> = (*done).into_iter().collect();
                        while batch.len() < RESUME_BATCH
                            && let Some(done) = parking.waits.try_join_next()
                        {
                            batch.extend(done);
                        }
                        let resumed = match process.as_mut() {
                            Some(p) => {
                                resume_parked(shared, me, p, &mut parking, batch, &mut seq).await
                            }
                            None => Ok(()),
                        };
                        if let Err(slots) = resumed {
                            process = None;
                            me.resident.store(0, Ordering::Relaxed);
                            fail_parked(shared, me, &mut parking, &slots);
                        }
                        // Containers held here got their work through `wake`.
                        continue;
                    }
                    Event::Held(slot) => slot,
                    Event::Slot(_) => continue,
                };
                // A container held here may have work queued meanwhile.
                if !parking.holds(&slot) {
                    continue;
                }
                match take_more(shared, &slot) {
                    Some(first) => (slot, first),
                    None => continue,
                }
            }
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
        let alive = match process.as_mut() {
            Some(p) => session(shared, me, p, &slot, first, &mut seq, &mut parking).await,
            None => false,
        };
        *lock(&me.busy) = None;
        if alive {
            let_go(shared, me, &parking, &slot);
        } else {
            // Killed or dead: the next job starts a new process.
            process = None;
            me.resident.store(0, Ordering::Relaxed);
            fail_parked(shared, me, &mut parking, &[slot]);
        }
    }
    fail_parked(shared, me, &mut parking, &[]);
}

/// Waits resumed in one batch, at most.
const RESUME_BATCH: usize = 32;

enum Event {
    Slot(Arc<Slot>),
    Resume(Box<Result<(u64, Outbound, Resume), tokio::task::JoinError>>),
    /// A container this worker holds got work.
    Held(Arc<Slot>),
}

/// After a session or a resume: a container with runs still parked here
/// stays this worker's (its later runs share the runtime that holds them,
/// and it still holds at most one worker), else it is handed on. Decided
/// under the slot's lock, which `Executor::submit` takes too, so that a
/// job submitted meanwhile either finds the holder to wake or is handed on.
fn let_go(shared: &Shared, me: &Arc<Worker>, parking: &Parking, slot: &Arc<Slot>) {
    if parking.holds(slot) {
        let mut st = lock(&slot.state);
        st.holder = Some(Arc::clone(me));
        let more = !st.queue.is_empty();
        drop(st);
        if more {
            let _ = me.wake.send(Arc::clone(slot));
        }
        return;
    }
    lock(&slot.state).holder = None;
    hand_on(shared, slot);
}

/// A run parked in this task's worker process.
pub(super) struct ParkedRun {
    job: Job,
    slot: Arc<Slot>,
    since: Instant,
}

/// The runs parked in a worker task's process, by the sequence number of
/// the RUN frame that started each, and their waits (each owns the run's
/// [`Outbound`] until it is over; dropping the set cancels them).
#[derive(Default)]
pub(super) struct Parking {
    runs: std::collections::HashMap<u64, ParkedRun>,
    /// Parked runs by container.
    by_container: std::collections::HashMap<String, usize>,
    waits: tokio::task::JoinSet<(u64, Outbound, Resume)>,
}

impl Parking {
    fn park(&mut self, key: u64, run: ParkedRun, mut outbound: Outbound, wait: Wait) {
        *self
            .by_container
            .entry(run.slot.container.clone())
            .or_insert(0) += 1;
        self.runs.insert(key, run);
        outbound.add(wait);
        self.waits.spawn(async move {
            let resume = outbound.next().await;
            (key, outbound, resume)
        });
    }

    fn take(&mut self, key: u64) -> Option<ParkedRun> {
        let run = self.runs.remove(&key)?;
        if let Some(n) = self.by_container.get_mut(&run.slot.container) {
            *n -= 1;
            if *n == 0 {
                self.by_container.remove(&run.slot.container);
            }
        }
        Some(run)
    }

    /// Whether runs of `slot`'s container are parked here.
    fn holds(&self, slot: &Slot) -> bool {
        self.by_container.contains_key(&slot.container)
    }
}

/// Hands parked runs what they waited for, all frames first, then reads
/// what each does next, in order (the process answers frames in the order
/// they came). `Err` with the containers to hand on when the process was
/// killed or died; the runs of the batch are answered either way.
async fn resume_parked(
    shared: &Shared,
    me: &Arc<Worker>,
    p: &mut WorkerProcess,
    parking: &mut Parking,
    batch: Vec<(u64, Outbound, Resume)>,
    seq: &mut u64,
) -> Result<(), Vec<Arc<Slot>>> {
    let mut sent = Vec::with_capacity(batch.len());
    let mut dead = false;
    for (key, outbound, resume) in batch {
        let Some(run) = parking.take(key) else {
            continue;
        };
        *seq += 1;
        let frame = ResumeFrame {
            seq: *seq,
            run: key,
            resume,
        };
        p.resume(&frame);
        sent.push((key, run, outbound));
    }
    let mut slots = Vec::new();
    for (key, run, mut outbound) in sent {
        if dead {
            slots.push(Arc::clone(&run.slot));
            finish_parked(shared, me, run, died_reply());
            continue;
        }
        let hard = crate::sandbox::limit::hard_limit(&shared.limits, run.job.input.time_limit);
        // The container's log stream names this run again, with the lines
        // of its requests that finished while it waited.
        begin(shared, me, &run.slot, &run.job);
        *lock(&me.busy) = Some(Busy {
            slot: Arc::clone(&run.slot),
            since: run.since,
            hard_limit: hard,
        });
        outbound.flush_log();
        let answer = tokio::time::timeout_at(
            (run.since + hard).into(),
            p.answer(&run.slot.log, Duration::ZERO),
        )
        .await;
        *lock(&me.busy) = None;
        match answer {
            Ok(Ok(Answer::Wait(wait))) => parking.park(key, run, outbound, wait),
            Ok(Ok(Answer::Done {
                reply,
                resident,
                evicted,
            })) => {
                me.resident.store(resident, Ordering::Relaxed);
                shared.evictions.fetch_add(evicted, Ordering::Relaxed);
                let reply = reply.with_made(outbound.made());
                complete(shared, me, &run.slot, &run.job, &reply, run.since);
                let_go(shared, me, parking, &run.slot);
                let _ = run.job.reply.send(reply);
            }
            Ok(Ok(Answer::NeedCode)) => {
                tracing::error!(container = %run.slot.container, "a worker process answered a resumed run out of turn");
                dead = true;
                slots.push(Arc::clone(&run.slot));
                finish_parked(shared, me, run, died_reply());
            }
            Ok(Err(e)) => {
                tracing::error!(container = %run.slot.container, error = %e, "a worker process died during a run");
                dead = true;
                slots.push(Arc::clone(&run.slot));
                finish_parked(shared, me, run, died_reply());
            }
            Err(_elapsed) => {
                shared.killed.fetch_add(1, Ordering::Relaxed);
                let limit = run.job.input.time_limit;
                tracing::warn!(
                    container = %run.slot.container,
                    limit_ms = limit.as_millis() as u64,
                    "a run passed its hard time limit; its worker process was killed"
                );
                dead = true;
                slots.push(Arc::clone(&run.slot));
                finish_parked(shared, me, run, killed_reply(limit));
            }
        }
    }
    if dead { Err(slots) } else { Ok(()) }
}

fn killed_reply(limit: Duration) -> Reply {
    Reply::error(
        500,
        Source::Webtask,
        "Script exceeded the time limit.",
        &format!(
            "{}; it did not stop in time and its worker process was killed",
            timeout_message(limit)
        ),
    )
}

/// Answers a parked run that will not go on. Its container is let go by
/// the caller ([`fail_parked`]).
fn finish_parked(shared: &Shared, me: &Arc<Worker>, run: ParkedRun, reply: Reply) {
    complete(shared, me, &run.slot, &run.job, &reply, run.since);
    let _ = run.job.reply.send(reply);
}

/// The process is gone: every run parked in it fails, its waits end, and
/// the containers it held are handed on, `also` among them (once each).
fn fail_parked(shared: &Shared, me: &Arc<Worker>, parking: &mut Parking, also: &[Arc<Slot>]) {
    parking.waits.abort_all();
    let mut held: Vec<Arc<Slot>> = Vec::new();
    for slot in also {
        if !held.iter().any(|s| Arc::ptr_eq(s, slot)) {
            held.push(Arc::clone(slot));
        }
    }
    for (_, run) in parking.runs.drain() {
        if !held.iter().any(|s| Arc::ptr_eq(s, &run.slot)) {
            held.push(Arc::clone(&run.slot));
        }
        finish_parked(shared, me, run, died_reply());
    }
    parking.by_container.clear();
    for slot in held {
        lock(&slot.state).holder = None;
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
    parking: &mut Parking,
) -> bool {
    let generation = slot.generation.load(Ordering::Acquire);
    let lines = shared.limits.log_lines_per_run;
    let mut pipe: VecDeque<Sent> = VecDeque::with_capacity(PIPELINE);
    // Queued, not written: `answer` writes every queued frame at once.
    let mut send = |p: &mut WorkerProcess,
                    pipe: &mut VecDeque<Sent>,
                    job: Job,
                    left: Duration,
                    with_code: bool| {
        *seq += 1;
        let routing = Routing {
            seq: *seq,
            after: pipe.front().map_or(0, |s| s.seq),
            cpu_left: left,
            spin: idle_spin(shared),
        };
        p.send(&job.input, generation, lines, with_code, routing);
        pipe.push_back(Sent { seq: *seq, job });
    };
    send(p, &mut pipe, first, left, false);
    let mut sent_runs = 1;
    // The pipe is refilled once it is down to half, up to full: one write
    // (and one read in the worker) carries several frames, not one an answer.
    let mut filling = true;
    let mut since = match pipe.front() {
        Some(front) => begin(shared, me, slot, &front.job),
        None => return true,
    };
    loop {
        // The next run: when the pipe is empty, or behind the running ones
        // unless the container is low on budget (runs sent ahead could not
        // be stopped by it); past the session's share only while no other
        // container waits, and never when stopping.
        if pipe.len() <= PIPELINE / 2 {
            filling = true;
        } else if pipe.len() == PIPELINE {
            filling = false;
        }
        let room =
            pipe.is_empty() || (filling && pipe.len() < PIPELINE && !penalized(shared, slot));
        if room
            && (sent_runs < SESSION_RUNS || !others_wait(shared, me))
            && !shared.stopping.load(Ordering::Acquire)
            && let Some((job, left)) = take_more(shared, slot)
        {
            let was_empty = pipe.is_empty();
            send(p, &mut pipe, job, left, false);
            sent_runs += 1;
            if was_empty && let Some(front) = pipe.front() {
                since = begin(shared, me, slot, &front.job);
            }
            continue;
        }
        let Some(front) = pipe.front() else { break };
        let deadline =
            since + crate::sandbox::limit::hard_limit(&shared.limits, front.job.input.time_limit);
        // Awaited without sleeping while the host is quiet: at one
        // connection the answer comes before a sleeping thread would wake.
        let answer = p.answer(&slot.log, idle_spin(shared));
        match tokio::time::timeout_at(deadline.into(), answer).await {
            Ok(Ok(Answer::NeedCode)) => {
                let Some(sent) = pipe.pop_front() else { break };
                match cpu_left(slot, &shared.limits) {
                    Ok(left) => send(p, &mut pipe, sent.job, left, true),
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
            Ok(Ok(Answer::Wait(wait))) => {
                let Some(sent) = pipe.pop_front() else { break };
                let outbound = outbound(shared, slot, since, &sent.job.input);
                let run = ParkedRun {
                    job: sent.job,
                    slot: Arc::clone(slot),
                    since,
                };
                parking.park(sent.seq, run, outbound, wait);
                // The container's next runs go on beside it, in the same runtime.
                match pipe.front() {
                    Some(next) => since = begin(shared, me, slot, &next.job),
                    None => *lock(&me.busy) = None,
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
                fail_pipe(shared, me, slot, &mut pipe, since, || killed_reply(limit));
                return false;
            }
        }
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
