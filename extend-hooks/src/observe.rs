//! What an invocation tells operators: a `tracing` span per invocation
//! (`extension_point`, with `discovery` and `exchange` children), metrics
//! through the `metrics` facade (recorded only when the application
//! installed a recorder), and the W3C trace context sent to the extension.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `extend_invocations_total` | counter | `point`, `mode`, `outcome` |
//! | `extend_invocation_duration_seconds` | histogram | `point`, `mode` |
//! | `extend_discovery_cache_total` | counter | `result` = `hit` / `miss` |
//! | `extend_outbox_depth` | gauge | |
//! | `extend_dead_letters_total` | counter | `point` |

use std::sync::Arc;
use std::time::Instant;

use tracing::Span;
use tracing::field::Empty;

use crate::error::{Error, ErrorKind};

/// Gives the W3C `traceparent` of the caller's current span, if it has one
/// (see [`ExtendBuilder::trace_parent`](crate::ExtendBuilder::trace_parent)).
pub(crate) type TraceParentFn = Arc<dyn Fn() -> Option<String> + Send + Sync>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex<const N: usize>() -> String {
    let mut b = [0u8; N];
    if getrandom::fill(&mut b).is_err() {
        for x in &mut b {
            *x = fastrand::u8(..);
        }
    }
    // All zeros is invalid in W3C trace context.
    if b.iter().all(|x| *x == 0) {
        b[N - 1] = 1;
    }
    hex(&b)
}

pub(crate) use extend_wire::trace::trace_id_of;

/// The trace an invocation belongs to: the caller's, or a new one.
pub(crate) fn trace_id(parent: Option<&TraceParentFn>) -> String {
    parent
        .and_then(|f| f())
        .and_then(|tp| trace_id_of(&tp))
        .unwrap_or_else(random_hex::<16>)
}

/// The `traceparent` one exchange sends: the invocation's trace, a span id
/// of its own, sampled.
pub(crate) fn traceparent(trace_id: &str) -> String {
    format!("00-{trace_id}-{}-01", random_hex::<8>())
}

/// The span of one invocation (or one outbox delivery).
pub(crate) fn span(point: &str, container: &str, mode: &'static str, trace_id: &str) -> Span {
    tracing::info_span!(
        "extension_point",
        point,
        container,
        mode,
        trace_id,
        outcome = Empty,
        status = Empty,
        attempts = Empty,
        latency_ms = Empty,
    )
}

/// A short name for what happened, for the span and the metric label.
pub(crate) fn outcome_name(result: Result<bool, &Error>) -> &'static str {
    match result {
        Ok(true) => "extension",
        Ok(false) => "no_extension",
        Err(e) => match e.kind() {
            ErrorKind::Discovery { .. } => "discovery",
            ErrorKind::Ambiguous { .. } => "ambiguous",
            ErrorKind::Timeout { .. } => "timeout",
            ErrorKind::Transport { .. } => "transport",
            ErrorKind::ResponseTooLarge { .. } => "response_too_large",
            ErrorKind::ExtensionFailed { .. } => "extension_failed",
            ErrorKind::ExtensionCrashed { .. } => "extension_crashed",
            ErrorKind::CompilationFailed { .. } => "compilation_failed",
            ErrorKind::Unauthorized { .. } => "unauthorized",
            ErrorKind::RateLimited { .. } => "rate_limited",
            ErrorKind::HostUnavailable { .. } => "host_unavailable",
            ErrorKind::Status { .. } => "status",
            ErrorKind::InvalidResponse { .. } => "invalid_response",
            ErrorKind::Payload { .. } => "payload",
            ErrorKind::QueueFull { .. } => "queue_full",
            ErrorKind::ShutDown => "shut_down",
            ErrorKind::Outbox { .. } => "outbox",
        },
    }
}

/// Records how an invocation ended on its span and in the metrics.
pub(crate) fn finish(
    span: &Span,
    point: &'static str,
    mode: &'static str,
    started: Instant,
    outcome: &'static str,
    status: Option<u16>,
    attempts: u32,
) {
    let elapsed = started.elapsed();
    span.record("outcome", outcome);
    if let Some(s) = status {
        span.record("status", s);
    }
    span.record("attempts", attempts);
    span.record(
        "latency_ms",
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
    );
    metrics::counter!("extend_invocations_total", "point" => point, "mode" => mode, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("extend_invocation_duration_seconds", "point" => point, "mode" => mode)
        .record(elapsed.as_secs_f64());
}

pub(crate) fn discovery_cache(hit: bool) {
    metrics::counter!("extend_discovery_cache_total", "result" => if hit { "hit" } else { "miss" })
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::{trace_id_of, traceparent};

    #[test]
    fn traceparents_are_checked_and_keep_the_trace() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            trace_id_of(tp).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        ] {
            assert_eq!(trace_id_of(bad), None, "{bad}");
        }
        let sent = traceparent("4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            trace_id_of(&sent).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_ne!(
            sent,
            traceparent("4bf92f3577b34da6a3ce929d0e0e4736"),
            "a span id per exchange"
        );
    }
}
