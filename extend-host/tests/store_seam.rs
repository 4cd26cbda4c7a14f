//! The storage seam: `HostBuilder::store` injects a backend, and a store that
//! announces other hosts' writes (`Store::changes`) keeps every host's run
//! cache and revocations current. Two real hosts share one real SQLite file
//! through a store of the test's own that announces each write, as a
//! multi-node backend does.

mod common;

use extend_host::store::{
    BoxFuture, Catalogs, Change, Drafts, Feed, History, Recordings, SqliteStore, Store, StoreError,
    StoredWebtask, Usage, WebtaskChange,
};
use extend_host::{Host, HostBuilder};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// SQLite underneath; every write is announced to every host but the writer
/// (each host holds its own `Announcing` handle on the shared inner store).
struct Announcing {
    inner: Arc<SqliteStore>,
    feed: broadcast::Sender<(usize, Change)>,
    me: usize,
}

impl Announcing {
    fn announce(&self, change: Change) {
        let _ = self.feed.send((self.me, change));
    }
}

impl Store for Announcing {
    fn get<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredWebtask>, StoreError>> {
        self.inner.get(container, name)
    }
    fn put(&self, webtask: StoredWebtask) -> BoxFuture<'_, Result<StoredWebtask, StoreError>> {
        Box::pin(async move {
            let saved = self.inner.put(webtask).await?;
            self.announce(Change::Webtask(WebtaskChange::new(
                0,
                saved.container.clone(),
                saved.name.clone(),
                false,
            )));
            Ok(saved)
        })
    }
    fn delete<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let deleted = self.inner.delete(container, name).await?;
            self.announce(Change::Webtask(WebtaskChange::new(
                0,
                container.to_owned(),
                name.to_owned(),
                true,
            )));
            Ok(deleted)
        })
    }
    fn list<'a>(
        &'a self,
        container: &'a str,
        meta: &'a [(String, String)],
        offset: u64,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<StoredWebtask>, StoreError>> {
        self.inner.list(container, meta, offset, limit)
    }
    fn usage<'a>(&'a self, container: &'a str) -> BoxFuture<'a, Result<Usage, StoreError>> {
        self.inner.usage(container)
    }
    fn revoke<'a>(&'a self, jti: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.inner.revoke(jti).await?;
            self.announce(Change::Revoked {
                jti: jti.to_owned(),
            });
            Ok(())
        })
    }
    fn revoked(&self) -> BoxFuture<'_, Result<Vec<String>, StoreError>> {
        self.inner.revoked()
    }
}

// The capabilities this store leaves out keep their defaults: drafts,
// recordings, history and the catalog are refused with a clear error
// (checked below), never dropped silently.
impl Drafts for Announcing {}
impl History for Announcing {}
impl Recordings for Announcing {}
impl Catalogs for Announcing {}

impl extend_host::store::Settings for Announcing {}

impl Feed for Announcing {
    fn changes(&self) -> Option<broadcast::Receiver<Change>> {
        // Only other hosts' changes, as a shared database's feed delivers them.
        let mut all = self.feed.subscribe();
        let (tx, rx) = broadcast::channel(1024);
        let me = self.me;
        tokio::spawn(async move {
            while let Ok((from, change)) = all.recv().await {
                if from != me && tx.send(change).is_err() {
                    return;
                }
            }
        });
        Some(rx)
    }
}

async fn two_hosts(dir: &std::path::Path) -> (Host, Host) {
    let inner = Arc::new(SqliteStore::open(&dir.join("shared.db")).unwrap());
    let (feed, _) = broadcast::channel(1024);
    let start = |me| {
        let store = Announcing {
            inner: Arc::clone(&inner),
            feed: feed.clone(),
            me,
        };
        HostBuilder::default()
            .data_dir(dir)
            .store(Arc::new(store))
            .start()
    };
    (start(0).await.unwrap(), start(1).await.unwrap())
}

