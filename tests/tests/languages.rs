//! Extensions in the platform's own language (Extend's "middleware"): the
//! CRM publishes a Mustache compiler with its catalog, and its `format-email`
//! point is written in it. Through a real host: a tenant's template in, a
//! typed response out; a template that does not compile names its line; a
//! webtask may name the language itself (`wt-compiler`), as with `wt-cli`;
//! and what names a language the catalog lacks is refused, saying so.

use extend_hooks::management::ManagementErrorKind;
use extend_hooks::{Catalog, ErrorKind, Extend};
use extend_hooks_examples::{NewLead, format_email};
use extend_host::Host;
use serde_json::{Value, json};

async fn host() -> Host {
    Host::builder().memory().start().await.unwrap()
}

fn client(host: &Host) -> Extend {
    extend_hooks::install_crypto_provider();
    Extend::builder()
        .webtask(host.url(), host.master_token())
        .build()
        .unwrap()
}

fn lead(company: Option<&str>) -> NewLead {
    NewLead {
        name: "Ada <3".into(),
        email: "ada@example.com".into(),
        company: company.map(str::to_owned),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mustache_template_is_compiled_in_the_sandbox_and_answers_typed() {
    let host = host().await;
    let extend = client(&host);
    let admin = extend.management().unwrap();
    admin
        .publish_catalog(&extend_hooks_examples::catalog().unwrap(), false)
        .await
        .unwrap();
    let acme = extend.container("acme");
    // Without an extension, the platform's own text.
    assert_eq!(
        format_email(&acme, &lead(None)).await.unwrap(),
        "Hello Ada <3,\n\nThank you for your interest.\n"
    );
    admin
        .install(
            "acme",
            "format-email",
            "email",
            "Dear {{name}},{{#company}} of {{company}}{{/company}}{{^company}} (no company){{/company}}\n{{! not shown }}-- {{{email}}}",
        )
        .await
        .unwrap();
    assert_eq!(
        format_email(&acme, &lead(Some("A & B"))).await.unwrap(),
        "Dear Ada &lt;3, of A &amp; B\n-- ada@example.com"
    );
    assert_eq!(
        format_email(&acme, &lead(None)).await.unwrap(),
        "Dear Ada &lt;3, (no company)\n-- ada@example.com"
    );

    // A template that does not compile: the tenant's line, as a typed error.
    admin
        .install(
            "acme",
            "format-email",
            "email",
            "Hello {{name}},\n\n{{#company}}unclosed\n",
        )
        .await
        .unwrap();
    let e = format_email(&acme, &lead(None)).await.unwrap_err();
    match e.kind() {
        ErrorKind::CompilationFailed { message } => assert!(
            message.contains("line 3: section `company` is never closed"),
            "{message}"
        ),
        other => panic!("expected a compile error, got {other:?}: {e}"),
    }
    host.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webtask_names_its_language_and_unknown_languages_are_refused() {
    let host = host().await;
    let extend = client(&host);
    let admin = extend.management().unwrap();
    let http = reqwest::Client::new();
    let put = |name: &str, code: &str, meta: Value| {
        http.put(format!("{}/api/webtask/acme/{name}", host.url()))
            .bearer_auth(host.master_token())
            .json(&json!({ "code": code, "meta": meta }))
            .send()
    };
    // Before a catalog names the language, the host does not know it.
    let r = put("hi", "Hi {{who}}", json!({"wt-compiler": "mustache"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains(
            "`wt-compiler` names `mustache`, and the published catalog has no such language"
        ),
        "{body}"
    );

    // A catalog whose point is in a language it does not publish is refused.
    let without = Catalog::collect().unwrap();
    let e = admin.publish_catalog(&without, false).await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("point `format-email` is written in `mustache`, and the catalog publishes no such language"),
        "{text}"
    );
    let extend_hooks::management::PublishError::Management(m) = &e else {
        panic!("expected the host's refusal, got {e:?}");
    };
    {
        assert_eq!(m.kind(), ManagementErrorKind::BadInput, "{m:?}");
    }

    admin
        .publish_catalog(&extend_hooks_examples::catalog().unwrap(), false)
        .await
        .unwrap();
    // `wt create --meta wt-compiler=mustache`: a webtask of no point, in the language.
    assert_eq!(
        put("hi", "Hi {{who}}", json!({"wt-compiler": "mustache"}))
            .await
            .unwrap()
            .status(),
        200
    );
    let r = http
        .post(format!("{}/api/run/acme/hi", host.url()))
        .json(&json!({"who": "there"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!("Hi there"));
    // The stored code is the tenant's template, not what the host runs.
    let stored: Value = http
        .get(format!(
            "{}/api/webtask/acme/hi?fetch_code=true",
            host.url()
        ))
        .bearer_auth(host.master_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stored["code"], "Hi {{who}}");

    for (meta, needle) in [
        (
            json!({"wt-compiler": "sql"}),
            "no such language (it has `mustache`)",
        ),
        (
            json!({"wt-compiler": "sql", "auth0-extension-type": "format-email"}),
            "point `format-email` is written in `mustache`",
        ),
    ] {
        let r = put("bad", "x", meta).await.unwrap();
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        assert!(body["message"].as_str().unwrap().contains(needle), "{body}");
    }
    host.shutdown().await.unwrap();
}
