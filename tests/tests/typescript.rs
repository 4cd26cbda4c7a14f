//! The generated TypeScript, checked by the real `tsc` (npm `typescript`,
//! installed into `target/typescript` on first run, as CI does): every
//! point's starter template and a correct hand-written extension type-check;
//! an extension that returns a wrong field type fails, naming the field.
//! Covers every serde enum representation, nested tagged enums, maps of JSON
//! values, tuples, `Option`, and the CRM's points.

#[path = "../../extend-host/tests/common/npm.rs"]
#[allow(unreachable_pub)]
mod npm;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use extend_hooks::{Catalog, Container, extension_point};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

const TYPESCRIPT: &str = "typescript@5.6.3";

/// Unit variants: a string enum.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
enum Stage {
    New,
    InProgress,
    Won,
}

/// Externally tagged (serde's default).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
enum External {
    Note(String),
    Call { minutes: u32 },
    Nothing,
}

/// Internally tagged, nesting an adjacently tagged enum.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Event {
    Created { id: u64, stage: Stage },
    Moved { id: u64, action: Action },
}

/// Adjacently tagged.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "t", content = "c")]
enum Action {
    Assign(String),
    Reschedule { days: i32 },
}

/// Untagged.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
enum Amount {
    Cents(u64),
    Text(String),
}

/// Everything at once.
#[derive(Debug, Serialize, JsonSchema)]
struct Everything {
    /// The events, oldest first.
    events: Vec<Event>,
    /// A tuple.
    pair: (String, u8),
    /// Free-form JSON by key.
    attributes: BTreeMap<String, serde_json::Value>,
    /// May be absent.
    note: Option<String>,
    /// May be absent, of a named type.
    external: Option<External>,
    amount: Amount,
    /// A percentage.
    #[schemars(range(min = 0, max = 100))]
    percent: u8,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[allow(dead_code)] // read by extensions' authors, through the generated types
struct Verdict {
    /// Accept or not.
    accept: bool,
    /// Why.
    reasons: Vec<String>,
    stage: Option<Stage>,
    next: Action,
}

/// Checks everything at once.
#[extension_point(name = "check-everything", timeout = "1s")]
async fn check_everything(tenant: &Container, all: &Everything) -> Verdict;

/// Hears about events.
#[extension_point(name = "on-event", mode = "async")]
fn on_event(tenant: &Container, event: &Event);

fn tsc() -> PathBuf {
    npm::tool(env!("CARGO_MANIFEST_DIR"), "typescript", TYPESCRIPT, "tsc")
}

/// Runs tsc over `files` in `dir`: success, and what it printed.
fn check(dir: &Path, files: &[&str]) -> (bool, String) {
    let out = Command::new(tsc())
        .args([
            "--noEmit",
            "--allowJs",
            "--checkJs",
            "--strict",
            "--target",
            "es2020",
            // As the editor checks: the sandbox's globals come from the
            // generated types, not the DOM.
            "--lib",
            "es2020",
            "--module",
            "commonjs",
            // With the code frame, which shows the offending field.
            "--pretty",
            "true",
        ])
        .args(files)
        .current_dir(dir)
        .output()
        .unwrap();
    let raw = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Without the colours of --pretty.
    let mut text = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            text.push(c);
        }
    }
    (out.status.success(), text)
}

fn catalog() -> Catalog {
    // The CRM's points are part of this binary's catalog.
    let _ = extend_hooks_examples::on_new_lead;
    Catalog::collect().unwrap()
}

