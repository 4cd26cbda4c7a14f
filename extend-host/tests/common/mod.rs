//! Helpers shared by the host's integration tests: a real host on loopback and
//! a plain HTTP client.
#![allow(dead_code, unreachable_pub)]

#[path = "pg.rs"]
mod pg;

#[path = "npm.rs"]
pub mod npm;

use extend_host::{Host, Limits};
pub use pg::{TestDb, postgres_enabled};
use serde_json::{Value, json};
use std::sync::Arc;

pub struct Env {
    // Before `db`: the host lets go of the database before it is dropped.
    pub host: Host,
    pub http: reqwest::Client,
    /// The PostgreSQL database of the host, if it has one.
    pub db: Option<Arc<TestDb>>,
}

pub async fn start() -> Env {
    start_with(Limits::default()).await
}

/// The store a test's host uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A host on `backend` with `limits`; `None` when PostgreSQL is asked for
/// and not configured.
pub async fn start_on(backend: Backend, limits: Limits) -> Option<Env> {
    match backend {
        Backend::Sqlite => Some(start_with(limits).await),
        Backend::Postgres => {
            if !postgres_enabled() {
                return None;
            }
            let db = TestDb::create().await;
            Some(node_on(&db, limits).await)
        }
    }
}

/// A host on `db` (one node of a cluster).
pub async fn node_on(db: &Arc<TestDb>, limits: Limits) -> Env {
    let host = Host::builder()
        .database(&db.url)
        .key_encryption_key(db.kek.clone())
        .worker_program(WORKER)
        .limits(limits)
        .start()
        .await
        .expect("host starts on PostgreSQL");
    Env {
        host,
        http: http(),
        db: Some(Arc::clone(db)),
    }
}

