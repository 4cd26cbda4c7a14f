//! The claims of the tokens this host issues, and what they allow.

use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The claims of a token this host issued.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct Claims {
    pub(crate) jti: String,
    pub(crate) iat: u64,
    /// Issuance chain: the `jti`s of every ancestor, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) ca: Vec<String>,
    /// Containers this token may touch (comma list); absent = all (master).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ten: Option<String>,
    /// The named webtask this token stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) jtn: Option<String>,
    /// Delegation depth left; absent = unlimited (master).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dd: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dr: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) exp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pctx: Option<Map<String, Value>>,
    /// Secrets of an unnamed token, sealed with the host key (base64). Named
    /// webtasks keep their secrets in storage instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ectx: Option<String>,
    /// Rate-limit claims (`ls`..`lto`): accepted and carried, not enforced.
    #[serde(flatten)]
    pub(crate) limits: BTreeMap<String, u64>,
}

impl Claims {
    /// The containers this token is limited to; `None` = every container.
    pub(crate) fn containers(&self) -> Option<Vec<&str>> {
        self.ten
            .as_deref()
            .map(|t| t.split(',').map(str::trim).collect())
    }

    pub(crate) fn covers(&self, container: &str) -> bool {
        self.containers()
            .is_none_or(|list| list.contains(&container))
    }

    /// Refuses with 403 unless this token may manage `container`.
    pub(crate) fn authorize(&self, container: &str) -> Result<(), ApiError> {
        if self.jtn.is_some() {
            return Err(ApiError::forbidden(
                "a webtask token (one with a `jtn` claim) cannot call the management API; use a tenant or master token",
            ));
        }
        if !self.covers(container) {
            return Err(ApiError::forbidden(format!(
                "not authorized to perform operation on tenant `{container}`"
            )));
        }
        Ok(())
    }
}