async fn run(http: &reqwest::Client, host: &Host, name: &str) -> Value {
    http.post(host.webtask_url("acme", name))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls `f` until it holds; the change feed is asynchronous by nature, and a
/// remote host offers no signal to wait on. Bounded, and fails with `what`.
async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_on_one_store_see_each_others_writes_and_revocations() {
    let dir = tempdir();
    let (a, b) = two_hosts(&dir).await;
    assert_eq!(
        a.master_token(),
        b.master_token(),
        "one data dir, one key set"
    );
    let http = common::http();
    let put = |host: &Host, code: &str| {
        http.put(format!("{}/api/webtask/acme/hello", host.url()))
            .bearer_auth(host.master_token())
            .json(&json!({ "code": code }))
            .send()
    };
    assert_eq!(
        put(&a, "module.exports = cb => cb(null, { v: 1 })")
            .await
            .unwrap()
            .status(),
        200
    );
    // B has never seen it: it loads from the store.
    assert_eq!(run(&http, &b, "hello").await, json!({ "v": 1 }));
    // B now has it cached; A replaces it: B must run the new code.
    assert_eq!(
        put(&a, "module.exports = cb => cb(null, { v: 2 })")
            .await
            .unwrap()
            .status(),
        200
    );
    eventually("B runs the code A wrote", async || {
        run(&http, &b, "hello").await == json!({ "v": 2 })
    })
    .await;

    // A tenant token revoked through A is refused by B.
    let tenant = http
        .post(format!("{}/api/tokens/issue", a.url()))
        .bearer_auth(a.master_token())
        .json(&json!({ "ten": "acme" }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let list_on_b = async || {
        http.get(format!("{}/api/webtask/acme", b.url()))
            .bearer_auth(&tenant)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(list_on_b().await, 200);
    let r = http
        .post(format!("{}/api/tokens/revoke", a.url()))
        .bearer_auth(a.master_token())
        .json(&json!({ "token": tenant }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    eventually("B refuses the token A revoked", async || {
        list_on_b().await == 403
    })
    .await;

    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

/// A fresh directory of this test's own: tests run at once, and two hosts
/// creating one data directory's keys together would race.
fn tempdir() -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("store-seam-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `database` and `store` (or `data_dir`) each choose where state lives; a
/// builder given both refuses to start rather than silently use one.
#[tokio::test]
async fn a_builder_given_two_places_for_its_state_refuses_to_start() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::memory().unwrap());
    let key = extend_host::KeyEncryptionKey::generate();
    // Refused before any connection is tried: the URL is never dialled.
    let url = "postgres://nobody@127.0.0.1:1/none";
    let with_store = Host::builder()
        .database(url)
        .key_encryption_key(key.clone())
        .store(store)
        .start()
        .await
        .unwrap_err();
    assert_eq!(
        with_store.to_string(),
        "HostBuilder::database and HostBuilder::store both choose the store: give one"
    );
    let dir = std::env::temp_dir().join(format!("extend-seam-{}", std::process::id()));
    let with_dir = Host::builder()
        .data_dir(&dir)
        .database(url)
        .key_encryption_key(key)
        .start()
        .await
        .unwrap_err();
    assert!(with_dir.to_string().contains("give one"), "{with_dir}");
    assert!(!dir.exists(), "nothing was created for the refused builder");
}

/// A store without a capability refuses what needs it with 501 and says
/// which, instead of answering as if there were nothing (an empty history).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_without_version_history_says_so_with_501() {
    let dir = tempdir();
    let (a, _b) = two_hosts(&dir).await;
    let http = common::http();
    let put = http
        .put(format!("{}/api/webtask/acme/hello", a.url()))
        .bearer_auth(a.master_token())
        .json(&json!({ "code": "module.exports = cb => cb(null, 1)" }))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let versions = http
        .get(format!("{}/api/webtask/acme/hello/versions", a.url()))
        .bearer_auth(a.master_token())
        .send()
        .await
        .unwrap();
    assert_eq!(versions.status(), 501);
    let body: Value = versions.json().await.unwrap();
    assert_eq!(
        body["message"], "this host's store keeps no version history",
        "{body}"
    );
}

/// SQLite underneath, with a live feed that lags until the test lets it
/// through, as PostgreSQL's notifications reach a host after the commit
/// that a read of the log already sees.
struct Lagging {
    inner: Arc<SqliteStore>,
    feed: broadcast::Sender<Change>,
}

impl Lagging {
    /// Forwards the inner store's changes once `through` is true.
    fn new(inner: Arc<SqliteStore>, mut through: tokio::sync::watch::Receiver<bool>) -> Self {
        let (feed, _) = broadcast::channel(1024);
        let mut changes = inner.changes().unwrap();
        let out = feed.clone();
        tokio::spawn(async move {
            while let Ok(change) = changes.recv().await {
                if through.wait_for(|through| *through).await.is_err() {
                    return;
                }
                let _ = out.send(change);
            }
        });
        Lagging { inner, feed }
    }
}

impl Store for Lagging {
    fn get<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredWebtask>, StoreError>> {
        self.inner.get(container, name)
    }
    fn put(&self, webtask: StoredWebtask) -> BoxFuture<'_, Result<StoredWebtask, StoreError>> {
        self.inner.put(webtask)
    }
    fn delete<'a>(
        &'a self,
        container: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.inner.delete(container, name)
    }
    fn list<'a>(
        &'a self,
        container: &'a str,
        meta: &'a [(String, String)],
        offset: u64,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<StoredWebtask>, StoreError>> {
        self.inner.list(container, meta, offset, limit)
    }
    fn usage<'a>(&'a self, container: &'a str) -> BoxFuture<'a, Result<Usage, StoreError>> {
        self.inner.usage(container)
    }
    fn revoke<'a>(&'a self, jti: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.revoke(jti)
    }
    fn revoked(&self) -> BoxFuture<'_, Result<Vec<String>, StoreError>> {
        self.inner.revoked()
    }
}

impl Drafts for Lagging {}
impl History for Lagging {}
impl Recordings for Lagging {}
impl Catalogs for Lagging {}
impl extend_host::store::Settings for Lagging {}

impl Feed for Lagging {
    fn changes(&self) -> Option<broadcast::Receiver<Change>> {
        Some(self.feed.subscribe())
    }
    fn changes_since<'a>(
        &'a self,
        after: u64,
        container: Option<&'a str>,
        limit: u64,
    ) -> BoxFuture<'a, Result<extend_host::store::ChangeLog, StoreError>> {
        self.inner.changes_since(after, container, limit)
    }
}

