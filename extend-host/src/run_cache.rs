//! The run cache: decrypted webtasks ready to run, by container then name, so
//! that a run neither reads the store nor decrypts; and names known not to
//! exist, so that runs of them (a typo, a deleted extension, a scan of
//! made-up names) do not read the store either.
//!
//! A load that misses reads the generation first and inserts only if no
//! write happened meanwhile; writers bump the generation *after* the store
//! write. A load that read the old row therefore either inserts before the
//! writer updates the cache (and is overwritten) or sees the new generation
//! and inserts nothing: a stale webtask never outlives a write.
//!
//! A host's own write is cached with the change-log position the store gave
//! it, and never over a newer change: when another host's write of the same
//! moment was applied first (its change has a higher position), the entry
//! is dropped instead, and the next run reads the store. Without that, the
//! writer put its older version back after the newer change had been
//! applied, and ran it until the next write.

use crate::sandbox::Webtask;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

/// A cached webtask, with the change-log position of the write that cached
/// it (0 when it was read from the store, or the store keeps no log).
type Entry = (Arc<Webtask>, u64);

type Map = HashMap<String, HashMap<String, Entry>>;

/// The default budget of [`RunCache`], in bytes of code, secrets and meta.
pub(crate) const DEFAULT_BUDGET: usize = 64 << 20;

/// Names remembered as missing, at most; past it they are all forgotten,
/// so that a scan of made-up names costs bounded memory.
const MAX_MISSING: usize = 10_000;

/// What the cache knows of a name.
#[derive(Debug)]
pub(crate) enum Cached {
    /// The webtask, ready to run.
    Runnable(Arc<Webtask>),
    /// The store had no such webtask, and nothing was written since.
    Missing,
    /// Nothing: the store must be read.
    Unknown,
}

struct Inner {
    map: Map,
    /// Names the store did not have, by container.
    missing: HashMap<String, HashSet<String>>,
    missing_count: usize,
    // The generation lives under the same lock as the map, so checking it and
    // inserting are one step.
    generation: u64,
    /// The highest change-log position applied from the change feed.
    applied: u64,
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
                missing: HashMap::new(),
                missing_count: 0,
                generation: 0,
                applied: 0,
                bytes: 0,
            }),
            budget,
        }
    }

    pub(crate) fn get(&self, container: &str, name: &str) -> Cached {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        if let Some((w, _)) = inner.map.get(container).and_then(|c| c.get(name)) {
            Cached::Runnable(Arc::clone(w))
        } else if inner
            .missing
            .get(container)
            .is_some_and(|c| c.contains(name))
        {
            Cached::Missing
        } else {
            Cached::Unknown
        }
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
            self.insert(&mut inner, w, 0);
        }
    }

    /// Remembers that a load found no `container`/`name`, unless a write
    /// happened since `generation`.
    pub(crate) fn missing_if_unchanged(&self, generation: u64, container: &str, name: &str) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if inner.generation != generation {
            return;
        }
        if inner.missing_count >= MAX_MISSING {
            inner.missing.clear();
            inner.missing_count = 0;
        }
        let added = inner
            .missing
            .entry(container.to_owned())
            .or_default()
            .insert(name.to_owned());
        inner.missing_count += usize::from(added);
    }

    /// After this host's store write of `w`, logged at position `change`
    /// (0 when the store keeps no log): it is what runs from now on, unless
    /// a later change was already applied from the feed; then nothing of
    /// the name stays cached.
    pub(crate) fn written(&self, w: &Arc<Webtask>, change: u64) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.generation += 1;
        if change != 0 && change < inner.applied {
            remove(&mut inner, &w.container, &w.name);
        } else {
            self.insert(&mut inner, w, change);
        }
    }

    /// After a store delete on this host.
    pub(crate) fn forget(&self, container: &str, name: &str) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.generation += 1;
        remove(&mut inner, container, name);
    }

    /// After a change from the feed (this host's own or another's), at
    /// change-log position `change` (0 when unknown): drops the name unless
    /// what is cached was written at that position or later.
    pub(crate) fn changed(&self, container: &str, name: &str, change: u64) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.generation += 1;
        inner.applied = inner.applied.max(change);
        let newer = inner
            .map
            .get(container)
            .and_then(|c| c.get(name))
            .is_some_and(|(_, at)| change != 0 && *at >= change);
        if !newer {
            remove(&mut inner, container, name);
        }
    }

    /// Forgets everything (the change feed may have missed changes).
    pub(crate) fn clear(&self) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.generation += 1;
        inner.map.clear();
        inner.bytes = 0;
        inner.missing.clear();
        inner.missing_count = 0;
    }

    /// Bytes cached now.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes
    }

    fn insert(&self, inner: &mut Inner, w: &Arc<Webtask>, change: u64) {
        unmiss(inner, &w.container, &w.name);
        let old = inner
            .map
            .entry(w.container.clone())
            .or_default()
            .insert(w.name.clone(), (Arc::clone(w), change));
        inner.bytes = inner.bytes + size(w) - old.map_or(0, |(o, _)| size(&o));
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
                    *left -= ws.values().map(|(w, _)| size(w)).sum::<usize>();
                    Some(c.clone())
                })
                .collect();
            for c in victims {
                if let Some(ws) = inner.map.remove(&c) {
                    inner.bytes -= ws.values().map(|(w, _)| size(w)).sum::<usize>();
                }
            }
        }
    }
}

