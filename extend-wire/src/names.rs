//! The rule for extension point names, which the attribute checks at compile
//! time and the host checks when a catalog is published.

/// The longest point name, in bytes (names are ASCII).
pub const POINT_NAME_MAX: usize = 64;

/// Whether `name` is kebab-case: `[a-z0-9]+(-[a-z0-9]+)*`. Point names
/// travel in webtask metadata and URLs, so they stay plain.
pub fn is_kebab(name: &str) -> bool {
    !name.is_empty()
        && name.split('-').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Whether `name` is a valid point name: kebab-case and at most
/// [`POINT_NAME_MAX`] bytes.
pub fn is_point_name(name: &str) -> bool {
    is_kebab(name) && name.len() <= POINT_NAME_MAX
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_names_are_short_kebab_case() {
        for ok in ["on-new-lead", "a", "v2", "x-1-y"] {
            assert!(is_point_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a--b", "On-lead", "on_lead", "ñ", "a b"] {
            assert!(!is_point_name(bad), "{bad:?}");
        }
        assert!(is_point_name(&"a".repeat(64)));
        assert!(!is_point_name(&"a".repeat(65)));
    }
}