/// Runs each test once on SQLite (in module `sqlite`) and once on
/// PostgreSQL (in module `postgres`, skipped without a database). Tests call
/// `start()` and `start_with(limits)`, which each module defines for its store.
#[allow(unused_macros)]
macro_rules! on_both_stores {
    ($($(#[$attr:meta])* async fn $name:ident() $body:block)*) => {
        mod sqlite {
            #![allow(unused_imports, dead_code)]
            use super::*;
            async fn start() -> common::Env {
                common::start_with(extend_host::Limits::default()).await
            }
            async fn start_with(limits: extend_host::Limits) -> common::Env {
                common::start_with(limits).await
            }
            $($(#[$attr])* async fn $name() $body)*
        }
        mod postgres {
            #![allow(unused_imports, dead_code)]
            use super::*;
            async fn start() -> common::Env {
                start_with(extend_host::Limits::default()).await
            }
            async fn start_with(limits: extend_host::Limits) -> common::Env {
                common::start_on(common::Backend::Postgres, limits)
                    .await
                    .expect("postgres_enabled() was checked")
            }
            $($(#[$attr])* async fn $name() {
                if !common::postgres_enabled() {
                    return;
                }
                $body
            })*
        }
    };
}

/// The host binary, run as the worker processes of the hosts these tests start.
pub const WORKER: &str = env!("CARGO_BIN_EXE_extend-host");

pub async fn start_with(limits: Limits) -> Env {
    let host = Host::builder()
        .memory()
        .worker_program(WORKER)
        .limits(limits)
        .start()
        .await
        .expect("host starts");
    Env {
        host,
        http: http(),
        db: None,
    }
}

impl Env {
    /// An environment around a host the test built itself.
    pub fn with_host(host: Host) -> Env {
        Env {
            host,
            http: http(),
            db: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.host.url())
    }

    pub fn master(&self) -> &str {
        self.host.master_token()
    }

    /// Issues a tenant token for `containers` (comma list) with the master token.
    pub async fn tenant_token(&self, containers: &str) -> String {
        let r = self
            .http
            .post(self.url("/api/tokens/issue"))
            .bearer_auth(self.master())
            .json(&json!({ "ten": containers }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    }

    /// GETs `path` with the master token, checks the 200 and reads the JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(self.master())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }

    /// PUTs a webtask with the master token and checks the 200.
    pub async fn put(
        &self,
        container: &str,
        name: &str,
        code: &str,
        secrets: Value,
        meta: Value,
    ) -> Value {
        let r = self
            .http
            .put(self.url(&format!("/api/webtask/{container}/{name}")))
            .bearer_auth(self.master())
            .json(&json!({ "code": code, "secrets": secrets, "meta": meta }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "PUT {container}/{name}");
        r.json().await.unwrap()
    }

    pub async fn install(&self, container: &str, name: &str, code: &str) {
        self.put(container, name, code, json!({}), json!({})).await;
    }

    /// POSTs nothing to the run URL, for tests that read the raw response.
    pub async fn post_run(&self, container: &str, name: &str) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/api/run/{container}/{name}")))
            .send()
            .await
            .unwrap()
    }

    /// POSTs `body` to the run URL; returns status, `x-wt-response-source` and the body.
    pub async fn run(&self, container: &str, name: &str, body: Value) -> (u16, String, Value) {
        self.run_with(container, name, body, None).await
    }

    /// [`Env::run`] as the platform calls an extension of a point: with the
    /// run secret the host keeps for it (it makes one when none was given).
    pub async fn run_as_platform(
        &self,
        container: &str,
        name: &str,
        body: Value,
    ) -> (u16, String, Value) {
        let w = self
            .get_json(&format!("/api/webtask/{container}/{name}?decrypt=true"))
            .await;
        let secret = w["secrets"]["auth0-extension-secret"]
            .as_str()
            .expect("an extension of a point has a run secret")
            .to_owned();
        self.run_with(container, name, body, Some(&secret)).await
    }

    async fn run_with(
        &self,
        container: &str,
        name: &str,
        body: Value,
        secret: Option<&str>,
    ) -> (u16, String, Value) {
        let mut req = self
            .http
            .post(self.url(&format!("/api/run/{container}/{name}")))
            .json(&body);
        if let Some(secret) = secret {
            req = req.bearer_auth(secret);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let source = r
            .headers()
            .get("x-wt-response-source")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = r.text().await.unwrap();
        (
            status,
            source,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// Reads server-sent events from a log stream until `pred` accepts a record.
pub struct LogStream {
    resp: reqwest::Response,
    buf: String,
}

impl LogStream {
    pub async fn open(env: &Env, container: &str, token: &str) -> LogStream {
        let resp = env
            .http
            .get(env.url(&format!("/api/logs/tenant/{container}?key={token}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let mut s = LogStream {
            resp,
            buf: String::new(),
        };
        // The stream opens with a comment; once it arrives the subscription exists.
        let first = s.next_chunk().await;
        assert_eq!(first, ": connected\n\n");
        s
    }

    async fn next_chunk(&mut self) -> String {
        let c = self
            .resp
            .chunk()
            .await
            .unwrap()
            .expect("the log stream ended");
        String::from_utf8(c.to_vec()).unwrap()
    }

    /// The next `data:` record (comments skipped).
    pub async fn next_record(&mut self) -> Value {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..end + 2).collect();
                if let Some(data) = event.strip_prefix("data: ") {
                    return serde_json::from_str(data.trim_end()).unwrap();
                }
                continue;
            }
            let c = self.next_chunk().await;
            self.buf.push_str(&c);
        }
    }
}

/// A plain HTTP client. In a workspace build reqwest has rustls without a
/// crypto provider, and panics unless one is installed first.
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// One event of `GET /api/changes`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    pub id: Option<u64>,
    pub event: String,
    pub data: Value,
}

/// Reads `GET /api/changes`.
pub struct Changes {
    resp: reqwest::Response,
    buf: String,
}

impl Changes {
    /// Opens the stream with the master token; `query` like `?container=acme`.
    pub async fn open(env: &Env, query: &str, last_event_id: Option<u64>) -> Changes {
        let mut req = env
            .http
            .get(env.url(&format!("/api/changes{query}")))
            .bearer_auth(env.master());
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let mut c = Changes {
            resp,
            buf: String::new(),
        };
        // Once the comment arrives, the stream follows the feed.
        while !c.buf.contains(": connected\n\n") {
            let chunk = c.resp.chunk().await.unwrap().expect("the stream ended");
            c.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        c.buf = c.buf.replacen(": connected\n\n", "", 1);
        c
    }

    /// The next event (comments skipped).
    pub async fn next(&mut self) -> ChangeEvent {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut e = ChangeEvent {
                    id: None,
                    event: "message".into(),
                    data: Value::Null,
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        e.id = Some(v.parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        e.event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        e.data = serde_json::from_str(v).unwrap();
                    }
                }
                if e.data != Value::Null {
                    return e;
                }
                continue;
            }
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), self.resp.chunk())
                .await
                .expect("no change event within 10 s")
                .unwrap()
                .expect("the stream ended");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

/// Polls `check` until it returns `Some`, for at most `within`: for states
/// another node reaches through the database, which sends this test no signal.
pub async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    within: std::time::Duration,
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}