/// Drops what is cached of `container`/`name`, runnable or missing.
fn remove(inner: &mut Inner, container: &str, name: &str) {
    unmiss(inner, container, name);
    let Some(c) = inner.map.get_mut(container) else {
        return;
    };
    let removed = c.remove(name).map_or(0, |(w, _)| size(&w));
    if c.is_empty() {
        inner.map.remove(container);
    }
    inner.bytes -= removed;
}

/// Forgets that `container`/`name` was missing.
fn unmiss(inner: &mut Inner, container: &str, name: &str) {
    let Some(c) = inner.missing.get_mut(container) else {
        return;
    };
    if c.remove(name) {
        inner.missing_count -= 1;
    }
    if c.is_empty() {
        inner.missing.remove(container);
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

    impl Cached {
        fn runnable(self) -> Option<Arc<Webtask>> {
            match self {
                Cached::Runnable(w) => Some(w),
                _ => None,
            }
        }
    }

    #[test]
    fn the_cache_stays_within_its_budget() {
        let cache = RunCache::new(10_000);
        for i in 0..100 {
            let mut w = (*webtask(&"x".repeat(1000))).clone();
            w.container = format!("c{i}");
            cache.written(&Arc::new(w), 0);
        }
        assert!(cache.bytes() <= 10_000, "{}", cache.bytes());
        assert!(
            cache.get("c99", "n").runnable().is_some(),
            "the newest stays"
        );
    }

    #[test]
    fn a_load_that_raced_a_write_is_not_cached() {
        let cache = RunCache::default();
        // A run misses and starts loading the old row...
        let seen = cache.generation();
        // ...a PUT commits the new row and updates the cache...
        cache.written(&webtask("new"), 0);
        // ...then the run's load finishes: it must not put the old row back.
        cache.insert_if_unchanged(seen, &webtask("old"));
        assert_eq!(&*cache.get("c", "n").runnable().unwrap().code, "new");

        let seen = cache.generation();
        cache.forget("c", "n");
        cache.insert_if_unchanged(seen, &webtask("deleted"));
        assert!(matches!(cache.get("c", "n"), Cached::Unknown));

        let seen = cache.generation();
        cache.insert_if_unchanged(seen, &webtask("loaded"));
        assert_eq!(&*cache.get("c", "n").runnable().unwrap().code, "loaded");
    }

    #[test]
    fn a_missing_name_is_remembered_until_a_write_or_change_names_it() {
        let cache = RunCache::default();
        let seen = cache.generation();
        cache.missing_if_unchanged(seen, "c", "n");
        assert!(matches!(cache.get("c", "n"), Cached::Missing));
        assert!(matches!(cache.get("c", "other"), Cached::Unknown));
        // Created here: runnable at once.
        cache.written(&webtask("created"), 0);
        assert_eq!(&*cache.get("c", "n").runnable().unwrap().code, "created");
        // Deleted, then found missing again; created on another host (its
        // change arrives): the next run reads the store.
        cache.forget("c", "n");
        cache.missing_if_unchanged(cache.generation(), "c", "n");
        assert!(matches!(cache.get("c", "n"), Cached::Missing));
        cache.forget("c", "n");
        assert!(matches!(cache.get("c", "n"), Cached::Unknown));
        // A load that found nothing while a write happened remembers nothing.
        let seen = cache.generation();
        cache.written(&webtask("raced"), 0);
        cache.forget("c", "n");
        cache.missing_if_unchanged(seen, "c", "n");
        assert!(matches!(cache.get("c", "n"), Cached::Unknown));
        // A missed change feed forgets the missing too.
        cache.missing_if_unchanged(cache.generation(), "c", "n");
        cache.clear();
        assert!(matches!(cache.get("c", "n"), Cached::Unknown));
    }

    #[test]
    fn a_write_never_replaces_a_newer_change_from_another_host() {
        let cache = RunCache::default();
        // This host's write was logged at 5; another host's write of the
        // same webtask at 7 was applied before this host's write returned.
        cache.changed("c", "n", 7);
        cache.written(&webtask("mine, older"), 5);
        assert!(
            matches!(cache.get("c", "n"), Cached::Unknown),
            "the store is read"
        );
        // The other order: this write is cached, the newer change drops it.
        cache.written(&webtask("mine"), 9);
        assert_eq!(&*cache.get("c", "n").runnable().unwrap().code, "mine");
        // Its own change coming back through the feed keeps it...
        cache.changed("c", "n", 9);
        assert_eq!(&*cache.get("c", "n").runnable().unwrap().code, "mine");
        // ...a later one does not.
        cache.changed("c", "n", 10);
        assert!(matches!(cache.get("c", "n"), Cached::Unknown));
        // A webtask read from the store (position unknown) goes on any change.
        cache.insert_if_unchanged(cache.generation(), &webtask("loaded"));
        cache.changed("c", "n", 3);
        assert!(matches!(cache.get("c", "n"), Cached::Unknown));
    }

    #[test]
    fn missing_names_are_bounded() {
        let cache = RunCache::default();
        for i in 0..=MAX_MISSING {
            cache.missing_if_unchanged(cache.generation(), "c", &format!("n{i}"));
        }
        let inner = cache.inner.read().unwrap();
        assert_eq!(inner.missing_count, 1, "cleared when full, then the newest");
        assert!(inner.missing["c"].contains(&format!("n{MAX_MISSING}")));
    }
}
