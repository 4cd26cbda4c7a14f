//! What the host's own JavaScript does around a run (`sandbox/prelude.js`)
//! stays invisible to the extension: past the run where the prelude starts
//! keeping the shapes of `ctx` (#26), an extension's traps on
//! `Object.prototype` are not called and `ctx` is what the request sent,
//! in its order, on both backends.

mod common;

use common::{Env, start};
use extend_host::Host;
use serde_json::{Value, json};

/// Runs past the prelude's first keeping of shapes (its 16th run in a
/// runtime), with room to spare.
const RUNS: usize = 40;

async fn in_process() -> Env {
    Env::with_host(Host::builder().memory().start().await.expect("host starts"))
}

/// POSTs the raw JSON `body` (key order as written) with `headers`.
async fn post(env: &Env, path: &str, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut r = env
        .http
        .post(env.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn setters_an_extension_puts_on_object_prototype_are_never_called_by_the_host() {
    for env in [start().await, in_process().await] {
        // Setters for keys the prelude's own objects and the request's `ctx`
        // have, and a `get` any descriptor object would inherit.
        env.install(
            "acme",
            "traps",
            "let calls = [];
             for (const k of ['host', 'content-type', 'x-tenant', 'x', 'body', 'd', 'key', '']) {
               Object.defineProperty(Object.prototype, k, {
                 set(v) { calls.push(k); }, get() { return undefined; }, configurable: true,
               });
             }
             Object.defineProperty(Object.prototype, 'get', { value: () => 'trap', configurable: true });
             module.exports = (ctx, cb) => cb(null, { calls, x: ctx.body.x, tenant: ctx.headers['x-tenant'] });",
        )
        .await;
        for i in 0..RUNS {
            let body = format!("{{\"x\":{i}}}");
            let (status, out) =
                post(&env, "/api/run/acme/traps", &body, &[("x-tenant", "t1")]).await;
            assert_eq!(status, 200, "run {i}: {out}");
            assert_eq!(
                out,
                json!({ "calls": [], "x": i, "tenant": "t1" }),
                "run {i}"
            );
        }
    }
}

#[tokio::test]
async fn ctx_keeps_the_requests_keys_in_their_order_across_runs() {
    for env in [start().await, in_process().await] {
        env.install(
            "acme",
            "keys",
            "module.exports = (ctx, cb) => cb(null, {
               top: Object.keys(ctx),
               body: Object.keys(ctx.body),
               inner: Object.keys(ctx.body.o),
               plain: Object.getPrototypeOf(ctx.body) === Object.prototype,
               proto: ctx.body.__proto__,
               polluted: ({}).polluted,
             });",
        )
        .await;
        // Two key orders in turn, one with `__proto__` as a plain key: the
        // shapes kept from one order must not leak into the other.
        let bodies = [
            (
                r#"{"a":1,"b":2,"o":{"p":1,"q":2}}"#,
                json!(["a", "b", "o"]),
                json!(["p", "q"]),
            ),
            (
                r#"{"b":2,"__proto__":{"polluted":true},"a":1,"o":{"q":2,"p":1}}"#,
                json!(["b", "__proto__", "a", "o"]),
                json!(["q", "p"]),
            ),
        ];
        for i in 0..RUNS {
            let (body, keys, inner) = &bodies[i % 2];
            let (status, out) = post(&env, "/api/run/acme/keys", body, &[]).await;
            assert_eq!(status, 200, "run {i}: {out}");
            assert_eq!(
                out["top"],
                json!(["body", "query", "headers", "secrets", "meta", "id"]),
                "run {i}"
            );
            assert_eq!(&out["body"], keys, "run {i}");
            assert_eq!(&out["inner"], inner, "run {i}");
            assert_eq!(out["plain"], json!(true), "run {i}");
            let proto = if i % 2 == 1 {
                json!({ "polluted": true })
            } else {
                json!({})
            };
            assert_eq!(out["proto"], proto, "run {i}");
            assert_eq!(out.get("polluted"), None, "run {i}: {out}");
        }
    }
}

/// The engine names an extension to the prelude by a slot it gave the name
/// (#26): extensions of one runtime keep their own functions across new
/// code, code that fails to load, and a change of calling convention, and
/// only a `(ctx, req, res)` function is given `req`.
#[tokio::test]
async fn extensions_of_one_runtime_keep_their_own_functions_across_new_code() {
    for env in [start().await, in_process().await] {
        let run = |name: &'static str| {
            let env = &env;
            async move { env.run("acme", name, json!({ "x": 1 })).await }
        };
        env.install(
            "acme",
            "a",
            "module.exports = (ctx, cb) => cb(null, { v: 'a1' });",
        )
        .await;
        env.install(
            "acme",
            "b",
            "module.exports = (ctx, cb) => cb(null, { v: 'b1' });",
        )
        .await;
        assert_eq!(run("a").await.2, json!({ "v": "a1" }));
        assert_eq!(run("b").await.2, json!({ "v": "b1" }));
        // Code that does not load: the run says so, and `b` is untouched.
        env.install("acme", "a", "module.exports = 42;").await;
        let (status, _, body) = run("a").await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(run("b").await.2, json!({ "v": "b1" }));
        // A new name after the failure gets a slot of its own.
        env.install(
            "acme",
            "c",
            "module.exports = (ctx, cb) => cb(null, { v: 'c1' });",
        )
        .await;
        assert_eq!(run("c").await.2, json!({ "v": "c1" }));
        // `a` loads again, as (ctx, req, res): it is given `req`.
        env.install(
            "acme",
            "a",
            "module.exports = (ctx, req, res) => { res.writeHead(200, { 'content-type': 'application/json' });
               res.end(JSON.stringify({ v: 'a3', method: req.method, body: req.body })); };",
        )
        .await;
        assert_eq!(
            run("a").await.2,
            json!({ "v": "a3", "method": "POST", "body": "{\"x\":1}" })
        );
        // And back to (ctx, cb), which has no `req`.
        env.install(
            "acme",
            "a",
            "module.exports = function (ctx, cb) { cb(null, { v: 'a4', args: arguments.length, req: typeof arguments[2] }); };",
        )
        .await;
        assert_eq!(
            run("a").await.2,
            json!({ "v": "a4", "args": 2, "req": "undefined" })
        );
        assert_eq!(run("b").await.2, json!({ "v": "b1" }));
        assert_eq!(run("c").await.2, json!({ "v": "c1" }));
    }
}
