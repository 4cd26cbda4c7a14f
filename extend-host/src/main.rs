//! `extend-host serve`: the host as a standalone server.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "extend-host",
    version,
    about = "A webtask-compatible extension host"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the management API and run extensions.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8721")]
        listen: SocketAddr,
        /// Directory for the database, keys and master token.
        #[arg(long, default_value = "./extend-data")]
        data_dir: PathBuf,
        /// Keep everything in memory (a new master token on every start).
        #[arg(long, conflicts_with_all = ["data_dir", "database"])]
        memory: bool,
        /// Keep everything in this PostgreSQL database, which several hosts
        /// may share (`postgres://user@host:port/db`). Needs a key-encryption
        /// key (--key-file or EXTEND_KEY).
        #[arg(long, env = "EXTEND_DATABASE_URL", conflicts_with = "data_dir")]
        database: Option<String>,
        /// File holding the key-encryption key that seals the keys hosts on
        /// one database share (`extend-host new-key` makes one). Or give the
        /// key itself in EXTEND_KEY.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// JavaScript executor threads (default: four per core, at least eight).
        #[arg(long)]
        workers: Option<usize>,
        /// Base of the webtask URLs handed out, when clients come through a proxy.
        #[arg(long)]
        public_url: Option<String>,
        /// A token that reads GET /metrics, so that Prometheus needs no
        /// master token.
        #[arg(long, env = "EXTEND_METRICS_TOKEN", hide_env_values = true)]
        metrics_token: Option<String>,
        /// Set a limit, as NAME=VALUE (repeatable; in EXTEND_LIMITS, comma
        /// separated): `--limit run_time=5s --limit writes_per_second=10`.
        /// The README's limits table lists every NAME and its default.
        #[arg(
            long = "limit",
            value_name = "NAME=VALUE",
            env = "EXTEND_LIMITS",
            value_delimiter = ','
        )]
        limits: Vec<String>,
        /// Let extensions' `fetch` reach HOST (any address it resolves to,
        /// private ones included) and, with :PORT, that port besides 80 and
        /// 443. Repeatable; in EXTEND_ALLOW_EGRESS, comma separated.
        #[arg(
            long = "allow-egress",
            value_name = "HOST[:PORT]",
            env = "EXTEND_ALLOW_EGRESS",
            value_delimiter = ','
        )]
        allow_egress: Vec<String>,
        /// Let `fetch` reach only the --allow-egress hosts.
        #[arg(long, env = "EXTEND_EGRESS_ONLY_ALLOWED")]
        egress_only_allowed: bool,
        /// Send the run's trace (`traceparent`) on requests to the
        /// --allow-egress hosts (never to others).
        #[arg(long, env = "EXTEND_EGRESS_TRACEPARENT")]
        egress_traceparent: bool,
    },
    /// Print the master token: from a PostgreSQL database the nodes share
    /// (with its key-encryption key), or from a data directory.
    MasterToken {
        /// The PostgreSQL database (`postgres://user@host:port/db`).
        #[arg(long, env = "EXTEND_DATABASE_URL", conflicts_with = "data_dir")]
        database: Option<String>,
        /// File holding the key-encryption key (or the key itself in EXTEND_KEY).
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// The data directory of a single host.
        #[arg(long, default_value = "./extend-data")]
        data_dir: PathBuf,
    },
    /// Print the fingerprint of the key-encryption key in FILE, as error
    /// messages about mismatched keys name it.
    KeyFingerprint {
        /// The key file.
        file: PathBuf,
    },
    /// Write a new key-encryption key to FILE (readable only by you), for
    /// `serve --database … --key-file FILE`. Give every node the same one.
    NewKey {
        /// Where to write it; refuses to overwrite a file.
        file: PathBuf,
    },
    /// Run as a JavaScript worker of a host (started by the host itself).
    #[command(hide = true)]
    Worker,
}

