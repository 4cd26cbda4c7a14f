//! One container's JavaScript runtime: its own QuickJS heap, memory cap, stack
//! cap and wall-clock interrupt, and the extensions compiled in it.

use super::bytecode;
use super::cpu::{cpu_charge, start_cpu_accounting};
use super::io::{Resume, Wait};
use super::marshal::{Failure, completions, read_outcome, read_wait};
use super::prelude::{Api, PRELUDE};
use super::{Reply, RunInput};
use crate::config::Limits;
use crate::error::Source;
use rquickjs::{CatchResultExt, Context, Ctx, Function, Object, Runtime, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Nanoseconds since the first call, for deadlines the interrupt handler can
/// read without a lock.
fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Whether a container may be reused after a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    Reusable,
    /// A time-limit or memory-limit stop: the heap may hold half-mutated
    /// globals and queued jobs of the aborted run, so the runtime is rebuilt.
    Discard,
}

/// Where a runtime's `console.*` lines go: `(bunyan level, line)`.
pub(crate) type Logger = Arc<dyn Fn(i32, String) + Send + Sync>;

pub(crate) struct JsContainer {
    // What each loaded extension was compiled from, and how it is called.
    compiled: HashMap<String, Loaded>,
    // `api`, then `ctx`, then `rt`: fields drop in order, what is kept from
    // a context must go before it, and a context before its runtime.
    api: Api,
    ctx: Context,
    rt: Runtime,
    deadline: Arc<AtomicU64>,
    fired: Arc<AtomicBool>,
    /// The heap's cap, for the out-of-memory message.
    memory_limit: usize,
    /// The heap at the last measurement, and runs since.
    heap: i64,
    unmeasured: u32,
    /// Runs waiting on the host (see [`super::io`]), by the key their
    /// caller gave them: a container's runs may wait side by side.
    parked: HashMap<u64, RunClock>,
}

/// An extension loaded into a runtime.
#[derive(Debug, Clone, Copy)]
struct Loaded {
    /// The code it was compiled from; `None` while it has none that
    /// compiled (it is kept for its slot).
    code_id: Option<u64>,
    /// Where the prelude keeps its function (`fns` in prelude.js): runs name
    /// it by this number, not by a string made each run (#26). A name keeps
    /// its slot for the runtime's life, so new code replaces the old
    /// function instead of leaving it behind.
    slot: i32,
    /// Whether it is a `(ctx, req, res)` function: only those are given
    /// `req`, so other runs do not make a JavaScript string of it (#26).
    takes_req: bool,
}

/// A run's time: when it started and may end, and the CPU its segments used.
#[derive(Debug, Clone, Copy)]
struct RunClock {
    started: Instant,
    limit: Duration,
    cpu: Duration,
    compiles: bool,
}

/// What the engine needs of one run, borrowed from wherever it was read:
/// a worker process takes it straight out of the RUN frame, without
/// copying the request into a [`super::RunInput`] first (#26: allocations
/// per run on the worker's side).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Job<'a> {
    /// The extension's name in its container.
    pub(crate) name: &'a str,
    /// Which version of its code this run wants.
    pub(crate) code_id: u64,
    /// The code, compiled when the runtime does not hold `code_id` yet.
    pub(crate) code: &'a str,
    /// The `ctx` object as JSON.
    pub(crate) ctx_json: &'a str,
    /// The `req` object of `(ctx, req, res)` extensions as JSON.
    pub(crate) req_json: &'a str,
    /// Wall-clock time the run, compilation included, may take.
    pub(crate) time_limit: Duration,
    /// Only compile the code.
    pub(crate) compile_only: bool,
}

impl<'a> Job<'a> {
    /// What the engine needs of a run the host prepared (in-process).
    pub(crate) fn of(input: &'a RunInput) -> Self {
        Job {
            name: &input.webtask.name,
            code_id: input.webtask.code_id,
            code: &input.webtask.code,
            ctx_json: &input.ctx_json,
            req_json: &input.req_json,
            time_limit: input.time_limit,
            compile_only: input.compile_only,
        }
    }
}

