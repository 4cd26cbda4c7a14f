//! What is emitted when the declaration is wrong: the errors, plus as much of
//! the user's item as can be kept, so the rest of the crate still type-checks
//! and only the real mistake is reported (tokio-macros and thiserror do the same).

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::PointFn;

fn errors_tokens(errors: Vec<syn::Error>) -> TokenStream {
    let mut tokens = TokenStream::new();
    for e in errors {
        tokens.extend(e.into_compile_error());
    }
    tokens
}

/// The item could not even be parsed as a function: emit it untouched.
pub(crate) fn unparsed(item: TokenStream, errors: Vec<syn::Error>) -> TokenStream {
    let errors = errors_tokens(errors);
    quote! { #errors #item }
}

/// The function's shape is wrong: emit it as the user wrote it.
pub(crate) fn unchanged(func: &PointFn, errors: Vec<syn::Error>) -> TokenStream {
    let errors = errors_tokens(errors);
    quote! { #errors #func }
}

/// The attribute is wrong but the function is fine: emit the function with the
/// signature a valid point would have.
pub(crate) fn with_signature(stub: TokenStream, errors: Vec<syn::Error>) -> TokenStream {
    let errors = errors_tokens(errors);
    quote! { #errors #stub }
}
