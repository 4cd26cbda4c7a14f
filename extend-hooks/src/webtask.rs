//! Discovery and management through the Webtask management API, the way the
//! Extend developer guide prescribes: extensions are webtasks whose metadata
//! names their point, found with `GET /api/webtask/{container}?meta=…`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;
use serde_json::{Value, json};

use crate::discovery::{BoxFuture, Discovery, DiscoveryError, Extension};

/// Settings of webtask discovery: cache lifetimes and size, metadata key names.
#[derive(Debug, Clone)]
pub struct WebtaskOptions {
    ttl: Duration,
    none_ttl: Duration,
    max_entries: u64,
    type_key: String,
    secret_key: String,
    disabled_key: String,
}

impl Default for WebtaskOptions {
    fn default() -> Self {
        WebtaskOptions {
            ttl: Duration::from_secs(60),
            none_ttl: Duration::from_secs(10),
            max_entries: 100_000,
            type_key: "auth0-extension-type".to_owned(),
            secret_key: "auth0-extension-secret".to_owned(),
            disabled_key: "auth0-extension-disabled".to_owned(),
        }
    }
}

impl WebtaskOptions {
    /// How long a found extension is remembered (default 60 s).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long "this container has no extension for this point" is remembered
    /// (default 10 s): shorter, so a new extension is picked up soon even when
    /// it was installed by another client.
    #[must_use]
    pub fn none_ttl(mut self, ttl: Duration) -> Self {
        self.none_ttl = ttl;
        self
    }

    /// The most (container, point) answers kept (default 100,000).
    #[must_use]
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = n;
        self
    }

    /// The metadata keys: the point name (default `auth0-extension-type`), the
    /// secret sent as bearer token (`auth0-extension-secret`) and the disabled
    /// flag (`auth0-extension-disabled`).
    #[must_use]
    pub fn meta_keys(
        mut self,
        point: impl Into<String>,
        secret: impl Into<String>,
        disabled: impl Into<String>,
    ) -> Self {
        self.type_key = point.into();
        self.secret_key = secret.into();
        self.disabled_key = disabled.into();
        self
    }
}

/// What the cache remembers for a (container, point).
type Answer = Option<Extension>;

struct TtlByAnswer {
    found: Duration,
    none: Duration,
}

impl Expiry<String, Answer> for TtlByAnswer {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Answer,
        _now: Instant,
    ) -> Option<Duration> {
        Some(if value.is_some() {
            self.found
        } else {
            self.none
        })
    }
}

/// [`Discovery`] through a webtask host's management API, cached per
/// (container, point) with single-flight misses. Built by
/// [`ExtendBuilder::webtask`](crate::ExtendBuilder::webtask).
#[derive(Clone)]
pub struct WebtaskDiscovery {
    shared: Arc<Shared>,
}

struct Shared {
    http: reqwest::Client,
    base: String,
    token: String,
    options: WebtaskOptions,
    cache: Cache<String, Answer>,
}

impl fmt::Debug for WebtaskDiscovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebtaskDiscovery")
            .field("base", &self.shared.base)
            .field("options", &self.shared.options)
            .field("cached", &self.shared.cache.entry_count())
            .finish_non_exhaustive()
    }
}

fn key(container: &str, point: &str) -> String {
    let mut k = String::with_capacity(container.len() + point.len() + 1);
    k.push_str(container);
    k.push('\0');
    k.push_str(point);
    k
}

/// Checks a container or webtask name the way the host does, so that a bad
/// name is refused here with a clear message instead of becoming a bad URL.
fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
        && !name.bytes().all(|b| b == b'.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid {what} name `{}`: use 1 to 64 characters from A-Z, a-z, 0-9, `-`, `_`, `.` and `~`",
            name.escape_debug()
        ))
    }
}

fn truthy(v: Option<&String>) -> bool {
    v.is_some_and(|v| {
        !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no"
        )
    })
}

