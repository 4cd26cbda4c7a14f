//! Webtask metadata keys and secret names that make a webtask an extension
//! (the names Auth0 Extend used, so that `wt-cli` users meet familiar ones).

/// Metadata naming the extension point a webtask serves: discovery lists a
/// container's webtasks by it, and the host checks it against the catalog,
/// records inputs and lists usage by it.
pub const EXTENSION_TYPE: &str = "auth0-extension-type";

/// Metadata that, when truthy, keeps discovery from choosing the extension.
pub const EXTENSION_DISABLED: &str = "auth0-extension-disabled";

/// The *secret* that holds an extension's run secret: the host refuses a
/// run without `Authorization: Bearer <it>`. Stored sealed, never in
/// metadata; discovery reads it with `?decrypt=true`.
pub const RUN_SECRET: &str = "auth0-extension-secret";

/// Metadata naming the compiler that turns the webtask's code into a
/// handler (Webtask's `wt-compiler`): the webtask is written in that
/// language, and the host runs the compiler the platform published under
/// that name in its catalog, inside the tenant's sandbox.
pub const COMPILER: &str = "wt-compiler";

/// Whether a metadata value turns a flag on: anything but empty, `0`,
/// `false` or `no` (any case, spaces around ignored).
pub fn truthy(value: &str) -> bool {
    !matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "false" | "no"
    )
}

#[cfg(test)]
mod tests {
    use super::truthy;

    #[test]
    fn flags_read_as_people_write_them() {
        for on in ["1", "true", "yes", "TRUE", " on "] {
            assert!(truthy(on), "{on}");
        }
        for off in ["0", "false", "", "no", " No "] {
            assert!(!truthy(off), "{off:?}");
        }
    }
}
