//! The `Extend` client: configuration, containers, shutdown.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::discovery::{DiscoveryError, Endpoint};
use crate::error::Error;
use crate::invoke::Invoker;
use crate::outcome::ShutdownReport;
use crate::point::PointDescriptor;
use crate::webtask::Management;

/// The client through which extension points invoke tenants' extensions.
/// Cheap to clone; clones share the HTTP pool, discovery and the async queue.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use extend_hooks::discovery::{Endpoint, StaticDiscovery};
/// use extend_hooks::Extend;
/// let extend = Extend::builder()
///     .discovery(StaticDiscovery::new().with(
///         "acme",
///         "on-new-lead",
///         Endpoint::new("http://127.0.0.1:8080/score")?,
///     ))
///     .build()?;
/// let acme = extend.container("acme");
/// // on_new_lead(&acme, &lead).await?;
/// let report = extend.shutdown(std::time::Duration::from_secs(5)).await;
/// assert_eq!(report.dropped, 0);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Extend {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) invoker: Arc<Invoker>,
    /// The delivery engine of async invocations, over the durable outbox
    /// when one is configured, else over the in-memory queue.
    pub(crate) engine: Arc<crate::outbox::Worker>,
    /// The outbox's handle, when there is one (the in-memory queue keeps
    /// no dead letters to list or replay).
    pub(crate) outbox: Option<crate::outbox::Outbox>,
    pub(crate) management: Option<Management>,
    /// The change-stream follower: it stops when the sender is dropped.
    pub(crate) watch: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::sync::watch::Receiver<bool>,
    )>,
}

impl Extend {
    /// The scope for one webtask container (usually one tenant).
    pub fn container(&self, name: impl Into<Arc<str>>) -> Container {
        Container {
            name: name.into(),
            extend: self.clone(),
        }
    }

    /// Forgets the cached discovery answer for (container, point), so the next
    /// invocation asks again (see [`Discovery::invalidate`](crate::discovery::Discovery::invalidate)). Management calls
    /// made through [`Extend::management`] do this themselves.
    pub async fn invalidate(&self, container: &str, point: &str) {
        self.inner
            .invoker
            .discovery
            .invalidate(container, point)
            .await;
    }

    /// The extension `container` has for `point`, as an invocation would find
    /// it (through the same cache): `None` means the point's default runs.
    pub async fn discover(
        &self,
        container: &str,
        point: &str,
    ) -> Result<Option<Endpoint>, DiscoveryError> {
        self.inner
            .invoker
            .discovery
            .discover(container, point)
            .await
    }

    /// Management calls (tenant tokens, installing and removing extensions)
    /// on the webtask host this client discovers through; `None` when it was
    /// built with another discovery.
    pub fn management(&self) -> Option<Management> {
        self.inner.management.clone()
    }

    /// Queues an async invocation (see [`crate::outbox`]).
    pub(crate) fn enqueue(
        &self,
        point: &'static PointDescriptor,
        container: &Arc<str>,
        body: &Bytes,
    ) -> Result<(), Error> {
        self.inner.engine.enqueue(point, container, body)
    }

    /// The same, awaiting the outbox's commit instead of blocking the
    /// thread (the in-memory queue never waits).
    pub(crate) async fn enqueue_awaiting(
        &self,
        point: &'static PointDescriptor,
        container: &Arc<str>,
        body: &Bytes,
    ) -> Result<(), Error> {
        self.inner
            .engine
            .enqueue_awaiting(point, container, body)
            .await
    }

    /// The durable outbox, when the client was built with one
    /// ([`ExtendBuilder::outbox`](crate::ExtendBuilder::outbox)): what is waiting, dead letters, replay.
    pub fn outbox(&self) -> Option<&crate::outbox::Outbox> {
        self.inner.outbox.as_ref()
    }

    /// Whether the host's change stream is open right now (see
    /// [`ExtendBuilder::watch_changes`](crate::ExtendBuilder::watch_changes)); `false` when not watching.
    pub fn change_stream_connected(&self) -> bool {
        self.inner.watch.as_ref().is_some_and(|(_, c)| *c.borrow())
    }

    /// Waits up to `timeout` for the change stream to be open: after it
    /// returns `true`, every change committed to the host reaches this
    /// client's cache. `false` on timeout or when not watching.
    pub async fn wait_for_change_stream(&self, timeout: Duration) -> bool {
        let Some((_, connected)) = &self.inner.watch else {
            return false;
        };
        let mut connected = connected.clone();
        tokio::time::timeout(timeout, connected.wait_for(|c| *c))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Async invocations held in this process right now: with the
    /// in-memory queue, those queued or in flight; with an outbox, those
    /// this replica is delivering (the outbox's own count is
    /// [`Outbox::depth`](crate::outbox::Outbox::depth)).
    pub fn pending(&self) -> usize {
        self.inner.engine.pending()
    }

    /// Stops taking async invocations (new ones fail with
    /// [`ErrorKind::ShutDown`](crate::ErrorKind::ShutDown)) and waits up to
    /// `grace`. The in-memory queue goes on delivering what it holds until
    /// it is empty or the grace ends; what is left then is cancelled, logged
    /// as dropped, and counted in the report. An outbox loses nothing: what
    /// was not delivered waits in it for the next process.
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        ShutdownReport {
            dropped: self.inner.engine.shutdown(grace).await,
        }
    }
}

impl fmt::Debug for Extend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extend")
            .field("pending", &self.pending())
            .field("outbox", &self.inner.outbox.is_some())
            .field("max_response_bytes", &self.inner.invoker.max_response_bytes)
            .finish_non_exhaustive()
    }
}

/// A webtask container (usually one tenant) bound to an [`Extend`] client:
/// the scope an invocation runs in. Cheap to clone.
///
/// Get one with [`Extend::container`].
#[derive(Clone)]
pub struct Container {
    pub(crate) name: Arc<str>,
    pub(crate) extend: Extend,
}

impl Container {
    /// The container's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client this container invokes through.
    pub fn extend(&self) -> &Extend {
        &self.extend
    }

    /// What a sync call of a point needs, without reaching through the
    /// client's fields.
    pub(crate) fn invoker(&self) -> &Invoker {
        &self.extend.inner.invoker
    }
}

impl fmt::Debug for Container {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Container").field(&self.name).finish()
    }
}
