//! What a platform team sees of invocations: one trace id from the
//! platform's span to the tenant's `console.log` line on the host, the
//! `extension_point` span with its outcome, and the metrics of the
//! `metrics` facade rendered by a Prometheus recorder.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use extend_hooks::{Container, Extend, extension_point};
use extend_host::Host;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Serialize, JsonSchema)]
struct Lead {
    x: i64,
}

#[derive(Deserialize, JsonSchema)]
struct Decision {
    score: i64,
}

/// Scores a lead.
#[extension_point(name = "traced-score", timeout = "5s")]
async fn traced_score(tenant: &Container, lead: &Lead) -> Decision {
    Decision { score: 0 }
}

/// What the global `tracing` subscriber wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One subscriber and one metrics recorder for this test binary.
fn observed() -> &'static (Captured, metrics_exporter_prometheus::PrometheusHandle) {
    static ONCE: OnceLock<(Captured, metrics_exporter_prometheus::PrometheusHandle)> =
        OnceLock::new();
    ONCE.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_writer(move || writer.clone())
            .init();
        let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .expect("the only recorder");
        (captured, handle)
    })
}

/// The `trace_id` field of the log lines written so far that mention `what`.
fn trace_ids_in_spans(captured: &Captured, what: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    text.lines()
        .filter(|l| l.contains(what))
        .filter_map(|l| {
            l.split("trace_id=").nth(1).map(|t| {
                t.trim_start_matches('"')
                    .chars()
                    .take_while(char::is_ascii_hexdigit)
                    .collect()
            })
        })
        .collect()
}

async fn first_log_record(
    host: &Host,
    token: &str,
) -> (tokio::sync::mpsc::Receiver<serde_json::Value>, ()) {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let mut resp = reqwest::get(format!("{}/api/logs/tenant/acme?key={token}", host.url()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // `: connected` first: the subscription exists.
    resp.chunk().await.unwrap().unwrap();
    tokio::spawn(async move {
        let mut buf = String::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            buf.push_str(std::str::from_utf8(&chunk).unwrap());
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                if let Some(data) = event.strip_prefix("data: ") {
                    let _ = tx.send(serde_json::from_str(data.trim()).unwrap()).await;
                }
            }
        }
    });
    (rx, ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_id_flows_from_the_platform_span_to_the_tenants_log_line() {
    let (captured, metrics) = observed();
    extend_hooks::install_crypto_provider();
    let host = Host::builder().memory().start().await.unwrap();
    const PLATFORM_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    let joined = Extend::builder()
        .webtask(host.url(), host.master_token())
        .trace_parent(|| Some(format!("00-{PLATFORM_TRACE}-00f067aa0ba902b7-01")))
        .build()
        .unwrap();
    joined
        .management()
        .unwrap()
        .install(
            "acme",
            "traced-score",
            "scorer",
            "module.exports = (ctx, cb) => { console.log('scoring ' + ctx.body.x); cb(null, { score: ctx.body.x }); }",
        )
        .await
        .unwrap();
    let (mut logs, ()) = first_log_record(&host, host.master_token()).await;

    // The platform's trace (from its tracing-opentelemetry span, say).
    let acme = joined.container("acme");
    assert_eq!(traced_score(&acme, &Lead { x: 7 }).await.unwrap().score, 7);
    let line = tokio::time::timeout(Duration::from_secs(10), logs.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(line["msg"], "scoring 7");
    assert_eq!(line["trace_id"], PLATFORM_TRACE);
    assert!(
        trace_ids_in_spans(captured, "extension_point").contains(&PLATFORM_TRACE.to_owned()),
        "the invocation span carries the trace id"
    );

    // Without a trace of its own, an invocation starts one: the same id in
    // its span and in the tenant's log line.
    let fresh = Extend::builder()
        .webtask(host.url(), host.master_token())
        .build()
        .unwrap();
    assert_eq!(
        traced_score(&fresh.container("acme"), &Lead { x: 8 })
            .await
            .unwrap()
            .score,
        8
    );
    let line = tokio::time::timeout(Duration::from_secs(10), logs.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(line["msg"], "scoring 8");
    let trace = line["trace_id"].as_str().unwrap().to_owned();
    assert_eq!(trace.len(), 32);
    assert_ne!(trace, PLATFORM_TRACE);
    let text = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    let span_line = text
        .lines()
        .find(|l| l.contains("extension_point") && l.contains(&trace))
        .unwrap_or_else(|| panic!("no span with trace {trace} in\n{text}"));
    for field in [
        "point=\"traced-score\"",
        "container=\"acme\"",
        "mode=\"sync\"",
        "outcome=\"extension\"",
        "status=200",
        "attempts=1",
        "latency_ms=",
    ] {
        assert!(span_line.contains(field), "no {field} in {span_line}");
    }

    // The platform-side metrics, through the facade.
    let rendered = metrics.render();
    for line in [
        "extend_invocations_total{point=\"traced-score\",mode=\"sync\",outcome=\"extension\"} 2",
        "extend_discovery_cache_total{result=\"miss\"} 2",
    ] {
        assert!(
            rendered.lines().any(|l| l == line),
            "no `{line}` in\n{rendered}"
        );
    }
    assert!(
        rendered.contains("extend_invocation_duration_seconds"),
        "{rendered}"
    );
    host.shutdown().await.unwrap();
}
