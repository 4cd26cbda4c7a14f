//! Extensions that await the network (`cargo bench -p extend-host --bench
//! fetch`): throughput of 1,000 concurrent runs over 100 containers, each
//! awaiting one `fetch` of a loopback upstream that answers in 50 ms,
//! against Node `http` + `vm` with Node's `fetch` and against `workerd`
//! doing the same fetch (skipped, saying so, when `workerd` is not
//! installed); and the latency of a run that fetches once against a
//! direct reqwest call to the same upstream. Goals: at least 2× Node and at
//! least workerd's throughput; p50 ratio at most 1.3.

mod support;

use extend_host::{EgressPolicy, Host};
use serde_json::json;
use std::time::{Duration, Instant};
use support::{Workerd, median, pct, put, scaled, workerd_program, wrk};

const WORKER: &str = env!("CARGO_BIN_EXE_extend-host");

/// How long the upstream takes to answer `/slow`.
const UPSTREAM_DELAY: Duration = Duration::from_millis(50);

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();
    let dir = std::env::temp_dir().join(format!("extend-bench-fetch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let upstream = rt.block_on(upstream());
    let slow = format!("http://{upstream}/slow");
    let now = format!("http://{upstream}/now");
    let containers = scaled(100, 4);
    let conns = scaled(1000, 20);
    let secs = scaled(5, 1);
    let rounds = scaled(3, 1);

    let host = rt
        .block_on(
            Host::builder()
                .memory()
                .worker_program(WORKER)
                .egress(
                    EgressPolicy::default()
                        .allow(&upstream.to_string())
                        .unwrap(),
                )
                .start(),
        )
        .unwrap();
    let code = |url: &str| format!("module.exports = async () => (await fetch('{url}')).json();");
    rt.block_on(async {
        for i in 0..containers {
            let c = format!("f{i}");
            put(&http, &host, &c, "call", &code(&slow)).await;
            put(&http, &host, &c, "now", &code(&now)).await;
            // Compiled and resident before the clock starts.
            let r = http
                .post(host.webtask_url(&c, "call"))
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
    });
    let script = dir.join("rotate.lua");
    std::fs::write(
        &script,
        format!(
            "local i = 0\nrequest = function()\n  i = i + 1\n  return wrk.format(\"POST\", \"/api/run/f\" .. (i % {containers}) .. \"/call\", {{[\"Content-Type\"] = \"application/json\"}}, '{{}}')\nend\n"
        ),
    )
    .unwrap();
    let post = dir.join("post.lua");
    std::fs::write(&post, "wrk.method = \"POST\"\nwrk.body = '{}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n").unwrap();

    // Node: one vm context running the same extension, Node's fetch.
    let code_file = dir.join("call.js");
    std::fs::write(&code_file, code(&slow)).unwrap();
    let (node, node_url) = support::node_vm_server(&code_file);
    let workerd = workerd_program().map(|p| {
        Workerd::start(
            &p,
            "export default { async fetch(req, env) {\n  const r = await fetch(env.UPSTREAM);\n  return Response.json(await r.json());\n} };\n",
            &[("UPSTREAM", &slow)],
        )
    });

    let base = format!("{}/", host.url());
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut wd = Vec::new();
    for _ in 0..rounds {
        ours.push(wrk(&base, conns, secs, &script));
        theirs.push(wrk(&node_url, conns, secs, &post));
        if let Some(w) = &workerd {
            wd.push(wrk(&w.url, conns, secs, &post));
        }
    }
    let (ours, theirs) = (median(ours), median(theirs));
    println!(
        "# extend-host fetch benchmark: {conns} connections, {containers} containers, each run awaiting one fetch of a loopback upstream answering in {} ms; wrk -t1, {secs} s, median of {rounds}",
        UPSTREAM_DELAY.as_millis()
    );
    println!(
        "(a) extend-host, worker processes: {:.0} req/s (p50 {:.1} ms, p99 {:.1} ms, {} errors)",
        ours.rps,
        ours.p50_us / 1e3,
        ours.p99_us / 1e3,
        ours.errors
    );
    println!(
        "(c) Node http + vm + fetch: {:.0} req/s (p50 {:.1} ms, p99 {:.1} ms, {} errors); (a)/(c) {:.2} (goal >= 2)",
        theirs.rps,
        theirs.p50_us / 1e3,
        theirs.p99_us / 1e3,
        theirs.errors,
        ours.rps / theirs.rps
    );
    if wd.is_empty() {
        println!(
            "(d) workerd: skipped (not installed: npm install --prefix target/workerd workerd, or EXTEND_BENCH_WORKERD)"
        );
    } else {
        let wd = median(wd);
        println!(
            "(d) workerd: {:.0} req/s (p50 {:.1} ms, p99 {:.1} ms, {} errors); (a)/(d) {:.2} (goal >= 1)",
            wd.rps,
            wd.p50_us / 1e3,
            wd.p99_us / 1e3,
            wd.errors,
            ours.rps / wd.rps
        );
    }

    // What the failures were, if any: one burst of the same load, by status.
    if ours.errors > 0 {
        let statuses = rt.block_on(async {
            let mut all = Vec::new();
            for i in 0..conns {
                let (http, url) = (
                    http.clone(),
                    host.webtask_url(&format!("f{}", i as usize % containers), "call"),
                );
                all.push(tokio::spawn(async move {
                    match http.post(url).json(&json!({})).send().await {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let body = r.text().await.unwrap_or_default();
                            (status, body)
                        }
                        Err(e) => (0, e.to_string()),
                    }
                }));
            }
            let mut by: std::collections::BTreeMap<u16, (usize, String)> = Default::default();
            for t in all {
                let (status, body) = t.await.unwrap();
                let e = by.entry(status).or_insert((0, body));
                e.0 += 1;
            }
            by
        });
        for (status, (n, example)) in statuses {
            println!(
                "  a burst of {conns} concurrent runs: {n} answered {status}{}",
                if status == 200 {
                    String::new()
                } else {
                    format!(", e.g. {}", example.chars().take(300).collect::<String>())
                }
            );
        }
    }

    // One run that fetches once, against the same request made directly.
    let n = scaled(200, 10);
    for (label, url, name) in [
        ("50 ms upstream", &slow, "call"),
        ("instant upstream", &now, "now"),
    ] {
        let (mut run, mut direct) = (Vec::new(), Vec::new());
        rt.block_on(async {
            for i in 0..n {
                let t = Instant::now();
                let r = http.get(url.as_str()).send().await.unwrap();
                r.bytes().await.unwrap();
                direct.push(t.elapsed());
                let t = Instant::now();
                let r = http
                    .post(host.webtask_url(&format!("f{}", i % containers), name))
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
                run.push(t.elapsed());
            }
        });
        let (r50, d50) = (pct(&mut run, 0.5), pct(&mut direct, 0.5));
        println!(
            "a run that fetches once, {label}: p50 {:.0} µs against a direct reqwest call's {:.0} µs: ratio {:.2}{}",
            r50,
            d50,
            r50 / d50,
            if label.starts_with("50") {
                " (goal <= 1.3)"
            } else {
                " (the overhead of a run and the host's request)"
            }
        );
    }
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The upstream: `/slow` answers after [`UPSTREAM_DELAY`], `/now` at once.
async fn upstream() -> std::net::SocketAddr {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(UPSTREAM_DELAY).await;
                axum::Json(json!({"ok": true}))
            }),
        )
        .route("/now", get(|| async { axum::Json(json!({"ok": true})) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}
