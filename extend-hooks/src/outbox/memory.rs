//! The in-memory backend: where async invocations wait when the client has
//! no outbox. The delivery engine ([`super::Worker`]) is the same as for the
//! durable backends; what differs is what the process's end means: this
//! queue is lost with it. So it is bounded (a full queue refuses at once),
//! keeps no dead letters, and at shutdown hands back what it still holds, to
//! be reported as dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::record::{
    Attempt, BoxFuture, Committed, DeadLetter, DeadLetterFilter, NewRecord, OutboxError, Pending,
    Record, Refused, Store,
};

/// Invocations in memory, due or being delivered, up to a capacity.
pub(crate) struct MemoryOutbox {
    capacity: usize,
    state: Mutex<State>,
    /// `true` while the queue holds nothing: shutdown waits on it.
    empty: tokio::sync::watch::Sender<bool>,
}

#[derive(Default)]
struct State {
    /// Set at shutdown: refuses new invocations, atomically with the count.
    closed: bool,
    /// Orders invocations due at the same millisecond by arrival.
    seq: u64,
    records: HashMap<String, Held>,
    /// The invocations not being delivered, by when they are due.
    due: BTreeMap<(i64, u64), String>,
}

struct Held {
    record: Record,
    /// Its key in `due`; `None` while it is being delivered.
    due: Option<(i64, u64)>,
    next_ms: i64,
}

