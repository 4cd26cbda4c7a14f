//! HTTP headers the framework sends with an invocation and the host reads.

/// The milliseconds the caller will still wait, sent with every invocation;
/// the host caps the run's time limit at it, so that a run nobody waits for
/// stops.
pub const DEADLINE: &str = "x-extend-deadline-ms";

/// An async invocation's delivery id, the same on every attempt and replay:
/// the idempotency key an extension may remember.
pub const DELIVERY_ID: &str = "x-extend-delivery-id";

/// Who produced a run's answer, on every answer of a run URL (the original
/// platform's header): one of [`source`]'s values.
pub const RESPONSE_SOURCE: &str = "x-wt-response-source";

/// The values of [`RESPONSE_SOURCE`].
pub mod source {
    /// The extension's code ran and answered (success, its error, a crash or
    /// a limit).
    pub const WEBTASK: &str = "webtask";
    /// The code did not compile.
    pub const COMPILER: &str = "compiler";
    /// The host refused or failed the run before the code ran.
    pub const PROXY: &str = "proxy";
    /// Something between the client and the host failed.
    pub const NETWORK: &str = "network";
}
