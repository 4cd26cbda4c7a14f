//! Sync invocation end to end over real HTTP: extensions are axum servers on
//! loopback, points are declared with the real macro.

use std::time::Duration;

use extend_hooks::discovery::{BoxFuture, Discovery, DiscoveryError, Endpoint, StaticDiscovery};
use extend_hooks::{Container, ErrorKind, Extend, Scope, extension_point};
use extend_hooks_examples::{LeadDecision, NewLead, enrich_lead, on_new_lead};
use extend_hooks_tests::extensions;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn lead() -> NewLead {
    NewLead {
        name: "Ada".into(),
        email: "ada@example.com".into(),
        company: Some("Analytical Engines".into()),
    }
}

fn client(discovery: StaticDiscovery) -> Extend {
    Extend::builder()
        .discovery(discovery)
        .build()
        .expect("client builds")
}

#[tokio::test]
async fn default_runs_when_the_tenant_has_no_extension() {
    let extend = client(StaticDiscovery::new());
    let decision = on_new_lead(&extend.container("acme"), &lead())
        .await
        .unwrap();
    assert_eq!(
        decision,
        LeadDecision {
            score: 60,
            accept: true
        }
    );
    let enrichment = enrich_lead(&extend.container("acme"), &lead())
        .await
        .unwrap();
    assert_eq!(enrichment, None);
}

#[tokio::test]
async fn extension_answer_replaces_the_default_and_gets_payload_and_secret() {
    let server = extensions().await;
    let extend = client(
        StaticDiscovery::new().with(
            "acme",
            "on-new-lead",
            Endpoint::new(&server.url("/score"))
                .unwrap()
                .with_secret("s3cret"),
        ),
    );
    let decision = on_new_lead(&extend.container("acme"), &lead())
        .await
        .unwrap();
    assert_eq!(
        decision,
        LeadDecision {
            score: 90,
            accept: true
        }
    );

    // Another tenant still gets the platform default.
    let other = on_new_lead(&extend.container("globex"), &lead())
        .await
        .unwrap();
    assert_eq!(
        other,
        LeadDecision {
            score: 60,
            accept: true
        }
    );

    let seen = server.seen.requests.lock().await;
    assert_eq!(seen.len(), 1);
    let (path, auth, body) = &seen[0];
    assert_eq!(path, "/score");
    assert_eq!(auth.as_deref(), Some("Bearer s3cret"));
    let body: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"name": "Ada", "email": "ada@example.com", "company": "Analytical Engines"})
    );
}

/// Echoes its payload: several parameters arrive as one object keyed by name.
#[extension_point(name = "echo-several", timeout = "2s")]
async fn echo_several(
    tenant: &Container,
    lead: &NewLead,
    reason: &str,
    attempt: u32,
) -> serde_json::Value;

#[tokio::test]
async fn several_payload_parameters_become_an_object_keyed_by_name() {
    let server = extensions().await;
    let extend = client(StaticDiscovery::new().with(
        "acme",
        "echo-several",
        Endpoint::new(&server.url("/echo")).unwrap(),
    ));
    let echoed = echo_several(&extend.container("acme"), &lead(), "duplicate", 3)
        .await
        .unwrap()
        .expect("the extension answers");
    assert_eq!(
        echoed,
        serde_json::json!({
            "lead": {"name": "Ada", "email": "ada@example.com", "company": "Analytical Engines"},
            "reason": "duplicate",
            "attempt": 3
        })
    );
}

#[extension_point(name = "slow-score", timeout = "200ms")]
async fn slow_score(tenant: &Container, lead: &NewLead) -> LeadDecision;

async fn failing(path: &str) -> (extend_hooks_tests::TestServer, Extend) {
    let server = extensions().await;
    let extend = client(StaticDiscovery::new().with(
        "acme",
        "slow-score",
        Endpoint::new(&server.url(path)).unwrap(),
    ));
    (server, extend)
}

