//! The web platform basics extensions get besides the language: `URL`,
//! `URLSearchParams`, `TextEncoder`, `TextDecoder`, `atob`, `btoa`,
//! `crypto` (`getRandomValues`, `randomUUID`, `subtle.digest`, HMAC
//! `importKey`/`sign`/`verify`) and `structuredClone`.
//!
//! `web.js` defines them in JavaScript with the WHATWG shapes; the work that
//! costs (hashing, HMAC, UTF-8, URL parsing, form encoding, base64) is done
//! here, natively, through one frozen object of functions. Every function
//! answers `null` for bad input and `web.js` throws the error the standard
//! names (`TypeError`, `DOMException`), so no Rust error text reaches an
//! extension.

use super::bytecode::HostScript;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rquickjs::{Ctx, Function, Object, TypedArray};
use sha2::Digest as _;

/// The hashes `crypto.subtle` knows, by their WebCrypto names.
#[derive(Clone, Copy)]
enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn named(name: &str) -> Option<Hash> {
        match name.to_ascii_uppercase().as_str() {
            "SHA-1" => Some(Hash::Sha1),
            "SHA-256" => Some(Hash::Sha256),
            "SHA-384" => Some(Hash::Sha384),
            "SHA-512" => Some(Hash::Sha512),
            _ => None,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
            // HMAC takes a key of any length: `new_from_slice` cannot fail.
            let mut m = <M as Mac>::new_from_slice(key).expect("HMAC takes any key length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        match self {
            Hash::Sha1 => mac::<Hmac<sha1::Sha1>>(key, data),
            Hash::Sha256 => mac::<Hmac<sha2::Sha256>>(key, data),
            Hash::Sha384 => mac::<Hmac<sha2::Sha384>>(key, data),
            Hash::Sha512 => mac::<Hmac<sha2::Sha512>>(key, data),
        }
    }
}

/// The bytes a `Uint8Array` views, copied out.
#[allow(unsafe_code)]
pub(crate) fn bytes(view: &TypedArray<'_, u8>) -> Vec<u8> {
    // SAFETY: rquickjs's contract for `as_bytes` is that no JavaScript runs
    // while the slice lives; it is copied at once, before this function
    // returns to the engine. A detached buffer is read as empty.
    unsafe { view.as_bytes() }
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// A new `Uint8Array` holding `data`.
fn array<'js>(ctx: &Ctx<'js>, data: Vec<u8>) -> rquickjs::Result<TypedArray<'js, u8>> {
    TypedArray::new(ctx.clone(), data)
}

/// The most `crypto.getRandomValues` fills at once, as the standard says.
const RANDOM_MAX: usize = 65_536;

