//! The log line of each async outcome. In a binary of its own: tracing
//! caches callsite interest process-wide, and deliveries of tests running
//! beside it on other threads (with no subscriber) could leave the outcome's
//! callsite disabled for this test's scoped subscriber. That happened (the
//! line went missing when run beside `async_invoke`'s other tests), so it
//! stays alone.

use std::time::Duration;

use extend_hooks::Extend;
use extend_hooks::discovery::{Endpoint, StaticDiscovery};
use extend_hooks_examples::{NewLead, lead_archived};
use extend_hooks_tests::extensions;

fn lead() -> NewLead {
    NewLead {
        name: "Ada".into(),
        email: "ada@example.com".into(),
        company: None,
    }
}

/// A log sink for the test's own subscriber.
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// A current-thread runtime: deliveries run on this thread, under the
// subscriber set for it.
#[tokio::test(flavor = "current_thread")]
async fn every_outcome_is_logged_once_with_its_fields() {
    use tracing_subscriber::util::SubscriberInitExt;
    let logs = Logs::default();
    let sink = logs.clone();
    let _guard = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish()
        .set_default();

    let server = extensions().await;
    let (tx, mut outcomes) = tokio::sync::mpsc::unbounded_channel();
    let extend = Extend::builder()
        .discovery(StaticDiscovery::new().with(
            "acme",
            "lead-archived",
            Endpoint::new(&server.url("/flaky/1")).unwrap(),
        ))
        .async_backoff(Duration::from_millis(1), Duration::from_millis(20))
        .on_outcome(move |_| {
            let _ = tx.send(());
        })
        .build()
        .unwrap();
    lead_archived(&extend.container("acme"), &lead(), "x").unwrap();
    lead_archived(&extend.container("globex"), &lead(), "x").unwrap();
    for _ in 0..2 {
        outcomes.recv().await.unwrap();
    }
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let delivered: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("async extension delivered"))
        .collect();
    assert_eq!(delivered.len(), 1, "{text}");
    for field in [
        "point=\"lead-archived\"",
        "container=\"acme\"",
        "status=200",
        "attempts=2",
        "elapsed_ms=",
    ] {
        assert!(
            delivered[0].contains(field),
            "{field} missing from {}",
            delivered[0]
        );
    }
    // No extension is not worth a line at the default level.
    assert!(!text.contains("globex"), "{text}");
}