/// Where a run stands after the engine ran it as far as it could.
#[derive(Debug)]
pub(crate) enum Step {
    /// It ended: the reply, and whether the runtime may be reused.
    Done(Reply, Health),
    /// It waits on the host: the runtime holds the run until
    /// [`JsContainer::resume`].
    Wait(Wait),
}

/// What the JavaScript of a run came to before the engine stopped driving it.
enum Progress {
    Settled(Reply),
    Waiting(Wait),
}

/// Runs between two measurements of the heap. Measuring walks every object
/// (`JS_ComputeMemoryUsage`): done after each run it took a fifth of the
/// worker's CPU on a trivial extension, and every 32nd run still 6% of
/// its JavaScript thread (#26's profile). Compiles, failures, runs that
/// took [`MEASURE_AFTER`] or more and every 128th run measure; in between
/// the resident budget uses the last figure (each runtime's own memory
/// limit holds regardless, and a run that short can allocate little).
const MEASURE_EVERY: u32 = 128;

/// A run this long measures the heap after it, whatever the count.
const MEASURE_AFTER: Duration = Duration::from_millis(1);

impl std::fmt::Debug for JsContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsContainer")
            .field("compiled", &self.compiled.keys())
            .finish_non_exhaustive()
    }
}

impl JsContainer {
    pub(crate) fn new(limits: &Limits, log: Logger) -> Result<Self, String> {
        let rt = Runtime::new().map_err(|e| format!("cannot create a JavaScript runtime: {e}"))?;
        rt.set_memory_limit(limits.memory);
        rt.set_max_stack_size(limits.stack);
        let deadline = Arc::new(AtomicU64::new(0));
        let fired = Arc::new(AtomicBool::new(false));
        let (d, f) = (Arc::clone(&deadline), Arc::clone(&fired));
        rt.set_interrupt_handler(Some(Box::new(move || {
            let dl = d.load(Ordering::Relaxed);
            if dl != 0 && now_ns() > dl {
                f.store(true, Ordering::Relaxed);
                true
            } else {
                false
            }
        })));
        let ctx =
            Context::full(&rt).map_err(|e| format!("cannot create a JavaScript context: {e}"))?;
        let api = ctx.with(|ctx| -> Result<Api, String> {
            let host_log = Function::new(ctx.clone(), move |level: i32, msg: String| {
                log(level, msg);
            })
            .map_err(|e| e.to_string())?;
            let install: Function<'_> =
                PRELUDE.eval(&ctx).catch(&ctx).map_err(|e| e.to_string())?;
            install
                .call::<_, ()>((host_log,))
                .catch(&ctx)
                .map_err(|e| e.to_string())?;
            // The web platform basics (URL, TextEncoder, crypto, …), defined
            // when an extension first touches one of them: web.rs.
            super::web::install_lazily(&ctx)
                .catch(&ctx)
                .map_err(|e| e.to_string())?;
            Api::of(&ctx).catch(&ctx).map_err(|e| e.to_string())
        })?;
        Ok(JsContainer {
            compiled: HashMap::new(),
            api,
            ctx,
            rt,
            deadline,
            fired,
            memory_limit: limits.memory,
            heap: 0,
            unmeasured: 0,
            parked: HashMap::new(),
        })
    }

    /// Bytes QuickJS has allocated for this container.
    pub(crate) fn heap_bytes(&self) -> i64 {
        self.rt.memory_usage().malloc_size
    }

    fn arm(&self, budget: Duration) {
        self.fired.store(false, Ordering::Relaxed);
        self.deadline
            .store(now_ns() + budget.as_nanos() as u64, Ordering::Relaxed);
    }

    fn disarm(&self) {
        self.deadline.store(0, Ordering::Relaxed);
    }

    /// Runs one request; compiles the extension first when its code changed.
    /// The reply carries the CPU time the run used and the heap size after it.
    /// A run that awaits the host (`fetch`, a timer) parks: [`Step::Wait`].
    /// `key` names the run until it ends, should it park: unique among
    /// this runtime's runs in progress.
    pub(crate) fn run(&mut self, key: u64, input: Job<'_>) -> Step {
        start_cpu_accounting();
        let clock = RunClock {
            started: Instant::now(),
            limit: input.time_limit,
            cpu: Duration::ZERO,
            compiles: !self.has(input.name, input.code_id),
        };
        self.arm(clock.limit);
        let segment = Instant::now();
        let result = self.compile_and_run(key, input);
        self.step(key, clock, segment, result)
    }

