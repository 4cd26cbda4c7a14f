//! The throughput section: (a) our host with worker processes, (a') with
//! JavaScript on host threads, (b) the raw axum floor, (c) Node `http` +
//! `vm` and (d) workerd, at c=1 and c=32, with ratios paired per round, the
//! CPU split of a request and eight containers in turn.

use super::{CODE, round_count, secs};
use crate::support::{Load, median, put, wrk, wrk_cpu};
use extend_host::Host;
use serde_json::json;

/// The floor: a raw axum handler answering the same JSON.
pub(crate) async fn floor_server() -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/double",
        post(|axum::Json(v): axum::Json<serde_json::Value>| async move {
            axum::Json(json!({ "score": v["x"].as_i64().unwrap_or(0) * 2 }))
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/double", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    url
}

/// A wrk script that POSTs `{"x":21}` to `n` containers in turn.
fn rotating_script(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let path = dir.join("rotate.lua");
    std::fs::write(
        &path,
        format!(
            "local i = 0\nrequest = function()\n  i = i + 1\n  return wrk.format(\"POST\", \"/api/run/m\" .. (i % {n}) .. \"/double\", {{[\"Content-Type\"] = \"application/json\"}}, '{{\"x\":21}}')\nend\n"
        ),
    )
    .unwrap();
    path
}

/// Our host against the floor and Node, one container at c=1 and c=32, then
/// eight containers in turn at c=32 (runs of one container are serialised;
/// several spread over the workers).
#[allow(clippy::too_many_arguments)]
pub(crate) fn throughput(
    rt: &tokio::runtime::Runtime,
    http: &reqwest::Client,
    host: &Host,
    local: &Host,
    dir: &std::path::Path,
    script: &std::path::Path,
    [ours, in_process, floor, node_url]: [&str; 4],
    workerd: Option<&str>,
) {
    let mut targets = vec![
        ("(a) extend-host, workers", ours),
        ("(a') extend-host, in-process", in_process),
        ("(b) raw axum", floor),
        ("(c) node http+vm timeout", node_url),
    ];
    if let Some(url) = workerd {
        targets.push(("(d) workerd", url));
    }
    let mut results = Vec::new();
    // Per round, (a') against (b) measured just before or after it: this
    // machine's speed drifts by a third within minutes, so a ratio of two
    // medians taken minutes apart is mostly drift.
    let mut paired = Vec::new();
    let mut cost = Vec::new();
    for conns in [1u32, 32] {
        for (_, url) in &targets {
            wrk(url, conns, 1, script); // warm-up
        }
        let mut rounds: Vec<Vec<Load>> = vec![Vec::new(); targets.len()];
        for _ in 0..round_count() {
            for (i, (_, url)) in targets.iter().enumerate() {
                rounds[i].push(wrk(url, conns, secs(), script));
            }
        }
        // (a')/(b) per round, and the cost of worker processes, (a)/(a'),
        // paired the same way: throughput ratios and p50 ratios, each sorted.
        let pair = |x: &[Load], y: &[Load]| {
            let (mut t, mut p): (Vec<f64>, Vec<f64>) = x
                .iter()
                .zip(y)
                .map(|(x, y)| (x.rps / y.rps, x.p50_us / y.p50_us))
                .unzip();
            t.sort_by(f64::total_cmp);
            p.sort_by(f64::total_cmp);
            (t, p)
        };
        let (throughput, latency) = pair(&rounds[1], &rounds[2]);
        paired.push((conns, throughput, latency));
        let (throughput, p50) = pair(&rounds[0], &rounds[1]);
        cost.push((conns, throughput, p50));
        // Each round's p50 of (a) and (a'), in the order run: at c=1 the
        // latency is two-moded (docs/benchmarks.md), and a median of ratios
        // alone hides which mode each round caught.
        let p50s = |i: usize| {
            rounds[i]
                .iter()
                .map(|l| format!("{:.0}", l.p50_us))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "c={conns:<2} p50 by round, µs: (a) {}; (a') {}",
            p50s(0),
            p50s(1)
        );
        for (i, (name, _)) in targets.iter().enumerate() {
            let m = median(rounds[i].clone());
            println!(
                "c={conns:<2} {name:<30} {:>9.0} req/s  p50 {:>7.0} µs  p99 {:>7.0} µs  errors {}",
                m.rps, m.p50_us, m.p99_us, m.errors
            );
            results.push((conns, i, m));
        }
    }
    let get = |c: u32, i: usize| {
        results
            .iter()
            .find(|(cc, ii, _)| *cc == c && *ii == i)
            .unwrap()
            .2
    };
    for c in [1, 32] {
        println!(
            "c={c:<2} throughput (a)/(b) = {:.2}, (a')/(b) = {:.2}   p50 (a)/(b) = {:.2}×, (a')/(b) = {:.2}×   (a)/(c) = {:.2}   (a)/(a') = {:.2} (the cost of worker processes)",
            get(c, 0).rps / get(c, 2).rps,
            get(c, 1).rps / get(c, 2).rps,
            get(c, 0).p50_us / get(c, 2).p50_us,
            get(c, 1).p50_us / get(c, 2).p50_us,
            get(c, 0).rps / get(c, 3).rps,
            get(c, 0).rps / get(c, 1).rps,
        );
        if workerd.is_some() {
            println!(
                "c={c:<2} (a)/(d) = {:.2} (goal >= 3 at c=32), p50 (a)/(d) = {:.2}×",
                get(c, 0).rps / get(c, 4).rps,
                get(c, 0).p50_us / get(c, 4).p50_us,
            );
        }
    }
    let range = |v: &[f64]| {
        format!(
            "{:.2} ({:.2} to {:.2})",
            v[v.len() / 2],
            v[0],
            v[v.len() - 1]
        )
    };
    for (conns, throughput, latency) in &paired {
        println!(
            "c={conns:<2} paired by round, median (min to max) of {} rounds: throughput (a')/(b) = {}, p50 (a')/(b) = {}×",
            throughput.len(),
            range(throughput),
            range(latency),
        );
    }
    for (conns, throughput, latency) in &cost {
        println!(
            "c={conns:<2} paired by round, median (min to max) of {} rounds: throughput (a)/(a') = {} (goal >= 0.9 at c=32), p50 (a)/(a') = {}× (goal <= 1.5 at c=1)",
            throughput.len(),
            range(throughput),
            range(latency),
        );
    }
    println!("targets: c=32 throughput >= 0.8 of (b); c=1 p50 <= 1.5× (b)'s; (a)/(c) at c=32 >= 3");
    cpu_split(in_process, floor, script);
    let rotate = rotating_script(dir, 8);
    let mut multi = Vec::new();
    for h in [host, local] {
        rt.block_on(async {
            for i in 0..8 {
                put(http, h, &format!("m{i}"), "double", CODE).await;
            }
        });
        let base = format!("{}/", h.url());
        wrk(&base, 32, 1, &rotate);
        multi.push(median(
            (0..round_count())
                .map(|_| wrk(&base, 32, secs(), &rotate))
                .collect(),
        ));
    }
    println!(
        "c=32, 8 containers in turn: workers {:.0} req/s (p99 {:.0} µs), in-process {:.0} req/s (p99 {:.0} µs): ratio {:.2}; workers / raw axum {:.2}",
        multi[0].rps,
        multi[0].p99_us,
        multi[1].rps,
        multi[1].p99_us,
        multi[0].rps / multi[1].rps,
        multi[0].rps / get(32, 2).rps
    );
}

/// Where the CPU of a request goes at c=32, in-process against the floor,
/// by thread (all hosts here share this process's tokio runtime; the
/// in-process executor's threads are `extend-host-js`). Linux only.
fn cpu_split(in_process: &str, floor: &str, script: &std::path::Path) {
    let total = |split: &[(String, f64)]| split.iter().map(|(_, us)| us).sum::<f64>();
    let named = |split: &[(String, f64)], name: &str| {
        split
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, us)| us)
            .sum::<f64>()
    };
    let (_, floor_split) = wrk_cpu(floor, 32, secs(), script);
    let (_, ours) = wrk_cpu(in_process, 32, secs(), script);
    if floor_split.is_empty() || ours.is_empty() {
        println!("c=32 CPU per request: not measured (needs Linux's /proc/self/task/*/schedstat)");
        return;
    }
    let (floor_us, ours_us) = (total(&floor_split), total(&ours));
    let js = named(&ours, "extend-host-js");
    println!(
        "c=32 CPU per request in this process: (b) {floor_us:.1} µs; (a') {ours_us:.1} µs ({:.2}× (b)) = tokio {:.1} + JavaScript threads {js:.1} + other {:.1}; the JavaScript threads alone use {:.2}× (b)'s whole server side",
        ours_us / floor_us,
        named(&ours, "tokio-rt-worker"),
        ours_us - js - named(&ours, "tokio-rt-worker"),
        js / floor_us,
    );
}
