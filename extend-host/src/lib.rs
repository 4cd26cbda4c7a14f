//! # extend-host
//!
//! A webtask-compatible extension host: the Webtask management API (tokens,
//! named webtasks with code, secrets and metadata, log streams) that the npm
//! `wt-cli` talks to, an embedded QuickJS sandbox that runs extensions with
//! per-container isolation and time, memory and stack limits, and SQLite storage
//! with secrets encrypted at rest.
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
mod config;
mod crypto;
mod error;
mod host;
mod logs;
mod names;
mod run_cache;
mod sandbox;
pub mod store;
mod time;
mod token;
mod webtasks;
mod wire;

pub use config::Limits;
pub use error::HostError;
pub use host::{Host, HostBuilder};
pub use sandbox::ExecutorStats;
