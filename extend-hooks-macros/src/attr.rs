//! Parsing of the attribute's own arguments: `name`, `mode`, `timeout`,
//! `record_inputs`, `language`, `crate`.
//!
//! Parsing only collects what was written; [`crate::valid`] judges the values.
//! Every error of the attribute is gathered so the user sees all of them at once.

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Expr, Lit, LitStr, Path};

/// The keys the attribute accepts, in the order the reference documents them.
pub(crate) const KEYS: &[&str] = &[
    "name",
    "mode",
    "timeout",
    "record_inputs",
    "language",
    "crate",
];

/// What the attribute said, before validation.
#[derive(Default)]
pub(crate) struct Attrs {
    pub name: Option<LitStr>,
    pub mode: Option<LitStr>,
    pub timeout: Option<LitStr>,
    pub record_inputs: Option<bool>,
    pub language: Option<LitStr>,
    pub krate: Option<Path>,
    /// `name` was written, even if its value was unusable: no second error
    /// saying it is missing.
    pub name_written: bool,
}

/// Parses the attribute's arguments. Returns what could be parsed together with
/// every error found, so that the caller can still expand with what is known.
pub(crate) fn parse(args: TokenStream) -> (Attrs, Vec<syn::Error>) {
    let mut attrs = Attrs::default();
    let mut errors = Vec::new();
    let parser = syn::meta::parser(|meta| {
        if let Err(e) = parse_key(&mut attrs, &meta) {
            errors.push(e);
            // Skip the value of a key we could not use, so the keys after it
            // are still checked.
            if meta.input.peek(syn::Token![=]) {
                let _: Expr = meta.value()?.parse()?;
            }
        }
        Ok(())
    });
    if let Err(e) = parser.parse2(args) {
        errors.push(e);
    }
    (attrs, errors)
}

fn parse_key(attrs: &mut Attrs, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    let path = &meta.path;
    if path.is_ident("name") {
        attrs.name_written = true;
        set_once(&mut attrs.name, "name", meta, string_value)
    } else if path.is_ident("mode") {
        set_once(&mut attrs.mode, "mode", meta, string_value)
    } else if path.is_ident("timeout") {
        set_once(&mut attrs.timeout, "timeout", meta, string_value)
    } else if path.is_ident("record_inputs") {
        set_once(&mut attrs.record_inputs, "record_inputs", meta, bool_value)
    } else if path.is_ident("language") {
        set_once(&mut attrs.language, "language", meta, string_value)
    } else if path.is_ident("crate") {
        set_once(&mut attrs.krate, "crate", meta, |meta| {
            meta.value()?.call(Path::parse_mod_style)
        })
    } else {
        Err(meta.error(unknown_key_message(path)))
    }
}

fn set_once<T>(
    slot: &mut Option<T>,
    key: &str,
    meta: &ParseNestedMeta<'_>,
    parse: impl FnOnce(&ParseNestedMeta<'_>) -> syn::Result<T>,
) -> syn::Result<()> {
    if slot.is_some() {
        return Err(meta.error(format!(
            "duplicate key `{key}`: it is already set earlier in this attribute"
        )));
    }
    *slot = Some(parse(meta)?);
    Ok(())
}

/// `key = "..."`. Anything but a string literal gets an error showing the form.
fn string_value(meta: &ParseNestedMeta<'_>) -> syn::Result<LitStr> {
    let key = meta
        .path
        .get_ident()
        .map(ToString::to_string)
        .unwrap_or_default();
    if !meta.input.peek(syn::Token![=]) {
        return Err(meta.error(format!("`{key}` needs a value, e.g. {}", example_for(&key))));
    }
    let value: Expr = meta.value()?.parse()?;
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{key}` takes a string literal, e.g. {}", example_for(&key)),
        )),
    }
}

/// `key` alone (true) or `key = true|false`.
fn bool_value(meta: &ParseNestedMeta<'_>) -> syn::Result<bool> {
    if !meta.input.peek(syn::Token![=]) {
        return Ok(true);
    }
    let value: Expr = meta.value()?.parse()?;
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Bool(b), ..
        }) => Ok(b.value),
        other => Err(syn::Error::new_spanned(
            other,
            "`record_inputs` takes `true` or `false` (or stands alone, meaning true), e.g. record_inputs = true",
        )),
    }
}

fn example_for(key: &str) -> &'static str {
    match key {
        "name" => "name = \"on-new-lead\"",
        "mode" => "mode = \"sync\" or mode = \"async\"",
        "language" => "language = \"mustache\"",
        _ => "timeout = \"2s\"",
    }
}

fn unknown_key_message(path: &Path) -> String {
    let written = path
        .get_ident()
        .map(ToString::to_string)
        .unwrap_or_else(|| quote::quote!(#path).to_string().replace(' ', ""));
    let expected = KEYS
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match closest(&written, KEYS) {
        Some(near) => format!("unknown key `{written}`; did you mean `{near}`?"),
        None => format!("unknown key `{written}`; expected one of {expected}"),
    }
}

/// The candidate within two edits of `word`, if any: enough to catch `timout`,
/// `nmae` or `mod` without suggesting nonsense for unrelated words.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The span to blame for a missing key: the attribute itself.
pub(crate) fn attribute_span() -> Span {
    Span::call_site()
}
