//! The error of a management call.

use std::fmt;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A management call failed. Names the call and the container, says what
/// kind of failure it was, and keeps the underlying error as its source.
#[derive(Debug)]
pub struct ManagementError {
    operation: &'static str,
    container: String,
    kind: ManagementErrorKind,
    status: Option<u16>,
    message: String,
    source: Option<BoxError>,
}

/// What kind of failure a [`ManagementError`] is. New kinds may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManagementErrorKind {
    /// The host refused the token (401 or 403): wrong token, or a tenant token
    /// used on another container.
    Refused,
    /// The host has no such thing (404), or no management API at that URL.
    NotFound,
    /// The request was refused as malformed, here (a bad name) or by the host (4xx).
    BadInput,
    /// The host could not be reached, asked to slow down (429) or failed (5xx):
    /// trying again later may succeed.
    HostUnavailable,
    /// The host answered something this client cannot read.
    InvalidAnswer,
}

impl ManagementErrorKind {
    /// The kind an HTTP status other than 2xx stands for.
    pub(crate) fn of_status(status: u16) -> Self {
        match status {
            401 | 403 => ManagementErrorKind::Refused,
            404 => ManagementErrorKind::NotFound,
            429 | 500..=599 => ManagementErrorKind::HostUnavailable,
            400..=499 => ManagementErrorKind::BadInput,
            _ => ManagementErrorKind::InvalidAnswer,
        }
    }
}

impl ManagementError {
    pub(crate) fn new(
        operation: &'static str,
        container: &str,
        kind: ManagementErrorKind,
        status: Option<u16>,
        message: impl Into<String>,
    ) -> Self {
        ManagementError {
            operation,
            container: container.to_owned(),
            kind,
            status,
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// What was attempted, e.g. `"install an extension"`.
    pub fn operation(&self) -> &str {
        self.operation
    }

    /// The container it was for.
    pub fn container(&self) -> &str {
        &self.container
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ManagementErrorKind {
        self.kind
    }

    /// The host's HTTP status, when it answered.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The host's message (or what went wrong before it could answer).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ManagementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.container.is_empty() {
            write!(f, "could not {}: ", self.operation)?;
        } else {
            write!(
                f,
                "could not {} in container \"{}\": ",
                self.operation, self.container
            )?;
        }
        match self.status {
            Some(s) => write!(f, "the host answered {s}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ManagementError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as _)
    }
}
