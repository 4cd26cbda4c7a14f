//! The host's side of a parked run: it makes the run's requests through
//! [`Egress`] within the run's limits, keeps its next timer, and says when
//! the run should go on ([`Outbound::next`]). Dropping it cancels whatever
//! is still in flight: a run that settled, or whose worker died, leaves
//! nothing running.

use super::io::{HostCall, Resume, Subrequest, Wait};
use crate::egress::{Budget, Egress, Outcome, Request};
use crate::logs::LogSink;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;
use tokio::task::{AbortHandle, JoinSet};
use tracing::Instrument as _;

/// Per-run limits on outbound requests.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunLimits {
    pub(crate) per_run: usize,
    pub(crate) at_once: usize,
    pub(crate) budget: Budget,
}

/// One parked run's requests and timer.
pub(crate) struct Outbound {
    egress: Egress,
    limits: RunLimits,
    /// When the run's time is up.
    deadline: Instant,
    sink: LogSink,
    container: String,
    /// The run's W3C trace id, or empty.
    trace_id: String,
    /// Requests started so far (refused ones included).
    made: usize,
    queued: VecDeque<(u64, Request)>,
    running: JoinSet<(u64, Outcome)>,
    aborts: HashMap<u64, AbortHandle>,
    /// Outcomes known without waiting (refusals), handed back next.
    ready: Vec<(u64, Outcome)>,
    wake: Option<Instant>,
    /// Each request made, with its outcome once known, in the order made.
    log: Vec<(Request, Instant, Option<Subrequest>)>,
    by_id: HashMap<u64, usize>,
    /// On replay: the recorded run's requests, answered from instead of
    /// the network, and which were used.
    replay: Option<(Arc<Vec<Subrequest>>, Vec<bool>)>,
    /// On replay: the run asked for something the recording lacks.
    needs_network: bool,
    /// Log lines of finished requests, written when the run goes on (the
    /// container's log stream names the run then: see [`Outbound::flush_log`]).
    lines: Vec<(i32, String)>,
}

/// What a run's requests came to, for its reply.
#[derive(Debug, Default)]
pub(crate) struct Made {
    pub(crate) subrequests: Vec<Subrequest>,
    pub(crate) needs_network: bool,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("made", &self.made)
            .field("running", &self.running.len())
            .finish_non_exhaustive()
    }
}

impl Outbound {
    pub(crate) fn new(
        egress: Egress,
        limits: RunLimits,
        deadline: Instant,
        container: &str,
        trace_id: &str,
        log: LogSink,
        replay: Option<Arc<Vec<Subrequest>>>,
    ) -> Self {
        Outbound {
            egress,
            limits,
            deadline,
            sink: log,
            container: container.to_owned(),
            trace_id: trace_id.to_owned(),
            made: 0,
            queued: VecDeque::new(),
            running: JoinSet::new(),
            aborts: HashMap::new(),
            ready: Vec::new(),
            wake: None,
            log: Vec::new(),
            by_id: HashMap::new(),
            replay: replay.map(|r| {
                let used = vec![false; r.len()];
                (r, used)
            }),
            needs_network: false,
            lines: Vec::new(),
        }
    }

    /// Writes the lines of the requests that finished since the last call
    /// to the container's log stream. Called as the run goes on, when the
    /// stream names this run: requests finish while other runs of the
    /// container may be running.
    pub(crate) fn flush_log(&mut self) {
        for (level, line) in self.lines.drain(..) {
            self.sink.emit(level, line);
        }
    }

    /// The requests the run made and what came of them (unanswered ones
    /// as cancelled).
    pub(crate) fn made(self) -> Made {
        let subrequests = self
            .log
            .into_iter()
            .map(|(request, started, done)| {
                done.unwrap_or_else(|| {
                    let ms = started.elapsed().as_millis() as u64;
                    let cancelled = Outcome::Failed("cancelled: the run ended first".to_owned());
                    Subrequest::of(&request, &cancelled, ms)
                })
            })
            .collect();
        Made {
            subrequests,
            needs_network: self.needs_network,
        }
    }

    /// Notes what came of request `id`, and writes it to the tenant's log
    /// stream: one line per request, so that `wt logs` and the editor show
    /// what a run called.
    fn logged(&mut self, id: u64, outcome: &Outcome) {
        if let Some(&i) = self.by_id.get(&id)
            && let Some((request, started, done)) = self.log.get_mut(i)
            && done.is_none()
        {
            let ms = started.elapsed().as_millis() as u64;
            let replayed = if self.replay.is_some() {
                " (answered from the recording)"
            } else {
                ""
            };
            let (level, line) = match outcome {
                Outcome::Response { status, .. } => (
                    30,
                    format!(
                        "fetch {} {} -> {status} in {ms} ms{replayed}",
                        request.method, request.url
                    ),
                ),
                Outcome::Failed(message) => (
                    40,
                    format!(
                        "fetch {} {} failed: {message}{replayed}",
                        request.method, request.url
                    ),
                ),
            };
            self.lines.push((level, line));
            *done = Some(Subrequest::of(request, outcome, ms));
        }
    }

