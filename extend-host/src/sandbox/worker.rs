//! The worker process's side: read runs from stdin, run them in resident
//! JavaScript runtimes, write log lines and replies to stdout.

use super::Reply;
use super::engine::{Health, Job, JsContainer, Logger, Step};
use super::frame::{self, Encoder, ToHost};
use super::process::{PIPELINE, WORKER_ENV, encode_done};
use super::resident::Resident;
use crate::config::Limits;
use crate::error::Source;
use std::io::{self, BufReader, BufWriter, Write as _};
use std::os::fd::AsFd as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The longest log line sent to the host; it cuts lines further itself.
const MAX_LOG_LINE: usize = 16 << 10;

/// The frames to the host. On a `File` of stdout's descriptor rather than
/// `io::Stdout`, whose lock and line buffering (a search for a newline in
/// every frame) cost ~600 instructions an answer (#26, callgrind); nothing
/// else in a worker writes to stdout.
type Out = Arc<Mutex<BufWriter<std::fs::File>>>;

/// Settings of a worker, from [`WORKER_ENV`].
fn settings() -> Result<(Limits, usize), String> {
    let raw = std::env::var(WORKER_ENV).map_err(|_| format!("{WORKER_ENV} is not set"))?;
    let parts: Vec<usize> = raw
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{WORKER_ENV}=`{raw}` is not `memory,stack,resident`"))?;
    let [memory, stack, resident] = <[usize; 3]>::try_from(parts)
        .map_err(|_| format!("{WORKER_ENV}=`{raw}` is not `memory,stack,resident`"))?;
    let limits = Limits {
        memory,
        stack,
        ..Limits::default()
    };
    Ok((limits, resident))
}

/// Runs this process as a JavaScript worker of a host, until the host closes
/// its stdin (or dies: the kernel kills the worker then).
pub(crate) fn main() -> ExitCode {
    // A worker outliving its host would run tenants' code unsupervised.
    if let Err(e) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL) {
        eprintln!("extend-host worker: cannot ask to die with the host: {e}");
        return ExitCode::FAILURE;
    }
    let (limits, budget) = match settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("extend-host worker: {e}");
            return ExitCode::FAILURE;
        }
    };
    match serve(&limits, budget) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("extend-host worker: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The CPU time of the last [`PIPELINE`] runs this worker answered, by
/// sequence number: enough for every run the host may still count as
/// unanswered.
#[derive(Debug, Default)]
struct Spent(std::collections::VecDeque<(u64, Duration)>);

impl Spent {
    fn record(&mut self, seq: u64, cpu: Duration) {
        if self.0.len() == PIPELINE {
            self.0.pop_front();
        }
        self.0.push_back((seq, cpu));
    }

    /// What runs from sequence number `after` on used (none when `after`
    /// is 0: nothing was unanswered).
    fn since(&self, after: u64) -> Duration {
        if after == 0 {
            return Duration::ZERO;
        }
        self.0
            .iter()
            .filter(|(seq, _)| *seq >= after)
            .map(|(_, cpu)| *cpu)
            .sum()
    }
}

/// A container's runtime while runs of it wait on the host: out of the
/// resident set (never evicted meanwhile), and shared by the container's
/// next runs, which run beside the parked ones.
struct Held {
    js: Box<JsContainer>,
    /// The keys (RUN frame sequence numbers) of its parked runs.
    runs: std::collections::HashSet<u64>,
}

/// What the worker keeps between frames.
struct State {
    resident: Resident,
    /// Runtimes evicted since the last answer: reported with the next one.
    evictions: u64,
    /// The CPU the last runs used, by sequence number, oldest first.
    spent: Spent,
    /// Runtimes with parked runs, by container and generation.
    held: std::collections::HashMap<(String, u64), Held>,
    /// Each parked run: its runtime's key and the log lines it may still write.
    parked: std::collections::HashMap<u64, ((String, u64), usize)>,
}

fn serve(limits: &Limits, budget: usize) -> io::Result<()> {
    let mut stdin = BufReader::with_capacity(64 << 10, io::stdin().lock());
    let stdout = std::fs::File::from(io::stdout().as_fd().try_clone_to_owned()?);
    let out: Out = Arc::new(Mutex::new(BufWriter::with_capacity(64 << 10, stdout)));
    let lines_left = Arc::new(AtomicUsize::new(0));
    let mut state = State {
        resident: Resident::new(budget),
        evictions: 0,
        spent: Spent::default(),
        held: std::collections::HashMap::new(),
        parked: std::collections::HashMap::new(),
    };
    let mut buf = Vec::new();
    while let Some(tag) = frame::read(&mut stdin, &mut buf)? {
        let spin = match tag {
            frame::RUN => {
                let run = frame::Run::decode(&buf)?;
                let spin = run.spin;
                run_frame(limits, &out, &lines_left, &mut state, &run)?;
                spin
            }
            frame::RESUME => {
                let r = frame::ResumeFrame::decode(&buf)?;
                resume_frame(&out, &lines_left, &mut state, r)?;
                Duration::ZERO
            }
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unknown frame {other}"),
                ));
            }
        };
        if !spin.is_zero() && stdin.buffer().is_empty() {
            spin_for_input(spin);
        }
    }
    Ok(())
}

