//! The `extend-host` binary's commands for operators: limits on `serve`,
//! key fingerprints, and the master token read back from where it is kept.

mod common;

use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(common::WORKER)
        .args(args)
        .env_remove("EXTEND_DATABASE_URL")
        .env_remove("EXTEND_KEY")
        .env_remove("EXTEND_LIMITS")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A temporary directory of this test process, removed when dropped.
struct Dir(std::path::PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("extend-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn new_key_prints_the_fingerprint_that_key_fingerprint_reads_back() {
    let dir = Dir::new("key");
    let file = dir.0.join("kek");
    let (ok, out, err) = run(&["new-key", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    let printed = out
        .split("(fingerprint ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("no fingerprint in: {out}"))
        .to_owned();
    assert_eq!(printed.len(), 8, "{out}");
    let (ok, out, err) = run(&["key-fingerprint", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), printed);
    let (ok, _, err) = run(&["key-fingerprint", dir.0.join("none").to_str().unwrap()]);
    assert!(!ok && err.contains("none"), "{err}");
}

#[test]
fn bad_limits_on_serve_are_named_before_anything_starts() {
    let (ok, _, err) = run(&["serve", "--memory", "--limit", "run_tme=5s"]);
    assert!(!ok);
    assert!(
        err.contains("`run_tme` is not a limit") && err.contains("run_time"),
        "{err}"
    );
    let (ok, _, err) = run(&["serve", "--memory", "--limit", "run_time"]);
    assert!(!ok && err.contains("`run_time` is not NAME=VALUE"), "{err}");
    let (ok, _, err) = run(&["serve", "--memory", "--limit", "code_size=lots"]);
    assert!(!ok && err.contains("limit `code_size`"), "{err}");
    // The same from the environment, comma separated.
    let out = Command::new(common::WORKER)
        .args(["serve", "--memory"])
        .env("EXTEND_LIMITS", "run_time=5s,run_tme=5s")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`run_tme` is not a limit"));
    // A bad egress allowance is named too, from the flag or the environment.
    let (ok, _, err) = run(&["serve", "--memory", "--allow-egress", "::1"]);
    assert!(
        !ok && err.contains("--allow-egress: `::1` is not HOST or HOST:PORT"),
        "{err}"
    );
    let out = Command::new(common::WORKER)
        .args(["serve", "--memory"])
        .env("EXTEND_ALLOW_EGRESS", "api.example.com,bad host:80")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`bad host:80` is not HOST or HOST:PORT"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A served host, stopped when dropped.
struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `extend-host serve` with `args`; the child, its URL and master token.
fn serve(args: &[&str], env: &[(&str, &str)]) -> (Served, String, String) {
    let child = Command::new(common::WORKER)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Served(child);
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut master = String::new();
    loop {
        let line = lines.next().expect("the host printed its address").unwrap();
        if line.starts_with("master token") {
            master = lines.next().unwrap().unwrap();
        } else if let Some(url) = line.strip_prefix("extend-host listening on ") {
            return (child, url.to_owned(), master);
        }
    }
}

#[tokio::test]
async fn limits_given_to_serve_are_enforced_and_the_master_token_is_read_back() {
    let dir = Dir::new("serve");
    let data = dir.0.join("data");
    let (_served, url, master) = serve(
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--limit",
            "webtasks_per_container=1",
            "--limit",
            "meta_size=10",
        ],
        &[],
    );
    let http = common::http();
    let put = |name: &str, meta: serde_json::Value| {
        http.put(format!("{url}/api/webtask/acme/{name}"))
            .bearer_auth(&master)
            .json(&json!({ "code": "module.exports = cb => cb(null, 1)", "meta": meta }))
            .send()
    };
    assert_eq!(put("one", json!({})).await.unwrap().status(), 200);
    let r = put("two", json!({})).await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("already has 1 webtasks"));
    let r = put("one", json!({"key": "a long value"})).await.unwrap();
    assert_eq!(r.status(), 400, "the second limit holds too");
    assert!(r.text().await.unwrap().contains("the limit is 10 bytes"));
    let (ok, out, err) = run(&["master-token", "--data-dir", data.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), master);
}

#[tokio::test]
async fn the_master_token_of_a_shared_database_is_printed_from_it_with_its_key() {
    if !common::postgres_enabled() {
        return;
    }
    let db = common::TestDb::create().await;
    let dir = Dir::new("pg");
    let key = dir.0.join("kek");
    assert!(run(&["new-key", key.to_str().unwrap()]).0);
    // Before any node started on the database, there is none to print.
    let out = Command::new(common::WORKER)
        .args(["master-token", "--key-file", key.to_str().unwrap()])
        .env("EXTEND_DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("start a node on it first"));
    let (_served, _, master) = serve(
        &["--key-file", key.to_str().unwrap()],
        &[("EXTEND_DATABASE_URL", &db.url)],
    );
    assert!(!master.is_empty(), "the first node printed it");
    let out = Command::new(common::WORKER)
        .args(["master-token", "--key-file", key.to_str().unwrap()])
        .env("EXTEND_DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), master);
    // Another key does not open it, and the error names both fingerprints.
    let other = dir.0.join("other");
    assert!(run(&["new-key", other.to_str().unwrap()]).0);
    let out = Command::new(common::WORKER)
        .args(["master-token", "--key-file", other.to_str().unwrap()])
        .env("EXTEND_DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sealed with the key-encryption key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
