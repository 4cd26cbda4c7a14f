//! What generated code calls. Not public API: it may change in any release.

use schemars::{JsonSchema, Schema, SchemaGenerator};

pub use crate::point::{Decl, PayloadDecl, SubschemaFn};
use crate::{Container, Error, PointDescriptor, invoke, payload};
pub use inventory;

/// A point's entry in the `inventory` registry.
#[derive(Debug)]
pub struct Registration(pub &'static PointDescriptor);

inventory::collect!(Registration);

/// `T`'s schema, written into `generator`.
pub fn subschema<T: ?Sized + JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// The JSON body of a one-parameter payload.
pub fn payload_one<T: ?Sized + payload::Payload>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(value)
}

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
    pub fn field<T: ?Sized + payload::Payload>(&mut self, key: &'static str, value: &T) {
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

/// A sync invocation: everything but the final decode is non-generic.
pub async fn invoke_sync<R: payload::Response>(
    point: &'static PointDescriptor,
    container: &Container,
    body: Result<Vec<u8>, serde_json::Error>,
) -> Result<Option<R>, Error> {
    match invoke::sync(point, container, body).await? {
        None => Ok(None),
        Some(bytes) => match serde_json::from_slice(&bytes) {
            Ok(response) => Ok(Some(response)),
            Err(e) => Err(invoke::invalid_response(point, container, &bytes, e)),
        },
    }
}

/// Queues an async invocation.
pub fn invoke_async(
    point: &'static PointDescriptor,
    container: &Container,
    body: Result<Vec<u8>, serde_json::Error>,
) -> Result<(), Error> {
    invoke::enqueue(point, container, body)
}
