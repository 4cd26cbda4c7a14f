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

/// The default budget of [`RunCache`], in bytes of code, secrets and meta.
pub(crate) const DEFAULT_BUDGET: usize = 64 << 20;

struct Inner {
    map: Map,
    // The generation lives under the same lock as the map, so checking it and
    // inserting are one step.
    generation: u64,
    bytes: usize,
}

/// Decrypted webtasks, within a byte budget: past it, whole containers are
/// dropped (a later run reads the store and decrypts again).
pub(crate) struct RunCache {
    inner: RwLock<Inner>,
    budget: usize,
}

impl Default for RunCache {
    fn default() -> Self {
        RunCache::new(DEFAULT_BUDGET)
    }
}

fn size(w: &Webtask) -> usize {
    w.code.len() + w.secrets_json.len() + w.meta_json.len() + w.name.len() + 128
}

impl RunCache {
    pub(crate) fn new(budget: usize) -> Self {
        RunCache {
            inner: RwLock::new(Inner {
                map: Map::new(),
                generation: 0,
                bytes: 0,
            }),
            budget,
        }
    }

    pub(crate) fn get(&self, container: &str, name: &str) -> Option<Arc<Webtask>> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        inner.map.get(container)?.get(name).cloned()
    }

    /// The generation to pass to [`RunCache::insert_if_unchanged`] after a load.
    pub(crate) fn generation(&self) -> u64 {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .generation
    }

    /// Caches what a load read, unless a write happened since `generation`.
    pub(crate) fn insert_if_unchanged(&self, generation: u64, w: &Arc<Webtask>) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if inner.generation == generation {
            self.insert(&mut inner, w);
        }
    }

    /// After a store write of `w`: it is what runs from now on.
    pub(crate) fn written(&self, w: &Arc<Webtask>) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.generation += 1;
        self.insert(&mut inner, w);
    }

    /// After a store delete, or a change announced by another host.
    pub(crate) fn forget(&self, container: &str, name: &str) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.generation += 1;
        let Some(c) = inner.map.get_mut(container) else {
            return;
        };
        let removed = c.remove(name).map_or(0, |w| size(&w));
        if c.is_empty() {
            inner.map.remove(container);
        }
        inner.bytes -= removed;
    }

    /// Forgets everything (the change feed may have missed changes).
    pub(crate) fn clear(&self) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.generation += 1;
        inner.map.clear();
        inner.bytes = 0;
    }

    /// Bytes cached now.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes
    }

    fn insert(&self, inner: &mut Inner, w: &Arc<Webtask>) {
        let old = inner
            .map
            .entry(w.container.clone())
            .or_default()
            .insert(w.name.clone(), Arc::clone(w));
        inner.bytes = inner.bytes + size(w) - old.map_or(0, |o| size(&o));
        // Over budget: drop whole containers other than `w`'s, in the map's
        // (arbitrary) order, down to 90 % of it.
        if inner.bytes > self.budget {
            let target = self.budget / 10 * 9;
            let victims: Vec<String> = inner
                .map
                .iter()
                .filter(|(c, _)| **c != w.container)
                .scan(inner.bytes, |left, (c, ws)| {
                    if *left <= target {
                        return None;
                    }
                    *left -= ws.values().map(|w| size(w)).sum::<usize>();
                    Some(c.clone())
                })
                .collect();
            for c in victims {
                if let Some(ws) = inner.map.remove(&c) {
                    inner.bytes -= ws.values().map(|w| size(w)).sum::<usize>();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webtask(code: &str) -> Arc<Webtask> {
        Arc::new(Webtask {
            container: "c".into(),
            name: "n".into(),
            code: code.into(),
            code_id: crate::sandbox::code_id(code),
            secrets_json: "{}".into(),
            meta_json: "{}".into(),
            extension_secret: None,
            point: None,
        })
    }

    #[test]
    fn the_cache_stays_within_its_budget() {
        let cache = RunCache::new(10_000);
        for i in 0..100 {
            let mut w = (*webtask(&"x".repeat(1000))).clone();
            w.container = format!("c{i}");
            cache.written(&Arc::new(w));
        }
        assert!(cache.bytes() <= 10_000, "{}", cache.bytes());
        assert!(cache.get("c99", "n").is_some(), "the newest stays");
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