/// A client whose last event id this host never sent is told to start over
/// and then gets the changes after that moment: a change the log already
/// had (it is in what the client lists next) is not sent again when a
/// lagging live feed brings it after the reset. It was, on PostgreSQL,
/// whenever the notification came after the stream opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_reset_a_late_live_change_the_log_already_had_is_not_sent() {
    let dir = tempdir();
    let inner = Arc::new(SqliteStore::open(&dir.join("lagging.db")).unwrap());
    let (through, held) = tokio::sync::watch::channel(false);
    let host = HostBuilder::default()
        .data_dir(&dir)
        .store(Arc::new(Lagging::new(inner, held)))
        .start()
        .await
        .unwrap();
    let env = common::Env::with_host(host);
    env.install("globex", "w", "module.exports = cb => cb(null, 1)")
        .await;
    let mut ahead = common::Changes::open(&env, "?container=globex", Some(1_000_000)).await;
    assert_eq!(ahead.next().await.event, "reset");
    // The feed catches up: it brings `w` now, then `w2`.
    through.send(true).unwrap();
    env.install("globex", "w2", "module.exports = cb => cb(null, 2)")
        .await;
    let next = ahead.next().await;
    assert_eq!(
        (next.event.as_str(), next.data["name"].as_str()),
        ("webtask", Some("w2")),
        "{:?}",
        next.data
    );
}
