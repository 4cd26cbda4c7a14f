//! Helpers shared by the host's integration tests: a real host on loopback and
//! a plain HTTP client.
#![allow(dead_code, unreachable_pub)]

use extend_host::{Host, Limits};
use serde_json::{Value, json};

pub struct Env {
    pub host: Host,
    pub http: reqwest::Client,
}

pub async fn start() -> Env {
    start_with(Limits::default()).await
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
    Env { host, http: http() }
}

impl Env {
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
        let r = self
            .http
            .post(self.url(&format!("/api/run/{container}/{name}")))
            .json(&body)
            .send()
            .await
            .unwrap();
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
