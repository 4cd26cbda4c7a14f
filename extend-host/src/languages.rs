//! Extensions in the platform's own languages (Extend's "middleware"): the
//! published catalog names languages, each with a compiler (a JavaScript
//! module), and points written in one. A webtask is in a language when its
//! meta `wt-compiler` names it, or its point (`auth0-extension-type`) is
//! written in it. Such a webtask runs as a small JavaScript module that loads
//! the compiler and hands it the tenant's source, inside the tenant's
//! sandbox and under the tenant's limits; what the compiler throws is the
//! tenant's compile error.

use extend_wire::catalog::Document;
use extend_wire::meta::{COMPILER, EXTENSION_TYPE};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What the published catalog says of languages.
#[derive(Debug, Default)]
pub(crate) struct Languages {
    /// Each language's compiler, by name.
    compilers: HashMap<String, Arc<str>>,
    /// Each point's language, for points not in JavaScript.
    of_point: HashMap<String, String>,
}

/// The language a webtask is written in, with its compiler.
#[derive(Debug, Clone)]
pub(crate) struct Compiled<'a> {
    pub(crate) language: &'a str,
    pub(crate) compiler: &'a Arc<str>,
}

impl Languages {
    /// The languages of `document`.
    pub(crate) fn of(document: &Document) -> Languages {
        Languages {
            compilers: document
                .languages
                .iter()
                .map(|(name, l)| (name.clone(), Arc::from(l.compiler.as_str())))
                .collect(),
            of_point: document
                .points
                .iter()
                .filter_map(|p| Some((p.name.clone(), p.language.clone()?)))
                .collect(),
        }
    }

    /// The language a webtask with `meta` is written in (`None`: JavaScript),
    /// or why it cannot run: a language the catalog does not publish, or a
    /// `wt-compiler` that contradicts its point's language.
    pub(crate) fn of_webtask<'a>(
        &'a self,
        meta: &'a BTreeMap<String, String>,
    ) -> Result<Option<Compiled<'a>>, String> {
        let named = meta.get(COMPILER).map(String::as_str);
        let point = meta.get(EXTENSION_TYPE);
        let of_point = point.and_then(|p| self.of_point.get(p)).map(String::as_str);
        let language = match (named, of_point) {
            (Some(n), Some(p)) if n != p => {
                return Err(format!(
                    "`{COMPILER}` is `{n}`, but point `{}` is written in `{p}`: leave `{COMPILER}` out or make it `{p}`",
                    point.map_or("", String::as_str)
                ));
            }
            (Some(n), _) => n,
            (None, Some(p)) => p,
            (None, None) => return Ok(None),
        };
        match self.compilers.get_key_value(language) {
            Some((language, compiler)) => Ok(Some(Compiled { language, compiler })),
            None => Err(format!(
                "`{COMPILER}` names `{language}`, and the published catalog has no such language{}",
                if self.compilers.is_empty() {
                    String::from(" (it has none)")
                } else {
                    let mut known: Vec<_> =
                        self.compilers.keys().map(|k| format!("`{k}`")).collect();
                    known.sort();
                    format!(" (it has {})", known.join(", "))
                }
            )),
        }
    }
}

/// The JavaScript that runs `script`, the tenant's source in `language`:
/// a CommonJS module that loads the compiler, calls it with
/// `({ script, meta }, cb)` and exports the handler it answers.
pub(crate) fn module(language: &str, compiler: &str, script: &str, meta_json: &str) -> String {
    // JSON string literals are JavaScript string literals (U+2028 and U+2029
    // included since ES2019), so the source and the names need no escaping
    // beyond what serde_json does.
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned());
    format!(
        r#"const __language = {language};
const __compilerModule = {{ exports: {{}} }};
(function (module, exports, require) {{
{compiler}
}})(__compilerModule, __compilerModule.exports, require);
const __compile = __compilerModule.exports;
if (typeof __compile !== 'function') {{
  throw new TypeError('the compiler of `' + __language + '` does not export a function');
}}
let __error = null, __handler;
const __returned = __compile({{ script: {script}, meta: {meta_json} }}, (e, h) => {{ __error = e; __handler = h; }});
if (__error) throw __error;
if (typeof __returned === 'function') __handler = __returned;
if (typeof __handler !== 'function') {{
  throw new TypeError('the compiler of `' + __language + '` did not answer a handler function');
}}
module.exports = __handler;
"#,
        language = quote(language),
        script = quote(script),
    )
}

/// The JavaScript of a webtask that cannot be compiled: its compile error is
/// `message`, when it runs.
pub(crate) fn refused(message: &str) -> String {
    let quote = serde_json::to_string(message).unwrap_or_else(|_| "\"\"".to_owned());
    format!("throw new Error({quote});\n")
}

#[cfg(test)]
mod tests {
    use super::Languages;
    use extend_wire::catalog::Document;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn languages() -> Languages {
        let doc: Document = serde_json::from_value(json!({
            "points": [
                {"name": "format-email", "mode": "sync", "language": "mustache"},
                {"name": "on-new-lead", "mode": "sync"},
            ],
            "languages": {"mustache": {"compiler": "module.exports = () => () => 1;"}},
        }))
        .unwrap();
        Languages::of(&doc)
    }

    fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_webtask_is_in_its_points_language_or_the_one_it_names() {
        let l = languages();
        let by_point = meta(&[("auth0-extension-type", "format-email")]);
        assert_eq!(
            l.of_webtask(&by_point).unwrap().unwrap().language,
            "mustache"
        );
        let named = meta(&[("wt-compiler", "mustache")]);
        assert_eq!(l.of_webtask(&named).unwrap().unwrap().language, "mustache");
        assert!(
            l.of_webtask(&meta(&[("auth0-extension-type", "on-new-lead")]))
                .unwrap()
                .is_none()
        );
        assert!(l.of_webtask(&meta(&[])).unwrap().is_none());
        let unknown = l.of_webtask(&meta(&[("wt-compiler", "sql")])).unwrap_err();
        assert!(
            unknown.contains("no such language (it has `mustache`)"),
            "{unknown}"
        );
        let both = meta(&[
            ("wt-compiler", "sql"),
            ("auth0-extension-type", "format-email"),
        ]);
        assert!(
            l.of_webtask(&both)
                .unwrap_err()
                .contains("is written in `mustache`")
        );
    }
}
