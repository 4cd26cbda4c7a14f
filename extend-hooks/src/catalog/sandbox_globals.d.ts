
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
}
