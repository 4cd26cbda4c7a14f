//! The executor: OS threads (more than cores) that run containers, one run of
//! a container at a time, per-container CPU budgets, and a watchdog for runs
//! past their limit.
//!
//! Design notes: JS never runs on tokio workers, and containers are not
//! pinned to threads; a prototype measured that either lets two spinning
//! tenants stall everyone. A container with work goes to the thread that
//! ran it last (its *home*, where its runtime is resident) if that thread is
//! idle, and otherwise onto one ready queue that every thread takes from; a
//! thread runs one job and puts the container back at the end if more are
//! waiting. So no thread ever waits on a busy container, one container never
//! holds more than one thread, and a container mostly stays where its
//! runtime is.
//!
//! Where the JavaScript runs is the [`Backend`]: in worker processes, each
//! owned by an async worker task that kills it when a run passes its hard
//! limit; or on threads of this process, where a watchdog can only write a
//! stuck thread off and quarantine the container until the run ends.

//!
//! Split by job, as tokio splits its scheduler: [`state`] (what the parts
//! share), [`handle`] (the [`Executor`] API), [`scheduler`], [`budget`] (CPU
//! budgets), [`threads`] and [`sessions`] (the two backends), [`spawn`] and
//! [`watchdog`].

mod budget;
mod handle;
mod scheduler;
mod sessions;
mod spawn;
mod state;
mod threads;
mod watchdog;

pub(crate) use handle::Executor;
pub use state::ExecutorStats;
pub(crate) use state::{Isolation, Rejected, quarantine_reply};
