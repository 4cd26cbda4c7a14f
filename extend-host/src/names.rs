//! Container and webtask names.
//!
//! Clients (wt-cli, sandboxjs) build URLs by plain string concatenation
//! without encoding, so names are restricted to characters that need no
//! encoding anywhere in a URL.

use crate::error::ApiError;

/// The longest container or webtask name.
pub(crate) const MAX_NAME: usize = 64;

/// Checks a container or webtask name; `what` is "container" or "webtask".
pub(crate) fn check(what: &str, name: &str) -> Result<(), ApiError> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'));
    if name.is_empty() || name.len() > MAX_NAME || !ok_chars || name.bytes().all(|b| b == b'.') {
        return Err(ApiError::bad_request(format!(
            "invalid {what} name `{}`: use 1 to {MAX_NAME} characters from A-Z, a-z, 0-9, `-`, `_`, `.` and `~` (not only dots)",
            name.escape_debug()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_url_safe_names_and_names_the_rule_otherwise() {
        for good in ["acme", "on-new-lead", "a.b_c~d", &"x".repeat(64)] {
            assert!(check("webtask", good).is_ok(), "{good}");
        }
        for bad in ["", "a/b", "a b", "é", "..", &"x".repeat(65), "a%20"] {
            let e = check("container", bad).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(
                e.message.contains("invalid container name"),
                "{}",
                e.message
            );
        }
    }
}
