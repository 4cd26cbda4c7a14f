//! The catalog: every extension point linked into the binary, gathered at
//! startup; and the compatibility gate between two versions of it
//! ([`Catalog::compare`], [`assert_compatible`]).

mod compat;
mod lock;
mod sample;
mod typescript;

pub use compat::{Comparison, Difference, compare_documents};
pub use lock::{ACCEPT_VAR, LockCheck, assert_compatible, check_compatible};

use std::fmt;

use serde_json::{Value, json};

use crate::__private::Registration;
use crate::point::{Location, PointDescriptor};

/// Every extension point linked into the binary, sorted by name.
///
/// Build it once at startup with [`Catalog::collect`]: it fails on duplicate
/// names, and its [`Display`](fmt::Display) is a table meant for the startup log.
///
/// Points register themselves through `inventory` before `main` runs. A crate
/// that declares points must be linked into the binary (used from it) for its
/// points to appear; an empty catalog is not an error, so platforms that expect
/// points should assert [`Catalog::is_empty`] is false.
#[derive(Clone, Debug)]
pub struct Catalog {
    points: Vec<&'static PointDescriptor>,
    /// The languages besides JavaScript, by name ([`Catalog::language`]).
    languages: std::collections::BTreeMap<String, extend_wire::catalog::Language>,
}

/// Two points share a name. Names identify extensions on the host, so they
/// must be unique in a binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicatePoint {
    /// The shared name.
    pub name: &'static str,
    /// Where each declaration is, in source order.
    pub locations: [(Location, &'static str); 2],
}

impl fmt::Display for DuplicatePoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [(a, a_path), (b, b_path)] = &self.locations;
        write!(
            f,
            "extension point \"{}\" is declared twice: by {a_path} at {a} and by {b_path} at {b}; point names must be unique",
            self.name
        )
    }
}

impl std::error::Error for DuplicatePoint {}

impl Catalog {
    /// Gathers every point registered in this binary.
    ///
    /// # Errors
    /// [`DuplicatePoint`] naming both source locations when two points share a name.
    pub fn collect() -> Result<Catalog, DuplicatePoint> {
        Catalog::from_points(inventory::iter::<Registration>.into_iter().map(|r| r.0))
    }

    /// Builds a catalog from given descriptors (the same checks as [`Catalog::collect`]).
    ///
    /// # Errors
    /// [`DuplicatePoint`] when two descriptors share a name.
    pub fn from_points(
        points: impl IntoIterator<Item = &'static PointDescriptor>,
    ) -> Result<Catalog, DuplicatePoint> {
        let mut points: Vec<&'static PointDescriptor> = points.into_iter().collect();
        // Sorting by location as well makes the duplicate report deterministic
        // (inventory's order is unspecified).
        points.sort_unstable_by(|a, b| (a.name(), a.location()).cmp(&(b.name(), b.location())));
        if let Some(pair) = points.windows(2).find(|w| w[0].name() == w[1].name()) {
            return Err(DuplicatePoint {
                name: pair[0].name(),
                locations: [
                    (pair[0].location(), pair[0].rust_path()),
                    (pair[1].location(), pair[1].rust_path()),
                ],
            });
        }
        Ok(Catalog {
            points,
            languages: std::collections::BTreeMap::new(),
        })
    }

    /// Adds a language the platform's tenants may write extensions in
    /// (Extend's "middleware"), published with the catalog: a point that
    /// says `language = "{name}"` in its attribute gets extensions in it.
    /// `compiler` is a CommonJS module of JavaScript whose export takes
    /// `({ script, meta }, cb)` and answers the handler that runs `script`
    /// (Webtask's `wt-compiler` contract); it runs inside each tenant's
    /// sandbox, under the tenant's limits. `starter` is the code a new
    /// extension starts from, `editor_mode` the editor's syntax mode (a
    /// Monaco language id, e.g. `handlebars`).
    #[must_use]
    pub fn language(
        mut self,
        name: impl Into<String>,
        compiler: impl Into<String>,
        starter: Option<&str>,
        editor_mode: Option<&str>,
    ) -> Self {
        self.languages.insert(
            name.into(),
            extend_wire::catalog::Language {
                compiler: compiler.into(),
                starter: starter.map(str::to_owned),
                editor_mode: editor_mode.map(str::to_owned),
            },
        );
        self
    }

    /// Each point whose `language` has no [`Catalog::language`] yet, with
    /// that language: publishing refuses a catalog with any.
    pub fn missing_languages(&self) -> Vec<(&'static str, &'static str)> {
        self.points
            .iter()
            .filter_map(|p| Some((p.name(), p.language()?)))
            .filter(|(_, l)| !self.languages.contains_key(*l))
            .collect()
    }

