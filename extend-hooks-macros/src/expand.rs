//! Code generation. What is emitted stays thin: serialize the payload, make one
//! call into a non-generic runtime function, decode the answer. The descriptor
//! is a `static` built from constants and registered with `inventory`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Lifetime, Type};

use crate::ast::PointFn;
use crate::valid::{self, Config, Mode, Param, Shape};
use crate::{attr, fallback};

/// The attribute's entry point: parse, validate, expand or fall back.
pub(crate) fn extension_point(args: TokenStream, item: &TokenStream) -> TokenStream {
    let (attrs, mut errors) = attr::parse(args);
    let func: PointFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(e) => {
            errors.push(syn::Error::new(
                e.span(),
                format!("#[extension_point] goes on a free function declaration: {e}"),
            ));
            return fallback::emit(item, errors);
        }
    };
    let config = valid::config(attrs, &mut errors);
    let shape = valid::shape(&func, config.mode, &mut errors);
    match shape {
        Some(shape) if errors.is_empty() => point(&func, &config, &shape),
        // The function is fine but the attribute is not: emit the function
        // with its real signature so call sites type-check, and no registration.
        Some(shape) => fallback::emit(&stub(&func, &config, &shape), errors),
        None => fallback::emit(&func, errors),
    }
}

/// The full expansion of a valid point.
fn point(func: &PointFn, config: &Config, shape: &Shape<'_>) -> TokenStream {
    let krate = &config.krate;
    let descriptor = descriptor_ident(func);
    let attrs = &func.attrs;
    let vis = &func.vis;
    let sig = signature(func, config, shape);
    let scope = scope_expr(krate, shape);
    let body_expr = payload_expr(krate, shape);
    let call = match (config.mode, &func.body) {
        // `async fn`: the commit is awaited; a plain `fn` blocks for it.
        (Mode::Async, _) if func.sig.asyncness.is_some() => quote! {
            #krate::__private::invoke_async_awaiting(&#descriptor, __extend_container, __extend_body).await
        },
        (Mode::Async, _) => quote! {
            #krate::__private::invoke_async(&#descriptor, __extend_container, __extend_body)
        },
        (Mode::Sync, default) => {
            let response = shape.response.expect("sync shapes carry a response type");
            // Spanned on the response type, so a type that can't be a
            // response is reported there, once.
            let call = quote_spanned! {response.span()=>
                <#response as #krate::ResponseBody>::__invoke(&#descriptor, __extend_container, __extend_body).await
            };
            match default {
                None => call,
                Some(body) => quote! {
                    match #call {
                        ::core::result::Result::Ok(::core::option::Option::Some(__extend_response)) => {
                            ::core::result::Result::Ok(__extend_response)
                        }
                        ::core::result::Result::Ok(::core::option::Option::None) => {
                            ::core::result::Result::Ok(async move #body.await)
                        }
                        ::core::result::Result::Err(__extend_error) => {
                            ::core::result::Result::Err(__extend_error)
                        }
                    }
                },
            }
        }
    };
    let static_item = descriptor_static(func, config, shape, &descriptor);
    quote! {
        #static_item
        #(#attrs)*
        #vis #sig {
            let __extend_container = #scope;
            let __extend_body = #body_expr;
            #call
        }
    }
}

/// The function with its expanded signature and a body that is never run:
/// what call sites need while the attribute has errors.
fn stub(func: &PointFn, config: &Config, shape: &Shape<'_>) -> TokenStream {
    let attrs = &func.attrs;
    let vis = &func.vis;
    let sig = signature(func, config, shape);
    quote! {
        #(#attrs)*
        #[allow(unused_variables)]
        #vis #sig { ::core::unreachable!("invalid #[extension_point] declaration") }
    }
}

