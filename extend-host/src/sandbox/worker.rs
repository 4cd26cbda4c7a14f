//! The worker process's side: read runs from stdin, run them in resident
//! JavaScript runtimes, write log lines and replies to stdout.

use super::engine::{Health, JsContainer, Logger};
use super::frame::{self, Encoder, ToHost};
use super::process::{PIPELINE, WORKER_ENV, encode_done};
use super::resident::Resident;
use super::{Reply, RunInput, Webtask};
use crate::config::Limits;
use crate::error::Source;
use std::io::{self, BufReader, BufWriter, Write as _};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The longest log line sent to the host; it cuts lines further itself.
const MAX_LOG_LINE: usize = 16 << 10;

type Out = Arc<Mutex<BufWriter<io::Stdout>>>;

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

fn serve(limits: &Limits, budget: usize) -> io::Result<()> {
    let mut stdin = BufReader::with_capacity(64 << 10, io::stdin().lock());
    let out: Out = Arc::new(Mutex::new(BufWriter::with_capacity(64 << 10, io::stdout())));
    let lines_left = Arc::new(AtomicUsize::new(0));
    let mut resident = Resident::new(budget);
    // Runtimes evicted since the last answer: reported with the next one.
    let mut evictions: u64 = 0;
    let mut buf = Vec::new();
    // The CPU the last runs used, by sequence number, oldest first.
    let mut spent = Spent::default();
    while let Some(tag) = frame::read(&mut stdin, &mut buf)? {
        if tag != frame::RUN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown frame {tag}"),
            ));
        }
        let run = frame::Run::decode(&buf)?;
        let container = run.container.to_owned();
        let name = run.name.to_owned();
        let (code_id, generation) = (run.code_id, run.generation);
        let with_code = run.code.is_some();
        let code = run.code.unwrap_or("");
        let request_id = run.request_id.to_owned();
        let ctx_json = run.ctx_json.to_owned();
        let req_json = run.req_json.to_owned();
        let (time_limit, compile_only) = (run.time_limit, run.compile_only);
        let log_lines = usize::try_from(run.log_lines).unwrap_or(0);
        let (seq, after, cpu_left, spin) = (run.seq, run.after, run.cpu_left, run.spin);
        // What the runs still unanswered when this one was sent used is not
        // in `cpu_left` yet.
        let limit =
            super::limit::within_budget(time_limit, cpu_left.saturating_sub(spent.since(after)));
        if limit.is_zero() {
            spent.record(seq, Duration::ZERO);
            // The worker does not know the refill rate: a second is a
            // fair first wait (the host's own refusals say more).
            let reply = Reply::cpu_exhausted(&container, 1);
            write(
                &out,
                &mut encode_done(
                    &reply,
                    false,
                    resident.len(),
                    std::mem::take(&mut evictions),
                ),
            )?;
            continue;
        }
        let (js, stale) = resident.take(&container, generation);
        drop(stale);
        let js = match js {
            Some(js) => Ok(js),
            None => JsContainer::new(limits, logger(&out, &lines_left)),
        };
        let mut js = match js {
            Ok(js) => js,
            Err(e) => {
                spent.record(seq, Duration::ZERO);
                let reply = Reply::error(500, Source::Proxy, "Runtime unavailable.", &e);
                write(
                    &out,
                    &mut encode_done(&reply, true, resident.len(), std::mem::take(&mut evictions)),
                )?;
                continue;
            }
        };
        if !with_code && !js.has(&name, code_id) {
            spent.record(seq, Duration::ZERO);
            let evicted = resident.put(&container, generation, js, 0);
            evictions += evicted.len() as u64;
            write(&out, &mut ToHost::NeedCode.encode())?;
            drop(evicted);
            continue;
        }
        let input = RunInput {
            webtask: Arc::new(Webtask {
                container: container.clone(),
                name,
                code: code.into(),
                code_id,
                secrets_json: String::new(),
                meta_json: String::new(),
                extension_secret: None,
                point: None,
            }),
            request_id,
            // Log records are written by the host, which knows the trace.
            trace_id: String::new(),
            ctx_json,
            req_json,
            time_limit: limit,
            compile_only,
        };
        // One more than the limit, so that the host can say lines were cut.
        lines_left.store(log_lines.saturating_add(1), Ordering::Relaxed);
        let (reply, health) = js.run(&input);
        lines_left.store(0, Ordering::Relaxed);
        spent.record(seq, reply.cpu);
        let discard = health == Health::Discard;
        let evicted = if discard {
            drop(js);
            Vec::new()
        } else {
            resident.put(&container, generation, js, reply.heap)
        };
        evictions += evicted.len() as u64;
        write(
            &out,
            &mut encode_done(
                &reply,
                discard,
                resident.len(),
                std::mem::take(&mut evictions),
            ),
        )?;
        drop(evicted);
        if !spin.is_zero() && stdin.buffer().is_empty() {
            spin_for_input(spin);
        }
    }
    Ok(())
}

/// Waits for input on stdin without sleeping, for up to `spin`: the host
/// asks for it when no other request waits, because waking a sleeping
/// process takes tens of microseconds on a VM, as long as a small run.
fn spin_for_input(spin: Duration) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd as _;
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