    /// Goes on with the parked run `key`, with what the host brought back.
    pub(crate) fn resume(&mut self, key: u64, resume: Resume) -> Step {
        let Some(clock) = self.parked.remove(&key) else {
            return Step::Done(
                Reply::error(
                    500,
                    Source::Proxy,
                    "Script could not be run.",
                    "no such run of this container was waiting",
                ),
                Health::Reusable,
            );
        };
        start_cpu_accounting();
        let segment = Instant::now();
        let left = clock.limit.saturating_sub(clock.started.elapsed());
        let result = if resume.expired || left.is_zero() {
            Err(Failure::Timeout)
        } else {
            self.arm(left);
            self.continue_run(key, resume)
        };
        self.step(key, clock, segment, result)
    }

    fn step(
        &mut self,
        key: u64,
        mut clock: RunClock,
        segment: Instant,
        result: Result<Progress, Failure>,
    ) -> Step {
        self.disarm();
        clock.cpu += cpu_charge(segment.elapsed());
        // A run that ends after its limit (a builtin that never polled the
        // interrupt) is a time-limit stop, whatever it produced.
        let result = match result {
            _ if clock.started.elapsed() > clock.limit => Err(Failure::Timeout),
            Ok(Progress::Waiting(wait)) => {
                self.parked.insert(key, clock);
                return Step::Wait(wait);
            }
            Ok(Progress::Settled(reply)) => Ok(reply),
            Err(e) => Err(e),
        };
        self.unmeasured += 1;
        if clock.compiles
            || result.is_err()
            || self.heap == 0
            || self.unmeasured >= MEASURE_EVERY
            || clock.cpu >= MEASURE_AFTER
        {
            self.heap = self.heap_bytes();
            self.unmeasured = 0;
        }
        if result.is_err() {
            self.forget(key);
        }
        let (mut reply, health) = self.reply(result, clock.limit);
        reply.cpu = clock.cpu;
        reply.heap = self.heap;
        Step::Done(reply, health)
    }

    fn reply(&self, result: Result<Reply, Failure>, limit: Duration) -> (Reply, Health) {
        match result {
            Ok(reply) => (reply, Health::Reusable),
            Err(Failure::Timeout) => (
                Reply::error(
                    500,
                    Source::Webtask,
                    "Script exceeded the time limit.",
                    &timeout_message(limit),
                ),
                Health::Discard,
            ),
            Err(Failure::OutOfMemory) => (
                Reply::error(
                    500,
                    Source::Webtask,
                    "Script exceeded the memory limit.",
                    &format!(
                        "the extension ran out of memory (the container's limit is {} MiB)",
                        self.memory_limit >> 20
                    ),
                ),
                Health::Discard,
            ),
            Err(Failure::Other(m)) => (
                Reply::error(500, Source::Webtask, "Script could not be run.", &m),
                Health::Discard,
            ),
        }
    }

    /// Whether `name` is compiled from the code with id `code_id`.
    pub(crate) fn has(&self, name: &str, code_id: u64) -> bool {
        self.compiled
            .get(name)
            .is_some_and(|l| l.code_id == Some(code_id))
    }

