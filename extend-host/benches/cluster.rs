//! The multi-node benchmark (`cargo bench -p extend-host --bench cluster`;
//! needs `wrk` and a PostgreSQL server in `EXTEND_TEST_DATABASE_URL`). In one
//! run on one machine:
//!
//! - management write latency, p50/p99 over 500 PUTs: SQLite (file, fsync)
//!   against PostgreSQL;
//! - change-visible latency over 1,000 updates: from the 200 of a PUT on
//!   node A to (a) the first run on node B that executes the new code and
//!   (b) the change event on node B's `GET /api/changes`, p50/p99;
//! - run throughput at c=32 with two nodes on one database against one
//!   node. On a 2-core machine both nodes share the cores: this checks
//!   correctness under load (no errors), not a speed-up.

mod support;

use extend_host::{Host, KeyEncryptionKey, Limits};
use serde_json::json;
use std::time::{Duration, Instant};
use support::{Load, median, pct, put, scaled, wrk};

const CODE: &str = "module.exports = function (ctx, cb) { cb(null, { score: ctx.body.x * 2 }); };";
const WORKER: &str = env!("CARGO_BIN_EXE_extend-host");

/// Limits that let a benchmark write as fast as it can.
fn unthrottled() -> Limits {
    let mut l = Limits::default();
    l.writes_per_second = 1e9;
    l.write_burst = u32::MAX;
    l
}

async fn writes(http: &reqwest::Client, host: &Host) -> (f64, f64) {
    let mut took = Vec::new();
    for i in 0..scaled(500, 20) {
        let start = Instant::now();
        put(http, host, &format!("c{}", i % 50), &format!("w{i}"), CODE).await;
        took.push(start.elapsed());
    }
    (pct(&mut took, 0.5), pct(&mut took, 0.99))
}

