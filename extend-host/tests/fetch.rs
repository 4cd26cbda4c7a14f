//! Extensions that call out: `fetch` made by the host under its egress
//! policy, timers, and runs that wait without holding a worker. Each test
//! runs real extensions in real worker processes against a small target
//! server on loopback, which the host is told to allow (loopback is refused
//! by default, as the refusal tests show).

mod common;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{any, get};
use extend_host::{EgressPolicy, Host, Limits};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::Notify;

/// The target server: what extensions call.
/// Requests in flight at `/counted`, and the most at once.
#[derive(Default)]
struct Concurrency {
    now: std::sync::atomic::AtomicUsize,
    max: std::sync::atomic::AtomicUsize,
}

struct Target {
    addr: SocketAddr,
    concurrency: Arc<Concurrency>,
    /// Signalled when the host drops a request to `/slow` before its answer.
    dropped: Arc<Notify>,
    /// Lets `/slow` answer.
    release: Arc<Notify>,
    /// Signalled when a request reaches `/slow`.
    reached: Arc<Notify>,
}

/// Notifies when dropped before it was disarmed: a handler whose request
/// the client gave up on is dropped mid-way.
struct OnDrop(Option<Arc<Notify>>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(n) = self.0.take() {
            n.notify_one();
        }
    }
}

