//! The JSON body of every error answer, the management API's and a run's
//! alike: the Extend error table's `{code, error, message, details}`, where
//! `code` equals the HTTP status. The host writes it; the framework (and
//! `sandboxjs`, which reads `body.message`) reads it.

use serde::{Deserialize, Serialize};

/// An error answer's body. Every field but `code` is optional on the wire:
/// a reader takes `message`, else `error`, else the raw body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The HTTP status, repeated.
    #[serde(default)]
    pub code: u16,
    /// A short error, e.g. what the extension's callback was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What a person should read: what went wrong and, where it can, what to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// More, e.g. `Error: …` with the extension's stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

impl ErrorBody {
    /// `{code, message}`: a refusal of the management API.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: Some(message.into()),
            ..ErrorBody::default()
        }
    }

    /// The same with a short `error` as well: a run's failure.
    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }

    /// What a person should read: `message`, else `error`.
    pub fn text(&self) -> Option<&str> {
        self.message.as_deref().or(self.error.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorBody;

    #[test]
    fn the_shape_round_trips_and_omits_what_is_absent() {
        let body = ErrorBody::new(404, "no webtask `w`");
        let json = serde_json::to_string(&body).unwrap();
        assert_eq!(json, r#"{"code":404,"message":"no webtask `w`"}"#);
        let full = ErrorBody::new(400, "Script returned an error.").with_error("no");
        let back: ErrorBody = serde_json::from_str(&serde_json::to_string(&full).unwrap()).unwrap();
        assert_eq!(back, full);
        let foreign: ErrorBody =
            serde_json::from_str(r#"{"error":"only this","extra":1}"#).unwrap();
        assert_eq!(foreign.text(), Some("only this"));
        assert_eq!(foreign.code, 0);
    }
}
