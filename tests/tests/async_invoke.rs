//! Async invocation end to end: queueing, retries, outcomes, shutdown.
//! Outcomes are observed through the outcome callback (a signal), never by sleeping.

use std::sync::atomic::Ordering;
use std::time::Duration;

use extend_hooks::discovery::{Endpoint, StaticDiscovery};
use extend_hooks::{ErrorKind, Extend, ExtendBuilder, Outcome, OutcomeStatus};
use extend_hooks_examples::{NewLead, lead_archived};
use extend_hooks_tests::{TestServer, extensions};
use tokio::sync::mpsc;

fn lead() -> NewLead {
    NewLead {
        name: "Ada".into(),
        email: "ada@example.com".into(),
        company: None,
    }
}

/// What a test reads of an outcome (outcomes themselves are not `Clone`).
#[derive(Debug, PartialEq)]
struct Seen {
    point: &'static str,
    container: String,
    status: Status,
    attempts: u32,
}

#[derive(Debug, PartialEq)]
enum Status {
    Delivered(u16),
    NoExtension,
    Failed(ErrorKind, String),
    Dropped,
}

fn seen(o: &Outcome) -> Seen {
    Seen {
        point: o.point,
        container: o.container.to_string(),
        status: match &o.status {
            OutcomeStatus::Delivered { status } => Status::Delivered(*status),
            OutcomeStatus::NoExtension => Status::NoExtension,
            OutcomeStatus::Failed(e) => Status::Failed(e.kind().clone(), e.to_string()),
            OutcomeStatus::Dropped => Status::Dropped,
            other => panic!("unexpected outcome {other:?}"),
        },
        attempts: o.attempts,
    }
}

/// A client whose outcomes arrive on the returned channel.
fn client(
    server: &TestServer,
    path: &str,
    configure: impl FnOnce(ExtendBuilder) -> ExtendBuilder,
) -> (Extend, mpsc::UnboundedReceiver<Seen>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let builder = Extend::builder()
        .discovery(StaticDiscovery::new().with(
            "acme",
            "lead-archived",
            Endpoint::new(&server.url(path)).unwrap().with_secret("k"),
        ))
        .async_backoff(Duration::from_millis(1), Duration::from_millis(20))
        .on_outcome(move |o| {
            let _ = tx.send(seen(o));
        });
    (configure(builder).build().unwrap(), rx)
}

#[tokio::test]
async fn queued_invocation_is_delivered_with_payload_and_secret() {
    let server = extensions().await;
    let (extend, mut outcomes) = client(&server, "/echo", |b| b);
    lead_archived(&extend.container("acme"), &lead(), "duplicate").unwrap();
    let outcome = outcomes.recv().await.unwrap();
    assert_eq!(
        outcome,
        Seen {
            point: "lead-archived",
            container: "acme".into(),
            status: Status::Delivered(200),
            attempts: 1
        }
    );
    let requests = server.seen.requests.lock().await;
    let (_, auth, body) = &requests[0];
    assert_eq!(auth.as_deref(), Some("Bearer k"));
    let body: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"lead": {"name": "Ada", "email": "ada@example.com", "company": null}, "reason": "duplicate"})
    );
}

#[tokio::test]
async fn a_container_without_extension_has_nothing_to_deliver() {
    let server = extensions().await;
    let (extend, mut outcomes) = client(&server, "/echo", |b| b);
    lead_archived(&extend.container("globex"), &lead(), "spam").unwrap();
    let outcome = outcomes.recv().await.unwrap();
    assert_eq!(outcome.status, Status::NoExtension);
    assert_eq!(outcome.attempts, 0);
    assert!(server.seen.requests.lock().await.is_empty());
}

