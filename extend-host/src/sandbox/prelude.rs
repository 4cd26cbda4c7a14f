//! The prelude (`prelude.js`), the host's side of a run in JavaScript, and
//! the functions of it the engine calls, kept for the runtime's life.

#![allow(unsafe_code)]

use super::bytecode::HostScript;
use rquickjs::{Ctx, Function, Object, Persistent};

/// The prelude's source, compiled once per process.
pub(super) static PRELUDE: HostScript = HostScript::new(include_str!("prelude.js"));

/// The functions of `__extend_host` the engine calls on every run, kept
/// instead of looked up by name each time: the two lookups of a run
/// (`__extend_host` on the global object, then `run` on it) each made an
/// atom from a Rust string and cost ~950 instructions of a trivial run's
/// ~62,000 in the worker (#26, counted with callgrind). `__extend_host` is
/// frozen and not configurable, so what is kept is what a lookup would find.
pub(super) struct Api {
    run: Persistent<Function<'static>>,
    outcome: Persistent<Function<'static>>,
    wait: Persistent<Function<'static>>,
    resume: Persistent<Function<'static>>,
}

// SAFETY: a `Persistent` is not `Send` only because it holds its runtime's
// pointer. An `Api` lives in the `JsContainer` that owns that runtime and
// its one context, moves between threads only with them (both `Send` with
// rquickjs's `parallel` feature), is restored only inside `Context::with`
// of that context, and is dropped before them (the container's field
// order). No other thread can use the runtime meanwhile: the container
// owns it.
unsafe impl Send for Api {}

impl Api {
    /// Takes the functions from `__extend_host`, which the prelude installed.
    pub(super) fn of(ctx: &Ctx<'_>) -> rquickjs::Result<Api> {
        let api: Object<'_> = ctx.globals().get("__extend_host")?;
        let keep = |name: &str| -> rquickjs::Result<Persistent<Function<'static>>> {
            Ok(Persistent::save(ctx, api.get::<_, Function<'_>>(name)?))
        };
        Ok(Api {
            run: keep("run")?,
            outcome: keep("outcome")?,
            wait: keep("wait")?,
            resume: keep("resume")?,
        })
    }

    /// `run(key, name, ctxJson, reqJson)`.
    pub(super) fn run<'js>(&self, ctx: &Ctx<'js>) -> rquickjs::Result<Function<'js>> {
        self.run.clone().restore(ctx)
    }

    /// `outcome(st)`.
    pub(super) fn outcome<'js>(&self, ctx: &Ctx<'js>) -> rquickjs::Result<Function<'js>> {
        self.outcome.clone().restore(ctx)
    }

    /// `wait(key)`.
    pub(super) fn wait<'js>(&self, ctx: &Ctx<'js>) -> rquickjs::Result<Function<'js>> {
        self.wait.clone().restore(ctx)
    }

    /// `resume(key, results)`.
    pub(super) fn resume<'js>(&self, ctx: &Ctx<'js>) -> rquickjs::Result<Function<'js>> {
        self.resume.clone().restore(ctx)
    }
}