fn main() -> ExitCode {
    if let Some(code) = extend_host::worker_main_if_requested() {
        return code;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let (
        listen,
        data_dir,
        memory,
        database,
        key_file,
        workers,
        public_url,
        metrics_token,
        limits,
        allow_egress,
        egress_only_allowed,
        egress_traceparent,
    ) = match Cli::parse().command {
        Command::Serve {
            listen,
            data_dir,
            memory,
            database,
            key_file,
            workers,
            public_url,
            metrics_token,
            limits,
            allow_egress,
            egress_only_allowed,
            egress_traceparent,
        } => (
            listen,
            data_dir,
            memory,
            database,
            key_file,
            workers,
            public_url,
            metrics_token,
            limits,
            allow_egress,
            egress_only_allowed,
            egress_traceparent,
        ),
        Command::NewKey { file } => return new_key(&file),
        Command::KeyFingerprint { file } => {
            return match extend_host::KeyEncryptionKey::from_file(&file) {
                Ok(k) => {
                    println!("{}", k.id());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::MasterToken {
            database,
            key_file,
            data_dir,
        } => return master_token(database, key_file, &data_dir),
        Command::Worker => {
            eprintln!(
                "error: `extend-host worker` is started by a host, which sets EXTEND_HOST_WORKER"
            );
            return ExitCode::FAILURE;
        }
    };
    let mut host_limits = extend_host::Limits::default();
    for setting in &limits {
        let set = match setting.split_once('=') {
            Some((name, value)) => host_limits.set(name.trim(), value),
            None => Err(format!("`{setting}` is not NAME=VALUE")),
        };
        if let Err(e) = set {
            eprintln!("error: --limit: {e}");
            return ExitCode::FAILURE;
        }
    }
    let mut egress = extend_host::EgressPolicy::default()
        .only_allowed(egress_only_allowed)
        .propagate_trace(egress_traceparent);
    for host in allow_egress.iter().filter(|h| !h.trim().is_empty()) {
        egress = match egress.allow(host) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("error: --allow-egress: {e}");
                return ExitCode::FAILURE;
            }
        };
    }
    let kek = match database.as_ref().map(|_| kek(key_file)) {
        None => None,
        Some(Ok(k)) => Some(k),
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let program = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot find this program to start worker processes: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(runtime) = runtime(tokio::runtime::Builder::new_multi_thread()) else {
        return ExitCode::FAILURE;
    };
    runtime.block_on(async move {
        let mut builder = extend_host::Host::builder()
            .listen(listen)
            .worker_program(program)
            .limits(host_limits)
            .egress(egress);
        builder = match (&database, kek) {
            (Some(url), Some(kek)) => builder.database(url).key_encryption_key(kek),
            _ if memory => builder.memory(),
            _ => builder.data_dir(&data_dir),
        };
        if let Some(n) = workers {
            builder = builder.workers(n);
        }
        if let Some(url) = public_url {
            builder = builder.public_url(url);
        }
        if let Some(token) = metrics_token {
            builder = builder.metrics_token(token);
        }
        let host = match builder.start().await {
            Ok(h) => h,
            Err(e) => {
                let mut msg = format!("error: {e}");
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    msg.push_str(&format!(": {s}"));
                    source = s.source();
                }
                eprintln!("{msg}");
                return ExitCode::FAILURE;
            }
        };
        if host.created_master_token() {
            if database.is_some() {
                println!(
                    "master token (shown once, by the first node of this database; kept sealed in it):\n{}",
                    host.master_token()
                );
            } else if memory {
                println!(
                    "master token (valid until this host stops):\n{}",
                    host.master_token()
                );
            } else {
                println!(
                    "master token (shown once; also in {}, readable only by you):\n{}",
                    data_dir.join("master-token").display(),
                    host.master_token()
                );
            }
        }
        println!("extend-host listening on {}", host.url());
        wait_for_signal().await;
        eprintln!("shutting down");
        match host.shutdown().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: shutdown failed: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// The runtime `builder` makes, or `None` after saying why it could not.
fn runtime(mut builder: tokio::runtime::Builder) -> Option<tokio::runtime::Runtime> {
    builder
        .enable_all()
        .build()
        .inspect_err(|e| eprintln!("error: cannot start the async runtime: {e}"))
        .ok()
}

/// The key-encryption key from `--key-file`, or else from EXTEND_KEY.
fn kek(key_file: Option<PathBuf>) -> Result<extend_host::KeyEncryptionKey, String> {
    match (key_file, std::env::var("EXTEND_KEY")) {
        (Some(path), _) => extend_host::KeyEncryptionKey::from_file(&path),
        (None, Ok(text)) => {
            extend_host::KeyEncryptionKey::parse(&text).map_err(|e| format!("EXTEND_KEY: {e}"))
        }
        (None, Err(_)) => Err(extend_host::HostError::MissingKey.to_string()),
    }
}

/// `extend-host master-token`.
fn master_token(
    database: Option<String>,
    key_file: Option<PathBuf>,
    data_dir: &std::path::Path,
) -> ExitCode {
    let Some(url) = database else {
        let path = data_dir.join("master-token");
        return match std::fs::read_to_string(&path) {
            Ok(token) => {
                println!("{}", token.trim());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!(
                    "error: cannot read {}: {e}; give the data directory of a host that has started (--data-dir), or --database",
                    path.display()
                );
                ExitCode::FAILURE
            }
        };
    };
    let kek = match kek(key_file) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(runtime) = runtime(tokio::runtime::Builder::new_current_thread()) else {
        return ExitCode::FAILURE;
    };
    runtime.block_on(async move {
        let found = match extend_host::store::PostgresStore::connect(&url).await {
            Ok(store) => store.master_token(&kek).await,
            Err(e) => Err(e),
        };
        match found {
            Ok(Some(token)) => {
                println!("{token}");
                ExitCode::SUCCESS
            }
            Ok(None) => {
                eprintln!("error: this database has no keys yet: start a node on it first (`extend-host serve --database …`)");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// `extend-host new-key FILE`.
fn new_key(file: &std::path::Path) -> ExitCode {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let text = extend_host::KeyEncryptionKey::generate_text();
    let written = opts.open(file).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    });
    let fingerprint = extend_host::KeyEncryptionKey::parse(&text)
        .map(|k| k.id().to_owned())
        .unwrap_or_default();
    match written {
        Ok(()) => {
            println!(
                "wrote a new key-encryption key to {} (fingerprint {fingerprint}); give every node of one database the same key",
                file.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", file.display());
            ExitCode::FAILURE
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
