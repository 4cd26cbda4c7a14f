//! The CRM platform, end to end on one machine.
//!
//! It prints the catalog of its extension points, starts `extend-host`
//! in-process (or uses the host in `EXTEND_URL` with the master token in
//! `EXTEND_TOKEN`), provisions two tenants, installs one tenant's JavaScript
//! extensions from `examples/crm/extensions/`, and runs a short scenario:
//! decisions from the extension or the platform's default, a typed error from
//! an extension that fails, an enrichment that calls acme's own company
//! directory (a small service this program starts on loopback, reached with
//! acme's API key under the host's egress policy), and async notifications
//! whose `console.log` lines come back through the host's log stream. It
//! drains them at shutdown.
//!
//! Run it with `cargo run --example crm`; add `-- --serve` to keep the
//! in-process host running afterwards, so that acme's Extension Editor URL
//! (printed at the end) can be opened in a browser.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use extend_hooks::{Extend, OutcomeStatus};
use extend_hooks_examples::{NewLead, enrich_lead, format_email, lead_archived, on_new_lead};

/// acme's extensions, as its developers would have written them.
const EXTENSIONS: [(&str, &str); 4] = [
    ("on-new-lead", include_str!("extensions/on-new-lead.js")),
    ("enrich-lead", include_str!("extensions/enrich-lead.js")),
    ("lead-archived", include_str!("extensions/lead-archived.js")),
    // In the CRM's own language: a Mustache template, compiled on the host.
    (
        "format-email",
        include_str!("extensions/format-email.mustache"),
    ),
];

