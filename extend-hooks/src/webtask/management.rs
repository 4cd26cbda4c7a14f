//! [`Management`]: the calls a platform offers its tenants (tenant tokens,
//! installing, listing, toggling and removing extensions).

use std::collections::BTreeMap;

use super::api::{PutWebtask, WireWebtask};
use super::discovery::WebtaskDiscovery;
use super::error::{ManagementError, ManagementErrorKind};
use super::installed::InstalledExtension;
use super::options::RUN_SECRET;

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

/// An installed extension whose point a catalog change breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokenExtension {
    /// The point whose contract changes.
    pub point: String,
    /// The container it is installed in.
    pub container: String,
    /// Its webtask name.
    pub name: String,
}

/// Why [`Management::publish_catalog`] did not publish.
#[derive(Debug)]
#[non_exhaustive]
pub enum PublishError {
    /// The catalog breaks the one the host has (nothing was published):
    /// the differences, and the installed extensions of the points that
    /// break, by container. Publish with `force` to go ahead.
    Breaking {
        /// The published version it was compared with.
        published: u64,
        /// Every difference, breaking or not.
        comparison: crate::catalog::Comparison,
        /// The extensions installed for the points that break.
        affected: Vec<BrokenExtension>,
    },
    /// A call to the host failed.
    Management(ManagementError),
}

impl From<ManagementError> for PublishError {
    fn from(e: ManagementError) -> Self {
        PublishError::Management(e)
    }
}

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublishError::Management(e) => e.fmt(f),
            PublishError::Breaking {
                published,
                comparison,
                affected,
            } => {
                writeln!(
                    f,
                    "the catalog breaks the contract of the published version {published}; nothing was published (publish with force to go ahead):"
                )?;
                write!(f, "{comparison}")?;
                if affected.is_empty() {
                    write!(f, "no installed extension is affected")
                } else {
                    write!(f, "installed extensions of the affected points:")?;
                    for a in affected {
                        write!(f, "\n  {}/{} ({})", a.container, a.name, a.point)?;
                    }
                    Ok(())
                }
            }
        }
    }
}

impl std::error::Error for PublishError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PublishError::Management(e) => Some(e),
            PublishError::Breaking { .. } => None,
        }
    }
}

/// What is published: [`Catalog::to_json`](crate::Catalog::to_json), the
/// TypeScript types, and each point's starter template and sample payload,
/// which the host serves to extension authors and its editor.
fn published_document(catalog: &crate::Catalog) -> extend_wire::catalog::Document {
    let mut doc = catalog.document();
    doc.typescript = Some(catalog.to_typescript());
    for p in &mut doc.points {
        p.template = catalog.template(&p.name);
        p.sample = catalog.sample_payload(&p.name);
    }
    doc
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

    fn installed(&self, container: &str, w: WireWebtask) -> InstalledExtension {
        InstalledExtension::from_wire(container, w)
    }

    /// Publishes the platform's points to the host (`PUT /api/catalog`, master
    /// token): their names, modes, timeouts, descriptions and schemas, for
    /// editors and extension authors. From then on the host refuses to
    /// install an extension for a point the catalog does not name. The host
    /// keeps the previous version.
    ///
    /// Unless `force`, the catalog is first compared with the published one
    /// ([`Catalog::compare`](crate::Catalog::compare)) and a breaking change
    /// is refused with [`PublishError::Breaking`], which lists the
    /// extensions it would affect. (Two replicas publishing at the same
    /// moment are not serialised against each other.)
    pub async fn publish_catalog(
        &self,
        catalog: &crate::Catalog,
        force: bool,
    ) -> Result<PublishedCatalog, PublishError> {
        const OP: &str = "publish the catalog";
        if !force && let Some(published) = self.published_catalog().await? {
            let previous = published.get("catalog").cloned().unwrap_or_default();
            let comparison = catalog.compare(&previous).map_err(|e| {
                ManagementError::new(OP, "", ManagementErrorKind::InvalidAnswer, Some(200), e)
            })?;
            if comparison.is_breaking() {
                let points: Vec<String> = comparison.broken_points().into_iter().collect();
                return Err(PublishError::Breaking {
                    published: published
                        .get("version")
                        .and_then(serde_json::Value::as_u64)
                        .unwrap_or(0),
                    comparison,
                    affected: self.affected(&points).await?,
                });
            }
        }
        let body = self
            .discovery
            .api()
            .put_catalog(OP, &published_document(catalog))
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

    /// The extensions installed for `points`, in every container.
    async fn affected(&self, points: &[String]) -> Result<Vec<BrokenExtension>, ManagementError> {
        const OP: &str = "list the extensions of changed points";
        if points.is_empty() {
            return Ok(Vec::new());
        }
        let body = self.discovery.api().catalog_usage(OP, points).await?;
        #[derive(serde::Deserialize)]
        struct Wire {
            point: String,
            container: String,
            name: String,
        }
        let wire: Vec<Wire> = serde_json::from_slice(&body).map_err(|e| {
            ManagementError::new(
                OP,
                "",
                ManagementErrorKind::InvalidAnswer,
                Some(200),
                e.to_string(),
            )
        })?;
        Ok(wire
            .into_iter()
            .map(|w| BrokenExtension {
                point: w.point,
                container: w.container,
                name: w.name,
            })
            .collect())
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
    /// sealed by the host, as the secret `auth0-extension-secret` ([`extend_wire::meta::RUN_SECRET`](crate::wire::meta::RUN_SECRET));
    /// the host refuses runs without it, and discovery reads it back with
    /// the client's token.
    pub async fn install(
        &self,
        container: &str,
        point: &str,
        name: &str,
        code: &str,
    ) -> Result<InstalledExtension, ManagementError> {
        self.install_with_secrets(container, point, name, code, &BTreeMap::new())
            .await
    }

    /// [`install`](Self::install), with the tenant's own secrets besides the
    /// run secret: API keys and service URLs the extension reads from
    /// `ctx.secrets` (sealed at rest by the host, never listed back). A
    /// secret named `auth0-extension-secret` is refused: the run secret is
    /// the framework's.
    pub async fn install_with_secrets(
        &self,
        container: &str,
        point: &str,
        name: &str,
        code: &str,
        secrets: &BTreeMap<String, String>,
    ) -> Result<InstalledExtension, ManagementError> {
        const OP: &str = "install an extension";
        if secrets.contains_key(RUN_SECRET) {
            return Err(ManagementError::new(
                OP,
                container,
                ManagementErrorKind::BadInput,
                None,
                format!(
                    "the secret `{RUN_SECRET}` is the run secret, made by install itself; choose another name"
                ),
            ));
        }
        let secret = random_secret();
        let meta = BTreeMap::from([(
            extend_wire::meta::EXTENSION_TYPE.to_owned(),
            point.to_owned(),
        )]);
        let mut all: BTreeMap<&str, &str> = secrets
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        all.insert(RUN_SECRET, secret.as_str());
        let body = PutWebtask {
            code,
            secrets: Some(all),
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
        let filter = point.map(|p| (extend_wire::meta::EXTENSION_TYPE, p));
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
        let key = extend_wire::meta::EXTENSION_DISABLED;
        if enabled {
            current.meta.remove(key);
        } else {
            current.meta.insert(key.to_owned(), "1".to_owned());
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
    fn secrets_are_64_hex_digits_and_differ() {
        let (a, b) = (random_secret(), random_secret());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
