//! Point descriptors: what the `#[extension_point]` attribute records about each
//! point, built as a `static` at compile time.

use std::fmt;
use std::time::Duration;

use schemars::{Schema, SchemaGenerator};

/// How a point is invoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// The caller waits for the extension's response, under the point's timeout.
    Sync,
    /// The call queues the invocation and returns; delivery happens in the
    /// background with retries, and its outcome is logged.
    Async,
}

impl Mode {
    /// `"sync"` or `"async"`, as written in the attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sync => "sync",
            Mode::Async => "async",
        }
    }

    /// The timeout of a point that declares none: 5 s for a sync point (the
    /// caller waits), 30 s for each attempt of an async one. This is the one
    /// definition; the attribute expands to a call of it.
    pub const fn default_timeout(self) -> Duration {
        match self {
            Mode::Sync => Duration::from_secs(5),
            Mode::Async => Duration::from_secs(30),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Writes one type's schema into a generator and returns the reference to it.
#[doc(hidden)]
pub type SubschemaFn = fn(&mut SchemaGenerator) -> Schema;

/// How the payload is shaped, as the macro saw it.
#[doc(hidden)]
#[derive(Debug)]
pub enum PayloadDecl {
    /// One payload parameter: its value is the JSON body.
    One(&'static str, SubschemaFn),
    /// Several: a JSON object keyed by parameter name.
    Object(&'static [(&'static str, &'static str, SubschemaFn)]),
}

/// Everything the macro knows about a point. Not part of the public API: the
/// macro fills it in and [`PointDescriptor::__new`] takes it.
#[doc(hidden)]
#[derive(Debug)]
pub struct Decl {
    pub name: &'static str,
    pub mode: Mode,
    pub timeout: Duration,
    pub description: &'static str,
    pub rust_path: &'static str,
    pub file: &'static str,
    pub line: u32,
    pub column: u32,
    pub has_default: bool,
    pub record_inputs: bool,
    pub language: Option<&'static str>,
    pub payload: PayloadDecl,
    pub response: Option<(&'static str, SubschemaFn)>,
}

/// A declared extensibility point: its name, mode, timeout, documentation,
/// where it is declared, and the JSON Schemas of what travels each way.
///
/// Descriptors are `static`s created by `#[extension_point]`; get them from the
/// [`Catalog`](crate::Catalog).
pub struct PointDescriptor {
    decl: Decl,
}

impl PointDescriptor {
    #[doc(hidden)]
    pub const fn __new(decl: Decl) -> Self {
        PointDescriptor { decl }
    }

    /// The point's name, e.g. `on-new-lead`: the `auth0-extension-type` of its extensions.
    pub fn name(&self) -> &'static str {
        self.decl.name
    }

    /// Whether callers wait for the answer.
    pub fn mode(&self) -> Mode {
        self.decl.mode
    }

    /// For a sync point the deadline of the whole call (discovery included);
    /// for an async point the bound on each delivery attempt.
    pub fn timeout(&self) -> Duration {
        self.decl.timeout
    }

    /// The declaration's doc comment (empty when it has none).
    pub fn description(&self) -> &'static str {
        self.decl.description
    }

    /// The Rust path of the declared function, e.g. `crm::points::on_new_lead`.
    pub fn rust_path(&self) -> &'static str {
        self.decl.rust_path
    }

    /// Where the point is declared, as `file:line:column`.
    pub fn location(&self) -> Location {
        Location {
            file: self.decl.file,
            line: self.decl.line,
            column: self.decl.column,
        }
    }

    /// Whether the platform supplies a default (a body) used when a tenant has
    /// no extension for the point. Async points never do.
    pub fn has_default(&self) -> bool {
        self.decl.has_default
    }

    /// Whether the host may record this point's last inputs per extension
    /// (sealed, `writeOnly` fields redacted) so that tenants can try a draft
    /// on real traffic before deploying it: `record_inputs` in the attribute.
    pub fn record_inputs(&self) -> bool {
        self.decl.record_inputs
    }

    /// The language its extensions are written in, when not JavaScript
    /// (`language` in the attribute): the name of a compiler the platform
    /// publishes with its catalog ([`Catalog::language`](crate::Catalog::language)).
    pub fn language(&self) -> Option<&'static str> {
        self.decl.language
    }

    /// The Rust payload type, or a `{ name: Type, … }` listing for several parameters.
    pub fn payload_type(&self) -> String {
        match &self.decl.payload {
            PayloadDecl::One(ty, _) => (*ty).to_owned(),
            PayloadDecl::Object(fields) => {
                let fields: Vec<String> = fields
                    .iter()
                    .map(|(name, ty, _)| format!("{name}: {ty}"))
                    .collect();
                format!("{{ {} }}", fields.join(", "))
            }
        }
    }

    /// The Rust response type of a sync point.
    pub fn response_type(&self) -> Option<&'static str> {
        self.decl.response.map(|(ty, _)| ty)
    }

    /// The JSON Schema (draft 2020-12) of the request body an extension receives.
    pub fn payload_schema(&self) -> Schema {
        let mut generator = SchemaGenerator::default();
        let mut schema = match &self.decl.payload {
            PayloadDecl::One(_, subschema) => subschema(&mut generator),
            PayloadDecl::Object(fields) => {
                let mut properties = serde_json::Map::new();
                let mut required = Vec::new();
                for (name, _, subschema) in *fields {
                    properties.insert((*name).to_owned(), subschema(&mut generator).to_value());
                    required.push(serde_json::Value::from(*name));
                }
                schemars::json_schema!({
                    "type": "object",
                    "properties": properties,
                    "required": required,
                    "additionalProperties": false,
                })
            }
        };
        finish_root(&mut generator, &mut schema);
        schema
    }

    /// The JSON Schema (draft 2020-12) of the response a sync point expects;
    /// `None` for async points.
    pub fn response_schema(&self) -> Option<Schema> {
        let (_, subschema) = self.decl.response?;
        let mut generator = SchemaGenerator::default();
        let mut schema = subschema(&mut generator);
        finish_root(&mut generator, &mut schema);
        Some(schema)
    }
}

