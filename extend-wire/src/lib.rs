//! # extend-wire
//!
//! The contract between the framework (`extend-hooks`, and the code its
//! `#[extension_point]` attribute generates) and the host (`extend-host`),
//! defined once so that the two sides cannot drift apart: the header names
//! they exchange ([`headers`]), the webtask metadata and secret names that
//! make a webtask an extension ([`meta`]), the rule for point names
//! ([`names`]), W3C trace ids ([`trace`]), the JSON body of every error
//! answer ([`error`]) and the catalog document a platform publishes
//! ([`catalog`]). Like extism's `manifest` crate, it holds facts, not
//! behaviour, and depends on nothing but serde.

#![warn(missing_docs)]

pub mod catalog;
pub mod error;
pub mod headers;
pub mod meta;
pub mod names;
pub mod trace;
