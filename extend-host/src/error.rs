//! Errors: the JSON errors the API answers with, and the errors of starting a host.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::fmt;

/// Where a run response came from, sent as `x-wt-response-source` on every run
/// response as the Extend error-handling guide describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The extension's code ran (success, callback error, exception, limit hit).
    Webtask,
    /// The code could not be compiled.
    Compiler,
    /// The host refused or failed the run before the code ran.
    Proxy,
}

impl Source {
    /// `x-wt-response-source`, made once: a name given as a string is
    /// allocated on every insert.
    pub(crate) const HEADER: HeaderName =
        HeaderName::from_static(extend_wire::headers::RESPONSE_SOURCE);

    pub(crate) fn header(self) -> HeaderValue {
        HeaderValue::from_static(self.as_str())
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Source::Webtask => extend_wire::headers::source::WEBTASK,
            Source::Compiler => extend_wire::headers::source::COMPILER,
            Source::Proxy => extend_wire::headers::source::PROXY,
        }
    }
}

/// A refusal or failure of an API call: answered as JSON `{code, message}` with
/// `code` equal to the HTTP status, the shape the original platform used and
/// `sandboxjs` reads (`body.message`).
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    pub(crate) source: Option<Source>,
    pub(crate) retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            source: None,
            retry_after: None,
        }
    }
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
    pub(crate) fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body size exceeds {limit}"),
        )
    }
    pub(crate) fn too_many(message: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, message);
        e.retry_after = Some(retry_after);
        e
    }
    /// Marks this error as an answer of the run endpoint.
    pub(crate) fn with_source(mut self, source: Source) -> Self {
        self.source = Some(source);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = extend_wire::error::ErrorBody::new(self.status.as_u16(), self.message);
        let mut res = (self.status, axum::Json(body)).into_response();
        if let Some(source) = self.source {
            res.headers_mut().insert(Source::HEADER, source.header());
        }
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        res
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "storage failed");
        match e {
            // The database's own text can name tables, values and settings:
            // it goes to the host's log, not to the client.
            crate::store::StoreError::Busy(m) => {
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the store is busy: {m}; retry shortly"),
                );
                e.retry_after = Some(1);
                e
            }
            crate::store::StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
            // A custom store without a capability: said plainly, not a failure.
            crate::store::StoreError::Unsupported(what) => ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                format!("this host's store keeps no {what}"),
            ),
            crate::store::StoreError::Database(_) => ApiError::internal(
                "storage failed: the database refused the operation; the host's log has the details",
            ),
            e => ApiError::internal(format!("storage failed: {e}")),
        }
    }
}

/// Why a host could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum HostError {
    /// The listen address could not be bound.
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The data directory or a key file in it could not be read or written.
    DataDir {
        /// The file or directory.
        path: std::path::PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A key file exists but does not hold keys this host wrote.
    BadKeyFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The database could not be opened or migrated.
    Storage(crate::store::StoreError),
    /// The JavaScript executor could not start its threads.
    Executor(std::io::Error),
    /// A database was given without the key-encryption key that seals the
    /// keys the nodes share.
    MissingKey,
    /// Two builder settings contradict each other (both choose where
    /// webtasks live, say); the message names them.
    Contradiction(&'static str),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Bind { addr, .. } => write!(f, "cannot listen on {addr}"),
            HostError::DataDir { path, .. } => write!(f, "cannot use data file {}", path.display()),
            HostError::BadKeyFile { path, reason } => {
                write!(f, "key file {} is not usable: {reason}", path.display())
            }
            HostError::Storage(_) => f.write_str("cannot open the database"),
            HostError::Executor(_) => f.write_str("cannot start the JavaScript executor threads"),
            HostError::Contradiction(what) => f.write_str(what),
            HostError::MissingKey => f.write_str(
                "a shared database needs a key-encryption key: give every node the same \
                 --key-file or EXTEND_KEY (make one with `extend-host new-key`)",
            ),
        }
    }
}

impl std::error::Error for HostError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HostError::Bind { source, .. } | HostError::DataDir { source, .. } => Some(source),
            HostError::Storage(e) => Some(e),
            HostError::Executor(e) => Some(e),
            HostError::BadKeyFile { .. } | HostError::MissingKey | HostError::Contradiction(_) => {
                None
            }
        }
    }
}
