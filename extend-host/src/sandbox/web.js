// The web platform basics, installed once in every container's context after
// prelude.js: URL, URLSearchParams, TextEncoder, TextDecoder, atob, btoa,
// crypto (getRandomValues, randomUUID, subtle: digest and HMAC) and
// structuredClone, with DOMException for the errors the standards name.
// `native` (web.rs) does the work that costs; it answers null for bad input
// and the functions here throw what the standard says.
(function (native) {
  'use strict';
  // A global the extension assigned before touching any of these keeps its value.
  const define = (name, value) => {
    const d = Object.getOwnPropertyDescriptor(globalThis, name);
    if (d && 'value' in d) return;
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
  };
  const str = (v) => String(v);

  const DOM_CODES = { IndexSizeError: 1, InvalidCharacterError: 5, NotFoundError: 8, NotSupportedError: 9, InvalidStateError: 11, SyntaxError: 12,
    InvalidAccessError: 15, TypeMismatchError: 17, NetworkError: 19, AbortError: 20, QuotaExceededError: 22,
    TimeoutError: 23, DataCloneError: 25 };
  class DOMException extends Error {
    constructor(message = '', name = 'Error') {
      super(str(message));
      Object.defineProperty(this, 'name', { value: str(name), configurable: true, writable: true });
    }
    get code() { return DOM_CODES[this.name] || 0; }
  }
  define('DOMException', DOMException);

  // Bytes of a BufferSource (an ArrayBuffer or a view of one), as a Uint8Array over the same memory.
  function bytesOf(data, what) {
    if (data instanceof Uint8Array) return data;
    if (data instanceof ArrayBuffer) return new Uint8Array(data);
    if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    throw new TypeError(what + ' must be an ArrayBuffer, a TypedArray or a DataView');
  }

  // ---- TextEncoder / TextDecoder (UTF-8 only, as the Encoding standard's encoder is) ----
  const wellFormed = (s) => (typeof s.toWellFormed === 'function' ? s.toWellFormed() : s);
  class TextEncoder {
    get encoding() { return 'utf-8'; }
    encode(input = '') { return native.utf8Encode(wellFormed(str(input))); }
    encodeInto(source, destination) {
      if (!(destination instanceof Uint8Array)) throw new TypeError('encodeInto writes into a Uint8Array');
      const s = wellFormed(str(source));
      let read = 0, written = 0;
      // Whole code points only: stop before one that does not fit.
      for (const ch of s) {
        const b = native.utf8Encode(ch);
        if (written + b.length > destination.length) break;
        destination.set(b, written);
        written += b.length;
        read += ch.length;
      }
      return { read, written };
    }
  }
  const UTF8_LABELS = ['utf-8', 'utf8', 'unicode-1-1-utf-8', 'unicode11utf8', 'unicode20utf8', 'x-unicode20utf8'];
  class TextDecoder {
    #fatal; #ignoreBOM;
    constructor(label = 'utf-8', options = {}) {
      if (!UTF8_LABELS.includes(str(label).trim().toLowerCase())) {
        throw new RangeError('TextDecoder: the encoding "' + str(label) + '" is not supported here (only UTF-8 is)');
      }
      this.#fatal = Boolean(options && options.fatal);
      this.#ignoreBOM = Boolean(options && options.ignoreBOM);
    }
    get encoding() { return 'utf-8'; }
    get fatal() { return this.#fatal; }
    get ignoreBOM() { return this.#ignoreBOM; }
    decode(input, options) {
      if (options && options.stream) throw new TypeError('TextDecoder: streaming decode is not supported here; decode the whole input at once');
      if (input === undefined) return '';
      const s = native.utf8Decode(bytesOf(input, 'TextDecoder.decode input'), this.#fatal, this.#ignoreBOM);
      if (s == null) throw new TypeError('TextDecoder: the input is not valid UTF-8');
      return s;
    }
  }
  define('TextEncoder', TextEncoder);
  define('TextDecoder', TextDecoder);

  // ---- atob / btoa ----
  define('btoa', function btoa(data) {
    if (arguments.length === 0) throw new TypeError("btoa: 1 argument required, but only 0 present.");
    const r = native.btoa(str(data));
    if (r == null) throw new DOMException('btoa: the string contains characters outside of the Latin1 range', 'InvalidCharacterError');
    return r;
  });
  define('atob', function atob(data) {
    if (arguments.length === 0) throw new TypeError("atob: 1 argument required, but only 0 present.");
    const r = native.atob(str(data));
    if (r == null) throw new DOMException('atob: the string to be decoded is not correctly encoded', 'InvalidCharacterError');
    return r;
  });

  // ---- URLSearchParams ----
  const urlOf = new WeakMap(); // URLSearchParams -> the URL it belongs to
  class URLSearchParams {
    #list = [];
    constructor(init = '') {
      if (init instanceof URLSearchParams) {
        this.#list = init.#list.map((p) => [p[0], p[1]]);
      } else if (init !== null && typeof init === 'object') {
        if (typeof init[Symbol.iterator] === 'function') {
          for (const pair of init) {
            const p = Array.from(pair);
            if (p.length !== 2) throw new TypeError('URLSearchParams: each pair must have exactly two items');
            this.#list.push([str(p[0]), str(p[1])]);
          }
        } else {
          for (const k of Object.keys(init)) this.#list.push([k, str(init[k])]);
        }
      } else {
        this.#parse(str(init));
      }
    }
    #parse(s) {
      const flat = native.formParse(s);
      this.#list = [];
      for (let i = 0; i < flat.length; i += 2) this.#list.push([flat[i], flat[i + 1]]);
    }
    #update() {
      const url = urlOf.get(this);
      if (url) url._setSearch(this.toString());
    }
    get size() { return this.#list.length; }
    append(name, value) { this.#list.push([str(name), str(value)]); this.#update(); }
    delete(name, value) {
      const n = str(name);
      this.#list = this.#list.filter((p) => !(p[0] === n && (value === undefined || p[1] === str(value))));
      this.#update();
    }
    get(name) { const n = str(name); const p = this.#list.find((q) => q[0] === n); return p ? p[1] : null; }
    getAll(name) { const n = str(name); return this.#list.filter((p) => p[0] === n).map((p) => p[1]); }
    has(name, value) { const n = str(name); return this.#list.some((p) => p[0] === n && (value === undefined || p[1] === str(value))); }
    set(name, value) {
      const n = str(name), v = str(value);
      const i = this.#list.findIndex((p) => p[0] === n);
      if (i < 0) this.#list.push([n, v]);
      else { this.#list[i][1] = v; this.#list = this.#list.filter((p, j) => j <= i || p[0] !== n); }
      this.#update();
    }
    sort() {
      // Stable, by UTF-16 code units, as the standard says.
      this.#list = this.#list.map((p, i) => [p, i]).sort((a, b) => (a[0][0] < b[0][0] ? -1 : a[0][0] > b[0][0] ? 1 : a[1] - b[1])).map((x) => x[0]);
      this.#update();
    }
    forEach(fn, thisArg) { for (const [k, v] of this.#list) fn.call(thisArg, v, k, this); }
    *keys() { for (const p of this.#list) yield p[0]; }
    *values() { for (const p of this.#list) yield p[1]; }
    *entries() { for (const p of this.#list) yield [p[0], p[1]]; }
    [Symbol.iterator]() { return this.entries(); }
    toString() { return native.formSerialize(this.#list.flat()); }
    _reset(search) { this.#parse(search); }
    get [Symbol.toStringTag]() { return 'URLSearchParams'; }
  }
  define('URLSearchParams', URLSearchParams);

  // ---- URL ----
  // native.urlParse and urlSet answer the parts in this order: href, protocol,
  // username, password, host, hostname, port, pathname, search, hash, origin.
  class URL {
    #p; #params;
    constructor(url, base) {
      if (arguments.length === 0) throw new TypeError("URL: 1 argument required, but only 0 present.");
      const p = native.urlParse(str(url), base === undefined ? undefined : str(base));
      if (p == null) throw new TypeError('Invalid URL: ' + str(url) + (base === undefined ? '' : ' (base ' + str(base) + ')'));
      this.#p = p;
      this.#params = new URLSearchParams(p[8]);
      urlOf.set(this.#params, this);
    }
    static canParse(url, base) {
      return native.urlParse(str(url), base === undefined ? undefined : str(base)) != null;
    }
    static parse(url, base) {
      try { return new URL(url, base); } catch (_) { return null; }
    }
    #set(part, value) {
      const p = native.urlSet(this.#p[0], part, str(value));
      if (p == null) {
        if (part === 'href') throw new TypeError('Invalid URL: ' + str(value));
        return;
      }
      this.#p = p;
      if (part === 'href' || part === 'search') this.#params._reset(p[8]);
    }
    _setSearch(search) {
      const p = native.urlSet(this.#p[0], 'search', search);
      if (p != null) this.#p = p;
    }
    get href() { return this.#p[0]; }
    set href(v) { this.#set('href', v); }
    get protocol() { return this.#p[1]; }
    set protocol(v) { this.#set('protocol', v); }
    get username() { return this.#p[2]; }
    set username(v) { this.#set('username', v); }
    get password() { return this.#p[3]; }
    set password(v) { this.#set('password', v); }
    get host() { return this.#p[4]; }
    set host(v) { this.#set('host', v); }
    get hostname() { return this.#p[5]; }
    set hostname(v) { this.#set('hostname', v); }
    get port() { return this.#p[6]; }
    set port(v) { this.#set('port', v); }
    get pathname() { return this.#p[7]; }
    set pathname(v) { this.#set('pathname', v); }
    get search() { return this.#p[8]; }
    set search(v) { this.#set('search', v); }
    get hash() { return this.#p[9]; }
    set hash(v) { this.#set('hash', v); }
    get origin() { return this.#p[10]; }
    get searchParams() { return this.#params; }
    toString() { return this.#p[0]; }
    toJSON() { return this.#p[0]; }
    get [Symbol.toStringTag]() { return 'URL'; }
  }
  define('URL', URL);

  // ---- crypto ----
  const INTEGER_ARRAYS = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, BigInt64Array, BigUint64Array];
  function getRandomValues(array) {
    if (!INTEGER_ARRAYS.some((T) => array instanceof T)) {
      throw new DOMException('getRandomValues takes an integer TypedArray', 'TypeMismatchError');
    }
    const r = native.random(array.byteLength);
    if (r == null) {
      throw new DOMException("getRandomValues: the array's byte length (" + array.byteLength + ') exceeds 65536', 'QuotaExceededError');
    }
    new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(r);
    return array;
  }
  function randomUUID() {
    const b = native.random(16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => (x < 16 ? '0' : '') + x.toString(16)).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }
  const HASHES = ['SHA-1', 'SHA-256', 'SHA-384', 'SHA-512'];
  function hashName(alg, what) {
    const name = typeof alg === 'string' ? alg : alg && alg.name;
    const n = HASHES.find((h) => h === str(name).toUpperCase());
    if (!n) throw new DOMException(what + ': unsupported hash "' + str(name) + '" (use SHA-1, SHA-256, SHA-384 or SHA-512)', 'NotSupportedError');
    return n;
  }
  const keyData = new WeakMap(); // CryptoKey -> its raw bytes, never exposed unless extractable
  class CryptoKey {
    constructor() { throw new TypeError('Illegal constructor: use crypto.subtle.importKey'); }
  }
  function makeKey(raw, hash, extractable, usages) {
    const k = Object.create(CryptoKey.prototype);
    Object.defineProperties(k, {
      type: { value: 'secret', enumerable: true },
      extractable: { value: Boolean(extractable), enumerable: true },
      algorithm: { value: Object.freeze({ name: 'HMAC', hash: Object.freeze({ name: hash }), length: raw.length * 8 }), enumerable: true },
      usages: { value: Object.freeze(Array.from(usages)), enumerable: true },
    });
    keyData.set(k, raw);
    return Object.freeze(k);
  }
  function hmacKey(key, usage, what) {
    const raw = keyData.get(key);
    if (!raw) throw new TypeError(what + ': the key must be a CryptoKey from crypto.subtle.importKey');
    if (!key.usages.includes(usage)) throw new DOMException(what + ': the key may not be used to ' + usage, 'InvalidAccessError');
    return raw;
  }
  function isHmac(alg) {
    const name = typeof alg === 'string' ? alg : alg && alg.name;
    return str(name).toUpperCase() === 'HMAC';
  }
  // Each method settles its promise at once: the work is done by then.
  const attempt = (fn) => { try { return Promise.resolve(fn()); } catch (e) { return Promise.reject(e); } };
  const subtle = Object.freeze({
    digest(algorithm, data) {
      return attempt(() => native.digest(hashName(algorithm, 'digest'), bytesOf(data, 'digest data')).buffer);
    },
    importKey(format, key, algorithm, extractable, usages) {
      return attempt(() => {
        if (format !== 'raw') throw new DOMException('importKey: only the "raw" format is supported here', 'NotSupportedError');
        if (!isHmac(algorithm)) throw new DOMException('importKey: only HMAC keys are supported here', 'NotSupportedError');
        const hash = hashName(algorithm.hash, 'importKey');
        const list = Array.from(usages || []);
        if (list.some((u) => u !== 'sign' && u !== 'verify')) throw new SyntaxError('importKey: an HMAC key is used to sign or verify');
        const raw = new Uint8Array(bytesOf(key, 'importKey key data'));
        if (raw.length === 0) throw new DOMException('importKey: an HMAC key may not be empty', 'DataError');
        return makeKey(raw, hash, extractable, list);
      });
    },
    exportKey(format, key) {
      return attempt(() => {
        if (format !== 'raw') throw new DOMException('exportKey: only the "raw" format is supported here', 'NotSupportedError');
        const raw = keyData.get(key);
        if (!raw) throw new TypeError('exportKey: not a CryptoKey');
        if (!key.extractable) throw new DOMException('exportKey: the key is not extractable', 'InvalidAccessError');
        return raw.slice().buffer;
      });
    },
    sign(algorithm, key, data) {
      return attempt(() => {
        if (!isHmac(algorithm)) throw new DOMException('sign: only HMAC is supported here', 'NotSupportedError');
        const raw = hmacKey(key, 'sign', 'sign');
        return native.hmacSign(key.algorithm.hash.name, raw, bytesOf(data, 'sign data')).buffer;
      });
    },
    verify(algorithm, key, signature, data) {
      return attempt(() => {
        if (!isHmac(algorithm)) throw new DOMException('verify: only HMAC is supported here', 'NotSupportedError');
        const raw = hmacKey(key, 'verify', 'verify');
        return native.hmacVerify(key.algorithm.hash.name, raw, bytesOf(signature, 'verify signature'), bytesOf(data, 'verify data'));
      });
    },
  });
  define('CryptoKey', CryptoKey);
  define('crypto', Object.freeze({ getRandomValues, randomUUID, subtle }));

  // ---- structuredClone ----
  function structuredClone(value, options) {
    if (options && options.transfer && options.transfer.length) {
      throw new DOMException('structuredClone: transfer is not supported here', 'DataCloneError');
    }
    const seen = new Map();
    const clone = (v) => {
      if (v === null || (typeof v !== 'object' && typeof v !== 'function' && typeof v !== 'symbol')) return v;
      if (typeof v === 'function' || typeof v === 'symbol') {
        throw new DOMException('structuredClone: ' + (typeof v === 'function' ? 'a function' : 'a symbol') + ' could not be cloned', 'DataCloneError');
      }
      if (seen.has(v)) return seen.get(v);
      let out;
      if (Array.isArray(v)) {
        out = new Array(v.length); seen.set(v, out);
        for (const k of Object.keys(v)) out[k] = clone(v[k]);
        return out;
      }
      if (v instanceof Date) { out = new Date(v.getTime()); seen.set(v, out); return out; }
      if (v instanceof RegExp) { out = new RegExp(v.source, v.flags); seen.set(v, out); return out; }
      if (v instanceof ArrayBuffer) { out = v.slice(0); seen.set(v, out); return out; }
      if (ArrayBuffer.isView(v)) {
        const buf = clone(v.buffer);
        out = v instanceof DataView ? new DataView(buf, v.byteOffset, v.byteLength) : new v.constructor(buf, v.byteOffset, v.length);
        seen.set(v, out); return out;
      }
      if (v instanceof Map) { out = new Map(); seen.set(v, out); for (const [k, x] of v) out.set(clone(k), clone(x)); return out; }
      if (v instanceof Set) { out = new Set(); seen.set(v, out); for (const x of v) out.add(clone(x)); return out; }
      if (v instanceof Error) {
        out = new (globalThis[v.name] && globalThis[v.name].prototype instanceof Error ? globalThis[v.name] : Error)(v.message);
        seen.set(v, out); if (typeof v.stack === 'string') out.stack = v.stack; return out;
      }
      if (v instanceof Boolean || v instanceof Number || v instanceof String) { out = Object(v.valueOf()); seen.set(v, out); return out; }
      if (v instanceof Promise || v instanceof WeakMap || v instanceof WeakSet || v instanceof CryptoKey) {
        throw new DOMException('structuredClone: ' + Object.prototype.toString.call(v) + ' could not be cloned', 'DataCloneError');
      }
      out = {}; seen.set(v, out);
      for (const k of Object.keys(v)) out[k] = clone(v[k]);
      return out;
    };
    return clone(value);
  }
  define('structuredClone', structuredClone);
  return define;
})
