//! The durable outbox against a real extend-host: a platform process killed
//! with SIGKILL loses none of the invocations it recorded; a dead letter is
//! replayed after the tenant fixes the extension, with the same delivery
//! id; two replicas share one PostgreSQL outbox without delivering an
//! invocation twice.
//!
//! Deliveries are counted from the extension's own `console.log` lines on
//! the host's log stream: each line names the delivery id the extension got
//! in `x-extend-delivery-id`.

#[path = "../../extend-host/tests/common/pg.rs"]
#[allow(unreachable_pub)]
mod pg;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use extend_hooks::outbox::{DeadLetterFilter, OutboxConfig, RetrySchedule};
use extend_hooks::{Container, Extend, OutcomeStatus, extension_point};
use extend_host::Host;
use serde::Serialize;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

#[derive(Serialize, schemars::JsonSchema)]
struct Event {
    n: u32,
}

/// Declared the same way in `src/bin/outbox-child.rs`.
#[extension_point(name = "durable-event", mode = "async", timeout = "1s")]
fn durable_event(tenant: &Container, event: &Event);

/// The same kind of event from async code: declared `async fn`, so the call
/// awaits the outbox's commit instead of blocking its thread.
#[extension_point(name = "durable-event-awaited", mode = "async", timeout = "1s")]
async fn durable_event_awaited(tenant: &Container, event: &Event);

/// Logs which delivery it got, after a little work.
const RECORDER: &str = "module.exports = function (ctx, cb) {
  const until = Date.now() + 2; while (Date.now() < until) {}
  console.log('delivery ' + ctx.headers['x-extend-delivery-id'] + ' ' + ctx.body.n);
  cb();
};";

/// What the extension logged: `(delivery id, n)` per line, in order.
fn follow_logs(url: &str, token: &str) -> mpsc::UnboundedReceiver<(String, u32)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let url = format!("{url}/api/logs/tenant/acme?key={token}");
    let (opened_tx, opened) = std::sync::mpsc::sync_channel(1);
    tokio::spawn(async move {
        let resp = reqwest::get(url).await.unwrap();
        assert_eq!(resp.status(), 200);
        let mut stream = resp;
        let mut buf = String::new();
        let mut told = false;
        while let Ok(Some(chunk)) = stream.chunk().await {
            if !told {
                // The first chunk is the `: connected` comment: subscribed.
                let _ = opened_tx.send(());
                told = true;
            }
            buf.push_str(std::str::from_utf8(&chunk).unwrap());
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                let Some(data) = event.strip_prefix("data: ") else {
                    continue;
                };
                let record: serde_json::Value = serde_json::from_str(data.trim()).unwrap();
                let msg = record["msg"].as_str().unwrap_or_default();
                assert!(
                    !msg.contains("were dropped"),
                    "the test's log reader fell behind: {msg}"
                );
                if let Some(rest) = msg.strip_prefix("delivery ") {
                    let (id, n) = rest.split_once(' ').unwrap();
                    let _ = tx.send((id.to_owned(), n.parse().unwrap()));
                }
            }
        }
    });
    opened
        .recv_timeout(Duration::from_secs(10))
        .expect("the log stream opens");
    rx
}

async fn host_with_recorder() -> (Host, Extend) {
    extend_hooks::install_crypto_provider();
    let host = Host::builder().memory().start().await.unwrap();
    let admin = Extend::builder()
        .webtask(host.url(), host.master_token())
        .build()
        .unwrap();
    admin
        .management()
        .unwrap()
        .install("acme", "durable-event", "recorder", RECORDER)
        .await
        .unwrap();
    (host, admin)
}