    /// How many points there are.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether no point is linked in (see the type's docs for why that can happen).
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The point with this name.
    pub fn get(&self, name: &str) -> Option<&'static PointDescriptor> {
        self.points
            .binary_search_by(|p| p.name().cmp(name))
            .ok()
            .map(|i| self.points[i])
    }

    /// The points, sorted by name.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'static PointDescriptor> + '_ {
        self.points.iter().copied()
    }

    /// A stable JSON document for extension authors and editors: points sorted
    /// by name, object keys sorted, schemas in draft 2020-12.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.document()).unwrap_or_else(|_| json!({ "points": [] }))
    }

    /// The same document, typed ([`extend_wire::catalog::Document`]): what
    /// is published to the host, which reads it with the same types.
    pub fn document(&self) -> extend_wire::catalog::Document {
        use extend_wire::catalog::{Document, Point, Source};
        let points = self
            .points
            .iter()
            .map(|p| {
                let location = p.location();
                Point {
                    name: p.name().to_owned(),
                    mode: p.mode().as_str().to_owned(),
                    timeout_ms: Some(u64::try_from(p.timeout().as_millis()).unwrap_or(u64::MAX)),
                    description: Some(p.description().to_owned()),
                    rust_path: Some(p.rust_path().to_owned()),
                    source: Some(Source {
                        file: location.file.to_owned(),
                        line: location.line,
                        column: location.column,
                    }),
                    has_default: p.has_default(),
                    record_inputs: p.record_inputs(),
                    language: p.language().map(str::to_owned),
                    payload_type: Some(p.payload_type()),
                    payload_schema: serde_json::to_value(p.payload_schema()).ok(),
                    response_type: p.response_type().map(str::to_owned),
                    response_schema: p
                        .response_schema()
                        .and_then(|s| serde_json::to_value(s).ok()),
                    ..Point::default()
                }
            })
            .collect();
        Document {
            points,
            languages: self.languages.clone(),
            ..Document::default()
        }
    }

    /// Every difference between `previous` (a catalog document: an earlier
    /// [`Catalog::to_json`], a lock file, or what the host has published)
    /// and this catalog, each classified as breaking or compatible for
    /// extensions written against `previous` (see [`Comparison`]).
    ///
    /// # Errors
    /// A message when `previous` is not a catalog document.
    pub fn compare(&self, previous: &Value) -> Result<Comparison, String> {
        compare_documents(previous, &self.to_json())
    }

    /// Markdown documentation: a summary table, then each point with its
    /// description and schemas.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from("# Extension points\n\n");
        if self.is_empty() {
            out.push_str("This platform declares no extension points.\n");
            return out;
        }
        out.push_str(
            "| name | mode | timeout | default | payload | response |\n|---|---|---|---|---|---|\n",
        );
        for p in &self.points {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | `{}` | {} |\n",
                p.name(),
                p.mode(),
                human_duration(p.timeout()),
                if p.has_default() { "yes" } else { "no" },
                p.payload_type(),
                p.response_type()
                    .map_or_else(|| "-".to_owned(), |r| format!("`{r}`")),
            ));
        }
        for p in &self.points {
            out.push_str(&format!("\n## `{}`\n\n", p.name()));
            if !p.description().is_empty() {
                out.push_str(p.description());
                out.push_str("\n\n");
            }
            out.push_str(&format!(
                "Declared as `{}` at `{}`.\n\n### Payload\n\n```json\n{}\n```\n",
                p.rust_path(),
                p.location(),
                pretty(&p.payload_schema()),
            ));
            if let Some(schema) = p.response_schema() {
                out.push_str(&format!(
                    "\n### Response\n\n```json\n{}\n```\n",
                    pretty(&schema)
                ));
            }
        }
        out
    }
}

fn pretty(schema: &schemars::Schema) -> String {
    serde_json::to_string_pretty(schema).unwrap_or_default()
}

/// `2s`, `500ms`, `1m`: the way timeouts are written in the attribute.
pub(crate) fn human_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1_000) {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

/// An aligned table, one point per line, for the startup log.
impl fmt::Display for Catalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return writeln!(f, "no extension points are linked into this binary");
        }
        let rows: Vec<[String; 6]> = self
            .points
            .iter()
            .map(|p| {
                [
                    p.name().to_owned(),
                    p.mode().to_string(),
                    human_duration(p.timeout()),
                    if p.has_default() { "yes" } else { "no" }.to_owned(),
                    format!(
                        "{} -> {}",
                        p.payload_type(),
                        p.response_type().unwrap_or("()")
                    ),
                    p.rust_path().to_owned(),
                ]
            })
            .collect();
        let header = [
            "POINT",
            "MODE",
            "TIMEOUT",
            "DEFAULT",
            "PAYLOAD -> RESPONSE",
            "DECLARED AS",
        ];
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, cells: &[&str]| -> fmt::Result {
            let last = cells.len() - 1;
            for (i, cell) in cells.iter().enumerate() {
                if i == last {
                    writeln!(f, "{cell}")?;
                } else {
                    write!(f, "{cell:<width$}  ", width = widths[i])?;
                }
            }
            Ok(())
        };
        line(f, &header)?;
        for row in &rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            line(f, &cells)?;
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a Catalog {
    type Item = &'static PointDescriptor;
    type IntoIter = std::iter::Copied<std::slice::Iter<'a, &'static PointDescriptor>>;
    fn into_iter(self) -> Self::IntoIter {
        self.points.iter().copied()
    }
}
