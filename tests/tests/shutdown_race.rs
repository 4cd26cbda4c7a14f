//! `enqueue` racing `Extend::shutdown`. In a binary of its own: it hammers
//! the delivery log callsites from threads without a subscriber, which would
//! disturb the log-capturing test beside it (tracing caches callsite interest
//! process-wide).

use std::sync::atomic::Ordering;
use std::time::Duration;

use extend_hooks::discovery::StaticDiscovery;
use extend_hooks::{ErrorKind, Extend};
use extend_hooks_examples::{NewLead, lead_archived};

fn lead() -> NewLead {
    NewLead {
        name: "Ada".into(),
        email: "ada@example.com".into(),
        company: None,
    }
}

/// `enqueue` racing `shutdown`: every call either is refused with `ShutDown`
/// (or `QueueFull`) or has its outcome reported by the time `shutdown`
/// returns. Several rounds, since the window is narrow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_racing_shutdown_loses_nothing() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    for round in 0..20 {
        let reported = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&reported);
        let extend = Extend::builder()
            // No extension: each task ends in microseconds, so the tracker
            // empties while enqueues are still in progress: the narrow window.
            .discovery(StaticDiscovery::new())
            .async_queue_capacity(100_000)
            .on_outcome(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let hammers: Vec<_> = (0..4)
            .map(|_| {
                let acme = extend.container("acme");
                let started = started_tx.clone();
                std::thread::spawn(move || {
                    let mut accepted = 0usize;
                    loop {
                        match lead_archived(&acme, &lead(), "race") {
                            Ok(()) => accepted += 1,
                            Err(e) if e.kind() == &ErrorKind::ShutDown => return accepted,
                            Err(e) => assert!(
                                matches!(e.kind(), ErrorKind::QueueFull { .. }),
                                "unexpected refusal: {e}"
                            ),
                        }
                        if accepted == 20 {
                            let _ = started.send(());
                        }
                    }
                })
            })
            .collect();
        for _ in 0..4 {
            started_rx.recv().unwrap();
        }
        let report = extend.shutdown(Duration::from_secs(30)).await;
        let reported_at_return = reported.load(Ordering::SeqCst);
        let accepted: usize = hammers.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(report.dropped, 0, "round {round}");
        assert_eq!(
            reported_at_return, accepted,
            "round {round}: {accepted} invocations were accepted but {reported_at_return} outcomes were reported when shutdown returned"
        );
        assert_eq!(extend.pending(), 0);
    }
}
