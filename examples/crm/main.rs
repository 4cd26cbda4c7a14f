//! The CRM platform, end to end on one machine.
//!
//! It prints the catalog of its extension points, serves one tenant's
//! extensions in-process over real HTTP (a stand-in for the webtask host),
//! and runs a short scenario: sync decisions with and without an extension,
//! a typed error from a failing extension, and async notifications drained
//! at shutdown.
//!
//! Run it with `cargo run --example crm`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::http::StatusCode;
use axum::routing::post;
use extend_hooks::{Catalog, Extend, Extension, OutcomeStatus, StaticDiscovery};
use extend_hooks_examples::{NewLead, enrich_lead, lead_archived, on_new_lead};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Outcomes are printed below; the log shows only what went wrong.
    tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .init();

    let catalog = Catalog::collect()?;
    println!(
        "Extension points of this CRM ({}):\n{catalog}",
        catalog.len()
    );

    // acme's extensions, as its developers would have written them.
    let extensions = axum::Router::new()
        .route(
            "/acme/score",
            post(|Json(lead): Json<Value>| async move {
                let corporate = !lead["email"].as_str().unwrap_or("").ends_with("@gmail.com");
                Json(json!({ "score": if corporate { 95 } else { 20 }, "accept": corporate }))
            }),
        )
        .route(
            "/acme/archived",
            post(
                |Json(event): Json<Value>| async move { Json(json!({ "noted": event["reason"] })) },
            ),
        )
        .route(
            "/broken/score",
            post(|| async {
                (
                    StatusCode::BAD_REQUEST,
                    Json(json!({ "code": 400, "message": "scoring table not configured" })),
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, extensions).await });

    let discovery = StaticDiscovery::new()
        .with(
            "acme",
            "on-new-lead",
            Extension::new(&format!("{base}/acme/score"))?.with_secret("acme-secret"),
        )
        .with(
            "acme",
            "lead-archived",
            Extension::new(&format!("{base}/acme/archived"))?.with_secret("acme-secret"),
        )
        .with(
            "initech",
            "on-new-lead",
            Extension::new(&format!("{base}/broken/score"))?,
        );
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let sink = outcomes.clone();
    let extend = Extend::builder()
        .discovery(discovery)
        .on_outcome(move |o| {
            let line = match &o.status {
                OutcomeStatus::Delivered { status } => format!(
                    "{} for {}: delivered ({status}) after {} attempt(s)",
                    o.point, o.container, o.attempts
                ),
                OutcomeStatus::NoExtension => {
                    format!(
                        "{} for {}: no extension, nothing to do",
                        o.point, o.container
                    )
                }
                OutcomeStatus::Failed(e) => format!("{} for {}: failed: {e}", o.point, o.container),
                _ => format!("{} for {}: dropped at shutdown", o.point, o.container),
            };
            sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
        })
        .build()?;

    let leads = [
        NewLead {
            name: "Ada Lovelace".into(),
            email: "ada@analytical.example".into(),
            company: Some("Analytical Engines".into()),
        },
        NewLead {
            name: "Bob".into(),
            email: "bob@gmail.com".into(),
            company: None,
        },
    ];

    println!("Scoring leads (on-new-lead, sync, 2s):");
    for tenant in ["acme", "globex", "initech"] {
        let container = extend.container(tenant);
        for lead in &leads {
            let started = Instant::now();
            let result = on_new_lead(&container, lead).await;
            let took = started.elapsed();
            let source = match tenant {
                "globex" => "platform default",
                _ => "tenant extension",
            };
            match result {
                Ok(d) => println!(
                    "  {tenant:<8} {:<13} score {:>3}  accept {:<5}  from {source}  ({:.1} ms)",
                    lead.name,
                    d.score,
                    d.accept,
                    took.as_secs_f64() * 1e3
                ),
                Err(e) => println!("  {tenant:<8} {:<13} error: {e}", lead.name),
            }
        }
    }

    println!("\nEnriching (enrich-lead, sync, no default):");
    match enrich_lead(&extend.container("acme"), &leads[0]).await? {
        Some(e) => println!("  acme: {e:?}"),
        None => println!("  acme has no enrich-lead extension: nothing added"),
    }

    println!("\nArchiving (lead-archived, async):");
    for tenant in ["acme", "globex"] {
        lead_archived(&extend.container(tenant), &leads[1], "duplicate")?;
        println!("  queued for {tenant}");
    }

    let report = extend.shutdown(Duration::from_secs(5)).await;
    for line in outcomes.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        println!("  {line}");
    }
    println!(
        "\nShut down: {} async invocation(s) dropped.",
        report.dropped
    );
    server.abort();
    Ok(())
}