/// The signature callers see: the user's, with the outcome wrapped in
/// `Result<_, Error>` (and in `Option` when there is no default body).
fn signature(func: &PointFn, config: &Config, shape: &Shape<'_>) -> TokenStream {
    let krate = &config.krate;
    let sig = &func.sig;
    let asyncness = &sig.asyncness;
    let ident = &sig.ident;
    let generics = &sig.generics;
    let inputs = &sig.inputs;
    let output = match (config.mode, shape.response, &func.body) {
        (Mode::Async, _, _) | (Mode::Sync, None, _) => quote!(()),
        (Mode::Sync, Some(ty), Some(_)) => quote!(#ty),
        (Mode::Sync, Some(ty), None) => quote!(::core::option::Option<#ty>),
    };
    quote! {
        #asyncness fn #ident #generics (#inputs) -> ::core::result::Result<#output, #krate::Error>
    }
}

/// `&Container` from the first parameter. Spanned on the user's type so that a
/// type that is not a scope is reported there.
fn scope_expr(krate: &syn::Path, shape: &Shape<'_>) -> TokenStream {
    let Param { ident, ty } = &shape.scope;
    let path = quote_spanned! {ty.span()=> <#ty as #krate::Scope>::container };
    quote! { #path(&#ident) }
}

/// The payload's JSON bytes: one parameter is the body itself, several are an
/// object keyed by parameter name. Each parameter's trait check is spanned on
/// its type.
fn payload_expr(krate: &syn::Path, shape: &Shape<'_>) -> TokenStream {
    if let [param] = shape.payload.as_slice() {
        let (ty, value) = referent(param);
        let path = quote_spanned! {param.ty.span()=> <#ty as #krate::Payload>::__to_json };
        return quote! { #path(#value) };
    }
    let fields = shape.payload.iter().map(|param| {
        let (ty, value) = referent(param);
        let key = param.ident.to_string();
        let key = key.strip_prefix("r#").unwrap_or(&key);
        let path = quote_spanned! {param.ty.span()=> <#ty as #krate::Payload>::__field };
        quote! { #path(#value, &mut __extend_writer, #key); }
    });
    quote! {{
        let mut __extend_writer = #krate::__private::ObjectWriter::new();
        #(#fields)*
        __extend_writer.finish()
    }}
}

/// The type to check and serialize, with one reference taken off so
/// diagnostics name `NewLead` rather than `&NewLead`, and the value as a `&T`.
fn referent<'a>(param: &'a Param<'a>) -> (&'a Type, TokenStream) {
    let ident = param.ident;
    match param.ty {
        Type::Reference(r) => (&r.elem, quote!(#ident)),
        ty => (ty, quote!(&#ident)),
    }
}

fn descriptor_ident(func: &PointFn) -> syn::Ident {
    format_ident!(
        "__EXTENSION_POINT_{}",
        func.sig.ident.to_string().to_uppercase()
    )
}

/// The `static` descriptor and its `inventory` registration.
fn descriptor_static(
    func: &PointFn,
    config: &Config,
    shape: &Shape<'_>,
    descriptor: &syn::Ident,
) -> TokenStream {
    let krate = &config.krate;
    let name = config
        .name
        .as_ref()
        .expect("valid points have a name")
        .value();
    let mode = match config.mode {
        Mode::Sync => quote!(#krate::Mode::Sync),
        Mode::Async => quote!(#krate::Mode::Async),
    };
    let timeout = match config.timeout_ms {
        Some(ms) => quote!(::core::time::Duration::from_millis(#ms)),
        None => quote!(#mode.default_timeout()),
    };
    let description = func.description();
    let ident = &func.sig.ident;
    let has_default = func.body.is_some() && config.mode == Mode::Sync;
    let record_inputs = config.record_inputs;
    let language = match &config.language {
        Some(l) => quote!(::core::option::Option::Some(#l)),
        None => quote!(::core::option::Option::None),
    };

    // The schema functions carry the same trait bounds as the calls in the
    // function body and the same spans, so a missing derive is reported once.
    let payload_schema = |param: &Param<'_>| {
        let written = referent(param).0;
        let ty = static_type(written);
        let path = quote_spanned! {written.span()=> <#ty as #krate::Payload>::__schema };
        (type_name(written), path)
    };
    let payload = if let [param] = shape.payload.as_slice() {
        let (type_name, schema) = payload_schema(param);
        quote! { #krate::__private::PayloadDecl::One(#type_name, #schema) }
    } else {
        let fields = shape.payload.iter().map(|param| {
            let (type_name, schema) = payload_schema(param);
            let key = param.ident.to_string();
            let key = key.strip_prefix("r#").unwrap_or(&key);
            quote! { (#key, #type_name, #schema as #krate::__private::SubschemaFn) }
        });
        quote! { #krate::__private::PayloadDecl::Object(&[#(#fields),*]) }
    };
    let response = match shape.response {
        Some(written) => {
            let ty = static_type(written);
            let type_name = type_name(written);
            let schema = quote_spanned! {written.span()=> <#ty as #krate::ResponseBody>::__schema };
            quote! { ::core::option::Option::Some((#type_name, #schema)) }
        }
        None => quote!(::core::option::Option::None),
    };

    quote! {
        #[doc(hidden)]
        static #descriptor: #krate::PointDescriptor = #krate::PointDescriptor::__new(#krate::__private::Decl {
            name: #name,
            mode: #mode,
            timeout: #timeout,
            description: #description,
            rust_path: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
            file: ::core::file!(),
            line: ::core::line!(),
            column: ::core::column!(),
            has_default: #has_default,
            record_inputs: #record_inputs,
            language: #language,
            payload: #payload,
            response: #response,
        });
        #krate::__private::inventory::submit! {
            #krate::__private::Registration(&#descriptor)
        }
    }
}

/// The type's name as written, for the catalog (`type_name` is not const).
fn type_name(ty: &Type) -> TokenStream {
    // `quote` puts a space between every two tokens; keep only the spaces
    // that separate two words (`dyn Trait`, `'a mut`).
    let spaced = quote!(#ty).to_string();
    let chars: Vec<char> = spaced.chars().collect();
    let word = |c: Option<&char>| c.is_some_and(|c| c.is_alphanumeric() || *c == '_');
    let text: String = chars
        .iter()
        .enumerate()
        .filter(|&(i, c)| {
            *c != ' ' || (word(chars.get(i.wrapping_sub(1))) && word(chars.get(i + 1)))
        })
        .map(|(_, c)| *c)
        .collect();
    quote!(#text)
}

/// The type with every lifetime made `'static`: descriptors are statics and
/// can't name the function's lifetimes. Schemas don't depend on lifetimes.
fn static_type(ty: &Type) -> Type {
    struct Staticize;
    impl VisitMut for Staticize {
        fn visit_lifetime_mut(&mut self, l: &mut Lifetime) {
            *l = Lifetime::new("'static", l.span());
        }
        fn visit_type_reference_mut(&mut self, r: &mut syn::TypeReference) {
            if r.lifetime.is_none() {
                r.lifetime = Some(Lifetime::new("'static", Span::call_site()));
            }
            syn::visit_mut::visit_type_reference_mut(self, r);
        }
    }
    let mut ty = ty.clone();
    Staticize.visit_type_mut(&mut ty);
    ty
}
