//! One tenant's runaway code must not hold up the others: the noisy-neighbour
//! test and the watchdog's quarantine of a run stuck past its limit.

mod common;

use common::{LogStream, start_with};
use extend_host::Limits;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_tenant_does_not_hold_up_another() {
    let mut limits = Limits::default();
    limits.run_time = Duration::from_secs(10);
    limits.in_flight_per_container = 4;
    let env = start_with(limits).await;
    env.install(
        "noisy",
        "spin",
        "module.exports = (ctx, cb) => { console.log('spinning'); while (true) {} };",
    )
    .await;
    env.install(
        "quiet",
        "double",
        "module.exports = (ctx, cb) => cb(null, { score: ctx.body.x * 2 });",
    )
    .await;
    let mut logs = LogStream::open(&env, "noisy", env.master()).await;
    let spinners: Vec<_> = (0..4)
        .map(|_| {
            let (http, url) = (env.http.clone(), env.url("/api/run/noisy/spin"));
            tokio::spawn(async move { http.post(url).send().await.unwrap().status().as_u16() })
        })
        .collect();
    assert_eq!(logs.next_record().await["msg"], "spinning");
    // Wait until all four are admitted (a condition, polled).
    while env.host.runs_in_flight("noisy") < 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The spinners are at their limit: one more is refused.
    let (status, _, body) = env.run("noisy", "spin", json!({})).await;
    assert_eq!(status, 429, "{body}");

    // 200 runs from 4 concurrent clients: the victim's own in-flight limit is 4 too.
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..4i64 {
        let (http, url) = (env.http.clone(), env.url("/api/run/quiet/double"));
        clients.spawn(async move {
            let mut ok = 0;
            for i in (0..50).map(|i| c * 50 + i) {
                let r = http
                    .post(&url)
                    .json(&json!({ "x": i }))
                    .send()
                    .await
                    .unwrap();
                let (status, body) = (
                    r.status().as_u16(),
                    r.json::<serde_json::Value>().await.unwrap(),
                );
                assert_eq!((status, body), (200, json!({ "score": i * 2 })));
                ok += 1;
            }
            ok
        });
    }
    let done: i32 = clients.join_all().await.into_iter().sum();
    assert_eq!(done, 200);
    assert!(
        spinners.iter().all(|s| !s.is_finished()),
        "all 200 finished before the first spinner hit its 10 s limit"
    );
    // The spinning thread ends at its limit on its own; nobody waits for it.
    for s in spinners {
        s.abort();
    }
    drop(env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stuck_past_its_hard_limit_of_one_and_a_half_times_its_limit_quarantines_the_container_and_its_thread_is_replaced()
 {
    let mut limits = Limits::default();
    limits.run_time = Duration::from_millis(100);
    let env = common::Env::with_host(
        extend_host::Host::builder()
            .memory()
            .limits(limits)
            .workers(4)
            .start()
            .await
            .unwrap(),
    );
    // Builtins on fast arrays do not poll QuickJS's interrupt, which it checks
    // only every 10,000 ticks: this loop runs well past the 100 ms limit.
    env.install(
        "stuck",
        "includes",
        "const a = new Array(100000).fill(0); module.exports = (ctx, cb) => { console.log('looping'); for (;;) a.includes(1); };",
    )
    .await;
    env.install(
        "stuck",
        "ok",
        "module.exports = (ctx, cb) => cb(null, 'back');",
    )
    .await;
    env.install(
        "other",
        "ok",
        "module.exports = (ctx, cb) => cb(null, 'unaffected');",
    )
    .await;
    let mut logs = LogStream::open(&env, "stuck", env.master()).await;
    let started = std::time::Instant::now();
    let stuck = {
        let (http, url) = (env.http.clone(), env.url("/api/run/stuck/includes"));
        tokio::spawn(async move {
            let r = http.post(url).send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        })
    };
    assert_eq!(logs.next_record().await["msg"], "looping");
    // Wait for the watchdog's verdict (a condition, polled; not a fixed sleep).
    let replaced = async {
        while env.host.executor_stats().replaced == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), replaced)
        .await
        .expect("the watchdog writes off the stuck thread");
    assert!(
        !stuck.is_finished(),
        "the run is still stuck (overran {:?} so far)",
        started.elapsed()
    );
    assert_eq!(env.host.executor_stats().workers, 4, "capacity stays");
    let (status, source, body) = env.run("stuck", "ok", json!({})).await;
    assert_eq!((status, source.as_str()), (429, "proxy"), "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("stuck past its time limit"),
        "{body}"
    );
    assert_eq!(
        env.run("other", "ok", json!({})).await.2,
        json!("unaffected")
    );
    let (status, body) = stuck.await.unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (500, Some("Script exceeded the time limit."))
    );
    eprintln!("the stuck run ended after {:?}", started.elapsed());
    assert_eq!(
        env.run("stuck", "ok", json!({})).await.2,
        json!("back"),
        "out of quarantine once the run ended"
    );
}

/// Runs of a container go to its worker process several at a time. When
/// one of them never polls its interrupt, only that run is killed: the
/// runs sent ahead of it were answered as they ended (a worker that held
/// their answers back while running the next got them killed with it), and
/// the ones sent behind it run again in a new process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_stuck_run_of_those_sent_to_a_worker_together_is_killed() {
    let mut limits = Limits::default();
    limits.run_time = Duration::from_millis(300);
    let env = start_with(limits).await;
    // x < 0 never polls (indexOf on long strings); the others take 20 ms,
    // so that the queue holds several when the stuck one is sent.
    env.install(
        "mixed",
        "work",
        "const h = 'a'.repeat(1.2e5), n = 'a'.repeat(6e4) + 'b';
         module.exports = (ctx, cb) => {
           if (ctx.body.x < 0) return cb(null, h.indexOf(n));
           const until = Date.now() + 20; while (Date.now() < until) {}
           cb(null, { score: ctx.body.x * 2 });
         };",
    )
    .await;
    let run = |x: i64| {
        let (http, url) = (env.http.clone(), env.url("/api/run/mixed/work"));
        tokio::spawn(async move {
            let r = http
                .post(url)
                .json(&json!({ "x": x }))
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        })
    };
    let ahead: Vec<_> = (0..6).map(run).collect();
    while env.host.runs_in_flight("mixed") < 6 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let stuck = run(-1);
    let behind: Vec<_> = (10..14).map(run).collect();
    for (x, r) in (0..6).chain(10..14).zip(ahead.into_iter().chain(behind)) {
        assert_eq!(
            r.await.unwrap(),
            (200, json!({ "score": x * 2 })),
            "x = {x}"
        );
    }
    let (status, body) = stuck.await.unwrap();
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"], "Script exceeded the time limit.", "{body}");
}
