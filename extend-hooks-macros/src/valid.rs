//! The rules of a declaration. Each error points at the token it is about, and
//! every rule is checked even after one fails, so one compile shows them all.

use extend_wire::names::{POINT_NAME_MAX, is_kebab};
use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{FnArg, GenericParam, Ident, LitStr, Pat, Path, ReturnType, Type};

use crate::ast::PointFn;
use crate::attr::{self, Attrs};
use crate::timeout;

/// Most payload parameters a point may take; more is a sign the payload wants
/// to be a struct of its own.
const MAX_PAYLOAD_PARAMS: usize = 16;

/// Whether the caller waits for the extension's answer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Sync,
    Async,
}

/// The attribute's settings, with defaults filled in where a key is missing
/// or wrong (so the fallback expansion can still use them).
pub(crate) struct Config {
    pub name: Option<LitStr>,
    pub mode: Mode,
    /// `None`: not written (or unusable); the runtime's `Mode::default_timeout` applies.
    pub timeout_ms: Option<u64>,
    /// The host may record this point's inputs for replaying drafts.
    pub record_inputs: bool,
    /// The language of the point's extensions, when not JavaScript: a
    /// compiler the platform publishes under this name.
    pub language: Option<String>,
    pub krate: Path,
}

/// A parameter with a plain name.
pub(crate) struct Param<'a> {
    pub ident: &'a Ident,
    pub ty: &'a Type,
}

/// The function's shape once every rule holds.
pub(crate) struct Shape<'a> {
    pub scope: Param<'a>,
    pub payload: Vec<Param<'a>>,
    /// The declared response type of a sync point.
    pub response: Option<&'a Type>,
}

/// Checks the attribute's values.
pub(crate) fn config(attrs: Attrs, errors: &mut Vec<syn::Error>) -> Config {
    let mode = match &attrs.mode {
        None => Mode::Sync,
        Some(lit) => match lit.value().as_str() {
            "sync" => Mode::Sync,
            "async" => Mode::Async,
            other => {
                let hint = attr::closest(other, &["sync", "async"])
                    .map(|m| format!("; did you mean \"{m}\"?"))
                    .unwrap_or_default();
                errors.push(syn::Error::new(
                    lit.span(),
                    format!("unknown mode \"{other}\": `mode` is \"sync\" (the caller waits for the response) or \"async\" (fire and forget){hint}"),
                ));
                Mode::Sync
            }
        },
    };
    let timeout_ms = attrs
        .timeout
        .as_ref()
        .and_then(|lit| match timeout::parse_ms(&lit.value()) {
            Ok(ms) => Some(ms),
            Err(msg) => {
                errors.push(syn::Error::new(lit.span(), msg));
                None
            }
        });
    match &attrs.name {
        None if attrs.name_written => {}
        None => errors.push(syn::Error::new(
            attr::attribute_span(),
            "missing `name`: every extension point needs one, e.g. #[extension_point(name = \"on-new-lead\")]",
        )),
        Some(lit) => {
            if let Err(msg) = check_name(&lit.value()) {
                errors.push(syn::Error::new(lit.span(), msg));
            }
        }
    }
    let language = attrs.language.as_ref().and_then(|lit| {
        let value = lit.value();
        match value.as_str() {
            // The default, said out loud.
            "javascript" | "js" => None,
            v if is_kebab(v) && v.len() <= LANGUAGE_MAX => Some(value),
            _ => {
                errors.push(syn::Error::new(
                    lit.span(),
                    format!(
                        "invalid language \"{value}\": `language` names a compiler the platform publishes with its catalog, in kebab-case of at most {LANGUAGE_MAX} characters, e.g. language = \"mustache\" (leave it out for JavaScript)"
                    ),
                ));
                None
            }
        }
    });
    Config {
        name: attrs.name,
        mode,
        timeout_ms,
        record_inputs: attrs.record_inputs.unwrap_or(false),
        language,
        krate: attrs
            .krate
            .unwrap_or_else(|| syn::parse_quote!(::extend_hooks)),
    }
}

/// The longest language name: it is a webtask meta value and a file name.
const LANGUAGE_MAX: usize = 32;