fn main() {
    let Ok(admin) = std::env::var("EXTEND_TEST_DATABASE_URL") else {
        eprintln!(
            "the cluster benchmark needs EXTEND_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test"
        );
        std::process::exit(2);
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let name = format!("extend_bench_{}", std::process::id());
    let url = format!("{}/{name}", &admin[..admin.rfind('/').unwrap()]);
    let admin_client = rt.block_on(async {
        let (c, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        c
    });
    let dir = std::env::temp_dir().join(format!("extend-cluster-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kek = KeyEncryptionKey::generate();
    let node = |rt: &tokio::runtime::Runtime| {
        rt.block_on(
            Host::builder()
                .database(&url)
                .key_encryption_key(kek.clone())
                .worker_program(WORKER)
                .limits(unthrottled())
                .start(),
        )
        .unwrap()
    };
    let a = node(&rt);
    let b = node(&rt);
    let sqlite = rt
        .block_on(
            Host::builder()
                .data_dir(dir.join("sqlite"))
                .worker_program(WORKER)
                .limits(unthrottled())
                .start(),
        )
        .unwrap();

    println!(
        "# extend-host cluster benchmark (two nodes in this process on one PostgreSQL database)"
    );
    let (s50, s99) = rt.block_on(writes(&http, &sqlite));
    let (p50, p99) = rt.block_on(writes(&http, &a));
    println!(
        "management PUT, {} sequential: SQLite p50 {s50:.0} µs p99 {s99:.0} µs | PostgreSQL p50 {p50:.0} µs p99 {p99:.0} µs | ratio p50 {:.2}",
        scaled(500, 20),
        p50 / s50
    );

    let (runs, events) = rt.block_on(propagation(&http, &a, &b));
    let (mut runs, mut events) = (runs, events);
    println!(
        "change visible on node B after a PUT on node A, {} updates: next run executes the new code p50 {:.0} µs p99 {:.0} µs (target < 100 ms); change event on B's /api/changes p50 {:.0} µs p99 {:.0} µs",
        runs.len(),
        pct(&mut runs, 0.5),
        pct(&mut runs, 0.99),
        pct(&mut events, 0.5),
        pct(&mut events, 0.99),
    );

    rt.block_on(put(&http, &a, "bench", "double", CODE));
    let script = dir.join("post.lua");
    std::fs::write(&script, "wrk.method = \"POST\"\nwrk.body = '{\"x\":21}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n").unwrap();
    let (ua, ub) = (
        a.webtask_url("bench", "double"),
        b.webtask_url("bench", "double"),
    );
    wrk(&ua, 32, 1, &script);
    wrk(&ub, 32, 1, &script);
    let (rounds, secs) = (scaled(3, 1), scaled(4, 1));
    let one: Load = median((0..rounds).map(|_| wrk(&ua, 32, secs, &script)).collect());
    let mut two = Vec::new();
    for _ in 0..rounds {
        let (x, y) = std::thread::scope(|s| {
            let x = s.spawn(|| wrk(&ua, 16, secs, &script));
            let y = s.spawn(|| wrk(&ub, 16, secs, &script));
            (x.join().unwrap(), y.join().unwrap())
        });
        two.push(Load {
            rps: x.rps + y.rps,
            p50_us: x.p50_us.max(y.p50_us),
            p99_us: x.p99_us.max(y.p99_us),
            errors: x.errors + y.errors,
            requests: x.requests + y.requests,
        });
    }
    let two = median(two);
    println!(
        "runs at c=32: one node {:.0} req/s (p99 {:.0} µs, errors {}) | two nodes, c=16 each {:.0} req/s (p99 {:.0} µs, errors {}) | ratio {:.2} (2 cores shared by both nodes: correctness under load, not a speed-up)",
        one.rps,
        one.p99_us,
        one.errors,
        two.rps,
        two.p99_us,
        two.errors,
        two.rps / one.rps
    );

    drop((a, b, sqlite));
    rt.block_on(async {
        admin_client
            .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .await
            .unwrap();
    });
    let _ = std::fs::remove_dir_all(dir);
    std::process::exit(0);
}

/// 1,000 updates on `a`; after each 200, how long until `b` runs the new
/// code, and until `b`'s change stream reports it.
async fn propagation(http: &reqwest::Client, a: &Host, b: &Host) -> (Vec<Duration>, Vec<Duration>) {
    put(http, a, "prop", "w", "module.exports = cb => cb(null, -1)").await;
    let mut stream = http
        .get(format!("{}/api/changes?container=prop", b.url()))
        .bearer_auth(b.master_token())
        .send()
        .await
        .unwrap();
    let mut buf = String::new();
    while !buf.contains(": connected") {
        buf.push_str(std::str::from_utf8(&stream.chunk().await.unwrap().unwrap()).unwrap());
    }
    buf.clear();
    let run_url = b.webtask_url("prop", "w");
    let (mut runs, mut events) = (Vec::new(), Vec::new());
    for i in 0..scaled(1000, 20) {
        // B has the previous version cached.
        let before: serde_json::Value = http
            .post(&run_url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(before, json!(i - 1));
        put(
            http,
            a,
            "prop",
            "w",
            &format!("module.exports = cb => cb(null, {i})"),
        )
        .await;
        let written = Instant::now();
        let mut event = None;
        loop {
            let got: serde_json::Value = http
                .post(&run_url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if event.is_none() && buf.contains("event: webtask") {
                event = Some(written.elapsed());
            }
            if got == json!(i) {
                runs.push(written.elapsed());
                break;
            }
            // Collect whatever the stream has without waiting on it.
            if let Ok(Ok(Some(c))) = tokio::time::timeout(Duration::ZERO, stream.chunk()).await {
                buf.push_str(std::str::from_utf8(&c).unwrap());
            }
        }
        while event.is_none() {
            if let Some(c) = stream.chunk().await.unwrap() {
                buf.push_str(std::str::from_utf8(&c).unwrap());
            }
            if buf.contains("event: webtask") {
                event = Some(written.elapsed());
            }
        }
        events.push(event.unwrap());
        buf.clear();
    }
    (runs, events)
}
