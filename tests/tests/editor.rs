//! The Extension Editor in a real browser: Debian's chromium driven through
//! chromedriver (WebDriver, with fantoccini), against a real host, with the
//! CRM's `on-new-lead` point called by the platform between the steps.
//!
//! One scenario, as a tenant's developer lives it: the starter template,
//! completion and type errors from the published types, a run with its log
//! line, a draft that discovery does not see, the draft tried on recorded
//! traffic, deploy, rollback, a secret that reaches the code and is never
//! shown again, and another tenant's container refused. Each step leaves a
//! screenshot in `target/editor-screenshots/`.
//!
//! Without chromedriver on the PATH the test prints one skip line, unless
//! `EXTEND_TEST_BROWSER=required` (as `.ci/run` sets it) makes that a failure.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use extend_hooks::{Container, Extend};
use extend_hooks_examples::{NewLead, on_new_lead};
use extend_host::Host;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long one step may take to show its result in the page.
const STEP: Duration = Duration::from_secs(30);

/// chromedriver on a port of its choosing, in a process group of its own,
/// stopped on drop with every chromium it started: a test that fails
/// before closing its session leaves no browser running.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group's id is chromedriver's pid (`process_group(0)`).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

fn start_driver() -> Option<Driver> {
    let required = std::env::var("EXTEND_TEST_BROWSER").is_ok_and(|v| v == "required");
    let (Some(driver), Some(_)) = (on_path("chromedriver"), on_path("chromium")) else {
        assert!(
            !required,
            "EXTEND_TEST_BROWSER=required but chromium or chromedriver is not on the PATH \
             (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipping the editor's browser test: install chromium and chromium-driver");
        return None;
    };
    let mut child = Command::new(driver)
        .process_group(0)
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let stdout = child.stdout.take().expect("piped");
    // "ChromeDriver was started successfully on port 43493."
    let port = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.split("started successfully on port ")
                .nth(1)
                .and_then(|p| p.trim_end_matches('.').trim().parse().ok())
        })
        .expect("chromedriver prints its port");
    Some(Driver { child, port })
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": on_path("chromium").expect("checked"),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,900"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a chromium session")
}

fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let dir = target.join("editor-screenshots");
    std::fs::create_dir_all(&dir).expect("the screenshot folder");
    dir
}

/// The page as a person would see it after `step`, kept as an artifact.
async fn shot(page: &Client, n: u32, step: &str) {
    let png = page.screenshot().await.expect("a screenshot");
    std::fs::write(screenshots().join(format!("{n:02}-{step}.png")), png).expect("saved");
}

