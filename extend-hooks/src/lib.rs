//! Typed extensibility points for SaaS platforms.
//!
//! A platform marks a function with [`#[extension_point]`](extension_point);
//! calling it finds the tenant's extension (a webtask), sends it the typed
//! payload as JSON, enforces the deadline and returns the typed response, or
//! runs the platform's default when the tenant has none.
//!
//! ```no_run
//! use extend_hooks::discovery::StaticDiscovery;
//! use extend_hooks::{extension_point, Container, Extend};
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, JsonSchema)]
//! pub struct NewLead { pub name: String, pub email: String }
//!
//! #[derive(Deserialize, JsonSchema)]
//! pub struct LeadDecision { pub score: u8, pub accept: bool }
//!
//! /// Scores a new lead. This doc comment is the point's description in the catalog.
//! #[extension_point(name = "on-new-lead", mode = "sync", timeout = "2s")]
//! pub async fn on_new_lead(tenant: &Container, lead: &NewLead) -> LeadDecision {
//!     LeadDecision { score: 50, accept: true } // used when the tenant has no extension
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let extend = Extend::builder().discovery(StaticDiscovery::new()).build()?;
//! let lead = NewLead { name: "Ada".into(), email: "ada@example.com".into() };
//! let decision: LeadDecision = on_new_lead(&extend.container("acme"), &lead).await?;
//! # Ok(()) }
//! ```
//!
//! # The attribute
//!
//! | key | value | default |
//! |---|---|---|
//! | `name` | kebab-case `[a-z0-9]+(-[a-z0-9]+)*`, at most 64 characters | required |
//! | `mode` | `"sync"`: the caller waits; `"async"`: the call queues and returns | `"sync"` |
//! | `timeout` | a whole number with `ms`, `s` or `m`, above zero, at most 15 minutes. Sync: the deadline of the whole call, discovery included. Async: the bound on each delivery attempt | [`Mode::default_timeout`]: 5 s sync, 30 s async |
//! | `record_inputs` | `true` or `false`: the host keeps the last inputs of the point's extensions (sealed, `writeOnly` fields redacted) so that a draft can be replayed on them in the editor | `false` |
//! | `crate` | the path of this crate when it is re-exported or renamed | `::extend_hooks` |
//!
//! The function's shape:
//! - the first parameter is the isolation scope: any type implementing
//!   [`Scope`] (e.g. `&Container`, or the platform's own tenant type);
//! - the rest is the payload, each parameter `Serialize + JsonSchema`. One
//!   parameter is the JSON body itself; several become a JSON object keyed by
//!   parameter name;
//! - a sync point is an `async fn` returning its response type
//!   (`DeserializeOwned + JsonSchema`). With a body, the body is the default
//!   and the call returns `Result<T, Error>`; without one (`;`), it returns
//!   `Result<Option<T>, Error>`, `None` when the tenant has no extension;
//! - an async point has no return type or body; it returns `Result<(), Error>`
//!   once the invocation is queued. Declared `async fn`, it awaits a durable
//!   outbox's commit; declared `fn`, it blocks its thread for it (use `fn`
//!   from synchronous code, `async fn` from async code);
//! - free functions only: no type or const generics, `self`, `impl Trait` or
//!   pattern parameters. Lifetimes are fine.
//!
//! Every point registers a [`PointDescriptor`]; [`Catalog::collect`] lists them at startup.
#![warn(missing_docs)]

mod builder;
pub mod catalog;
mod classify;
mod client;
pub mod discovery;
mod error;
mod invoke;
pub mod management;
mod observe;
pub mod outbox;
mod outcome;
mod payload;
mod point;
mod scope;
mod webtask;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

#[cfg(feature = "rustls")]
pub use builder::install_crypto_provider;
pub use builder::{BuildError, ExtendBuilder};
pub use catalog::Catalog;
pub use client::Container;
pub use client::Extend;
pub use error::{Error, ErrorKind};
/// Declares an extensibility point; see the [crate documentation](crate#the-attribute).
pub use extend_hooks_macros::extension_point;
/// The wire contract shared with extend-host, defined once: header names
/// (e.g. [`wire::headers::DEADLINE`]), webtask metadata and secret names
/// ([`wire::meta::RUN_SECRET`]), the point-name rule, trace ids.
pub use extend_wire as wire;
pub use outcome::{Outcome, OutcomeStatus, ShutdownReport};
pub use payload::{Payload, ResponseBody};
pub use point::{Location, Mode, PointDescriptor};
pub use scope::Scope;
