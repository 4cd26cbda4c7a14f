//! [`WebtaskApi`]: a typed client of the Webtask management API, with the wire
//! shapes of its requests and answers. Discovery and management both go
//! through it.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use reqwest::RequestBuilder;
use serde::{Deserialize, Serialize};

use super::error::{ManagementError, ManagementErrorKind as Kind};
use crate::invoke::error_chain;

/// A webtask as the management API answers it (list items, get, put).
#[derive(Debug, Deserialize)]
pub(crate) struct WireWebtask {
    pub(crate) name: String,
    pub(crate) webtask_url: String,
    #[serde(default)]
    pub(crate) meta: BTreeMap<String, String>,
    /// Only with `?fetch_code=true`.
    #[serde(default)]
    pub(crate) code: Option<String>,
    /// Only with `?decrypt=true`: the decrypted secrets.
    #[serde(default)]
    pub(crate) secrets: Option<BTreeMap<String, String>>,
}

/// The body of `PUT /api/webtask/{container}/{name}`.
#[derive(Debug, Serialize)]
pub(crate) struct PutWebtask<'a> {
    pub(crate) code: &'a str,
    /// Omitted: the host keeps the stored secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) secrets: Option<BTreeMap<&'a str, &'a str>>,
    pub(crate) meta: &'a BTreeMap<String, String>,
}

/// The error body of the management API, `{code, message}`.
#[derive(Deserialize)]
struct WireError {
    message: String,
}

