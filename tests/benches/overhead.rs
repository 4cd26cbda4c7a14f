//! Benchmarks of issue #2, printed as ratios against baselines measured in the
//! same run (these machines are noisy; absolute figures are not comparable).
//!
//! 1. A sync invocation through the framework vs a raw reqwest POST of the same
//!    bytes to the same loopback endpoint.
//! 2. `Catalog::collect()` with 1,000 points linked in.
//! 3. Queuing 100,000 async invocations against a slow endpoint: peak RSS stays
//!    bounded by the queue capacity.
//!
//! Run: `cargo bench -p extend-hooks-tests --bench overhead`.

#![allow(missing_docs, unreachable_pub)]

use std::time::{Duration, Instant};

use extend_hooks::discovery::{Endpoint, StaticDiscovery};
use extend_hooks::{Catalog, Container, ErrorKind, Extend, extension_point};
use extend_hooks_examples::{LeadDecision, NewLead, lead_archived, on_new_lead};
use extend_hooks_tests::bench::scaled;

mod points {
    use super::*;
    include!(concat!(env!("OUT_DIR"), "/bench_points.rs"));
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn percentile(v: &[Duration], p: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p) as usize]
}

/// A `/proc/self/status` memory figure in KiB: `VmHWM` (peak) or `VmRSS` (now).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[extension_point(name = "bench-sync", timeout = "5s")]
async fn bench_sync(tenant: &Container, lead: &NewLead) -> LeadDecision;

async fn sync_overhead() {
    let server = extend_hooks_tests::extensions().await;
    let url = server.url("/score");
    extend_hooks::install_crypto_provider();
    let http = reqwest::Client::new();
    let extend = Extend::builder()
        .discovery(StaticDiscovery::new().with(
            "acme",
            "bench-sync",
            Endpoint::new(&url).unwrap().with_secret("s"),
        ))
        .http_client(http.clone())
        .build()
        .unwrap();
    let acme = extend.container("acme");
    let lead = NewLead {
        name: "Ada".into(),
        email: "ada@example.com".into(),
        company: Some("Analytical Engines".into()),
    };
    let bytes = bytes::Bytes::from(serde_json::to_vec(&lead).unwrap());

    let raw = || async {
        let started = Instant::now();
        let response = http
            .post(&url)
            .header("content-type", "application/json")
            .bearer_auth("s")
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        let body = response.bytes().await.unwrap();
        let decision: LeadDecision = serde_json::from_slice(&body).unwrap();
        assert_eq!(decision.score, 90);
        started.elapsed()
    };
    let framework = || async {
        let started = Instant::now();
        let decision = bench_sync(&acme, &lead).await.unwrap().unwrap();
        assert_eq!(decision.score, 90);
        started.elapsed()
    };
    for _ in 0..scaled(500, 10) {
        raw().await;
        framework().await;
    }
    // Interleaved rounds so drift on the machine hits both sides alike.
    let (mut raw_times, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..scaled(40, 2) {
        for _ in 0..100 {
            raw_times.push(raw().await);
        }
        for _ in 0..100 {
            ours.push(framework().await);
        }
    }
    let (raw_p50, our_p50) = (median(raw_times.clone()), median(ours.clone()));
    println!(
        "sync invocation vs raw reqwest POST (loopback, {} calls each)",
        raw_times.len()
    );
    println!(
        "  raw      p50 {:>8.1} us  p99 {:>8.1} us",
        raw_p50.as_secs_f64() * 1e6,
        percentile(&raw_times, 0.99).as_secs_f64() * 1e6
    );
    println!(
        "  ours     p50 {:>8.1} us  p99 {:>8.1} us",
        our_p50.as_secs_f64() * 1e6,
        percentile(&ours, 0.99).as_secs_f64() * 1e6
    );
    println!(
        "  ratio p50 {:.3} (target <= 1.10)",
        our_p50.as_secs_f64() / raw_p50.as_secs_f64()
    );
    let _ = on_new_lead; // keep the examples crate's points linked
}

fn catalog_collect() {
    let _ = points::bench_point_0;
    let mut times = Vec::new();
    let mut len = 0;
    for _ in 0..scaled(200, 10) {
        let started = Instant::now();
        let catalog = Catalog::collect().unwrap();
        times.push(started.elapsed());
        len = catalog.len();
    }
    println!("Catalog::collect() with {len} points");
    println!(
        "  p50 {:>8.1} us  p99 {:>8.1} us (target < 1 ms)",
        median(times.clone()).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6
    );
}

async fn async_queue_memory() {
    let server = extend_hooks_tests::extensions().await;
    const CAPACITY: usize = 10_000;
    let extend = Extend::builder()
        .discovery(StaticDiscovery::new().with(
            "acme",
            "lead-archived",
            Endpoint::new(&server.url("/slow/60000")).unwrap(),
        ))
        .async_queue_capacity(CAPACITY)
        .build()
        .unwrap();
    let acme = extend.container("acme");
    let lead = NewLead {
        name: "Ada".into(),
        email: "ada@example.com".into(),
        company: None,
    };
    let before = status_kib("VmRSS:");
    let (mut queued, mut full) = (0, 0);
    let mut rss_at_capacity = 0;
    let started = std::time::Instant::now();
    let mut to_capacity = Duration::ZERO;
    for i in 0..100_000 {
        match lead_archived(&acme, &lead, "benchmark") {
            Ok(()) => queued += 1,
            Err(e) if matches!(e.kind(), ErrorKind::QueueFull { .. }) => full += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
        if i == CAPACITY {
            rss_at_capacity = status_kib("VmRSS:");
            to_capacity = started.elapsed();
        }
        if i % 1000 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let took = started.elapsed();
    let after = status_kib("VmRSS:");
    println!("queuing 100,000 async invocations against a 60 s endpoint (capacity {CAPACITY})");
    println!(
        "  queued {queued}, refused as QueueFull {full}; {:.2} us per accepted call, {:.2} us per refused one",
        to_capacity.as_secs_f64() * 1e6 / CAPACITY as f64,
        (took - to_capacity).as_secs_f64() * 1e6 / (100_000 - CAPACITY) as f64
    );
    println!(
        "  RSS before {before} KiB, at capacity {rss_at_capacity} KiB, after 100,000 {after} KiB, peak {} KiB",
        status_kib("VmHWM:")
    );
    println!(
        "  growth after capacity was reached: {} KiB ({:.3}x of the growth up to capacity)",
        after.saturating_sub(rss_at_capacity),
        after.saturating_sub(rss_at_capacity) as f64
            / rss_at_capacity.saturating_sub(before).max(1) as f64
    );
    let report = extend.shutdown(Duration::from_millis(100)).await;
    println!(
        "  shutdown dropped {} (all of them, by design)",
        report.dropped
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    catalog_collect();
    runtime.block_on(sync_overhead());
    runtime.block_on(async_queue_memory());
}
