//! Building a client: every misconfiguration is a clear error, not a panic.

use extend_hooks::{BuildError, Extend, Extension, StaticDiscovery};

#[test]
fn building_outside_a_runtime_is_an_error() {
    let err = Extend::builder()
        .discovery(StaticDiscovery::new())
        .build()
        .unwrap_err();
    assert_eq!(err, BuildError::NoRuntime);
    assert_eq!(
        err.to_string(),
        "Extend must be built inside a Tokio runtime: async deliveries run on it"
    );
}

#[tokio::test]
async fn discovery_is_required_and_settings_must_be_positive() {
    let err = Extend::builder().build().unwrap_err();
    assert_eq!(err, BuildError::NoDiscovery);
    assert!(
        err.to_string()
            .contains("call .webtask(url, token) or .discovery(...)")
    );
    let err = Extend::builder()
        .discovery(StaticDiscovery::new())
        .async_queue_capacity(0)
        .build()
        .unwrap_err();
    assert_eq!(err.to_string(), "`async_queue_capacity` must be at least 1");
}

#[test]
fn extension_urls_must_be_http() {
    let err = Extension::new("ftp://example.com/x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "`ftp://example.com/x` is not a valid extension URL: the scheme is `ftp`; only http and https are supported"
    );
    let err = Extension::new("not a url").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("`not a url` is not a valid extension URL: ")
    );
    let ok = Extension::new("https://example.com/x")
        .unwrap()
        .with_secret("hidden");
    assert_eq!(ok.secret(), Some("hidden"));
    assert!(
        !format!("{ok:?}").contains("hidden"),
        "Debug must not print secrets"
    );
}