fn resume_frame(
    out: &Out,
    lines_left: &Arc<AtomicUsize>,
    state: &mut State,
    r: frame::ResumeFrame,
) -> io::Result<()> {
    let held = state.parked.remove(&r.run).and_then(|(rt, left)| {
        let mut held = state.held.remove(&rt)?;
        held.runs.remove(&r.run);
        Some((rt, left, held))
    });
    let Some(((container, generation), left, held)) = held else {
        state.spent.record(r.seq, Duration::ZERO);
        // Its runtime was dropped: another run of the container ran out of
        // time or memory, which resets the runtime and all it held.
        let reply = Reply::error(
            500,
            Source::Webtask,
            "Script could not be run.",
            "the container's JavaScript runtime was reset while this run waited (another run of the container exceeded a limit)",
        );
        return answer(out, state, &reply, false);
    };
    lines_left.store(left, Ordering::Relaxed);
    let Held { mut js, runs } = held;
    let step = js.resume(r.run, r.resume);
    settle(
        out,
        lines_left,
        state,
        (r.run, r.seq),
        (js, runs),
        &container,
        generation,
        step,
    )
}

/// Writes a DONE frame with what the worker reports about itself.
fn answer(out: &Out, state: &mut State, reply: &Reply, discard: bool) -> io::Result<()> {
    write(
        out,
        &mut encode_done(
            reply,
            discard,
            state.resident.len(),
            std::mem::take(&mut state.evictions),
        ),
    )
}

fn run_frame(
    limits: &Limits,
    out: &Out,
    lines_left: &Arc<AtomicUsize>,
    state: &mut State,
    run: &frame::Run<'_>,
) -> io::Result<()> {
    let seq = run.seq;
    let container = run.container.to_owned();
    let (code_id, generation) = (run.code_id, run.generation);
    // What the runs still unanswered when this one was sent used is not
    // in `cpu_left` yet.
    let limit = super::limit::within_budget(
        run.time_limit,
        run.cpu_left.saturating_sub(state.spent.since(run.after)),
    );
    if limit.is_zero() {
        state.spent.record(seq, Duration::ZERO);
        // The worker does not know the refill rate: a second is a
        // fair first wait (the host's own refusals say more).
        return answer(out, state, &Reply::cpu_exhausted(&container, 1), false);
    }
    // A runtime whose runs wait on the host runs the next ones beside them.
    // Most runs find no held runtime: no key is built to look for one then.
    let held = if state.held.is_empty() {
        None
    } else {
        state.held.remove(&(container.clone(), generation))
    };
    let (js, runs) = match held {
        Some(held) => (Ok(held.js), held.runs),
        None => {
            let (js, stale) = state.resident.take(&container, generation);
            drop(stale);
            let js = match js {
                Some(js) => Ok(js),
                None => JsContainer::new(limits, logger(out, lines_left)).map(Box::new),
            };
            (js, std::collections::HashSet::new())
        }
    };
    let js = match js {
        Ok(js) => js,
        Err(e) => {
            state.spent.record(seq, Duration::ZERO);
            let reply = Reply::error(500, Source::Proxy, "Runtime unavailable.", &e);
            return answer(out, state, &reply, true);
        }
    };
    if run.code.is_none() && !js.has(run.name, code_id) {
        state.spent.record(seq, Duration::ZERO);
        put_back(state, &container, generation, (js, runs), 0);
        return write(out, &mut ToHost::NeedCode.encode());
    }
    // Borrowed from the frame: nothing of the request is copied.
    let input = Job {
        name: run.name,
        code_id,
        code: run.code.unwrap_or(""),
        ctx_json: run.ctx_json,
        req_json: run.req_json,
        time_limit: limit,
        compile_only: run.compile_only,
    };
    // One more than the limit, so that the host can say lines were cut.
    let log_lines = usize::try_from(run.log_lines).unwrap_or(0);
    lines_left.store(log_lines.saturating_add(1), Ordering::Relaxed);
    let mut js = js;
    let step = js.run(seq, input);
    settle(
        out,
        lines_left,
        state,
        (seq, seq),
        (js, runs),
        &container,
        generation,
        step,
    )
}