impl WebtaskDiscovery {
    pub(crate) fn new(
        http: reqwest::Client,
        base: &str,
        token: String,
        options: WebtaskOptions,
    ) -> Result<Self, String> {
        let url = reqwest::Url::parse(base).map_err(|e| format!("`{base}` is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("`{base}` is not an http or https URL"));
        }
        let cache = Cache::builder()
            .max_capacity(options.max_entries)
            .expire_after(TtlByAnswer {
                found: options.ttl,
                none: options.none_ttl,
            })
            .support_invalidation_closures()
            .build();
        Ok(WebtaskDiscovery {
            shared: Arc::new(Shared {
                http,
                base: base.trim_end_matches('/').to_owned(),
                token,
                options,
                cache,
            }),
        })
    }

    /// Forgets the cached answer for (container, point).
    pub async fn invalidate(&self, container: &str, point: &str) {
        self.shared.cache.invalidate(&key(container, point)).await;
    }

    /// Forgets every cached answer for `container`.
    pub fn invalidate_container(&self, container: &str) {
        let prefix = key(container, "");
        // Only fails when closures are unsupported, and the cache is built with them.
        let _ = self
            .shared
            .cache
            .invalidate_entries_if(move |k, _| k.starts_with(&prefix));
    }

    /// The management calls of this host, with this client's token.
    pub fn management(&self) -> Management {
        Management {
            discovery: self.clone(),
        }
    }

    async fn fetch(&self, container: &str, point: &str) -> Result<Answer, DiscoveryError> {
        let s = &*self.shared;
        let items = list(s, container, Some(point))
            .await
            .map_err(|e| DiscoveryError::Failed(Box::new(e)))?;
        let enabled: Vec<&InstalledExtension> = items.iter().filter(|x| x.enabled).collect();
        match enabled.as_slice() {
            [] => Ok(None),
            [one] => {
                let ext =
                    Extension::new(&one.url).map_err(|e| DiscoveryError::Failed(Box::new(e)))?;
                Ok(Some(match one.meta.get(&s.options.secret_key) {
                    Some(secret) => ext.with_secret(secret.clone()),
                    None => ext,
                }))
            }
            many => Err(DiscoveryError::Ambiguous {
                names: many.iter().map(|x| x.name.clone()).collect(),
            }),
        }
    }
}

impl Discovery for WebtaskDiscovery {
    fn discover<'a>(
        &'a self,
        container: &'a str,
        point: &'a str,
    ) -> BoxFuture<'a, Result<Option<Extension>, DiscoveryError>> {
        Box::pin(async move {
            check_name("container", container).map_err(|m| DiscoveryError::Failed(m.into()))?;
            let k = key(container, point);
            if let Some(hit) = self.shared.cache.get(&k).await {
                return Ok(hit);
            }
            // Concurrent misses for one key share this one request; errors are not cached.
            self.shared
                .cache
                .try_get_with(k, self.fetch(container, point))
                .await
                .map_err(|shared| match &*shared {
                    DiscoveryError::Ambiguous { names } => DiscoveryError::Ambiguous {
                        names: names.clone(),
                    },
                    _ => DiscoveryError::Failed(Box::new(SharedError(shared))),
                })
        })
    }
}

/// An error shared by every caller of one single-flight discovery.
#[derive(Debug)]
struct SharedError(Arc<DiscoveryError>);

impl fmt::Display for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.0)
    }
}

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
    /// All its metadata (the extension secret included: this is the platform's view).
    pub meta: BTreeMap<String, String>,
}

/// A management call failed. Names the call and the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagementError {
    operation: &'static str,
    container: String,
    status: Option<u16>,
    message: String,
}

impl ManagementError {
    fn new(
        operation: &'static str,
        container: &str,
        status: Option<u16>,
        message: impl Into<String>,
    ) -> Self {
        ManagementError {
            operation,
            container: container.to_owned(),
            status,
            message: message.into(),
        }
    }

    /// What was attempted, e.g. `"install an extension"`.
    pub fn operation(&self) -> &str {
        self.operation
    }

    /// The container it was for.
    pub fn container(&self) -> &str {
        &self.container
    }

