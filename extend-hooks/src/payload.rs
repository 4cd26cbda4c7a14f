//! The traits payload and response types must implement, named so compile
//! errors can say what to derive.

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A type that can travel to an extension: it serializes to the JSON body and
/// has a JSON Schema for the catalog. Implemented for every
/// `Serialize + JsonSchema` type; derive both on your payload types.
#[diagnostic::on_unimplemented(
    message = "`{Self}` can't be an extension point payload",
    label = "a payload type must implement `serde::Serialize` and `schemars::JsonSchema`",
    note = "add `#[derive(serde::Serialize, schemars::JsonSchema)]` to the type's definition"
)]
pub trait Payload: Serialize + JsonSchema {}

impl<T: Serialize + JsonSchema + ?Sized> Payload for T {}

/// A type a sync extension can answer with: it deserializes from the JSON
/// response and has a JSON Schema for the catalog. Implemented for every
/// `DeserializeOwned + JsonSchema` type; derive both on your response types.
#[diagnostic::on_unimplemented(
    message = "`{Self}` can't be an extension point response",
    label = "a response type must implement `serde::Deserialize` (owned) and `schemars::JsonSchema`",
    note = "add `#[derive(serde::Deserialize, schemars::JsonSchema)]` to the type's definition"
)]
pub trait Response: DeserializeOwned + JsonSchema {}

impl<T: DeserializeOwned + JsonSchema> Response for T {}
