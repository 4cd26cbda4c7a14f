//! Helpers for the cross-crate tests: real HTTP extensions served by axum on
//! 127.0.0.1, port 0. Each server stops when its handle is dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::sync::{Mutex, oneshot};

/// A running test server.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    /// What the extensions saw.
    pub seen: Arc<Seen>,
}

/// Requests the test extensions received.
#[derive(Debug, Default)]
pub struct Seen {
    /// Requests per path, in order: (path, authorization header, body).
    pub requests: Mutex<Vec<(String, Option<String>, Bytes)>>,
    /// Requests received on `/flaky`.
    pub flaky_hits: AtomicUsize,
}

impl TestServer {
    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the server (also done on drop).
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Serves `router` on 127.0.0.1:0.
pub async fn serve(router: Router, seen: Arc<Seen>) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    TestServer {
        addr,
        stop: Some(stop),
        seen,
    }
}

/// The standard set of misbehaving and well-behaved extensions:
///
/// | path | behaviour |
/// |---|---|
/// | `/echo` | answers the request body |
/// | `/score` | answers `{"score": 90, "accept": true}` |
/// | `/slow/{ms}` | waits, then answers `{"score": 1, "accept": false}` |
/// | `/fail` | 500 with a JSON error body |
/// | `/flaky/{n}` | 503 for the first `n` requests, then `{"score": 7, "accept": true}` |
/// | `/limited` | 429 with `Retry-After: 0` |
/// | `/malformed` | 200 with a body that is not JSON |
/// | `/wrong-type` | 200 with JSON of another shape |
/// | `/big` | 200 with a 64 KiB JSON string |
pub async fn extensions() -> TestServer {
    let seen = Arc::new(Seen::default());
    let router = Router::new()
        .route("/echo", post(|body: Bytes| async move { json(body) }))
        .route(
            "/score",
            post(|| async { json(r#"{"score":90,"accept":true}"#) }),
        )
        .route(
            "/slow/{ms}",
            post(
                |axum::extract::Path(ms): axum::extract::Path<u64>| async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    json(r#"{"score":1,"accept":false}"#)
                },
            ),
        )
        .route(
            "/fail",
            post(|| async {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"code":500,"message":"score table missing"}"#,
                )
            }),
        )
        .route(
            "/flaky/{n}",
            post(
                |State(seen): State<Arc<Seen>>,
                 axum::extract::Path(n): axum::extract::Path<usize>| async move {
                    let hit = seen.flaky_hits.fetch_add(1, Ordering::SeqCst);
                    if hit < n {
                        (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response()
                    } else {
                        json(r#"{"score":7,"accept":true}"#)
                    }
                },
            ),
        )
        .route(
            "/limited",
            post(|| async {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, "0")],
                    "slow down",
                )
            }),
        )
        .route("/malformed", post(|| async { json("{\"score\": 9") }))
        .route(
            "/wrong-type",
            post(|| async { json(r#"{"score":"high"}"#) }),
        )
        .route(
            "/big",
            post(|| async { json(format!("\"{}\"", "x".repeat(64 * 1024))) }),
        )
        .layer(axum::middleware::from_fn_with_state(seen.clone(), record))
        .with_state(seen.clone());
    serve(router, seen).await
}

fn json(body: impl Into<axum::body::Body>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body.into()).into_response()
}

async fn record(
    State(seen): State<Arc<Seen>>,
    headers: HeaderMap,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    seen.requests.lock().await.push((path, auth, bytes.clone()));
    next.run(axum::extract::Request::from_parts(parts, bytes.into()))
        .await
}

/// What the benchmarks share.
pub mod bench {
    /// Whether this is a smoke round (`EXTEND_BENCH_SMOKE=1`, what CI runs):
    /// every section runs once and briefly, to prove the bench still runs;
    /// its figures mean nothing.
    pub fn smoke() -> bool {
        std::env::var_os("EXTEND_BENCH_SMOKE").is_some_and(|v| v != "0")
    }

    /// `full`, or `small` in a smoke round.
    pub fn scaled<T>(full: T, small: T) -> T {
        if smoke() { small } else { full }
    }
}