    /// The host's HTTP status, when it answered.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The host's message (or the transport error).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ManagementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "could not {} in container \"{}\": ",
            self.operation, self.container
        )?;
        match self.status {
            Some(s) => write!(f, "the host answered {s}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ManagementError {}

async fn call(
    s: &Shared,
    operation: &'static str,
    container: &str,
    request: reqwest::RequestBuilder,
) -> Result<(u16, bytes::Bytes), ManagementError> {
    let err = |status, m: String| ManagementError::new(operation, container, status, m);
    let r = request
        .bearer_auth(&s.token)
        .send()
        .await
        .map_err(|e| err(None, format!("the host could not be reached: {e}")))?;
    let status = r.status().as_u16();
    let body = r
        .bytes()
        .await
        .map_err(|e| err(Some(status), format!("the answer could not be read: {e}")))?;
    if (200..300).contains(&status) || status == 404 {
        return Ok((status, body));
    }
    let message = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    Err(err(Some(status), message))
}

fn parse_item(s: &Shared, container: &str, v: &Value) -> Option<InstalledExtension> {
    let meta: BTreeMap<String, String> = v
        .get("meta")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    Some(InstalledExtension {
        container: container.to_owned(),
        name: v.get("name")?.as_str()?.to_owned(),
        point: meta.get(&s.options.type_key).cloned(),
        url: v.get("webtask_url")?.as_str()?.to_owned(),
        enabled: !truthy(meta.get(&s.options.disabled_key)),
        meta,
    })
}

async fn list(
    s: &Shared,
    container: &str,
    point: Option<&str>,
) -> Result<Vec<InstalledExtension>, ManagementError> {
    const OP: &str = "list extensions";
    check_name("container", container).map_err(|m| ManagementError::new(OP, container, None, m))?;
    let mut url = reqwest::Url::parse(&format!("{}/api/webtask/{container}", s.base))
        .map_err(|e| ManagementError::new(OP, container, None, e.to_string()))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("limit", "1000");
        if let Some(p) = point {
            q.append_pair("meta", &format!("{}:{p}", s.options.type_key));
        }
    }
    let req = s.http.get(url);
    let (status, body) = call(s, OP, container, req).await?;
    if status == 404 {
        return Err(no_api(OP, container));
    }
    let items: Vec<Value> = serde_json::from_slice(&body).map_err(|e| {
        ManagementError::new(
            OP,
            container,
            Some(status),
            format!("the answer is not a JSON list: {e}"),
        )
    })?;
    Ok(items
        .iter()
        .filter_map(|v| parse_item(s, container, v))
        .collect())
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
    fn shared(&self) -> &Shared {
        &self.discovery.shared
    }

    /// Issues a tenant token for `container` (`POST /api/tokens/issue {"ten": …}`).
    /// Needs the master token. Store it with the tenant; hand it to that tenant only.
    pub async fn issue_tenant_token(&self, container: &str) -> Result<String, ManagementError> {
        const OP: &str = "issue a tenant token";
        check_name("container", container)
            .map_err(|m| ManagementError::new(OP, container, None, m))?;
        let s = self.shared();
        let req = with_json(
            s.http.post(format!("{}/api/tokens/issue", s.base)),
            &json!({ "ten": container }),
        );
        let (status, body) = call(s, OP, container, req).await?;
        if status == 404 {
            return Err(ManagementError::new(
                OP,
                container,
                Some(404),
                "the host has no token API at this URL",
            ));
        }
        Ok(String::from_utf8_lossy(&body).trim().to_owned())
    }

    /// Installs `code` as the extension `name` for `point` in `container`,
    /// replacing what had that name. A fresh random secret is stored both as
    /// the extension's secret and in its metadata, where discovery reads it.
    pub async fn install(
        &self,
        container: &str,
        point: &str,
        name: &str,
        code: &str,
    ) -> Result<InstalledExtension, ManagementError> {
        const OP: &str = "install an extension";
        check_name("container", container)
            .map_err(|m| ManagementError::new(OP, container, None, m))?;
        check_name("extension", name).map_err(|m| ManagementError::new(OP, container, None, m))?;
        let s = self.shared();
        let secret = random_secret();
        let o = &s.options;
        let body = json!({
            "code": code,
            "secrets": { o.secret_key.as_str(): secret },
            "meta": { o.secret_key.as_str(): secret, o.type_key.as_str(): point },
        });
        let out = self.put(OP, container, name, &body).await;
        self.discovery.invalidate_container(container);
        out
    }

    async fn put(
        &self,
        op: &'static str,
        container: &str,
        name: &str,
        body: &Value,
    ) -> Result<InstalledExtension, ManagementError> {
        let s = self.shared();
        let req = with_json(
            s.http
                .put(format!("{}/api/webtask/{container}/{name}", s.base)),
            body,
        );
        let (status, answer) = call(s, op, container, req).await?;
        if status == 404 {
            return Err(no_api(op, container));
        }
        serde_json::from_slice::<Value>(&answer)
            .ok()
            .and_then(|v| parse_item(s, container, &v))
            .ok_or_else(|| {
                ManagementError::new(op, container, Some(status), "the answer is not a webtask")
            })
    }

    /// The container's extensions, all or only those for `point`.
    pub async fn list(
        &self,
        container: &str,
        point: Option<&str>,
    ) -> Result<Vec<InstalledExtension>, ManagementError> {
        list(self.shared(), container, point).await
    }

    /// One extension, `None` when there is none by that name.
    pub async fn get(
        &self,
        container: &str,
        name: &str,
    ) -> Result<Option<InstalledExtension>, ManagementError> {
        Ok(self
            .fetch("get an extension", container, name, false)
            .await?
            .map(|(x, _)| x))
    }

    async fn fetch(
        &self,
        op: &'static str,
        container: &str,
        name: &str,
        with_code: bool,
    ) -> Result<Option<(InstalledExtension, Value)>, ManagementError> {
        check_name("container", container)
            .map_err(|m| ManagementError::new(op, container, None, m))?;
        check_name("extension", name).map_err(|m| ManagementError::new(op, container, None, m))?;
        let s = self.shared();
        let q = if with_code { "?fetch_code=true" } else { "" };
        let req = s
            .http
            .get(format!("{}/api/webtask/{container}/{name}{q}", s.base));
        let (status, body) = call(s, op, container, req).await?;
        if status == 404 {
            return Ok(None);
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| {
            ManagementError::new(
                op,
                container,
                Some(status),
                format!("the answer is not JSON: {e}"),
            )
        })?;
        let x = parse_item(s, container, &v).ok_or_else(|| {
            ManagementError::new(op, container, Some(status), "the answer is not a webtask")
        })?;
        Ok(Some((x, v)))
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
        let Some((x, raw)) = self.fetch(op, container, name, true).await? else {
            return Err(ManagementError::new(
                op,
                container,
                Some(404),
                format!("there is no extension named `{name}`"),
            ));
        };
        let mut meta = x.meta;
        let key = self.shared().options.disabled_key.clone();
        if enabled {
            meta.remove(&key);
        } else {
            meta.insert(key, "1".to_owned());
        }
        // Secrets are left out of the body: the host keeps the stored ones.
        let body = json!({ "code": raw.get("code").cloned().unwrap_or(Value::String(String::new())), "meta": meta });
        let out = self.put(op, container, name, &body).await;
        self.discovery.invalidate_container(container);
        out
    }

    /// Removes an extension; `false` when there was none by that name.
    pub async fn remove(&self, container: &str, name: &str) -> Result<bool, ManagementError> {
        const OP: &str = "remove an extension";
        check_name("container", container)
            .map_err(|m| ManagementError::new(OP, container, None, m))?;
        check_name("extension", name).map_err(|m| ManagementError::new(OP, container, None, m))?;
        let s = self.shared();
        let req = s
            .http
            .delete(format!("{}/api/webtask/{container}/{name}", s.base));
        let out = call(s, OP, container, req)
            .await
            .map(|(status, _)| status != 404);
        self.discovery.invalidate_container(container);
        out
    }
}

/// The answer when the URL is not a webtask host's management API.
fn no_api(op: &'static str, container: &str) -> ManagementError {
    ManagementError::new(
        op,
        container,
        Some(404),
        "the host has no webtask management API at this URL",
    )
}

/// A JSON request body (reqwest's `json` feature is not compiled in).
fn with_json(request: reqwest::RequestBuilder, body: &Value) -> reqwest::RequestBuilder {
    request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
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
    fn names_are_checked_like_the_host_does() {
        assert!(check_name("container", "acme-1.x_y~z").is_ok());
        for bad in ["", "a/b", "a b", "..", &"x".repeat(65)] {
            assert!(
                check_name("container", bad)
                    .unwrap_err()
                    .contains("invalid container name")
            );
        }
    }

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