impl MemoryOutbox {
    /// A queue of at most `capacity` invocations.
    pub(crate) fn new(capacity: usize) -> Self {
        MemoryOutbox {
            capacity,
            state: Mutex::default(),
            empty: tokio::sync::watch::Sender::new(true),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Invocations held, due or being delivered.
    pub(crate) fn len(&self) -> usize {
        self.state().records.len()
    }

    /// Why a new invocation would be refused now, if it would.
    pub(crate) fn refuses(&self) -> Option<Refused> {
        self.refusal(&self.state())
    }

    fn refusal(&self, state: &State) -> Option<Refused> {
        if state.closed {
            Some(Refused::ShutDown)
        } else if state.records.len() >= self.capacity {
            Some(Refused::Full {
                capacity: self.capacity,
            })
        } else {
            None
        }
    }

    /// Refuses new invocations from now on.
    pub(crate) fn close(&self) {
        self.state().closed = true;
    }

    /// Resolves once the queue holds nothing.
    pub(crate) async fn emptied(&self) {
        let mut empty = self.empty.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = empty.wait_for(|e| *e).await;
    }

    /// Removes and returns everything still held (at the end of shutdown).
    pub(crate) fn drain(&self) -> Vec<Record> {
        let mut state = self.state();
        state.closed = true;
        state.due.clear();
        let left = state.records.drain().map(|(_, h)| h.record).collect();
        drop(state);
        self.empty.send_replace(true);
        left
    }

    /// Makes `id` due at `next_ms`, with `change` applied to its record.
    fn schedule(&self, id: &str, next_ms: i64, change: impl FnOnce(&mut Record)) {
        let mut state = self.state();
        let State {
            seq, records, due, ..
        } = &mut *state;
        if let Some(held) = records.get_mut(id) {
            change(&mut held.record);
            if let Some(key) = held.due.take() {
                due.remove(&key);
            }
            *seq += 1;
            let key = (next_ms, *seq);
            due.insert(key, id.to_owned());
            held.due = Some(key);
            held.next_ms = next_ms;
        }
    }

    /// Forgets `id` (delivered, or failed for good: nothing is kept dead).
    fn remove(&self, id: &str) {
        let mut state = self.state();
        if let Some(held) = state.records.remove(id) {
            if let Some(key) = held.due {
                state.due.remove(&key);
            }
            if state.records.is_empty() {
                drop(state);
                self.empty.send_replace(true);
            }
        }
    }
}

/// Nothing here can fail: every answer is ready at once.
fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, Result<T, OutboxError>> {
    Box::pin(std::future::ready(Ok(value)))
}

impl Store for MemoryOutbox {
    fn enqueue(&self, new: NewRecord, committed: Committed) -> Result<(), Refused> {
        let (id, point, container, body, trace_id) = new;
        let mut state = self.state();
        // Under the same lock as the insert: two callers can't both take
        // the last place, and none gets in after `close`.
        if let Some(refused) = self.refusal(&state) {
            return Err(refused);
        }
        let now = super::now_ms();
        state.seq += 1;
        let key = (now, state.seq);
        state.due.insert(key, id.clone());
        let was_empty = state.records.is_empty();
        let record = Record {
            id: id.clone(),
            point,
            container,
            body,
            created_ms: now,
            attempts: 0,
            history: Vec::new(),
            trace_id,
        };
        state.records.insert(
            id,
            Held {
                record,
                due: Some(key),
                next_ms: now,
            },
        );
        drop(state);
        if was_empty {
            self.empty.send_replace(false);
        }
        committed.send(Ok(()));
        Ok(())
    }

    fn lease<'a>(
        &'a self,
        _owner: &'a str,
        now_ms: i64,
        _until_ms: i64,
        limit: usize,
        skip: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Record>, OutboxError>> {
        // One process holds this queue: a lease is just "being delivered",
        // and ends with the delivery's outcome (or the process).
        let mut state = self.state();
        let State { records, due, .. } = &mut *state;
        let mut taken = Vec::new();
        let mut keys = Vec::new();
        for (key, id) in due.range(..=(now_ms, u64::MAX)) {
            if taken.len() >= limit {
                break;
            }
            let Some(held) = records.get_mut(id) else {
                continue;
            };
            if skip.contains(&held.record.container) {
                continue;
            }
            held.due = None;
            keys.push(*key);
            taken.push(held.record.clone());
        }
        for key in keys {
            due.remove(&key);
        }
        drop(state);
        ready(taken)
    }

    fn done<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), OutboxError>> {
        self.remove(id);
        ready(())
    }

    fn retry<'a>(
        &'a self,
        id: &'a str,
        next_ms: i64,
        history: &'a [Attempt],
    ) -> BoxFuture<'a, Result<(), OutboxError>> {
        self.schedule(id, next_ms, |r| {
            r.attempts += 1;
            r.history = history.to_vec();
        });
        ready(())
    }

    fn postpone<'a>(&'a self, id: &'a str, next_ms: i64) -> BoxFuture<'a, Result<(), OutboxError>> {
        self.schedule(id, next_ms, |_| {});
        ready(())
    }

    fn bury<'a>(
        &'a self,
        id: &'a str,
        _now_ms: i64,
        _history: &'a [Attempt],
    ) -> BoxFuture<'a, Result<(), OutboxError>> {
        self.remove(id);
        ready(())
    }

    fn renew<'a>(
        &'a self,
        _owner: &'a str,
        _ids: &'a [String],
        _until_ms: i64,
    ) -> BoxFuture<'a, Result<(), OutboxError>> {
        // Leases here never run out: nobody else could take them.
        ready(())
    }

    fn release<'a>(&'a self, _owner: &'a str) -> BoxFuture<'a, Result<(), OutboxError>> {
        let now = super::now_ms();
        let leased: Vec<String> = self
            .state()
            .records
            .iter()
            .filter(|(_, h)| h.due.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        for id in leased {
            self.schedule(&id, now, |_| {});
        }
        ready(())
    }

    fn pending(&self) -> BoxFuture<'_, Result<Vec<Pending>, OutboxError>> {
        let mut pending: Vec<Pending> = self
            .state()
            .records
            .values()
            .map(|h| Pending {
                id: h.record.id.clone(),
                point: h.record.point.clone(),
                container: h.record.container.clone(),
                attempts: h.record.attempts,
                created_ms: h.record.created_ms,
                next_ms: h.next_ms,
            })
            .collect();
        pending.sort_by_key(|p| p.created_ms);
        ready(pending)
    }

    fn dead<'a>(
        &'a self,
        _filter: &'a DeadLetterFilter,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, OutboxError>> {
        // Failed invocations are reported as they fail and not kept.
        ready(Vec::new())
    }

    fn revive<'a>(
        &'a self,
        _filter: &'a DeadLetterFilter,
        _now_ms: i64,
    ) -> BoxFuture<'a, Result<u64, OutboxError>> {
        ready(0)
    }

    fn purge(&self, _before_ms: i64) -> BoxFuture<'_, Result<u64, OutboxError>> {
        ready(0)
    }

    fn depth(&self) -> BoxFuture<'_, Result<u64, OutboxError>> {
        ready(self.len() as u64)
    }

    fn next_due(&self) -> BoxFuture<'_, Result<Option<i64>, OutboxError>> {
        ready(self.state().due.keys().next().map(|(at, _)| *at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(id: &str, container: &str) -> NewRecord {
        (
            id.into(),
            "p".into(),
            container.into(),
            bytes::Bytes::from_static(b"{}"),
            String::new(),
        )
    }

    fn committed() -> Committed {
        Committed::Blocking(std::sync::mpsc::sync_channel(1).0)
    }

    #[tokio::test]
    async fn a_full_or_closed_queue_refuses_and_leases_go_by_due_time() {
        let q = MemoryOutbox::new(3);
        for id in ["a", "b", "c"] {
            q.enqueue(new(id, id), committed()).unwrap();
        }
        assert!(matches!(
            q.enqueue(new("d", "d"), committed()),
            Err(Refused::Full { capacity: 3 })
        ));
        let now = super::super::now_ms();
        let first = q.lease("me", now, now, 2, &["a".into()]).await.unwrap();
        let ids: Vec<_> = first.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["b", "c"], "oldest first, skipped containers left");
        assert!(q.lease("me", now, now, 9, &[]).await.unwrap().len() == 1);
        assert!(q.lease("me", now, now, 9, &[]).await.unwrap().is_empty());
        q.retry("b", now + 60_000, &[]).await.unwrap();
        assert_eq!(q.next_due().await.unwrap(), Some(now + 60_000));
        let pending = q.pending().await.unwrap();
        let b = pending.iter().find(|p| p.id == "b").unwrap();
        assert_eq!((b.attempts, b.next_ms), (1, now + 60_000));
        q.done("a").await.unwrap();
        q.bury("c", now, &[]).await.unwrap();
        assert_eq!(q.len(), 1);
        q.close();
        assert!(matches!(
            q.enqueue(new("e", "e"), committed()),
            Err(Refused::ShutDown)
        ));
        let left = q.drain();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].id, "b");
        tokio::time::timeout(std::time::Duration::from_secs(5), q.emptied())
            .await
            .expect("a drained queue is empty");
    }
}
