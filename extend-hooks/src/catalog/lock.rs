//! The snapshot workflow of the compatibility gate: a platform commits a
//! lock file of its catalog, and a test fails when the code breaks it.
//!
//! ```no_run
//! #[test]
//! fn the_extension_contract_holds() {
//!     extend_hooks::catalog::assert_compatible(concat!(env!("CARGO_MANIFEST_DIR"), "/catalog.lock.json"));
//! }
//! ```
//!
//! Run it with `EXTEND_CATALOG_ACCEPT=1` to write the lock file (the first
//! time, or to accept a change on purpose).

use std::path::Path;

use serde_json::Value;

use super::{Catalog, Comparison};

/// The environment variable that makes [`assert_compatible`] write the lock file.
pub const ACCEPT_VAR: &str = "EXTEND_CATALOG_ACCEPT";

/// What [`check_compatible`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockCheck {
    /// The lock holds this catalog's contract exactly.
    Same,
    /// Only compatible changes; the lock was left as it is.
    Compatible(Comparison),
    /// The lock was written (accepted, or created).
    Written(Option<Comparison>),
}

/// The lock document of a catalog: [`Catalog::to_json`] without source
/// locations, which change with every edit above a declaration.
fn lock_document(catalog: &Catalog) -> Value {
    let mut doc = catalog.to_json();
    if let Some(points) = doc.get_mut("points").and_then(Value::as_array_mut) {
        for p in points {
            if let Some(p) = p.as_object_mut() {
                p.remove("source");
            }
        }
    }
    doc
}

/// Compares `catalog` with the lock file at `path`; with `accept`, writes
/// the lock instead of failing.
///
/// # Errors
/// A readable report when the lock is missing (and not accepted), unreadable,
/// or broken by the catalog.
pub fn check_compatible(catalog: &Catalog, path: &Path, accept: bool) -> Result<LockCheck, String> {
    let current = lock_document(catalog);
    let write = |comparison: Option<Comparison>| -> Result<LockCheck, String> {
        let mut text = serde_json::to_string_pretty(&current).map_err(|e| e.to_string())?;
        text.push('\n');
        // Written beside and renamed over, so a failed write leaves the old lock.
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| format!("cannot write the catalog lock {}: {e}", path.display()))?;
        Ok(LockCheck::Written(comparison))
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if accept {
                return write(None);
            }
            return Err(format!(
                "there is no catalog lock at {}: run the test with {ACCEPT_VAR}=1 to write it, then commit it",
                path.display()
            ));
        }
        Err(e) => {
            return Err(format!(
                "cannot read the catalog lock {}: {e}",
                path.display()
            ));
        }
    };
    let locked: Value = serde_json::from_str(&text)
        .map_err(|e| format!("the catalog lock {} is not JSON: {e}", path.display()))?;
    let comparison = catalog.compare(&locked)?;
    if accept {
        return write(Some(comparison));
    }
    if comparison.is_breaking() {
        return Err(format!(
            "the extension points break their contract with {}:\n{comparison}\nExtensions written against the locked catalog may fail. \
             If that is intended, run the test with {ACCEPT_VAR}=1 to accept it (and publish with force).",
            path.display()
        ));
    }
    if comparison.differences.is_empty() {
        Ok(LockCheck::Same)
    } else {
        Ok(LockCheck::Compatible(comparison))
    }
}

/// Fails (panics, for tests) when this binary's catalog breaks the lock file
/// at `path`; see the module documentation. Compatible changes pass and are
/// listed on stderr; `EXTEND_CATALOG_ACCEPT=1` writes the lock.
///
/// # Panics
/// On a breaking change, a missing lock (unless accepted), or an unreadable one.
pub fn assert_compatible(path: impl AsRef<Path>) {
    let catalog = match Catalog::collect() {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let accept = std::env::var_os(ACCEPT_VAR).is_some_and(|v| v != "0" && !v.is_empty());
    match check_compatible(&catalog, path.as_ref(), accept) {
        Ok(LockCheck::Compatible(c)) => eprintln!(
            "the catalog changed compatibly since {} (run with {ACCEPT_VAR}=1 to record it):\n{c}",
            path.as_ref().display()
        ),
        Ok(_) => {}
        Err(report) => panic!("{report}"),
    }
}