/// Puts a runtime back: held while runs of it wait, else resident.
fn put_back(
    state: &mut State,
    container: &str,
    generation: u64,
    (js, runs): (Box<JsContainer>, std::collections::HashSet<u64>),
    heap: i64,
) {
    if runs.is_empty() {
        let evicted = state.resident.put(container, generation, js, heap);
        state.evictions += evicted.len() as u64;
    } else {
        state
            .held
            .insert((container.to_owned(), generation), Held { js, runs });
    }
}

/// After a run (or a part of one) ran: parks it, or answers and puts its
/// runtime back. `ids` are the run's key (its RUN frame's sequence number)
/// and this frame's sequence number.
#[allow(clippy::too_many_arguments)]
fn settle(
    out: &Out,
    lines_left: &Arc<AtomicUsize>,
    state: &mut State,
    (run, seq): (u64, u64),
    (js, mut runs): (Box<JsContainer>, std::collections::HashSet<u64>),
    container: &str,
    generation: u64,
    step: Step,
) -> io::Result<()> {
    let left = lines_left.swap(0, Ordering::Relaxed);
    match step {
        Step::Wait(wait) => {
            // The CPU of this part is charged when the run ends.
            state.spent.record(seq, Duration::ZERO);
            runs.insert(run);
            state
                .parked
                .insert(run, ((container.to_owned(), generation), left));
            put_back(state, container, generation, (js, runs), 0);
            write(out, &mut ToHost::Wait(wait).encode())
        }
        Step::Done(reply, health) => {
            state.spent.record(seq, reply.cpu);
            let discard = health == Health::Discard;
            if discard {
                // The runtime goes, and with it the runs that waited in it:
                // their resumes are answered as reset.
                for other in &runs {
                    state.parked.remove(other);
                }
                drop(js);
            } else {
                put_back(state, container, generation, (js, runs), reply.heap);
            }
            answer(out, state, &reply, discard)
        }
    }
}

/// Waits for input on stdin without sleeping, for up to `spin`: the host
/// asks for it when no other request waits, because waking a sleeping
/// process takes tens of microseconds on a VM, as long as a small run.
fn spin_for_input(spin: Duration) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let stdin = io::stdin();
    let until = std::time::Instant::now() + spin;
    while std::time::Instant::now() < until {
        let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(0) => std::hint::spin_loop(),
            _ => return,
        }
    }
}

fn write(out: &Out, frame: &mut Encoder) -> io::Result<()> {
    let mut w = out.lock().unwrap_or_else(PoisonError::into_inner);
    frame.write_to(&mut *w)?;
    w.flush()
}

/// Sends `console.*` lines to the host as they are written, so that a run
/// the host kills still has its lines in the stream.
fn logger(out: &Out, left: &Arc<AtomicUsize>) -> Logger {
    let (out, left) = (Arc::clone(out), Arc::clone(left));
    Arc::new(move |level: i32, mut msg: String| {
        if left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_err()
        {
            return;
        }
        if msg.len() > MAX_LOG_LINE {
            let mut end = MAX_LOG_LINE;
            while !msg.is_char_boundary(end) {
                end -= 1;
            }
            msg.truncate(end);
        }
        // A broken pipe means the host is gone; the next read ends the loop.
        let _ = write(&out, &mut ToHost::Log { level, line: &msg }.encode());
    })
}

#[cfg(test)]
mod tests {
    use super::{PIPELINE, Spent};
    use std::time::Duration;

    #[test]
    fn runs_still_unanswered_at_send_are_what_is_subtracted() {
        let ms = Duration::from_millis;
        let depth = PIPELINE as u64;
        let mut spent = Spent::default();
        assert_eq!(spent.since(0), ms(0));
        for seq in 1..=depth {
            spent.record(seq, ms(seq * 10));
        }
        // Sent while every one of them was unanswered: all of them count.
        assert_eq!(spent.since(1), ms((1..=depth).map(|s| s * 10).sum()));
        // Sent while only the last was unanswered.
        assert_eq!(spent.since(depth), ms(depth * 10));
        // Nothing was unanswered: the budget sent is exact.
        assert_eq!(spent.since(0), ms(0));
        // Only the last PIPELINE runs are kept, all a pipe can hold.
        for seq in depth + 1..=20 {
            spent.record(seq, ms(1));
        }
        assert_eq!(spent.0.len(), PIPELINE);
        assert_eq!(spent.since(21 - depth), ms(depth));
    }
}
