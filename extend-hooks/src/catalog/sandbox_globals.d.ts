
/**
 * The globals an extension has on extend-host besides the language (ES2020
 * and later): exactly these, so that the editor completes them and flags
 * what is missing (check with `lib: ["es2020"]`, without the DOM).
 */
declare global {
  /** Writes a line to the extension's log stream (`wt logs`, the editor's Logs). */
  interface Console {
    log(...data: unknown[]): void;
    info(...data: unknown[]): void;
    debug(...data: unknown[]): void;
    warn(...data: unknown[]): void;
    error(...data: unknown[]): void;
  }
  var console: Console;

  /** An ArrayBuffer, or a view of one (a TypedArray or a DataView). */
  type BufferSource = ArrayBuffer | ArrayBufferView;

  /** The errors the web standards name, e.g. `QuotaExceededError`, `DataCloneError`. */
  class DOMException extends Error {
    constructor(message?: string, name?: string);
    readonly code: number;
  }

  /** Encodes text as UTF-8 (a lone surrogate becomes U+FFFD). */
  class TextEncoder {
    readonly encoding: "utf-8";
    encode(input?: string): Uint8Array;
    encodeInto(source: string, destination: Uint8Array): { read: number; written: number };
  }

  /** Decodes UTF-8 (the only encoding here); streaming is not supported. */
  class TextDecoder {
    constructor(label?: "utf-8" | "utf8", options?: { fatal?: boolean; ignoreBOM?: boolean });
    readonly encoding: "utf-8";
    readonly fatal: boolean;
    readonly ignoreBOM: boolean;
    decode(input?: BufferSource): string;
  }

  /** Base64 of a binary string (each character at most U+00FF). */
  function btoa(data: string): string;
  /** The binary string a base64 text stands for. */
  function atob(data: string): string;

  /** A query string as a list of name-value pairs (`application/x-www-form-urlencoded`). */
  class URLSearchParams {
    constructor(init?: string | URLSearchParams | Record<string, string | number | boolean> | Iterable<[string, string]>);
    readonly size: number;
    append(name: string, value: string): void;
    delete(name: string, value?: string): void;
    get(name: string): string | null;
    getAll(name: string): string[];
    has(name: string, value?: string): boolean;
    set(name: string, value: string): void;
    sort(): void;
    forEach(callback: (value: string, name: string, params: URLSearchParams) => void, thisArg?: unknown): void;
    keys(): IterableIterator<string>;
    values(): IterableIterator<string>;
    entries(): IterableIterator<[string, string]>;
    [Symbol.iterator](): IterableIterator<[string, string]>;
    toString(): string;
  }

  /** A URL, parsed and serialized by the WHATWG rules. */
  class URL {
    constructor(url: string | URL, base?: string | URL);
    static canParse(url: string | URL, base?: string | URL): boolean;
    static parse(url: string | URL, base?: string | URL): URL | null;
    href: string;
    protocol: string;
    username: string;
    password: string;
    host: string;
    hostname: string;
    port: string;
    pathname: string;
    search: string;
    hash: string;
    readonly origin: string;
    readonly searchParams: URLSearchParams;
    toString(): string;
    toJSON(): string;
  }

  /** The hashes `crypto.subtle` computes. */
  type HashAlgorithm = "SHA-1" | "SHA-256" | "SHA-384" | "SHA-512";

  /** An HMAC key from `crypto.subtle.importKey`. */
  interface CryptoKey {
    readonly type: "secret";
    readonly extractable: boolean;
    readonly algorithm: { readonly name: "HMAC"; readonly hash: { readonly name: HashAlgorithm }; readonly length: number };
    readonly usages: ReadonlyArray<"sign" | "verify">;
  }

  /** Digests and HMAC (e.g. to sign and check webhooks). */
  interface SubtleCrypto {
    digest(algorithm: HashAlgorithm | { name: HashAlgorithm }, data: BufferSource): Promise<ArrayBuffer>;
    importKey(
      format: "raw",
      keyData: BufferSource,
      algorithm: { name: "HMAC"; hash: HashAlgorithm | { name: HashAlgorithm } },
      extractable: boolean,
      keyUsages: ReadonlyArray<"sign" | "verify">,
    ): Promise<CryptoKey>;
    exportKey(format: "raw", key: CryptoKey): Promise<ArrayBuffer>;
    sign(algorithm: "HMAC" | { name: "HMAC" }, key: CryptoKey, data: BufferSource): Promise<ArrayBuffer>;
    verify(algorithm: "HMAC" | { name: "HMAC" }, key: CryptoKey, signature: BufferSource, data: BufferSource): Promise<boolean>;
  }

  interface Crypto {
    /** Fills an integer TypedArray (at most 65,536 bytes) with random values. */
    getRandomValues<T extends Int8Array | Uint8Array | Uint8ClampedArray | Int16Array | Uint16Array | Int32Array | Uint32Array>(array: T): T;
    /** A random (version 4) UUID. */
    randomUUID(): string;
    readonly subtle: SubtleCrypto;
  }
  var crypto: Crypto;

  /** A deep copy (plain data, Date, RegExp, Map, Set, ArrayBuffers and views, errors; cycles kept). */
  function structuredClone<T>(value: T): T;

  /**
   * Timers. A run ends when its callback or promise settles; timers still
   * pending then are dropped. The wait counts against the run's time limit,
   * not its CPU budget.
   */
  function setTimeout(callback: (...args: any[]) => void, ms?: number, ...args: any[]): number;
  function setInterval(callback: (...args: any[]) => void, ms?: number, ...args: any[]): number;
  function clearTimeout(id: number | undefined): void;
  function clearInterval(id: number | undefined): void;
  function queueMicrotask(callback: () => void): void;

  /** Aborts a request: pass `signal` to `fetch`. */
  class AbortController {
    readonly signal: AbortSignal;
    abort(reason?: unknown): void;
  }
  class AbortSignal {
    private constructor();
    readonly aborted: boolean;
    readonly reason: unknown;
    onabort: ((event: { type: "abort"; target: AbortSignal }) => void) | null;
    throwIfAborted(): void;
    addEventListener(type: "abort", listener: (event: { type: "abort"; target: AbortSignal }) => void): void;
    removeEventListener(type: "abort", listener: (event: { type: "abort"; target: AbortSignal }) => void): void;
    static abort(reason?: unknown): AbortSignal;
    /** A signal that aborts with a `TimeoutError` after `ms`. */
    static timeout(ms: number): AbortSignal;
  }

  type HeadersInit = Headers | Record<string, string> | ReadonlyArray<readonly [string, string]>;
  class Headers implements Iterable<[string, string]> {
    constructor(init?: HeadersInit);
    append(name: string, value: string): void;
    delete(name: string): void;
    get(name: string): string | null;
    getSetCookie(): string[];
    has(name: string): boolean;
    set(name: string, value: string): void;
    forEach(callback: (value: string, name: string, headers: Headers) => void, thisArg?: unknown): void;
    entries(): IterableIterator<[string, string]>;
    keys(): IterableIterator<string>;
    values(): IterableIterator<string>;
    [Symbol.iterator](): IterableIterator<[string, string]>;
  }

  type BodyInit = string | ArrayBuffer | ArrayBufferView | URLSearchParams;
  interface Body {
    readonly bodyUsed: boolean;
    arrayBuffer(): Promise<ArrayBuffer>;
    bytes(): Promise<Uint8Array>;
    text(): Promise<string>;
    json(): Promise<any>;
  }

  interface RequestInit {
    method?: string;
    headers?: HeadersInit;
    body?: BodyInit | null;
    signal?: AbortSignal | null;
    redirect?: "follow" | "manual" | "error";
  }
  class Request implements Body {
    constructor(input: string | URL | Request, init?: RequestInit);
    readonly url: string;
    readonly method: string;
    readonly headers: Headers;
    readonly signal: AbortSignal;
    readonly redirect: "follow" | "manual" | "error";
    readonly bodyUsed: boolean;
    arrayBuffer(): Promise<ArrayBuffer>;
    bytes(): Promise<Uint8Array>;
    text(): Promise<string>;
    json(): Promise<any>;
    clone(): Request;
  }

  interface ResponseInit {
    status?: number;
    statusText?: string;
    headers?: HeadersInit;
  }
  class Response implements Body {
    constructor(body?: BodyInit | null, init?: ResponseInit);
    readonly status: number;
    readonly ok: boolean;
    readonly statusText: string;
    readonly headers: Headers;
    readonly url: string;
    readonly redirected: boolean;
    readonly type: "basic";
    readonly bodyUsed: boolean;
    arrayBuffer(): Promise<ArrayBuffer>;
    bytes(): Promise<Uint8Array>;
    text(): Promise<string>;
    json(): Promise<any>;
    clone(): Response;
    static json(data: unknown, init?: ResponseInit): Response;
    static redirect(url: string | URL, status?: 301 | 302 | 303 | 307 | 308): Response;
  }

  /**
   * An HTTP request made by the host under its egress policy: http and https
   * on ports 80 and 443 of public addresses, unless the operator allows
   * more. A refusal, a network error or a limit (50 requests per run, 6 at
   * once, 5 MiB per response by default) rejects with a `TypeError` saying
   * which rule.
   */
  function fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
}
