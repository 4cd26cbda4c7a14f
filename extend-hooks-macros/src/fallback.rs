//! What is emitted when the declaration is wrong: the errors, plus as much of
//! the user's item as can be kept, so the rest of the crate still type-checks
//! and only the real mistake is reported (tokio-macros and thiserror do the same).
//!
//! The caller picks what to keep: the item untouched when it is not even a
//! function, the function as written when its shape is wrong, or the
//! function with a valid point's signature when only the attribute is wrong.

use proc_macro2::TokenStream;
use quote::ToTokens;

/// Every error, then `item`.
pub(crate) fn emit(item: &impl ToTokens, errors: Vec<syn::Error>) -> TokenStream {
    let mut tokens: TokenStream = errors
        .into_iter()
        .map(syn::Error::into_compile_error)
        .collect();
    item.to_tokens(&mut tokens);
    tokens
}