    /// Drops what the prelude keeps of run `key` (it failed).
    fn forget(&self, key: u64) {
        self.ctx.with(|ctx| {
            let _ = ctx
                .globals()
                .get::<_, Object<'_>>("__extend_host")
                .and_then(|api| api.get::<_, Function<'_>>("forget"))
                .and_then(|f| f.call::<_, ()>((key as f64,)));
        });
    }

    fn compile_and_run(&mut self, key: u64, input: Job<'_>) -> Result<Progress, Failure> {
        let (name, code_id) = (input.name, input.code_id);
        let current = self.compiled.get(name).copied();
        let loaded = match current {
            Some(l) if l.code_id == Some(code_id) => l,
            _ => {
                // Runtimes hold at most a container's webtasks: the count fits.
                let slot = current.map_or(self.compiled.len() as i32, |l| l.slot);
                let unloaded = Loaded {
                    code_id: None,
                    takes_req: false,
                    slot,
                };
                self.compiled.insert(name.to_owned(), unloaded);
                let takes_req = match self.compile(name, slot, code_id, input.code)? {
                    Ok(takes_req) => takes_req,
                    Err(reply) => return Ok(Progress::Settled(reply)),
                };
                let l = Loaded {
                    code_id: Some(code_id),
                    takes_req,
                    slot,
                };
                self.compiled.insert(name.to_owned(), l);
                l
            }
        };
        if input.compile_only {
            return Ok(Progress::Settled(Reply::json(
                204,
                Source::Webtask,
                String::new(),
            )));
        }
        let fired = Arc::clone(&self.fired);
        let api = &self.api;
        self.ctx.with(|ctx| {
            let run = api.run(&ctx).map_err(|e| Failure::Other(e.to_string()))?;
            // The outcome (an array) when the run settled at once, else its state.
            let req_json = loaded.takes_req.then_some(input.req_json);
            let st: Object<'_> = match run.call((key as f64, loaded.slot, input.ctx_json, req_json))
            {
                Ok(st) => st,
                Err(e) => return Err(classify(&ctx, &fired, e)),
            };
            if fired.load(Ordering::Relaxed) {
                return Err(Failure::Timeout);
            }
            if st.is_array() {
                return read_outcome(&st)
                    .map_err(|e| classify(&ctx, &fired, e))?
                    .map(Progress::Settled);
            }
            drive(&ctx, api, &fired, key, st)
        })
    }

    /// Hands the host's outcomes to the parked run `key` and drives it on.
    fn continue_run(&mut self, key: u64, resume: Resume) -> Result<Progress, Failure> {
        let fired = Arc::clone(&self.fired);
        let api = &self.api;
        self.ctx.with(|ctx| {
            let results =
                completions(&ctx, resume.completions).map_err(|e| classify(&ctx, &fired, e))?;
            let st: Option<Object<'_>> = api
                .resume(&ctx)
                .and_then(|f| f.call((key as f64, results)))
                .map_err(|e| classify(&ctx, &fired, e))?;
            let st = st.ok_or_else(|| {
                Failure::Other("the run to resume is not in the container's runtime".to_owned())
            })?;
            drive(&ctx, api, &fired, key, st)
        })
    }

    /// Compiles and loads an extension into `slot`: whether it takes
    /// `(ctx, req, res)`, or the compiler error to answer with.
    fn compile(
        &mut self,
        name: &str,
        slot: i32,
        code_id: u64,
        code: &str,
    ) -> Result<Result<bool, Reply>, Failure> {
        let fired = Arc::clone(&self.fired);
        self.ctx.with(|ctx| {
            let api: Object<'_> = ctx.globals().get("__extend_host").map_err(|e| Failure::Other(e.to_string()))?;
            // A runtime made again (after an eviction) loads the bytecode
            // this process compiled before instead of parsing the code.
            let compiled = match bytecode::cached(code_id, name, code) {
                Some(code) => Ok(code),
                None => {
                    // The wrapper starts on the code's first line so error positions match the user's file.
                    let wrapped = format!("(function (module, exports, require) {{{code}\n}})");
                    bytecode::compile(&ctx, &wrapped, &format!("{name}.js"), false)
                        .inspect(|compiled| bytecode::keep(code_id, name, code, compiled))
                }
            };
            let loaded = compiled
                .and_then(|compiled| bytecode::eval::<Function<'_>>(&ctx, &compiled))
                .and_then(|factory| api.get::<_, Function<'_>>("load")?.call::<_, bool>((slot, factory)));
            match loaded {
                Ok(takes_req) => Ok(Ok(takes_req)),
                Err(rquickjs::Error::Exception) => {
                    let e = ctx.catch();
                    if fired.load(Ordering::Relaxed) {
                        return Err(Failure::Timeout);
                    }
                    if e.is_null() || e.as_exception().is_some_and(|x| x.message().is_some_and(|m| m.contains("out of memory"))) {
                        return Err(Failure::OutOfMemory);
                    }
                    let describe: Function<'_> = api.get("describe").map_err(|e| Failure::Other(e.to_string()))?;
                    let parts: Vec<String> = describe.call((e,)).map_err(|e| Failure::Other(e.to_string()))?;
                    let [kind, message, stack] = <[String; 3]>::try_from(parts).map_err(|_| Failure::Other("describe returned a bad shape".into()))?;
                    let body = serde_json::json!({
                        "code": 400,
                        "message": format!("Compilation failed: {message}"),
                        "error": message,
                        "stack": if stack.is_empty() { format!("{kind}: {message}") } else { format!("{kind}: {message}\n{stack}") },
                    });
                    Ok(Err(Reply::json(400, Source::Compiler, body.to_string())))
                }
                Err(e) => Err(classify(&ctx, &fired, e)),
            }
        })
    }
}

/// Drives promise jobs until the run settles (QuickJS has no event loop);
/// when none are left, fires due timers, or parks the run on what it awaits.
fn drive<'js>(
    ctx: &Ctx<'js>,
    api: &Api,
    fired: &AtomicBool,
    key: u64,
    st: Object<'js>,
) -> Result<Progress, Failure> {
    let settled = |st: &Object<'js>| st.get::<_, bool>("d").map_err(|e| classify(ctx, fired, e));
    loop {
        while !settled(&st)? {
            if fired.load(Ordering::Relaxed) {
                return Err(Failure::Timeout);
            }
            if !ctx.execute_pending_job() {
                break;
            }
        }
        if fired.load(Ordering::Relaxed) {
            return Err(Failure::Timeout);
        }
        if settled(&st)? {
            break;
        }
        let wait: Value<'js> = api
            .wait(ctx)
            .and_then(|f| f.call((key as f64,)))
            .map_err(|e| classify(ctx, fired, e))?;
        match wait.as_int() {
            // Nothing to wait for: the outcome says the run produced nothing.
            Some(0) => break,
            // A due timer ran: drive its jobs.
            Some(_) => continue,
            None => {
                let wait = read_wait(&wait).map_err(|e| classify(ctx, fired, e))?;
                return Ok(Progress::Waiting(wait));
            }
        }
    }
    let outcome = api
        .outcome(ctx)
        .map_err(|e| Failure::Other(e.to_string()))?;
    let out: Object<'js> = outcome.call((st,)).map_err(|e| classify(ctx, fired, e))?;
    read_outcome(&out)
        .map_err(|e| classify(ctx, fired, e))?
        .map(Progress::Settled)
}

/// Turns an engine error into a failure, telling a time-limit stop and an
/// out-of-memory (which QuickJS may throw as `null`) from everything else.
fn classify(ctx: &Ctx<'_>, fired: &AtomicBool, e: rquickjs::Error) -> Failure {
    if fired.load(Ordering::Relaxed) {
        return Failure::Timeout;
    }
    match e {
        rquickjs::Error::Exception => {
            let v: Value<'_> = ctx.catch();
            if v.is_null()
                || v.as_exception()
                    .is_some_and(|x| x.message().is_some_and(|m| m.contains("out of memory")))
            {
                Failure::OutOfMemory
            } else {
                let msg = v
                    .as_exception()
                    .and_then(|x| x.message())
                    .unwrap_or_else(|| "an exception escaped the host's wrapper".to_owned());
                Failure::Other(msg)
            }
        }
        rquickjs::Error::Allocation => Failure::OutOfMemory,
        other => Failure::Other(other.to_string()),
    }
}

pub(crate) fn timeout_message(limit: Duration) -> String {
    format!(
        "the extension ran longer than its time limit of {} and was stopped",
        human_duration(limit)
    )
}

pub(crate) fn human_duration(d: Duration) -> String {
    if d >= Duration::from_secs(1) && d.as_millis().is_multiple_of(1000) {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
