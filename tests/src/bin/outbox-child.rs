//! A platform process for the outbox crash test (`tests/tests/outbox.rs`):
//! it records `OUTBOX_COUNT` async invocations in the SQLite outbox at
//! `OUTBOX_PATH` (or the PostgreSQL one at `OUTBOX_DATABASE_URL`), prints `queued N` once every call has returned `Ok`, and
//! goes on delivering until the test kills it.

use std::time::Duration;

use extend_hooks::outbox::{OutboxConfig, RetrySchedule};
use extend_hooks::{Container, Extend, extension_point};
use serde::Serialize;

#[derive(Serialize, schemars::JsonSchema)]
struct Event {
    n: u32,
}

/// The test's durable point (declared the same way in the test).
#[extension_point(name = "durable-event", mode = "async", timeout = "1s")]
fn durable_event(tenant: &Container, event: &Event);

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

#[tokio::main]
async fn main() {
    extend_hooks::install_crypto_provider();
    let count: u32 = var("OUTBOX_COUNT").parse().expect("a count");
    let extend = Extend::builder()
        .webtask(var("EXTEND_URL"), var("EXTEND_TOKEN"))
        .outbox(
            // The defaults: 64 in flight, 16 to one container, 4 s leases;
            // a PostgreSQL outbox when OUTBOX_DATABASE_URL is set.
            match std::env::var("OUTBOX_DATABASE_URL") {
                Ok(url) => OutboxConfig::postgres(url),
                Err(_) => OutboxConfig::sqlite(var("OUTBOX_PATH")),
            }
            .retry_schedule(RetrySchedule::new([Duration::from_millis(100); 20])),
        )
        .build()
        .expect("the client");
    let acme = extend.container("acme");
    for n in 0..count {
        durable_event(&acme, &Event { n }).expect("recorded");
    }
    println!("queued {count}");
    // Deliver until killed.
    std::future::pending::<()>().await;
}