/// Starts `outbox-child` on the outbox `(variable, value)` names, waits
/// until it says all `count` invocations are recorded, and SIGKILLs it.
async fn record_then_kill(host: &Host, outbox: (&str, &std::ffi::OsStr), count: u32) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_outbox-child"))
        .env("EXTEND_URL", host.url())
        .env("EXTEND_TOKEN", host.master_token())
        .env(outbox.0, outbox.1)
        .env("OUTBOX_COUNT", count.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = tokio::process::ChildStdout::from_std(child.stdout.take().unwrap()).unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let said = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the child records its invocations")
        .unwrap();
    assert_eq!(said, Some(format!("queued {count}")));
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Collects deliveries until every `n` below `count` was seen; returns
/// the delivery ids seen per `n` and how many lines there were.
async fn until_all(
    logs: &mut mpsc::UnboundedReceiver<(String, u32)>,
    count: u32,
    within: Duration,
) -> (BTreeMap<u32, BTreeSet<String>>, usize) {
    let mut seen: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
    let mut lines = 0;
    let deadline = tokio::time::Instant::now() + within;
    while seen.len() < count as usize {
        let (id, n) = tokio::time::timeout_at(deadline, logs.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} delivered in {within:?}", seen.len()))
            .expect("the log stream ended");
        lines += 1;
        seen.entry(n).or_default().insert(id);
    }
    (seen, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_platform_loses_none_of_its_recorded_invocations() {
    const COUNT: u32 = 1000;
    let (host, _admin) = host_with_recorder().await;
    let mut logs = follow_logs(host.url(), host.master_token());
    let dir = std::env::temp_dir().join(format!("extend-outbox-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("outbox.sqlite");

    // Every call returned Ok: all of them are on disk. Killed mid-delivery.
    record_then_kill(&host, ("OUTBOX_PATH", path.as_os_str()), COUNT).await;

    // A new process opens the same outbox and delivers the rest at once:
    // the dead process's leases are taken back when the file opens.
    let reopened = std::time::Instant::now();
    let extend = Extend::builder()
        .webtask(host.url(), host.master_token())
        .outbox(
            OutboxConfig::sqlite(&path)
                .concurrency(8)
                .retry_schedule(RetrySchedule::new([Duration::from_millis(100); 20])),
        )
        .build()
        .unwrap();
    let (seen, lines) = until_all(&mut logs, COUNT, Duration::from_secs(30)).await;
    eprintln!(
        "every invocation delivered {:?} after the restarted process opened the outbox",
        reopened.elapsed()
    );
    let outbox = extend.outbox().unwrap();
    let mut left = outbox.pending().await.unwrap();
    while !left.is_empty() {
        // The last deliveries' outcomes are being written.
        tokio::task::yield_now().await;
        left = outbox.pending().await.unwrap();
    }
    assert!(
        outbox
            .dead_letters(&DeadLetterFilter::all())
            .await
            .unwrap()
            .is_empty()
    );
    // None lost; a repeated delivery (one the kill interrupted: at most
    // the 16 a container has in flight) carries the same id.
    assert_eq!(seen.len(), COUNT as usize);
    let ids: BTreeSet<&String> = seen.values().flatten().collect();
    assert_eq!(ids.len(), COUNT as usize, "one delivery id per invocation");
    assert!(seen.values().all(|ids| ids.len() == 1));
    let duplicates = lines - COUNT as usize;
    eprintln!("{COUNT} invocations: {lines} deliveries, {duplicates} repeated after the kill");
    assert!(duplicates <= 16, "{duplicates} duplicates");

    extend.shutdown(Duration::from_secs(5)).await;
    host.shutdown().await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_replayed_with_its_delivery_id_after_the_fix() {
    let (host, admin) = host_with_recorder().await;
    let admin = admin.management().unwrap();
    admin
        .install(
            "acme",
            "durable-event",
            "recorder",
            "module.exports = (ctx, cb) => cb(new Error('not yet'))",
        )
        .await
        .unwrap();
    let mut logs = follow_logs(host.url(), host.master_token());
    let dir = std::env::temp_dir().join(format!("extend-outbox-dead-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (outcomes_tx, mut outcomes) = mpsc::unbounded_channel();
    let extend = Extend::builder()
        .webtask(host.url(), host.master_token())
        .outbox(
            OutboxConfig::sqlite(dir.join("outbox.sqlite"))
                .retry_schedule(RetrySchedule::new([Duration::from_millis(20); 2])),
        )
        .on_outcome(move |o| {
            let delivered = matches!(o.status, OutcomeStatus::Delivered { .. });
            let _ = outcomes_tx.send((delivered, o.attempts, o.delivery_id.clone()));
        })
        .build()
        .unwrap();
    durable_event(&extend.container("acme"), &Event { n: 7 }).unwrap();
    let (delivered, attempts, id) = outcomes.recv().await.unwrap();
    assert_eq!(
        (delivered, attempts),
        (false, 3),
        "three attempts, then a dead letter"
    );
    let outbox = extend.outbox().unwrap();
    let dead = outbox.dead_letters(&DeadLetterFilter::all()).await.unwrap();
    assert_eq!(dead.len(), 1);
    let letter = &dead[0];
    assert_eq!(Some(letter.id.as_str()), id.as_deref());
    assert_eq!(
        (letter.point.as_str(), letter.container.as_str()),
        ("durable-event", "acme")
    );
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&letter.body).unwrap(),
        serde_json::json!({"n": 7})
    );
    assert_eq!(letter.attempts.len(), 3);
    assert!(
        letter
            .attempts
            .iter()
            .all(|a| a.status.is_some_and(|s| s >= 400)),
        "{:?}",
        letter.attempts
    );
    assert!(
        letter.attempts[2].error.contains("not yet"),
        "{}",
        letter.attempts[2].error
    );
    assert!(outbox.pending().await.unwrap().is_empty());
    // Filters that match nothing revive nothing.
    assert_eq!(
        outbox
            .replay(&DeadLetterFilter::all().container("globex"))
            .await
            .unwrap(),
        0
    );

    // The tenant fixes the extension; the platform replays the dead letter.
    extend
        .management()
        .unwrap()
        .install("acme", "durable-event", "recorder", RECORDER)
        .await
        .unwrap();
    assert_eq!(
        outbox
            .replay(&DeadLetterFilter::id(&letter.id))
            .await
            .unwrap(),
        1
    );
    let (delivered, attempts, replayed) = outcomes.recv().await.unwrap();
    assert_eq!(
        (delivered, attempts),
        (true, 4),
        "the three failed before the dead letter, and the replay"
    );
    assert_eq!(replayed, id, "a replay keeps the delivery id");
    let (logged_id, n) = logs.recv().await.unwrap();
    assert_eq!((Some(logged_id.as_str()), n), (id.as_deref(), 7));
    assert!(
        outbox
            .dead_letters(&DeadLetterFilter::all())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(outbox.purge(Duration::ZERO).await.unwrap(), 0);

    extend.shutdown(Duration::from_secs(5)).await;
    host.shutdown().await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_a_postgres_outbox_and_deliver_each_invocation_once() {
    if !pg::postgres_enabled() {
        return;
    }
    let db = pg::TestDb::create().await;
    const EACH: u32 = 200;
    let (host, _admin) = host_with_recorder().await;
    let mut logs = follow_logs(host.url(), host.master_token());
    let delivered_by: Arc<Mutex<[u32; 2]>> = Arc::default();
    let replica = |i: usize| {
        let counts = Arc::clone(&delivered_by);
        Extend::builder()
            .webtask(host.url(), host.master_token())
            .outbox(OutboxConfig::postgres(&db.url).concurrency(4))
            .on_outcome(move |o| {
                if matches!(o.status, OutcomeStatus::Delivered { .. }) {
                    counts.lock().unwrap()[i] += 1;
                }
            })
            .build()
            .unwrap()
    };
    let (a, b) = (replica(0), replica(1));
    let (ta, tb) = (a.clone(), b.clone());
    let one = tokio::task::spawn_blocking(move || {
        let acme = ta.container("acme");
        (0..EACH).for_each(|n| durable_event(&acme, &Event { n }).unwrap());
    });
    let two = tokio::task::spawn_blocking(move || {
        let acme = tb.container("acme");
        (EACH..2 * EACH).for_each(|n| durable_event(&acme, &Event { n }).unwrap());
    });
    one.await.unwrap();
    two.await.unwrap();
    let (seen, lines) = until_all(&mut logs, 2 * EACH, Duration::from_secs(120)).await;
    assert_eq!(lines, 2 * EACH as usize, "no invocation delivered twice");
    assert!(seen.values().all(|ids| ids.len() == 1));
    let counts = *delivered_by.lock().unwrap();
    eprintln!(
        "delivered by replica A: {}, by replica B: {}",
        counts[0], counts[1]
    );
    assert!(
        counts[0] > 0 && counts[1] > 0,
        "both replicas deliver: {counts:?}"
    );
    a.shutdown(Duration::from_secs(5)).await;
    b.shutdown(Duration::from_secs(5)).await;
    host.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_replicas_building_at_once_on_a_fresh_database_all_start() {
    if !pg::postgres_enabled() {
        return;
    }
    for round in 0..3 {
        let db = pg::TestDb::create().await;
        let (host, _admin) = host_with_recorder().await;
        // Ten platform processes' replicas: each builds on its own thread.
        let builds: Vec<_> = (0..10)
            .map(|_| {
                let (url, token, db_url, runtime) = (
                    host.url().to_owned(),
                    host.master_token().to_owned(),
                    db.url.clone(),
                    tokio::runtime::Handle::current(),
                );
                std::thread::spawn(move || {
                    let _in = runtime.enter();
                    Extend::builder()
                        .webtask(url, token)
                        .outbox(OutboxConfig::postgres(&db_url))
                        .build()
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        let mut started = Vec::new();
        for b in builds {
            match b.join().unwrap() {
                Ok(extend) => started.push(extend),
                Err(e) => panic!("round {round}: a replica did not start: {e}"),
            }
        }
        for extend in started {
            extend.shutdown(Duration::from_secs(5)).await;
        }
        host.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_that_accepts_and_never_answers_fails_the_build_in_ten_seconds() {
    // A purpose-built silent server: it takes connections and says nothing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&held);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            keep.lock().unwrap().push(conn);
        }
    });
    let runtime = tokio::runtime::Handle::current();
    let started = std::time::Instant::now();
    let built = tokio::task::spawn_blocking(move || {
        let _in = runtime.enter();
        Extend::builder()
            .webtask("http://127.0.0.1:9", "token")
            .outbox(OutboxConfig::postgres(format!(
                "postgres://postgres@127.0.0.1:{port}/test"
            )))
            .build()
            .map(drop)
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap();
    let took = started.elapsed();
    let e = built.expect_err("the build fails");
    assert!(e.contains("no answer within 10 s"), "{e}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(!held.lock().unwrap().is_empty(), "it did connect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_pending_through_a_ten_second_host_outage_are_delivered_within_a_minute() {
    extend_hooks::install_crypto_provider();
    let dir = std::env::temp_dir().join(format!("extend-outage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("host");
    let host = Host::builder().data_dir(&data).start().await.unwrap();
    let addr = host.local_addr();
    let (url, master) = (host.url().to_owned(), host.master_token().to_owned());
    Extend::builder()
        .webtask(&url, &master)
        .build()
        .unwrap()
        .management()
        .unwrap()
        .install("acme", "durable-event", "recorder", RECORDER)
        .await
        .unwrap();
    let delivered = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = Arc::clone(&delivered);
    let all = Arc::new(tokio::sync::Notify::new());
    let told = Arc::clone(&all);
    const PENDING: u32 = 1000;
    let extend = Extend::builder()
        .webtask(&url, &master)
        .outbox(OutboxConfig::sqlite(dir.join("outbox.db")))
        .on_outcome(move |o| {
            if matches!(o.status, OutcomeStatus::Delivered { .. })
                && counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == PENDING
            {
                told.notify_one();
            }
        })
        .build()
        .unwrap();
    // The platform knows the extension, then the host goes away with all
    // of it pending.
    assert!(
        extend
            .discover("acme", "durable-event")
            .await
            .unwrap()
            .is_some()
    );
    host.shutdown().await.unwrap();
    let recorder = extend.clone();
    tokio::task::spawn_blocking(move || {
        let acme = recorder.container("acme");
        (0..PENDING).for_each(|n| durable_event(&acme, &Event { n }).unwrap());
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(delivered.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Back on the same address, with the same data.
    let back = Host::builder()
        .data_dir(&data)
        .listen(addr)
        .start()
        .await
        .unwrap();
    let returned = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(60), all.notified())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{} of {PENDING} delivered a minute after the host returned",
                delivered.load(std::sync::atomic::Ordering::SeqCst)
            )
        });
    eprintln!(
        "{PENDING} delivered {:?} after the host returned",
        returned.elapsed()
    );
    let outbox = extend.outbox().unwrap();
    assert!(outbox.pending().await.unwrap().is_empty());
    assert!(
        outbox
            .dead_letters(&DeadLetterFilter::default())
            .await
            .unwrap()
            .is_empty(),
        "none counted as failed"
    );
    extend.shutdown(Duration::from_secs(5)).await;
    back.shutdown().await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_outbox_file_is_refused_at_build_not_acknowledged_into() {
    extend_hooks::install_crypto_provider();
    let dir = std::env::temp_dir().join(format!("extend-outbox-damaged-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("outbox.db");
    // Invocations held for a host that is not there (the discard port).
    let extend = Extend::builder()
        .webtask("http://127.0.0.1:9", "token")
        .outbox(OutboxConfig::sqlite(&path))
        .build()
        .unwrap();
    let recorder = extend.clone();
    tokio::task::spawn_blocking(move || {
        let acme = recorder.container("acme");
        (0..500).for_each(|n| durable_event(&acme, &Event { n }).unwrap());
    })
    .await
    .unwrap();
    assert_eq!(extend.outbox().unwrap().pending().await.unwrap().len(), 500);
    extend.shutdown(Duration::from_secs(5)).await;
    drop(extend);
    // Four pages overwritten, as a bad disk or a stray writer would.
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        for page in 2..6u64 {
            f.seek(SeekFrom::Start(page * 4096)).unwrap();
            f.write_all(&[0xA5; 4096]).unwrap();
        }
        f.sync_all().unwrap();
    }
    let built = Extend::builder()
        .webtask("http://127.0.0.1:9", "token")
        .outbox(OutboxConfig::sqlite(&path))
        .build();
    let e = match built {
        Ok(_) => panic!("a damaged outbox was opened"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("outbox.db") && (e.contains("damaged") || e.contains("malformed")),
        "{e}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_sqlite_outbox_gives_its_space_back_and_counts_without_reading() {
    let (host, _admin) = host_with_recorder().await;
    let dir = std::env::temp_dir().join(format!("extend-outbox-compact-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("outbox.db");
    let extend = Extend::builder()
        .webtask(host.url(), host.master_token())
        .outbox(OutboxConfig::sqlite(&path))
        .build()
        .unwrap();
    let size = || {
        let wal = dir.join("outbox.db-wal");
        std::fs::metadata(&path).map_or(0, |m| m.len())
            + std::fs::metadata(&wal).map_or(0, |m| m.len())
    };
    let recorder = extend.clone();
    tokio::task::spawn_blocking(move || {
        let acme = recorder.container("acme");
        (0..2000).for_each(|n| durable_event(&acme, &Event { n }).unwrap());
    })
    .await
    .unwrap();
    let outbox = extend.outbox().unwrap();
    let grown = size();
    let start = std::time::Instant::now();
    while outbox.depth().await.unwrap() > 0 {
        assert!(start.elapsed() < Duration::from_secs(60), "not delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Emptied: the file and its log shrink back.
    let start = std::time::Instant::now();
    while size() * 2 > grown {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the outbox still takes {} bytes (it grew to {grown})",
            size()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("the outbox grew to {grown} bytes and shrank to {}", size());
    extend.shutdown(Duration::from_secs(5)).await;
    host.shutdown().await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn outbox_errors_keep_the_database_error_as_their_source() {
    let dir = std::env::temp_dir().join(format!("extend-outbox-source-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A folder where the file should be: SQLite cannot open it.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _in = runtime.enter();
    let e = match Extend::builder()
        .webtask("http://127.0.0.1:9", "token")
        .outbox(OutboxConfig::sqlite(&dir))
        .build()
    {
        Ok(_) => panic!("a folder opened as an outbox"),
        Err(e) => e,
    };
    let mut chain = Vec::new();
    let mut at: Option<&dyn std::error::Error> = Some(&e);
    while let Some(err) = at {
        chain.push(err.to_string());
        at = err.source();
    }
    // The build error, the outbox's, and SQLite's own at the end.
    assert!(chain.len() >= 3, "{chain:?}");
    assert!(!chain[chain.len() - 1].starts_with("outbox:"), "{chain:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_for_a_disabled_extension_wait_as_dead_letters_and_replay_once_enabled() {
    let (host, admin) = host_with_recorder().await;
    let mut logs = follow_logs(host.url(), host.master_token());
    let dir = std::env::temp_dir().join(format!("extend-outbox-disabled-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let management = admin.management().unwrap();
    management
        .set_enabled("acme", "recorder", false)
        .await
        .unwrap();
    let extend = Extend::builder()
        .webtask(host.url(), host.master_token())
        .outbox(OutboxConfig::sqlite(dir.join("outbox.db")))
        .build()
        .unwrap();
    let recorder = extend.clone();
    tokio::task::spawn_blocking(move || {
        let (acme, globex) = (recorder.container("acme"), recorder.container("globex"));
        for n in 0..10 {
            durable_event(&acme, &Event { n }).unwrap();
            // globex has no extension at all: nothing to keep.
            durable_event(&globex, &Event { n }).unwrap();
        }
    })
    .await
    .unwrap();
    let outbox = extend.outbox().unwrap();
    let start = std::time::Instant::now();
    let letters = loop {
        let letters = outbox.dead_letters(&DeadLetterFilter::all()).await.unwrap();
        if letters.len() == 10 && outbox.depth().await.unwrap() == 0 {
            break letters;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} dead letters",
            letters.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        letters.iter().all(|l| l.container == "acme"),
        "only the disabled one's are kept"
    );
    let why = &letters[0].attempts[0].error;
    assert!(
        why.contains("is disabled (recorder)") && why.contains("replay"),
        "{why}"
    );
    // Enabled again: the replay delivers all ten.
    management
        .set_enabled("acme", "recorder", true)
        .await
        .unwrap();
    extend.invalidate("acme", "durable-event").await;
    assert_eq!(outbox.replay(&DeadLetterFilter::all()).await.unwrap(), 10);
    let (seen, _) = until_all(&mut logs, 10, Duration::from_secs(30)).await;
    assert_eq!(seen.len(), 10);
    extend.shutdown(Duration::from_secs(5)).await;
    host.shutdown().await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_s_postgres_leases_run_out_within_seconds() {
    if !pg::postgres_enabled() {
        return;
    }
    const COUNT: u32 = 500;
    let db = pg::TestDb::create().await;
    let (host, _admin) = host_with_recorder().await;
    let mut logs = follow_logs(host.url(), host.master_token());
    record_then_kill(
        &host,
        ("OUTBOX_DATABASE_URL", std::ffi::OsStr::new(&db.url)),
        COUNT,
    )
    .await;
    // Another replica takes over what the dead one held once its leases
    // (4 s, renewed while delivering) run out: it used to wait 60 s.
    let restarted = std::time::Instant::now();
    let extend = Extend::builder()
        .webtask(host.url(), host.master_token())
        .outbox(OutboxConfig::postgres(&db.url))
        .build()
        .unwrap();
    let (seen, lines) = until_all(&mut logs, COUNT, Duration::from_secs(30)).await;
    eprintln!(
        "every invocation delivered {:?} after the other replica started; {} delivered twice",
        restarted.elapsed(),
        lines - COUNT as usize
    );
    assert_eq!(seen.len(), COUNT as usize);
    assert!(
        seen.values().all(|ids| ids.len() == 1),
        "one delivery id each"
    );
    assert!(
        lines - (COUNT as usize) <= 16,
        "{} duplicates",
        lines - COUNT as usize
    );
    extend.shutdown(Duration::from_secs(5)).await;
    host.shutdown().await.unwrap();
}

/// An async point declared `async fn` waits for PostgreSQL's commit without
/// holding its thread: on a one-thread runtime, another task runs while the
/// insert waits on a table lock, and the call returns `Ok` once the lock is
/// released and the row committed. (A plain `fn` point would block the only
/// thread, so the other task could never run.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_fn_point_awaits_the_postgres_commit_without_blocking_its_thread() {
    if !pg::postgres_enabled() {
        return;
    }
    let db = pg::TestDb::create().await;
    let (host, _admin) = host_with_recorder().await;
    let extend = Extend::builder()
        .webtask(host.url(), host.master_token())
        .outbox(OutboxConfig::postgres(&db.url))
        .build()
        .unwrap();
    // Another session holds the outbox table: every insert waits for it.
    let (locker, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    locker
        .batch_execute("BEGIN; LOCK TABLE extend_outbox IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();

    let (ticked, tick) = std::sync::mpsc::channel();
    let caller = {
        let acme = extend.container("acme");
        std::thread::spawn(move || {
            let one_thread = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            one_thread.block_on(async {
                let other_task = async {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    ticked.send(()).unwrap();
                };
                let (queued, ()) =
                    tokio::join!(durable_event_awaited(&acme, &Event { n: 1 }), other_task);
                queued
            })
        })
    };
    let ran_meanwhile = tick.recv_timeout(Duration::from_secs(10)).is_ok();
    locker.batch_execute("COMMIT").await.unwrap();
    let queued = tokio::task::spawn_blocking(move || caller.join().unwrap())
        .await
        .unwrap();
    assert!(
        ran_meanwhile,
        "another task on the caller's one thread ran while the commit waited"
    );
    queued.expect("recorded once the lock was released");
    extend.shutdown(Duration::from_secs(5)).await;
    host.shutdown().await.unwrap();
}
