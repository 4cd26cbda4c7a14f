//! Who may call: token verification against the host's keys and the set of
//! revoked token ids.

use crate::crypto::Keys;
use crate::error::ApiError;
use crate::query::Query;
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
    /// Bumped at each revocation, for streams that must end with their token.
    revocations: tokio::sync::watch::Sender<u64>,
}

impl Auth {
    pub(crate) fn new(keys: Arc<Keys>, master_jti: String, revoked: Vec<String>) -> Self {
        Auth {
            keys,
            master_jti,
            revoked: RwLock::new(revoked.into_iter().collect()),
            revocations: tokio::sync::watch::Sender::new(0),
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
        if self.is_revoked(&claims) {
            return Err(ApiError::forbidden("token is revoked"));
        }
        Ok(claims)
    }

    /// Whether the token or any token it was issued from is revoked.
    fn is_revoked(&self, claims: &Claims) -> bool {
        let revoked = self.revoked.read().unwrap_or_else(PoisonError::into_inner);
        revoked.contains(&claims.jti) || claims.ca.iter().any(|j| revoked.contains(j))
    }

    /// Resolves when `claims` stop being valid: revoked (it or an ancestor,
    /// on this host or another) or expired. Never, for a token that does
    /// neither. Long-lived streams end with it.
    pub(crate) async fn until_invalid(&self, claims: &Claims) {
        let mut revocations = self.revocations.subscribe();
        let expiry = async {
            match claims.exp {
                Some(exp) => {
                    let left = exp.saturating_sub(crate::time::unix_now());
                    tokio::time::sleep(std::time::Duration::from_secs(left)).await;
                }
                None => std::future::pending().await,
            }
        };
        let mut expiry = std::pin::pin!(expiry);
        loop {
            if self.is_revoked(claims) {
                return;
            }
            tokio::select! {
                () = &mut expiry => return,
                changed = revocations.changed() => {
                    if changed.is_err() {
                        // The host is going away; its streams end with it.
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
    }

    pub(crate) fn sign(&self, claims: &Claims) -> String {
        token::encode(&self.keys, claims)
    }

    /// The webtask token of `container`/`name`, issued from the caller's:
    /// what clients get back from a write. It names its issuer in `ca` (so
    /// revoking the caller revokes it), may not delegate (`dd: 0`), may run
    /// the webtask once per request (`dr: 1`) and expires with the caller.
    pub(crate) fn webtask_token(&self, caller: &Claims, container: &str, name: &str) -> String {
        let mut ca = caller.ca.clone();
        ca.push(caller.jti.clone());
        self.sign(&Claims {
            jti: crate::crypto::random_hex::<16>(),
            iat: crate::time::unix_now(),
            ca,
            ten: Some(container.to_owned()),
            jtn: Some(name.to_owned()),
            dd: Some(0),
            dr: Some(1),
            exp: caller.exp,
            ..Claims::default()
        })
    }

    pub(crate) fn is_master(&self, claims: &Claims) -> bool {
        claims.jti == self.master_jti
    }

    /// Replaces the revoked set with the store's (after changes were missed).
    pub(crate) fn reload_revoked(&self, revoked: Vec<String>) {
        *self.revoked.write().unwrap_or_else(PoisonError::into_inner) =
            revoked.into_iter().collect();
        self.revocations.send_modify(|n| *n += 1);
    }

    /// Refuses `jti` from now on (after the store has recorded it).
    pub(crate) fn revoked(&self, jti: String) {
        self.revoked
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(jti);
        self.revocations.send_modify(|n| *n += 1);
    }
}