/// `URL`'s parts, in the order `web.js` reads them.
fn url_parts(u: &url::Url) -> Vec<String> {
    use url::quirks as q;
    [
        q::href(u),
        q::protocol(u),
        q::username(u),
        q::password(u),
        q::host(u),
        q::hostname(u),
        q::port(u),
        q::pathname(u),
        q::search(u),
        q::hash(u),
        &q::origin(u),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Latin-1 text (each char one byte), as `btoa` takes and `atob` gives.
fn latin1(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// The forgiving base64 of the HTML standard: ASCII whitespace ignored,
/// padding optional, the bits past the last byte ignored.
fn forgiving_base64(s: &str) -> Option<Vec<u8>> {
    let mut data: String = s
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' '))
        .collect();
    if data.len().is_multiple_of(4) {
        let unpadded = data.trim_end_matches('=').len();
        if data.len() - unpadded > 2 {
            return None;
        }
        data.truncate(unpadded);
    }
    if data.len() % 4 == 1 {
        return None;
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
    );
    engine.decode(data).ok()
}

/// The globals `web.js` and then `fetch.js` define, in that order.
const GLOBALS: [&str; 21] = [
    "DOMException",
    "TextEncoder",
    "TextDecoder",
    "btoa",
    "atob",
    "URLSearchParams",
    "URL",
    "CryptoKey",
    "crypto",
    "structuredClone",
    "setTimeout",
    "setInterval",
    "clearTimeout",
    "clearInterval",
    "queueMicrotask",
    "AbortSignal",
    "AbortController",
    "Headers",
    "Request",
    "Response",
    "fetch",
];

/// Makes the web platform basics appear on `globalThis`, defined the first
/// time an extension touches one of them: most extensions never do, and
/// evaluating `web.js` in every new container's runtime tripled the first
/// run after a create (measured: p50 0.75 ms before the basics, 2.2 ms with
/// them installed eagerly). Each name is an accessor until then; assigning
/// one replaces it without installing anything.
pub(crate) fn install_lazily<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<()> {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let install = Function::new(ctx.clone(), move |ctx: Ctx<'js>| -> rquickjs::Result<()> {
        if done.swap(true, std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        let install: Function<'js> = WEB.eval(&ctx)?;
        // web.js answers the `define` it used, which fetch.js uses too.
        let define: Function<'js> = install.call((natives(&ctx)?,))?;
        // fetch.js queues its requests and timers on the run's `io` record.
        let io: Object<'js> = ctx
            .globals()
            .get::<_, Object<'js>>("__extend_host")?
            .get("io")?;
        let install: Function<'js> = FETCH.eval(&ctx)?;
        install.call((io, define))
    })?;
    let lazy: Function<'js> = LAZY.eval(ctx)?;
    lazy.call((install, GLOBALS.to_vec()))
}

/// The host's own scripts, compiled once per process (`bytecode.rs`), under
/// a file name that `prelude.js` leaves out of extensions' stack traces.
static WEB: HostScript = HostScript::new(include_str!("web.js"));
static FETCH: HostScript = HostScript::new(include_str!("fetch.js"));
static LAZY: HostScript = HostScript::new(
    r#"(function (install, names) {
  'use strict';
  for (const name of names) {
    Object.defineProperty(globalThis, name, {
      configurable: true,
      enumerable: false,
      get() {
        install();
        const d = Object.getOwnPropertyDescriptor(globalThis, name);
        return d && 'value' in d ? d.value : undefined;
      },
      set(value) {
        Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
      },
    });
  }
})"#,
);