async fn target() -> Target {
    let release = Arc::new(Notify::new());
    let reached = Arc::new(Notify::new());
    let dropped = Arc::new(Notify::new());
    let concurrency = Arc::new(Concurrency::default());
    let app = Router::new()
        .route(
            "/json",
            get(|| async { ([("x-up", "1")], axum::Json(json!({"hello": "world"}))) }),
        )
        .route(
            "/echo",
            any(
                |method: axum::http::Method, headers: HeaderMap, body: String| async move {
                    let h = |k: &str| headers.get(k).map(|v| v.to_str().unwrap_or("").to_owned());
                    axum::Json(json!({
                        "method": method.as_str(),
                        "authorization": h("authorization"),
                        "contentType": h("content-type"),
                        "traceparent": h("traceparent"),
                        "body": body,
                    }))
                },
            ),
        )
        .route(
            "/slow",
            get(
                |State((release, reached, dropped)): State<(
                    Arc<Notify>,
                    Arc<Notify>,
                    Arc<Notify>,
                )>| async move {
                    let mut guard = OnDrop(Some(dropped));
                    reached.notify_one();
                    release.notified().await;
                    guard.0 = None;
                    "late"
                },
            ),
        )
        .route("/hang", get(std::future::pending::<&'static str>))
        .route(
            "/to-metadata",
            get(|| async { Redirect::temporary("http://169.254.169.254/latest/meta-data/") }),
        )
        .route("/to-json", get(|| async { Redirect::to("/json") }))
        .route(
            "/to-other-port",
            get(|| async { Redirect::temporary("http://127.0.0.1:1/") }),
        )
        .route(
            "/counted",
            get(|State(c): State<Arc<Concurrency>>| async move {
                let now = c.now.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                c.max.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(40)).await;
                c.now.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                "counted"
            })
            .with_state(Arc::clone(&concurrency)),
        )
        .route(
            "/200ms",
            get(|| async {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                "slow"
            }),
        )
        .route("/big", get(|| async { "x".repeat(4096) }))
        .route(
            "/teapot",
            get(|| async {
                (
                    StatusCode::IM_A_TEAPOT,
                    [(header::CONTENT_TYPE, "text/plain")],
                    "short and stout",
                )
                    .into_response()
            }),
        )
        .with_state((
            Arc::clone(&release),
            Arc::clone(&reached),
            Arc::clone(&dropped),
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Target {
        addr,
        concurrency,
        dropped,
        release,
        reached,
    }
}

/// A host running extensions in worker processes, allowed to call `target`.
async fn host(target: &Target, workers: usize, limits: Limits) -> common::Env {
    let policy = EgressPolicy::default()
        .allow(&target.addr.to_string())
        .unwrap();
    let host = Host::builder()
        .memory()
        .worker_program(common::WORKER)
        .workers(workers)
        .limits(limits)
        .egress(policy)
        .start()
        .await
        .unwrap();
    common::Env::with_host(host)
}

/// Runs `container/name` with an empty body in a task of its own: the
/// status, headers and answer when it ends.
fn spawn_run(
    env: &Arc<common::Env>,
    container: &str,
    name: &str,
) -> tokio::task::JoinHandle<(u16, String, Value)> {
    let (env, container, name) = (Arc::clone(env), container.to_owned(), name.to_owned());
    tokio::spawn(async move { env.run(&container, &name, json!({})).await })
}

/// Installs `body` as an `async (ctx)` extension with `BASE` defined and
/// runs it; the status and answer.
async fn eval(env: &common::Env, target: &Target, name: &str, body: &str) -> (u16, Value) {
    let code = format!(
        "const BASE = 'http://{}';\nmodule.exports = async (ctx) => {{\n{body}\n}};",
        target.addr
    );
    env.install("acme", name, &code).await;
    let (status, _, answer) = env.run("acme", name, json!({})).await;
    (status, answer)
}

#[tokio::test]
async fn fetch_reads_json_text_headers_and_sends_bodies() {
    let t = target().await;
    let env = host(&t, 2, Limits::default()).await;
    let (status, v) = eval(
        &env,
        &t,
        "calls",
        r#"
        const r = await fetch(BASE + '/json');
        const posted = await fetch(new Request(BASE + '/echo', {
          method: 'post', headers: { Authorization: 'Bearer ' + 'k1' }, body: JSON.stringify({ a: 1 }),
        }));
        const form = await fetch(BASE + '/echo', { method: 'PUT', body: new URLSearchParams({ q: 'a b' }) });
        const tea = await fetch(BASE + '/teapot');
        const moved = await fetch(BASE + '/to-json');
        const manual = await fetch(BASE + '/to-json', { redirect: 'manual' });
        return {
          status: r.status, ok: r.ok, up: r.headers.get('X-Up'), type: r.headers.get('content-type'),
          json: await r.json(), used: r.bodyUsed,
          posted: await posted.json(),
          form: await form.json(),
          tea: [tea.status, tea.ok, tea.statusText, await tea.text()],
          moved: [moved.status, moved.redirected, moved.url.endsWith('/json')],
          manual: [manual.status, manual.headers.get('location')],
        };
        "#,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], 200);
    assert_eq!(v["ok"], true);
    assert_eq!(v["up"], "1");
    assert_eq!(v["type"], "application/json");
    assert_eq!(v["json"], json!({"hello": "world"}));
    assert_eq!(v["used"], true);
    assert_eq!(
        v["posted"],
        json!({"method": "POST", "authorization": "Bearer k1", "contentType": "text/plain;charset=UTF-8", "traceparent": null, "body": "{\"a\":1}"})
    );
    assert_eq!(v["form"]["body"], "q=a+b");
    assert_eq!(
        v["form"]["contentType"],
        "application/x-www-form-urlencoded;charset=UTF-8"
    );
    assert_eq!(
        v["tea"],
        json!([418, false, "I'm a teapot", "short and stout"])
    );
    assert_eq!(v["moved"], json!([200, true, true]));
    assert_eq!(v["manual"], json!([303, "/json"]));
}

#[tokio::test]
async fn egress_is_refused_by_default_with_a_type_error_naming_the_rule() {
    let t = target().await;
    // The policy allows the target's port only: other loopback ports are refused.
    let env = host(&t, 2, Limits::default()).await;
    let (status, v) = eval(
        &env,
        &t,
        "refused",
        r#"
        const attempt = async (url) => {
          try { await fetch(url); return 'allowed'; } catch (e) { return e.name + ': ' + e.message; }
        };
        return {
          loopback: await attempt('http://127.0.0.1/'),
          otherPort: await attempt('http://127.0.0.1:1/'),
          metadata: await attempt('http://169.254.169.254/latest/meta-data/'),
          short: await attempt('http://127.1/'),
          hex: await attempt('http://0x7f000001/'),
          octal: await attempt('http://0177.0.0.1/'),
          v6loopback: await attempt('http://[::1]/'),
          v6mapped: await attempt('http://[::ffff:127.0.0.1]/'),
          zero: await attempt('http://0.0.0.0/'),
          p172: await attempt('http://172.16.0.1/'),
          p192: await attempt('http://192.168.1.1/'),
          cgnat: await attempt('http://100.64.0.1/'),
          ula: await attempt('http://[fd00::1]/'),
          toOtherPort: await attempt(BASE + '/to-other-port'),
          mapped: await attempt('http://[::ffff:169.254.169.254]/'),
          private: await attempt('http://10.0.0.1/'),
          localhost: await attempt('http://localhost/'),
          decimal: await attempt('http://2130706433/'),
          scheme: await attempt('file:///etc/passwd'),
          port: await attempt('https://example.com:8443/'),
          redirect: await attempt(BASE + '/to-metadata'),
          relative: await attempt('/json'),
        };
        "#,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let says = |k: &str, what: &str| {
        let m = v[k].as_str().unwrap_or_default();
        assert!(m.starts_with("TypeError: ") && m.contains(what), "{k}: {m}");
    };
    says("loopback", "127.0.0.1 is loopback");
    says("otherPort", "port 1 is not allowed");
    says("metadata", "169.254.169.254 is link-local");
    says("mapped", "IPv4-mapped");
    says("private", "10.0.0.1 is private (RFC 1918)");
    says("localhost", "`localhost` resolves to");
    says("decimal", "loopback");
    says("scheme", "the scheme `file:` is not allowed");
    says("port", "port 8443 is not allowed");
    says("redirect", "169.254.169.254 is link-local");
    says("short", "127.0.0.1 is loopback");
    says("hex", "127.0.0.1 is loopback");
    says("octal", "127.0.0.1 is loopback");
    says("v6loopback", "::1 is loopback");
    says("v6mapped", "IPv4-mapped");
    says("zero", "0.0.0.0 is unspecified");
    says("p172", "172.16.0.1 is private (RFC 1918)");
    says("p192", "192.168.1.1 is private (RFC 1918)");
    says("cgnat", "100.64.0.1 is shared address space (CGNAT");
    says("ula", "fd00::1 is private (unique local");
    says("toOtherPort", "port 1 is not allowed");
    says("relative", "is not an absolute URL");
}

#[tokio::test]
async fn the_subrequest_and_body_limits_are_named_in_refusals() {
    let t = target().await;
    let mut limits = Limits::default();
    limits.subrequests_per_run = 3;
    limits.subrequest_response_size = 1024;
    let env = host(&t, 2, limits).await;
    let (status, v) = eval(
        &env,
        &t,
        "limits",
        r#"
        const out = [];
        for (let i = 0; i < 4; i++) {
          try { await fetch(BASE + '/json'); out.push('ok'); } catch (e) { out.push(e.message); }
        }
        return out;
        "#,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v[0], "ok");
    assert_eq!(v[2], "ok");
    let m = v[3].as_str().unwrap();
    assert!(
        m.contains("subrequest limit reached: a run may make 3 requests"),
        "{m}"
    );
    let (status, v) = eval(
        &env,
        &t,
        "big",
        "try { await fetch(BASE + '/big'); return 'read'; } catch (e) { return e.message; }",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        v,
        "the response body is larger than the limit of 1024 bytes"
    );
}

#[tokio::test]
async fn timers_fire_in_order_and_die_with_their_run() {
    let t = target().await;
    let env = host(&t, 2, Limits::default()).await;
    let (status, v) = eval(
        &env,
        &t,
        "timers",
        r#"
        const order = [];
        const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
        setTimeout(() => order.push('b'), 20);
        setTimeout((x) => order.push(x), 5, 'a');
        const cleared = setTimeout(() => order.push('never'), 1);
        clearTimeout(cleared);
        queueMicrotask(() => order.push('micro'));
        let ticks = 0;
        const iv = setInterval(() => { if (++ticks === 3) clearInterval(iv); }, 2);
        await sleep(40);
        let aborted = null;
        try { await fetch(BASE + '/hang', { signal: AbortSignal.timeout(30) }); } catch (e) { aborted = e.name; }
        const c = new AbortController();
        const p = fetch(BASE + '/hang', { signal: c.signal });
        c.abort();
        let manual = null;
        try { await p; } catch (e) { manual = e.name; }
        // Left pending: the run ends before it fires.
        setTimeout(() => { globalThis.leftover = true; }, 0);
        return { order, ticks, aborted, manual };
        "#,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v,
        json!({"order": ["micro", "a", "b"], "ticks": 3, "aborted": "TimeoutError", "manual": "AbortError"})
    );
    // The timer the run left behind was dropped with it.
    env.install(
        "acme",
        "leftover",
        "module.exports = async () => globalThis.leftover === true;",
    )
    .await;
    let (_, _, left) = env.run("acme", "leftover", json!({})).await;
    assert_eq!(left, json!(false));
}

#[tokio::test]
async fn a_run_waiting_on_the_network_does_not_hold_its_worker() {
    let t = target().await;
    // One worker process: if a waiting run held it, nothing else could run.
    let env = Arc::new(host(&t, 1, Limits::default()).await);
    let code = format!(
        "module.exports = async () => (await fetch('http://{}/slow')).text();",
        t.addr
    );
    env.install("waits", "slow", &code).await;
    env.install("other", "quick", "module.exports = async () => 'quick';")
        .await;
    let slow = spawn_run(&env, "waits", "slow");
    t.reached.notified().await;
    // The slow run is parked on its request; another container runs
    // meanwhile (were the worker held, these would wait for the slow one).
    let quick = async {
        for _ in 0..5 {
            let (status, _, answer) = env.run("other", "quick", json!({})).await;
            assert_eq!((status, answer), (200, json!("quick")));
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), quick)
        .await
        .expect("the other container ran while the slow run waited");
    t.release.notify_one();
    let (status, _, answer) = slow.await.unwrap();
    assert_eq!((status, answer), (200, json!("late")));
}

#[tokio::test]
async fn a_run_that_waits_past_its_time_limit_is_stopped() {
    let t = target().await;
    let mut limits = Limits::default();
    limits.run_time = std::time::Duration::from_millis(300);
    let env = host(&t, 1, limits).await;
    let (status, v) = eval(
        &env,
        &t,
        "hangs",
        "await fetch(BASE + '/hang'); return 'never';",
    )
    .await;
    assert_eq!(status, 500, "{v}");
    let m = v["message"].as_str().unwrap_or_default();
    assert!(
        m.contains("request did not finish within the run's remaining time")
            || m.contains("time limit of 300ms"),
        "{v}"
    );
    // The container runs again afterwards.
    let (status, v) = eval(&env, &t, "after", "return 1;").await;
    assert_eq!((status, v), (200, json!(1)));
}

#[tokio::test]
async fn in_process_hosts_fetch_too() {
    let t = target().await;
    let policy = EgressPolicy::default().allow(&t.addr.to_string()).unwrap();
    let host = Host::builder()
        .memory()
        .egress(policy)
        .start()
        .await
        .unwrap();
    let env = common::Env::with_host(host);
    let (status, v) = eval(
        &env,
        &t,
        "inproc",
        r#"
        const r = await fetch(BASE + '/json');
        let refused = null;
        try { await fetch('http://169.254.169.254/'); } catch (e) { refused = e.message; }
        await new Promise((ok) => setTimeout(ok, 5));
        return { json: await r.json(), refused };
        "#,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["json"], json!({"hello": "world"}));
    assert!(v["refused"].as_str().unwrap().contains("link-local"), "{v}");
}

#[tokio::test]
async fn a_refusal_is_written_to_the_tenant_s_log_stream() {
    let t = target().await;
    let env = host(&t, 1, Limits::default()).await;
    let mut stream = env
        .http
        .get(env.url("/api/logs/tenant/acme"))
        .bearer_auth(env.master())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(b": connected"));
    let (status, v) = eval(
        &env,
        &t,
        "logged",
        "try { await fetch('http://10.1.2.3/'); } catch (e) {} await fetch(BASE + '/json'); return 'done';",
    )
    .await;
    assert_eq!((status, v), (200, json!("done")));
    let refused =
        "fetch GET http://10.1.2.3/ failed: egress refused: 10.1.2.3 is private (RFC 1918)";
    let answered = format!("fetch GET http://{}/json -> 200 in ", t.addr);
    let mut seen = String::new();
    let read = async {
        while !(seen.contains(refused) && seen.contains(&answered)) {
            let chunk = stream
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), read)
        .await
        .unwrap_or_else(|_| panic!("no line for each request in {seen}"));
    // /metrics counts them by result, with no label per container.
    let metrics = env
        .http
        .get(env.url("/metrics"))
        .bearer_auth(env.master())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "extend_host_subrequests_total{result=\"ok\"} 1",
        "extend_host_subrequests_total{result=\"refused\"} 1",
        "extend_host_egress_bytes_total{direction=\"received\"} 17",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
}

#[tokio::test]
async fn the_run_s_trace_goes_only_where_the_policy_sends_it() {
    let t = target().await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    for propagate in [false, true] {
        let policy = EgressPolicy::default()
            .allow(&t.addr.to_string())
            .unwrap()
            .propagate_trace(propagate);
        let host = Host::builder()
            .memory()
            .worker_program(common::WORKER)
            .egress(policy)
            .start()
            .await
            .unwrap();
        let env = common::Env::with_host(host);
        let code = format!(
            "module.exports = async () => (await fetch('http://{}/echo')).json();",
            t.addr
        );
        env.install("acme", "traced", &code).await;
        let r = env
            .http
            .post(env.host.webtask_url("acme", "traced"))
            .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let seen: Value = r.json().await.unwrap();
        let tp = seen["traceparent"].as_str();
        if propagate {
            let tp = tp.expect("sent to a listed host");
            assert!(
                tp.starts_with(&format!("00-{trace}-")) && tp.ends_with("-01"),
                "{tp}"
            );
            assert!(!tp.contains("00f067aa0ba902b7"), "a new span id: {tp}");
        } else {
            assert_eq!(tp, None, "not sent by default");
        }
    }
}

#[tokio::test]
async fn a_killed_worker_fails_its_parked_runs_and_cancels_their_requests() {
    let t = target().await;
    let mut limits = Limits::default();
    limits.run_time = std::time::Duration::from_secs(20);
    let env = Arc::new(host(&t, 1, limits).await);
    let code = format!(
        "module.exports = async () => (await fetch('http://{}/slow')).text();",
        t.addr
    );
    env.install("waits", "slow", &code).await;
    // String.prototype.indexOf never polls the interrupt: its worker is killed.
    env.install(
        "stuck",
        "indexof",
        "const h = 'a'.repeat(4e5), n = 'a'.repeat(2e5) + 'b'; module.exports = (ctx, cb) => cb(null, h.indexOf(n));",
    )
    .await;
    let slow = spawn_run(&env, "waits", "slow");
    t.reached.notified().await;
    // In the same (only) worker, a run of another container that must be
    // killed: the caller waits 300 ms, so its hard limit is about 450 ms.
    let r = env
        .http
        .post(env.host.webtask_url("stuck", "indexof"))
        .header("x-extend-deadline-ms", "300")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(env.host.executor_stats().killed, 1);
    let (status, _, answer) = tokio::time::timeout(std::time::Duration::from_secs(10), slow)
        .await
        .expect("the parked run is answered when its worker dies")
        .unwrap();
    assert_eq!(status, 500, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains("worker process"),
        "{answer}"
    );
    tokio::time::timeout(std::time::Duration::from_secs(10), t.dropped.notified())
        .await
        .expect("the parked run's request was cancelled");
    // The container runs again, in a new worker.
    env.install("waits", "quick", "module.exports = async () => 'again';")
        .await;
    assert_eq!(env.run("waits", "quick", json!({})).await.2, json!("again"));
}

#[tokio::test]
async fn a_container_s_egress_bytes_a_minute_are_bounded() {
    let t = target().await;
    let mut limits = Limits::default();
    limits.subrequest_bytes_per_minute = 6000;
    let env = host(&t, 1, limits).await;
    let (status, v) = eval(
        &env,
        &t,
        "bytes",
        r#"
        const out = [];
        for (let i = 0; i < 2; i++) {
          try { out.push((await (await fetch(BASE + '/big')).text()).length); } catch (e) { out.push(e.message); }
        }
        return out;
        "#,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v[0], 4096);
    assert_eq!(
        v[1],
        "egress limit reached: container `acme` may move 6000 bytes a minute (subrequest_bytes_per_minute)"
    );
}

/// The target's `/hook`: counts the requests it receives (a side effect
/// replay must not repeat).
async fn counting_target() -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |State(hits): State<Arc<std::sync::atomic::AtomicUsize>>, body: String| async move {
                    let n = hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    axum::Json(json!({ "posted": n, "echo": body }))
                },
            ),
        )
        .with_state(Arc::clone(&hits));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hits)
}

#[tokio::test]
async fn replay_answers_fetch_from_the_recording_and_never_repeats_a_side_effect() {
    let (addr, hits) = counting_target().await;
    let policy = EgressPolicy::default().allow(&addr.to_string()).unwrap();
    let host = Host::builder()
        .memory()
        .worker_program(common::WORKER)
        .egress(policy)
        .start()
        .await
        .unwrap();
    let env = common::Env::with_host(host);
    let catalog = json!({"points": [{"name": "p", "mode": "sync", "record_inputs": true, "payload_schema": {}}]});
    let r = env
        .http
        .put(env.url("/api/catalog"))
        .bearer_auth(env.master())
        .json(&catalog)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let live = format!(
        r#"module.exports = async (ctx) => {{
          const r = await fetch('http://{addr}/hook', {{ method: 'POST', headers: {{ authorization: 'Bearer ' + ctx.secrets.SLACK, 'x-key': ctx.secrets.SLACK }}, body: JSON.stringify({{ lead: ctx.body.lead }}) }});
          return {{ live: (await r.json()).posted }};
        }};"#
    );
    env.put(
        "acme",
        "w",
        &live,
        json!({"SLACK": "xoxb-secret-token"}),
        json!({"auth0-extension-type": "p"}),
    )
    .await;
    let (status, _, answer) = env
        .run_as_platform("acme", "w", json!({"lead": "ada"}))
        .await;
    assert_eq!((status, answer), (200, json!({"live": 1})));
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    let inputs = common::eventually(
        std::time::Duration::from_secs(10),
        "the input is recorded",
        || async {
            let got = env.get_json("/api/webtask/acme/w/inputs").await;
            (got["inputs"].as_array().unwrap().len() == 1).then_some(got)
        },
    )
    .await;
    let recorded = &inputs["inputs"][0]["request"]["subrequests"][0];
    assert_eq!(recorded["method"], "POST");
    assert_eq!(recorded["status"], 200);
    let body: Value = serde_json::from_str(recorded["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, json!({"posted": 1, "echo": "{\"lead\":\"ada\"}"}));
    let text = inputs.to_string();
    assert!(
        !text.contains("xoxb-secret-token"),
        "a secret was recorded: {text}"
    );
    assert!(text.contains("[redacted]"), "{text}");

    // The draft posts the same request, and also asks for one the
    // recorded run never made.
    let draft = format!(
        r#"module.exports = async (ctx) => {{
          const r = await fetch('http://{addr}/hook', {{ method: 'POST', body: JSON.stringify({{ lead: ctx.body.lead }}) }});
          let extra;
          try {{ await fetch('http://{addr}/hook', {{ method: 'POST', body: 'another' }}); extra = 'fetched'; }} catch (e) {{ extra = e.message; }}
          return {{ draft: (await r.json()).posted, extra }};
        }};"#
    );
    let r = env
        .http
        .put(env.url("/api/webtask/acme/w/draft"))
        .bearer_auth(env.master())
        .json(&json!({ "code": draft, "meta": {"auth0-extension-type": "p"} }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = env
        .http
        .post(env.url("/api/webtask/acme/w/draft/replay"))
        .bearer_auth(env.master())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    let input = &report["inputs"][0];
    assert_eq!(input["live"]["body"], json!({"live": 1}), "{input}");
    assert_eq!(input["draft"]["body"]["draft"], 1, "{input}");
    let extra = input["draft"]["body"]["extra"].as_str().unwrap();
    assert!(
        extra.starts_with("not recorded: the recorded run made no POST request"),
        "{extra}"
    );
    assert_eq!(input["needs_network"], true);
    assert_eq!(input["subrequests_differ"], true);
    assert_eq!(input["draft"]["subrequests"].as_array().unwrap().len(), 2);
    assert_eq!(input["subrequests"][0]["status"], 200);
    // Neither replayed run reached the service.
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_run_makes_six_requests_at_once_and_fifty_in_all() {
    let t = target().await;
    let env = host(&t, 1, Limits::default()).await;
    let (status, v) = eval(
        &env,
        &t,
        "many",
        r#"
        const seven = await Promise.all(Array.from({ length: 7 }, () => fetch(BASE + '/counted').then((r) => r.text())));
        let refused = null, ok = 7;
        for (let i = 7; i < 51; i++) {
          try { await fetch(BASE + '/json'); ok++; } catch (e) { refused = [i + 1, e.message]; }
        }
        return { seven: seven.length, ok, refused };
        "#,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["seven"], 7);
    assert_eq!(v["ok"], 50);
    assert_eq!(v["refused"][0], 51);
    assert!(
        v["refused"][1]
            .as_str()
            .unwrap()
            .contains("subrequest limit reached: a run may make 50 requests"),
        "{v}"
    );
    // The seventh waited for one of the first six.
    assert_eq!(
        t.concurrency.max.load(std::sync::atomic::Ordering::SeqCst),
        6
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_runs_awaiting_a_slow_upstream_share_the_workers() {
    let t = target().await;
    let env = Arc::new(host(&t, 4, Limits::default()).await);
    let code = format!(
        "module.exports = async () => (await fetch('http://{}/200ms')).text();",
        t.addr
    );
    for c in 0..50 {
        env.install(&format!("c{c}"), "slow", &code).await;
    }
    let started = std::time::Instant::now();
    let runs: Vec<_> = (0..200)
        .map(|i| spawn_run(&env, &format!("c{}", i % 50), "slow"))
        .collect();
    for r in runs {
        let (status, _, answer) = r.await.unwrap();
        assert_eq!((status, answer), (200, json!("slow")));
    }
    let took = started.elapsed();
    // Four workers, each run waiting 200 ms: holding a worker per wait
    // would take 200 × 200 ms / 4 = 10 s; runs of a container one after
    // another, 4 × 200 ms; side by side, about 200 ms.
    assert!(
        took < std::time::Duration::from_secs(4),
        "200 runs took {took:?}"
    );
    eprintln!("200 runs over 50 containers awaiting 200 ms each: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_of_one_container_wait_side_by_side_and_log_as_themselves() {
    let t = target().await;
    let env = Arc::new(host(&t, 2, Limits::default()).await);
    let mut stream = env
        .http
        .get(env.url("/api/logs/tenant/solo"))
        .bearer_auth(env.master())
        .send()
        .await
        .unwrap();
    assert!(stream.chunk().await.unwrap().is_some());
    let code = format!(
        "module.exports = async (ctx) => {{ console.log('before ' + ctx.id); const r = await fetch('http://{}/200ms'); console.log('after ' + ctx.id); return r.text(); }};",
        t.addr
    );
    env.install("solo", "slow", &code).await;
    let started = std::time::Instant::now();
    let runs: Vec<_> = (0..20).map(|_| spawn_run(&env, "solo", "slow")).collect();
    for r in runs {
        let (status, _, answer) = r.await.unwrap();
        assert_eq!((status, answer), (200, json!("slow")));
    }
    let took = started.elapsed();
    // One after another they would take 20 × 200 ms = 4 s.
    assert!(
        took < std::time::Duration::from_millis(2000),
        "20 runs took {took:?}"
    );
    // Each line names the run that wrote it, before and after its wait.
    let mut text = String::new();
    let read = async {
        while text.matches("\"msg\":\"after ").count() < 20 {
            let chunk = stream.chunk().await.unwrap().expect("open");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), read)
        .await
        .unwrap_or_else(|_| panic!("missing lines in {text}"));
    let mut checked = 0;
    for line in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
        let record: Value = serde_json::from_str(line).unwrap();
        let msg = record["msg"].as_str().unwrap();
        if let Some(id) = msg
            .strip_prefix("before ")
            .or_else(|| msg.strip_prefix("after "))
        {
            assert_eq!(record["req_id"], id, "{record}");
            checked += 1;
        }
    }
    assert_eq!(checked, 40);
}

#[tokio::test]
async fn the_platform_gives_one_container_more_egress_with_the_master_token() {
    let t = target().await;
    // The host's policy allows nothing local: only the platform's grant does.
    let host = Host::builder()
        .memory()
        .worker_program(common::WORKER)
        .start()
        .await
        .unwrap();
    let env = common::Env::with_host(host);
    let code = format!(
        "module.exports = async () => {{ try {{ return (await fetch('http://{}/json')).json(); }} catch (e) {{ return e.message; }} }};",
        t.addr
    );
    for c in ["acme", "globex"] {
        env.install(c, "call", &code).await;
    }
    let (_, _, before) = env.run("acme", "call", json!({})).await;
    assert!(
        before
            .as_str()
            .unwrap_or_default()
            .starts_with("egress refused:"),
        "{before}"
    );
    let put = |token: String, body: Value| {
        let env = &env;
        async move {
            env.http
                .put(env.url("/api/egress/acme"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    // A tenant cannot grant itself egress.
    let tenant = env.tenant_token("acme").await;
    let r = put(tenant, json!({"allow": [t.addr.to_string()]})).await;
    assert_eq!(r.status(), 403);
    // A bad entry is named.
    let r = put(env.master().to_owned(), json!({"allow": ["bad host"]})).await;
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("`bad host` is not HOST or HOST:PORT")
    );
    let r = put(
        env.master().to_owned(),
        json!({"allow": [t.addr.to_string()]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let shown = env.get_json("/api/egress/acme").await;
    assert_eq!(shown["allow"], json!([t.addr.to_string()]));
    // acme reaches it now; globex still does not.
    let (_, _, after) = env.run("acme", "call", json!({})).await;
    assert_eq!(after, json!({"hello": "world"}));
    let (_, _, other) = env.run("globex", "call", json!({})).await;
    assert!(
        other
            .as_str()
            .unwrap_or_default()
            .starts_with("egress refused:"),
        "{other}"
    );
    // Taken back.
    let r = put(env.master().to_owned(), json!({"allow": []})).await;
    assert_eq!(r.status(), 200);
    let (_, _, again) = env.run("acme", "call", json!({})).await;
    assert!(
        again
            .as_str()
            .unwrap_or_default()
            .starts_with("egress refused:"),
        "{again}"
    );
}

#[tokio::test]
async fn a_container_s_egress_is_kept_by_both_stores() {
    for backend in [common::Backend::Sqlite, common::Backend::Postgres] {
        let Some(env) = common::start_on(backend, Limits::default()).await else {
            eprintln!("skipped on {backend:?}: no EXTEND_TEST_DATABASE_URL");
            continue;
        };
        let r = env
            .http
            .put(env.url("/api/egress/acme"))
            .bearer_auth(env.master())
            .json(&json!({"allow": ["API.internal.example:8443", "[fd00::5]"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{backend:?}");
        let shown = env.get_json("/api/egress/acme").await;
        assert_eq!(
            shown["allow"],
            json!(["api.internal.example:8443", "[fd00::5]"]),
            "{backend:?}: entries are kept as parsed"
        );
        assert_eq!(env.get_json("/api/egress/globex").await["allow"], json!([]));
    }
}

#[tokio::test]
async fn a_run_that_exceeds_its_limit_resets_the_runtime_its_waiting_siblings_share() {
    let t = target().await;
    let env = Arc::new(host(&t, 1, Limits::default()).await);
    let code = format!(
        "module.exports = async (ctx) => {{ if (ctx.body.spin) {{ while (true) {{}} }} return (await fetch('http://{}/slow')).text(); }};",
        t.addr
    );
    env.install("shared", "w", &code).await;
    let waiting = spawn_run(&env, "shared", "w");
    t.reached.notified().await;
    // A run of the same container, in the same runtime, stopped at its limit.
    let r = env
        .http
        .post(env.host.webtask_url("shared", "w"))
        .header("x-extend-deadline-ms", "300")
        .json(&json!({"spin": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert!(r.text().await.unwrap().contains("time limit"));
    t.release.notify_one();
    let (status, _, answer) = tokio::time::timeout(std::time::Duration::from_secs(20), waiting)
        .await
        .expect("the waiting run is answered")
        .unwrap();
    assert_eq!(status, 500, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains("runtime was reset while this run waited"),
        "{answer}"
    );
    // The container runs again, in a fresh runtime.
    env.install("shared", "quick", "module.exports = async () => 'again';")
        .await;
    assert_eq!(
        env.run("shared", "quick", json!({})).await.2,
        json!("again")
    );
}
