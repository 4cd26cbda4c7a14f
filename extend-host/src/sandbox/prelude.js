// Installed once in every container's context. Extensions are kept in a
// registry inside the JavaScript heap, by a slot number the engine gives
// each name (`Loaded` in engine.rs), not as Rust-side persistent handles,
// which are !Send (a container moves between threads; prelude.rs keeps the
// few functions of this file the engine calls, and says why that is sound).
(function (hostLog) {
  'use strict';
  // Extensions' functions by the slot the engine gave each (`Loaded` in engine.rs).
  const fns = Object.create(null);
  // Strings leave QuickJS as UTF-8, which cannot carry a lone surrogate
  // ('😀'.slice(0, 1)): they become U+FFFD on the way out.
  const wf = (s) => (typeof s === 'string' && typeof s.toWellFormed === 'function' ? s.toWellFormed() : s);
  const fmt = (a) => {
    if (typeof a === 'string') return a;
    try {
      const s = JSON.stringify(a);
      return s === undefined ? String(a) : s;
    } catch (_) {
      return String(a);
    }
  };
  const logger = (level) => function (...args) { hostLog(level, wf(args.map(fmt).join(' '))); };
  globalThis.console = { log: logger(30), info: logger(30), debug: logger(20), warn: logger(40), error: logger(50) };
  function require(m) {
    throw new Error("Cannot find module '" + m + "': extensions on this host cannot load modules");
  }
  const str = (v) => { try { return String(v); } catch (_) { return Object.prototype.toString.call(v); } };
  function errBody(e, code, error) {
    const isObj = e !== null && (typeof e === 'object' || typeof e === 'function');
    const b = { code, error, details: str(e) };
    if (isObj) {
      b.name = e.name; b.message = e.message;
      // Node-style stack: the message line first, without the host's own frames.
      if (typeof e.stack === 'string') {
        const frames = e.stack.split('\n').filter((l) => l !== '' && l.indexOf('extend-host.js') < 0);
        b.stack = [str(e.name) + ': ' + str(e.message)].concat(frames).join('\n');
      }
      for (const k of Object.keys(e)) if (!(k in b)) b[k] = e[k];
    } else {
      b.message = str(e);
    }
    try {
      return JSON.stringify(b);
    } catch (x) {
      if (oom(x)) throw x;
      return JSON.stringify({ code, error, details: b.details, message: str(b.message) });
    }
  }
  function describe(e) {
    if (e !== null && typeof e === 'object') return [wf(str(e.name)), wf(str(e.message)), wf(str(e.stack))];
    return ['Error', wf(str(e)), ''];
  }
  function load(slot, factory) {
    const module = { exports: {} };
    const r = factory.call(undefined, module, module.exports, require);
    const f = typeof module.exports === 'function' ? module.exports : r;
    if (typeof f !== 'function') throw new TypeError('Supplied code must return or export a function.');
    if (f.length > 3) {
      throw new TypeError('The JavaScript function must have one of the following signatures: ' +
        '([ctx], callback), (ctx, req, res) or async (ctx).');
    }
    fns[slot] = f;
    // Only a (ctx, req, res) function is given `req`: the engine keeps this.
    return f.length === 3;
  }
  function mkRes(st) {
    const h = Object.create(null);
    const chunks = [];
    const res = {
      statusCode: 200,
      headersSent: false,
      setHeader(k, v) { h[wf(str(k)).toLowerCase()] = wf(Array.isArray(v) ? v.join(', ') : str(v)); return res; },
      getHeader(k) { return h[str(k).toLowerCase()]; },
      removeHeader(k) { delete h[str(k).toLowerCase()]; },
      writeHead(s, a, b) {
        res.statusCode = s;
        const hs = a !== null && typeof a === 'object' ? a : b;
        if (hs) for (const k of Object.keys(hs)) res.setHeader(k, hs[k]);
        res.headersSent = true;
        return res;
      },
      write(c) { if (c !== undefined && c !== null) chunks.push(typeof c === 'string' ? c : fmt(c)); return true; },
      end(c) {
        if (st.d) return;
        res.write(c);
        st.d = true;
        st.raw = [res.statusCode, wf(chunks.join('')), h];
      },
    };
    return res;
  }
  // Host I/O of runs (fetch.js). Each run that uses it has its own record:
  // calls not yet handed to the host, the settle functions of requests in
  // flight by id, timers by id. `io.cur` is the run whose JavaScript is
  // executing; several runs of a container may be parked at once in its
  // runtime, each by the key the engine gave it. A run's record goes with
  // it when it settles: that is how the timers and requests it left behind
  // are dropped. The record is made on first use, so a run that does no
  // I/O pays nothing for it.
  const io = {
    cur: null,
    next: 1,
    rec() {
      const st = io.cur;
      if (st === null) throw new TypeError('no run is in progress: fetch and timers belong to a run');
      return st.io || (st.io = { calls: [], waiting: new Map(), timers: new Map() });
    },
  };
  const parked = new Map(); // key -> the state of a run waiting on the host
  function fail(st, e) {
    if (!st.d) { st.d = true; st.t = true; st.k = 2; st.e = e; }
  }
  // Called by the engine when run `key` has no job left: 0 = nothing to
  // wait for, 1 = a due timer ran (drive jobs again), else [calls, ms until
  // the next timer or -1]: the run parks.
  function wait(key) {
    const st = parked.get(key);
    if (st === undefined || st.d) return 0;
    io.cur = st;
    const r = st.io;
    if (r === null) return 0;
    if (r.timers.size > 0 && fireDue(st, r)) return 1;
    if (r.calls.length === 0 && r.waiting.size === 0 && r.timers.size === 0) return 0;
    let wake = -1;
    for (const t of r.timers.values()) if (wake < 0 || t.at < wake) wake = t.at;
    return [r.calls.splice(0), wake < 0 ? -1 : Math.max(0, wake - Date.now())];
  }
  function fireDue(st, r) {
    const now = Date.now();
    const due = [];
    for (const [id, t] of r.timers) if (t.at <= now) due.push([id, t]);
    if (due.length === 0) return false;
    due.sort((a, b) => a[1].at - b[1].at || a[0] - b[0]);
    for (const [id, t] of due) {
      if (r.timers.get(id) !== t) continue; // cleared by an earlier callback
      if (t.every >= 0) t.at = Date.now() + t.every; else r.timers.delete(id);
      // An exception in a timer has no caller: it fails the run, as an
      // uncaught exception fails a webtask on Node.
      try { t.fn.apply(undefined, t.args); } catch (e) { fail(st, e); return true; }
    }
    return true;
  }
  // What the host brought back for run `key`: [id, 1, response] or
  // [id, 0, message]. Answers its state, or null when no such run waits.
  function resume(key, results) {
    const st = parked.get(key);
    if (st === undefined) return null;
    io.cur = st;
    const r = st.io;
    if (r !== null) {
      for (const x of results) {
        const w = r.waiting.get(x[0]);
        if (w === undefined) continue;
        r.waiting.delete(x[0]);
        if (x[1]) w[0](x[2]); else w[1](x[2]);
      }
    }
    return st;
  }
  // The engine gives up on run `key` (it failed or ran out of time).
  function forget(key) { parked.delete(key); io.cur = null; }
  const isAsync = (f) => f.constructor !== undefined && f.constructor.name === 'AsyncFunction';
  // QuickJS shares the shape (the property layout) of objects whose keys
  // were added in the same order, but only through shapes that are alive:
  // an object adding its n-th key finds the shape for those n keys only if
  // some live object has exactly them, and a shape is freed with the last
  // object that has it. So each run's `ctx` and state, and the holder
  // `JSON.stringify` wraps a value in, were laid out from nothing and freed
  // again (#26: 3,000 of a trivial run's 70,000 instructions in the worker,
  // counted with callgrind). Objects holding every prefix of those keys (no
  // values) keep the shapes alive: the state's and the holder's once, a
  // recent `ctx`'s every `KEEP_EVERY` runs, three levels deep, at most 16
  // keys an object and 32 objects (a few KiB). Not before a runtime's 16th
  // run: a container run once pays neither the time nor the memory. Not
  // the result's: reading its keys and values could run the extension's
  // getters or proxy traps an extra time.
  const MAX_KEYS = 16, MAX_KEPT = 32, KEEP_EVERY = 1024;
  // Taken now: an extension may replace them, and must not be called here.
  const keysOf = Object.keys, define = Object.defineProperty, isArray = Array.isArray;
  // No prototype: a `get` an extension put on Object.prototype is not read.
  const slot = { __proto__: null, value: null, writable: true, enumerable: true, configurable: true };
  function prefixes(keys, into) {
    for (let n = 1; n <= keys.length && n <= MAX_KEYS && into.length < MAX_KEPT; n++) {
      const o = {};
      // Defined, as JSON.parse does (same flags, so the same shapes), not
      // set: no setter an extension put on Object.prototype runs, and
      // `__proto__` is a key like any other.
      for (let i = 0; i < n; i++) define(o, keys[i], slot);
      into[into.length] = o;
    }
    return into;
  }
  function ctxShapes(v, depth, into) {
    if (v === null || typeof v !== 'object' || isArray(v) || depth === 0) return into;
    const keys = keysOf(v);
    prefixes(keys, into);
    for (let i = 0; i < keys.length && i < MAX_KEYS && into.length < MAX_KEPT; i++) ctxShapes(v[keys[i]], depth - 1, into);
    return into;
  }
  let kept = null;
  let untilKept = 16;
  function keepShapes(c) {
    // The keys of `st` in `run`, in its order, and the holder's ('').
    kept = prefixes(['d', 't', 'k', 'e', 'r', 'raw', 'key', 'io', 'p'], prefixes([''], []));
    ctxShapes(c, 3, kept);
    untilKept = KEEP_EVERY;
  }
  // The rejection handler of run `st`'s promise, made only for a promise
  // (most runs settle through their callback): a closure made in every run
  // cost 1,700 of its instructions.
  const rejecter = (st) => (e) => { if (st.d) return; st.d = true; st.t = true; st.k = 1; st.e = e; };
  function run(key, slot, ctxJson, reqJson) {
    const fn = fns[slot];
    // k: 1 = callback error or rejection, 2 = exception thrown by the call itself.
    // p: whether it parked (it is in `parked` until its outcome is read).
    const st = { d: false, t: false, k: 0, e: undefined, r: undefined, raw: undefined, key, io: null, p: false };
    const fin = (e, r) => {
      if (st.d) return;
      st.d = true;
      if (e !== undefined && e !== null) { st.t = true; st.k = 1; st.e = e; } else { st.r = r; }
    };
    io.cur = st;
    try {
      const c = JSON.parse(ctxJson);
      // Taken again now and then, so that the keys requests use now are kept.
      if (--untilKept <= 0) keepShapes(c);
      // `reqJson` comes only for a function `load` found taking three.
      if (reqJson !== undefined) {
        const req = JSON.parse(reqJson);
        req.headers = c.headers;
        req.query = c.query;
        fn(c, req, mkRes(st));
      } else if (fn.length === 2) {
        const r = fn(c, fin);
        if (r && typeof r.then === 'function') r.then(undefined, rejecter(st));
      } else if (fn.length === 1 && !isAsync(fn)) {
        fn(fin);
      } else {
        const r = fn(c);
        if (r && typeof r.then === 'function') r.then((v) => fin(null, v), rejecter(st)); else fin(null, r);
      }
    } catch (e) {
      if (!st.d) { st.d = true; st.t = true; st.k = 2; st.e = e; }
    }
    // Settled already (the common case): the outcome, saving the host a call.
    if (st.d) return outcome(st);
    st.p = true;
    parked.set(key, st);
    return st;
  }
  const oom = (e) => e === null || (e !== undefined && e instanceof InternalError && /out of memory/i.test(e.message));
  // The outcome of a run, read by `read_outcome` in marshal.rs, which documents
  // the shape: [kind, status, body, headers], kind one of these numbers
  // (`OutcomeKind` there; a number, not a name, saves reading a string).
  const RESULT = 0, ERROR = 1, EXCEPTION = 2, RAW = 3, OOM = 4;
  const out = (kind, status, body, headers) => [kind, status, body, headers];
  function outcome(st) {
    if (st.p) parked.delete(st.key);
    io.cur = null;
    if (!st.d) {
      return out(EXCEPTION, 500, JSON.stringify({ code: 500, error: 'Script did not produce a result.',
        message: 'the extension finished without calling its callback, settling its promise or ending the response' }), null);
    }
    if (st.raw) return out(RAW, st.raw[0], st.raw[1], st.raw[2]);
    if (st.t) {
      const e = st.e;
      if (oom(e)) return out(OOM, 500, '', null);
      if (st.k === 2) return out(EXCEPTION, 500, errBody(e, 500, 'Script generated an unhandled synchronous exception.'), null);
      const sc = e !== null && typeof e === 'object' ? e.statusCode : undefined;
      const status = Number.isInteger(sc) && sc >= 400 && sc <= 599 ? sc : 400;
      return out(ERROR, status, errBody(e, status, 'Script returned an error.'), null);
    }
    let body;
    try {
      body = st.r === undefined ? '{}' : JSON.stringify(st.r);
    } catch (e) {
      // Out of memory is the host's limit, not the extension's error.
      if (oom(e)) return out(OOM, 500, '', null);
      return out(ERROR, 400, JSON.stringify({ code: 400, error: 'Error when JSON serializing the result of the JavaScript code.',
        message: str(e && e.message) }), null);
    }
    return out(RESULT, 200, body === undefined ? '{}' : wf(body), null);
  }
  Object.defineProperty(globalThis, '__extend_host', {
    value: Object.freeze({ load, run, outcome, describe, wait, resume, forget, io }),
    enumerable: false, writable: false, configurable: false,
  });
})
