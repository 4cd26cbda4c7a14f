// fetch (WHATWG shape: Headers, Request, Response, AbortController,
// AbortSignal) and timers, installed with web.js on an extension's first
// touch (web.rs). Nothing here does I/O: a request is queued on the run's
// `io` record (prelude.js) and the host makes it, under its egress policy,
// when the run has nothing else to do; the promise settles when the host
// brings back the outcome. A run ends when its callback or promise
// settles: requests and timers still pending then are dropped.
// `define` is web.js's: a global the extension assigned first keeps its value.
(function (io, define) {
  'use strict';
  const str = (v) => String(v);

  // ---- timers ------------------------------------------------------------
  const delayOf = (ms) => { const n = Number(ms); return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0; };
  function addTimer(fn, ms, args, every) {
    if (typeof fn !== 'function') throw new TypeError('the callback of a timer must be a function (strings are not evaluated)');
    const timers = io.rec().timers;
    const id = io.next++;
    const delay = delayOf(ms);
    timers.set(id, { at: Date.now() + delay, fn, args, every: every ? Math.max(1, delay) : -1 });
    return id;
  }
  define('setTimeout', function setTimeout(fn, ms, ...args) { return addTimer(fn, ms, args, false); });
  define('setInterval', function setInterval(fn, ms, ...args) { return addTimer(fn, ms, args, true); });
  const clear = function (id) {
    const st = io.cur;
    if (st !== null && st.io !== null) st.io.timers.delete(Number(id));
  };
  define('clearTimeout', function clearTimeout(id) { clear(id); });
  define('clearInterval', function clearInterval(id) { clear(id); });
  define('queueMicrotask', function queueMicrotask(fn) {
    if (typeof fn !== 'function') throw new TypeError('queueMicrotask needs a function');
    Promise.resolve().then(() => fn());
  });

  // ---- AbortController and AbortSignal -----------------------------------
  const signalState = new WeakMap(); // AbortSignal -> { aborted, reason, listeners }
  class AbortSignal {
    constructor() { throw new TypeError('Illegal constructor: use new AbortController().signal'); }
    get aborted() { return signalState.get(this).aborted; }
    get reason() { return signalState.get(this).reason; }
    throwIfAborted() { const s = signalState.get(this); if (s.aborted) throw s.reason; }
    addEventListener(type, fn) { if (type === 'abort' && typeof fn === 'function') signalState.get(this).listeners.push(fn); }
    removeEventListener(type, fn) {
      const l = signalState.get(this).listeners;
      const i = l.indexOf(fn);
      if (type === 'abort' && i >= 0) l.splice(i, 1);
    }
    static abort(reason) { const s = makeSignal(); abortSignal(s, reason); return s; }
    static timeout(ms) {
      const s = makeSignal();
      addTimer(() => abortSignal(s, new DOMException('The operation timed out.', 'TimeoutError')), ms, [], false);
      return s;
    }
  }
  function makeSignal() {
    const s = Object.create(AbortSignal.prototype);
    signalState.set(s, { aborted: false, reason: undefined, listeners: [] });
    s.onabort = null;
    return s;
  }
  function abortSignal(s, reason) {
    const st = signalState.get(s);
    if (st.aborted) return;
    st.aborted = true;
    st.reason = reason === undefined ? new DOMException('This operation was aborted', 'AbortError') : reason;
    const event = { type: 'abort', target: s };
    if (typeof s.onabort === 'function') s.onabort(event);
    for (const fn of st.listeners.slice()) fn(event);
  }
  class AbortController {
    #signal = makeSignal();
    get signal() { return this.#signal; }
    abort(reason) { abortSignal(this.#signal, reason); }
  }
  define('AbortSignal', AbortSignal);
  define('AbortController', AbortController);

  // ---- Headers -----------------------------------------------------------
  const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  const normValue = (v) => str(v).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, '');
  function checkName(name) {
    const n = str(name);
    if (!TOKEN.test(n)) throw new TypeError(`"${n}" is not a valid HTTP header name`);
    return n.toLowerCase();
  }
  function checkValue(value) {
    const v = normValue(value);
    if (/[\0\r\n]/.test(v)) throw new TypeError('a header value may not contain NUL, CR or LF');
    return v;
  }
  class Headers {
    #list = []; // [lowercased name, value], in insertion order
    constructor(init) {
      if (init === undefined || init === null) return;
      if (init instanceof Headers) { for (const [k, v] of init) this.append(k, v); return; }
      if (typeof init !== 'object') throw new TypeError('Headers needs an object, an array of pairs or Headers');
      if (typeof init[Symbol.iterator] === 'function') {
        for (const pair of init) {
          const p = Array.from(pair);
          if (p.length !== 2) throw new TypeError('each header pair needs a name and a value');
          this.append(p[0], p[1]);
        }
      } else {
        for (const k of Object.keys(init)) this.append(k, init[k]);
      }
    }
    append(name, value) { this.#list.push([checkName(name), checkValue(value)]); }
    set(name, value) {
      const n = checkName(name);
      const v = checkValue(value);
      const i = this.#list.findIndex((p) => p[0] === n);
      if (i < 0) { this.#list.push([n, v]); return; }
      this.#list[i][1] = v;
      this.#list = this.#list.filter((p, j) => j <= i || p[0] !== n);
    }
    delete(name) { const n = checkName(name); this.#list = this.#list.filter((p) => p[0] !== n); }
    get(name) {
      const n = checkName(name);
      const vs = this.#list.filter((p) => p[0] === n).map((p) => p[1]);
      return vs.length === 0 ? null : vs.join(', ');
    }
    getSetCookie() { return this.#list.filter((p) => p[0] === 'set-cookie').map((p) => p[1]); }
    has(name) { const n = checkName(name); return this.#list.some((p) => p[0] === n); }
    *entries() {
      const names = [...new Set(this.#list.map((p) => p[0]))].sort();
      for (const n of names) {
        if (n === 'set-cookie') { for (const v of this.getSetCookie()) yield [n, v]; } else yield [n, this.get(n)];
      }
    }
    *keys() { for (const [k] of this.entries()) yield k; }
    *values() { for (const [, v] of this.entries()) yield v; }
    forEach(fn, thisArg) { for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this); }
    [Symbol.iterator]() { return this.entries(); }
    get [Symbol.toStringTag]() { return 'Headers'; }
  }
  define('Headers', Headers);
  const flat = (headers) => { const out = []; for (const p of headers) out.push(p[0], p[1]); return out; };

  // ---- bodies ------------------------------------------------------------
  // [bytes (ArrayBuffer) or null, the content type it implies or null]
  function extract(body) {
    if (body === undefined || body === null) return [null, null];
    if (typeof body === 'string') return [new TextEncoder().encode(body).buffer, 'text/plain;charset=UTF-8'];
    if (body instanceof URLSearchParams) return [new TextEncoder().encode(body.toString()).buffer, 'application/x-www-form-urlencoded;charset=UTF-8'];
    if (body instanceof ArrayBuffer) return [body.slice(0), null];
    if (ArrayBuffer.isView(body)) return [body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength), null];
    return [new TextEncoder().encode(str(body)).buffer, 'text/plain;charset=UTF-8'];
  }
  const bodies = new WeakMap(); // Request/Response -> { bytes, used }
  class Body {
    get bodyUsed() { return bodies.get(this).used; }
    #take() {
      const b = bodies.get(this);
      if (b.used) return Promise.reject(new TypeError('the body has already been read'));
      b.used = true;
      return Promise.resolve(b.bytes === null ? new ArrayBuffer(0) : b.bytes);
    }
    arrayBuffer() { return this.#take().then((b) => b.slice(0)); }
    bytes() { return this.#take().then((b) => new Uint8Array(b.slice(0))); }
    text() { return this.#take().then((b) => new TextDecoder().decode(b)); }
    json() { return this.text().then((t) => JSON.parse(t)); }
  }

  // ---- Request -----------------------------------------------------------
  const METHODS = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH'];
  const REDIRECTS = ['follow', 'manual', 'error'];
  class Request extends Body {
    #url; #method; #headers; #signal; #redirect;
    constructor(input, init) {
      super();
      const o = init === undefined || init === null ? {} : init;
      let body = null;
      if (input instanceof Request) {
        this.#url = input.url; this.#method = input.method; this.#headers = new Headers(input.headers);
        this.#signal = input.signal; this.#redirect = input.redirect;
        body = bodies.get(input).bytes;
      } else {
        let url;
        try { url = new URL(str(input)); } catch (_) { throw new TypeError(`"${str(input)}" is not an absolute URL`); }
        if (url.username !== '' || url.password !== '') throw new TypeError('a request URL may not include credentials');
        this.#url = url.href; this.#method = 'GET'; this.#headers = new Headers(); this.#signal = null; this.#redirect = 'follow';
      }
      if (o.method !== undefined) {
        const m = str(o.method);
        if (!TOKEN.test(m)) throw new TypeError(`"${m}" is not a valid HTTP method`);
        if (['CONNECT', 'TRACE', 'TRACK'].includes(m.toUpperCase())) throw new TypeError(`the method ${m} is forbidden`);
        this.#method = METHODS.includes(m.toUpperCase()) ? m.toUpperCase() : m;
      }
      if (o.headers !== undefined) this.#headers = new Headers(o.headers);
      if (o.signal !== undefined && o.signal !== null) {
        if (!signalState.has(o.signal)) throw new TypeError('signal must be an AbortSignal');
        this.#signal = o.signal;
      }
      if (o.redirect !== undefined) {
        if (!REDIRECTS.includes(o.redirect)) throw new TypeError(`redirect must be one of ${REDIRECTS.join(', ')}`);
        this.#redirect = o.redirect;
      }
      if (o.body !== undefined && o.body !== null) {
        if (this.#method === 'GET' || this.#method === 'HEAD') throw new TypeError(`a ${this.#method} request cannot have a body`);
        const [bytes, type] = extract(o.body);
        body = bytes;
        if (type !== null && !this.#headers.has('content-type')) this.#headers.set('content-type', type);
      }
      bodies.set(this, { bytes: body, used: false });
    }
    get url() { return this.#url; }
    get method() { return this.#method; }
    get headers() { return this.#headers; }
    get signal() { return this.#signal === null ? (this.#signal = makeSignal()) : this.#signal; }
    get redirect() { return this.#redirect; }
    clone() { return new Request(this); }
  }
  define('Request', Request);

  // ---- Response ----------------------------------------------------------
  // A response the host brought back, [status, statusText, url, redirected,
  // flat headers, bytes], is made through the constructor (private fields
  // exist only on what it builds) without its checks: it may carry any status.
  let hostMade = null;
  class Response extends Body {
    #status; #statusText; #headers; #url; #redirected;
    constructor(body, init) {
      super();
      if (hostMade !== null) {
        const raw = hostMade;
        hostMade = null;
        this.#status = raw[0]; this.#statusText = raw[1]; this.#url = raw[2]; this.#redirected = raw[3];
        const h = new Headers();
        for (let i = 0; i + 1 < raw[4].length; i += 2) h.append(raw[4][i], raw[4][i + 1]);
        this.#headers = h;
        bodies.set(this, { bytes: raw[5], used: false });
        return;
      }
      const o = init === undefined || init === null ? {} : init;
      const status = o.status === undefined ? 200 : Number(o.status);
      if (!Number.isInteger(status) || status < 200 || status > 599) throw new RangeError(`status ${o.status} is not from 200 to 599`);
      this.#status = status;
      this.#statusText = o.statusText === undefined ? '' : str(o.statusText);
      this.#headers = new Headers(o.headers);
      this.#url = '';
      this.#redirected = false;
      const [bytes, type] = extract(body);
      if (type !== null && !this.#headers.has('content-type')) this.#headers.set('content-type', type);
      bodies.set(this, { bytes, used: false });
    }
    get status() { return this.#status; }
    get ok() { return this.#status >= 200 && this.#status <= 299; }
    get statusText() { return this.#statusText; }
    get headers() { return this.#headers; }
    get url() { return this.#url; }
    get redirected() { return this.#redirected; }
    get type() { return 'basic'; }
    clone() {
      if (this.bodyUsed) throw new TypeError('a response whose body was read cannot be cloned');
      return received([this.#status, this.#statusText, this.#url, this.#redirected, flat(this.#headers), bodies.get(this).bytes]);
    }
    static json(data, init) {
      const o = init === undefined || init === null ? {} : init;
      const headers = new Headers(o.headers);
      if (!headers.has('content-type')) headers.set('content-type', 'application/json');
      return new Response(JSON.stringify(data), Object.assign({}, o, { headers }));
    }
    static error() { throw new TypeError('Response.error() is not supported on this host'); }
    static redirect(url, status) {
      const s = status === undefined ? 302 : status;
      if (![301, 302, 303, 307, 308].includes(s)) throw new RangeError(`${s} is not a redirect status`);
      return new Response(null, { status: s, headers: { location: new URL(str(url)).href } });
    }
  }
  function received(raw) {
    hostMade = raw;
    return new Response();
  }
  define('Response', Response);

  // ---- fetch -------------------------------------------------------------
  define('fetch', function fetch(input, init) {
    let req;
    try { req = new Request(input, init); } catch (e) { return Promise.reject(e); }
    const signal = req.signal;
    if (signal.aborted) return Promise.reject(signal.reason);
    let r;
    try { r = io.rec(); } catch (e) { return Promise.reject(e); }
    return new Promise((resolve, reject) => {
      const id = io.next++;
      const body = bodies.get(req).bytes;
      r.calls.push(['fetch', id, req.method, req.url, flat(req.headers), body === null ? null : new Uint8Array(body), REDIRECTS.indexOf(req.redirect)]);
      r.waiting.set(id, [(raw) => resolve(received(raw)), (message) => reject(new TypeError(message))]);
      signal.addEventListener('abort', () => {
        if (r.waiting.delete(id)) {
          r.calls.push(['cancel', id]);
          reject(signal.reason);
        }
      });
    });
  });
})
