//! The function the attribute sits on, as written: attributes, visibility,
//! signature, and a body or a bare `;`.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Block, Signature, Token, Visibility};

/// A function item whose body is optional (`fn f(..) -> T;` declares a point
/// with no default behaviour).
pub(crate) struct PointFn {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub sig: Signature,
    pub body: Option<Box<Block>>,
}

impl Parse for PointFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig: Signature = input.parse()?;
        let body = if input.peek(Token![;]) {
            input.parse::<Token![;]>()?;
            None
        } else {
            Some(Box::new(input.parse()?))
        };
        Ok(PointFn {
            attrs,
            vis,
            sig,
            body,
        })
    }
}

impl ToTokens for PointFn {
    /// The function exactly as the user wrote it (a body-less one gets a body
    /// that is never reached, so the item stays valid Rust).
    fn to_tokens(&self, tokens: &mut TokenStream) {
        for attr in &self.attrs {
            attr.to_tokens(tokens);
        }
        if self.body.is_none() {
            // The stand-in body uses no parameter; the real error is elsewhere.
            quote::quote!(#[allow(unused_variables)]).to_tokens(tokens);
        }
        self.vis.to_tokens(tokens);
        self.sig.to_tokens(tokens);
        match &self.body {
            Some(body) => body.to_tokens(tokens),
            None => quote::quote!({ ::core::unreachable!() }).to_tokens(tokens),
        }
    }
}

impl PointFn {
    /// The doc comment, as plain text: the point's description in the catalog.
    pub(crate) fn description(&self) -> String {
        let mut lines = Vec::new();
        for attr in &self.attrs {
            if !attr.path().is_ident("doc") {
                continue;
            }
            if let syn::Meta::NameValue(nv) = &attr.meta
                && let syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) = &nv.value
            {
                let line = s.value();
                lines.push(
                    line.strip_prefix(' ')
                        .unwrap_or(&line)
                        .trim_end()
                        .to_owned(),
                );
            }
        }
        lines.join("\n").trim().to_owned()
    }
}
