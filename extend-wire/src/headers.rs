//! HTTP headers the framework sends with an invocation and the host reads.

/// The milliseconds the caller will still wait, sent with every invocation;
/// the host caps the run's time limit at it, so that a run nobody waits for
/// stops.
pub const DEADLINE: &str = "x-extend-deadline-ms";

/// An async invocation's delivery id, the same on every attempt and replay:
/// the idempotency key an extension may remember.
pub const DELIVERY_ID: &str = "x-extend-delivery-id";
