//! [`Management`]: the calls a platform offers its tenants (tenant tokens,
//! installing, listing, toggling and removing extensions).

use std::collections::BTreeMap;

use super::api::{PutWebtask, WireWebtask};
use super::discovery::WebtaskDiscovery;
use super::error::{ManagementError, ManagementErrorKind};
use super::options::{RUN_SECRET, WebtaskOptions};

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

/// A catalog as the host stored it (see [`Management::publish_catalog`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishedCatalog {
    /// 1 for the first published, then one more each time.
    pub version: u64,
    /// When it was published, Unix seconds.
    pub published_at: i64,
    /// Its points' names.
    pub points: Vec<String>,
}

fn truthy(v: Option<&String>) -> bool {
    v.is_some_and(|v| {
        !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no"
        )
    })
}

/// The management calls a platform offers its tenants, through the webtask
/// host of an [`Extend`](crate::Extend) client (see
/// [`Extend::management`](crate::Extend::management)). Every change forgets
/// the container's cached discovery answers, so the next invocation sees it.
#[derive(Debug, Clone)]
pub struct Management {
    discovery: WebtaskDiscovery,
}

impl Management {
    pub(crate) fn new(discovery: WebtaskDiscovery) -> Self {
        Management { discovery }
    }

    fn options(&self) -> &WebtaskOptions {
        self.discovery.options()
    }

    fn installed(&self, container: &str, w: WireWebtask) -> InstalledExtension {
        InstalledExtension::from_wire(container, w, self.options())
    }

    /// Publishes the platform's points to the host (`PUT /api/catalog`, master
    /// token): their names, modes, timeouts, descriptions and schemas, for
    /// editors and extension authors. From then on the host refuses to
    /// install an extension for a point the catalog does not name. The host
    /// keeps the previous version.
    pub async fn publish_catalog(
        &self,
        catalog: &crate::Catalog,
    ) -> Result<PublishedCatalog, ManagementError> {
        const OP: &str = "publish the catalog";
        let body = self
            .discovery
            .api()
            .put_catalog(OP, &catalog.to_json())
            .await?;
        #[derive(serde::Deserialize)]
        struct Wire {
            version: u64,
            published_at: i64,
            points: Vec<String>,
        }
        let w: Wire = serde_json::from_slice(&body).map_err(|e| {
            ManagementError::new(
                OP,
                "",
                ManagementErrorKind::InvalidAnswer,
                Some(200),
                format!("the host's answer is not a published catalog: {e}"),
            )
        })?;
        Ok(PublishedCatalog {
            version: w.version,
            published_at: w.published_at,
            points: w.points,
        })
    }

    /// The catalog the host has (`GET /api/catalog`): `{version,
    /// published_at, catalog, previous}`, or `None` before the first publish.
    pub async fn published_catalog(&self) -> Result<Option<serde_json::Value>, ManagementError> {
        const OP: &str = "read the published catalog";
        let Some(body) = self.discovery.api().get_catalog(OP).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&body).map(Some).map_err(|e| {
            ManagementError::new(
                OP,
                "",
                ManagementErrorKind::InvalidAnswer,
                Some(200),
                format!("the host's answer is not JSON: {e}"),
            )
        })
    }

    /// Issues a tenant token for `container` (`POST /api/tokens/issue {"ten": …}`).
    /// Needs the master token. Store it with the tenant; hand it to that tenant only.
    pub async fn issue_tenant_token(&self, container: &str) -> Result<String, ManagementError> {
        self.discovery
            .api()
            .issue_tenant_token("issue a tenant token", container)
            .await
    }

    /// Installs `code` as the extension `name` for `point` in `container`,
    /// replacing what had that name. A fresh random run secret is stored,
    /// sealed by the host, as the secret [`RUN_SECRET`](super::RUN_SECRET);
    /// the host refuses runs without it, and discovery reads it back with
    /// the client's token.
    pub async fn install(
        &self,
        container: &str,
        point: &str,
        name: &str,
        code: &str,
    ) -> Result<InstalledExtension, ManagementError> {
        const OP: &str = "install an extension";
        let secret = random_secret();
        let o = self.options();
        let meta = BTreeMap::from([(o.type_key.clone(), point.to_owned())]);
        let body = PutWebtask {
            code,
            secrets: Some(BTreeMap::from([(RUN_SECRET, secret.as_str())])),
            meta: &meta,
        };
        let out = self.discovery.api().put(OP, container, name, &body).await;
        self.discovery.invalidate_container(container);
        Ok(self.installed(container, out?))
    }

    /// The container's extensions, all or only those for `point`.
    pub async fn list(
        &self,
        container: &str,
        point: Option<&str>,
    ) -> Result<Vec<InstalledExtension>, ManagementError> {
        let filter = point.map(|p| (self.options().type_key.as_str(), p));
        let items = self
            .discovery
            .api()
            .list("list extensions", container, filter, false)
            .await?;
        Ok(items
            .into_iter()
            .map(|w| self.installed(container, w))
            .collect())
    }

    /// One extension, `None` when there is none by that name.
    pub async fn get(
        &self,
        container: &str,
        name: &str,
    ) -> Result<Option<InstalledExtension>, ManagementError> {
        let found = self
            .discovery
            .api()
            .get("get an extension", container, name, false)
            .await?;
        Ok(found.map(|w| self.installed(container, w)))
    }

    /// Enables or disables an extension (its `auth0-extension-disabled` meta);
    /// discovery skips disabled ones, so the point's default runs instead.
    pub async fn set_enabled(
        &self,
        container: &str,
        name: &str,
        enabled: bool,
    ) -> Result<InstalledExtension, ManagementError> {
        let op = if enabled {
            "enable an extension"
        } else {
            "disable an extension"
        };
        let api = self.discovery.api();
        let Some(mut current) = api.get(op, container, name, true).await? else {
            return Err(ManagementError::new(
                op,
                container,
                ManagementErrorKind::NotFound,
                Some(404),
                format!("there is no extension named `{name}`"),
            ));
        };
        let key = &self.options().disabled_key;
        if enabled {
            current.meta.remove(key);
        } else {
            current.meta.insert(key.clone(), "1".to_owned());
        }
        // The host's PUT needs the code; secrets are left out, so it keeps the stored ones.
        let body = PutWebtask {
            code: current.code.as_deref().unwrap_or_default(),
            secrets: None,
            meta: &current.meta,
        };
        let out = api.put(op, container, name, &body).await;
        self.discovery.invalidate_container(container);
        Ok(self.installed(container, out?))
    }

    /// Removes an extension; `false` when there was none by that name.
    pub async fn remove(&self, container: &str, name: &str) -> Result<bool, ManagementError> {
        let out = self
            .discovery
            .api()
            .delete("remove an extension", container, name)
            .await;
        self.discovery.invalidate_container(container);
        out
    }
}

/// 32 random bytes from the OS, hex: the extension secret.
fn random_secret() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("the operating system's random number generator failed");
    b.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_flags_read_as_people_write_them() {
        for on in ["1", "true", "yes", "TRUE"] {
            assert!(truthy(Some(&on.to_owned())), "{on}");
        }
        for off in ["0", "false", "", "no"] {
            assert!(!truthy(Some(&off.to_owned())), "{off}");
        }
        assert!(!truthy(None));
    }

    #[test]
    fn secrets_are_64_hex_digits_and_differ() {
        let (a, b) = (random_secret(), random_secret());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