fn main() -> std::process::ExitCode {
    // The embedded host runs tenants' JavaScript in worker processes started
    // from this very program: when started as one, be one.
    if let Some(code) = extend_host::worker_main_if_requested() {
        return code;
    }
    match crm() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn crm() -> Result<(), Box<dyn std::error::Error>> {
    // Outcomes are printed below; the log shows only what went wrong.
    tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .init();

    let catalog = extend_hooks_examples::catalog()?;
    println!(
        "Extension points of this CRM ({}):\n{catalog}",
        catalog.len()
    );

    // acme's own company directory: the service its enrich-lead extension calls.
    let directory = directory::start().await?;

    // The host: a running one if configured, else one in this process, in memory.
    let (embedded, url, master) = match (std::env::var("EXTEND_URL"), std::env::var("EXTEND_TOKEN"))
    {
        (Ok(url), Ok(token)) => (None, url, token),
        _ => {
            // Loopback is outside the default egress policy: the operator
            // allows the directory's address (`--allow-egress` on a server).
            let egress = extend_host::EgressPolicy::default().allow(&directory.addr.to_string())?;
            let host = extend_host::Host::builder()
                .memory()
                .worker_program(std::env::current_exe()?)
                .egress(egress)
                .start()
                .await?;
            let (url, token) = (host.url().to_owned(), host.master_token().to_owned());
            (Some(host), url, token)
        }
    };
    let how = if embedded.is_some() {
        "started in-process, in memory, JavaScript in worker processes"
    } else {
        "from EXTEND_URL"
    };
    println!("extend-host at {url} ({how})\n");

    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let sink = outcomes.clone();
    let extend = Extend::builder()
        .webtask(&url, &master)
        .on_outcome(move |o| {
            let line = match &o.status {
                OutcomeStatus::Delivered { status } => format!("delivered ({status})"),
                OutcomeStatus::NoExtension => "no extension, nothing to do".to_owned(),
                OutcomeStatus::Failed(e) => format!("failed: {e}"),
                _ => "dropped at shutdown".to_owned(),
            };
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(format!("{} for {}: {line}", o.point, o.container));
        })
        .build()?;
    let admin = extend.management().expect("built with a webtask host");
    let published = admin.publish_catalog(&catalog, false).await?;
    println!(
        "Published the catalog to the host (version {}, {} points): extensions must name one of them\n",
        published.version,
        published.points.len()
    );

    println!("Provisioning tenants:");
    let mut acme_token = String::new();
    for tenant in ["acme", "globex"] {
        let token = admin.issue_tenant_token(tenant).await?;
        println!(
            "  {tenant:<7} tenant token {}… (the platform stores it)",
            &token[..16]
        );
        if tenant == "acme" {
            acme_token = token;
        }
    }
    // acme's secrets for its enrichment: where its directory is, and its key.
    let acme_secrets = std::collections::BTreeMap::from([
        (
            "DIRECTORY_URL".to_owned(),
            format!("http://{}", directory.addr),
        ),
        ("DIRECTORY_KEY".to_owned(), directory::KEY.to_owned()),
    ]);
    for (point, code) in EXTENSIONS {
        let x = if point == "enrich-lead" {
            admin
                .install_with_secrets("acme", point, point, code, &acme_secrets)
                .await?
        } else {
            admin.install("acme", point, point, code).await?
        };
        println!("  acme    installed {point:<14} -> {}", x.url);
    }
    println!("  globex  no extensions: the platform's defaults apply\n");
    let editor_url = format!("{url}/edit/acme#/on-new-lead/{acme_token}");

    // acme's log stream, read as the tenant would: with its own token.
    let logs = follow_logs(&url, "acme", &acme_token).await?;

    let leads = [
        NewLead {
            name: "Ada".into(),
            email: "ada@analytical.example".into(),
            company: Some("Analytical Engines".into()),
        },
        NewLead {
            name: "Bob".into(),
            email: "bob@gmail.com".into(),
            company: None,
        },
        NewLead {
            name: "Eve".into(),
            email: "eve at home".into(),
            company: None,
        },
    ];

    println!("Scoring leads (on-new-lead, sync, 2s):");
    for tenant in ["acme", "globex"] {
        let container = extend.container(tenant);
        let from = match extend.discover(tenant, "on-new-lead").await? {
            Some(_) => "extension",
            None => "default",
        };
        for lead in &leads {
            let started = Instant::now();
            let result = on_new_lead(&container, lead).await;
            let ms = started.elapsed().as_secs_f64() * 1e3;
            match result {
                Ok(d) => println!(
                    "  {tenant:<7} {:<4} score {:>3}  accept {:<5}  from {from:<9}  {ms:>5.1} ms",
                    lead.name, d.score, d.accept
                ),
                Err(e) => println!(
                    "  {tenant:<7} {:<4} {}:\n          {e}",
                    lead.name,
                    kind_name(e.kind())
                ),
            }
        }
    }

    println!("\nEnriching (enrich-lead, sync, no default; acme's calls its company directory):");
    for tenant in ["acme", "globex"] {
        match enrich_lead(&extend.container(tenant), &leads[0]).await {
            Ok(Some(e)) => println!("  {tenant:<7} {e:?}"),
            Ok(None) => println!("  {tenant:<7} no extension: nothing added"),
            Err(e) => println!("  {tenant:<7} {}:\n          {e}", kind_name(e.kind())),
        }
    }
    println!(
        "  acme's directory answered {} request(s) with acme's key",
        directory.served()
    );

    println!("\nThe e-mail to a new lead (format-email, a Mustache template):");
    for tenant in ["acme", "globex"] {
        let text = format_email(&extend.container(tenant), &leads[0]).await?;
        println!(
            "  {tenant:<7} {}",
            text.trim_end().replace('\n', "\n          ")
        );
    }

    println!("\nArchiving (lead-archived, async):");
    for tenant in ["acme", "globex"] {
        lead_archived(&extend.container(tenant), &leads[1], "duplicate")?;
    }
    let report = extend.shutdown(Duration::from_secs(5)).await;
    for line in outcomes.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        println!("  {line}");
    }
    match tokio::time::timeout(Duration::from_secs(5), logs.recv_async()).await {
        Ok(Some(line)) => println!("  acme's log stream: {line}"),
        _ => println!("  acme's log stream: (no line arrived within 5 s)"),
    }

    println!(
        "\nacme's Extension Editor (with acme's tenant token in the fragment):\n  {editor_url}"
    );
    if let Some(host) = embedded {
        if std::env::args().any(|a| a == "--serve") {
            println!("  serving until Ctrl-C");
            tokio::signal::ctrl_c().await?;
        } else {
            println!("  (the in-process host stops now: run with `-- --serve` to keep it up)");
        }
        host.shutdown().await?;
    }
    println!(
        "\nShut down cleanly: {} async invocation(s) dropped.",
        report.dropped
    );
    Ok(())
}

