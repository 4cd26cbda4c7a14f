//! Building a client: every misconfiguration is a clear error, not a panic.

use extend_hooks::discovery::{Endpoint, StaticDiscovery, WebtaskOptions};
use extend_hooks::{BuildError, Extend};

#[test]
fn building_outside_a_runtime_is_an_error() {
    let err = Extend::builder()
        .discovery(StaticDiscovery::new())
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::NoRuntime), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Extend must be built inside a Tokio runtime: async deliveries run on it"
    );
}

#[tokio::test]
async fn discovery_is_required_and_settings_must_be_positive() {
    let err = Extend::builder().build().unwrap_err();
    assert!(matches!(err, BuildError::NoDiscovery), "{err:?}");
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
    let err = Endpoint::new("ftp://example.com/x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "`ftp://example.com/x` is not a valid extension URL: the scheme is `ftp`; only http and https are supported"
    );
    let err = Endpoint::new("not a url").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("`not a url` is not a valid extension URL: ")
    );
    let ok = Endpoint::new("https://example.com/x")
        .unwrap()
        .with_secret("hidden");
    assert_eq!(ok.secret(), Some("hidden"));
    assert!(
        !format!("{ok:?}").contains("hidden"),
        "Debug must not print secrets"
    );
}

#[tokio::test]
async fn contradictory_discovery_settings_are_refused() {
    let err = Extend::builder()
        .discovery(StaticDiscovery::new())
        .webtask("http://127.0.0.1:1", "token")
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::TwoDiscoveries), "{err:?}");
    assert_eq!(
        err.to_string(),
        "both .webtask(url, token) and .discovery(...) were called on the builder: keep one"
    );
    // Order does not matter: the builder does not silently keep the last one.
    let err = Extend::builder()
        .webtask("http://127.0.0.1:1", "token")
        .discovery(StaticDiscovery::new())
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::TwoDiscoveries), "{err:?}");

    let err = Extend::builder()
        .webtask_options(WebtaskOptions::default())
        .discovery(StaticDiscovery::new())
        .build()
        .unwrap_err();
    assert!(
        matches!(err, BuildError::WebtaskOptionsWithoutWebtask),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("only applies to .webtask(url, token)")
    );

    // Options with a webtask host, in either order, build.
    Extend::builder()
        .webtask_options(WebtaskOptions::default())
        .webtask("http://127.0.0.1:1", "token")
        .build()
        .unwrap();
}

/// With an outbox, async calls never reach the in-memory queue: its
/// settings are refused instead of silently doing nothing.
#[tokio::test]
async fn in_memory_queue_settings_are_refused_beside_an_outbox() {
    let dir = std::env::temp_dir().join(format!("extend-builder-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let outbox = extend_hooks::outbox::OutboxConfig::sqlite(dir.join("outbox.sqlite"));
    let err = Extend::builder()
        .discovery(StaticDiscovery::new())
        .async_max_attempts(9)
        .outbox(outbox.clone())
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            BuildError::QueueSettingWithOutbox("async_max_attempts")
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        ".async_max_attempts(...) configures the in-memory queue, which .outbox(...) replaces: \
         set retries and concurrency on the OutboxConfig instead"
    );
    // Without the queue's settings the same outbox builds.
    let extend = Extend::builder()
        .discovery(StaticDiscovery::new())
        .outbox(outbox)
        .build()
        .unwrap();
    extend.shutdown(std::time::Duration::from_secs(1)).await;
    let _ = std::fs::remove_dir_all(dir);
}
