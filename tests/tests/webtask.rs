//! The framework and extend-host together: discovery through the management
//! API with its cache, management calls, and every error kind produced by
//! real JavaScript on a real host.

use std::collections::BTreeMap;
use std::time::Duration;

use extend_hooks::management::ManagementErrorKind;
use extend_hooks::{Container, ErrorKind, Extend, OutcomeStatus, extension_point};
use extend_host::{Host, Limits};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Serialize, JsonSchema)]
struct Lead {
    x: i64,
}

#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
struct Decision {
    score: i64,
}

/// Scores a lead; the platform's default scores 0.
#[extension_point(name = "score", mode = "sync", timeout = "5s")]
async fn score(tenant: &Container, lead: &Lead) -> Decision {
    Decision { score: 0 }
}

/// A point with a short deadline.
#[extension_point(name = "quick", timeout = "300ms")]
async fn quick(tenant: &Container, lead: &Lead) -> Decision;

/// An async notification.
#[extension_point(name = "notify", mode = "async")]
fn notify(tenant: &Container, lead: &Lead);

const DOUBLE: &str = "module.exports = (ctx, cb) => cb(null, { score: ctx.body.x * 2 });";

async fn host_with(f: impl FnOnce(&mut Limits)) -> Host {
    let mut limits = Limits::default();
    f(&mut limits);
    Host::builder()
        .memory()
        .limits(limits)
        .start()
        .await
        .unwrap()
}

/// The run secret the host keeps (sealed) for an installed extension.
async fn run_secret(host: &Host, container: &str, name: &str) -> String {
    let w: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{}/api/webtask/{container}/{name}?decrypt=true",
            host.url()
        ))
        .bearer_auth(host.master_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    w["secrets"][extend_hooks::wire::meta::RUN_SECRET]
        .as_str()
        .unwrap_or_else(|| panic!("no run secret in {w}"))
        .to_owned()
}

