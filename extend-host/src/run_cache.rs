//! The run cache: decrypted webtasks ready to run, by container then name, so
//! that a run neither reads the store nor decrypts.
//!
//! A load that misses reads the generation first and inserts only if no
//! write happened meanwhile; writers bump the generation *after* the store
//! write. A load that read the old row therefore either inserts before the
//! writer updates the cache (and is overwritten) or sees the new generation
//! and inserts nothing: a stale webtask never outlives a write.

use crate::sandbox::Webtask;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

type Map = HashMap<String, HashMap<String, Arc<Webtask>>>;

#[derive(Default)]
pub(crate) struct RunCache {
    // The generation lives under the same lock as the map, so checking it and
    // inserting are one step.
    inner: RwLock<(Map, u64)>,
}

impl RunCache {
    pub(crate) fn get(&self, container: &str, name: &str) -> Option<Arc<Webtask>> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        inner.0.get(container)?.get(name).cloned()
    }

    /// The generation to pass to [`RunCache::insert_if_unchanged`] after a load.
    pub(crate) fn generation(&self) -> u64 {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).1
    }

    /// Caches what a load read, unless a write happened since `generation`.
    pub(crate) fn insert_if_unchanged(&self, generation: u64, w: &Arc<Webtask>) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if inner.1 == generation {
            insert(&mut inner.0, w);
        }
    }

    /// After a store write of `w`: it is what runs from now on.
    pub(crate) fn written(&self, w: &Arc<Webtask>) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.1 += 1;
        insert(&mut inner.0, w);
    }

    /// After a store delete, or a change announced by another host.
    pub(crate) fn forget(&self, container: &str, name: &str) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.1 += 1;
        if let Some(c) = inner.0.get_mut(container) {
            c.remove(name);
            if c.is_empty() {
                inner.0.remove(container);
            }
        }
    }

    /// Forgets everything (the change feed may have missed changes).
    pub(crate) fn clear(&self) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.1 += 1;
        inner.0.clear();
    }
}

fn insert(map: &mut Map, w: &Arc<Webtask>) {
    map.entry(w.container.clone())
        .or_default()
        .insert(w.name.clone(), Arc::clone(w));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webtask(code: &str) -> Arc<Webtask> {
        Arc::new(Webtask {
            container: "c".into(),
            name: "n".into(),
            code: code.into(),
            secrets_json: "{}".into(),
            meta_json: "{}".into(),
            extension_secret: None,
        })
    }

    #[test]
    fn a_load_that_raced_a_write_is_not_cached() {
        let cache = RunCache::default();
        // A run misses and starts loading the old row...
        let seen = cache.generation();
        // ...a PUT commits the new row and updates the cache...
        cache.written(&webtask("new"));
        // ...then the run's load finishes: it must not put the old row back.
        cache.insert_if_unchanged(seen, &webtask("old"));
        assert_eq!(&*cache.get("c", "n").unwrap().code, "new");

        let seen = cache.generation();
        cache.forget("c", "n");
        cache.insert_if_unchanged(seen, &webtask("deleted"));
        assert!(cache.get("c", "n").is_none());

        let seen = cache.generation();
        cache.insert_if_unchanged(seen, &webtask("loaded"));
        assert_eq!(&*cache.get("c", "n").unwrap().code, "loaded");
    }
}