/// The management API of one host, called with one token.
pub(crate) struct WebtaskApi {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl fmt::Debug for WebtaskApi {
    /// Never prints the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebtaskApi")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Checks a container or webtask name the way the host does, so that a bad
/// name is refused here with a clear message instead of becoming a bad URL.
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), String> {
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

impl WebtaskApi {
    /// A client of the host at `base`, which must be an absolute http(s) URL.
    pub(crate) fn new(http: reqwest::Client, base: &str, token: String) -> Result<Self, String> {
        let url = reqwest::Url::parse(base).map_err(|e| format!("`{base}` is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("`{base}` is not an http or https URL"));
        }
        Ok(WebtaskApi {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// Sends `request` with the token: the body of a 2xx answer, `None` for 404,
    /// and the host's `{message}` as the error otherwise.
    async fn send(
        &self,
        op: &'static str,
        container: &str,
        request: RequestBuilder,
    ) -> Result<Option<Bytes>, ManagementError> {
        let r = request.bearer_auth(&self.token).send().await.map_err(|e| {
            ManagementError::new(
                op,
                container,
                Kind::HostUnavailable,
                None,
                format!("the host could not be reached: {}", error_chain(&e)),
            )
            .with_source(e)
        })?;
        let status = r.status().as_u16();
        let body = r.bytes().await.map_err(|e| {
            ManagementError::new(
                op,
                container,
                Kind::HostUnavailable,
                Some(status),
                format!("the answer could not be read: {}", error_chain(&e)),
            )
            .with_source(e)
        })?;
        match status {
            200..=299 => Ok(Some(body)),
            404 => Ok(None),
            _ => {
                let message = serde_json::from_slice::<WireError>(&body)
                    .map(|e| e.message)
                    .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
                Err(ManagementError::new(
                    op,
                    container,
                    Kind::of_status(status),
                    Some(status),
                    message,
                ))
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `PUT /api/catalog` with `document`; the host's answer.
    pub(crate) async fn put_catalog(
        &self,
        op: &'static str,
        document: &extend_wire::catalog::Document,
    ) -> Result<Bytes, ManagementError> {
        let request = json(self.http.put(self.url("/api/catalog")), document);
        self.send(op, "", request).await?.ok_or_else(|| {
            ManagementError::new(
                op,
                "",
                Kind::NotFound,
                Some(404),
                "the host has no catalog API",
            )
        })
    }

    /// `GET /api/catalog/usage?point=…`: the installed extensions of `points`.
    pub(crate) async fn catalog_usage(
        &self,
        op: &'static str,
        points: &[String],
    ) -> Result<Bytes, ManagementError> {
        let query: String = form_urlencoded_points(points);
        self.send(
            op,
            "",
            self.http
                .get(self.url(&format!("/api/catalog/usage?{query}"))),
        )
        .await?
        .ok_or_else(|| {
            ManagementError::new(
                op,
                "",
                Kind::NotFound,
                Some(404),
                "the host has no catalog API",
            )
        })
    }

    /// `GET /api/catalog`: `None` before the first publish.
    pub(crate) async fn get_catalog(
        &self,
        op: &'static str,
    ) -> Result<Option<Bytes>, ManagementError> {
        self.send(op, "", self.http.get(self.url("/api/catalog")))
            .await
    }

    /// Opens `GET /api/changes` (every container's changes, so the token
    /// must be the master token), resuming after `last_event_id`.
    pub(crate) async fn open_changes(
        &self,
        last_event_id: Option<&str>,
    ) -> Result<reqwest::Response, String> {
        let mut request = self
            .http
            .get(self.url("/api/changes"))
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let r = request
            .send()
            .await
            .map_err(|e| format!("the host could not be reached: {}", error_chain(&e)))?;
        if r.status().is_success() {
            return Ok(r);
        }
        let status = r.status().as_u16();
        let body = r.bytes().await.unwrap_or_default();
        let message = serde_json::from_slice::<WireError>(&body)
            .map(|e| e.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
        Err(format!("GET /api/changes answered {status}: {message}"))
    }

    /// The container's webtasks, those whose meta has `key:value` when given;
    /// with their decrypted secrets when `decrypt`.
    pub(crate) async fn list(
        &self,
        op: &'static str,
        container: &str,
        meta: Option<(&str, &str)>,
        decrypt: bool,
    ) -> Result<Vec<WireWebtask>, ManagementError> {
        checked(op, container, None)?;
        let mut url = reqwest::Url::parse(&self.url(&format!("/api/webtask/{container}")))
            .map_err(|e| {
                ManagementError::new(op, container, Kind::BadInput, None, e.to_string())
            })?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("limit", "1000");
            if let Some((key, value)) = meta {
                q.append_pair("meta", &format!("{key}:{value}"));
            }
            if decrypt {
                q.append_pair("decrypt", "true");
            }
        }
        let body = self
            .send(op, container, self.http.get(url))
            .await?
            .ok_or_else(|| no_api(op, container))?;
        let items: Vec<serde_json::Value> = serde_json::from_slice(&body)
            .map_err(|e| invalid(op, container, "the answer is not a JSON list", e))?;
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let label = match item.get("name").and_then(serde_json::Value::as_str) {
                    Some(name) => format!("list item {i} (`{name}`) is not a webtask"),
                    None => format!("list item {i} is not a webtask"),
                };
                WireWebtask::deserialize(item).map_err(|e| invalid(op, container, &label, e))
            })
            .collect()
    }

    /// One webtask, `None` when there is none by that name.
    pub(crate) async fn get(
        &self,
        op: &'static str,
        container: &str,
        name: &str,
        with_code: bool,
    ) -> Result<Option<WireWebtask>, ManagementError> {
        checked(op, container, Some(name))?;
        let q = if with_code { "?fetch_code=true" } else { "" };
        let request = self
            .http
            .get(self.url(&format!("/api/webtask/{container}/{name}{q}")));
        match self.send(op, container, request).await? {
            None => Ok(None),
            Some(body) => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| invalid(op, container, "the answer is not a webtask", e)),
        }
    }

    /// Creates or replaces a webtask.
    pub(crate) async fn put(
        &self,
        op: &'static str,
        container: &str,
        name: &str,
        webtask: &PutWebtask<'_>,
    ) -> Result<WireWebtask, ManagementError> {
        checked(op, container, Some(name))?;
        let request = json(
            self.http
                .put(self.url(&format!("/api/webtask/{container}/{name}"))),
            webtask,
        );
        let body = self
            .send(op, container, request)
            .await?
            .ok_or_else(|| no_api(op, container))?;
        serde_json::from_slice(&body)
            .map_err(|e| invalid(op, container, "the answer is not a webtask", e))
    }

    /// Deletes a webtask; `false` when there was none by that name.
    pub(crate) async fn delete(
        &self,
        op: &'static str,
        container: &str,
        name: &str,
    ) -> Result<bool, ManagementError> {
        checked(op, container, Some(name))?;
        let request = self
            .http
            .delete(self.url(&format!("/api/webtask/{container}/{name}")));
        Ok(self.send(op, container, request).await?.is_some())
    }

    /// Issues a token limited to `container` (`POST /api/tokens/issue {"ten": …}`).
    pub(crate) async fn issue_tenant_token(
        &self,
        op: &'static str,
        container: &str,
    ) -> Result<String, ManagementError> {
        #[derive(Serialize)]
        struct Issue<'a> {
            ten: &'a str,
        }
        checked(op, container, None)?;
        let request = json(
            self.http.post(self.url("/api/tokens/issue")),
            &Issue { ten: container },
        );
        let body = self.send(op, container, request).await?.ok_or_else(|| {
            ManagementError::new(
                op,
                container,
                Kind::NotFound,
                Some(404),
                "the host has no token API at this URL",
            )
        })?;
        Ok(String::from_utf8_lossy(&body).trim().to_owned())
    }
}

/// Checks the names a call is about before they go into a URL.
fn checked(op: &'static str, container: &str, name: Option<&str>) -> Result<(), ManagementError> {
    check_name("container", container)
        .and_then(|()| name.map_or(Ok(()), |n| check_name("extension", n)))
        .map_err(|m| ManagementError::new(op, container, Kind::BadInput, None, m))
}

fn invalid(op: &'static str, container: &str, what: &str, e: serde_json::Error) -> ManagementError {
    ManagementError::new(
        op,
        container,
        Kind::InvalidAnswer,
        None,
        format!("{what}: {e}"),
    )
    .with_source(e)
}

/// The answer when the URL is not a webtask host's management API.
fn no_api(op: &'static str, container: &str) -> ManagementError {
    ManagementError::new(
        op,
        container,
        Kind::NotFound,
        Some(404),
        "the host has no webtask management API at this URL",
    )
}

/// A JSON request body (reqwest's `json` feature is not compiled in).
/// `point=a&point=b`, each value percent-encoded.
fn form_urlencoded_points(points: &[String]) -> String {
    points
        .iter()
        .map(|p| {
            let encoded: String = p
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("point={encoded}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn json(request: RequestBuilder, body: &impl Serialize) -> RequestBuilder {
    request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        // Serializing these plain structs of strings cannot fail.
        .body(serde_json::to_vec(body).unwrap_or_default())
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
    fn statuses_map_to_kinds() {
        for (status, kind) in [
            (401, Kind::Refused),
            (403, Kind::Refused),
            (404, Kind::NotFound),
            (400, Kind::BadInput),
            (413, Kind::BadInput),
            (429, Kind::HostUnavailable),
            (503, Kind::HostUnavailable),
            (302, Kind::InvalidAnswer),
        ] {
            assert_eq!(Kind::of_status(status), kind, "{status}");
        }
    }
}