fn client(host: &Host) -> Extend {
    extend_hooks::install_crypto_provider();
    Extend::builder()
        .webtask(host.url(), host.master_token())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_first_invocations_make_one_discovery_request() {
    let host = host_with(|l| l.in_flight_per_container = 2000).await;
    let extend = client(&host);
    extend
        .management()
        .unwrap()
        .install("acme", "score", "scorer", DOUBLE)
        .await
        .unwrap();
    let before = host.list_requests();
    let acme = extend.container("acme");
    let mut calls = tokio::task::JoinSet::new();
    for x in 0..1000 {
        let acme = acme.clone();
        calls.spawn(async move { (x, score(&acme, &Lead { x }).await) });
    }
    while let Some(done) = calls.join_next().await {
        let (x, result) = done.unwrap();
        assert_eq!(result.unwrap(), Decision { score: x * 2 });
    }
    assert_eq!(
        host.list_requests() - before,
        1,
        "single flight: one GET /api/webtask/acme for 1,000 misses"
    );
}

#[tokio::test]
async fn no_extension_runs_the_default_and_installing_through_the_client_is_seen_at_once() {
    let host = host_with(|_| {}).await;
    let extend = client(&host);
    let acme = extend.container("acme");
    assert_eq!(
        score(&acme, &Lead { x: 4 }).await.unwrap(),
        Decision { score: 0 }
    );
    assert_eq!(
        score(&acme, &Lead { x: 4 }).await.unwrap(),
        Decision { score: 0 }
    );
    assert_eq!(host.list_requests(), 1, "the \"none\" answer is cached");
    extend
        .management()
        .unwrap()
        .install("acme", "score", "scorer", DOUBLE)
        .await
        .unwrap();
    assert_eq!(
        score(&acme, &Lead { x: 4 }).await.unwrap(),
        Decision { score: 8 }
    );
    assert_eq!(host.list_requests(), 2);
    // No extension and no default: `None`.
    assert_eq!(quick(&acme, &Lead { x: 1 }).await.unwrap(), None);
}

#[tokio::test]
async fn changes_made_elsewhere_are_seen_after_invalidate() {
    let host = host_with(|_| {}).await;
    let extend = client(&host);
    let acme = extend.container("acme");
    assert_eq!(
        score(&acme, &Lead { x: 1 }).await.unwrap(),
        Decision { score: 0 }
    );
    // Installed by another client (a raw PUT): this client's cache still says none.
    let r = reqwest::Client::new()
        .put(format!("{}/api/webtask/acme/other", host.url()))
        .bearer_auth(host.master_token())
        .json(&json!({"code": DOUBLE, "meta": {"auth0-extension-type": "score"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        score(&acme, &Lead { x: 1 }).await.unwrap(),
        Decision { score: 0 }
    );
    extend.invalidate("acme", "score").await;
    assert_eq!(
        score(&acme, &Lead { x: 1 }).await.unwrap(),
        Decision { score: 2 }
    );
}

#[tokio::test]
async fn an_extension_removed_elsewhere_is_forgotten_after_one_404() {
    let host = host_with(|_| {}).await;
    let extend = client(&host);
    extend
        .management()
        .unwrap()
        .install("acme", "score", "scorer", DOUBLE)
        .await
        .unwrap();
    let acme = extend.container("acme");
    assert_eq!(
        score(&acme, &Lead { x: 5 }).await.unwrap(),
        Decision { score: 10 }
    );
    // Removed by another client: the cached answer points at nothing.
    let r = reqwest::Client::new()
        .delete(format!("{}/api/webtask/acme/scorer", host.url()))
        .bearer_auth(host.master_token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let err = score(&acme, &Lead { x: 5 }).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Status { status: 404, .. }),
        "{err:?}"
    );
    assert_eq!(
        score(&acme, &Lead { x: 5 }).await.unwrap(),
        Decision { score: 0 },
        "the default runs again"
    );
}

#[tokio::test]
async fn disabled_extensions_are_skipped_and_two_enabled_ones_are_ambiguous() {
    let host = host_with(|_| {}).await;
    let extend = client(&host);
    let admin = extend.management().unwrap();
    admin.install("acme", "score", "a", DOUBLE).await.unwrap();
    admin
        .install(
            "acme",
            "score",
            "b",
            "module.exports = (ctx, cb) => cb(null, { score: -1 });",
        )
        .await
        .unwrap();
    let acme = extend.container("acme");
    let err = score(&acme, &Lead { x: 3 }).await.unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Ambiguous {
            names: vec!["a".into(), "b".into()]
        }
    );
    assert!(
        err.to_string()
            .contains("container \"acme\" has 2 extensions for \"score\" (a, b)"),
        "{err}"
    );
    let b = admin.set_enabled("acme", "b", false).await.unwrap();
    assert!(!b.enabled);
    assert_eq!(
        b.meta.get("auth0-extension-disabled").map(String::as_str),
        Some("1")
    );
    assert_eq!(
        score(&acme, &Lead { x: 3 }).await.unwrap(),
        Decision { score: 6 }
    );
    admin.set_enabled("acme", "a", false).await.unwrap();
    assert_eq!(
        score(&acme, &Lead { x: 3 }).await.unwrap(),
        Decision { score: 0 }
    );
    admin.set_enabled("acme", "b", true).await.unwrap();
    assert_eq!(
        score(&acme, &Lead { x: 3 }).await.unwrap(),
        Decision { score: -1 },
        "secrets survive the toggle"
    );
}

#[tokio::test]
async fn management_calls_return_typed_results_and_name_what_was_refused() {
    let host = host_with(|_| {}).await;
    let extend = client(&host);
    let admin = extend.management().unwrap();
    let x = admin
        .install("acme", "score", "scorer", DOUBLE)
        .await
        .unwrap();
    assert_eq!(
        (x.name.as_str(), x.point.as_deref(), x.enabled),
        ("scorer", Some("score"), true)
    );
    assert_eq!(x.url, host.webtask_url("acme", "scorer"));
    // The run secret is a sealed secret, never metadata in clear.
    assert!(
        !x.meta.contains_key(extend_hooks::wire::meta::RUN_SECRET),
        "{:?}",
        x.meta
    );
    let secret = run_secret(&host, "acme", "scorer").await;
    assert_eq!(secret.len(), 64);
    admin
        .install("acme", "notify", "notifier", DOUBLE)
        .await
        .unwrap();
    let all = admin.list("acme", None).await.unwrap();
    assert_eq!(
        all.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(),
        ["notifier", "scorer"]
    );
    let scoring = admin.list("acme", Some("score")).await.unwrap();
    assert_eq!(scoring.len(), 1);
    assert_eq!(
        admin.get("acme", "scorer").await.unwrap().unwrap().meta,
        BTreeMap::from([("auth0-extension-type".to_owned(), "score".to_owned())])
    );
    assert_eq!(admin.get("acme", "nope").await.unwrap(), None);
    // The secret is enforced by the host: a run without it is refused.
    let r = reqwest::Client::new()
        .post(&x.url)
        .json(&json!({"x": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(admin.remove("acme", "scorer").await.unwrap());
    assert!(!admin.remove("acme", "scorer").await.unwrap());

    // A tenant token serves its own container and is refused elsewhere.
    let tenant = admin.issue_tenant_token("acme").await.unwrap();
    let scoped = Extend::builder()
        .webtask(host.url(), &tenant)
        .build()
        .unwrap();
    let own = scoped
        .management()
        .unwrap()
        .list("acme", None)
        .await
        .unwrap();
    assert_eq!(own.len(), 1);
    let e = scoped
        .management()
        .unwrap()
        .install("globex", "score", "x", DOUBLE)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.status(), e.container(), e.operation()),
        (
            ManagementErrorKind::Refused,
            Some(403),
            "globex",
            "install an extension"
        )
    );
    assert_eq!(
        e.to_string(),
        "could not install an extension in container \"globex\": the host answered 403: not authorized to perform operation on tenant `globex`"
    );
    let e = admin
        .install("bad name", "score", "x", DOUBLE)
        .await
        .unwrap_err();
    assert!(e.message().contains("invalid container name"), "{e}");
    assert_eq!(e.kind(), ManagementErrorKind::BadInput);
    let err = score(&scoped.container("globex"), &Lead { x: 1 })
        .await
        .unwrap_err();
    match err.kind() {
        ErrorKind::Discovery { message } => assert!(message.contains("403"), "{message}"),
        other => panic!("expected a discovery error, got {other:?}"),
    }
}

async fn with_extension(extend: &Extend, code: &str) -> extend_hooks::Error {
    extend
        .management()
        .unwrap()
        .install("acme", "score", "scorer", code)
        .await
        .unwrap();
    score(&extend.container("acme"), &Lead { x: 1 })
        .await
        .unwrap_err()
}

#[tokio::test]
async fn errors_from_extension_code_are_classified_by_the_wire() {
    let host = host_with(|l| l.run_time = Duration::from_secs(1)).await;
    let extend = client(&host);

    let err = with_extension(
        &extend,
        "module.exports = (ctx, cb) => cb(new Error('no table'));",
    )
    .await;
    assert_eq!(
        err.kind(),
        &ErrorKind::ExtensionFailed {
            status: 400,
            message: "no table".into(),
            details: Some("Error: no table".into())
        }
    );
    assert!(!err.is_transient());
    assert_eq!(
        err.to_string(),
        "the extension for \"score\" in container \"acme\" reported an error (400): no table"
    );

    let err = with_extension(&extend, "module.exports = (ctx, cb) => { const e = new Error('teapot'); e.statusCode = 418; cb(e); };").await;
    assert!(
        matches!(err.kind(), ErrorKind::ExtensionFailed { status: 418, .. }),
        "{err:?}"
    );

    let err = with_extension(&extend, "module.exports = (ctx, cb) => { null.x; };").await;
    match err.kind() {
        ErrorKind::ExtensionCrashed { message } => {
            assert!(
                message.starts_with("Script generated an unhandled synchronous exception."),
                "{message}"
            )
        }
        other => panic!("expected a crash, got {other:?}"),
    }

    let err = with_extension(
        &extend,
        "module.exports = (ctx, cb) => { while (true) {} };",
    )
    .await;
    match err.kind() {
        ErrorKind::ExtensionCrashed { message } => {
            assert!(message.contains("time limit of 1s"), "{message}")
        }
        other => panic!("expected the host's time limit, got {other:?}"),
    }

    let err = with_extension(&extend, "module.exports = (ctx, cb) => {").await;
    match err.kind() {
        ErrorKind::CompilationFailed { message } => {
            assert!(message.starts_with("Compilation failed: "), "{message}")
        }
        other => panic!("expected a compilation failure, got {other:?}"),
    }

    let err = with_extension(
        &extend,
        "module.exports = (ctx, cb) => cb(null, { score: 'high' });",
    )
    .await;
    match err.kind() {
        ErrorKind::InvalidResponse { body, .. } => assert_eq!(body, r#"{"score":"high"}"#),
        other => panic!("expected an invalid response, got {other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_secret_is_unauthorized() {
    let host = host_with(|_| {}).await;
    let extend = client(&host);
    let put = |secret: &'static str| {
        reqwest::Client::new()
            .put(format!("{}/api/webtask/acme/scorer", host.url()))
            .bearer_auth(host.master_token())
            .json(
                &json!({"code": DOUBLE, "secrets": {"auth0-extension-secret": secret},
                          "meta": {"auth0-extension-type": "score"}}),
            )
            .send()
    };
    assert_eq!(put("right").await.unwrap().status(), 200);
    score(&extend.container("acme"), &Lead { x: 1 })
        .await
        .unwrap();
    // Rotated by another client while this one has the old secret cached.
    assert_eq!(put("rotated").await.unwrap().status(), 200);
    let err = score(&extend.container("acme"), &Lead { x: 1 })
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Unauthorized {
            status: 401,
            message: "the bearer token does not match this extension's secret".into()
        }
    );
}

#[tokio::test]
async fn a_busy_container_is_rate_limited_and_a_slow_one_times_out() {
    let host = host_with(|l| {
        l.in_flight_per_container = 1;
        l.run_time = Duration::from_secs(3);
    })
    .await;
    let extend = client(&host);
    let admin = extend.management().unwrap();
    admin
        .install(
            "acme",
            "quick",
            "spin",
            "module.exports = (ctx, cb) => { while (true) {} };",
        )
        .await
        .unwrap();
    admin
        .install("acme", "score", "scorer", DOUBLE)
        .await
        .unwrap();
    let acme = extend.container("acme");
    let started = std::time::Instant::now();
    let err = quick(&acme, &Lead { x: 1 }).await.unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Timeout {
            after: Duration::from_millis(300)
        }
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the deadline is the client's, not the host's"
    );
    // The client sent its deadline: the host stopped the run too, instead of
    // letting it burn to its own 3 s limit (#9.2).
    let freed_by = std::time::Instant::now() + Duration::from_secs(1);
    while host.runs_in_flight("acme") > 0 {
        assert!(
            std::time::Instant::now() < freed_by,
            "the host still runs what the caller gave up on"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        score(&acme, &Lead { x: 2 }).await.unwrap(),
        Decision { score: 4 }
    );

    // A caller that sends no deadline gets the host's limit: that spinner
    // holds acme's only run slot, and the client is told to retry.
    let secret = run_secret(&host, "acme", "spin").await;
    let spin_url = host.webtask_url("acme", "spin");
    let holder = tokio::spawn(async move {
        reqwest::Client::new()
            .post(spin_url)
            .bearer_auth(secret)
            .send()
            .await
            .unwrap()
            .status()
    });
    while host.runs_in_flight("acme") == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let err = score(&acme, &Lead { x: 1 }).await.unwrap_err();
    match err.kind() {
        ErrorKind::RateLimited {
            retry_after,
            message,
        } => {
            assert_eq!(*retry_after, Some(Duration::from_secs(1)));
            assert!(message.contains("runs in flight"), "{message}");
        }
        other => panic!("expected rate limiting, got {other:?}"),
    }
    assert!(err.is_transient());
    assert_eq!(holder.await.unwrap(), 500, "stopped at the host's limit");
}

#[tokio::test]
async fn a_host_that_went_away_is_unavailable_and_async_retries_only_that() {
    let host = host_with(|_| {}).await;
    let (tx, mut outcomes) = tokio::sync::mpsc::unbounded_channel();
    let extend = Extend::builder()
        .webtask(host.url(), host.master_token())
        .async_max_attempts(2)
        .async_backoff(Duration::from_millis(10), Duration::from_millis(20))
        .on_outcome(move |o| {
            let kind = match &o.status {
                OutcomeStatus::Failed(e) => Some(e.kind().clone()),
                _ => None,
            };
            let _ = tx.send((o.attempts, kind));
        })
        .build()
        .unwrap();
    let admin = extend.management().unwrap();
    admin
        .install("acme", "score", "scorer", DOUBLE)
        .await
        .unwrap();
    admin
        .install(
            "acme",
            "notify",
            "notifier",
            "module.exports = (ctx, cb) => cb(new Error('nope'));",
        )
        .await
        .unwrap();
    let acme = extend.container("acme");
    // A permanent failure is not retried.
    notify(&acme, &Lead { x: 1 }).unwrap();
    let (attempts, status) = outcomes.recv().await.unwrap();
    assert_eq!(attempts, 1);
    assert!(
        matches!(status, Some(ErrorKind::ExtensionFailed { status: 400, .. })),
        "{status:?}"
    );
    // Warm the discovery cache, then stop the host.
    assert_eq!(
        score(&acme, &Lead { x: 2 }).await.unwrap(),
        Decision { score: 4 }
    );
    host.shutdown().await.unwrap();
    let err = score(&acme, &Lead { x: 2 }).await.unwrap_err();
    match err.kind() {
        ErrorKind::HostUnavailable {
            status: None,
            message,
        } => assert!(message.contains("onnect"), "{message}"),
        other => panic!("expected an unavailable host, got {other:?}"),
    }
    assert!(err.is_transient());
    notify(&acme, &Lead { x: 1 }).unwrap();
    let (attempts, status) = outcomes.recv().await.unwrap();
    assert_eq!(attempts, 2, "a transient failure is retried");
    assert!(
        matches!(status, Some(ErrorKind::HostUnavailable { .. })),
        "{status:?}"
    );
}

/// The meta keys are the wire crate's, on both sides: what the framework
/// installs is what the host lists by point (its usage listing, catalog
/// checks and recording use the same key), and the host's run secret holds.
#[tokio::test]
async fn installs_use_the_wire_meta_keys_the_host_reads_and_bad_urls_are_refused_at_build() {
    let host = host_with(|_| {}).await;
    extend_hooks::install_crypto_provider();
    let extend = Extend::builder()
        .webtask(host.url(), host.master_token())
        .build()
        .unwrap();
    let admin = extend.management().unwrap();
    let installed = admin
        .install("acme", "score", "renamed", DOUBLE)
        .await
        .unwrap();
    assert_eq!(
        installed.meta,
        BTreeMap::from([(
            extend_wire::meta::EXTENSION_TYPE.to_owned(),
            "score".to_owned()
        )])
    );
    assert_eq!(
        score(&extend.container("acme"), &Lead { x: 7 })
            .await
            .unwrap(),
        Decision { score: 14 }
    );
    let usage: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/catalog/usage?point=score", host.url()))
        .bearer_auth(host.master_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(usage[0]["name"], "renamed", "{usage}");
    // Without the run secret the host refuses the run.
    let r = reqwest::Client::new()
        .post(&installed.url)
        .json(&json!({"x": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A disabled flag is honoured.
    admin.set_enabled("acme", "renamed", false).await.unwrap();
    assert_eq!(
        score(&extend.container("acme"), &Lead { x: 7 })
            .await
            .unwrap(),
        Decision { score: 0 },
        "disabled: the default body runs"
    );

    let err = Extend::builder()
        .webtask("ftp://host", "t")
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the webtask host URL is not usable: `ftp://host` is not an http or https URL"
    );
}

/// A host whose list answer has a malformed item: the item is an error that
/// names it, not silently dropped (a purpose-built faulty server).
#[tokio::test]
async fn a_malformed_list_item_is_an_error_naming_it() {
    use axum::routing::get;
    let router = axum::Router::new().route(
        "/api/webtask/acme",
        get(|| async {
            axum::Json(json!([
                { "name": "fine", "webtask_url": "http://127.0.0.1:9/api/run/acme/fine", "meta": {} },
                { "name": "broken", "meta": { "auth0-extension-type": "score" } },
            ]))
        }),
    );
    let server = extend_hooks_tests::serve(router, Default::default()).await;
    let extend = Extend::builder()
        .webtask(server.url(""), "token")
        .build()
        .unwrap();
    let e = extend
        .management()
        .unwrap()
        .list("acme", None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ManagementErrorKind::InvalidAnswer);
    assert!(
        e.message()
            .starts_with("list item 1 (`broken`) is not a webtask: missing field `webtask_url`"),
        "{e}"
    );
    assert!(
        std::error::Error::source(&e).is_some(),
        "the serde error is kept"
    );
    let err = score(&extend.container("acme"), &Lead { x: 1 })
        .await
        .unwrap_err();
    match err.kind() {
        ErrorKind::Discovery { message } => {
            assert!(message.contains("list item 1 (`broken`)"), "{message}")
        }
        other => panic!("expected a discovery error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_published_catalog_reaches_the_host_and_installs_must_name_its_points() {
    let host = host_with(|_| {}).await;
    let extend = client(&host);
    let admin = extend.management().unwrap();
    assert_eq!(admin.published_catalog().await.unwrap(), None);
    let catalog = extend_hooks::Catalog::collect().unwrap();
    let published = admin.publish_catalog(&catalog, false).await.unwrap();
    assert_eq!(published.version, 1);
    assert_eq!(
        published.points,
        catalog.iter().map(|p| p.name()).collect::<Vec<_>>()
    );
    let got = admin.published_catalog().await.unwrap().unwrap();
    let mut points = got["catalog"].clone();
    assert_eq!(points["typescript"], catalog.to_typescript());
    points.as_object_mut().unwrap().remove("typescript");
    for p in points["points"].as_array_mut().unwrap() {
        assert!(p["template"].as_str().unwrap().starts_with("// @ts-check"));
        p.as_object_mut().unwrap().remove("template");
        // Every test point's payload is a `Lead { x: i64 }`.
        assert_eq!(p["sample"], serde_json::json!({"x": 0}));
        p.as_object_mut().unwrap().remove("sample");
    }
    assert_eq!(points, catalog.to_json());
    assert_eq!(got["previous"], serde_json::Value::Null);
    // Extension authors fetch the types and a starter, with their tenant token.
    let tenant_token = admin.issue_tenant_token("acme").await.unwrap();
    let fetch = |path: &str| {
        reqwest::Client::new()
            .get(format!("{}{path}", host.url()))
            .bearer_auth(&tenant_token)
            .send()
    };
    let r = fetch("/api/catalog/types.d.ts").await.unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/typescript; charset=utf-8"
    );
    assert_eq!(r.text().await.unwrap(), catalog.to_typescript());
    let r = fetch("/api/catalog/score/template.js").await.unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/javascript; charset=utf-8"
    );
    assert_eq!(r.text().await.unwrap(), catalog.template("score").unwrap());
    let r = fetch("/api/catalog/nope/template.js").await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("no point `nope`"));

    admin.install("acme", "score", "s", DOUBLE).await.unwrap();
    let e = admin
        .install("acme", "no-such-point", "x", DOUBLE)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ManagementErrorKind::BadInput);
    let text = e.to_string();
    assert!(
        text.contains("`no-such-point`") && text.contains("`score`") && text.contains("`notify`"),
        "{text}"
    );
    // The tenant's token cannot publish.
    let tenant = Extend::builder()
        .webtask(host.url(), admin.issue_tenant_token("acme").await.unwrap())
        .build()
        .unwrap();
    let e = tenant
        .management()
        .unwrap()
        .publish_catalog(&catalog, true)
        .await
        .unwrap_err();
    let extend_hooks::management::PublishError::Management(e) = e else {
        panic!("{e}")
    };
    assert_eq!(e.kind(), ManagementErrorKind::Refused);
    assert!(
        e.to_string()
            .starts_with("could not publish the catalog: the host answered 403"),
        "{e}"
    );
}

#[tokio::test]
async fn a_breaking_catalog_is_refused_with_the_extensions_it_would_break_unless_forced() {
    let host = host_with(|_| {}).await;
    let extend = client(&host);
    let admin = extend.management().unwrap();
    let catalog = extend_hooks::Catalog::collect().unwrap();
    // The published catalog has a point this binary no longer declares,
    // and a tenant has an extension for it.
    let mut older = catalog.to_json();
    let points = older["points"].as_array_mut().unwrap();
    let mut gone = points[0].clone();
    gone["name"] = json!("lead-merged");
    points.push(gone);
    let r = reqwest::Client::new()
        .put(format!("{}/api/catalog", host.url()))
        .bearer_auth(host.master_token())
        .json(&older)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    admin
        .install("acme", "lead-merged", "merger", DOUBLE)
        .await
        .unwrap();
    admin.install("globex", "score", "s", DOUBLE).await.unwrap();

    let e = admin.publish_catalog(&catalog, false).await.unwrap_err();
    let extend_hooks::management::PublishError::Breaking {
        published,
        comparison,
        affected,
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!(*published, 1);
    assert_eq!(
        comparison.broken_points().into_iter().collect::<Vec<_>>(),
        ["lead-merged"]
    );
    assert_eq!(affected.len(), 1);
    assert_eq!(
        (affected[0].container.as_str(), affected[0].name.as_str()),
        ("acme", "merger")
    );
    let text = e.to_string();
    assert!(
        text.contains("BREAKING /points/lead-merged: point `lead-merged` was removed")
            && text.contains("acme/merger (lead-merged)")
            && text.contains("publish with force"),
        "{text}"
    );
    let got = admin.published_catalog().await.unwrap().unwrap();
    assert_eq!(got["version"], 1, "nothing was published");

    let forced = admin.publish_catalog(&catalog, true).await.unwrap();
    assert_eq!(forced.version, 2);
    // Republishing without a break needs no force.
    assert_eq!(
        admin
            .publish_catalog(&catalog, false)
            .await
            .unwrap()
            .version,
        3
    );
}
