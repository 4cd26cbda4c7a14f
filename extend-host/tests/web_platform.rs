//! The web platform basics inside real worker processes: `URL`,
//! `URLSearchParams`, `TextEncoder`/`TextDecoder`, `atob`/`btoa`, `crypto`
//! (random values, UUIDs, SHA digests, HMAC sign/verify with the RFC 4231
//! vectors) and `structuredClone`. Each test runs an extension that computes
//! the values and answers them; the assertions are on the host's answer.

mod common;

use serde_json::{Value, json};

/// Runs `body` (the inside of an `async (ctx) => { … }` extension) and
/// answers what it returned, asserting a 200.
async fn eval(env: &common::Env, name: &str, body: &str) -> Value {
    let code = format!("module.exports = async (ctx) => {{\n{body}\n}};");
    env.install("acme", name, &code).await;
    let (status, _, answer) = env.run("acme", name, json!({})).await;
    assert_eq!(status, 200, "{name}: {answer}");
    answer
}

#[tokio::test]
async fn text_encoder_and_decoder_round_trip_utf8() {
    let env = common::start().await;
    let v = eval(
        &env,
        "text",
        r#"
        const enc = new TextEncoder(), dec = new TextDecoder();
        const hex = (u) => Array.from(u, (b) => b.toString(16).padStart(2, '0')).join('');
        const s = 'héllo 😀 世界';
        let fatal = null;
        try { new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array([0xff, 0x41])); } catch (e) { fatal = e.name; }
        const into = new Uint8Array(5);
        return {
          emoji: hex(enc.encode('😀')),
          lone: hex(enc.encode('a\uD800b')),
          accented: hex(enc.encode('é')),
          round: dec.decode(enc.encode(s)) === s,
          lossy: dec.decode(new Uint8Array([0x41, 0xff, 0x42])),
          bom: dec.decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])),
          keptBom: new TextDecoder('utf-8', { ignoreBOM: true }).decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])).length,
          fatal,
          view: dec.decode(new DataView(enc.encode('xyz').buffer, 1, 2)),
          encodeInto: enc.encodeInto('ab😀c', into),
          encoding: enc.encoding + ' ' + dec.encoding,
          latin1: (() => { try { new TextDecoder('latin1'); return 'accepted'; } catch (e) { return e.name; } })(),
        };
        "#,
    )
    .await;
    assert_eq!(v["emoji"], "f09f9880");
    assert_eq!(v["lone"], "61efbfbd62", "a lone surrogate becomes U+FFFD");
    assert_eq!(v["accented"], "c3a9");
    assert_eq!(v["round"], true);
    assert_eq!(v["lossy"], "A\u{fffd}B");
    assert_eq!(v["bom"], "A");
    assert_eq!(v["keptBom"], 2);
    assert_eq!(v["fatal"], "TypeError");
    assert_eq!(v["view"], "yz");
    assert_eq!(
        v["encodeInto"],
        json!({"read": 2, "written": 2}),
        "a code point that does not fit is not split"
    );
    assert_eq!(v["encoding"], "utf-8 utf-8");
    assert_eq!(v["latin1"], "RangeError");
}

