//! The engine's intake: an invocation is recorded before the call that
//! queued it returns `Ok`, either blocking the caller's thread for the commit
//! (an async point declared as `fn`) or awaiting it (`async fn`). The
//! in-memory queue commits at once, so neither waits there.

use std::sync::Arc;

use bytes::Bytes;

use super::worker::Worker;
use super::{Committed, OutboxError, Refused, delivery_id};
use crate::error::{Error, ErrorKind};
use crate::point::PointDescriptor;

impl Worker {
    /// Records an invocation; `Ok` once it is committed. Blocks the calling
    /// thread for the commit: the path of an async point declared as `fn`.
    pub(crate) fn enqueue(
        &self,
        point: &'static PointDescriptor,
        container: &Arc<str>,
        body: &Bytes,
    ) -> Result<(), Error> {
        self.admit(point, container)?;
        let (committed, answer) = std::sync::mpsc::sync_channel(1);
        self.submit(point, container, body, Committed::Blocking(committed))?;
        let result = answer.recv().unwrap_or_else(|_| Err(writer_gone()));
        self.committed(point, container, result)
    }

    /// The same, awaiting the commit instead of blocking a thread: the path
    /// of an async point declared as `async fn`.
    pub(crate) async fn enqueue_awaiting(
        &self,
        point: &'static PointDescriptor,
        container: &Arc<str>,
        body: &Bytes,
    ) -> Result<(), Error> {
        self.admit(point, container)?;
        let (committed, answer) = tokio::sync::oneshot::channel();
        self.submit(point, container, body, Committed::Awaiting(committed))?;
        let result = answer.await.unwrap_or_else(|_| Err(writer_gone()));
        self.committed(point, container, result)
    }

    /// Refuses at once, before any work, what cannot be taken: shutting
    /// down, the outbox unreadable, or the in-memory queue full (which then
    /// costs its caller a fraction of a microsecond). The backend checks
    /// again when it takes the invocation, so a race is refused there.
    fn admit(&self, point: &'static PointDescriptor, container: &Arc<str>) -> Result<(), Error> {
        if let Some(refused) = self.memory.as_ref().and_then(|m| m.refuses()) {
            return Err(refusal(point, container, refused));
        }
        if self.stop.is_cancelled() {
            return Err(Error::new(
                point.name(),
                container.clone(),
                ErrorKind::ShutDown,
            ));
        }
        let unreadable = self
            .unreadable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(why) = unreadable {
            return Err(outbox_error(
                point,
                container,
                format!("the outbox cannot deliver what it holds: {why}"),
            ));
        }
        Ok(())
    }

    /// Hands the invocation to the backend's writer.
    fn submit(
        &self,
        point: &'static PointDescriptor,
        container: &Arc<str>,
        body: &Bytes,
        committed: Committed,
    ) -> Result<(), Error> {
        let record = (
            delivery_id(),
            point.name().to_owned(),
            container.to_string(),
            body.clone(),
            self.invoker.trace_id(),
        );
        self.store
            .enqueue(record, committed)
            .map_err(|refused| refusal(point, container, refused))
    }

    /// After the writer answered: wakes the worker for what was committed.
    fn committed(
        &self,
        point: &'static PointDescriptor,
        container: &Arc<str>,
        result: Result<(), OutboxError>,
    ) -> Result<(), Error> {
        result.map_err(|e| outbox_error(point, container, e.to_string()))?;
        self.wake();
        Ok(())
    }
}

/// Why a backend did not take an invocation, as the caller sees it.
fn refusal(point: &PointDescriptor, container: &Arc<str>, refused: Refused) -> Error {
    let kind = match refused {
        Refused::Full { capacity } => ErrorKind::QueueFull { capacity },
        Refused::ShutDown => ErrorKind::ShutDown,
        Refused::Failed(e) => return outbox_error(point, container, e.to_string()),
    };
    Error::new(point.name(), container.clone(), kind)
}

/// An invocation the outbox could not take, as the caller sees it.
fn outbox_error(point: &PointDescriptor, container: &Arc<str>, message: String) -> Error {
    Error::new(
        point.name(),
        container.clone(),
        ErrorKind::Outbox { message },
    )
}

/// The writer dropped its answer: it stopped before committing.
fn writer_gone() -> OutboxError {
    OutboxError::new("the outbox's writer stopped before committing")
}
