//! The traits payload and response types must implement, named so compile
//! errors can say what to derive.
//!
//! Generated code reaches everything it does with a user's type through a
//! hidden method of these traits, so a type that lacks a derive fails one
//! obligation (`T: Payload`) wherever it is used, and the compiler reports it
//! once, on the user's type, with the note below.

use std::future::Future;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__private::ObjectWriter;
use crate::invoke::{invalid_response, payload_bytes};
use crate::{Container, Error, PointDescriptor};

/// A type that can travel to an extension: it serializes to the JSON body and
/// has a JSON Schema for the catalog. Implemented for every
/// `Serialize + JsonSchema` type; derive both on your payload types.
#[diagnostic::on_unimplemented(
    message = "`{Self}` can't be an extension point payload",
    label = "a payload type must implement `serde::Serialize` and `schemars::JsonSchema`",
    note = "add `#[derive(serde::Serialize, schemars::JsonSchema)]` to the type's definition"
)]
// No supertraits: the blanket impl's bounds are what a type lacks, so the
// compiler names this trait (and its note) rather than serde's.
pub trait Payload {
    #[doc(hidden)]
    fn __to_json(&self) -> Result<Vec<u8>, serde_json::Error>;

    #[doc(hidden)]
    fn __field(&self, writer: &mut ObjectWriter, key: &'static str);

    #[doc(hidden)]
    fn __schema(generator: &mut SchemaGenerator) -> Schema;
}

impl<T: Serialize + JsonSchema + ?Sized> Payload for T {
    fn __to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    fn __field(&self, writer: &mut ObjectWriter, key: &'static str) {
        writer.field(key, self);
    }

    fn __schema(generator: &mut SchemaGenerator) -> Schema {
        generator.subschema_for::<T>()
    }
}

/// A type a sync extension can answer with: it deserializes from the JSON
/// response and has a JSON Schema for the catalog. Implemented for every
/// `DeserializeOwned + JsonSchema` type; derive both on your response types.
#[diagnostic::on_unimplemented(
    message = "`{Self}` can't be an extension point response",
    label = "a response type must implement `serde::Deserialize` (owned), `schemars::JsonSchema` and `Send`",
    note = "add `#[derive(serde::Deserialize, schemars::JsonSchema)]` to the type's definition"
)]
pub trait ResponseBody: Sized {
    /// A sync invocation: everything but the final decode is non-generic.
    #[doc(hidden)]
    fn __invoke<'a>(
        point: &'static PointDescriptor,
        container: &'a Container,
        body: Result<Vec<u8>, serde_json::Error>,
    ) -> impl Future<Output = Result<Option<Self>, Error>> + Send + 'a;

    #[doc(hidden)]
    fn __schema(generator: &mut SchemaGenerator) -> Schema;
}

impl<T: DeserializeOwned + JsonSchema + Send> ResponseBody for T {
    // Not an `async fn`: that would tie `T` to `'a`, which the trait does not ask.
    #[allow(clippy::manual_async_fn)]
    fn __invoke<'a>(
        point: &'static PointDescriptor,
        container: &'a Container,
        body: Result<Vec<u8>, serde_json::Error>,
    ) -> impl Future<Output = Result<Option<Self>, Error>> + Send + 'a {
        async move {
            let name = &container.name;
            let body = payload_bytes(point, name, body)?;
            match container.invoker().sync(point, name, body).await? {
                None => Ok(None),
                Some(bytes) => match serde_json::from_slice(&bytes) {
                    Ok(response) => Ok(Some(response)),
                    Err(e) => Err(invalid_response(point, name, &bytes, e)),
                },
            }
        }
    }

    fn __schema(generator: &mut SchemaGenerator) -> Schema {
        generator.subschema_for::<T>()
    }
}