/// A short name for an error kind, for the scenario's output.
fn kind_name(kind: &extend_hooks::ErrorKind) -> &'static str {
    use extend_hooks::ErrorKind as K;
    match kind {
        K::ExtensionFailed { .. } => "ExtensionFailed",
        K::ExtensionCrashed { .. } => "ExtensionCrashed",
        K::CompilationFailed { .. } => "CompilationFailed",
        K::Timeout { .. } => "Timeout",
        _ => "Error",
    }
}

/// The `msg` of each record on a container's log stream (server-sent events).
struct Logs(tokio::sync::mpsc::Receiver<String>);

impl Logs {
    async fn recv_async(mut self) -> Option<String> {
        self.0.recv().await
    }
}

async fn follow_logs(url: &str, container: &str, token: &str) -> Result<Logs, reqwest::Error> {
    extend_hooks::install_crypto_provider();
    let mut resp = reqwest::Client::new()
        // Tokens are JWTs: URL-safe as they are.
        .get(format!("{url}/api/logs/tenant/{container}?key={token}"))
        .send()
        .await?
        .error_for_status()?;
    // The stream opens with a comment: after it, the subscription is live.
    resp.chunk().await?;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let mut buf = String::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                let record = event
                    .strip_prefix("data: ")
                    .and_then(|d| serde_json::from_str::<serde_json::Value>(d.trim()).ok());
                if let Some(msg) = record.as_ref().and_then(|r| r["msg"].as_str())
                    && tx.send(msg.to_owned()).await.is_err()
                {
                    return;
                }
            }
        }
    });
    Ok(Logs(rx))
}

/// acme's company directory: a tiny HTTP service on loopback that answers
/// `GET /companies?name=…` to requests bearing acme's key. It stands for a
/// tenant's own system, which extensions call with the tenant's secrets.
mod directory {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

    /// The API key acme's extension sends.
    pub(crate) const KEY: &str = "acme-directory-key-4f1c";

    pub(crate) struct Directory {
        pub(crate) addr: SocketAddr,
        served: Arc<AtomicUsize>,
    }

    impl Directory {
        /// Requests answered with the right key.
        pub(crate) fn served(&self) -> usize {
            self.served.load(Ordering::Relaxed)
        }
    }

    pub(crate) async fn start() -> std::io::Result<Directory> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let served = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&served);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let count = Arc::clone(&count);
                tokio::spawn(async move {
                    let _ = serve(stream, &count).await;
                });
            }
        });
        Ok(Directory { addr, served })
    }

    /// One request per connection: enough for a demonstration.
    async fn serve(stream: tokio::net::TcpStream, served: &AtomicUsize) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).await?;
        let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut authorized = false;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).await? == 0 || header.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':')
                && k.eq_ignore_ascii_case("authorization")
            {
                authorized = v.trim() == format!("Bearer {KEY}");
            }
        }
        let name = target
            .split_once("?name=")
            .map(|(_, n)| n.replace("%20", " ").replace('+', " "))
            .unwrap_or_default();
        let (status, body) = if !authorized {
            (
                "401 Unauthorized",
                r#"{"error":"a valid API key is required"}"#.to_owned(),
            )
        } else if name == "Analytical Engines" {
            served.fetch_add(1, Ordering::Relaxed);
            (
                "200 OK",
                r#"{"industry":"computing","employees":12}"#.to_owned(),
            )
        } else {
            served.fetch_add(1, Ordering::Relaxed);
            ("404 Not Found", r#"{"error":"no such company"}"#.to_owned())
        };
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        reader.get_mut().write_all(response.as_bytes()).await?;
        reader.get_mut().shutdown().await
    }
}
