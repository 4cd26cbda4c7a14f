//! Several hosts on one PostgreSQL database: they share keys and master
//! token, see each other's writes, revocations and log records, survive
//! losing the change feed, and one node's death loses nothing another node
//! acknowledged. Skipped (with one line saying how to run them) without
//! `EXTEND_TEST_DATABASE_URL`.

mod common;

use common::{Changes, Env, LogStream, TestDb, eventually, node_on, postgres_enabled};
use extend_host::Limits;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(5);

async fn two_nodes() -> Option<(Arc<TestDb>, Env, Env)> {
    if !postgres_enabled() {
        return None;
    }
    let db = TestDb::create().await;
    let a = node_on(&db, Limits::default()).await;
    let b = node_on(&db, Limits::default()).await;
    Some((db, a, b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_started_together_migrate_once_and_share_keys_and_master_token() {
    if !postgres_enabled() {
        return;
    }
    let db = TestDb::create().await;
    let (a, b, c) = tokio::join!(
        node_on(&db, Limits::default()),
        node_on(&db, Limits::default()),
        node_on(&db, Limits::default())
    );
    let nodes = [&a, &b, &c];
    let created: Vec<bool> = nodes
        .iter()
        .map(|n| n.host.created_master_token())
        .collect();
    assert_eq!(
        created.iter().filter(|c| **c).count(),
        1,
        "one node made the keys: {created:?}"
    );
    assert!(nodes.iter().all(|n| n.master() == a.master()));
    let sql = db.client().await;
    let row = sql
        .query_one(
            "SELECT COUNT(*), MAX(version)::bigint FROM extend_schema",
            &[],
        )
        .await
        .unwrap();
    let (rows, latest): (i64, i64) = (row.get(0), row.get(1));
    assert!(latest >= 1);
    assert_eq!(rows, latest, "each migration ran once");
    // A token one node issues, another accepts.
    let tenant = a.tenant_token("acme").await;
    let r = c
        .http
        .get(c.url("/api/webtask/acme"))
        .bearer_auth(&tenant)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The keys are sealed with the KEK: nothing in the row reads as a key.
    let sealed: Vec<u8> = sql
        .query_one("SELECT sealed FROM host_keys", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!sealed.windows(8).any(|w| w == b"signing\""));
}

#[tokio::test]
async fn a_node_given_another_key_encryption_key_is_told_which_one_it_needs() {
    if !postgres_enabled() {
        return;
    }
    let db = TestDb::create().await;
    let _first = node_on(&db, Limits::default()).await;
    let wrong = extend_host::KeyEncryptionKey::generate();
    let e = extend_host::Host::builder()
        .database(&db.url)
        .key_encryption_key(wrong.clone())
        .start()
        .await
        .unwrap_err();
    let text = format!("{e}: {}", std::error::Error::source(&e).unwrap());
    assert!(
        text.contains(db.kek.id()) && text.contains(wrong.id()) && text.contains("same --key-file"),
        "{text}"
    );
    let e = extend_host::Host::builder()
        .database(&db.url)
        .start()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("key-encryption key"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_node_is_what_the_next_run_on_another_executes() {
    let Some((_db, a, b)) = two_nodes().await else {
        return;
    };
    // Within the write burst of one container (20).
    for v in 0..15 {
        a.install(
            "acme",
            "w",
            &format!("module.exports = cb => cb(null, {v})"),
        )
        .await;
        // Each version is run at least once on `b`, so `b` has the previous
        // one cached when the next is written.
        eventually(WITHIN, "the new code runs on node b", || async {
            let (status, _, body) = b.run("acme", "w", json!({})).await;
            (status == 200 && body == json!(v)).then_some(())
        })
        .await;
    }
    let r = a
        .http
        .delete(a.url("/api/webtask/acme/w"))
        .bearer_auth(a.master())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    eventually(WITHIN, "the deleted webtask is gone on node b", || async {
        (b.run("acme", "w", json!({})).await.0 == 404).then_some(())
    })
    .await;
    // `b` now remembers the name as missing; created again on `a`, it runs
    // on `b` once the change arrives.
    assert_eq!(b.run("acme", "w", json!({})).await.0, 404);
    a.install("acme", "w", "module.exports = cb => cb(null, 'again')")
        .await;
    eventually(WITHIN, "the re-created webtask runs on node b", || async {
        let (status, _, body) = b.run("acme", "w", json!({})).await;
        (status == 200 && body == json!("again")).then_some(())
    })
    .await;
    // What one node stored, the other lists, secrets opened with the shared key.
    a.put(
        "acme",
        "s",
        "module.exports = (ctx, cb) => cb(null, ctx.secrets.k)",
        json!({"k": "v"}),
        json!({"auth0-extension-type": "p"}),
    )
    .await;
    let listed = b
        .get_json("/api/webtask/acme?meta=auth0-extension-type:p&decrypt=true")
        .await;
    assert_eq!(listed[0]["secrets"]["k"], "v", "{listed}");
    assert_eq!(
        b.run_as_platform("acme", "s", json!({})).await.2,
        json!("v")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_webtask_written_on_two_nodes_at_once_runs_as_stored_on_both() {
    if !postgres_enabled() {
        return;
    }
    // A node put its own write into its run cache after the commit, over
    // the other node's later write whose change it had already applied,
    // and ran the older code from then on: 1 to 6 containers in 100 did,
    // with the nodes in processes of their own, as here.
    let db = TestDb::create().await;
    let key_file = new_key_file("race");
    let a = spawn_node(&db, &key_file).await;
    let b = spawn_node(&db, &key_file).await;
    let master = a
        .printed_master
        .clone()
        .expect("the first node printed the master token");
    let http = common::http();
    let nodes = [a.url.clone(), b.url.clone()];
    const CONTAINERS: usize = 1000;
    let started = std::time::Instant::now();
    let mut slowest = Duration::ZERO;
    let mut stale = Vec::new();
    for batch in (0..CONTAINERS).collect::<Vec<_>>().chunks(100) {
        let races = batch.iter().map(|i| {
            let (http, master, nodes) = (&http, &master, &nodes);
            async move {
                let c = format!("race{i}");
                let write = |node: usize| {
                    let req = http
                        .put(format!("{}/api/webtask/{c}/w", nodes[node]))
                        .bearer_auth(master)
                        .json(
                            &json!({ "code": format!("module.exports = cb => cb(null, {node})") }),
                        );
                    async move { req.send().await.unwrap().status().as_u16() }
                };
                let statuses = tokio::join!(write(0), write(1));
                assert_eq!(statuses, (200, 200), "{c}");
                let written = std::time::Instant::now();
                let stored: Value = http
                    .get(format!("{}/api/webtask/{c}/w?fetch_code=true", nodes[0]))
                    .bearer_auth(master)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let want = json!(u8::from(
                    stored["code"].as_str().unwrap().contains("null, 1)")
                ));
                let mut late = Duration::ZERO;
                for node in nodes {
                    let deadline = written + Duration::from_secs(1);
                    loop {
                        let r = http
                            .post(format!("{node}/api/run/{c}/w"))
                            .send()
                            .await
                            .unwrap();
                        let (status, body) = (r.status(), r.json::<Value>().await.unwrap());
                        if status == 200 && body == want {
                            late = late.max(written.elapsed());
                            break;
                        }
                        if std::time::Instant::now() > deadline {
                            return Err(format!("{c}: {node} runs {body}, the store has {want}"));
                        }
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
                Ok(late)
            }
        });
        for r in futures_util::future::join_all(races).await {
            match r {
                Ok(late) => slowest = slowest.max(late),
                Err(e) => stale.push(e),
            }
        }
    }
    eprintln!(
        "{CONTAINERS} racing writes in {:?}; the stored version ran on both nodes at most {slowest:?} after the writes",
        started.elapsed()
    );
    let _ = std::fs::remove_file(&key_file);
    assert!(stale.is_empty(), "{} stale: {stale:?}", stale.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_retry_once_on_a_connection_the_server_closed() {
    let Some((db, a, _b)) = two_nodes().await else {
        return;
    };
    // Eight containers: each may have 8 management requests in progress.
    for c in 0..8 {
        a.install(&format!("c{c}"), "w", "module.exports = cb => cb(null, 1)")
            .await;
    }
    let sql = db.client().await;
    let get = |i: usize| {
        let a = &a;
        async move {
            let r = a
                .http
                .get(a.url(&format!("/api/webtask/c{}/w", i % 8)))
                .bearer_auth(a.master())
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }
    };
    for round in 0..5 {
        // Fill the pool with connections, then have the server end them all.
        let warm = futures_util::future::join_all((0..32).map(get)).await;
        assert!(warm.iter().all(|(s, _)| *s == 200), "{warm:?}");
        let ended: i64 = sql
            .query_one(
                "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND application_name = 'extend-host'
                   AND pid <> pg_backend_pid()) t",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(ended > 0, "round {round}: no connection was ended");
        let after = futures_util::future::join_all((0..40).map(get)).await;
        let failed: Vec<_> = after.iter().filter(|(s, _)| *s != 200).collect();
        assert!(failed.is_empty(), "round {round}: {failed:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_racing_on_two_nodes_stay_within_the_container_quota() {
    if !postgres_enabled() {
        return;
    }
    let db = TestDb::create().await;
    let mut limits = Limits::default();
    limits.webtasks_per_container = 3;
    let (a, b) = (
        node_on(&db, limits.clone()).await,
        node_on(&db, limits).await,
    );
    // Twelve creates at once, alternating nodes: each node serialises its
    // own, so only the database can keep the two apart.
    let creates = (0..12).map(|i| {
        let node = if i % 2 == 0 { &a } else { &b };
        async move {
            let r = node
                .http
                .put(node.url(&format!("/api/webtask/acme/w{i}")))
                .bearer_auth(node.master())
                .json(&json!({ "code": "module.exports = cb => cb(null, 1)" }))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }
    });
    let answers = futures_util::future::join_all(creates).await;
    let created = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(created, 3, "{answers:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*status, 403, "{body}");
        assert!(body.contains("already has 3 webtasks, its limit"), "{body}");
    }
    let listed = b.get_json("/api/webtask/acme").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
    // Replacing one of them is not a create: still allowed at the limit.
    let kept = listed[0]["name"].as_str().unwrap().to_owned();
    a.install("acme", &kept, "module.exports = cb => cb(null, 2)")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_on_one_node_is_refused_by_the_other() {
    let Some((_db, a, b)) = two_nodes().await else {
        return;
    };
    let tenant = a.tenant_token("acme").await;
    let list = |env: &Env| {
        env.http
            .get(env.url("/api/webtask/acme"))
            .bearer_auth(&tenant)
            .send()
    };
    assert_eq!(list(&b).await.unwrap().status(), 200);
    let r = a
        .http
        .post(a.url(&format!("/api/tokens/revoke?token={tenant}")))
        .bearer_auth(a.master())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let refused = eventually(WITHIN, "node b refuses the revoked token", || async {
        let r = list(&b).await.unwrap();
        (r.status() == 403).then_some(r)
    })
    .await;
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("revoked"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_records_of_runs_on_one_node_stream_from_another_in_order() {
    let Some((_db, a, b)) = two_nodes().await else {
        return;
    };
    b.install(
        "acme",
        "chatty",
        "module.exports = (ctx, cb) => { for (let i = 0; i < 5; i++) console.log('line ' + i); \
         console.log('\"' + 'y'.repeat(20000)); cb(null, 'ok'); };",
    )
    .await;
    let mut logs = LogStream::open(&a, "acme", a.master()).await;
    assert_eq!(b.run("acme", "chatty", json!({})).await.2, json!("ok"));
    for i in 0..5 {
        let r = logs.next_record().await;
        assert_eq!(r["msg"], format!("line {i}"));
        assert_eq!(r["webtask"], "chatty");
    }
    // Longer than a NOTIFY payload: relayed in parts, whole on arrival (cut
    // at the log-line limit like on its own node).
    let long = logs.next_record().await;
    let msg = long["msg"].as_str().unwrap();
    assert!(
        msg.starts_with("\"yyy") && msg.ends_with('…'),
        "{}",
        &msg[..20]
    );
    assert_eq!(msg.len(), Limits::default().log_line + '…'.len_utf8());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_loses_its_change_feed_reconnects_and_forgets_its_cache() {
    let Some((db, a, b)) = two_nodes().await else {
        return;
    };
    a.install("acme", "w", "module.exports = cb => cb(null, 1)")
        .await;
    assert_eq!(b.run("acme", "w", json!({})).await.2, json!(1));
    let sql = db.client().await;
    // Behind every host's back: no notification, so `b` keeps its copy.
    sql.execute(
        "UPDATE webtasks SET code = 'module.exports = cb => cb(null, 2)' WHERE name = 'w'",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(
        b.run("acme", "w", json!({})).await.2,
        json!(1),
        "b runs its cached copy"
    );
    let mut changes = Changes::open(&b, "", None).await;
    let listeners = "SELECT pid FROM pg_stat_activity WHERE application_name = 'extend-host listener' AND datname = current_database()";
    let before: Vec<i32> = sql
        .query(listeners, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(before.len(), 2, "one listener per node");
    let killed: Vec<bool> = sql
        .query(
            &format!("SELECT pg_terminate_backend(pid) FROM ({listeners}) l"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(killed, [true, true]);
    // The stream tells platforms to forget what they cached, too.
    let reset = changes.next().await;
    assert_eq!(reset.event, "reset");
    assert!(
        reset.data["reason"].as_str().unwrap().contains("lost"),
        "{reset:?}"
    );
    eventually(WITHIN, "b drops its stale copy", || async {
        (b.run("acme", "w", json!({})).await.2 == json!(2)).then_some(())
    })
    .await;
    let after: Vec<i32> = eventually(WITHIN, "both nodes listen again", || async {
        let pids: Vec<i32> = sql
            .query(listeners, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        (pids.len() == 2).then_some(pids)
    })
    .await;
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "{before:?} {after:?}"
    );
    // And the feed works again: a write on `a` reaches `b`.
    a.install("acme", "w", "module.exports = cb => cb(null, 3)")
        .await;
    eventually(WITHIN, "b follows the feed again", || async {
        (b.run("acme", "w", json!({})).await.2 == json!(3)).then_some(())
    })
    .await;
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_says_degraded_while_the_change_feed_is_lost() {
    let Some((db, a, _b)) = two_nodes().await else {
        return;
    };
    let readyz = || async {
        let r = a.http.get(a.url("/readyz")).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(readyz().await, (200, json!({"status": "ready"})));
    let sql = db.client().await;
    // Ending the listeners again and again keeps the feed down most of the
    // time (a node reconnects 50 ms after each loss).
    let kill = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE application_name = 'extend-host listener' AND datname = current_database()";
    let degraded = eventually(WITHIN, "readiness says degraded", || async {
        sql.execute(kill, &[]).await.unwrap();
        let (status, body) = readyz().await;
        (body["status"] == "degraded").then_some((status, body))
    })
    .await;
    assert_eq!(degraded.0, 200, "still ready: {}", degraded.1);
    assert!(
        degraded.1["degraded"][0]
            .as_str()
            .unwrap()
            .contains("change feed is lost"),
        "{}",
        degraded.1
    );
    eventually(WITHIN, "ready again once the feed is back", || async {
        (readyz().await.1 == json!({"status": "ready"})).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_written_on_one_node_stream_from_another_and_pruned_history_means_reset() {
    let Some((db, a, b)) = two_nodes().await else {
        return;
    };
    let mut on_b = Changes::open(&b, "?container=acme", None).await;
    a.install("acme", "one", "module.exports = cb => cb(null, 1)")
        .await;
    a.install("acme", "two", "module.exports = cb => cb(null, 2)")
        .await;
    let one = on_b.next().await;
    let two = on_b.next().await;
    assert_eq!(
        (one.data["name"].as_str(), two.data["name"].as_str()),
        (Some("one"), Some("two"))
    );
    let mut resumed = Changes::open(&b, "?container=acme", one.id).await;
    assert_eq!(resumed.next().await, two);
    // Once the log no longer holds the client's position, it must start over.
    db.client()
        .await
        .execute(
            "DELETE FROM changes WHERE id <= $1",
            &[&(two.id.unwrap() as i64)],
        )
        .await
        .unwrap();
    let mut stale = Changes::open(&b, "?container=acme", one.id).await;
    assert_eq!(stale.next().await.event, "reset");
}

/// `extend-host serve` on `db` as a child process: its URL and, on the
/// first start of the database, the master token it printed.
struct Node {
    child: tokio::process::Child,
    url: String,
    printed_master: Option<String>,
}

/// A new key-encryption key in a file of this test process, made by
/// `extend-host new-key` as an operator would.
fn new_key_file(tag: &str) -> std::path::PathBuf {
    let key_file = std::env::temp_dir().join(format!("extend-kek-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_file(&key_file);
    let made = std::process::Command::new(common::WORKER)
        .arg("new-key")
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    key_file
}

async fn spawn_node(db: &TestDb, key_file: &std::path::Path) -> Node {
    use tokio::io::AsyncBufReadExt as _;
    let mut child = tokio::process::Command::new(common::WORKER)
        .args(["serve", "--listen", "127.0.0.1:0", "--key-file"])
        .arg(key_file)
        .env("EXTEND_DATABASE_URL", &db.url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed_master = None;
    loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the node printed its address within 30 s")
            .unwrap()
            .expect("the node exited before listening");
        if line.starts_with("master token") {
            printed_master = lines.next_line().await.unwrap();
        } else if let Some(url) = line.strip_prefix("extend-host listening on ") {
            return Node {
                child,
                url: url.to_owned(),
                printed_master,
            };
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_node_mid_traffic_loses_nothing_acknowledged_and_a_restart_finds_it_all() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    if !postgres_enabled() {
        return;
    }
    let db = TestDb::create().await;
    let key_file = new_key_file("kill");
    let mut a = spawn_node(&db, &key_file).await;
    let b = spawn_node(&db, &key_file).await;
    let master = a
        .printed_master
        .clone()
        .expect("the first node printed the master token");
    assert_eq!(
        b.printed_master, None,
        "only the node that made it prints it"
    );

    let http = common::http();
    let acked = Arc::new(std::sync::Mutex::new(Vec::<(String, String, usize)>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut writers = Vec::new();
    for w in 0..4 {
        let (http, master, acked, count) =
            (http.clone(), master.clone(), acked.clone(), count.clone());
        let urls = [a.url.clone(), b.url.clone()];
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let (container, name) = (format!("c{}", i % 40), format!("w{w}-{i}"));
                let put = http
                    .put(format!("{}/api/webtask/{container}/{name}", urls[i % 2]))
                    .bearer_auth(&master)
                    .json(&json!({ "code": format!("module.exports = cb => cb(null, {i})") }))
                    .send();
                let ok = tokio::select! {
                    () = stop.notified() => return,
                    r = put => matches!(r, Ok(r) if r.status() == 200),
                };
                if ok {
                    acked.lock().unwrap().push((container, name, i));
                    count.fetch_add(1, Ordering::SeqCst);
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    eventually(
        Duration::from_secs(60),
        "60 writes acknowledged",
        || async { (count.load(Ordering::SeqCst) >= 60).then_some(()) },
    )
    .await;
    a.child.start_kill().unwrap();
    a.child.wait().await.unwrap();
    let at_kill = count.load(Ordering::SeqCst);
    eventually(
        Duration::from_secs(60),
        "node b goes on acknowledging writes",
        || async { (count.load(Ordering::SeqCst) >= at_kill + 40).then_some(()) },
    )
    .await;
    stop.notify_waiters();
    for w in writers {
        w.abort();
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    let check = |base: String| {
        let (http, master, acked) = (http.clone(), master.clone(), acked.clone());
        async move {
            for (container, name, i) in &acked {
                let got: Value = http
                    .get(format!(
                        "{base}/api/webtask/{container}/{name}?fetch_code=true"
                    ))
                    .bearer_auth(&master)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(
                    got["code"],
                    format!("module.exports = cb => cb(null, {i})"),
                    "{container}/{name} was acknowledged"
                );
            }
            // And it runs.
            let (container, name, i) = acked.last().unwrap();
            let ran: Value = http
                .post(format!("{base}/api/run/{container}/{name}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(ran, json!(i));
        }
    };
    check(b.url.clone()).await;
    // A restart on the warm database: same keys, same master token, all there.
    let again = spawn_node(&db, &key_file).await;
    assert_eq!(again.printed_master, None);
    check(again.url.clone()).await;
    drop((b, again));
    std::fs::remove_file(&key_file).unwrap();
}