fn workdir(name: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("ts-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("extend-types.d.ts"), catalog().to_typescript()).unwrap();
    dir
}

#[test]
fn every_template_type_checks_against_the_generated_types() {
    let dir = workdir("templates");
    let catalog = catalog();
    let mut files = vec!["extend-types.d.ts".to_owned()];
    // Points in another language (the CRM's Mustache) start from that
    // language's starter, which is not JavaScript.
    for p in catalog.iter().filter(|p| p.language().is_none()) {
        let file = format!("{}.js", p.name());
        std::fs::write(dir.join(&file), catalog.template(p.name()).unwrap()).unwrap();
        files.push(file);
    }
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let (ok, text) = check(&dir, &files);
    assert!(
        ok,
        "tsc refused the generated files:\n{text}\n--- types:\n{}",
        catalog.to_typescript()
    );
    let template = catalog.template("on-new-lead").unwrap();
    assert!(
        template.contains("@type {import('./extend-types').OnNewLead.CallbackHandler}"),
        "{template}"
    );
    assert!(
        template.contains("ctx.body.email: string — Where to reach them."),
        "{template}"
    );
    assert!(
        catalog
            .template("lead-archived")
            .unwrap()
            .contains("cb(); // async points")
    );
    assert_eq!(catalog.template("no-such-point"), None);
}

#[test]
fn a_correct_extension_checks_and_a_wrong_field_type_is_named() {
    let dir = workdir("hand-written");
    std::fs::write(
        dir.join("good.js"),
        "// @ts-check\n/** @type {import('./extend-types').CheckEverything.CallbackHandler} */\n\
         module.exports = function (ctx, cb) {\n\
           const first = ctx.body.events[0];\n\
           const moved = first && first.kind === 'moved' ? first.action : undefined;\n\
           const days = moved && moved.t === 'Reschedule' ? moved.c.days : 0;\n\
           const [label, n] = ctx.body.pair;\n\
           cb(null, { accept: days + n > 0 && label !== '', reasons: [String(ctx.body.attributes['x'])], stage: 'in-progress', next: { t: 'Assign', c: 'ada' } });\n\
         };\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("async.js"),
        "// @ts-check\n/** @type {import('./extend-types').OnNewLead.AsyncHandler} */\n\
         module.exports = async function (ctx) {\n\
           return { score: ctx.body.email.length, accept: true };\n\
         };\n",
    )
    .unwrap();
    let (ok, text) = check(&dir, &["extend-types.d.ts", "good.js", "async.js"]);
    assert!(ok, "{text}");
    std::fs::write(
        dir.join("bad.js"),
        "// @ts-check\n/** @type {import('./extend-types').OnNewLead.CallbackHandler} */\n\
         module.exports = function (ctx, cb) {\n  cb(null, { score: 'high', accept: true });\n};\n",
    )
    .unwrap();
    let (ok, text) = check(&dir, &["extend-types.d.ts", "bad.js"]);
    assert!(!ok, "a string score type-checked:\n{text}");
    assert!(
        text.contains(
            "bad.js:4:14 - error TS2322: Type 'string' is not assignable to type 'number'."
        ) && text.contains("cb(null, { score: 'high', accept: true });\n               ~~~~~"),
        "{text}"
    );
}

/// The sandbox's globals (URL, TextEncoder, crypto.subtle, …) are declared by
/// the generated types and check with `--lib es2020`; a browser API the host
/// does not give (`document`, `localStorage`) is an error, as it would be at
/// run time.
#[test]
fn the_sandbox_globals_are_declared_and_nothing_else() {
    let dir = workdir("globals");
    std::fs::write(
        dir.join("webhook.js"),
        r#"// @ts-check
/** @type {import('./extend-types').OnNewLead.AsyncHandler} */
module.exports = async (ctx) => {
  const url = new URL('/v1/leads?x=1', 'https://api.example.com');
  url.searchParams.set('email', ctx.body.email);
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(ctx.secrets.KEY), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
  const sig = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(url.href));
  const ok = await crypto.subtle.verify('HMAC', key, sig, new TextEncoder().encode(url.href));
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', sig));
  const id = crypto.randomUUID() + btoa(String.fromCharCode(...digest)) + atob('aGk=');
  const copy = structuredClone({ id, ok, at: new Date() });
  console.log(copy.id, new TextDecoder().decode(new Uint8Array([104, 105])), crypto.getRandomValues(new Uint8Array(4)).length);
  const r = await fetch(new Request(url, { method: 'POST', headers: { authorization: 'Bearer ' + ctx.secrets.KEY }, body: JSON.stringify({ id }), signal: AbortSignal.timeout(500) }));
  const seen = new Headers(r.headers).get('x-seen');
  const parsed = r.ok ? await r.json() : { status: r.status, text: await r.text() };
  await new Promise((done) => setTimeout(done, 5));
  const c = new AbortController();
  const tick = setInterval(() => c.abort(), 10);
  clearInterval(tick);
  queueMicrotask(() => console.log(seen, parsed));
  return { score: ok ? 1 : 0, accept: copy.ok };
};
"#,
    )
    .unwrap();
    let (ok, text) = check(&dir, &["extend-types.d.ts", "webhook.js"]);
    assert!(
        ok,
        "tsc refused an extension using the sandbox's globals:\n{text}"
    );

    std::fs::write(
        dir.join("browser.js"),
        r#"// @ts-check
module.exports = async () => { document.title = 'x'; return localStorage.getItem('k'); };
"#,
    )
    .unwrap();
    let (ok, text) = check(&dir, &["extend-types.d.ts", "browser.js"]);
    assert!(!ok, "tsc accepted browser APIs the sandbox lacks");
    assert!(text.contains("Cannot find name 'document'"), "{text}");
    assert!(text.contains("Cannot find name 'localStorage'"), "{text}");
}
