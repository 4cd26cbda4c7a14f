//! QuickJS bytecode: a script is parsed once per process, and every new
//! runtime loads its bytecode instead of parsing the source again. The
//! host's own scripts (the prelude, `web.js`, `fetch.js`) are compiled in
//! the first runtime that needs them; an extension's code is kept by its
//! code id and name in a cache bounded in bytes, so that the runtime of a
//! container made again after an eviction does not parse its code again.
//!
//! QuickJS does not verify bytecode: bytes from anywhere else could break
//! out of the sandbox. A [`Bytecode`] can only be made by [`compile`], in
//! this process, from source, and it is never written to disk or sent to
//! another process (each worker process compiles for itself).

// The raw QuickJS calls rquickjs does not wrap for scripts (it has them
// for modules only, which would make extensions' code strict).
#![allow(unsafe_code)]

use rquickjs::{Ctx, FromJs, Value, qjs};
use std::ffi::{CString, c_int};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

/// A script compiled by [`compile`] in this process.
#[derive(Clone)]
pub(super) struct Bytecode(Arc<[u8]>);

/// Compiles `source` as a global script named `filename` (strict mode when
/// `strict`), without running it. A syntax error is
/// [`rquickjs::Error::Exception`], with the exception pending in `ctx` as
/// after an `eval`.
pub(super) fn compile(
    ctx: &Ctx<'_>,
    source: &str,
    filename: &str,
    strict: bool,
) -> rquickjs::Result<Bytecode> {
    // As `Ctx::eval`: a NUL in the source or the name is an error, and
    // QuickJS reads up to the terminating NUL the CString adds.
    let src = CString::new(source)?;
    let name = CString::new(filename)?;
    let mut flags = qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_COMPILE_ONLY;
    if strict {
        flags |= qjs::JS_EVAL_FLAG_STRICT;
    }
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: `raw` is the live context `ctx` borrows; the source and name
    // are NUL-terminated and outlive the calls; the compiled function is
    // freed once written, and the written bytes are copied before QuickJS
    // frees them. The stack top is updated first, as `Ctx::eval` does,
    // because the runtime may have moved to this thread.
    unsafe {
        qjs::JS_UpdateStackTop(qjs::JS_GetRuntime(raw));
        let function = qjs::JS_Eval(
            raw,
            src.as_ptr(),
            source.len() as _,
            name.as_ptr(),
            flags as c_int,
        );
        if qjs::JS_IsException(function) {
            return Err(rquickjs::Error::Exception);
        }
        let mut size = 0;
        let bytes = qjs::JS_WriteObject(
            raw,
            &mut size,
            function,
            qjs::JS_WRITE_OBJ_BYTECODE as c_int,
        );
        qjs::JS_FreeValue(raw, function);
        if bytes.is_null() {
            // Out of memory: the exception is pending.
            return Err(rquickjs::Error::Exception);
        }
        let code = Bytecode(Arc::from(std::slice::from_raw_parts(bytes, size as usize)));
        qjs::js_free(raw, bytes.cast());
        Ok(code)
    }
}

/// Runs `code` as a global script in `ctx`: its value is the script's
/// completion value. A throw is [`rquickjs::Error::Exception`], pending in
/// `ctx`, as after an `eval`.
pub(super) fn eval<'js, V: FromJs<'js>>(ctx: &Ctx<'js>, code: &Bytecode) -> rquickjs::Result<V> {
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: `raw` is the live context `ctx` borrows; the bytes were
    // written by `JS_WriteObject` in this process (a `Bytecode` cannot be
    // made otherwise) and QuickJS copies what it reads. `JS_EvalFunction`
    // takes the function it is given; its result is owned by the `Value`.
    let value = unsafe {
        qjs::JS_UpdateStackTop(qjs::JS_GetRuntime(raw));
        let function = qjs::JS_ReadObject(
            raw,
            code.0.as_ptr(),
            code.0.len() as _,
            qjs::JS_READ_OBJ_BYTECODE as c_int,
        );
        if qjs::JS_IsException(function) {
            return Err(rquickjs::Error::Exception);
        }
        let value = qjs::JS_EvalFunction(raw, function);
        if qjs::JS_IsException(value) {
            return Err(rquickjs::Error::Exception);
        }
        Value::from_raw(ctx.clone(), value)
    };
    V::from_js(ctx, value)
}

/// One of the host's scripts, compiled by the first runtime that runs it.
pub(super) struct HostScript {
    source: &'static str,
    compiled: OnceLock<Bytecode>,
}

impl HostScript {
    /// The script with this source (strict, named `extend-host.js`).
    pub(super) const fn new(source: &'static str) -> Self {
        HostScript {
            source,
            compiled: OnceLock::new(),
        }
    }

    /// Runs the script in `ctx`, compiling it first if no runtime of this
    /// process has yet.
    pub(super) fn eval<'js, V: FromJs<'js>>(&self, ctx: &Ctx<'js>) -> rquickjs::Result<V> {
        let code = match self.compiled.get() {
            Some(code) => code,
            None => {
                let code = compile(ctx, self.source, "extend-host.js", true)?;
                self.compiled.get_or_init(|| code)
            }
        };
        eval(ctx, code)
    }
}

/// The bytes of extensions' bytecode (and the source beside it) a process
/// keeps: a few thousand small extensions. Each worker process has its own,
/// outside the runtimes' resident budget, so it is kept small: eight workers
/// hold 16 MiB, 3% of the default budget (the 100,000-container bench put
/// 8 MiB a worker at 12%). Runtimes hold their own copy of what they
/// loaded; this is what a runtime made again starts from.
const CODE_CACHE_BYTES: usize = 2 << 20;