#[tokio::test]
async fn digests_and_hmac_match_known_vectors() {
    let env = common::start().await;
    let v = eval(
        &env,
        "crypto",
        r#"
        const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');
        const bytes = (n, b) => new Uint8Array(n).fill(b);
        const te = new TextEncoder();
        const hmac = async (hash, key, data) => {
          const k = await crypto.subtle.importKey('raw', key, { name: 'HMAC', hash }, false, ['sign', 'verify']);
          return hex(await crypto.subtle.sign('HMAC', k, data));
        };
        const key25 = Uint8Array.from({ length: 25 }, (_, i) => i + 1);
        const k = await crypto.subtle.importKey('raw', te.encode('whsec'), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
        const sig = await crypto.subtle.sign('HMAC', k, te.encode('{"id":1}'));
        let unsupported = null;
        try { await crypto.subtle.digest('MD5', te.encode('x')); } catch (e) { unsupported = e.name; }
        let signOnly = null;
        const s = await crypto.subtle.importKey('raw', te.encode('k'), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
        try { await crypto.subtle.verify('HMAC', s, sig, te.encode('x')); } catch (e) { signOnly = e.name; }
        return {
          empty256: hex(await crypto.subtle.digest('SHA-256', new Uint8Array(0))),
          abc1: hex(await crypto.subtle.digest('SHA-1', te.encode('abc'))),
          abc384: hex(await crypto.subtle.digest({ name: 'SHA-384' }, te.encode('abc'))),
          abc512: hex(await crypto.subtle.digest('SHA-512', te.encode('abc').buffer)),
          tc1: await hmac('SHA-256', bytes(20, 0x0b), te.encode('Hi There')),
          tc2: await hmac('SHA-256', te.encode('Jefe'), te.encode('what do ya want for nothing?')),
          tc2_512: await hmac('SHA-512', te.encode('Jefe'), te.encode('what do ya want for nothing?')),
          tc3: await hmac('SHA-256', bytes(20, 0xaa), bytes(50, 0xdd)),
          tc4: await hmac('SHA-256', key25, bytes(50, 0xcd)),
          tc6: await hmac('SHA-256', bytes(131, 0xaa), te.encode('Test Using Larger Than Block-Size Key - Hash Key First')),
          verified: await crypto.subtle.verify('HMAC', k, sig, te.encode('{"id":1}')),
          tampered: await crypto.subtle.verify('HMAC', k, sig, te.encode('{"id":2}')),
          shortSig: await crypto.subtle.verify('HMAC', k, new Uint8Array(sig).slice(0, 16), te.encode('{"id":1}')),
          keyShape: [k.type, k.algorithm.name, k.algorithm.hash.name, k.extractable, k.usages.join(',')],
          unsupported,
          signOnly,
        };
        "#,
    )
    .await;
    assert_eq!(
        v["empty256"],
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(v["abc1"], "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(
        v["abc384"],
        "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
    );
    assert_eq!(
        v["abc512"],
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
    );
    // RFC 4231, test cases 1, 2, 3, 4 and 6.
    assert_eq!(
        v["tc1"],
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    );
    assert_eq!(
        v["tc2"],
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(
        v["tc2_512"],
        "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
    );
    assert_eq!(
        v["tc3"],
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"
    );
    assert_eq!(
        v["tc4"],
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"
    );
    assert_eq!(
        v["tc6"],
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
    assert_eq!(v["verified"], true);
    assert_eq!(v["tampered"], false);
    assert_eq!(v["shortSig"], false);
    assert_eq!(
        v["keyShape"],
        json!(["secret", "HMAC", "SHA-256", false, "sign,verify"])
    );
    assert_eq!(v["unsupported"], "NotSupportedError");
    assert_eq!(v["signOnly"], "InvalidAccessError");
}

#[tokio::test]
async fn random_values_and_uuids() {
    let env = common::start().await;
    let v = eval(
        &env,
        "random",
        r#"
        const a = crypto.getRandomValues(new Uint8Array(32));
        const w = crypto.getRandomValues(new Uint32Array(4));
        const name = (f) => { try { f(); return 'accepted'; } catch (e) { return e.name; } };
        const ids = Array.from({ length: 100 }, () => crypto.randomUUID());
        return {
          nonzero: a.some((b) => b !== 0),
          sameArray: crypto.getRandomValues(a) === a,
          words: w.length,
          quota: name(() => crypto.getRandomValues(new Uint8Array(65537))),
          max: crypto.getRandomValues(new Uint8Array(65536)).length,
          floats: name(() => crypto.getRandomValues(new Float64Array(2))),
          v4: ids.every((id) => /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id)),
          distinct: new Set(ids).size,
        };
        "#,
    )
    .await;
    assert_eq!(
        v,
        json!({"nonzero": true, "sameArray": true, "words": 4, "quota": "QuotaExceededError", "max": 65536,
               "floats": "TypeMismatchError", "v4": true, "distinct": 100})
    );
}

#[tokio::test]
async fn urls_parse_resolve_and_update_their_search_params() {
    let env = common::start().await;
    let v = eval(
        &env,
        "url",
        r#"
        const u = new URL('https://user:pw@example.com:8443/a/b?x=1&y=two#frag');
        const parts = ['href', 'protocol', 'username', 'password', 'host', 'hostname', 'port', 'pathname', 'search', 'hash', 'origin']
          .map((k) => u[k]);
        const r = new URL('../c?q', 'https://example.com/a/b/');
        const m = new URL('https://api.example.com/v1/leads');
        m.searchParams.append('email', 'ada lovelace@example.com');
        m.searchParams.set('n', '2');
        const s = new URL('https://example.com/?k=v');
        s.search = '?k=w&k=x';
        const h = new URL('https://example.com/p');
        h.pathname = '/a b';
        h.hash = 'top';
        h.port = '8080';
        let invalid = null;
        try { new URL('not a url'); } catch (e) { invalid = e.name + ': ' + e.message; }
        return {
          parts,
          resolved: r.href,
          defaultPort: new URL('https://example.com:443/').href,
          idn: new URL('https://bücher.example/').hostname,
          built: m.href,
          afterSearch: s.searchParams.getAll('k'),
          set: h.href,
          json: JSON.stringify({ u: new URL('http://a.example/x') }),
          invalid,
          canParse: [URL.canParse('https://x.example'), URL.canParse('nope'), URL.canParse('/p', 'https://x.example')],
          file: new URL('file:///etc/hosts').pathname,
        };
        "#,
    )
    .await;
    assert_eq!(
        v["parts"],
        json!([
            "https://user:pw@example.com:8443/a/b?x=1&y=two#frag",
            "https:",
            "user",
            "pw",
            "example.com:8443",
            "example.com",
            "8443",
            "/a/b",
            "?x=1&y=two",
            "#frag",
            "https://example.com:8443"
        ])
    );
    assert_eq!(v["resolved"], "https://example.com/a/c?q");
    assert_eq!(v["defaultPort"], "https://example.com/");
    assert_eq!(v["idn"], "xn--bcher-kva.example");
    assert_eq!(
        v["built"],
        "https://api.example.com/v1/leads?email=ada+lovelace%40example.com&n=2"
    );
    assert_eq!(v["afterSearch"], json!(["w", "x"]));
    assert_eq!(v["set"], "https://example.com:8080/a%20b#top");
    assert_eq!(v["json"], r#"{"u":"http://a.example/x"}"#);
    assert_eq!(v["invalid"], "TypeError: Invalid URL: not a url");
    assert_eq!(v["canParse"], json!([true, false, true]));
    assert_eq!(v["file"], "/etc/hosts");
}

#[tokio::test]
async fn url_search_params_parse_and_serialize_as_forms_do() {
    let env = common::start().await;
    let v = eval(
        &env,
        "params",
        r#"
        const p = new URLSearchParams('?a=1&b=x+y&c=%E2%9C%93&a=2&bad=%zz');
        const o = new URLSearchParams({ q: 'rust lang', n: 3, sym: "!'()~*" });
        const pairs = new URLSearchParams([['k', 'v1'], ['k', 'v2']]);
        pairs.delete('k', 'v1');
        const sorted = new URLSearchParams('z=1&a=2&z=0&a=1');
        sorted.sort();
        return {
          all: p.getAll('a'), b: p.get('b'), c: p.get('c'), bad: p.get('bad'), none: p.get('nope'),
          has: [p.has('a'), p.has('a', '3')], size: p.size,
          object: o.toString(),
          pairs: pairs.toString(),
          sorted: sorted.toString(),
          entries: [...new URLSearchParams('x=1&y=2')],
        };
        "#,
    )
    .await;
    assert_eq!(v["all"], json!(["1", "2"]));
    assert_eq!(v["b"], "x y");
    assert_eq!(v["c"], "✓");
    assert_eq!(v["bad"], "%zz", "a bad escape stays as written");
    assert_eq!(v["none"], Value::Null);
    assert_eq!(v["has"], json!([true, false]));
    assert_eq!(v["size"], 5);
    assert_eq!(v["object"], "q=rust+lang&n=3&sym=%21%27%28%29%7E*");
    assert_eq!(v["pairs"], "k=v2");
    assert_eq!(v["sorted"], "a=2&a=1&z=1&z=0", "a stable sort by name");
    assert_eq!(v["entries"], json!([["x", "1"], ["y", "2"]]));
}

#[tokio::test]
async fn base64_and_structured_clone() {
    let env = common::start().await;
    let v = eval(
        &env,
        "misc",
        r#"
        const name = (f) => { try { f(); return 'accepted'; } catch (e) { return e.name; } };
        const a = { d: new Date(0), m: new Map([[1, { x: 1 }]]), s: new Set([1]), u: new Uint8Array([1, 2]), r: /x/gi };
        a.self = a;
        const b = structuredClone(a);
        return {
          btoa: btoa('hello'),
          atob: atob(' aGVs bG8= '),
          binary: btoa(String.fromCharCode(0, 255)),
          euro: name(() => btoa('€')),
          badAtob: name(() => atob('@@')),
          clone: [b !== a, b.self === b, b.d.getTime(), b.m.get(1).x, b.m.get(1) !== a.m.get(1), b.s.has(1), b.u[1], b.u.buffer !== a.u.buffer, b.r.flags],
          fn: name(() => structuredClone({ f() {} })),
          domException: (() => { try { btoa('€'); } catch (e) { return [e instanceof DOMException, e instanceof Error, e.code]; } })(),
          natives: Object.getOwnPropertyNames(globalThis).filter((k) => /native/i.test(k)),
          typeofs: [typeof URL, typeof crypto, typeof structuredClone],
        };
        "#,
    )
    .await;
    assert_eq!(v["btoa"], "aGVsbG8=");
    assert_eq!(v["atob"], "hello");
    assert_eq!(v["binary"], "AP8=");
    assert_eq!(v["euro"], "InvalidCharacterError");
    assert_eq!(v["badAtob"], "InvalidCharacterError");
    assert_eq!(
        v["clone"],
        json!([true, true, 0, 1, true, true, 2, true, "gi"])
    );
    assert_eq!(v["fn"], "DataCloneError");
    assert_eq!(v["domException"], json!([true, true, 5]));
    assert_eq!(
        v["natives"],
        json!([]),
        "the native functions are not reachable"
    );
    assert_eq!(v["typeofs"], json!(["function", "object", "function"]));
}

/// The basics are defined on first use; a global the extension assigns
/// first keeps its value when they are.
#[tokio::test]
async fn an_extension_s_own_globals_win_over_the_basics() {
    let env = common::start().await;
    let v = eval(
        &env,
        "own",
        r#"
        globalThis.atob = () => 'mine';
        URL = class Mine {};
        const encoded = new TextEncoder().encode('x').length;
        return { atob: atob('aGk='), url: URL.name, encoded, btoa: btoa('hi') };
        "#,
    )
    .await;
    assert_eq!(
        v,
        json!({"atob": "mine", "url": "Mine", "encoded": 1, "btoa": "aGk="})
    );
}
