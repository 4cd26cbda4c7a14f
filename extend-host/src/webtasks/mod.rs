//! Webtasks as the host keeps them: stored with their secrets sealed, and
//! decrypted into the run cache for runs.

use crate::config::Limits;
use crate::crypto::Keys;
use crate::error::ApiError;
use crate::languages::Languages;
use crate::run_cache::{Cached, RunCache};
use crate::sandbox::Webtask;
use crate::store::{Change, Deployment, Quota, Store, StoreError, StoredWebtask};
use std::collections::BTreeMap;
use std::sync::Arc;

mod reads;

/// The store, the sealing key and the run cache, kept consistent.
pub(crate) struct Webtasks {
    store: Arc<dyn Store>,
    keys: Arc<Keys>,
    cache: RunCache,
    /// Serialises this host's writes, so that the cache ends with the last
    /// write's webtask.
    writes: tokio::sync::Mutex<()>,
    limits: Limits,
    /// The published catalog, as this host serves it.
    catalog: crate::catalog::CatalogCache,
}

/// A new or replaced webtask, before it is stored.
pub(crate) struct NewWebtask<'a> {
    pub(crate) container: &'a str,
    pub(crate) name: &'a str,
    pub(crate) code: String,
    pub(crate) secrets: &'a BTreeMap<String, String>,
    pub(crate) meta: BTreeMap<String, String>,
    pub(crate) token: String,
    /// The writer's token id, for the version history.
    pub(crate) by: &'a str,
}

/// A draft, before it is stored.
pub(crate) struct NewDraft<'a> {
    pub(crate) container: &'a str,
    pub(crate) name: &'a str,
    pub(crate) code: String,
    pub(crate) meta: BTreeMap<String, String>,
    /// The draft's own secrets, or `None` to run with the live webtask's.
    pub(crate) secrets: Option<&'a BTreeMap<String, String>>,
    /// The saver's token id.
    pub(crate) by: &'a str,
}

impl Webtasks {
    pub(crate) fn new(store: Arc<dyn Store>, keys: Arc<Keys>, limits: Limits) -> Self {
        Webtasks {
            store,
            keys,
            cache: RunCache::default(),
            writes: tokio::sync::Mutex::new(()),
            limits,
            catalog: crate::catalog::CatalogCache::default(),
        }
    }

    /// The sealing keys (recorded inputs are sealed like secrets).
    pub(crate) fn keys(&self) -> Arc<Keys> {
        Arc::clone(&self.keys)
    }

    /// Opens bytes sealed with [`Webtasks::keys`]; `None` when they do not open.
    pub(crate) fn open_bytes(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        self.keys.open(sealed)
    }

    /// Seals a string map (secrets) as JSON.
    pub(crate) fn seal(&self, map: &BTreeMap<String, String>) -> Vec<u8> {
        self.keys.seal(&string_map_json(map).into_bytes())
    }

    /// Opens what [`Webtasks::seal`] sealed; `None` when it does not open.
    pub(crate) fn open(&self, sealed: &[u8]) -> Option<BTreeMap<String, String>> {
        serde_json::from_slice(&self.keys.open(sealed)?).ok()
    }