/// What an entry costs beyond its bytes: the key's allocation, the map's
/// node and the two `Arc` headers, so that many tiny extensions cannot
/// hold much more than [`CODE_CACHE_BYTES`].
const ENTRY_OVERHEAD: usize = 128;

fn entry_size(name: &str, source: &str, code: &Bytecode) -> usize {
    name.len() + source.len() + code.0.len() + ENTRY_OVERHEAD
}

/// Extensions' bytecode by code id and webtask name (the name is in the
/// bytecode: error stacks say `name.js`), least recently used out first,
/// each beside the source it was compiled from.
struct CodeCache {
    map: hashlink::LruCache<(u64, String), (Arc<str>, Bytecode)>,
    bytes: usize,
}

static CODE: LazyLock<Mutex<CodeCache>> = LazyLock::new(|| {
    Mutex::new(CodeCache {
        map: hashlink::LruCache::new_unbounded(),
        bytes: 0,
    })
});

fn code_cache() -> std::sync::MutexGuard<'static, CodeCache> {
    // The cache is consistent after any panic (each update is one call).
    CODE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The bytecode of webtask `name`'s `source`, if this process compiled it.
///
/// The cache is shared by all containers of the process; the source is
/// compared, not only its id, so that two codes whose 64-bit ids collide
/// (an id is a truncated hash) never run each other's bytecode.
pub(super) fn cached(code_id: u64, name: &str, source: &str) -> Option<Bytecode> {
    let mut cache = code_cache();
    let (kept, code) = cache.map.get(&(code_id, name.to_owned()))?;
    (**kept == *source).then(|| code.clone())
}

/// Keeps `code`, compiled from `source`, as webtask `name`'s code `code_id`,
/// pushing out the least recently used when over [`CODE_CACHE_BYTES`].
pub(super) fn keep(code_id: u64, name: &str, source: &str, code: &Bytecode) {
    let added = entry_size(name, source, code);
    if added > CODE_CACHE_BYTES / 4 {
        return;
    }
    let mut cache = code_cache();
    let entry = (Arc::from(source), code.clone());
    if let Some((old_source, old)) = cache.map.insert((code_id, name.to_owned()), entry) {
        cache.bytes -= entry_size(name, &old_source, &old);
    }
    cache.bytes += added;
    while cache.bytes > CODE_CACHE_BYTES {
        match cache.map.remove_lru() {
            Some(((_, old_name), (old_source, old))) => {
                cache.bytes -= entry_size(&old_name, &old_source, &old)
            }
            None => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rquickjs::{Context, Function, Runtime};

    fn context() -> Context {
        Context::full(&Runtime::new().unwrap()).unwrap()
    }

    #[test]
    fn bytecode_compiled_in_one_runtime_runs_in_another() {
        let code = context()
            .with(|ctx| compile(&ctx, "(function (a) { return a * 6; })", "t.js", false))
            .unwrap();
        let answer: i32 = context().with(|ctx| {
            let f: Function<'_> = eval(&ctx, &code).unwrap();
            f.call((7,)).unwrap()
        });
        assert_eq!(answer, 42);
    }

    #[test]
    fn errors_name_the_file_and_line_and_sloppy_mode_stays_sloppy() {
        let code = context()
            .with(|ctx| {
                compile(
                    &ctx,
                    "(function () {\n undeclared = 1;\n throw new Error('boom');\n})",
                    "hello.js",
                    false,
                )
            })
            .unwrap();
        context().with(|ctx| {
            let f: Function<'_> = eval(&ctx, &code).unwrap();
            assert!(matches!(
                f.call::<_, ()>(()),
                Err(rquickjs::Error::Exception)
            ));
            let e = ctx.catch();
            let e = e.as_exception().expect("an Error");
            assert_eq!(e.message().as_deref(), Some("boom"));
            let stack = e.stack().unwrap_or_default();
            assert!(stack.contains("hello.js:3"), "{stack}");
        });
    }

    #[test]
    fn a_syntax_error_is_pending_as_after_an_eval() {
        context().with(|ctx| {
            let r = compile(&ctx, "(function ( {", "bad.js", false);
            assert!(matches!(r, Err(rquickjs::Error::Exception)));
            let e = ctx.catch();
            let e = e.as_exception().expect("a SyntaxError");
            assert!(e.stack().unwrap_or_default().contains("bad.js"), "{e:?}");
            // A NUL is refused as `eval` refuses it, not cut short.
            assert!(compile(&ctx, "1\0+1", "nul.js", false).is_err());
        });
    }

    #[test]
    fn the_cache_keeps_code_by_id_and_name_within_its_bytes() {
        let code = context()
            .with(|ctx| compile(&ctx, "(function () { return 1; })", "a.js", false))
            .unwrap();
        let source = "return 1;";
        keep(u64::MAX, "a", source, &code);
        assert!(cached(u64::MAX, "a", source).is_some());
        assert!(
            cached(u64::MAX, "b", source).is_none(),
            "the name is part of the key"
        );
        assert!(
            cached(u64::MAX, "a", "return 2;").is_none(),
            "an id that collides with another source's is not a hit"
        );
        // Filling the cache pushes the oldest out and keeps it within bounds.
        for i in 0..(CODE_CACHE_BYTES / entry_size("filler", source, &code) + 10) as u64 {
            keep(i, "filler", source, &code);
        }
        assert!(cached(u64::MAX, "a", source).is_none());
        assert!(code_cache().bytes <= CODE_CACHE_BYTES);
    }
}
