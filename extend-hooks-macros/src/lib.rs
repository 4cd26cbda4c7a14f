//! The `#[extension_point]` attribute of [extend-hooks](https://docs.rs/extend-hooks).
//!
//! Use it through `extend_hooks::extension_point`; this crate only holds the
//! compile-time half. The pipeline follows thiserror's: [`attr`] parses the
//! attribute's keys, [`ast`] parses the function, [`valid`] checks both and
//! produces a [`valid::Point`], [`expand`] writes the code. When anything is
//! wrong, [`fallback`] still emits the user's function so that call sites keep
//! type-checking and only the real error is shown.

// A proc-macro crate can only export macros, so `pub(crate)` is the widest
// visibility its items can have; `unreachable_pub` has nothing to say here.
#![allow(unreachable_pub)]

mod ast;
mod attr;
mod expand;
mod fallback;
mod timeout;
mod valid;

use proc_macro::TokenStream;

/// Declares an extensibility point. See the `extend_hooks` crate for the full reference.
///
/// ```text
/// #[extension_point(name = "on-new-lead", mode = "sync", timeout = "2s")]
/// pub async fn on_new_lead(tenant: &Container, lead: &NewLead) -> LeadDecision { default() }
/// ```
#[proc_macro_attribute]
pub fn extension_point(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::extension_point(args.into(), &item.into()).into()
}
