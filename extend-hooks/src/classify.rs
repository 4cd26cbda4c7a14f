//! Wire facts of a webtask host's answers: where an answer came from
//! (`x-wt-response-source`) and which [`ErrorKind`] a non-2xx answer is.

use std::time::Duration;

use reqwest::header::HeaderMap;

use extend_wire::error::ErrorBody;

use crate::error::{ErrorKind, excerpt};

/// Who produced a run response, as the host says in `x-wt-response-source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResponseSource {
    /// The extension's code ran and answered (success, its error, a crash or a limit).
    Webtask,
    /// The code did not compile.
    Compiler,
    /// The host refused or failed the run before the code ran.
    Proxy,
    /// Something between the client and the host failed.
    Network,
    /// A value this client does not know.
    Unknown(String),
}

impl ResponseSource {
    /// The header's value, `None` when the answer has none (a plain HTTP server).
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Self> {
        use extend_wire::headers::source;
        let value = headers.get(extend_wire::headers::RESPONSE_SOURCE)?;
        Some(match value.to_str().unwrap_or("") {
            source::WEBTASK => ResponseSource::Webtask,
            source::COMPILER => ResponseSource::Compiler,
            source::PROXY => ResponseSource::Proxy,
            source::NETWORK => ResponseSource::Network,
            other => ResponseSource::Unknown(other.to_owned()),
        })
    }
}

/// The `Retry-After` of an answer, in whole seconds as webtask hosts send it.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Sorts a non-2xx answer into the kinds a platform acts on, by status,
/// response source and the error body.
pub(crate) fn classify(
    status: u16,
    source: Option<&ResponseSource>,
    body: &[u8],
    retry_after: Option<Duration>,
) -> ErrorKind {
    // A body that is not the error shape (or not JSON) still has a text to show.
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let message = || parsed.text().map_or_else(|| excerpt(body), str::to_owned);
    let ran = source == Some(&ResponseSource::Webtask);
    match (status, source) {
        (429, _) => ErrorKind::RateLimited {
            retry_after,
            message: message(),
        },
        (401 | 403, _) if !ran => ErrorKind::Unauthorized {
            status,
            message: message(),
        },
        (502..=504, _) | (500..=599, Some(ResponseSource::Proxy | ResponseSource::Network)) => {
            ErrorKind::HostUnavailable {
                status: Some(status),
                message: message(),
            }
        }
        (_, Some(ResponseSource::Compiler)) => ErrorKind::CompilationFailed { message: message() },
        (500, Some(ResponseSource::Webtask)) => ErrorKind::ExtensionCrashed {
            message: match (&parsed.error, &parsed.message) {
                (Some(e), Some(m)) => format!("{e} {m}"),
                (e, m) => e
                    .clone()
                    .or_else(|| m.clone())
                    .unwrap_or_else(|| excerpt(body)),
            },
        },
        (_, Some(ResponseSource::Webtask)) => ErrorKind::ExtensionFailed {
            status,
            message: message(),
            details: parsed.details.clone(),
        },
        _ => ErrorKind::Status {
            status,
            body: excerpt(body),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(source: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-wt-response-source", source.parse().unwrap());
        h
    }

    #[test]
    fn sources_are_parsed_once_into_their_kinds() {
        assert_eq!(
            ResponseSource::from_headers(&headers("webtask")),
            Some(ResponseSource::Webtask)
        );
        assert_eq!(
            ResponseSource::from_headers(&headers("edge")),
            Some(ResponseSource::Unknown("edge".into()))
        );
        assert_eq!(ResponseSource::from_headers(&HeaderMap::new()), None);
    }

    #[test]
    fn answers_are_classified_by_status_source_and_body() {
        let body = br#"{"code":400,"error":"Script returned an error.","message":"no","details":"Error: no"}"#;
        assert_eq!(
            classify(400, Some(&ResponseSource::Webtask), body, None),
            ErrorKind::ExtensionFailed {
                status: 400,
                message: "no".into(),
                details: Some("Error: no".into())
            }
        );
        assert_eq!(
            classify(500, Some(&ResponseSource::Webtask), body, None),
            ErrorKind::ExtensionCrashed {
                message: "Script returned an error. no".into()
            }
        );
        assert!(matches!(
            classify(503, Some(&ResponseSource::Proxy), b"down", None),
            ErrorKind::HostUnavailable {
                status: Some(503),
                ..
            }
        ));
        assert!(matches!(
            classify(401, Some(&ResponseSource::Proxy), b"{}", None),
            ErrorKind::Unauthorized { status: 401, .. }
        ));
        // The code itself may answer 401: that is the extension's own error.
        assert!(matches!(
            classify(401, Some(&ResponseSource::Webtask), b"{}", None),
            ErrorKind::ExtensionFailed { status: 401, .. }
        ));
        assert_eq!(
            classify(404, None, b"not here", None),
            ErrorKind::Status {
                status: 404,
                body: "not here".into()
            }
        );
    }
}
