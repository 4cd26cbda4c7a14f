//! The host's side of a parked run: it makes the run's requests through
//! [`Egress`] within the run's limits, keeps its next timer, and says when
//! the run should go on ([`Outbound::next`]). Dropping it cancels whatever
//! is still in flight: a run that settled, or whose worker died, leaves
//! nothing running.

use super::io::{HostCall, Resume, Wait};
use crate::egress::{Budget, Egress, Outcome, Request};
use crate::logs::LogSink;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;
use tokio::task::{AbortHandle, JoinSet};

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
    log: LogSink,
    container: String,
    /// Requests started so far (refused ones included).
    made: usize,
    queued: VecDeque<(u64, Request)>,
    running: JoinSet<(u64, Outcome)>,
    aborts: HashMap<u64, AbortHandle>,
    /// Outcomes known without waiting (refusals), handed back next.
    ready: Vec<(u64, Outcome)>,
    wake: Option<Instant>,
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
        log: LogSink,
    ) -> Self {
        Outbound {
            egress,
            limits,
            deadline,
            log,
            container: container.to_owned(),
            made: 0,
            queued: VecDeque::new(),
            running: JoinSet::new(),
            aborts: HashMap::new(),
            ready: Vec::new(),
            wake: None,
        }
    }

    /// Takes what the run asks for now. Must be called within a tokio
    /// runtime (it spawns the requests).
    pub(crate) fn add(&mut self, wait: Wait) {
        self.wake = wait.wake_after.map(|d| Instant::now() + d);
        for call in wait.calls {
            match call {
                HostCall::Fetch(id, request) => {
                    self.made += 1;
                    if self.made > self.limits.per_run {
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
                }
            }
        }
        self.start_queued();
    }

    fn refuse(&mut self, id: u64, message: String) {
        // The tenant's log stream says why, besides the TypeError.
        self.log.emit(40, format!("fetch: {message}"));
        self.ready.push((id, Outcome::Failed(message)));
    }

    /// Starts queued requests while fewer than the limit are in flight.
    fn start_queued(&mut self) {
        while self.aborts.len() < self.limits.at_once {
            let Some((id, request)) = self.queued.pop_front() else {
                break;
            };
            let (egress, budget, deadline) =
                (self.egress.clone(), self.limits.budget, self.deadline);
            let container = self.container.clone();
            let abort = self.running.spawn(async move {
                (
                    id,
                    egress.fetch(&container, request, budget, deadline).await,
                )
            });
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
            self.aborts.remove(id);
            if let Outcome::Failed(message) = outcome
                && message.starts_with("egress ")
            {
                self.log.emit(40, format!("fetch: {message}"));
            }
        }
        self.start_queued();
        Resume {
            expired: completions.is_empty() && Instant::now() >= self.deadline,
            completions,
        }
    }
}
