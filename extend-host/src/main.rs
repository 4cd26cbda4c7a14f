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
    let (listen, data_dir, memory, database, key_file, workers, public_url, metrics_token) =
        match Cli::parse().command {
            Command::Serve {
                listen,
                data_dir,
                memory,
                database,
                key_file,
                workers,
                public_url,
                metrics_token,
            } => (
                listen,
                data_dir,
                memory,
                database,
                key_file,
                workers,
                public_url,
                metrics_token,
            ),
            Command::NewKey { file } => return new_key(&file),
            Command::Worker => {
                eprintln!(
                    "error: `extend-host worker` is started by a host, which sets EXTEND_HOST_WORKER"
                );
                return ExitCode::FAILURE;
            }
        };
    let kek = match (&database, key_file, std::env::var("EXTEND_KEY")) {
        (None, _, _) => None,
        (Some(_), Some(path), _) => match extend_host::KeyEncryptionKey::from_file(&path) {
            Ok(k) => Some(k),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
        (Some(_), None, Ok(text)) => match extend_host::KeyEncryptionKey::parse(&text) {
            Ok(k) => Some(k),
            Err(e) => {
                eprintln!("error: EXTEND_KEY: {e}");
                return ExitCode::FAILURE;
            }
        },
        (Some(_), None, Err(_)) => {
            eprintln!("error: {}", extend_host::HostError::MissingKey);
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let mut builder = extend_host::Host::builder()
            .listen(listen)
            .worker_program(program);
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

/// `extend-host new-key FILE`.
fn new_key(file: &std::path::Path) -> ExitCode {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let written = opts.open(file).and_then(|mut f| {
        f.write_all(extend_host::KeyEncryptionKey::generate_text().as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    });
    match written {
        Ok(()) => {
            println!(
                "wrote a new key-encryption key to {}; give every node of one database the same key",
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
