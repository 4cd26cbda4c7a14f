//! What generated code calls. Not public API: it may change in any release.

use crate::invoke::payload_bytes;
pub use crate::point::{Decl, PayloadDecl, SubschemaFn};
use crate::{Container, Error, PointDescriptor};
pub use inventory;

/// A point's entry in the `inventory` registry.
#[derive(Debug)]
pub struct Registration(pub &'static PointDescriptor);

inventory::collect!(Registration);

/// Writes a several-parameter payload as a JSON object, one field at a time,
/// so each parameter's type is checked (and reported) on its own.
#[derive(Debug)]
pub struct ObjectWriter {
    buf: Vec<u8>,
    error: Option<serde_json::Error>,
}

impl ObjectWriter {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        ObjectWriter {
            buf: Vec::from(*b"{"),
            error: None,
        }
    }

    /// Appends `"key": value`. Keys are Rust identifiers: no escaping needed.
    pub(crate) fn field<T: ?Sized + serde::Serialize>(&mut self, key: &'static str, value: &T) {
        if self.error.is_some() {
            return;
        }
        if self.buf.len() > 1 {
            self.buf.push(b',');
        }
        self.buf.push(b'"');
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(b"\":");
        if let Err(e) = serde_json::to_writer(&mut self.buf, value) {
            self.error = Some(e);
        }
    }

    pub fn finish(mut self) -> Result<Vec<u8>, serde_json::Error> {
        match self.error {
            Some(e) => Err(e),
            None => {
                self.buf.push(b'}');
                Ok(self.buf)
            }
        }
    }
}

/// Queues an async invocation (a point declared as `fn`): with a durable
/// outbox, blocks the thread until it is committed.
pub fn invoke_async(
    point: &'static PointDescriptor,
    container: &Container,
    body: Result<Vec<u8>, serde_json::Error>,
) -> Result<(), Error> {
    let body = payload_bytes(point, &container.name, body)?;
    container.extend.enqueue(point, &container.name, &body)
}

/// Queues an async invocation (a point declared as `async fn`): with a
/// durable outbox, awaits the commit without blocking the thread.
pub async fn invoke_async_awaiting(
    point: &'static PointDescriptor,
    container: &Container,
    body: Result<Vec<u8>, serde_json::Error>,
) -> Result<(), Error> {
    let body = payload_bytes(point, &container.name, body)?;
    container
        .extend
        .enqueue_awaiting(point, &container.name, &body)
        .await
}