/// The object of native functions `web.js` is installed with.
pub(crate) fn natives<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Object<'js>> {
    let n = Object::new(ctx.clone())?;
    n.set(
        "digest",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, alg: String, data: TypedArray<'js, u8>| {
                Hash::named(&alg)
                    .map(|h| array(&ctx, h.digest(&bytes(&data))))
                    .transpose()
            },
        )?,
    )?;
    n.set(
        "hmacSign",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, alg: String, key: TypedArray<'js, u8>, data: TypedArray<'js, u8>| {
                Hash::named(&alg)
                    .map(|h| array(&ctx, h.hmac(&bytes(&key), &bytes(&data))))
                    .transpose()
            },
        )?,
    )?;
    n.set(
        "hmacVerify",
        Function::new(
            ctx.clone(),
            |alg: String,
             key: TypedArray<'js, u8>,
             signature: TypedArray<'js, u8>,
             data: TypedArray<'js, u8>| {
                use subtle::ConstantTimeEq as _;
                Hash::named(&alg).map(|h| {
                    let expected = h.hmac(&bytes(&key), &bytes(&data));
                    let given = bytes(&signature);
                    given.len() == expected.len() && bool::from(given.ct_eq(&expected))
                })
            },
        )?,
    )?;
    n.set(
        "random",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, len: usize| {
            if len > RANDOM_MAX {
                return Ok(None);
            }
            let mut buf = vec![0u8; len];
            getrandom::fill(&mut buf).map_err(|e| {
                rquickjs::Exception::throw_internal(
                    &ctx,
                    &format!("no randomness from the system: {e}"),
                )
            })?;
            array(&ctx, buf).map(Some)
        }),
    )?;
    n.set(
        "utf8Encode",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, s: String| {
            array(&ctx, s.into_bytes())
        })?,
    )?;
    n.set(
        "utf8Decode",
        Function::new(
            ctx.clone(),
            |data: TypedArray<'js, u8>, fatal: bool, ignore_bom: bool| {
                let data = bytes(&data);
                let data = match data.strip_prefix(b"\xEF\xBB\xBF") {
                    Some(rest) if !ignore_bom => rest,
                    _ => &data[..],
                };
                if fatal {
                    std::str::from_utf8(data).ok().map(str::to_owned)
                } else {
                    Some(String::from_utf8_lossy(data).into_owned())
                }
            },
        )?,
    )?;
    n.set(
        "urlParse",
        Function::new(ctx.clone(), |input: String, base: Option<String>| {
            let base = match base {
                Some(b) => Some(url::Url::parse(&b).ok()?),
                None => None,
            };
            url::Url::options()
                .base_url(base.as_ref())
                .parse(&input)
                .ok()
                .map(|u| url_parts(&u))
        })?,
    )?;
    n.set(
        "urlSet",
        Function::new(ctx.clone(), |href: String, part: String, value: String| {
            use url::quirks as q;
            let mut u = url::Url::parse(&href).ok()?;
            // A setter given a value it cannot take leaves the URL as it
            // was, as the standard's setters do.
            let _ = match part.as_str() {
                "href" => {
                    u = url::Url::parse(&value).ok()?;
                    Ok(())
                }
                "protocol" => q::set_protocol(&mut u, &value),
                "username" => q::set_username(&mut u, &value),
                "password" => q::set_password(&mut u, &value),
                "host" => q::set_host(&mut u, &value),
                "hostname" => q::set_hostname(&mut u, &value),
                "port" => q::set_port(&mut u, &value),
                "pathname" => {
                    q::set_pathname(&mut u, &value);
                    Ok(())
                }
                "search" => {
                    q::set_search(&mut u, &value);
                    Ok(())
                }
                "hash" => {
                    q::set_hash(&mut u, &value);
                    Ok(())
                }
                _ => return None,
            };
            Some(url_parts(&u))
        })?,
    )?;
    n.set(
        "formParse",
        Function::new(ctx.clone(), |s: String| {
            form_urlencoded::parse(s.trim_start_matches('?').as_bytes())
                .flat_map(|(k, v)| [k.into_owned(), v.into_owned()])
                .collect::<Vec<String>>()
        })?,
    )?;
    n.set(
        "formSerialize",
        Function::new(ctx.clone(), |pairs: Vec<String>| {
            let mut out = form_urlencoded::Serializer::new(String::new());
            for kv in pairs.chunks(2) {
                out.append_pair(&kv[0], kv.get(1).map_or("", String::as_str));
            }
            out.finish()
        })?,
    )?;
    n.set(
        "btoa",
        Function::new(ctx.clone(), |s: String| {
            latin1(&s).map(|b| base64::engine::general_purpose::STANDARD.encode(b))
        })?,
    )?;
    n.set(
        "atob",
        Function::new(ctx.clone(), |s: String| {
            forgiving_base64(&s).map(|b| b.into_iter().map(char::from).collect::<String>())
        })?,
    )?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::{Hash, forgiving_base64, latin1};

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn known_digests() {
        let d = |h: Hash| hex(&h.digest(b"abc"));
        assert_eq!(d(Hash::Sha1), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            d(Hash::Sha256),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(d(Hash::Sha384).starts_with("cb00753f45a35e8bb5a03d699ac65007"));
        assert!(d(Hash::Sha512).starts_with("ddaf35a193617abacc417349ae204131"));
        assert!(Hash::named("sha-256").is_some() && Hash::named("MD5").is_none());
    }

    #[test]
    fn forgiving_base64_follows_the_html_standard() {
        assert_eq!(forgiving_base64("aGk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(forgiving_base64(" aG k ").as_deref(), Some(&b"hi"[..]));
        assert_eq!(
            forgiving_base64("aGl").as_deref(),
            Some(&b"hi"[..]),
            "bits past the last byte are ignored"
        );
        assert_eq!(forgiving_base64("a"), None);
        assert_eq!(forgiving_base64("aG==="), None);
        assert_eq!(forgiving_base64("a*k="), None);
        assert_eq!(forgiving_base64("").as_deref(), Some(&b""[..]));
        assert_eq!(latin1("\u{ff}a"), Some(vec![0xff, b'a']));
        assert_eq!(latin1("\u{100}"), None);
    }
}
