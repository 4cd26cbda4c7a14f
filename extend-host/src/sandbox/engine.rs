//! One container's JavaScript runtime: its own QuickJS heap, memory cap, stack
//! cap and wall-clock interrupt, and the extensions compiled in it.

use super::io::{HostCall, Resume, Wait};
use super::{Reply, RunInput};
use crate::config::Limits;
use crate::egress::{Outcome, Request};
use crate::error::Source;
use rquickjs::{
    CatchResultExt, Context, Ctx, Function, Object, Runtime, Value, context::EvalOptions,
};
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

/// The CPU time this thread has used. Runs are charged for it against their
/// container's CPU budget; a thread that cannot read it is charged wall time.
fn thread_cpu() -> Option<Duration> {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .ok()
        .map(Duration::from)
}

thread_local! {
    /// This thread's CPU time at its last reading.
    static CPU_READ: std::cell::Cell<Option<Duration>> = const { std::cell::Cell::new(None) };
}

/// Runs shorter than this (wall time) are charged their wall time.
const SHORT_RUN: Duration = Duration::from_millis(1);

/// What a run that took `wall` is charged against its container's CPU
/// budget. Reading a thread's CPU clock is a system call that costs about
/// 2 µs on a VM, a fifth of a small run, so short runs are charged their
/// wall time, which is never less. A longer run is charged the CPU time
/// its thread used since the thread's previous reading, at most its wall
/// time: that reading was taken after the thread's last long run, so what
/// the thread ran since (short runs, already charged) can only make the
/// charge larger, never larger than the run's wall time.
fn cpu_charge(wall: Duration) -> Duration {
    if wall < SHORT_RUN {
        return wall;
    }
    let now = thread_cpu();
    match (CPU_READ.replace(now), now) {
        (Some(before), Some(now)) => now.saturating_sub(before).min(wall),
        _ => wall,
    }
}

/// Takes this thread's first CPU reading before its first run.
fn start_cpu_accounting() {
    if CPU_READ.get().is_none() {
        CPU_READ.set(thread_cpu());
    }
}

pub(crate) struct JsContainer {
    // Which code (by id) each extension was compiled from.
    compiled: HashMap<String, u64>,
    // `ctx` before `rt`: fields drop in order, and a context must go before its runtime.
    ctx: Context,
    rt: Runtime,
    deadline: Arc<AtomicU64>,
    fired: Arc<AtomicBool>,
    limits: Limits,
    /// The heap at the last measurement, and runs since.
    heap: i64,
    unmeasured: u32,
    /// Runs waiting on the host (see [`super::io`]), by the key their
    /// caller gave them: a container's runs may wait side by side.
    parked: HashMap<u64, RunClock>,
}

/// A run's time: when it started and may end, and the CPU its segments used.
#[derive(Debug, Clone, Copy)]
struct RunClock {
    started: Instant,
    limit: Duration,
    cpu: Duration,
    compiles: bool,
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
/// worker's CPU on a trivial extension. Compiles, failures and every 32nd
/// run measure; in between the resident budget uses the last figure (each
/// runtime's own memory limit holds regardless).
const MEASURE_EVERY: u32 = 32;

impl std::fmt::Debug for JsContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsContainer")
            .field("compiled", &self.compiled.keys())
            .finish_non_exhaustive()
    }
}

