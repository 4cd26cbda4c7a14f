//! Starting a worker: a thread of the in-process backend or a task owning a
//! worker process.

use super::sessions::*;
use super::state::*;
use super::threads::*;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};

pub(super) fn spawn_worker(shared: &Arc<Shared>, low: bool) -> std::io::Result<()> {
    let (inbox, inbox_rx) = flume::unbounded();
    let (wake, wake_rx) = flume::unbounded();
    let me = Arc::new(Worker {
        idle: AtomicBool::new(false),
        inbox,
        wake,
        busy: Mutex::new(None),
        written_off: AtomicBool::new(false),
        resident: AtomicUsize::new(0),
        low,
    });
    let (s, w) = (Arc::clone(shared), Arc::clone(&me));
    match &shared.backend {
        Backend::Processes { .. } => {
            tokio::spawn(async move { work_async(&s, &w, &inbox_rx, &wake_rx).await });
        }
        Backend::InProcess(_) => {
            // A large stack keeps QuickJS's own stack limit, not the thread's, the one that trips.
            std::thread::Builder::new()
                .name("extend-host-js".into())
                .stack_size(8 << 20)
                .spawn(move || work(&s, &w, &inbox_rx))?;
        }
    }
    lock(&shared.workers).push(me);
    Ok(())
}
