//! The durable outbox: async invocations are recorded in a database before
//! the call returns `Ok`, and delivered at least once from there, by this
//! process or, after it died, by the next one that opens the same outbox.
//!
//! - **Backends**: an embedded SQLite file ([`OutboxConfig::sqlite`], feature
//!   `outbox-sqlite`) for one process, and PostgreSQL
//!   ([`OutboxConfig::postgres`], feature `outbox-postgres`) for several
//!   platform replicas sharing one outbox. Both record an invocation with
//!   group commit: concurrent calls share one transaction.
//! - **Delivery ids**: each invocation gets an id when it is recorded, sent
//!   as [`DELIVERY_ID_HEADER`] on every attempt and kept by replays. It is the
//!   idempotency key: an extension that must not act twice on one event
//!   remembers the ids it has seen.
//! - **Leases**: a replica takes due invocations for a while (the lease,
//!   longer than any point's timeout), so two replicas never deliver the same
//!   invocation at once; PostgreSQL takes them `FOR UPDATE SKIP LOCKED`. A
//!   lease that runs out (its replica died) makes the invocation due again.
//! - **Retries** follow a [`RetrySchedule`] (by default Svix's: at once, then
//!   5 s, 5 min, 30 min, 2 h, 5 h, 10 h later), never sooner than the
//!   extension's `Retry-After`. After the last attempt, or on a permanent
//!   error, the invocation is a [`DeadLetter`] with every attempt kept, until
//!   [`Outbox::replay`] makes it due again or [`Outbox::purge`] removes it.
//! - **Without an outbox**, the client's async invocations wait in a
//!   bounded queue in memory, delivered by the same engine: a full queue
//!   refuses at once (`QueueFull`), only transient failures are retried (on
//!   the builder's `async_*` schedule: the queue is lost with the process,
//!   so it can't wait hours for a fix), nothing is kept dead, and shutdown
//!   drops (and reports) what its grace period could not deliver.

// Without a backend feature the backends' helpers have no caller.
#![cfg_attr(
    not(any(feature = "outbox-sqlite", feature = "outbox-postgres")),
    allow(dead_code, unused_imports)
)]

mod attempt;
mod config;
mod flow;
mod handle;
mod intake;
mod memory;
mod record;
mod schedule;
mod worker;

#[cfg(feature = "outbox-postgres")]
mod postgres;
#[cfg(feature = "outbox-sqlite")]
mod sqlite;

pub use config::OutboxConfig;
pub use handle::Outbox;
pub use record::{Attempt, DELIVERY_ID_HEADER, DeadLetter, DeadLetterFilter, OutboxError, Pending};
pub use schedule::RetrySchedule;

pub(crate) use record::{
    BoxFuture, Committed, NewRecord, Record, Refused, Store, delivery_id, history, history_text,
    ms, now_ms,
};
pub(crate) use worker::Worker;
