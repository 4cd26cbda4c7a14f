//! Worker processes: the host runs JavaScript in child processes it can
//! SIGKILL, because QuickJS cannot interrupt a builtin that never polls
//! (`indexOf` on long strings ran for minutes past its limit). Each worker
//! task of the executor owns one process and talks to it over its stdin and
//! stdout in [`frame`](super::frame)s, asynchronously: the host side of a run
//! is only I/O, so it needs no thread of its own (a thread in between cost a
//! wake-up each way, half the throughput at 32 connections). A run past its
//! hard limit is answered and its process killed; the task starts a new one
//! for its next job.

use super::frame::{self, Done, Encoder, ToHost};
use super::pipe::Answers;
use super::{Reply, RunInput};
use crate::config::Limits;
use crate::logs::LogSink;
use std::future::{Future as _, poll_fn};
use std::io;
use std::path::Path;
use std::pin::{Pin, pin};
use std::process::Stdio;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncWrite, BufReader};
use tokio::process::{Child, ChildStdin, Command};

/// The environment variable that makes a process a worker, and carries its
/// settings: `memory,stack,resident` in bytes.
pub(crate) const WORKER_ENV: &str = "EXTEND_HOST_WORKER";

/// A worker process owned by one worker task; killed when dropped.
pub(crate) struct WorkerProcess {
    // Kept for `kill_on_drop`.
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<Answers>,
    buf: Vec<u8>,
    /// Frames sent but not yet written to the worker's stdin, and how much
    /// of them was written. Writing never waits on its own: a worker
    /// blocked writing a large answer reads no more input until the host
    /// reads that answer, so the host writes only while it also reads (in
    /// [`WorkerProcess::answer`]); waiting on the write alone deadlocked
    /// both sides once each pipe held 64 KiB.
    unsent: Vec<u8>,
    written: usize,
}

impl std::fmt::Debug for WorkerProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerProcess").finish_non_exhaustive()
    }
}

/// The worker's answer to one RUN frame. Frames are answered one each, in
/// the order they were sent.
pub(crate) enum Answer {
    /// The worker does not have the code: send the run again with it.
    NeedCode,
    /// The run parked, waiting on these calls; resume it with
    /// [`WorkerProcess::resume`].
    Wait(super::io::Wait),

    /// The run's reply, and how many runtimes the worker holds now.
    Done {
        reply: Reply,
        resident: usize,
        /// Runtimes the worker evicted since its last answer.
        evicted: u64,
    },
}

/// How many runs of a container may be in a worker's pipe at once: while
/// one runs, the next are already there, so the worker does not sleep
/// between them and the host writes several frames at once. Measured at
/// c=32 on one container (#26): 2 gave (a)/(a') 0.52, 8 gave 0.81, with the
/// noisy-neighbour ratios at 1.17 (one attacker) and 0.98 (two); runs sent
/// ahead cannot overspend their container's budget (the worker subtracts
/// what the unanswered ones used, `Spent`), and a container low on budget
/// gets no runs sent ahead (`penalized`).
pub(crate) const PIPELINE: usize = 8;

/// One RUN frame's routing: its sequence number, the oldest frame still
/// unanswered when it was sent (0 if none), and the container's CPU budget
/// when it was sent, which does not count what the unanswered runs used.
/// The worker subtracts what it ran from `after` on, so that runs sent
/// ahead cannot overspend.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Routing {
    pub(crate) seq: u64,
    pub(crate) after: u64,
    pub(crate) cpu_left: Duration,
    /// How long the worker looks for its next frame without sleeping after
    /// it answers (the host is idle), or zero.
    pub(crate) spin: Duration,
}

