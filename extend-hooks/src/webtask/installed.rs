//! [`InstalledExtension`]: one extension of a container as the management
//! API lists it, which discovery and management both read.

use std::collections::BTreeMap;

use super::api::WireWebtask;

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
    pub(crate) fn from_wire(container: &str, w: WireWebtask) -> Self {
        InstalledExtension {
            container: container.to_owned(),
            point: w.meta.get(extend_wire::meta::EXTENSION_TYPE).cloned(),
            enabled: !w
                .meta
                .get(extend_wire::meta::EXTENSION_DISABLED)
                .is_some_and(|v| extend_wire::meta::truthy(v)),
            name: w.name,
            url: w.webtask_url,
            meta: w.meta,
        }
    }
}
