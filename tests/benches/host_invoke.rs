//! The framework against a real extend-host, with baselines measured in the
//! same run (`cargo bench -p extend-hooks-tests --bench host_invoke`):
//!
//! 1. A sync invocation through the framework vs a raw reqwest POST of the same
//!    body to the same run URL (discovery cache warm).
//! 2. The cost of a discovery cache hit.
//! 3. Invocations per second at concurrency 32, framework vs raw.

#![allow(missing_docs, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use extend_hooks::{Container, Extend, extension_point};
use extend_hooks_tests::bench::scaled;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Serialize, JsonSchema)]
struct Input {
    x: i64,
}

#[derive(Deserialize, JsonSchema)]
struct Output {
    score: i64,
}

#[extension_point(name = "bench-host", timeout = "5s")]
async fn bench_host(tenant: &Container, input: &Input) -> Output;

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e6
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let host = extend_host::Host::builder().memory().start().await.unwrap();
    extend_hooks::install_crypto_provider();
    let http = reqwest::Client::new();
    let extend = Extend::builder()
        .webtask(host.url(), host.master_token())
        .http_client(http.clone())
        .build()
        .unwrap();
    let installed = extend
        .management()
        .unwrap()
        .install(
            "acme",
            "bench-host",
            "double",
            "module.exports = (ctx, cb) => cb(null, { score: ctx.body.x * 2 });",
        )
        .await
        .unwrap();
    // The host makes the run secret (it is not in the stored meta); the
    // raw baseline reads it the way the framework does, through discovery.
    let found = extend
        .discover("acme", "bench-host")
        .await
        .unwrap()
        .expect("the installed extension is discovered");
    let secret = found
        .secret()
        .expect("the host made a run secret")
        .to_owned();
    let url = installed.url.clone();
    let acme = extend.container("acme");
    let body = bytes::Bytes::from_static(br#"{"x":21}"#);

    let raw = |http: reqwest::Client, url: String, secret: String, body: bytes::Bytes| async move {
        let r = http
            .post(&url)
            .header("content-type", "application/json")
            .bearer_auth(&secret)
            .body(body)
            .send()
            .await
            .unwrap();
        let out: Output = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(out.score, 42);
    };
    let ours = |acme: Container| async move {
        let out = bench_host(&acme, &Input { x: 21 }).await.unwrap().unwrap();
        assert_eq!(out.score, 42);
    };
    for _ in 0..scaled(500, 10) {
        raw(http.clone(), url.clone(), secret.clone(), body.clone()).await;
        ours(acme.clone()).await;
    }
    let lists_before = host.list_requests();
    let (mut raw_t, mut our_t) = (Vec::new(), Vec::new());
    for _ in 0..scaled(40, 2) {
        for _ in 0..100 {
            let t = Instant::now();
            raw(http.clone(), url.clone(), secret.clone(), body.clone()).await;
            raw_t.push(t.elapsed());
        }
        for _ in 0..100 {
            let t = Instant::now();
            ours(acme.clone()).await;
            our_t.push(t.elapsed());
        }
    }
    let (rp50, op50) = (pct(&mut raw_t, 0.5), pct(&mut our_t, 0.5));
    println!(
        "sync invocation through extend-host, cache warm, {} calls each, interleaved:",
        raw_t.len()
    );
    println!(
        "  raw POST   p50 {rp50:>7.1} µs  p99 {:>7.1} µs",
        pct(&mut raw_t, 0.99)
    );
    println!(
        "  framework  p50 {op50:>7.1} µs  p99 {:>7.1} µs",
        pct(&mut our_t, 0.99)
    );
    println!(
        "  ratio p50 {:.3} (target <= 1.05); discovery requests during the run: {}",
        op50 / rp50,
        host.list_requests() - lists_before
    );

    // A cache hit: what each invocation pays for discovery once warm.
    let n = scaled(200_000, 1_000);
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(
            extend
                .discover(std::hint::black_box("acme"), "bench-host")
                .await
                .unwrap(),
        );
    }
    println!(
        "discovery cache hit: {:.0} ns per lookup ({n} lookups; target < 1000 ns)",
        t.elapsed().as_secs_f64() * 1e9 / n as f64
    );

    // Throughput at concurrency 32.
    for (name, framework) in [("raw POST ", false), ("framework", true)] {
        let done = Arc::new(AtomicU64::new(0));
        let secs = scaled(4, 1);
        let until = Instant::now() + Duration::from_secs(secs);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..32 {
            let (done, http, url, secret, body, acme) = (
                done.clone(),
                http.clone(),
                url.clone(),
                secret.clone(),
                body.clone(),
                acme.clone(),
            );
            tasks.spawn(async move {
                while Instant::now() < until {
                    if framework {
                        ours(acme.clone()).await;
                    } else {
                        raw(http.clone(), url.clone(), secret.clone(), body.clone()).await;
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        tasks.join_all().await;
        println!(
            "concurrency 32, {name}: {:.0} invocations/s",
            done.load(Ordering::Relaxed) as f64 / secs as f64
        );
    }
    host.shutdown().await.unwrap();
}
