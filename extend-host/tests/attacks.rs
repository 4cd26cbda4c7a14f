//! The attack suite: what a hostile tenant (or anyone on the network) tries,
//! over real HTTP against real hosts whose JavaScript runs in worker
//! processes. Each case states the request, the refusal it gets, and that
//! nothing leaked or changed. The last test replays a sweep against the
//! `extend-host serve` binary and fails on any `panicked at` in its output.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Env, LogStream, start, start_with};
use extend_host::Limits;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Asserts a JSON refusal `{code, message}` with `status` whose message contains `needle`.
async fn refused(r: reqwest::Response, status: u16, needle: &str) -> reqwest::header::HeaderMap {
    let headers = r.headers().clone();
    assert_eq!(r.status(), status, "{:?}", r.url().path());
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{headers:?}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], status, "{body}");
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(msg.contains(needle), "`{msg}` should contain `{needle}`");
    headers
}

/// Sends raw bytes on a new connection and reads the answer until close:
/// for requests an HTTP client would normalise or refuse to send.
async fn raw(env: &Env, request: &[u8]) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(env.host.local_addr())
        .await
        .unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn get(path: &str, token: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\nconnection: close\r\n\r\n"
    )
    .into_bytes()
}

fn jwt(header: &Value, claims: &Value, sig: &str) -> String {
    format!(
        "{}.{}.{sig}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

fn parts(token: &str) -> (Value, Value, String) {
    let p: Vec<&str> = token.split('.').collect();
    let dec = |s: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap();
    (dec(p[0]), dec(p[1]), p[2].to_owned())
}

async fn issue(env: &Env, token: &str, body: Value) -> reqwest::Response {
    env.http
        .post(env.url("/api/tokens/issue"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn forged_expired_revoked_and_out_of_scope_tokens_are_refused() {
    let env = start().await;
    env.put(
        "globex",
        "secret-sauce",
        "module.exports = (ctx, cb) => cb(null, 'globex only');",
        json!({"auth0-extension-secret": "globex-run-secret"}),
        json!({"k": "v"}),
    )
    .await;
    let acme = env.tenant_token("acme").await;
    let (header, claims, sig) = parts(&acme);
    let list = |token: String| {
        let (http, url) = (env.http.clone(), env.url("/api/webtask/acme"));
        async move { http.get(url).bearer_auth(token).send().await.unwrap() }
    };
    let forged = [
        (
            jwt(&json!({"alg": "none"}), &claims, ""),
            "not signed with HS256",
        ),
        (
            jwt(
                &json!({"alg": "RS256", "kid": header["kid"]}),
                &claims,
                &sig,
            ),
            "not signed with HS256",
        ),
        (
            jwt(
                &json!({"alg": "HS512", "kid": header["kid"]}),
                &claims,
                &sig,
            ),
            "not signed with HS256",
        ),
        (
            jwt(&json!({"alg": "HS256", "kid": "other"}), &claims, &sig),
            "untrusted key",
        ),
        (
            jwt(&json!({"alg": "HS256"}), &claims, &sig),
            "untrusted key",
        ),
        (
            jwt(
                &header,
                &json!({"jti": claims["jti"], "iat": claims["iat"], "ten": "acme,globex", "dd": 1}),
                &sig,
            ),
            "signature",
        ),
        ("a.b".to_owned(), "not a JWT"),
        (String::new(), "unexpected Authorization header"),
    ];
    for (token, needle) in forged {
        refused(list(token).await, 403, needle).await;
    }
    // Not yet valid, expired (polled until the second turns), revoked child.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let later = issue(
        &env,
        env.master(),
        json!({"ten": "acme", "nbf": now + 3600}),
    )
    .await;
    refused(
        list(later.text().await.unwrap()).await,
        403,
        "not yet valid",
    )
    .await;
    // Two seconds, not one: a loaded machine may take a second to issue it,
    // and a token issued already expired is refused as something else.
    let short = issue(&env, env.master(), json!({"ten": "acme", "exp": now + 2}))
        .await
        .text()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let r = list(short.clone()).await;
        if r.status() == 403 {
            refused(r, 403, "expired").await;
            break;
        }
        assert!(Instant::now() < deadline, "the token never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let child = issue(&env, &acme, json!({"ten": "acme"}))
        .await
        .text()
        .await
        .unwrap();
    let r = env
        .http
        .post(env.url(&format!("/api/tokens/revoke?token={acme}")))
        .bearer_auth(env.master())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    refused(list(child).await, 403, "revoked").await;

    // `ten` shapes on issue: empty entries, regular expressions, case variants.
    let master = env.master().to_owned();
    refused(
        issue(&env, &master, json!({"ten": "acme,,globex"})).await,
        400,
        "empty entries",
    )
    .await;
    refused(
        issue(&env, &master, json!({"ten": "/.*/"})).await,
        400,
        "regular-expression",
    )
    .await;
    refused(
        issue(&env, &master, json!({"ten": "acme globex"})).await,
        400,
        "invalid container name",
    )
    .await;
    let upper = issue(&env, &master, json!({"ten": "ACME"}))
        .await
        .text()
        .await
        .unwrap();
    refused(list(upper).await, 403, "").await;

    // A fresh acme token on every endpoint of globex.
    let acme = env.tenant_token("acme").await;
    let globex_token = env.tenant_token("globex").await;
    let h = &env.http;
    let attempts = [
        h.get(env.url("/api/webtask/globex")),
        h.get(env.url("/api/webtask/globex/secret-sauce?decrypt=true&fetch_code=true")),
        h.put(env.url("/api/webtask/globex/secret-sauce"))
            .json(&json!({"code": "module.exports = (c, cb) => cb(null, 'owned')"})),
        h.delete(env.url("/api/webtask/globex/secret-sauce")),
        h.get(env.url("/api/logs/tenant/globex")),
        h.get(env.url(&format!(
            "/api/tokens/inspect?token={globex_token}&decrypt=true"
        ))),
        h.post(env.url("/api/tokens/issue"))
            .json(&json!({"ten": "globex"})),
    ];
    for a in attempts {
        let r = a.bearer_auth(&acme).send().await.unwrap();
        assert_eq!(r.status(), 403, "{}", r.url());
        let body: Value = r.json().await.unwrap();
        assert!(!body.to_string().contains("globex-run-secret"), "{body}");
    }
    let run = h
        .post(env.url(&format!("/api/run/globex/secret-sauce?key={acme}")))
        .send()
        .await
        .unwrap();
    refused(run, 401, "Authorization: Bearer").await;
    // Nothing changed.
    let w: Value = h
        .get(env.url("/api/webtask/globex/secret-sauce?fetch_code=true"))
        .bearer_auth(env.master())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(w["code"].as_str().unwrap().contains("globex only"), "{w}");
}

#[tokio::test]
async fn names_paths_and_paging_parameters_are_checked() {
    let env = start().await;
    let t = env.master().to_owned();
    for (path, status, needle) in [
        ("/api/webtask/acme/..", 400, "invalid webtask name"),
        ("/api/webtask/acme/a%2Fb", 400, "invalid webtask name"),
        (
            "/api/webtask/acme/%C3%A9t%C3%A9",
            400,
            "invalid webtask name",
        ),
        ("/api/webtask/%FF%FE/x", 400, "not valid"),
        (
            &format!("/api/webtask/acme/{}", "a".repeat(65)),
            400,
            "invalid webtask name",
        ),
        ("/api/webtask/acme?limit=-1", 400, "non-negative integer"),
        (
            "/api/webtask/acme?limit=99999999999999999999999",
            400,
            "non-negative integer",
        ),
        ("/api/webtask/acme?offset=abc", 400, "non-negative integer"),
        ("/api/webtask/acme/", 404, ""),
    ] {
        let (s, body) = raw(&env, &get(path, &t)).await;
        assert_eq!(s, status, "{path}: {body}");
        let v: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
        assert_eq!(v["code"], status, "{path}");
        assert!(
            v["message"].as_str().unwrap().contains(needle),
            "{path}: {v}"
        );
    }
    // Huge but valid paging is clamped, not an error.
    let r = env
        .http
        .get(env.url("/api/webtask/acme?limit=18446744073709551615&offset=18446744073709551615"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!([]));
}

#[tokio::test]
async fn bodies_one_byte_over_malformed_or_deep_are_refused() {
    let mut limits = Limits::default();
    limits.management_body = 4096;
    limits.run_body = 4096;
    limits.code_size = 1000;
    let env = start_with(limits).await;
    env.install(
        "acme",
        "echo",
        "module.exports = (ctx, cb) => cb(null, ctx.body === undefined ? 'none' : 'some');",
    )
    .await;
    let put = |body: Vec<u8>, ct: &'static str| {
        env.http
            .put(env.url("/api/webtask/acme/w"))
            .bearer_auth(env.master())
            .header("content-type", ct)
            .body(body)
            .send()
    };
    refused(
        put(b"{\"code\": ".to_vec(), "application/json")
            .await
            .unwrap(),
        400,
        "not valid",
    )
    .await;
    refused(
        put(b"<code/>".to_vec(), "application/xml").await.unwrap(),
        400,
        "must be a JSON object",
    )
    .await;
    let over = format!("{{\"code\": \"{}\"}}", "x".repeat(4096 - 12 + 1));
    assert_eq!(over.len(), 4097);
    refused(
        put(over.into_bytes(), "application/json").await.unwrap(),
        413,
        "4096",
    )
    .await;
    let code = format!("{{\"code\": \"{}\"}}", "x".repeat(1001));
    refused(
        put(code.into_bytes(), "application/json").await.unwrap(),
        400,
        "limit is 1000 bytes",
    )
    .await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    refused(
        put(deep.clone().into_bytes(), "application/json")
            .await
            .unwrap(),
        413,
        "",
    )
    .await;
    let deep_small = format!(
        "{{\"code\": \"x\", \"meta\": {}{}}}",
        "[".repeat(1_000),
        "]".repeat(1_000)
    );
    refused(
        put(deep_small.into_bytes(), "application/json")
            .await
            .unwrap(),
        400,
        "",
    )
    .await;

    let run = |body: Vec<u8>, ct: &'static str| {
        env.http
            .post(env.url("/api/run/acme/echo"))
            .header("content-type", ct)
            .body(body)
            .send()
    };
    refused(
        run(vec![b'1'; 4097], "application/json").await.unwrap(),
        413,
        "4096",
    )
    .await;
    refused(
        run(b"{\"x\":".to_vec(), "application/json").await.unwrap(),
        400,
        "not valid JSON",
    )
    .await;
    let nested = format!("{}{}", "[".repeat(2_000), "]".repeat(2_000));
    refused(
        run(nested.into_bytes(), "application/json").await.unwrap(),
        400,
        "not valid JSON",
    )
    .await;
    // A body of another type is left to `req.body`, not parsed.
    let r = run(b"{not json".to_vec(), "text/plain").await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!("none"));
    let huge_header = env
        .http
        .get(env.url("/api/webtask/acme"))
        .bearer_auth(env.master())
        .header("x-pad", "p".repeat(20 << 10))
        .send()
        .await
        .unwrap();
    refused(huge_header, 431, "16384 bytes").await;
}

#[tokio::test]
async fn javascript_bombs_stop_at_the_limits_and_the_container_recovers() {
    let env = start().await;
    env.install(
        "acme",
        "ok",
        "module.exports = (ctx, cb) => cb(null, 'fine');",
    )
    .await;
    let cases: &[(&str, &str, u16, &str)] = &[
        (
            "arrays",
            "module.exports = (ctx, cb) => { const a = []; for (;;) a.push(new Array(1e5).fill(1)); };",
            500,
            "memory limit",
        ),
        (
            "strings",
            "module.exports = (ctx, cb) => { let s = 'x'; for (;;) s = s + s + Math.random(); };",
            500,
            "",
        ),
        (
            "typed",
            "module.exports = (ctx, cb) => cb(null, new Uint8Array(1 << 30).length);",
            500,
            "memory limit",
        ),
        (
            "cycle",
            "module.exports = (ctx, cb) => { const a = {}; a.a = a; cb(null, a); };",
            400,
            "JSON serializing",
        ),
        (
            "recursion",
            "module.exports = (ctx, cb) => { const f = (n) => f(n + 1) + 1; cb(null, f(0)); };",
            500,
            "stack",
        ),
        (
            "huge-result",
            "module.exports = (ctx, cb) => cb(null, 'x'.repeat(1e8));",
            500,
            "memory limit",
        ),
        // The result fits; its JSON does not: out of memory inside JSON.stringify
        // is the host's limit (500), not the extension's error (400).
        (
            "stringify-oom",
            "module.exports = (ctx, cb) => { const s = 'x'.repeat(9e6); cb(null, [s, s, s, s, s, s, s, s]); };",
            500,
            "memory limit",
        ),
    ];
    for (name, code, status, needle) in cases {
        env.install("acme", name, code).await;
        let (s, source, body) = env.run("acme", name, json!({})).await;
        assert_eq!((s, source.as_str()), (*status, "webtask"), "{name}: {body}");
        assert!(body.to_string().contains(needle), "{name}: {body}");
        assert_eq!(
            env.run("acme", "ok", json!({})).await.2,
            json!("fine"),
            "after {name}"
        );
    }
    // while(true) with the caller's deadline instead of the host's 30 s.
    env.install(
        "acme",
        "spin",
        "module.exports = (ctx, cb) => { while (true) {} };",
    )
    .await;
    let r = env
        .http
        .post(env.url("/api/run/acme/spin"))
        .header("x-extend-deadline-ms", "300")
        .send()
        .await
        .unwrap();
    refused(r, 500, "time limit of 300ms").await;
    assert_eq!(env.host.runs_in_flight("acme"), 0);
    // 10,000 console lines: the run answers, the stream gets the first 100 and a note.
    env.install("acme", "chatty", "module.exports = (ctx, cb) => { for (let i = 0; i < 10000; i++) console.log('line ' + i); cb(null, 'said'); };").await;
    let mut logs = LogStream::open(&env, "acme", env.master()).await;
    assert_eq!(env.run("acme", "chatty", json!({})).await.2, json!("said"));
    for i in 0..100 {
        assert_eq!(logs.next_record().await["msg"], format!("line {i}"));
    }
    assert!(
        logs.next_record().await["msg"]
            .as_str()
            .unwrap()
            .contains("log limit")
    );
    // One 100 KB line is cut to the 8 KiB line limit, and says so.
    env.install(
        "acme",
        "long-line",
        "module.exports = (ctx, cb) => { console.log('y'.repeat(100000)); cb(null, 'said'); };",
    )
    .await;
    assert_eq!(
        env.run("acme", "long-line", json!({})).await.2,
        json!("said")
    );
    let line = logs.next_record().await["msg"].as_str().unwrap().to_owned();
    assert_eq!(line.len(), 8192 + '…'.len_utf8());
    assert!(line.ends_with('…'));
    assert_eq!(env.run("acme", "ok", json!({})).await.2, json!("fine"));
}

#[tokio::test]
async fn pollution_and_secrets_do_not_cross_containers_or_webtasks() {
    let env = start().await;
    env.put(
        "acme",
        "polluter",
        "module.exports = (ctx, cb) => { Object.prototype.polluted = 'yes'; Array.prototype.push = () => 0; globalThis.stash = ctx.secrets; cb(null, 'done'); };",
        json!({"token": "acme-private"}),
        json!({}),
    )
    .await;
    env.install("globex", "probe", "module.exports = (ctx, cb) => { const a = []; a.push(1); cb(null, [({}).polluted, a.length, typeof globalThis.stash]); };").await;
    env.install(
        "acme",
        "reader",
        "module.exports = (ctx, cb) => cb(null, ctx.secrets);",
    )
    .await;
    assert_eq!(
        env.run("acme", "polluter", json!({})).await.2,
        json!("done")
    );
    assert_eq!(
        env.run("globex", "probe", json!({})).await.2,
        json!([null, 1, "undefined"]),
        "another container sees nothing"
    );
    // Another webtask of the same container gets only its own secrets in ctx
    // (globals are shared within a container: see the README's isolation section).
    assert_eq!(env.run("acme", "reader", json!({})).await.2, json!({}));
}

#[tokio::test]
async fn a_builtin_that_never_polls_is_killed_with_its_worker() {
    let mut limits = Limits::default();
    limits.run_time = Duration::from_millis(500);
    let env = start_with(limits).await;
    // String.prototype.indexOf compares in a loop QuickJS never interrupts:
    // minutes of CPU in one call.
    env.install(
        "acme",
        "indexof",
        "const h = 'a'.repeat(4e5), n = 'a'.repeat(2e5) + 'b'; module.exports = (ctx, cb) => cb(null, h.indexOf(n));",
    )
    .await;
    env.install(
        "acme",
        "ok",
        "module.exports = (ctx, cb) => cb(null, 'fine');",
    )
    .await;
    let started = Instant::now();
    let r = env.post_run("acme", "indexof").await;
    let elapsed = started.elapsed();
    refused(r, 500, "worker process was killed").await;
    assert_eq!(env.host.executor_stats().killed, 1);
    eprintln!("killed after {elapsed:?} (limit 500 ms, hard limit 700 ms)");
    // Nothing is still running (a compile queued behind the run may finish
    // first, in a new worker).
    let idle_by = Instant::now() + Duration::from_secs(2);
    while env.host.executor_stats().busy > 0 {
        assert!(
            Instant::now() < idle_by,
            "the killed run still holds a worker"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(env.run("acme", "ok", json!({})).await.2, json!("fine"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_and_large_output_in_every_worker_at_once_never_wedge_the_pipes() {
    // A worker blocked writing a 100 KB answer reads no input; a host blocked
    // writing the next 100 KB run to it read no output: both waited forever.
    // Eight containers (as many as there are workers) wedged every tenant.
    let mut limits = Limits::default();
    limits.run_time = Duration::from_secs(2);
    let hard_limit = Duration::from_secs(3);
    let env = start_with(limits).await;
    let echo = "module.exports = (ctx, cb) => { const s = JSON.stringify(ctx.body); \
        for (let i = 0; i < s.length; i += 7000) console.log(s.slice(i, i + 7000)); cb(null, ctx.body); };";
    for c in 0..8 {
        env.install(&format!("big{c}"), "echo", echo).await;
    }
    env.install(
        "other",
        "ok",
        "module.exports = (ctx, cb) => cb(null, 'fine');",
    )
    .await;
    let body = json!({ "text": "x".repeat(100_000) });
    for round in 0..3 {
        let mut all = tokio::task::JoinSet::new();
        for c in 0..8 {
            for _ in 0..4 {
                let (http, url, body) = (
                    env.http.clone(),
                    env.url(&format!("/api/run/big{c}/echo")),
                    body.clone(),
                );
                all.spawn(async move {
                    let started = Instant::now();
                    let r = tokio::time::timeout(hard_limit * 4, async {
                        let r = http.post(url).json(&body).send().await.unwrap();
                        let status = r.status().as_u16();
                        (status, r.bytes().await.unwrap().len())
                    })
                    .await;
                    (r, started.elapsed())
                });
            }
        }
        // Another tenant keeps running meanwhile.
        let other = tokio::time::timeout(hard_limit * 4, env.run("other", "ok", json!({})))
            .await
            .unwrap_or_else(|_| panic!("round {round}: another tenant's run hung"));
        assert_eq!(other.2, json!("fine"));
        for (r, took) in all.join_all().await {
            let (status, len) =
                r.unwrap_or_else(|_| panic!("round {round}: a run got no answer in {took:?}"));
            assert!(
                status == 200 || status == 429,
                "round {round}: status {status}"
            );
            if status == 200 {
                assert!(len > 100_000, "the echo came back whole ({len} bytes)");
            }
            assert!(
                took < hard_limit * 3,
                "round {round}: answered after {took:?}"
            );
        }
    }
    assert_eq!(
        env.host.executor_stats().killed,
        0,
        "no worker had to be killed"
    );
    let ready = env.http.get(env.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn compile_floods_are_bounded_by_write_rates_and_the_cpu_budget() {
    let mut limits = Limits::default();
    limits.run_time = Duration::from_millis(300);
    limits.cpu_burst = Duration::from_millis(300);
    limits.cpu_per_second = 0.01;
    let env = start_with(limits).await;
    env.install(
        "victim",
        "ok",
        "module.exports = (ctx, cb) => cb(null, 'fine');",
    )
    .await;
    let tenant = env.tenant_token("attacker").await;
    let mut limited = 0;
    let mut last_put = Instant::now();
    for i in 0..30 {
        let r = env
            .http
            .put(env.url(&format!("/api/webtask/attacker/w{i}")))
            .bearer_auth(&tenant)
            .json(&json!({"code": "while (true) {}"}))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => last_put = Instant::now(),
            429 => {
                limited += 1;
                assert!(r.headers().contains_key("retry-after"));
                refused(r, 429, "faster than 5 per second").await;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(limited >= 9, "the write rate limit refused {limited} of 30");
    // Compiles burn the container's CPU budget, then stop: the executor is
    // idle again within twice the run limit of the last PUT.
    let idle_by = last_put + Duration::from_millis(600);
    while env.host.executor_stats().busy > 0 {
        assert!(
            Instant::now() < idle_by + Duration::from_millis(100),
            "still compiling"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (s, _, body) = env.run("attacker", "w0", json!({})).await;
    assert_eq!(s, 429, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("CPU budget"),
        "{body}"
    );
    assert_eq!(env.run("victim", "ok", json!({})).await.2, json!("fine"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_sent_ahead_cannot_overspend_the_cpu_budget() {
    let mut limits = Limits::default();
    limits.run_time = Duration::from_millis(900);
    limits.cpu_burst = Duration::from_secs(1);
    limits.cpu_per_second = 0.001;
    let env = start_with(limits).await;
    // The save's compile-ahead runs 300 ms of top-level code: both runs
    // queue behind it, so the worker gets the second while the first runs.
    env.install(
        "hog",
        "spin",
        "const t = Date.now() + 300; while (Date.now() < t) {} module.exports = (ctx, cb) => { while (true) {} };",
    )
    .await;
    let spin = || {
        let (http, url) = (env.http.clone(), env.url("/api/run/hog/spin"));
        tokio::spawn(async move {
            let r = http.post(url).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        })
    };
    let (a, b) = (spin(), spin());
    let answers = [a.await.unwrap(), b.await.unwrap()];
    // Each run's time limit was cut to the budget left: a 429 had none.
    let mut granted: Vec<u64> = answers
        .iter()
        .map(|(status, body)| {
            let msg = body["message"].as_str().unwrap_or_default();
            match status {
                429 => {
                    assert!(msg.contains("CPU budget"), "{msg}");
                    0
                }
                500 => msg
                    .split("time limit of ")
                    .nth(1)
                    .and_then(|t| t.split("ms").next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("{msg}")),
                other => panic!("unexpected {other}: {body}"),
            }
        })
        .collect();
    granted.sort_unstable();
    let (second, first) = (granted[0], granted[1]);
    // About 0.3 s of CPU went to compiling (less when the machine is busy):
    // the first run got what was left of the 1 s budget.
    assert!((500..=1000).contains(&first), "{answers:?}");
    // The second was sent before the first was charged, yet its limit is
    // what the first left (budget - compile - the first's CPU), which is
    // less than the first's; without that rule both would get the same.
    // (Limits are wall time and charges CPU time, so the two limits may add
    // up to more than the budget when the machine is busy; their CPU does not.)
    assert!(second < first, "{answers:?}");
}

#[tokio::test]
async fn a_container_past_half_its_cpu_budget_runs_in_the_low_priority_workers() {
    let mut limits = Limits::default();
    limits.run_time = Duration::from_millis(200);
    limits.cpu_burst = Duration::from_secs(1);
    limits.cpu_per_second = 0.01;
    let env = start_with(limits).await;
    env.install(
        "hog",
        "spin",
        "module.exports = (ctx, cb) => { while (true) {} };",
    )
    .await;
    env.install(
        "hog",
        "ok",
        "module.exports = (ctx, cb) => cb(null, 'fine');",
    )
    .await;
    env.install(
        "calm",
        "ok",
        "module.exports = (ctx, cb) => cb(null, 'fine');",
    )
    .await;
    assert_eq!(env.run("calm", "ok", json!({})).await.2, json!("fine"));
    assert_eq!(env.host.executor_stats().penalized_runs, 0);
    // 200 ms spins until it has used more than half of its 1 s budget: three
    // on an idle machine; on a busy one a spin gets less CPU than wall time.
    for _ in 0..3 {
        let (s, _, body) = env.run("hog", "spin", json!({})).await;
        assert_eq!(s, 500, "{body}");
    }
    let penalized = || env.host.executor_stats().penalized_runs;
    for spins in 3.. {
        assert_eq!(env.run("hog", "ok", json!({})).await.2, json!("fine"));
        if penalized() > 0 {
            break;
        }
        assert!(spins < 10, "the hog never ran in the penalty box");
        let (s, _, body) = env.run("hog", "spin", json!({})).await;
        assert!(s == 500 || s == 429, "{body}");
    }
    let hog = penalized();
    assert!(hog >= 1, "the hog ran in the penalty box");
    assert_eq!(env.run("calm", "ok", json!({})).await.2, json!("fine"));
    assert_eq!(penalized(), hog, "the calm one did not");
    // The worker that ran it is a child of this process scheduled as
    // SCHED_IDLE (policy 5) or niced to 19.
    let mut low = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for pid in children.split_whitespace() {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // Fields after the command's closing parenthesis, from field 3.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .unwrap()
                .1
                .split_whitespace()
                .collect();
            let (nice, policy) = (fields[16], fields[38]);
            if policy == "5" || nice == "19" {
                low += 1;
            }
        }
    }
    assert!(low >= 1, "no low-priority worker process found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_runs_get_429_past_the_cap_and_others_still_run() {
    // A cap of 4 runs of 1 s: all 200 requests arrive long before the first
    // run ends and frees a place (with 32 runs of 200 ms, a request delayed
    // on a busy machine could be admitted after one ended).
    let mut limits = Limits::default();
    limits.in_flight_per_container = 4;
    let env = common::start_with(limits).await;
    env.install("busy", "wait", "module.exports = (ctx, cb) => { const t = Date.now() + 1000; while (Date.now() < t) {} cb(null, 'waited'); };").await;
    env.install(
        "other",
        "ok",
        "module.exports = (ctx, cb) => cb(null, 'fine');",
    )
    .await;
    let mut all = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let (http, url) = (env.http.clone(), env.url("/api/run/busy/wait"));
        all.spawn(async move { http.post(url).send().await.unwrap().status().as_u16() });
    }
    assert_eq!(env.run("other", "ok", json!({})).await.2, json!("fine"));
    let statuses = all.join_all().await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(ok + limited, 200, "{statuses:?}");
    assert!((1..=4).contains(&ok), "{ok} admitted of the cap of 4");
}

#[tokio::test]
async fn log_streams_are_capped_per_container_and_per_host_and_freed() {
    let mut limits = Limits::default();
    limits.log_subscribers_per_container = 2;
    limits.log_subscribers = 3;
    let env = start_with(limits).await;
    let a = LogStream::open(&env, "acme", env.master()).await;
    let b = LogStream::open(&env, "acme", env.master()).await;
    let r = env
        .http
        .get(env.url(&format!("/api/logs/tenant/acme?key={}", env.master())))
        .send()
        .await
        .unwrap();
    refused(r, 429, "2 log-stream subscribers").await;
    let c = LogStream::open(&env, "globex", env.master()).await;
    let r = env
        .http
        .get(env.url(&format!("/api/logs/tenant/initech?key={}", env.master())))
        .send()
        .await
        .unwrap();
    refused(r, 429, "host already has 3").await;
    drop((a, b, c));
    // Polled: the server drops a stream when it sees the connection close.
    let deadline = Instant::now() + Duration::from_secs(15);
    while env.host.log_channels() > 0 {
        assert!(Instant::now() < deadline, "log channels were not freed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let again = LogStream::open(&env, "initech", env.master()).await;
    drop(again);
}

#[tokio::test]
async fn deleting_a_webtask_frees_its_runtime_and_cached_copy() {
    // In-process, so that the resident runtimes are this process's to count.
    let env = Env::with_host(extend_host::Host::builder().memory().start().await.unwrap());
    env.install("acme", "w", "module.exports = (ctx, cb) => cb(null, 1);")
        .await;
    assert_eq!(env.run("acme", "w", json!({})).await.2, json!(1));
    assert_eq!(env.host.executor_stats().resident_containers, 1);
    let r = env
        .http
        .delete(env.url("/api/webtask/acme/w"))
        .bearer_auth(env.master())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(env.host.executor_stats().resident_containers, 0);
    let (s, source, _) = env.run("acme", "w", json!({})).await;
    assert_eq!((s, source.as_str()), (404, "proxy"), "no stale copy runs");
}

#[tokio::test]
async fn a_thousand_log_subscriptions_to_one_container_get_ten() {
    let env = start().await;
    let mut open = Vec::new();
    let mut refused_n = 0;
    for _ in 0..1000 {
        let r = env
            .http
            .get(env.url(&format!("/api/logs/tenant/acme?key={}", env.master())))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => open.push(r),
            429 => refused_n += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((open.len(), refused_n), (10, 990));
    assert_eq!(env.host.log_subscribers("acme"), 10);
}

#[tokio::test]
async fn quotas_meta_limits_and_response_size() {
    let mut limits = Limits::default();
    limits.webtasks_per_container = 3;
    limits.code_per_container = 2000;
    limits.meta_size = 100;
    limits.meta_filters = 2;
    limits.response_size = 1 << 20;
    let env = start_with(limits).await;
    for n in ["a", "b", "c"] {
        env.install("acme", n, "module.exports = (ctx, cb) => cb(null, 1);")
            .await;
    }
    let put = |name: &str, body: Value| {
        env.http
            .put(env.url(&format!("/api/webtask/acme/{name}")))
            .bearer_auth(env.master())
            .json(&body)
            .send()
    };
    refused(
        put("d", json!({"code": "x"})).await.unwrap(),
        403,
        "already has 3 webtasks",
    )
    .await;
    // Replacing one is not a new one.
    assert_eq!(
        put(
            "a",
            json!({"code": "module.exports = (c, cb) => cb(null, 2);"})
        )
        .await
        .unwrap()
        .status(),
        200
    );
    refused(
        put("b", json!({"code": "x".repeat(1990)})).await.unwrap(),
        403,
        "limit is 2000 bytes",
    )
    .await;
    refused(
        put("c", json!({"code": "x", "meta": {"k": "v".repeat(100)}}))
            .await
            .unwrap(),
        400,
        "limit is 100 bytes",
    )
    .await;
    let r = env
        .http
        .get(env.url("/api/webtask/acme?meta=a:1&meta=b:2&meta=c:3"))
        .bearer_auth(env.master())
        .send()
        .await
        .unwrap();
    refused(r, 400, "at most 2").await;
    env.put(
        "big",
        "w",
        "module.exports = (ctx, req, res) => { res.end('x'.repeat(2 * 1024 * 1024)); };",
        json!({}),
        json!({}),
    )
    .await;
    let r = env.post_run("big", "w").await;
    refused(r, 500, "limit is 1048576 bytes").await;
}

/// Each bad write, through each way a webtask's content is written, gets the
/// same 400 and stores nothing; and every way counts against the same rate.
async fn every_write_path_gets_the_same_checks(env: &Env) {
    let code = "module.exports = cb => cb(null, 1)";
    let bad: [(&str, Value, Value, &str); 5] = [
        (
            "NUL in code",
            json!("a\u{0}b"),
            json!({}),
            "code contains a NUL",
        ),
        (
            "NUL in meta",
            json!(code),
            json!({"k": "v\u{0}"}),
            "metadata contains a NUL",
        ),
        (
            "NUL in a meta key",
            json!(code),
            json!({"k\u{0}": "v"}),
            "metadata contains a NUL",
        ),
        (
            "100 KB of meta",
            json!(code),
            json!({"k": "v".repeat(100_000)}),
            "the limit is 16384 bytes",
        ),
        (
            "code over the limit",
            json!("x".repeat(100_001)),
            json!({}),
            "the limit is 100000 bytes",
        ),
    ];
    // Each case in a container of its own: a refused write still counts
    // against the container's write rate.
    for (i, (what, code, meta, needle)) in bad.iter().enumerate() {
        let c = format!("bad{i}");
        let put = env
            .http
            .put(env.url(&format!("/api/webtask/{c}/w")))
            .bearer_auth(env.master())
            .json(&json!({ "code": code, "meta": meta }))
            .send()
            .await
            .unwrap();
        let jtn = issue(
            env,
            env.master(),
            json!({ "ten": c, "jtn": "w", "code": code, "meta": meta }),
        )
        .await;
        let draft = env
            .http
            .put(env.url(&format!("/api/webtask/{c}/w/draft")))
            .bearer_auth(env.master())
            .json(&json!({ "code": code, "meta": meta }))
            .send()
            .await
            .unwrap();
        for (path, r) in [("PUT", put), ("jtn", jtn), ("draft", draft)] {
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            // The code limit is the body limit first for PUT bodies over 120 KiB.
            assert!(
                status == 400 || (status == 413 && text.contains("bytes")),
                "{what} through {path}: {status} {text}"
            );
            assert!(
                status == 413 || text.contains(needle),
                "{what} through {path}: {text}"
            );
        }
    }
    // An empty secret name, as `secrets`, `ectx` and a draft's `secrets`.
    let empty = json!({ "": "v" });
    for (path, r) in [
        (
            "PUT",
            env.http
                .put(env.url("/api/webtask/empty/w"))
                .bearer_auth(env.master())
                .json(&json!({ "code": code, "secrets": empty }))
                .send()
                .await
                .unwrap(),
        ),
        (
            "jtn",
            issue(
                env,
                env.master(),
                json!({ "ten": "empty", "jtn": "w", "code": code, "ectx": empty }),
            )
            .await,
        ),
        (
            "draft",
            env.http
                .put(env.url("/api/webtask/empty/w/draft"))
                .bearer_auth(env.master())
                .json(&json!({ "code": code, "secrets": empty }))
                .send()
                .await
                .unwrap(),
        ),
    ] {
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert_eq!(status, 400, "an empty secret name through {path}: {text}");
        assert!(text.contains("secret name is empty"), "{path}: {text}");
    }
    // Nothing was stored by any of them.
    let containers = (0..bad.len())
        .map(|i| format!("bad{i}"))
        .chain(["empty".to_owned()]);
    for path in containers.flat_map(|c| {
        [
            format!("/api/webtask/{c}/w"),
            format!("/api/webtask/{c}/w/draft"),
        ]
    }) {
        let r = env
            .http
            .get(env.url(&path))
            .bearer_auth(env.master())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }

    // The rate: `jtn` creates count like PUTs, and once the burst is used
    // up every write path of the container is refused.
    let mut created = 0;
    let refusal = loop {
        let r = issue(
            env,
            env.master(),
            json!({ "ten": "rated", "jtn": format!("w{created}"), "code": code }),
        )
        .await;
        if r.status() != 200 {
            break r;
        }
        created += 1;
        assert!(
            created <= 5,
            "more creates through `jtn` than the burst of 5"
        );
    };
    assert_eq!(created, 5);
    refused(refusal, 429, "faster than").await;
    let master = env.master();
    let attempts = [
        (
            "PUT",
            env.http
                .put(env.url("/api/webtask/rated/w0"))
                .json(&json!({ "code": code })),
        ),
        (
            "draft",
            env.http
                .put(env.url("/api/webtask/rated/w0/draft"))
                .json(&json!({ "code": code })),
        ),
        (
            "deploy",
            env.http.post(env.url("/api/webtask/rated/w0/draft/deploy")),
        ),
        (
            "rollback",
            env.http
                .post(env.url("/api/webtask/rated/w0/versions/1/rollback")),
        ),
        (
            "rename",
            env.http
                .post(env.url("/api/webtask/rated/w0/rename"))
                .json(&json!({ "name": "w9" })),
        ),
        ("delete", env.http.delete(env.url("/api/webtask/rated/w0"))),
    ];
    for (path, req) in attempts {
        let r = req.bearer_auth(master).send().await.unwrap();
        assert_eq!(r.status(), 429, "{path} past the write burst");
    }
}

#[tokio::test]
async fn every_write_path_gets_the_same_checks_on_sqlite() {
    let mut limits = Limits::default();
    limits.write_burst = 5;
    limits.writes_per_second = 0.001;
    every_write_path_gets_the_same_checks(&start_with(limits).await).await;
}

#[tokio::test]
async fn every_write_path_gets_the_same_checks_on_postgres() {
    let mut limits = Limits::default();
    limits.write_burst = 5;
    limits.writes_per_second = 0.001;
    let Some(env) = common::start_on(common::Backend::Postgres, limits).await else {
        return;
    };
    every_write_path_gets_the_same_checks(&env).await;
}

#[tokio::test]
async fn run_responses_cannot_set_cookies_redirect_scripts_or_interim_statuses() {
    let env = start().await;
    env.install(
        "acme",
        "page",
        "module.exports = (ctx, req, res) => { res.writeHead(200, {'set-cookie': 'sid=stolen', 'content-type': 'text/html', 'content-security-policy': 'default-src *'}); res.end('<script>alert(1)</script>'); };",
    )
    .await;
    env.install(
        "acme",
        "interim",
        "module.exports = (ctx, req, res) => { res.writeHead(101); res.end(); };",
    )
    .await;
    let r = env.post_run("acme", "page").await;
    assert_eq!(r.status(), 200);
    let h = r.headers();
    assert!(!h.contains_key("set-cookie"), "{h:?}");
    assert_eq!(h["content-security-policy"], "sandbox; default-src 'none'");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let r = env.post_run("acme", "interim").await;
    refused(r, 500, "final status").await;

    // Headers that steer the host's origin are dropped; what describes the
    // content, CORS and the platform's own `x-` headers pass.
    env.install(
        "acme",
        "steer",
        "module.exports = (ctx, req, res) => { res.writeHead(302, { location: 'https://evil.invalid/', \
         refresh: '0; url=https://evil.invalid/', 'clear-site-data': '\"*\"', 'www-authenticate': 'Basic realm=x', \
         'x-frame-options': 'ALLOWALL', link: '<https://evil.invalid/x.js>; rel=preload', \
         'access-control-allow-credentials': 'true', 'access-control-allow-origin': '*', \
         'cache-control': 'no-store', 'x-lead-score': '95', 'x-wt-response-source': 'forged' }); res.end('moved'); };",
    )
    .await;
    // A client that does not follow redirects, so that a Location that got
    // through is seen (and never followed off this machine).
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(env.url("/api/run/acme/steer"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let h = r.headers();
    for dropped in [
        "location",
        "refresh",
        "clear-site-data",
        "www-authenticate",
        "x-frame-options",
        "link",
        "access-control-allow-credentials",
    ] {
        assert!(!h.contains_key(dropped), "{dropped} passed: {h:?}");
    }
    assert_eq!(h["access-control-allow-origin"], "*");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-lead-score"], "95");
    assert_eq!(h["x-wt-response-source"], "webtask");

    // Header bytes count against the response cap with the body.
    env.install(
        "acme",
        "fat-headers",
        "module.exports = (ctx, req, res) => { const v = 'v'.repeat(600 * 1024); \
         res.writeHead(200, { 'x-a': v, 'x-b': v }); res.end('small'); };",
    )
    .await;
    let r = env.post_run("acme", "fat-headers").await;
    refused(r, 500, "(body and headers) is").await;
}

#[tokio::test]
async fn lone_surrogates_leave_as_replacement_characters() {
    let env = start().await;
    env.install(
        "acme",
        "log",
        "module.exports = (ctx, cb) => { console.log('😀'.slice(0, 1)); cb(null, 'logged'); };",
    )
    .await;
    env.install("acme", "raw", "module.exports = (ctx, req, res) => { res.setHeader('x-s', '\\ud800'); res.end('a\\ud800b'); };").await;
    let mut logs = LogStream::open(&env, "acme", env.master()).await;
    assert_eq!(env.run("acme", "log", json!({})).await.2, json!("logged"));
    assert_eq!(logs.next_record().await["msg"], "\u{FFFD}");
    let r = env.post_run("acme", "raw").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "a\u{FFFD}b");
    let put = env
        .http
        .put(env.url("/api/webtask/acme/bad"))
        .bearer_auth(env.master())
        .json(&json!({"code": "throw new Error('bad \\ud800 code');"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let (s, source, body) = env.run("acme", "bad", json!({})).await;
    assert_eq!((s, source.as_str()), (400, "compiler"), "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("bad \u{FFFD} code"),
        "{body}"
    );
}

#[tokio::test]
async fn every_refusal_is_json_even_from_the_router() {
    let env = start().await;
    let r = env
        .http
        .delete(env.url("/api/tokens/issue"))
        .send()
        .await
        .unwrap();
    refused(r, 405, "DELETE is not allowed").await;
    let mut many = reqwest::header::HeaderMap::new();
    for i in 0..101 {
        many.insert(
            reqwest::header::HeaderName::from_bytes(format!("x-h{i}").as_bytes()).unwrap(),
            "1".parse().unwrap(),
        );
    }
    let r = env
        .http
        .get(env.url("/api/webtask/acme"))
        .headers(many)
        .send()
        .await
        .unwrap();
    refused(r, 431, "limits are 100 headers").await;
    let long = format!("/api/webtask/acme?x={}", "q".repeat(9000));
    let r = env.http.get(env.url(&long)).send().await.unwrap();
    refused(r, 414, "8192 bytes").await;
}

#[tokio::test]
async fn dd_zero_tokens_cannot_create_webtasks() {
    let env = start().await;
    let tenant = env.tenant_token("acme").await;
    let leaf = issue(&env, &tenant, json!({"ten": "acme", "dd": 0}))
        .await
        .text()
        .await
        .unwrap();
    let r = env
        .http
        .put(env.url("/api/webtask/acme/minted"))
        .bearer_auth(&leaf)
        .json(&json!({"code": "module.exports = (c, cb) => cb(null, 1);"}))
        .send()
        .await
        .unwrap();
    refused(r, 403, "cannot be used to issue new webtask tokens").await;
    let r = env
        .http
        .get(env.url("/api/webtask/acme/minted"))
        .bearer_auth(env.master())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "nothing was created");
}

#[tokio::test]
async fn slow_idle_and_excess_connections_are_cut_and_service_recovers() {
    let mut limits = Limits::default();
    limits.header_timeout = Duration::from_secs(1);
    limits.connections = 20;
    let env = start_with(limits).await;
    let addr = env.host.local_addr();
    // Slowloris: one header byte every 300 ms is cut at the 1 s header timeout.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /api/webtask/acme HTTP/1.1\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut cut = false;
    for b in b"x-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if slow.write_all(&[*b]).await.is_err() {
            cut = true;
            break;
        }
        let mut buf = [0u8; 512];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(1), slow.read(&mut buf)).await
        {
            // hyper answers 408 or just closes: either way the connection ends.
            let _ = n;
            cut = true;
            break;
        }
    }
    assert!(
        cut,
        "the slow connection was still open after {:?}",
        started.elapsed()
    );
    // Idle connections fill the cap; past it new ones are closed at once.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut extra = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 16];
        match tokio::time::timeout(Duration::from_millis(200), extra.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            _ => assert!(
                Instant::now() < deadline,
                "connections past the cap stay open"
            ),
        }
    }
    // The idle ones time out, and the host serves again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = env
            .http
            .get(env.url("/api/webtask/acme"))
            .bearer_auth(env.master())
            .send()
            .await;
        if matches!(&r, Ok(r) if r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "the host did not recover: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(idle);
}

/// `extend-host serve` as a child process, with its stderr collected.
struct Served {
    child: std::process::Child,
    url: String,
    master: String,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[allow(clippy::zombie_processes)] // `Served` kills and waits for it when dropped
fn serve_memory() -> Served {
    use std::io::{BufRead, BufReader, Read};
    let mut child = std::process::Command::new(common::WORKER)
        .args([
            "serve",
            "--memory",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "4",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut pipe = child.stderr.take().unwrap();
    let sink = std::sync::Arc::clone(&stderr);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.next().unwrap().unwrap().starts_with("master token"));
    let master = lines.next().unwrap().unwrap();
    let url = lines
        .next()
        .unwrap()
        .unwrap()
        .strip_prefix("extend-host listening on ")
        .unwrap()
        .to_owned();
    Served {
        child,
        url,
        master,
        stderr,
    }
}

#[tokio::test]
async fn the_served_binary_takes_a_sweep_of_attacks_without_a_panic() {
    let s = serve_memory();
    let http = common::http();
    let put = |name: &str, code: &str| {
        http.put(format!("{}/api/webtask/acme/{name}", s.url))
            .bearer_auth(&s.master)
            .json(&json!({"code": code}))
            .send()
    };
    let bombs = [
        ("spin", "module.exports = (ctx, cb) => { while (true) {} };"),
        (
            "oom",
            "module.exports = (ctx, cb) => { const a = []; for (;;) a.push(new Array(1e5).fill(1)); };",
        ),
        (
            "deep",
            "module.exports = (ctx, cb) => { const f = (n) => f(n + 1); f(0); };",
        ),
        (
            "surrogate",
            "module.exports = (ctx, req, res) => { console.log('\\ud800'); res.setHeader('\\ud800', '\\udc00'); res.end('\\ud800'); };",
        ),
        (
            "throw-null",
            "module.exports = (ctx, cb) => { throw null; };",
        ),
        (
            "bad-status",
            "module.exports = (ctx, req, res) => { res.statusCode = 99; res.end(); };",
        ),
        (
            "stringify-oom",
            "module.exports = (ctx, cb) => { const s = 'x'.repeat(9e6); cb(null, [s, s, s, s, s, s, s, s]); };",
        ),
        ("syntax", "module.exports = (ctx, cb => ;"),
        ("top-spin", "while (true) {}"),
    ];
    for (name, code) in bombs {
        assert_eq!(put(name, code).await.unwrap().status(), 200, "{name}");
        let r = http
            .post(format!("{}/api/run/acme/{name}", s.url))
            .header("x-extend-deadline-ms", "300")
            .body("{\"x\": \"\\ud800\"}")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!((200..600).contains(&status), "{name}: {status}");
        assert!(status != 200 || name == "surrogate", "{name} answered 200");
    }
    for path in [
        "/api/webtask/acme/%FF",
        "/api/webtask/..",
        "/api/run/acme",
        "/api/tokens/inspect?token=%00",
    ] {
        let r = http
            .get(format!("{}{path}", s.url))
            .bearer_auth(&s.master)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{path}: {}", r.status());
    }
    let r = http
        .post(format!("{}/api/tokens/issue", s.url))
        .bearer_auth(&s.master)
        .body(format!("{}{}", "{\"a\":".repeat(5000), "}".repeat(5000)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let stderr = s.stderr.lock().unwrap().clone();
    assert!(!stderr.contains("panicked at"), "{stderr}");
    assert!(!stderr.contains("Assertion"), "{stderr}");
}

#[tokio::test]
async fn runtimes_over_the_resident_budget_are_evicted_and_counted_on_both_backends() {
    for in_process in [true, false] {
        let mut limits = extend_host::Limits::default();
        // Room for one runtime only: each new container evicts the last.
        limits.resident_memory = 1;
        let mut builder = extend_host::Host::builder()
            .memory()
            .workers(1)
            .limits(limits);
        if !in_process {
            builder = builder.worker_program(common::WORKER);
        }
        let env = Env::with_host(builder.start().await.unwrap());
        for i in 0..6 {
            let c = format!("tenant{i}");
            env.install(&c, "w", "module.exports = (ctx, cb) => cb(null, 1);")
                .await;
            assert_eq!(env.run(&c, "w", json!({})).await.2, json!(1));
        }
        let stats = env.host.executor_stats();
        assert_eq!(
            (stats.resident_containers, stats.evictions),
            (1, 5),
            "in process: {in_process}"
        );
        env.host.shutdown().await.unwrap();
    }
}