    /// Checks what every write of a webtask's content must satisfy, live
    /// or draft, whichever way it arrives (PUT, `POST /api/tokens/issue`
    /// with `jtn`, a draft, its deploy, a rollback, a rename): the code and
    /// metadata sizes, no NUL character (neither store takes one in text,
    /// and no source or metadata needs it), and secret names that are not
    /// empty.
    pub(crate) fn check_content(
        &self,
        code: &str,
        meta: &BTreeMap<String, String>,
        secrets: Option<&BTreeMap<String, String>>,
    ) -> Result<(), ApiError> {
        let limits = &self.limits;
        if code.len() > limits.code_size {
            return Err(ApiError::bad_request(format!(
                "the code is {} bytes; the limit is {} bytes",
                code.len(),
                limits.code_size
            )));
        }
        if code.contains('\0') {
            return Err(ApiError::bad_request(
                "the code contains a NUL character (\\u0000)",
            ));
        }
        if meta
            .iter()
            .any(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(ApiError::bad_request(
                "the metadata contains a NUL character (\\u0000)",
            ));
        }
        let meta_bytes: usize = meta.iter().map(|(k, v)| k.len() + v.len()).sum();
        if meta_bytes > limits.meta_size {
            return Err(ApiError::bad_request(format!(
                "the metadata is {meta_bytes} bytes; the limit is {} bytes",
                limits.meta_size
            )));
        }
        if let Some(secrets) = secrets
            && secrets.keys().any(|k| k.is_empty() || k.contains('\0'))
        {
            return Err(ApiError::bad_request(
                "a secret name is empty or contains a NUL character (\\u0000)",
            ));
        }
        Ok(())
    }

    /// Creates or replaces a webtask, sealing its secrets; returns it as
    /// stored and as it will run. Checked by [`Webtasks::check_content`],
    /// its point against the published catalog, and its container's quota.
    pub(crate) async fn save(
        &self,
        w: NewWebtask<'_>,
    ) -> Result<(StoredWebtask, Arc<Webtask>), ApiError> {
        let limits = &self.limits;
        self.check_content(&w.code, &w.meta, Some(w.secrets))?;
        // An extension of a point never goes live open to anyone: without a
        // run secret it gets one, which discovery reads like any other (an
        // editor's save that lost the secret deployed an open extension).
        let with_run_secret;
        let secrets = if w.meta.contains_key(EXTENSION_TYPE) && !w.secrets.contains_key(RUN_SECRET)
        {
            let mut s = w.secrets.clone();
            s.insert(RUN_SECRET.to_owned(), crate::crypto::random_hex::<32>());
            with_run_secret = s;
            &with_run_secret
        } else {
            w.secrets
        };
        let record = StoredWebtask::new(
            w.container.to_owned(),
            w.name.to_owned(),
            w.code,
            self.seal(secrets),
            w.meta,
            w.token,
        )
        .deployed_by(Deployment::new(
            w.by.to_owned(),
            secrets.keys().cloned().collect(),
        ));
        if let Some(point) = record.meta.get(EXTENSION_TYPE) {
            self.check_point(point).await?;
        }
        let languages = self.languages().await?;
        languages
            .of_webtask(&record.meta)
            .map_err(ApiError::bad_request)?;
        let quota = Quota::new(
            limits.webtasks_per_container as u64,
            limits.code_per_container as u64,
        )
        .with_history(limits.history_per_container as u64);
        // Under the write lock, so that this host's concurrent creates
        // cannot both pass the quota; the store keeps other hosts' out.
        let _write = self.writes.lock().await;
        let saved = self
            .store
            .put_within(record, quota)
            .await
            .map_err(|e| match e {
                StoreError::OverQuota(m) => ApiError::forbidden(m),
                e => e.into(),
            })?;
        let runnable = Arc::new(runnable(&saved, secrets, &languages));
        self.cache.written(&runnable, saved.change_id);
        Ok((saved, runnable))
    }