    /// On replay, the recorded answer to `request`: the first unused
    /// recorded request alike, else any alike; `None` when it has none.
    fn recorded(&mut self, request: &Request) -> Option<Outcome> {
        let (recorded, used) = self.replay.as_mut()?;
        let alike = |i: &usize| recorded[*i].matches(request);
        let i = (0..recorded.len())
            .filter(|i| !used[*i])
            .find(alike)
            .or_else(|| (0..recorded.len()).find(alike))?;
        used[i] = true;
        Some(recorded[i].outcome())
    }

    /// Takes what the run asks for now. Must be called within a tokio
    /// runtime (it spawns the requests).
    pub(crate) fn add(&mut self, wait: Wait) {
        self.wake = wait.wake_after.map(|d| Instant::now() + d);
        for call in wait.calls {
            match call {
                HostCall::Fetch(id, request) => {
                    self.made += 1;
                    self.by_id.insert(id, self.log.len());
                    self.log.push((request.clone(), Instant::now(), None));
                    if self.replay.is_some() {
                        let outcome = match self.recorded(&request) {
                            Some(o) => o,
                            None => {
                                self.needs_network = true;
                                Outcome::Failed(format!(
                                    "not recorded: the recorded run made no {} request to {} (replay answers only what was recorded)",
                                    request.method, request.url
                                ))
                            }
                        };
                        self.logged(id, &outcome);
                        self.ready.push((id, outcome));
                    } else if self.made > self.limits.per_run {
                        let message = format!(
                            "subrequest limit reached: a run may make {} requests (fetch to {} refused)",
                            self.limits.per_run, request.url
                        );
                        self.refuse(id, message);
                    } else {
                        self.queued.push_back((id, request));
                    }
                }
                HostCall::Cancel(id) => {
                    self.queued.retain(|(q, _)| *q != id);
                    if let Some(abort) = self.aborts.remove(&id) {
                        abort.abort();
                    }
                    let aborted = Outcome::Failed("aborted by the run".to_owned());
                    self.logged(id, &aborted);
                }
            }
        }
        self.start_queued();
    }

    fn refuse(&mut self, id: u64, message: String) {
        self.egress.counters.limited();
        let outcome = Outcome::Failed(message);
        self.logged(id, &outcome);
        self.ready.push((id, outcome));
    }

    /// Starts queued requests while fewer than the limit are in flight.
    fn start_queued(&mut self) {
        while self.aborts.len() < self.limits.at_once {
            let Some((id, request)) = self.queued.pop_front() else {
                break;
            };
            let (egress, budget, deadline) =
                (self.egress.clone(), self.limits.budget, self.deadline);
            let (container, trace_id) = (self.container.clone(), self.trace_id.clone());
            // A span per request, under the run's trace id, for the host's
            // own tracing (the tenant sees the log line).
            let span = tracing::info_span!(
                "fetch",
                container = %container,
                method = %request.method,
                url = %request.url,
                trace_id = %trace_id,
            );
            let abort = self.running.spawn(
                async move {
                    let outcome = egress
                        .fetch(&container, request, budget, deadline, &trace_id)
                        .await;
                    match &outcome {
                        Outcome::Response { status, .. } => tracing::debug!(status, "answered"),
                        Outcome::Failed(why) => tracing::debug!(why = %why, "failed"),
                    }
                    (id, outcome)
                }
                .instrument(span),
            );
            self.aborts.insert(id, abort);
        }
    }

    /// Waits until the run should go on: some outcomes came in, its timer is
    /// due, or its time is up (`expired`).
    pub(crate) async fn next(&mut self) -> Resume {
        let mut completions = std::mem::take(&mut self.ready);
        if completions.is_empty() {
            let wake = self.wake.unwrap_or(self.deadline).min(self.deadline);
            tokio::select! {
                biased;
                Some(done) = self.running.join_next(), if !self.running.is_empty() => {
                    if let Ok(done) = done {
                        completions.push(done);
                    }
                }
                () = tokio::time::sleep_until(wake.into()) => {}
            }
        }
        // Whatever else has finished goes along.
        while let Some(done) = self.running.try_join_next() {
            if let Ok(done) = done {
                completions.push(done);
            }
        }
        for (id, outcome) in &completions {
            if self.aborts.remove(id).is_some() {
                self.logged(*id, outcome);
            }
        }
        self.start_queued();
        Resume {
            expired: completions.is_empty() && Instant::now() >= self.deadline,
            completions,
        }
    }
}