#[tokio::test]
async fn transient_failures_are_retried_until_delivered() {
    let server = extensions().await;
    let (extend, mut outcomes) = client(&server, "/flaky/2", |b| b.async_max_attempts(4));
    lead_archived(&extend.container("acme"), &lead(), "x").unwrap();
    let outcome = outcomes.recv().await.unwrap();
    assert_eq!(outcome.status, Status::Delivered(200));
    assert_eq!(outcome.attempts, 3);
    assert_eq!(server.seen.flaky_hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn retries_stop_at_the_attempt_limit() {
    let server = extensions().await;
    let (extend, mut outcomes) = client(&server, "/limited", |b| b.async_max_attempts(3));
    lead_archived(&extend.container("acme"), &lead(), "x").unwrap();
    let outcome = outcomes.recv().await.unwrap();
    assert_eq!(outcome.attempts, 3);
    match outcome.status {
        Status::Failed(
            ErrorKind::RateLimited {
                retry_after,
                message,
            },
            _,
        ) => {
            assert_eq!(retry_after, Some(Duration::ZERO));
            assert_eq!(message, "slow down");
        }
        other => panic!("expected a 429 failure, got {other:?}"),
    }
    assert_eq!(server.seen.requests.lock().await.len(), 3);
}

#[tokio::test]
async fn permanent_failures_are_not_retried() {
    let server = extensions().await;
    let (extend, mut outcomes) = client(&server, "/fail", |b| b.async_max_attempts(5));
    lead_archived(&extend.container("acme"), &lead(), "x").unwrap();
    let outcome = outcomes.recv().await.unwrap();
    assert_eq!(outcome.attempts, 1);
    match outcome.status {
        Status::Failed(ErrorKind::Status { status: 500, .. }, message) => assert!(
            message.starts_with(
                "the extension for \"lead-archived\" in container \"acme\" answered 500"
            ),
            "{message}"
        ),
        other => panic!("expected a 500 failure, got {other:?}"),
    }
}

#[tokio::test]
async fn each_attempt_is_bounded_by_the_point_timeout() {
    // lead-archived has the async default of 30s per attempt; a point with a
    // short one shows the bound.
    #[extend_hooks::extension_point(name = "quick-note", mode = "async", timeout = "100ms")]
    fn quick_note(tenant: &extend_hooks::Container, note: &str);

    let server = extensions().await;
    let (tx, mut outcomes) = mpsc::unbounded_channel();
    let extend = Extend::builder()
        .discovery(StaticDiscovery::new().with(
            "acme",
            "quick-note",
            Endpoint::new(&server.url("/slow/10000")).unwrap(),
        ))
        .on_outcome(move |o| {
            let _ = tx.send(seen(o));
        })
        .build()
        .unwrap();
    quick_note(&extend.container("acme"), "hi").unwrap();
    let outcome = outcomes.recv().await.unwrap();
    assert_eq!(outcome.attempts, 1, "timeouts are not retried");
    match outcome.status {
        Status::Failed(ErrorKind::Timeout { after }, _) => {
            assert_eq!(after, Duration::from_millis(100))
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn a_full_queue_refuses_at_once() {
    let server = extensions().await;
    let (extend, _outcomes) = client(&server, "/slow/10000", |b| b.async_queue_capacity(2));
    let acme = extend.container("acme");
    lead_archived(&acme, &lead(), "1").unwrap();
    lead_archived(&acme, &lead(), "2").unwrap();
    let err = lead_archived(&acme, &lead(), "3").unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::QueueFull { capacity: 2 });
    assert_eq!(
        err.to_string(),
        "async invocation of \"lead-archived\" for container \"acme\" was not queued: all 2 queue places are taken"
    );
    assert_eq!(extend.pending(), 2);
    let report = extend.shutdown(Duration::from_millis(50)).await;
    assert_eq!(report.dropped, 2);
    assert_eq!(extend.pending(), 0);
}

#[tokio::test]
async fn shutdown_drains_queued_invocations_within_the_grace_period() {
    let server = extensions().await;
    let (extend, mut outcomes) = client(&server, "/slow/100", |b| b.async_concurrency(2));
    let acme = extend.container("acme");
    for i in 0..6 {
        lead_archived(&acme, &lead(), &i.to_string()).unwrap();
    }
    let report = extend.shutdown(Duration::from_secs(30)).await;
    assert_eq!(report.dropped, 0);
    let mut delivered = 0;
    while let Ok(outcome) = outcomes.try_recv() {
        assert_eq!(outcome.status, Status::Delivered(200));
        delivered += 1;
    }
    assert_eq!(delivered, 6);
    assert_eq!(server.seen.requests.lock().await.len(), 6);

    let err = lead_archived(&acme, &lead(), "late").unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::ShutDown);
}

/// Shutdown goes on delivering what the queue holds, retries included: an
/// invocation that failed once and waits for its backoff is delivered, not
/// dropped, when the retry comes within the grace.
#[tokio::test]
async fn a_retry_due_within_the_grace_is_delivered_at_shutdown() {
    let server = extensions().await;
    let (extend, mut outcomes) = client(&server, "/flaky/1", |b| {
        b.async_backoff(Duration::from_millis(200), Duration::from_millis(200))
    });
    lead_archived(&extend.container("acme"), &lead(), "x").unwrap();
    let report = extend.shutdown(Duration::from_secs(30)).await;
    assert_eq!(report.dropped, 0);
    let outcome = outcomes
        .try_recv()
        .expect("reported before shutdown returned");
    assert_eq!(outcome.status, Status::Delivered(200));
    assert_eq!(outcome.attempts, 2);
    assert_eq!(server.seen.flaky_hits.load(Ordering::SeqCst), 2);
    assert_eq!(extend.pending(), 0);
}

#[tokio::test]
async fn shutdown_reports_what_the_grace_period_could_not_deliver() {
    let server = extensions().await;
    let (extend, mut outcomes) = client(&server, "/slow/10000", |b| b);
    let acme = extend.container("acme");
    for i in 0..3 {
        lead_archived(&acme, &lead(), &i.to_string()).unwrap();
    }
    let report = extend.shutdown(Duration::from_millis(100)).await;
    assert_eq!(report.dropped, 3);
    for _ in 0..3 {
        let outcome = outcomes.recv().await.unwrap();
        assert_eq!(outcome.status, Status::Dropped);
    }
}
