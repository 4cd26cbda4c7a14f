//! What a run asks of the host while it waits (outbound requests, a timer)
//! and what the host hands back: the types the engine, the worker protocol
//! and both backends share, with their frame encoding side by side.
//!
//! A run that has nothing left to do but wait *parks*: the engine returns
//! [`Wait`], the backend hands the requests to [`Outbound`](super::outbound)
//! and frees the worker for other containers, and the run goes on when
//! [`Resume`] comes back. The run's time limit counts the wait; its CPU
//! budget does not. Their frame encoding is in [`super::frame`].

use crate::egress::{Outcome, Redirect, Request};
use std::time::Duration;

/// One thing a parked run asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostCall {
    /// Make this request; its id comes back with the outcome.
    Fetch(u64, Request),
    /// The run no longer wants this request's outcome (its signal aborted).
    Cancel(u64),
}

/// A parked run's requests, and when its next timer is due.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Wait {
    pub(crate) calls: Vec<HostCall>,
    pub(crate) wake_after: Option<Duration>,
}

/// What ends a wait: the outcomes that came in, or the run's time is up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Resume {
    pub(crate) completions: Vec<(u64, Outcome)>,
    pub(crate) expired: bool,
}

/// The redirect mode numbered as fetch.js numbers it (its index in
/// `['follow', 'manual', 'error']`), and as frames carry it.
pub(crate) fn redirect_of(n: u64) -> Redirect {
    match n {
        1 => Redirect::Manual,
        2 => Redirect::Error,
        _ => Redirect::Follow,
    }
}

pub(crate) fn redirect_code(r: Redirect) -> u64 {
    match r {
        Redirect::Follow => 0,
        Redirect::Manual => 1,
        Redirect::Error => 2,
    }
}
