//! Compatibility with the real client: the npm `wt-cli@11.0.2` drives our host
//! on loopback. The client is installed once into `target/wt-cli` (npm must be
//! on PATH; `.ci/run` installs it the same way before the tests).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const WT_CLI: &str = "wt-cli@11.0.2";

/// The `wt` executable, installing it first when the cache lacks it.
fn wt_bin() -> PathBuf {
    common::npm::tool(env!("CARGO_MANIFEST_DIR"), "wt-cli", WT_CLI, "wt")
}

struct Wt {
    bin: PathBuf,
    home: PathBuf,
}

impl Wt {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env("HOME", &self.home)
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .env("NO_COLOR", "1");
        c
    }

    /// Runs `wt args…`; returns (success, stdout + stderr).
    fn run(&self, args: &[&str]) -> (bool, String) {
        let out = self.cmd(args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, text) = self.run(args);
        assert!(ok, "wt {args:?} failed:\n{text}");
        text
    }
}

#[test]
fn wt_cli_manages_and_runs_webtasks_on_our_host() {
    wt_cli_scenario(common::Backend::Sqlite);
}

/// The same on PostgreSQL, with a second node: `wt logs` follows node A
/// while the run goes to node B.
#[test]
fn wt_cli_manages_and_runs_webtasks_on_two_nodes_on_postgres() {
    wt_cli_scenario(common::Backend::Postgres);
}

fn wt_cli_scenario(backend: common::Backend) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(env) = rt.block_on(common::start_on(backend, extend_host::Limits::default())) else {
        return;
    };
    let other = env
        .db
        .as_ref()
        .map(|db| rt.block_on(common::node_on(db, extend_host::Limits::default())));
    let host = &env.host;
    let url = host.url().to_owned();
    let home = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("wt-home-{}-{backend:?}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    let wt = Wt {
        bin: wt_bin(),
        home: home.clone(),
    };
    let v1 = home.join("hello.js");
    std::fs::write(&v1, "module.exports = function (ctx, cb) { console.log('hello from ' + ctx.body.name); cb(null, { hi: ctx.body.name, foo: ctx.secrets.foo }); };\n").unwrap();
    let v2 = home.join("hello2.js");
    std::fs::write(&v2, "module.exports = function (ctx, cb) { console.log('v2 greets ' + ctx.body.name); cb(null, { v: 2, foo: ctx.secrets.foo }); };\n").unwrap();

    wt.ok(&[
        "init",
        "--url",
        &url,
        "--token",
        host.master_token(),
        "--container",
        "acme",
        "-p",
        "master",
    ]);

    let created = wt.ok(&[
        "create",
        v1.to_str().unwrap(),
        "-p",
        "master",
        "--name",
        "hello",
        "--secret",
        "foo=bar",
        "--secret",
        "auth0-extension-secret=run-1",
        "--meta",
        "auth0-extension-type=on-new-lead",
    ]);
    let run_url = host.webtask_url("acme", "hello");
    // Where the logged run goes: the other node, when there is one.
    let runner = other.as_ref().map_or(host, |o| &o.host);
    assert!(
        created.contains("Webtask created") && created.contains(&run_url),
        "{created}"
    );

    let ls = wt.ok(&["ls", "-p", "master"]);
    assert!(
        ls.contains("Name:        hello")
            && ls.contains("Successfully listed named webtasks 1 to 1"),
        "{ls}"
    );
    let filtered = wt.ok(&[
        "ls",
        "-p",
        "master",
        "--meta",
        "auth0-extension-type=on-new-lead",
        "-o",
        "json",
    ]);
    let items: serde_json::Value = serde_json::from_str(&filtered).unwrap();
    assert_eq!(items[0]["name"], "hello");
    assert_eq!(items[0]["meta"]["auth0-extension-type"], "on-new-lead");
    let none = wt.ok(&[
        "ls",
        "-p",
        "master",
        "--meta",
        "auth0-extension-type=other",
        "-o",
        "json",
    ]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&none).unwrap(),
        serde_json::json!([])
    );

    let inspect = wt.ok(&[
        "inspect",
        "hello",
        "-p",
        "master",
        "--decrypt",
        "--fetch-code",
    ]);
    assert!(
        inspect.contains("Token.ectx:  { 'auth0-extension-secret': 'run-1', foo: 'bar' }"),
        "{inspect}"
    );
    assert!(
        inspect.contains("Meta.auth0-extension-type: on-new-lead"),
        "{inspect}"
    );
    assert!(inspect.contains("console.log('hello from '"), "{inspect}");

    let updated = wt.ok(&["update", "hello", v2.to_str().unwrap(), "-p", "master"]);
    assert!(updated.contains("Webtask updated"), "{updated}");
    let after = wt.ok(&["inspect", "hello", "-p", "master", "--decrypt"]);
    assert!(
        after.contains("Token.ectx:  { 'auth0-extension-secret': 'run-1', foo: 'bar' }")
            && after.contains("Meta.auth0-extension-type: on-new-lead"),
        "meta and secrets survive: {after}"
    );

    // Run the URL wt printed, with `wt logs` attached.
    let mut logs = wt
        .cmd(&["logs", "-p", "master"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = BufReader::new(logs.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |needle: &str| loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("wt logs never printed `{needle}`"));
        if line.contains(needle) {
            break line;
        }
    };
    wait_for("connected to streaming logs");
    // wt-cli prints that once it has a socket, before the host has the request:
    // wait until the host has the subscription (a condition, polled).
    let subscribed = std::time::Instant::now();
    while host.log_subscribers("acme") == 0 {
        assert!(
            subscribed.elapsed() < Duration::from_secs(30),
            "wt logs never subscribed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let body: serde_json::Value = rt.block_on(async {
        let r = common::http()
            .post(runner.webtask_url("acme", "hello"))
            .bearer_auth("run-1")
            .json(&serde_json::json!({"name": "bob"}))
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    });
    assert_eq!(body, serde_json::json!({"v": 2, "foo": "bar"}));
    wait_for("v2 greets bob");
    logs.kill().unwrap();
    logs.wait().unwrap();

    let token = wt.ok(&["token", "create", "-p", "master", "--ten", "acme"]);
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    let removed = wt.ok(&["rm", "hello", "-p", "master"]);
    assert!(removed.contains("Removed webtask: hello"), "{removed}");
    let (ok, again) = wt.run(&["rm", "hello", "-p", "master"]);
    assert!(!ok && again.contains("No such webtask: hello"), "{again}");

    // A profile on a tenant token is refused on another container.
    wt.ok(&[
        "init",
        "--url",
        &url,
        "--token",
        token,
        "--container",
        "acme",
        "-p",
        "tenant",
    ]);
    wt.ok(&["ls", "-p", "tenant"]);

    // `wt edit` opens our editor: the token in the fragment, never sent.
    // (BROWSER=true: the browser it would start is `true`, which does nothing.)
    for (args, fragment) in [
        (
            &["edit", "score", "-p", "tenant"][..],
            format!("#/score/{token}"),
        ),
        (&["edit", "-p", "tenant"][..], format!("#/{token}")),
    ] {
        let out = wt.cmd(args).env("BROWSER", "true").output().unwrap();
        let printed = String::from_utf8_lossy(&out.stdout);
        let editor_url = format!("{url}/edit/acme{fragment}");
        assert!(
            out.status.success() && printed.contains(&editor_url),
            "wt {args:?}:\n{printed}"
        );
    }
    let page = rt.block_on(async {
        let res = reqwest::get(format!("{url}/edit/acme")).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["referrer-policy"], "no-referrer");
        res.text().await.unwrap()
    });
    assert!(page.contains("ExtendEditor.show"), "{page}");

    let (ok, refused) = wt.run(&["ls", "-p", "tenant", "--container", "globex"]);
    assert!(
        !ok && refused.contains("not authorized to perform operation on tenant `globex`"),
        "{refused}"
    );

    drop(other);
    rt.block_on(env.host.shutdown()).unwrap();
    std::fs::remove_dir_all(home).unwrap();
}