/// `OnNewLead`, `on_new_lead`, `On_New Lead`, `HTTPRequest2` -> `on-new-lead`,
/// `http-request2`: separators become single hyphens, and a word starts at
/// every upper-case letter that follows a lower-case letter or digit, or that
/// precedes a lower-case letter after an upper-case run.
fn kebab_suggestion(name: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    for part in name.split(['_', ' ', '.', '/', ':', '-']) {
        let chars: Vec<char> = part.chars().collect();
        let mut word = String::new();
        for (i, &c) in chars.iter().enumerate() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1);
            let boundary = c.is_uppercase()
                && prev.is_some_and(|p| {
                    p.is_lowercase()
                        || p.is_ascii_digit()
                        || (p.is_uppercase() && next.is_some_and(|n| n.is_lowercase()))
                });
            if boundary && !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            word.extend(c.to_lowercase());
        }
        if !word.is_empty() {
            words.push(word);
        }
    }
    words.join("-")
}

/// Point names follow `extend_wire::names` (kebab-case, at most
/// [`POINT_NAME_MAX`] characters), the rule the host applies to catalogs.
fn check_name(name: &str) -> Result<(), String> {
    if !is_kebab(name) {
        let suggestion = kebab_suggestion(name);
        let hint = if is_kebab(&suggestion) && suggestion.len() <= POINT_NAME_MAX {
            format!("; did you mean \"{suggestion}\"?")
        } else {
            String::from(", e.g. \"on-new-lead\"")
        };
        return Err(format!(
            "invalid point name \"{name}\": use lowercase letters, digits and single hyphens (kebab-case){hint}"
        ));
    }
    if name.len() > POINT_NAME_MAX {
        return Err(format!(
            "point name \"{name}\" is {} characters long; the maximum is {POINT_NAME_MAX}",
            name.len()
        ));
    }
    Ok(())
}

/// Checks the function against the mode. Returns its shape when it is one the
/// expansion can use.
pub(crate) fn shape<'a>(
    func: &'a PointFn,
    mode: Mode,
    errors: &mut Vec<syn::Error>,
) -> Option<Shape<'a>> {
    let before = errors.len();
    let sig = &func.sig;
    let mut err = |span: Span, msg: &str| errors.push(syn::Error::new(span, msg));

    if let Some(t) = &sig.constness {
        err(t.span, "an extension point can't be a `const fn`");
    }
    match &sig.safety {
        syn::Safety::Unsafe(t) => err(t.span, "an extension point can't be `unsafe`"),
        syn::Safety::Safe(t) => err(t.span, "an extension point can't be marked `safe`"),
        syn::Safety::Default => {}
    }
    if let Some(abi) = &sig.abi {
        err(abi.span(), "an extension point can't declare an ABI");
    }
    if let Some(v) = &sig.variadic {
        err(v.span(), "an extension point can't be variadic");
    }
    for param in &sig.generics.params {
        match param {
            GenericParam::Lifetime(_) => {}
            GenericParam::Type(_) | GenericParam::Const(_) => err(
                param.span(),
                "an extension point can't be generic: its payload and response types must be concrete to build the catalog",
            ),
        }
    }
    if let Some(w) = &sig.generics.where_clause {
        err(
            w.where_token.span,
            "an extension point can't have a `where` clause: its types must be concrete to build the catalog",
        );
    }

    match mode {
        Mode::Sync => {
            if sig.asyncness.is_none() {
                err(
                    sig.fn_token.span,
                    "a sync extension point is an `async fn`: write `async fn`, or use mode = \"async\" for fire-and-forget",
                );
            }
            match &sig.output {
                ReturnType::Default => err(
                    sig.paren_token.span.join(),
                    "a sync extension point declares the response type it expects, e.g. `-> LeadDecision`; use mode = \"async\" if nothing is expected back",
                ),
                ReturnType::Type(_, ty) if matches!(**ty, Type::ImplTrait(_)) => err(
                    ty.span(),
                    "the response type must be concrete: `impl Trait` can't be deserialized",
                ),
                ReturnType::Type(..) => {}
            }
        }
        Mode::Async => {
            // `fn` or `async fn` both queue; `async fn` awaits the outbox's
            // commit instead of blocking the thread (see `expand`).
            if let ReturnType::Type(arrow, ty) = &sig.output {
                err(
                    arrow.spans[0].join(ty.span()).unwrap_or(arrow.spans[0]),
                    "an async extension point has no return type: nothing waits for the extension's answer (the call returns `Result<(), Error>`)",
                );
            }
            if let Some(body) = &func.body {
                err(
                    body.brace_token.span.open(),
                    "an async extension point has no body: end the declaration with `;`",
                );
            }
        }
    }

    let mut params = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => err(
                r.self_token.span,
                "an extension point is a free function: `self` is not allowed; move it out of the `impl` block",
            ),
            FnArg::Typed(pt) => {
                let ident = match &*pt.pat {
                    Pat::Ident(p) if p.subpat.is_none() && p.by_ref.is_none() => Some(&p.ident),
                    other => {
                        err(
                            other.span(),
                            "extension point parameters must be plain names: the name is the payload's JSON key",
                        );
                        None
                    }
                };
                if has_impl_trait(&pt.ty) {
                    err(
                        pt.ty.span(),
                        "`impl Trait` parameters are not allowed: name a concrete type so its schema can go in the catalog",
                    );
                }
                if let Some(ident) = ident {
                    params.push(Param { ident, ty: &pt.ty });
                }
            }
        }
    }
    match sig.inputs.len() {
        0 => err(
            sig.paren_token.span.join(),
            "missing scope: the first parameter of an extension point is its scope, e.g. `tenant: &Container`",
        ),
        1 => err(
            sig.paren_token.span.join(),
            "missing payload: after the scope, an extension point takes at least one payload parameter, e.g. `lead: &NewLead`",
        ),
        n if n - 1 > MAX_PAYLOAD_PARAMS => err(
            sig.inputs[MAX_PAYLOAD_PARAMS + 1].span(),
            "too many payload parameters (at most 16): group them in a struct",
        ),
        _ => {}
    }

    if errors.len() != before {
        return None;
    }
    let mut params = params.into_iter();
    let scope = params.next()?;
    let response = match (&sig.output, mode) {
        (ReturnType::Type(_, ty), Mode::Sync) => Some(&**ty),
        _ => None,
    };
    Some(Shape {
        scope,
        payload: params.collect(),
        response,
    })
}