/// The text of `css`, once it satisfies `ok`; fails naming what it saw.
async fn text_when(page: &Client, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < STEP {
        if let Ok(el) = page.find(Locator::Css(css)).await
            && let Ok(text) = el.text().await
        {
            if ok(&text) {
                return text;
            }
            last = text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Ok(png) = page.screenshot().await {
        let _ = std::fs::write(screenshots().join("failed.png"), png);
    }
    panic!("{what}: `{css}` still reads {last:?} after {STEP:?} (see failed.png)");
}

async fn click(page: &Client, css: &str) {
    page.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}` to click: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("`{css}` cannot be clicked: {e}"));
}

async fn fill(page: &Client, css: &str, text: &str) {
    let el = page
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}` to fill: {e}"));
    el.clear().await.expect("cleared");
    el.send_keys(text).await.expect("typed");
}

/// Replaces the editor's code, as a paste would.
async fn set_code(page: &Client, code: &str) {
    page.execute(
        "window.__extendEditor.code.setValue(arguments[0]);",
        vec![json!(code)],
    )
    .await
    .expect("code set");
}

async fn score(acme: &Container, email: &str) -> (u8, bool) {
    let lead = NewLead {
        name: "Ada".into(),
        email: email.into(),
        company: None,
    };
    let d = on_new_lead(acme, &lead)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (d.score, d.accept)
}

/// Waits until the platform's call answers `want` (the change stream tells
/// the platform about a deploy a moment after the editor's call returns; a
/// call that raced a rename or delete may fail on the way).
async fn scores(acme: &Container, email: &str, want: u8) {
    let start = Instant::now();
    let lead = NewLead {
        name: "Ada".into(),
        email: email.into(),
        company: None,
    };
    loop {
        let got = on_new_lead(acme, &lead).await.map(|d| d.score);
        if got.as_ref().ok() == Some(&want) {
            return;
        }
        assert!(
            start.elapsed() < STEP,
            "the platform still gets {got:?} for {email}, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const VALID: &str = "// @ts-check
/** @type {import('./extend-types').OnNewLead.CallbackHandler} */
module.exports = function (ctx, cb) {
  console.log('scoring ' + ctx.body.email);
  cb(null, { score: 10, accept: false });
};
";

const MISSING_FIELD: &str = "// @ts-check
/** @type {import('./extend-types').OnNewLead.CallbackHandler} */
module.exports = function (ctx, cb) {
  cb(null, { score: 1 });
};
";

const BIG_COMPANIES: &str = "// @ts-check
/** @type {import('./extend-types').OnNewLead.CallbackHandler} */
module.exports = function (ctx, cb) {
  const big = ctx.body.email.endsWith('@big.example');
  cb(null, { score: big ? 90 : 10, accept: big });
};
";

const USES_SECRET: &str = "// @ts-check
/** @type {import('./extend-types').OnNewLead.CallbackHandler} */
module.exports = function (ctx, cb) {
  cb(null, { score: ctx.secrets.api_key === 'sk-test-123' ? 77 : 1, accept: true });
};
";

/// A host with the CRM's catalog published, a platform client following
/// its changes, and a tenant token for `container`.
async fn platform(container: &str) -> (Host, Extend, String) {
    platform_on(container, Host::builder().memory()).await
}

/// [`platform`] on a host built from `builder`.
async fn platform_on(container: &str, builder: extend_host::HostBuilder) -> (Host, Extend, String) {
    extend_hooks::install_crypto_provider();
    let host = builder.start().await.unwrap();
    let extend = Extend::builder()
        .webtask(host.url(), host.master_token())
        .watch_changes(true)
        .build()
        .unwrap();
    assert!(extend.wait_for_change_stream(Duration::from_secs(10)).await);
    let admin = extend.management().unwrap();
    admin
        .publish_catalog(&extend_hooks_examples::catalog().unwrap(), false)
        .await
        .unwrap();
    let token = admin.issue_tenant_token(container).await.unwrap();
    (host, extend, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_writes_tests_and_ships_an_extension_in_the_browser() {
    let Some(driver) = start_driver() else {
        return;
    };
    let (host, extend, token) = platform("acme").await;
    let acme = extend.container("acme");
    // No extension yet: the platform's default scoring (40 without a company).
    assert_eq!(score(&acme, "ada@big.example").await, (40, false));

    let page = browser(&driver).await;
    let base = host.url().to_owned();
    page.goto(&format!("{base}/edit/acme#//{token}"))
        .await
        .unwrap();

    // 1. acme has no extension: the editor offers the points' templates.
    text_when(&page, "[data-test=dialog]", "the new-extension form", |t| {
        t.contains("New extension for")
    })
    .await;
    page.find(Locator::Css("[data-test=new-point]"))
        .await
        .unwrap()
        .select_by_value("on-new-lead")
        .await
        .unwrap();
    fill(&page, "[data-test=new-name]", "lead-scorer").await;
    click(&page, "[data-test=create]").await;
    text_when(&page, "[data-test=status]", "the template opens", |t| {
        t.contains("New extension lead-scorer for on-new-lead")
    })
    .await;
    let code: String = serde_json::from_value(
        page.execute("return window.__extendEditor.code.getValue();", vec![])
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(
        code.contains("Starter extension for `on-new-lead`")
            && code.contains("import('./extend-types').OnNewLead.CallbackHandler"),
        "{code}"
    );
    text_when(
        &page,
        "[data-test=problems]",
        "the template type-checks",
        |t| t.contains("No type errors"),
    )
    .await;
    shot(&page, 1, "template").await;

    // 2. Completion of ctx.body from the published types.
    page.execute(
        "const e = window.__extendEditor.code; const m = e.getModel();
         e.setPosition({ lineNumber: m.getLineCount() - 2, column: 1 }); e.focus();",
        vec![],
    )
    .await
    .unwrap();
    page.active_element()
        .await
        .unwrap()
        .send_keys("ctx.body.")
        .await
        .unwrap();
    let suggestions = text_when(&page, ".suggest-widget", "completion of ctx.body", |t| {
        t.contains("email")
    })
    .await;
    assert!(
        suggestions.contains("company") && suggestions.contains("name"),
        "{suggestions}"
    );
    shot(&page, 2, "completion").await;

    // 3. An answer without its required `accept` is flagged before saving.
    set_code(&page, MISSING_FIELD).await;
    let problems = text_when(&page, "[data-test=problems]", "the type error", |t| {
        t.contains("1 type error")
    })
    .await;
    assert!(problems.contains("'accept'"), "{problems}");
    click(&page, "[data-test=deploy]").await;
    text_when(&page, "[data-test=status]", "deploying is held back", |t| {
        t.contains("1 type error in the code")
    })
    .await;
    shot(&page, 3, "type-error").await;

    // 4. Edit, run: the response, its source, the schema check, the log line.
    set_code(&page, VALID).await;
    text_when(&page, "[data-test=problems]", "the fix", |t| {
        t.contains("No type errors")
    })
    .await;
    fill(
        &page,
        "[data-test=run-body]",
        r#"{"name": "Ada", "email": "ada@example.com"}"#,
    )
    .await;
    click(&page, "[data-test=run]").await;
    text_when(&page, "[data-test=run-status]", "the run's status", |t| {
        t == "200"
    })
    .await;
    let source = text_when(&page, "[data-test=run-source]", "the source", |t| {
        !t.is_empty()
    })
    .await;
    assert_eq!(source, "webtask");
    let body = text_when(&page, "[data-test=run-response]", "the answer", |t| {
        !t.is_empty()
    })
    .await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body, json!({"score": 10, "accept": false}));
    text_when(&page, "[data-test=run-schema]", "the schema check", |t| {
        t.contains("Matches the response schema of on-new-lead")
    })
    .await;
    text_when(&page, "[data-test=logs]", "the console.log line", |t| {
        t.contains("scoring ada@example.com")
    })
    .await;
    shot(&page, 4, "run").await;
    // Running saved a draft only: the platform still gets its default.
    assert_eq!(score(&acme, "ada@big.example").await, (40, false));

    // 5. Deploy v1; the platform's calls reach it and are recorded.
    click(&page, "[data-test=deploy]").await;
    text_when(&page, "[data-test=status]", "the first deploy", |t| {
        t.contains("Deployed lead-scorer as version 1")
    })
    .await;
    scores(&acme, "ada@big.example", 10).await;
    assert_eq!(score(&acme, "bob@small.example").await, (10, false));
    let http = reqwest::Client::new();
    let inputs_url = format!("{base}/api/webtask/acme/lead-scorer/inputs");
    let start = Instant::now();
    loop {
        let r: Value = http
            .get(&inputs_url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["recording"], true, "{r}");
        if r["inputs"].as_array().map_or(0, Vec::len) >= 2 {
            break;
        }
        assert!(start.elapsed() < STEP, "inputs not recorded: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shot(&page, 5, "deployed").await;

    // 6. A draft: saved, not deployed.
    set_code(&page, BIG_COMPANIES).await;
    click(&page, "[data-test=save]").await;
    text_when(&page, "[data-test=status]", "the draft save", |t| {
        t.contains("Draft saved")
    })
    .await;
    shot(&page, 6, "draft").await;

    // 7. The draft on recorded traffic: one of the answers changes.
    click(&page, "[data-tab=replay]").await;
    click(&page, "[data-test=replay]").await;
    let summary = text_when(&page, "[data-test=replay-summary]", "the replay", |t| {
        !t.is_empty()
    })
    .await;
    assert!(
        summary.contains(
            "2 recorded inputs: 1 changed, 0 failed, 0 no longer match the response schema, 1 unchanged"
        ),
        "{summary}"
    );
    shot(&page, 7, "replay").await;
    // Discovery still finds v1.
    assert_eq!(score(&acme, "ada@big.example").await, (10, false));
    // A draft whose answers lack `accept` fails the response schema on
    // every recorded input, each with its JSON Pointer.
    click(&page, "[data-tab=code]").await;
    set_code(&page, MISSING_FIELD).await;
    click(&page, "[data-tab=replay]").await;
    click(&page, "[data-test=replay]").await;
    let summary = text_when(
        &page,
        "[data-test=replay-summary]",
        "the failing replay",
        // (The check above was recorded too: 2 or 3 inputs, all off-schema.)
        |t| t.contains("no longer match the response schema, 0 unchanged"),
    )
    .await;
    assert!(summary.contains(": 0 changed, 0 failed,"), "{summary}");
    let verdict = text_when(&page, "[data-test=verdict]", "the verdict", |t| {
        !t.is_empty()
    })
    .await;
    assert!(
        verdict.contains("no longer matches the response schema")
            && verdict.contains("/accept is required but missing"),
        "{verdict}"
    );
    shot(&page, 7, "replay-off-schema").await;
    click(&page, "[data-tab=code]").await;
    set_code(&page, BIG_COMPANIES).await;

    // 8. Deploy: the platform's next call gets the new answer.
    click(&page, "[data-test=deploy]").await;
    text_when(&page, "[data-test=status]", "the second deploy", |t| {
        t.contains("Deployed lead-scorer as version 2")
    })
    .await;
    scores(&acme, "ada@big.example", 90).await;
    shot(&page, 8, "deployed-v2").await;

    // 9. Roll back to v1.
    click(&page, "[data-tab=versions]").await;
    click(&page, "[data-version='1'] [data-test=rollback]").await;
    text_when(&page, "[data-test=status]", "the rollback", |t| {
        t.contains("Rolled back to the code and metadata of v1")
    })
    .await;
    scores(&acme, "ada@big.example", 10).await;
    shot(&page, 9, "rollback").await;

    // 10. A secret set in the UI reaches ctx.secrets and is never shown again.
    click(&page, "[data-tab=code]").await;
    set_code(&page, USES_SECRET).await;
    click(&page, "[data-tab=secrets]").await;
    fill(&page, "[data-test=secret-name]", "api_key").await;
    fill(&page, "[data-test=secret-value]", "sk-test-123").await;
    click(&page, "[data-test=secret-add]").await;
    click(&page, "[data-test=deploy]").await;
    text_when(
        &page,
        "[data-test=status]",
        "the deploy with a secret",
        |t| t.contains("Deployed lead-scorer as version 4"),
    )
    .await;
    scores(&acme, "ada@big.example", 77).await;
    let secrets = text_when(&page, "[data-test=secrets]", "the saved secret", |t| {
        t.contains("api_key")
    })
    .await;
    assert!(secrets.contains("(saved)"), "{secrets}");
    let shown = "return document.documentElement.outerHTML.includes('sk-test-123') || \
                 Array.from(document.querySelectorAll('input, textarea')).some(i => i.value.includes('sk-test-123'));";
    assert_eq!(page.execute(shown, vec![]).await.unwrap(), json!(false));
    shot(&page, 10, "secret").await;
    page.refresh().await.unwrap();
    text_when(&page, "[data-test=name]", "the reload", |t| {
        t == "lead-scorer"
    })
    .await;
    click(&page, "[data-tab=secrets]").await;
    text_when(&page, "[data-test=secrets]", "the secret's name", |t| {
        t.contains("api_key")
    })
    .await;
    assert_eq!(page.execute(shown, vec![]).await.unwrap(), json!(false));

    // 11. Rename, then delete: the platform follows, then falls back to its default.
    click(&page, "[data-test=rename]").await;
    fill(&page, "[data-test=rename-to]", "vip-scorer").await;
    click(&page, "[data-test=rename-ok]").await;
    text_when(&page, "[data-test=status]", "the rename", |t| {
        t.contains("Renamed lead-scorer to vip-scorer")
    })
    .await;
    let listed = text_when(&page, "[data-test=list]", "the renamed one listed", |t| {
        t.contains("vip-scorer")
    })
    .await;
    assert!(!listed.contains("lead-scorer"), "{listed}");
    scores(&acme, "ada@big.example", 77).await;
    click(&page, "[data-test=delete]").await;
    click(&page, "[data-test=delete-ok]").await;
    text_when(&page, "[data-test=status]", "the delete", |t| {
        t.contains("Deleted vip-scorer")
    })
    .await;
    scores(&acme, "ada@big.example", 40).await;
    shot(&page, 11, "deleted").await;

    // 12. acme's token does not open globex.
    page.goto(&format!("{base}/edit/globex#//{token}"))
        .await
        .unwrap();
    let refused = text_when(&page, "[data-test=fatal]", "the refusal", |t| !t.is_empty()).await;
    assert!(
        refused.contains("This token cannot open container `globex`"),
        "{refused}"
    );
    shot(&page, 12, "other-tenant").await;

    page.close().await.unwrap();
    host.shutdown().await.unwrap();
}

/// A platform's own page, on another origin, embeds the editor with
/// `<script src="{host}/editor.js">` and `ExtendEditor.show`: the options
/// apply, the code is type-checked (a worker loaded across origins), and
/// the runner reaches the host (CORS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_page_on_another_origin_embeds_the_editor_with_its_options() {
    let Some(driver) = start_driver() else {
        return;
    };
    extend_hooks::install_crypto_provider();
    let host = Host::builder().memory().start().await.unwrap();
    let extend = Extend::builder()
        .webtask(host.url(), host.master_token())
        .build()
        .unwrap();
    let admin = extend.management().unwrap();
    admin
        .publish_catalog(&extend_hooks_examples::catalog().unwrap(), false)
        .await
        .unwrap();
    let token = admin.issue_tenant_token("acme").await.unwrap();
    admin
        .install("acme", "on-new-lead", "scorer", VALID)
        .await
        .unwrap();

    // The platform's page, served from its own origin.
    let config = json!({
        "token": token,
        "webtaskContainer": "acme",
        "webtaskName": "scorer",
        "hostUrl": host.url(),
        "theme": "dark",
        "allowEditingSecrets": false,
        "allowDeleting": false,
        "runner": { "sample": { "name": "Sam", "email": "sam@platform.example" } },
    });
    let html = format!(
        r#"<!doctype html><html><head><script src="{host}/editor.js"></script></head>
<body><h1>Acme's CRM settings</h1><div id="extensions" style="height: 760px"></div>
<script>ExtendEditor.show(document.getElementById('extensions'), {config});</script></body></html>"#,
        host = host.url(),
    );
    let platform = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let platform_url = format!("http://{}", platform.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/settings",
        axum::routing::get(move || async move { axum::response::Html(html) }),
    );
    let server = tokio::spawn(async move { axum::serve(platform, app).await });

    let page = browser(&driver).await;
    page.goto(&format!("{platform_url}/settings"))
        .await
        .unwrap();
    text_when(&page, "[data-test=name]", "the embedded editor", |t| {
        t == "scorer"
    })
    .await;
    text_when(
        &page,
        "[data-test=problems]",
        "type checking across origins",
        |t| t.contains("No type errors"),
    )
    .await;
    let classes = page
        .find(Locator::Css(".xe"))
        .await
        .unwrap()
        .attr("class")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(classes.contains("xe-dark"), "{classes}");
    assert!(
        page.find(Locator::Css("[data-test=delete]")).await.is_err(),
        "allowDeleting: false shows no delete button"
    );
    click(&page, "[data-tab=secrets]").await;
    let secrets = text_when(&page, "[data-test=secrets]", "the secrets panel", |t| {
        t.contains("auth0-extension-secret")
    })
    .await;
    assert!(secrets.contains("set by the platform"), "{secrets}");
    assert!(
        page.find(Locator::Css("[data-test=secret-add]"))
            .await
            .is_err(),
        "allowEditingSecrets: false offers no way to add one"
    );
    let body = page
        .find(Locator::Css("[data-test=run-body]"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(body.contains("sam@platform.example"), "{body}");
    click(&page, "[data-test=run]").await;
    text_when(
        &page,
        "[data-test=run-status]",
        "a run from another origin",
        |t| t == "200",
    )
    .await;
    text_when(&page, "[data-test=logs]", "the log line", |t| {
        t.contains("scoring sam@platform.example")
    })
    .await;
    shot(&page, 13, "embedded").await;

    page.close().await.unwrap();
    server.abort();
    host.shutdown().await.unwrap();
}

const SECRET_KEYS: &str = "// @ts-check
/** @type {import('./extend-types').OnNewLead.CallbackHandler} */
module.exports = function (ctx, cb) {
  cb(null, { score: Object.keys(ctx.secrets).length === 1 ? 66 : 0, accept: true });
};
";

/// What a tenant found broken: a secret dropped by the second save (and the
/// extension then deployed open to anyone), bad and empty names failing
/// without a word (an empty one made a live webtask called `draft`), and a
/// draft of a new extension gone from the list after a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saves_keep_the_run_secret_bad_names_are_shown_and_drafts_survive_a_reload() {
    let Some(driver) = start_driver() else {
        return;
    };
    let (host, extend, token) = platform("beta").await;
    let beta = extend.container("beta");
    let page = browser(&driver).await;
    let base = host.url().to_owned();
    let http = reqwest::Client::new();
    let listed = || async {
        http.get(format!("{base}/api/webtask/beta"))
            .bearer_auth(host.master_token())
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    page.goto(&format!("{base}/edit/beta#//{token}"))
        .await
        .unwrap();
    text_when(&page, "[data-test=dialog]", "the new-extension form", |t| {
        t.contains("New extension for")
    })
    .await;

    // Bad names are named in the status line, with the host's rule.
    for bad in ["my lead scorer", "scoring-ñ✓", ""] {
        fill(&page, "[data-test=new-name]", bad).await;
        click(&page, "[data-test=create]").await;
        let status = text_when(&page, "[data-test=status]", "the bad name's error", |t| {
            t.contains("invalid webtask name")
        })
        .await;
        assert!(status.contains(&format!("`{bad}`")), "{status}");
        // The next try starts from a clean status line.
        page.execute("window.__extendEditor.status('');", vec![])
            .await
            .unwrap();
    }
    assert_eq!(listed().await, json!([]), "nothing was created");
    shot(&page, 20, "bad-names").await;

    // A new extension: its run secret goes with the first save; a second
    // save, a run and a deploy keep it.
    page.find(Locator::Css("[data-test=new-point]"))
        .await
        .unwrap()
        .select_by_value("on-new-lead")
        .await
        .unwrap();
    fill(&page, "[data-test=new-name]", "scorer").await;
    click(&page, "[data-test=create]").await;
    text_when(&page, "[data-test=status]", "the template opens", |t| {
        t.contains("New extension scorer")
    })
    .await;
    // A cold load, Monaco's TypeScript worker included, stays under 3 MB on
    // the wire (it was 10.2 MB uncompressed).
    text_when(&page, "[data-test=problems]", "the first type check", |t| {
        t.contains("type error") || t.contains("No type errors")
    })
    .await;
    let wire: Value = page
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const sum = es => es.reduce((s, e) => s + (e.transferSize || 0), 0);
             const page = sum(performance.getEntriesByType('navigation')) + sum(performance.getEntriesByType('resource'));
             // The worker's own scripts are not in the page's timeline: fetch
             // them as the worker does, uncached, and count their transfer.
             const base = location.origin + '/editor/monaco-0.52.2/vs/';
             const urls = [base + 'base/worker/workerMain.js', base + 'language/typescript/tsWorker.js'];
             Promise.all(urls.map(u => fetch(u, { cache: 'no-store' }).then(r => r.arrayBuffer()))).then(() => {
               const worker = sum(performance.getEntriesByType('resource').filter(e => urls.includes(e.name)));
               done([page, worker]);
             }, e => done(String(e)));",
            vec![],
        )
        .await
        .unwrap();
    let (page_bytes, worker_bytes) = (wire[0].as_u64().unwrap(), wire[1].as_u64().unwrap());
    eprintln!("cold load on the wire: page {page_bytes} bytes, worker {worker_bytes} bytes");
    assert!(
        worker_bytes > 0,
        "the worker's scripts were measured: {wire}"
    );
    assert!(
        page_bytes + worker_bytes < 3_000_000,
        "a cold load takes {} bytes on the wire",
        page_bytes + worker_bytes
    );
    click(&page, "[data-test=save]").await;
    text_when(&page, "[data-test=status]", "the first save", |t| {
        t.contains("Draft saved")
    })
    .await;
    set_code(&page, SECRET_KEYS).await;
    page.execute("window.__extendEditor.status('');", vec![])
        .await
        .unwrap();
    click(&page, "[data-test=save]").await;
    text_when(&page, "[data-test=status]", "the second save", |t| {
        t.contains("Draft saved")
    })
    .await;
    let draft: Value = http
        .get(format!("{base}/api/webtask/beta/scorer/draft"))
        .bearer_auth(host.master_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        draft["secrets"],
        json!(["auth0-extension-secret"]),
        "{draft}"
    );
    click(&page, "[data-test=run]").await;
    let answer = text_when(&page, "[data-test=run-response]", "the run's answer", |t| {
        t.contains("score")
    })
    .await;
    assert!(
        answer.contains("66"),
        "the draft ran with its run secret: {answer}"
    );
    click(&page, "[data-test=deploy]").await;
    text_when(&page, "[data-test=status]", "the deploy", |t| {
        t.contains("Deployed scorer")
    })
    .await;
    shot(&page, 21, "deployed-with-secret").await;
    let open = http
        .post(format!("{base}/api/run/beta/scorer"))
        .json(&json!({"name": "Ada", "email": "ada@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        open.status(),
        401,
        "the live extension needs its run secret"
    );
    // The platform finds the secret through discovery.
    scores(&beta, "ada@example.com", 66).await;

    // A draft of a name never deployed is listed again after a reload.
    click(&page, "[data-test=new]").await;
    fill(&page, "[data-test=new-name]", "later").await;
    click(&page, "[data-test=create]").await;
    text_when(&page, "[data-test=status]", "the template opens", |t| {
        t.contains("New extension later")
    })
    .await;
    click(&page, "[data-test=save]").await;
    text_when(&page, "[data-test=status]", "the draft is saved", |t| {
        t.contains("Draft saved")
    })
    .await;
    page.refresh().await.unwrap();
    let list = text_when(&page, "[data-test=list]", "the list after a reload", |t| {
        t.contains("later")
    })
    .await;
    assert!(list.contains("draft, not deployed"), "{list}");
    click(&page, "[data-test=list] [data-name=later]").await;
    text_when(&page, "[data-test=status]", "the draft opens", |t| {
        t.contains("Opened the draft of later")
    })
    .await;
    shot(&page, 22, "draft-after-reload").await;

    // The runner: the point's timeout (on-new-lead: 2 s, not the host's
    // 30 s), the time taken, and a cancel.
    click(&page, "[data-test=list] [data-name=scorer]").await;
    text_when(&page, "[data-test=status]", "scorer opens", |t| {
        t.is_empty() || t.contains("scorer")
    })
    .await;
    set_code(
        &page,
        "module.exports = function (ctx, cb) { while (true) {} };",
    )
    .await;
    click(&page, "[data-test=run]").await;
    let status = text_when(
        &page,
        "[data-test=run-status]",
        "the endless run's status",
        |t| !t.is_empty(),
    )
    .await;
    assert_eq!(status, "500");
    let took = text_when(&page, "[data-test=run-took]", "the run's time", |t| {
        t.ends_with(" s")
    })
    .await;
    let secs: f64 = took.trim_end_matches(" s").parse().unwrap();
    assert!(
        (1.5..6.0).contains(&secs),
        "stopped by the point's 2 s timeout, not 30 s: {took}"
    );
    let answer = text_when(&page, "[data-test=run-response]", "the timeout", |t| {
        !t.is_empty()
    })
    .await;
    assert!(answer.contains("time limit"), "{answer}");
    set_code(
        &page,
        "module.exports = function (ctx, cb) { const t = Date.now() + 1800; while (Date.now() < t) {} cb(null, {score: 1, accept: true}); };",
    )
    .await;
    click(&page, "[data-test=run]").await;
    text_when(
        &page,
        "[data-test=run-elapsed]",
        "the elapsed time ticks",
        |t| t != "0.0 s",
    )
    .await;
    click(&page, "[data-test=run-cancel]").await;
    text_when(
        &page,
        "[data-test=run-cancelled]",
        "the run is cancelled",
        |t| t.starts_with("Cancelled after"),
    )
    .await;
    shot(&page, 23, "runner-cancelled").await;

    // Unsaved work survives a reload: this browser kept a copy.
    set_code(&page, &format!("// kept locally\n{SECRET_KEYS}")).await;
    page.refresh().await.unwrap();
    let status = text_when(
        &page,
        "[data-test=status]",
        "the local copy is restored",
        |t| t.contains("Restored unsaved changes to scorer"),
    )
    .await;
    assert!(status.contains("kept in this browser"), "{status}");
    let code: String = serde_json::from_value(
        page.execute("return window.__extendEditor.code.getValue();", vec![])
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(code.starts_with("// kept locally"), "{code}");
    shot(&page, 24, "restored-after-reload").await;

    // Ctrl+S in the code saves the draft.
    page.execute(
        "window.__extendEditor.code.focus(); window.__extendEditor.status('');",
        vec![],
    )
    .await
    .unwrap();
    page.active_element()
        .await
        .unwrap()
        .send_keys("\u{E009}s\u{E000}")
        .await
        .unwrap();
    text_when(&page, "[data-test=status]", "Ctrl+S saves", |t| {
        t.contains("Draft saved")
    })
    .await;

    // Who deployed, in words.
    click(&page, "[data-tab=versions]").await;
    let versions = text_when(&page, "[data-test=versions]", "the versions", |t| {
        t.contains("v1")
    })
    .await;
    assert!(versions.contains("you (this editor"), "{versions}");

    // A long log line wraps instead of scrolling the panel sideways.
    set_code(
        &page,
        "module.exports = function (ctx, cb) { console.log('x'.repeat(8000)); cb(null, { score: 1, accept: true }); };",
    )
    .await;
    click(&page, "[data-test=run]").await;
    text_when(&page, "[data-test=run-status]", "the logging run", |t| {
        t == "200"
    })
    .await;
    text_when(&page, "[data-test=logs]", "the long line", |t| {
        t.contains("xxxxxxxx")
    })
    .await;
    let sideways: bool = serde_json::from_value(
        page.execute(
            "const l = document.querySelector('[data-test=logs]'); return l.scrollWidth > l.clientWidth + 1;",
            vec![],
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert!(!sideways, "the log panel scrolls sideways");

    // Tabs, status line and inputs are labelled for assistive technology.
    let roles: Value = page
        .execute(
            "return [document.querySelectorAll('[role=tablist] [role=tab]').length,
                     document.querySelector('[data-test=status]').getAttribute('aria-live'),
                     Array.from(document.querySelectorAll('.xe input, .xe select')).filter(e => !e.getAttribute('aria-label') && !e.closest('label') && e.type !== 'hidden' && !e.closest('.monaco-editor')).map(e => e.outerHTML.slice(0, 120))];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(roles, json!([5, "polite", []]));

    // A changed fragment opens that extension.
    page.execute("location.hash = '#/later/';", vec![])
        .await
        .unwrap();
    text_when(
        &page,
        "[data-test=status]",
        "the fragment opens later",
        |t| t.contains("Opened the draft of later"),
    )
    .await;

    // At 800 x 600 every tab can be clicked (the runner covered two).
    page.set_window_size(800, 600).await.unwrap();
    let covered: Value = page
        .execute(
            "return Array.from(document.querySelectorAll('[role=tab]')).filter(t => {
                const r = t.getBoundingClientRect();
                return document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2) !== t;
             }).map(t => t.textContent);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(covered, json!([]), "tabs hidden at 800 x 600");
    click(&page, "[data-tab=replay]").await;
    shot(&page, 25, "small-window").await;
    page.close().await.unwrap();
}

/// An extension in the platform's own language (the CRM's Mustache), as a
/// tenant writes it in the browser: the starter is a template, the code pane
/// is in the language's syntax mode with no TypeScript check, a mistake is
/// the compiler's error naming the template's line, and the deployed
/// template answers the platform's typed call.
/// Opens `container`'s editor with `token` and creates the extension `name`
/// for `point` from the new-extension form, waiting for its starter.
async fn open_new(
    page: &Client,
    base: &str,
    container: &str,
    token: &str,
    point: &str,
    name: &str,
) {
    page.goto(&format!("{base}/edit/{container}#//{token}"))
        .await
        .unwrap();
    text_when(page, "[data-test=dialog]", "the new-extension form", |t| {
        t.contains("New extension for")
    })
    .await;
    page.find(Locator::Css("[data-test=new-point]"))
        .await
        .unwrap()
        .select_by_value(point)
        .await
        .unwrap();
    fill(page, "[data-test=new-name]", name).await;
    click(page, "[data-test=create]").await;
    text_when(page, "[data-test=status]", "the starter opens", |t| {
        t.contains(&format!("New extension {name}"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mustache_template_is_written_run_and_deployed_in_the_browser() {
    let Some(driver) = start_driver() else {
        return;
    };
    let (host, extend, token) = platform("gamma").await;
    let page = browser(&driver).await;
    open_new(&page, host.url(), "gamma", &token, "format-email", "email").await;
    text_when(&page, "[data-test=problems]", "no TypeScript check", |t| {
        t.contains("Written in mustache: no type check here")
    })
    .await;
    let pane: Value = page
        .execute(
            "const m = window.__extendEditor.code.getModel(); return [m.getLanguageId(), m.getValue()];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(pane[0], "handlebars", "{pane}");
    assert!(
        pane[1].as_str().unwrap().contains("Hello {{name}}"),
        "the language's starter: {pane}"
    );

    // A mistake: the compiler's error, with the template's line.
    set_code(&page, "Dear {{name}},\n{{#company}}of {{company}}\n").await;
    fill(
        &page,
        "[data-test=run-body]",
        r#"{"name": "Ada", "email": "ada@example.com", "company": "Analytical Engines"}"#,
    )
    .await;
    click(&page, "[data-test=run]").await;
    let error = text_when(
        &page,
        "[data-test=run-response]",
        "the compile error",
        |t| t.contains("never closed"),
    )
    .await;
    assert!(
        error.contains("line 2: section `company` is never closed"),
        "{error}"
    );

    set_code(
        &page,
        "Dear {{name}},{{#company}} of {{company}}{{/company}}",
    )
    .await;
    click(&page, "[data-test=run]").await;
    let answer = text_when(
        &page,
        "[data-test=run-response]",
        "the rendered text",
        |t| t.contains("Dear Ada"),
    )
    .await;
    assert!(
        answer.contains("Dear Ada, of Analytical Engines"),
        "{answer}"
    );
    shot(&page, 30, "mustache-run").await;
    click(&page, "[data-test=deploy]").await;
    text_when(&page, "[data-test=status]", "the deploy", |t| {
        t.contains("Deployed email")
    })
    .await;
    let text = extend_hooks_examples::format_email(
        &extend.container("gamma"),
        &NewLead {
            name: "Bob".into(),
            email: "bob@example.com".into(),
            company: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(text, "Dear Bob,");
    page.close().await.unwrap();
    host.shutdown().await.unwrap();
}

/// A service on loopback that answers every request with one JSON body
/// (one request per connection).
async fn json_service(body: &'static str) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_lists_the_requests_a_draft_made() {
    let Some(driver) = start_driver() else {
        return;
    };
    let service = json_service(r#"{"industry":"computing","employees":12}"#).await;
    let egress = extend_host::EgressPolicy::default()
        .allow(&service.to_string())
        .unwrap();
    let (host, _extend, token) =
        platform_on("delta", Host::builder().memory().egress(egress)).await;
    let page = browser(&driver).await;
    open_new(
        &page,
        host.url(),
        "delta",
        &token,
        "enrich-lead",
        "enricher",
    )
    .await;
    set_code(
        &page,
        &format!(
            "module.exports = async (ctx) => {{\n  const r = await fetch('http://{service}/companies?name=' + encodeURIComponent(ctx.body.company));\n  let refused = '';\n  try {{ await fetch('http://169.254.169.254/latest/meta-data/'); }} catch (e) {{ refused = e.message; }}\n  const c = await r.json();\n  return {{ industry: c.industry, employees: c.employees }};\n}};\n"
        ),
    )
    .await;
    fill(
        &page,
        "[data-test=run-body]",
        r#"{"name": "Ada", "email": "ada@example.com", "company": "Analytical Engines"}"#,
    )
    .await;
    click(&page, "[data-test=run]").await;
    let answer = text_when(&page, "[data-test=run-response]", "the answer", |t| {
        t.contains("computing")
    })
    .await;
    assert!(answer.contains("\"employees\": 12"), "{answer}");
    let listed = text_when(
        &page,
        "[data-test=run-subrequests]",
        "the requests the run made",
        |t| t.contains("169.254.169.254"),
    )
    .await;
    assert!(
        listed.contains(&format!(
            "GET http://{service}/companies?name=Analytical%20Engines 200"
        )),
        "{listed}"
    );
    assert!(
        listed.contains("egress refused: 169.254.169.254 is link-local"),
        "{listed}"
    );
    shot(&page, 40, "runner-subrequests").await;
    page.close().await.unwrap();
    host.shutdown().await.unwrap();
}
