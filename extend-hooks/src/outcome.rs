//! How an async invocation ended, as the application sees it: the
//! [`Outcome`] handed to its callback, logged once and recorded on its span
//! and in the metrics, and what a shutdown dropped. The delivery engine that
//! produces them is [`crate::outbox`]'s, for the in-memory queue too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::point::PointDescriptor;

/// A callback that receives every async outcome.
pub(crate) type OutcomeFn = Arc<dyn Fn(&Outcome) + Send + Sync>;

/// How an async invocation ended. Each one is logged once with `tracing` and,
/// when set, passed to the builder's [`on_outcome`](crate::ExtendBuilder::on_outcome) callback.
#[derive(Debug)]
#[non_exhaustive]
pub struct Outcome {
    /// The point's name.
    pub point: &'static str,
    /// The container it ran for.
    pub container: Arc<str>,
    /// What happened.
    pub status: OutcomeStatus,
    /// HTTP attempts made (0 when no extension was installed or it was dropped before trying).
    pub attempts: u32,
    /// From queuing to the end.
    pub elapsed: Duration,
    /// The invocation's delivery id, sent as
    /// [`DELIVERY_ID_HEADER`](crate::outbox::DELIVERY_ID_HEADER) on each attempt.
    pub delivery_id: Option<Arc<str>>,
}

/// What happened to an async invocation.
#[derive(Debug)]
#[non_exhaustive]
pub enum OutcomeStatus {
    /// The extension answered 2xx.
    Delivered {
        /// The HTTP status.
        status: u16,
    },
    /// The container has no extension for the point: nothing to deliver.
    NoExtension,
    /// Delivery failed for good: a permanent error, or the last retry's.
    Failed(Error),
    /// The client shut down and the grace period ended before delivery.
    Dropped,
}

/// What [`Extend::shutdown`](crate::Extend::shutdown) reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Invocations that were queued or in flight when the grace period ended,
    /// and so were never delivered.
    pub dropped: usize,
}

/// Records an async invocation's end on its span and in the metrics.
pub(crate) fn observe_outcome(
    span: &tracing::Span,
    point: &'static PointDescriptor,
    started: Instant,
    status: &OutcomeStatus,
    attempts: u32,
) {
    let (outcome, code) = match status {
        OutcomeStatus::Delivered { status } => ("extension", Some(*status)),
        OutcomeStatus::NoExtension => ("no_extension", None),
        OutcomeStatus::Failed(e) => (crate::observe::outcome_name(Err(e)), e.status()),
        OutcomeStatus::Dropped => ("dropped", None),
    };
    crate::observe::finish(
        span,
        point.name(),
        "async",
        started,
        outcome,
        code,
        attempts,
    );
}

/// Logs an async outcome once, and hands it to the builder's callback.
pub(crate) fn report(outcome: &Outcome, on_outcome: Option<&OutcomeFn>) {
    let elapsed_ms = u64::try_from(outcome.elapsed.as_millis()).unwrap_or(u64::MAX);
    let (point, container, attempts) = (outcome.point, &*outcome.container, outcome.attempts);
    match &outcome.status {
        OutcomeStatus::Delivered { status } => tracing::info!(
            point,
            container,
            status,
            attempts,
            elapsed_ms,
            "async extension delivered"
        ),
        OutcomeStatus::NoExtension => tracing::debug!(
            point,
            container,
            attempts,
            elapsed_ms,
            "async point has no extension in this container"
        ),
        OutcomeStatus::Failed(error) => tracing::warn!(
            point, container, attempts, elapsed_ms, error = %error, "async extension failed"
        ),
        OutcomeStatus::Dropped => tracing::warn!(
            point,
            container,
            attempts,
            elapsed_ms,
            "async invocation dropped at shutdown"
        ),
    }
    if let Some(callback) = on_outcome {
        callback(outcome);
    }
}