impl WorkerProcess {
    /// Starts `program worker` with the worker's settings in its environment;
    /// a `low`-priority one under the `SCHED_IDLE` policy (`chrt --idle 0`:
    /// it runs only when nothing else wants the CPU), else `nice -n 19`, else
    /// at normal priority when neither tool is installed.
    pub(crate) fn spawn(
        program: &Path,
        limits: &Limits,
        resident: usize,
        low: bool,
    ) -> io::Result<Self> {
        if low {
            for (tool, args) in [("chrt", ["--idle", "0"]), ("nice", ["-n", "19"])] {
                let mut command = Command::new(tool);
                command.args(args).arg(program);
                match Self::spawn_with(command, limits, resident) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    other => return other,
                }
            }
            tracing::warn!(
                "neither `chrt` nor `nice` is installed; low-priority workers run at normal priority"
            );
        }
        Self::spawn_with(Command::new(program), limits, resident)
    }

    fn spawn_with(mut command: Command, limits: &Limits, resident: usize) -> io::Result<Self> {
        let mut child = command
            .arg("worker")
            .env(
                WORKER_ENV,
                format!("{},{},{resident}", limits.memory, limits.stack),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Tokio reaps a killed child in the background.
            .kill_on_drop(true)
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(io::Error::other("the worker's pipes were not created"));
        };
        Ok(WorkerProcess {
            _child: child,
            stdin,
            stdout: BufReader::with_capacity(64 << 10, Answers::new(stdout)),
            buf: Vec::new(),
            unsent: Vec::new(),
            written: 0,
        })
    }

    /// Queues a run (with its code when `with_code`) for the worker; it is
    /// written by [`answer`](Self::answer), together with the frames queued
    /// beside it (one write, one wake-up of the worker, for several runs).
    pub(crate) fn send(
        &mut self,
        input: &RunInput,
        generation: u64,
        log_lines: usize,
        with_code: bool,
        routing: Routing,
    ) {
        let w = &input.webtask;
        let mut frame = frame::Run {
            container: &w.container,
            name: &w.name,
            code_id: w.code_id,
            generation,
            code: with_code.then_some(&*w.code),
            ctx_json: &input.ctx_json,
            req_json: &input.req_json,
            time_limit: input.time_limit,
            compile_only: input.compile_only,
            log_lines: log_lines as u64,
            seq: routing.seq,
            after: routing.after,
            cpu_left: routing.cpu_left,
            spin: routing.spin,
        }
        .encode();
        self.unsent.extend_from_slice(frame.finish());
    }

    /// Sends what a parked run waited for (answered like a run).
    pub(crate) fn resume(&mut self, frame: &frame::ResumeFrame) {
        self.unsent.extend_from_slice(frame.encode().finish());
    }

    /// The answer to the oldest unanswered frame, forwarding the log lines
    /// of its run to `sink` as they come.
    /// Frames not yet written go out meanwhile: reading and writing never
    /// wait on each other. With a nonzero `spin` (the host is quiet), the
    /// answer is awaited that long without sleeping ([`Answers`]).
    pub(crate) async fn answer(&mut self, sink: &LogSink, spin: Duration) -> io::Result<Answer> {
        self.stdout.get_mut().spin(spin);
        loop {
            let tag = {
                let Self {
                    stdin,
                    stdout,
                    buf,
                    unsent,
                    written,
                    ..
                } = self;
                let mut read = pin!(frame::read_async(stdout, buf));
                poll_fn(|cx| {
                    if !unsent.is_empty()
                        && let Poll::Ready(Err(e)) = write_unsent(stdin, unsent, written, cx)
                    {
                        return Poll::Ready(Err(e));
                    }
                    read.as_mut().poll(cx)
                })
                .await?
            }
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "the worker exited"))?;
            match ToHost::decode(tag, &self.buf)? {
                ToHost::Log { level, line } => sink.emit(level, line.to_owned()),
                ToHost::NeedCode => return Ok(Answer::NeedCode),
                ToHost::Wait(wait) => return Ok(Answer::Wait(wait)),
                ToHost::Done(done) => return Ok(answer(done)),
            }
        }
    }
}

/// Writes as much of `unsent` from `written` on as the pipe takes; ready
/// when all of it is written (then `unsent` is emptied). Keeps its progress
/// in `written`, so it may be polled from any task and dropped any time.
fn write_unsent(
    stdin: &mut ChildStdin,
    unsent: &mut Vec<u8>,
    written: &mut usize,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    while *written < unsent.len() {
        let n = ready!(Pin::new(&mut *stdin).poll_write(cx, &unsent[*written..]))?;
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        *written += n;
    }
    unsent.clear();
    *written = 0;
    Poll::Ready(Ok(()))
}

/// The DONE frame of `reply` (worker side).
pub(crate) fn encode_done(reply: &Reply, discard: bool, resident: usize, evicted: u64) -> Encoder {
    ToHost::Done(Done {
        status: reply.status,
        source: reply.source,
        json: reply.json,
        body: &reply.body,
        headers: reply
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
        cpu: reply.cpu,
        heap: reply.heap.max(0) as u64,
        discarded: discard,
        resident: resident as u64,
        evicted,
    })
    .encode()
}

/// The answer a DONE frame gives (host side).
fn answer(done: Done<'_>) -> Answer {
    let mut reply = Reply::json(done.status, done.source, done.body.to_owned());
    reply.json = done.json;
    reply.headers = done
        .headers
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    reply.cpu = done.cpu;
    reply.heap = i64::try_from(done.heap).unwrap_or(i64::MAX);
    // Whether the worker dropped the runtime (`done.discarded`) is
    // informational for now.
    Answer::Done {
        reply,
        resident: usize::try_from(done.resident).unwrap_or(usize::MAX),
        evicted: done.evicted,
    }
}
