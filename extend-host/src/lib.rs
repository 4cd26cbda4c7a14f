//! # extend-host
//!
//! A webtask-compatible extension host: the Webtask management API (tokens,
//! named webtasks with code, secrets and metadata, log streams) that the npm
//! `wt-cli` talks to, an embedded QuickJS sandbox that runs extensions with
//! per-container isolation and time, memory and stack limits in worker
//! processes, drafts, versions and the Extension Editor, and storage in SQLite
//! (one host) or PostgreSQL (several hosts on one database) with secrets
//! encrypted at rest. ARCHITECTURE.md at the repository's root maps the code.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let host = extend_host::Host::builder().memory().start().await?;
//! println!("{} with master token {}", host.url(), host.master_token());
//! host.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! The binary of the same name serves it standalone: `extend-host serve`.

mod api;
mod auth;
mod catalog;
mod config;
mod crypto;
mod egress;
mod error;
mod host;
mod languages;
mod logs;
mod metrics;
mod names;
mod query;
mod rate;
mod recording;
mod run_cache;
mod sandbox;
mod serve;
pub mod store;
mod time;
mod token;
mod webtasks;
mod wire;

pub use config::Limits;
pub use crypto::KeyEncryptionKey;
pub use egress::{AllowedHost, EgressPolicy};
pub use error::HostError;
pub use host::{Host, HostBuilder};
pub use sandbox::ExecutorStats;

/// Runs this process as a JavaScript worker when a host started it as one,
/// and returns its exit code; `None` otherwise.
///
/// A host given a [`HostBuilder::worker_program`] starts that program with
/// the argument `worker` and an `EXTEND_HOST_WORKER` environment variable.
/// The `extend-host` binary handles this itself; a program that embeds a
/// host and names itself as the worker program calls this first thing in
/// `main`:
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     if let Some(code) = extend_host::worker_main_if_requested() {
///         return code;
///     }
///     // ... start the host with
///     // Host::builder().worker_program(std::env::current_exe().unwrap())
///     std::process::ExitCode::SUCCESS
/// }
/// ```
pub fn worker_main_if_requested() -> Option<std::process::ExitCode> {
    std::env::var_os(sandbox::WORKER_ENV).map(|_| sandbox::worker_main())
}
