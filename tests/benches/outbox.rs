//! The durable outbox against the in-memory queue, measured in the same run
//! (`cargo bench -p extend-hooks-tests --bench outbox`):
//!
//! 1. Enqueue latency of one caller (p50/p99): the in-memory queue, the
//!    SQLite outbox (WAL, `synchronous = NORMAL`, and with `fsync(true)`),
//!    and PostgreSQL when `EXTEND_TEST_DATABASE_URL` is set.
//! 2. Enqueues per second from 8 threads at once: what group commit buys.
//! 3. Sustained invocations per second delivered to a real extend-host
//!    extension, in memory vs the SQLite outbox.

#![allow(missing_docs, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use extend_hooks::outbox::{OutboxConfig, RetrySchedule};
use extend_hooks::{Container, Extend, ExtendBuilder, extension_point};
use serde::Serialize;

#[derive(Serialize, schemars::JsonSchema)]
struct Event {
    n: u64,
}

#[extension_point(name = "bench-event", mode = "async", timeout = "5s")]
fn bench_event(tenant: &Container, event: &Event);

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

struct Setup {
    host: extend_host::Host,
    dir: std::path::PathBuf,
}

/// A short schedule, so that a rare failed delivery does not wait minutes.
fn quick(config: OutboxConfig) -> OutboxConfig {
    config.retry_schedule(RetrySchedule::new([Duration::from_millis(50); 10]))
}

/// A client that counts deliveries: with `config`'s outbox, or with an
/// in-memory queue large enough for every enqueue measured.
fn builder(s: &Setup, delivered: Arc<AtomicU64>, config: Option<OutboxConfig>) -> ExtendBuilder {
    let b = Extend::builder()
        .webtask(s.host.url(), s.host.master_token())
        .on_outcome(move |_| {
            delivered.fetch_add(1, Ordering::Relaxed);
        });
    match config {
        Some(c) => b.outbox(quick(c)),
        None => b.async_queue_capacity(1_000_000),
    }
}

/// One caller's enqueue latencies.
fn latencies(extend: &Extend, n: u64) -> Vec<Duration> {
    let acme = extend.container("acme");
    (0..n)
        .map(|i| {
            let t = Instant::now();
            bench_event(&acme, &Event { n: i }).unwrap();
            t.elapsed()
        })
        .collect()
}

/// Enqueues per second from `threads` callers at once.
fn parallel(extend: &Extend, threads: u64, each: u64) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let acme = extend.container("acme");
            s.spawn(move || {
                for i in 0..each {
                    bench_event(&acme, &Event { n: t * each + i }).unwrap();
                }
            });
        }
    });
    (threads * each) as f64 / start.elapsed().as_secs_f64()
}

async fn drain(extend: Extend, delivered: &AtomicU64, want: u64) {
    while delivered.load(Ordering::Relaxed) < want {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    extend.shutdown(Duration::from_secs(30)).await;
}

async fn run() {
    extend_hooks::install_crypto_provider();
    // Deliveries are not what is measured here: let the host take them all.
    let mut limits = extend_host::Limits::default();
    limits.in_flight_per_container = 100_000;
    limits.cpu_per_second = 2.0;
    let host = extend_host::Host::builder()
        .memory()
        .limits(limits)
        .start()
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("extend-outbox-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let s = Setup { host, dir };
    let admin = Extend::builder()
        .webtask(s.host.url(), s.host.master_token())
        .build()
        .unwrap();
    admin
        .management()
        .unwrap()
        .install(
            "acme",
            "bench-event",
            "sink",
            "module.exports = (ctx, cb) => cb();",
        )
        .await
        .unwrap();

    let n_calls: u64 = extend_hooks_tests::bench::scaled(5_000, 200);
    println!("1. enqueue latency, one caller, {n_calls} calls");
    let mut rows: Vec<(&str, f64, f64)> = Vec::new();
    let mut measure = |name: &'static str, config: Option<OutboxConfig>, n: u64| {
        let delivered = Arc::new(AtomicU64::new(0));
        let extend = builder(&s, Arc::clone(&delivered), config).build().unwrap();
        let mut l = tokio::task::block_in_place(|| latencies(&extend, n));
        let (p50, p99) = (pct(&mut l, 0.5), pct(&mut l, 0.99));
        rows.push((name, p50, p99));
        (extend, delivered)
    };
    let mut pending = Vec::new();
    pending.push(measure("in-memory queue", None, n_calls));
    pending.push(measure(
        "sqlite outbox",
        Some(OutboxConfig::sqlite(s.dir.join("a.sqlite"))),
        n_calls,
    ));
    pending.push(measure(
        "sqlite outbox, fsync",
        Some(OutboxConfig::sqlite(s.dir.join("b.sqlite")).fsync(true)),
        n_calls / 10,
    ));
    if let Ok(url) = std::env::var("EXTEND_TEST_DATABASE_URL") {
        pending.push(measure(
            "postgres outbox",
            Some(OutboxConfig::postgres(url)),
            n_calls / 5,
        ));
    }
    let base = rows[0].1;
    for (name, p50, p99) in &rows {
        println!(
            "   {name:<22} p50 {p50:>8.1} µs  p99 {p99:>8.1} µs  p50 {:>6.1}x the in-memory queue",
            p50 / base
        );
    }
    for ((extend, delivered), want) in
        pending
            .into_iter()
            .zip([n_calls, n_calls, n_calls / 10, n_calls / 5])
    {
        drain(extend, &delivered, want).await;
    }

    println!("2. enqueues per second, 8 callers at once");
    let mut rates = Vec::new();
    for (name, config) in [
        ("in-memory queue", None),
        (
            "sqlite outbox",
            Some(OutboxConfig::sqlite(s.dir.join("c.sqlite"))),
        ),
    ] {
        let delivered = Arc::new(AtomicU64::new(0));
        let extend = builder(&s, Arc::clone(&delivered), config).build().unwrap();
        let rate = tokio::task::block_in_place(|| parallel(&extend, 8, n_calls / 8));
        rates.push((name, rate));
        drain(extend, &delivered, n_calls).await;
    }
    for (name, rate) in &rates {
        println!(
            "   {name:<22} {rate:>10.0}/s  {:>5.2}x the in-memory queue",
            rate / rates[0].1
        );
    }

    println!("3. sustained deliveries to a real extension, {n_calls} invocations");
    let mut sustained = Vec::new();
    for (name, config) in [
        ("in-memory queue", None),
        (
            "sqlite outbox",
            Some(OutboxConfig::sqlite(s.dir.join("d.sqlite"))),
        ),
    ] {
        let delivered = Arc::new(AtomicU64::new(0));
        let extend = builder(&s, Arc::clone(&delivered), config).build().unwrap();
        let start = Instant::now();
        tokio::task::block_in_place(|| latencies(&extend, n_calls));
        drain(extend, &delivered, n_calls).await;
        sustained.push((name, n_calls as f64 / start.elapsed().as_secs_f64()));
    }
    for (name, rate) in &sustained {
        println!(
            "   {name:<22} {rate:>10.0}/s  {:>5.2}x the in-memory queue",
            rate / sustained[0].1
        );
    }
    s.host.shutdown().await.unwrap();
    std::fs::remove_dir_all(&s.dir).unwrap();
}
