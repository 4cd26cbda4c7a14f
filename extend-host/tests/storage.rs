//! Durable state: the binary on a data directory, `kill -9`, keys and secrets at rest.

mod common;

use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

struct Served {
    child: Child,
    url: String,
    stdout: Vec<String>,
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `extend-host serve` on a free port and reads stdout up to the "listening" line.
#[allow(clippy::zombie_processes)] // `Served` kills and waits for it when dropped
fn serve(data: &Path) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_extend-host"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = Vec::new();
    loop {
        let line = lines.next().expect("the host prints its address").unwrap();
        if let Some(url) = line.strip_prefix("extend-host listening on ") {
            return Served {
                child,
                url: url.to_owned(),
                stdout,
            };
        }
        stdout.push(line);
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9_and_secrets_are_encrypted_at_rest() {
    let dir = temp_dir("kill9");
    let mut first = serve(&dir);
    assert_eq!(
        first.stdout[0],
        format!(
            "master token (shown once; also in {}, readable only by you):",
            dir.join("master-token").display()
        )
    );
    let master = first.stdout[1].clone();
    assert_eq!(
        std::fs::read_to_string(dir.join("master-token")).unwrap(),
        master
    );
    #[cfg(unix)]
    for file in ["master-token", "keys.json"] {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join(file))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{file} is readable only by the owner");
    }
    let http = common::http();
    let secret = "sk_live_4b1d6a1f9e2c";
    let r = http
        .put(format!("{}/api/webtask/acme/scorer", first.url))
        .bearer_auth(&master)
        .json(&json!({"code": "module.exports = (ctx, cb) => cb(null, ctx.secrets.key.length)", "secrets": {"key": secret, "auth0-extension-secret": "run-1"},
                      "meta": {"auth0-extension-type": "on-new-lead"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700, "the data directory is the owner's only");
        for file in ["extend.db", "extend.db-wal", "extend.db-shm"] {
            assert_eq!(
                mode(&dir.join(file)),
                0o600,
                "{file} is readable only by the owner"
            );
        }
    }
    first.child.kill().unwrap(); // SIGKILL: no shutdown, no checkpoint
    first.child.wait().unwrap();
    drop(first);

    let mut raw = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("extend.db")
        {
            raw.extend(std::fs::read(path).unwrap());
        }
    }
    assert!(
        raw.windows(6).any(|w| w == b"scorer"),
        "the webtask is in the database files"
    );
    assert!(
        !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "no secret in the clear"
    );

    let second = serve(&dir);
    assert!(
        second.stdout.is_empty(),
        "the master token is printed once only: {:?}",
        second.stdout
    );
    let v: serde_json::Value = http
        .post(format!("{}/api/run/acme/scorer", second.url))
        .bearer_auth("run-1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!(secret.len()));
    drop(second);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_damaged_key_file_is_refused_with_its_path() {
    let dir = temp_dir("badkeys");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("keys.json"), "{}").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_extend-host"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("keys.json is not usable: `kid` is missing"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