/// Turns a subschema into a root schema: adds `$schema` and the definitions the
/// generator collected. Works whether the subschema is inline or a `$ref`.
fn finish_root(generator: &mut SchemaGenerator, schema: &mut Schema) {
    let mut defs = generator.take_definitions(true);
    inline_root_ref(&mut defs, schema);
    if let Some(object) = schema.as_object_mut() {
        if !defs.is_empty() {
            object.insert("$defs".to_owned(), serde_json::Value::Object(defs));
        }
        object.insert(
            "$schema".to_owned(),
            "https://json-schema.org/draft/2020-12/schema".into(),
        );
    } else {
        // `true`/`false` schemas (e.g. for `serde_json::Value`) have no keywords.
        let mut object = serde_json::Map::new();
        object.insert(
            "$schema".to_owned(),
            "https://json-schema.org/draft/2020-12/schema".into(),
        );
        if schema.as_bool() == Some(false) {
            object.insert("not".to_owned(), serde_json::json!({}));
        }
        *schema = Schema::from(object);
    }
}

/// A named type's subschema is only `{"$ref": "#/$defs/Name"}`: make its
/// definition the root, so the document reads as the type itself. The
/// definition stays in `$defs` only if something else refers to it
/// (a recursive type).
fn inline_root_ref(defs: &mut serde_json::Map<String, serde_json::Value>, schema: &mut Schema) {
    let Some(object) = schema.as_object() else {
        return;
    };
    let Some(name) = object
        .get("$ref")
        .and_then(|r| r.as_str())
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .map(str::to_owned)
    else {
        return;
    };
    if object.len() != 1 {
        return;
    }
    let reference = format!("\"#/$defs/{name}\"");
    let still_used = defs
        .iter()
        .any(|(_, def)| def.to_string().contains(&reference));
    let definition = if still_used {
        defs.get(&name).cloned()
    } else {
        defs.remove(&name)
    };
    if let Some(serde_json::Value::Object(definition)) = definition {
        *schema = Schema::from(definition);
    }
}

impl fmt::Debug for PointDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PointDescriptor")
            .field("name", &self.name())
            .field("mode", &self.mode())
            .field("timeout", &self.timeout())
            .field("rust_path", &self.rust_path())
            .field("location", &self.location())
            .finish_non_exhaustive()
    }
}

/// A source location: where a point is declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// The file, as `file!()` gives it.
    pub file: &'static str,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}