fn has_impl_trait(ty: &Type) -> bool {
    match ty {
        Type::ImplTrait(_) => true,
        Type::Reference(r) => has_impl_trait(&r.elem),
        Type::Paren(p) => has_impl_trait(&p.elem),
        Type::Group(g) => has_impl_trait(&g.elem),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{check_name, kebab_suggestion};

    #[test]
    fn suggestions_split_camel_snake_and_acronyms() {
        for (written, suggested) in [
            ("OnNewLead", "on-new-lead"),
            ("onNewLead", "on-new-lead"),
            ("on_new_lead", "on-new-lead"),
            ("On_New Lead", "on-new-lead"),
            ("HTTPRequest", "http-request"),
            ("leadV2Archived", "lead-v2-archived"),
            ("ON-NEW-LEAD", "on-new-lead"),
        ] {
            assert_eq!(kebab_suggestion(written), suggested, "{written}");
        }
    }

    #[test]
    fn names_are_kebab_case() {
        assert!(check_name("on-new-lead").is_ok());
        assert!(check_name("v2").is_ok());
        assert!(check_name(&"a".repeat(64)).is_ok());
        assert!(
            check_name(&"a".repeat(65))
                .unwrap_err()
                .contains("maximum is 64")
        );
        assert!(
            check_name("On_New_Lead")
                .unwrap_err()
                .contains("did you mean \"on-new-lead\"")
        );
        assert!(
            check_name("a--b")
                .unwrap_err()
                .contains("did you mean \"a-b\"")
        );
        assert!(
            check_name("Bad Name")
                .unwrap_err()
                .contains("did you mean \"bad-name\"")
        );
        assert!(
            check_name("é")
                .unwrap_err()
                .contains("e.g. \"on-new-lead\"")
        );
        assert!(check_name("-a").is_err());
        assert!(check_name("").is_err());
    }
}