/// `wt create --meta wt-compiler=mustache`: a webtask in a language the
/// platform published with its catalog (the CRM's Mustache compiler) runs
/// as that language; a template that does not compile answers the
/// compiler's error with its line.
#[test]
fn wt_cli_creates_webtasks_in_a_platform_language() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = rt.block_on(common::start());
    let host = &env.host;
    let compiler = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/crm/languages/mustache.js"
    ))
    .unwrap();
    let catalog = serde_json::json!({
        "points": [{"name": "format-email", "mode": "sync", "language": "mustache"}],
        "languages": {"mustache": {"compiler": compiler}},
    });
    let r = rt
        .block_on(
            env.http
                .put(env.url("/api/catalog"))
                .bearer_auth(env.master())
                .json(&catalog)
                .send(),
        )
        .unwrap();
    assert_eq!(r.status(), 200);

    let home = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("wt-home-{}-language", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    let wt = Wt {
        bin: wt_bin(),
        home: home.clone(),
    };
    wt.ok(&[
        "init",
        "--url",
        host.url(),
        "--token",
        env.master(),
        "--container",
        "acme",
        "-p",
        "master",
    ]);
    let hi = home.join("hi.mustache");
    std::fs::write(&hi, "Hi {{who}}!").unwrap();
    let bad = home.join("bad.mustache");
    std::fs::write(&bad, "one\n{{#who}}two\n").unwrap();
    for (file, name) in [(&hi, "hi"), (&bad, "bad")] {
        let created = wt.ok(&[
            "create",
            file.to_str().unwrap(),
            "-p",
            "master",
            "--name",
            name,
            "--meta",
            "wt-compiler=mustache",
        ]);
        assert!(created.contains("Webtask created"), "{created}");
    }
    let run = |name: &str| {
        rt.block_on(async {
            let r = env
                .http
                .post(env.url(&format!("/api/run/acme/{name}")))
                .json(&serde_json::json!({"who": "wt"}))
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        })
    };
    assert_eq!(run("hi"), (200, serde_json::json!("Hi wt!")));
    let (status, error) = run("bad");
    assert_eq!(status, 400, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("line 2: section `who` is never closed"),
        "{error}"
    );
    rt.block_on(env.host.shutdown()).unwrap();
}
