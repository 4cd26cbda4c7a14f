//! The JavaScript runtimes kept in memory, under a byte budget with
//! least-recently-used eviction. An evicted container is rebuilt on its next
//! run, which costs a compile.

use super::engine::JsContainer;
use std::collections::{BTreeMap, HashMap};

/// What a runtime is assumed to cost beyond the heap QuickJS reports
/// (allocator slack, the context's own structures): the host benchmark
/// measured 253 KiB of RSS per idle runtime whose QuickJS heap was 133 KiB.
const OVERHEAD: usize = 120 << 10;

struct Entry {
    js: Box<JsContainer>,
    /// The container's generation it was built for; an older one is stale
    /// (a webtask of the container was deleted since).
    generation: u64,
    tick: u64,
    bytes: usize,
}

/// Idle runtimes by container. A runtime in use is taken out, so it is
/// neither counted nor evicted while it runs. Runtimes are boxed: one is
/// taken out and put back on every run, and moving the container itself
/// copied it several times a run (#26, callgrind).
pub(crate) struct Resident {
    budget: usize,
    used: usize,
    tick: u64,
    map: HashMap<String, Entry>,
    order: BTreeMap<u64, String>,
}

impl std::fmt::Debug for Resident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resident")
            .field("budget", &self.budget)
            .field("used", &self.used)
            .field("containers", &self.map.len())
            .finish()
    }
}

impl Resident {
    pub(crate) fn new(budget: usize) -> Self {
        Resident {
            budget,
            used: 0,
            tick: 0,
            map: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    /// Takes `container`'s runtime out, if it is resident and built for
    /// `generation` (a stale one is handed back in the second slot, to drop).
    pub(crate) fn take(
        &mut self,
        container: &str,
        generation: u64,
    ) -> (Option<Box<JsContainer>>, Option<Box<JsContainer>>) {
        let Some(e) = self.map.remove(container) else {
            return (None, None);
        };
        self.order.remove(&e.tick);
        self.used -= e.bytes;
        if e.generation == generation {
            (Some(e.js), None)
        } else {
            (None, Some(e.js))
        }
    }

    /// Puts a runtime back as the most recently used, and evicts the least
    /// recently used ones until the budget holds; they are returned so the
    /// caller can drop them outside any lock.
    pub(crate) fn put(
        &mut self,
        container: &str,
        generation: u64,
        js: Box<JsContainer>,
        heap: i64,
    ) -> Vec<JsContainer> {
        self.tick += 1;
        let bytes = usize::try_from(heap).unwrap_or(0) + OVERHEAD;
        self.used += bytes;
        self.order.insert(self.tick, container.to_owned());
        let old = self.map.insert(
            container.to_owned(),
            Entry {
                js,
                generation,
                tick: self.tick,
                bytes,
            },
        );
        let mut evicted = Vec::new();
        if let Some(old) = old {
            // Only one runtime of a container runs at a time, so this is rare.
            self.order.remove(&old.tick);
            self.used -= old.bytes;
            evicted.push(*old.js);
        }
        while self.used > self.budget && self.map.len() > 1 {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(e) = self.map.remove(&oldest) {
                self.used -= e.bytes;
                evicted.push(*e.js);
            }
        }
        evicted
    }

    /// How many runtimes are idle in memory.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Drops every runtime (shutdown).
    pub(crate) fn clear(&mut self) -> Vec<JsContainer> {
        self.order.clear();
        self.used = 0;
        self.map.drain().map(|(_, e)| *e.js).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Limits;
    use std::sync::Arc;

    fn runtime() -> Box<JsContainer> {
        Box::new(JsContainer::new(&Limits::default(), Arc::new(|_, _| {})).unwrap())
    }

    #[test]
    fn the_least_recently_used_go_first_and_stale_ones_are_handed_back() {
        // Room for two runtimes of 100 KB heap each.
        let mut r = Resident::new(2 * (100_000 + OVERHEAD));
        assert!(r.put("a", 0, runtime(), 100_000).is_empty());
        assert!(r.put("b", 0, runtime(), 100_000).is_empty());
        let (a, stale) = r.take("a", 0);
        assert!(a.is_some() && stale.is_none());
        assert!(r.put("a", 0, a.unwrap(), 100_000).is_empty());
        // `b` is now the least recently used.
        assert_eq!(r.put("c", 0, runtime(), 100_000).len(), 1);
        assert_eq!(r.take("b", 0).0.map(|_| ()), None, "b was evicted");
        assert_eq!(r.len(), 2);
        let (fresh, stale) = r.take("a", 1);
        assert!(
            fresh.is_none() && stale.is_some(),
            "built for an older generation"
        );
        assert_eq!(r.clear().len(), 1);
        assert_eq!(r.len(), 0);
    }
}