    /// Once a catalog is published, an extension must be for one of its points.
    pub(crate) async fn check_point(&self, point: &str) -> Result<(), ApiError> {
        let Some(current) = self.store.catalogs().await?.into_iter().next() else {
            return Ok(());
        };
        let document: serde_json::Value = serde_json::from_str(&current.document)
            .map_err(|e| ApiError::internal(format!("the published catalog is unreadable: {e}")))?;
        let names = crate::catalog::point_names(&document).map_err(ApiError::internal)?;
        if names.iter().any(|n| n == point) {
            return Ok(());
        }
        let known = if names.is_empty() {
            "the published catalog has no points".to_owned()
        } else {
            format!(
                "the published points are {}",
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        Err(ApiError::bad_request(format!(
            "`{EXTENSION_TYPE}` is `{point}`, which names no extension point of the published catalog (version {}); {known}",
            current.version
        )))
    }

    /// Saves a draft, checked as [`Webtasks::save`] checks a live write;
    /// `secrets` (when the draft pins its own) are sealed here.
    pub(crate) async fn save_draft(
        &self,
        draft: NewDraft<'_>,
    ) -> Result<crate::store::Draft, ApiError> {
        self.check_content(&draft.code, &draft.meta, draft.secrets)?;
        if let Some(point) = draft.meta.get(EXTENSION_TYPE) {
            self.check_point(point).await?;
        }
        self.languages()
            .await?
            .of_webtask(&draft.meta)
            .map_err(ApiError::bad_request)?;
        // Under the write lock, so that this host's concurrent saves cannot
        // both pass the quota (another host's may: drafts are a tenant's
        // work in progress, and the excess is bounded by the node count).
        let _write = self.writes.lock().await;
        let (usage, old) = self.store.draft_usage(draft.container, draft.name).await?;
        let count = usage.webtasks + u64::from(old.is_none());
        if count > self.limits.drafts_per_container as u64 {
            return Err(ApiError::forbidden(format!(
                "container `{}` already has {} drafts, its limit (drafts_per_container); deploy or delete one",
                draft.container, usage.webtasks
            )));
        }
        let bytes = usage.code_bytes.saturating_sub(old.unwrap_or(0)) + draft.code.len() as u64;
        if bytes > self.limits.draft_code_per_container as u64 {
            return Err(ApiError::forbidden(format!(
                "container `{}` would hold {bytes} bytes of draft code; its limit (draft_code_per_container) is {} bytes",
                draft.container, self.limits.draft_code_per_container
            )));
        }
        let sealed = draft.secrets.map(|s| self.seal(s));
        Ok(self
            .store
            .put_draft(crate::store::Draft::new(
                draft.container.to_owned(),
                draft.name.to_owned(),
                draft.code,
                draft.meta,
                sealed,
                draft.by.to_owned(),
            ))
            .await?)
    }

    /// Renames webtask `from` to `renamed.name` in one store step (see
    /// [`Store::rename`]): 409 when the new name is taken or `from` went
    /// meanwhile. Returns the webtask under its new name, stored and as it
    /// will run.
    pub(crate) async fn rename(
        &self,
        from: &str,
        renamed: StoredWebtask,
    ) -> Result<(StoredWebtask, Arc<Webtask>), ApiError> {
        let _write = self.writes.lock().await;
        let container = renamed.container.clone();
        let saved = self.store.rename(from, renamed).await?;
        let languages = self.languages().await?;
        let runnable = Arc::new(runnable(&saved, &self.unseal(&saved)?, &languages));
        self.cache.forget(&container, from);
        self.cache.written(&runnable, saved.change_id);
        Ok((saved, runnable))
    }

    /// Deletes a webtask; `false` when there was none.
    pub(crate) async fn delete(&self, container: &str, name: &str) -> Result<bool, ApiError> {
        let _write = self.writes.lock().await;
        let deleted = self.store.delete(container, name).await?;
        self.cache.forget(container, name);
        Ok(deleted)
    }

    /// The live webtask's secrets, opened; none when it does not exist
    /// (yet): what a write that leaves secrets out keeps.
    pub(crate) async fn live_secrets(
        &self,
        container: &str,
        name: &str,
    ) -> Result<BTreeMap<String, String>, ApiError> {
        match self.store.get(container, name).await? {
            Some(live) => self.unseal(&live),
            None => Ok(BTreeMap::new()),
        }
    }

    /// The stored secrets of a webtask.
    pub(crate) fn unseal(&self, w: &StoredWebtask) -> Result<BTreeMap<String, String>, ApiError> {
        self.open(&w.sealed_secrets).ok_or_else(|| {
            ApiError::internal(format!(
                "error decrypting the secrets of webtask `{}/{}`",
                w.container, w.name
            ))
        })
    }

    /// A webtask ready to run, from the cache or the store.
    pub(crate) async fn runnable(
        &self,
        container: &str,
        name: &str,
    ) -> Result<Option<Arc<Webtask>>, ApiError> {
        match self.cache.get(container, name) {
            Cached::Runnable(w) => return Ok(Some(w)),
            Cached::Missing => return Ok(None),
            Cached::Unknown => {}
        }
        let generation = self.cache.generation();
        let Some(stored) = self.store.get(container, name).await? else {
            self.cache.missing_if_unchanged(generation, container, name);
            return Ok(None);
        };
        let languages = self.languages().await?;
        let w = Arc::new(runnable(&stored, &self.unseal(&stored)?, &languages));
        // A webtask whose language this host's catalog (read up to a second
        // ago) lacks runs as a compile error, and is read again next time
        // rather than cached that way: the catalog may be just published.
        if languages.of_webtask(&stored.meta).is_ok() {
            self.cache.insert_if_unchanged(generation, &w);
        }
        Ok(Some(w))
    }

    /// What the published catalog says of languages (read at most once a
    /// second, as the catalog is served).
    pub(crate) async fn languages(&self) -> Result<Arc<Languages>, ApiError> {
        Ok(Arc::clone(&self.published_catalog().await?.languages))
    }

    /// Follows a change committed to the store (by this host or another).
    pub(crate) fn changed(&self, change: &Change) {
        match change {
            Change::Webtask(w) => self.cache.changed(&w.container, &w.name, w.id),
            Change::Missed => self.cache.clear(),
            _ => {}
        }
    }
}

pub(crate) use extend_wire::meta::RUN_SECRET;

pub(crate) use extend_wire::meta::EXTENSION_TYPE;

fn string_map_json(map: &BTreeMap<String, String>) -> String {
    // A map of strings always serializes.
    serde_json::to_string(map).unwrap_or_else(|_| "{}".to_owned())
}

/// The run view of a draft: named `{name}#draft` (no webtask name has a
/// `#`), so that its compiled code and log records are told apart from the
/// live webtask's.
pub(crate) fn draft_runnable(
    draft: &crate::store::Draft,
    secrets: &BTreeMap<String, String>,
    languages: &Languages,
) -> Webtask {
    let code = code_to_run(&draft.code, &draft.meta, languages);
    Webtask {
        container: draft.container.clone(),
        name: format!("{}#draft", draft.name),
        code_id: crate::sandbox::code_id(&code),
        code: code.into(),
        secrets_json: string_map_json(secrets),
        meta_json: string_map_json(&draft.meta),
        extension_secret: None,
        point: draft.meta.get(EXTENSION_TYPE).cloned(),
    }
}

/// The run view of a stored webtask.
fn runnable(
    stored: &StoredWebtask,
    secrets: &BTreeMap<String, String>,
    languages: &Languages,
) -> Webtask {
    let code = code_to_run(&stored.code, &stored.meta, languages);
    Webtask {
        container: stored.container.clone(),
        name: stored.name.clone(),
        code_id: crate::sandbox::code_id(&code),
        code: code.into(),
        secrets_json: string_map_json(secrets),
        meta_json: string_map_json(&stored.meta),
        extension_secret: secrets.get(RUN_SECRET).cloned(),
        point: stored.meta.get(EXTENSION_TYPE).cloned(),
    }
}

/// The JavaScript that runs a webtask's `code`: the code itself, or, for a
/// webtask in one of the platform's languages, a module that compiles it
/// (see [`crate::languages`]); one whose language is gone from the catalog
/// fails to compile, saying why.
fn code_to_run(code: &str, meta: &BTreeMap<String, String>, languages: &Languages) -> String {
    match languages.of_webtask(meta) {
        Ok(None) => code.to_owned(),
        Ok(Some(l)) => {
            crate::languages::module(l.language, l.compiler, code, &string_map_json(meta))
        }
        Err(why) => crate::languages::refused(&why),
    }
}
