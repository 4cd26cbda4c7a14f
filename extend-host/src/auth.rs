//! Who may call: token verification against the host's keys and the set of
//! revoked token ids.

use crate::api::Query;
use crate::crypto::Keys;
use crate::error::ApiError;
use crate::token::{self, Claims};
use axum::http::{HeaderMap, header};
use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock};

/// Token checks of one host.
pub(crate) struct Auth {
    keys: Arc<Keys>,
    master_jti: String,
    /// Revoked token ids: loaded from the store at start, then kept current by
    /// this host's revocations and the store's change feed.
    revoked: RwLock<HashSet<String>>,
}

impl Auth {
    pub(crate) fn new(keys: Arc<Keys>, master_jti: String, revoked: Vec<String>) -> Self {
        Auth {
            keys,
            master_jti,
            revoked: RwLock::new(revoked.into_iter().collect()),
        }
    }

    /// The caller's verified, unrevoked claims, from `Authorization: Bearer` or `?key=`.
    pub(crate) fn authenticate(
        &self,
        headers: &HeaderMap,
        query: &Query,
    ) -> Result<Claims, ApiError> {
        let token = match headers.get(header::AUTHORIZATION) {
            Some(h) => {
                let h = h.to_str().unwrap_or("");
                match h.split_once(' ') {
                    Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
                    _ => {
                        return Err(ApiError::forbidden(
                            "rejecting request with unexpected Authorization header",
                        ));
                    }
                }
            }
            None => query.get("key").ok_or_else(|| {
                ApiError::forbidden(
                    "rejecting request without Authorization header or key URL query parameter",
                )
            })?,
        };
        self.verify(token)
    }

    /// Checks a token: signature, validity window and revocation of it or any ancestor.
    pub(crate) fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let claims = token::decode(&self.keys, token, crate::time::unix_now())?;
        let revoked = self.revoked.read().unwrap_or_else(PoisonError::into_inner);
        if revoked.contains(&claims.jti) || claims.ca.iter().any(|j| revoked.contains(j)) {
            return Err(ApiError::forbidden("token is revoked"));
        }
        Ok(claims)
    }

    pub(crate) fn sign(&self, claims: &Claims) -> String {
        token::encode(&self.keys, claims)
    }

    pub(crate) fn is_master(&self, claims: &Claims) -> bool {
        claims.jti == self.master_jti
    }

    /// Replaces the revoked set with the store's (after changes were missed).
    pub(crate) fn reload_revoked(&self, revoked: Vec<String>) {
        *self.revoked.write().unwrap_or_else(PoisonError::into_inner) =
            revoked.into_iter().collect();
    }

    /// Refuses `jti` from now on (after the store has recorded it).
    pub(crate) fn revoked(&self, jti: String) {
        self.revoked
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(jti);
    }
}
