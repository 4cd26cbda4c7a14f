//! Platform replicas that follow the host's change stream
//! (`ExtendBuilder::watch_changes`) see an extension another replica
//! installed or removed on their next invocation, instead of when their
//! cached discovery answer expires. On one host (SQLite), and on two host
//! nodes sharing PostgreSQL with each replica on its own node.

#[path = "../../extend-host/tests/common/pg.rs"]
#[allow(unreachable_pub)]
mod pg;

use std::time::{Duration, Instant};

use extend_hooks::{Container, ErrorKind, Extend, extension_point};
use extend_host::Host;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, JsonSchema)]
struct Lead {
    x: i64,
}

#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
struct Decision {
    score: i64,
}

/// Scores a lead; the platform's default scores 0.
#[extension_point(name = "score", mode = "sync", timeout = "5s")]
async fn score(tenant: &Container, lead: &Lead) -> Decision {
    Decision { score: 0 }
}

const DOUBLE: &str = "module.exports = (ctx, cb) => cb(null, { score: ctx.body.x * 2 });";

fn replica(host: &Host, watch: bool) -> Extend {
    extend_hooks::install_crypto_provider();
    Extend::builder()
        .webtask(host.url(), host.master_token())
        .watch_changes(watch)
        .build()
        .unwrap()
}

/// Invokes until the answer is `want`, for at most 5 s; returns how long it
/// took. With `removing`, a 404 from the host is accepted on the way: a run
/// that raced the removal finds the webtask gone (and drops the cached answer).
async fn until_scores(tenant: &Container, want: i64, removing: bool) -> Duration {
    let start = Instant::now();
    loop {
        let got = match score(tenant, &Lead { x: 4 }).await {
            Ok(got) => got,
            Err(e) if removing && matches!(e.kind(), ErrorKind::Status { status: 404, .. }) => {
                Decision { score: -1 }
            }
            Err(e) => panic!("{e}"),
        };
        if got.score == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still {got:?} after 5 s, expected a score of {want}"
        );
        tokio::task::yield_now().await;
    }
}

async fn replicas_see_each_others_changes(one: &Host, two: &Host) {
    let first = replica(one, true);
    let second = replica(two, true);
    let unwatched = replica(two, false);
    assert!(second.wait_for_change_stream(Duration::from_secs(10)).await);
    assert!(!unwatched.change_stream_connected());
    // Both replicas of node two cache "no extension: the default runs".
    let acme = second.container("acme");
    let acme_unwatched = unwatched.container("acme");
    assert_eq!(score(&acme, &Lead { x: 4 }).await.unwrap().score, 0);
    assert_eq!(
        score(&acme_unwatched, &Lead { x: 4 }).await.unwrap().score,
        0
    );

    first
        .management()
        .unwrap()
        .install("acme", "score", "scorer", DOUBLE)
        .await
        .unwrap();
    let seen = until_scores(&acme, 8, false).await;
    // The replica that does not watch still has its cached answer.
    assert_eq!(
        score(&acme_unwatched, &Lead { x: 4 }).await.unwrap().score,
        0,
        "the unwatched replica's cache is untouched (within its TTL)"
    );
    eprintln!("install on replica 1 seen by replica 2 after {seen:?}");

    assert!(
        first
            .management()
            .unwrap()
            .remove("acme", "scorer")
            .await
            .unwrap()
    );
    until_scores(&acme, 0, true).await;
    for r in [first, second, unwatched] {
        r.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_watching_one_host_sees_another_replicas_install_at_once() {
    let host = Host::builder().memory().start().await.unwrap();
    replicas_see_each_others_changes(&host, &host).await;
    host.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_two_host_nodes_on_postgres_see_each_others_installs_at_once() {
    if !pg::postgres_enabled() {
        return;
    }
    let db = pg::TestDb::create().await;
    let node = || {
        Host::builder()
            .database(&db.url)
            .key_encryption_key(db.kek.clone())
            .start()
    };
    let one = node().await.unwrap();
    let two = node().await.unwrap();
    replicas_see_each_others_changes(&one, &two).await;
    one.shutdown().await.unwrap();
    two.shutdown().await.unwrap();
}

#[tokio::test]
async fn watching_needs_a_webtask_host() {
    let e = Extend::builder()
        .discovery(extend_hooks::discovery::StaticDiscovery::new())
        .watch_changes(true)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains(".webtask(url, token)"), "{e}");
}
