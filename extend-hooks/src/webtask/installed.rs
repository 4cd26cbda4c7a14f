//! [`InstalledExtension`]: one extension of a container as the management
//! API lists it, which discovery and management both read.

use std::collections::BTreeMap;

use super::api::WireWebtask;
use super::options::WebtaskOptions;

/// An extension installed in a container, as the management API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InstalledExtension {
    /// The container it is installed in.
    pub container: String,
    /// Its webtask name, unique in the container.
    pub name: String,
    /// The extension point it serves (its `auth0-extension-type` meta), if any.
    pub point: Option<String>,
    /// The URL it runs at.
    pub url: String,
    /// Whether discovery considers it (not marked disabled).
    pub enabled: bool,
    /// All its metadata.
    pub meta: BTreeMap<String, String>,
}

impl InstalledExtension {
    pub(crate) fn from_wire(container: &str, w: WireWebtask, options: &WebtaskOptions) -> Self {
        InstalledExtension {
            container: container.to_owned(),
            point: w.meta.get(&options.type_key).cloned(),
            enabled: !truthy(w.meta.get(&options.disabled_key)),
            name: w.name,
            url: w.webtask_url,
            meta: w.meta,
        }
    }
}

pub(super) fn truthy(v: Option<&String>) -> bool {
    v.is_some_and(|v| {
        !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no"
        )
    })
}