enum Failure {
    Timeout,
    OutOfMemory,
    Other(String),
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
        ctx.with(|ctx| -> Result<(), String> {
            let host_log = Function::new(ctx.clone(), move |level: i32, msg: String| {
                log(level, msg);
            })
            .map_err(|e| e.to_string())?;
            let mut opts = EvalOptions::default();
            opts.global = true;
            opts.filename = Some("extend-host.js".to_owned());
            let install: Function<'_> = ctx
                .eval_with_options(include_str!("prelude.js"), opts)
                .catch(&ctx)
                .map_err(|e| e.to_string())?;
            install
                .call::<_, ()>((host_log,))
                .catch(&ctx)
                .map_err(|e| e.to_string())?;
            // The web platform basics (URL, TextEncoder, crypto, …), defined
            // when an extension first touches one of them: web.rs.
            super::web::install_lazily(&ctx)
                .catch(&ctx)
                .map_err(|e| e.to_string())
        })?;
        Ok(JsContainer {
            compiled: HashMap::new(),
            ctx,
            rt,
            deadline,
            fired,
            limits: limits.clone(),
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
    pub(crate) fn run(&mut self, key: u64, input: &RunInput) -> Step {
        start_cpu_accounting();
        let clock = RunClock {
            started: Instant::now(),
            limit: input.time_limit,
            cpu: Duration::ZERO,
            compiles: !self.has(&input.webtask.name, input.webtask.code_id),
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
        if clock.compiles || result.is_err() || self.heap == 0 || self.unmeasured >= MEASURE_EVERY {
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
                        self.limits.memory >> 20
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
        self.compiled.get(name) == Some(&code_id)
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

    fn compile_and_run(&mut self, key: u64, input: &RunInput) -> Result<Progress, Failure> {
        let (name, code_id) = (&input.webtask.name, input.webtask.code_id);
        if !self.has(name, code_id) {
            self.compiled.remove(name.as_str());
            if let Some(reply) = self.compile(name, &input.webtask.code)? {
                return Ok(Progress::Settled(reply));
            }
            self.compiled.insert(name.clone(), code_id);
        }
        if input.compile_only {
            return Ok(Progress::Settled(Reply::json(
                204,
                Source::Webtask,
                String::new(),
            )));
        }
        let fired = Arc::clone(&self.fired);
        self.ctx.with(|ctx| {
            let api: Object<'_> = ctx
                .globals()
                .get("__extend_host")
                .map_err(|e| Failure::Other(e.to_string()))?;
            let run: Function<'_> = api.get("run").map_err(|e| Failure::Other(e.to_string()))?;
            // The outcome (an array) when the run settled at once, else its state.
            let st: Object<'_> = match run.call((
                key as f64,
                name.as_str(),
                input.ctx_json.as_str(),
                input.req_json.as_str(),
            )) {
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
            drive(&ctx, &api, &fired, key, st)
        })
    }

    /// Hands the host's outcomes to the parked run `key` and drives it on.
    fn continue_run(&mut self, key: u64, resume: Resume) -> Result<Progress, Failure> {
        let fired = Arc::clone(&self.fired);
        self.ctx.with(|ctx| {
            let api: Object<'_> = ctx
                .globals()
                .get("__extend_host")
                .map_err(|e| Failure::Other(e.to_string()))?;
            let results =
                completions(&ctx, resume.completions).map_err(|e| classify(&ctx, &fired, e))?;
            let st: Option<Object<'_>> = api
                .get::<_, Function<'_>>("resume")
                .and_then(|f| f.call((key as f64, results)))
                .map_err(|e| classify(&ctx, &fired, e))?;
            let st = st.ok_or_else(|| {
                Failure::Other("the run to resume is not in the container's runtime".to_owned())
            })?;
            drive(&ctx, &api, &fired, key, st)
        })
    }

    /// Compiles and loads an extension. `Ok(Some(reply))` is a compiler error to answer with.
    fn compile(&mut self, name: &str, code: &str) -> Result<Option<Reply>, Failure> {
        let fired = Arc::clone(&self.fired);
        self.ctx.with(|ctx| {
            let api: Object<'_> = ctx.globals().get("__extend_host").map_err(|e| Failure::Other(e.to_string()))?;
            // The wrapper starts on the code's first line so error positions match the user's file.
            let wrapped = format!("(function (module, exports, require) {{{code}\n}})");
            let mut opts = EvalOptions::default();
            opts.global = true;
            opts.strict = false;
            opts.filename = Some(format!("{name}.js"));
            let loaded = ctx
                .eval_with_options::<Function<'_>, _>(wrapped, opts)
                .and_then(|factory| api.get::<_, Function<'_>>("load")?.call::<_, ()>((name, factory)));
            match loaded {
                Ok(()) => Ok(None),
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
                    Ok(Some(Reply::json(400, Source::Compiler, body.to_string())))
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
    api: &Object<'js>,
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
            .get::<_, Function<'js>>("wait")
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
    let outcome: Function<'js> = api
        .get("outcome")
        .map_err(|e| Failure::Other(e.to_string()))?;
    let out: Object<'js> = outcome.call((st,)).map_err(|e| classify(ctx, fired, e))?;
    read_outcome(&out)
        .map_err(|e| classify(ctx, fired, e))?
        .map(Progress::Settled)
}

/// Reads `[calls, ms until the next timer or -1]` from `wait` in prelude.js;
/// each call `['fetch', id, method, url, flat headers, body, redirect]` or
/// `['cancel', id]` (fetch.js).
fn read_wait(v: &Value<'_>) -> rquickjs::Result<Wait> {
    let arr = v
        .as_array()
        .ok_or_else(|| rquickjs::Error::new_from_js("value", "array"))?;
    let calls: rquickjs::Array<'_> = arr.get(0)?;
    let wake: f64 = arr.get(1)?;
    let mut out = Vec::with_capacity(calls.len());
    for call in calls.iter::<rquickjs::Array<'_>>() {
        let call = call?;
        let kind: String = call.get(0)?;
        let id = call.get::<f64>(1)? as u64;
        if kind == "cancel" {
            out.push(HostCall::Cancel(id));
            continue;
        }
        let flat: Vec<String> = call.get(4)?;
        let headers = flat
            .chunks_exact(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect();
        let body: Option<rquickjs::TypedArray<'_, u8>> = call.get(5)?;
        let body = body.as_ref().map(super::web::bytes);
        out.push(HostCall::Fetch(
            id,
            Request {
                method: call.get(2)?,
                url: call.get(3)?,
                headers,
                body,
                redirect: super::io::redirect_of(call.get::<f64>(6)?.max(0.0) as u64),
            },
        ));
    }
    Ok(Wait {
        calls: out,
        wake_after: (wake >= 0.0).then(|| Duration::from_millis(wake as u64)),
    })
}

/// The host's outcomes as `resume` in prelude.js takes them: `[id, 1,
/// [status, statusText, url, redirected, flat headers, bytes]]` or `[id, 0,
/// message]`.
fn completions<'js>(
    ctx: &Ctx<'js>,
    completions: Vec<(u64, Outcome)>,
) -> rquickjs::Result<rquickjs::Array<'js>> {
    let out = rquickjs::Array::new(ctx.clone())?;
    for (i, (id, outcome)) in completions.into_iter().enumerate() {
        let entry = rquickjs::Array::new(ctx.clone())?;
        entry.set(0, id as f64)?;
        match outcome {
            Outcome::Response {
                status,
                status_text,
                url,
                redirected,
                headers,
                body,
            } => {
                entry.set(1, 1)?;
                let raw = rquickjs::Array::new(ctx.clone())?;
                raw.set(0, status)?;
                raw.set(1, status_text)?;
                raw.set(2, url)?;
                raw.set(3, redirected)?;
                let flat: Vec<String> = headers.into_iter().flat_map(|(k, v)| [k, v]).collect();
                raw.set(4, flat)?;
                raw.set(5, rquickjs::ArrayBuffer::new(ctx.clone(), body)?)?;
                entry.set(2, raw)?;
            }
            Outcome::Failed(message) => {
                entry.set(1, 0)?;
                entry.set(2, message)?;
            }
        }
        out.set(i, entry)?;
    }
    Ok(out)
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

/// What a run produced, as `__extend_host.outcome` in `prelude.js` reports it
/// (and `run`, when the run settled at once): an array
/// `[kind, status, body, headers]`, read by index, which costs less than
/// named properties.
///
/// | `kind` | meaning | `status` | `body` | `headers` |
/// |---|---|---|---|---|
/// | `"result"` | the callback's or promise's value | 200 | the value as JSON | `null` |
/// | `"error"` | `cb(err)`, a rejection, or a result JSON cannot serialize | 400 or the error's `statusCode` | the error table's JSON | `null` |
/// | `"exception"` | a synchronous throw, or no result at all | 500 | the error table's JSON | `null` |
/// | `"raw"` | `res.end` of a `(ctx, req, res)` extension | as the code set it | as written | an object of strings |
/// | `"oom"` | the code ran out of memory | - | - | - |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutcomeKind {
    Result,
    Error,
    Exception,
    Raw,
    OutOfMemory,
}

impl OutcomeKind {
    fn parse(kind: &str) -> Option<Self> {
        Some(match kind {
            "result" => OutcomeKind::Result,
            "error" => OutcomeKind::Error,
            "exception" => OutcomeKind::Exception,
            "raw" => OutcomeKind::Raw,
            "oom" => OutcomeKind::OutOfMemory,
            _ => return None,
        })
    }
}

fn read_outcome(out: &Object<'_>) -> rquickjs::Result<Result<Reply, Failure>> {
    let kind: String = out.get(0)?;
    let Some(kind) = OutcomeKind::parse(&kind) else {
        return Ok(Err(Failure::Other(format!(
            "the host's prelude reported an unknown outcome `{kind}`"
        ))));
    };
    if kind == OutcomeKind::OutOfMemory {
        return Ok(Err(Failure::OutOfMemory));
    }
    let status: i32 = out.get(1)?;
    let body: rquickjs::Coerced<String> = out.get(2)?;
    let mut reply = Reply::json(u16::try_from(status).unwrap_or(0), Source::Webtask, body.0);
    if kind == OutcomeKind::Raw {
        reply.json = false;
        if let Some(headers) = out.get::<_, Option<Object<'_>>>(3)? {
            for key in headers.keys::<String>() {
                let key = key?;
                let value: rquickjs::Coerced<String> = headers.get(key.as_str())?;
                reply.headers.push((key, value.0));
            }
        }
        // 1xx are interim responses: a final answer cannot be one.
        if !(200..=599).contains(&status) {
            return Ok(Ok(Reply::error(
                500,
                Source::Webtask,
                "Script produced an invalid response.",
                &format!(
                    "the extension set the status code {status}; a response needs a final status from 200 to 599"
                ),
            )));
        }
    }
    Ok(Ok(reply))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn burn(d: Duration) {
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < d {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    #[test]
    fn a_short_run_is_charged_its_wall_time() {
        std::thread::spawn(|| {
            start_cpu_accounting();
            let before = CPU_READ.get();
            let wall = Duration::from_micros(300);
            assert_eq!(cpu_charge(wall), wall);
            // No clock reading was taken for it.
            assert_eq!(CPU_READ.get(), before);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_long_run_is_charged_cpu_time_at_most_its_wall_time() {
        std::thread::spawn(|| {
            start_cpu_accounting();
            let started = Instant::now();
            burn(Duration::from_millis(20));
            let wall = started.elapsed();
            let charge = cpu_charge(wall);
            assert!(charge <= wall, "{charge:?} > {wall:?}");
            // Some CPU was used: a busy machine takes some of the 20 ms, not all.
            assert!(charge >= Duration::from_millis(2), "{charge:?}");
            // A sleeping run uses no CPU: charged far less than its wall time.
            let started = Instant::now();
            std::thread::sleep(Duration::from_millis(20));
            let wall = started.elapsed();
            let charge = cpu_charge(wall);
            assert!(charge < wall / 2, "{charge:?} for {wall:?} of sleep");
        })
        .join()
        .unwrap();
    }
}