#[tokio::test]
async fn a_slow_extension_times_out_at_the_point_deadline() {
    let (_server, extend) = failing("/slow/5000").await;
    let started = std::time::Instant::now();
    let err = slow_score(&extend.container("acme"), &lead())
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Timeout {
            after: Duration::from_millis(200)
        }
    );
    assert_eq!(err.point(), "slow-score");
    assert_eq!(err.container(), "acme");
    assert_eq!(
        err.to_string(),
        "extension point \"slow-score\" for container \"acme\" timed out after 200ms"
    );
    // The call returned because of the deadline, not because the server answered.
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_error_status_is_reported_with_a_body_excerpt() {
    let (_server, extend) = failing("/fail").await;
    let err = slow_score(&extend.container("acme"), &lead())
        .await
        .unwrap_err();
    match err.kind() {
        ErrorKind::Status { status, body } => {
            assert_eq!(*status, 500);
            assert_eq!(body, r#"{"code":500,"message":"score table missing"}"#);
        }
        other => panic!("expected a status error, got {other:?}"),
    }
    assert!(!err.is_transient());
    assert_eq!(
        err.to_string(),
        "the extension for \"slow-score\" in container \"acme\" answered 500 Internal Server Error: {\"code\":500,\"message\":\"score table missing\"}"
    );
}

#[tokio::test]
async fn malformed_json_and_wrong_shapes_are_invalid_responses() {
    for (path, expected_message, expected_body) in [
        ("/malformed", "EOF while parsing an object", "{\"score\": 9"),
        (
            "/wrong-type",
            "invalid type: string \"high\", expected u8",
            r#"{"score":"high"}"#,
        ),
    ] {
        let (_server, extend) = failing(path).await;
        let err = slow_score(&extend.container("acme"), &lead())
            .await
            .unwrap_err();
        match err.kind() {
            ErrorKind::InvalidResponse { message, body } => {
                assert!(message.contains(expected_message), "{path}: {message}");
                assert_eq!(body, expected_body);
            }
            other => panic!("{path}: expected an invalid response, got {other:?}"),
        }
        assert!(err.to_string().contains("not the declared response type"));
    }
}

#[tokio::test]
async fn an_unreachable_extension_is_a_transient_host_unavailable_error() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let extend = client(StaticDiscovery::new().with(
        "acme",
        "slow-score",
        Endpoint::new(&format!("http://127.0.0.1:{port}/gone")).unwrap(),
    ));
    let err = slow_score(&extend.container("acme"), &lead())
        .await
        .unwrap_err();
    match err.kind() {
        ErrorKind::HostUnavailable {
            status: None,
            message,
        } => assert!(message.to_lowercase().contains("connect"), "{message}"),
        other => panic!("expected an unavailable host, got {other:?}"),
    }
    assert!(err.is_transient());
    assert!(std::error::Error::source(&err).is_some());
}

#[tokio::test]
async fn responses_over_the_size_limit_are_refused() {
    let server = extensions().await;
    let extend = Extend::builder()
        .discovery(StaticDiscovery::new().with(
            "acme",
            "echo-several",
            Endpoint::new(&server.url("/big")).unwrap(),
        ))
        .max_response_bytes(1024)
        .build()
        .unwrap();
    let err = echo_several(&extend.container("acme"), &lead(), "x", 1)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::ResponseTooLarge { limit: 1024 });
    assert!(
        err.to_string()
            .ends_with("answered with a body larger than the limit of 1024 bytes"),
        "{err}"
    );
}

/// A discovery backend of the test's own, to produce discovery failures.
struct Broken;

impl Discovery for Broken {
    fn discover<'a>(
        &'a self,
        container: &'a str,
        _point: &'a str,
    ) -> BoxFuture<'a, Result<Option<Endpoint>, DiscoveryError>> {
        Box::pin(async move {
            if container == "twins" {
                Err(DiscoveryError::Ambiguous {
                    names: vec!["score-a".into(), "score-b".into()],
                })
            } else {
                Err(DiscoveryError::Failed("management API unreachable".into()))
            }
        })
    }
}

#[tokio::test]
async fn discovery_failures_name_point_and_container() {
    let extend = Extend::builder().discovery(Broken).build().unwrap();
    let err = on_new_lead(&extend.container("twins"), &lead())
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Ambiguous {
            names: vec!["score-a".into(), "score-b".into()]
        }
    );
    assert_eq!(
        err.to_string(),
        "container \"twins\" has 2 extensions for \"on-new-lead\" (score-a, score-b); remove or disable all but one"
    );
    let err = on_new_lead(&extend.container("acme"), &lead())
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Discovery {
            message: "management API unreachable".into()
        }
    );
}

/// A payload whose serialization fails.
#[derive(JsonSchema)]
struct Unserializable;

impl Serialize for Unserializable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("the lead is locked"))
    }
}

#[extension_point(name = "never-sent")]
async fn never_sent(tenant: &Container, what: &Unserializable) -> LeadDecision;

#[tokio::test]
async fn a_payload_that_fails_to_serialize_is_a_payload_error() {
    let server = extensions().await;
    let extend = client(StaticDiscovery::new().with(
        "acme",
        "never-sent",
        Endpoint::new(&server.url("/score")).unwrap(),
    ));
    let err = never_sent(&extend.container("acme"), &Unserializable)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Payload {
            message: "the lead is locked".into()
        }
    );
    assert!(server.seen.requests.lock().await.is_empty());
}

/// The platform's own tenant type as the scope.
struct Tenant {
    #[allow(dead_code)]
    plan: &'static str,
    extensions: Container,
}

impl Scope for Tenant {
    fn container(&self) -> &Container {
        &self.extensions
    }
}

#[derive(Serialize, JsonSchema)]
struct Invoice<'a> {
    number: &'a str,
}

#[derive(Deserialize, JsonSchema, Debug, PartialEq)]
struct Approval {
    approved: bool,
}

/// Lifetimes on the scope and the payload are fine.
#[extension_point(name = "approve-invoice", timeout = "1s")]
async fn approve_invoice<'a>(tenant: &'a Tenant, invoice: &'a Invoice<'a>) -> Approval {
    Approval {
        approved: invoice.number.starts_with("INV"),
    }
}

#[tokio::test]
async fn a_platform_tenant_type_can_be_the_scope() {
    let extend = client(StaticDiscovery::new());
    let tenant = Tenant {
        plan: "pro",
        extensions: extend.container("acme"),
    };
    let approval = approve_invoice(&tenant, &Invoice { number: "INV-1" })
        .await
        .unwrap();
    assert_eq!(approval, Approval { approved: true });
}
