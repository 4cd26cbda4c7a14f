//! Helpers the host benchmarks share: wrk runs, percentiles, resident memory
//! and the smoke switch.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

/// Whether this is a smoke round (`EXTEND_BENCH_SMOKE=1`, what CI runs):
/// every section runs once and briefly, to prove the bench still runs; its
/// figures mean nothing.
pub fn smoke() -> bool {
    std::env::var_os("EXTEND_BENCH_SMOKE").is_some_and(|v| v != "0")
}

/// `full`, or `small` in a smoke round.
pub fn scaled<T>(full: T, small: T) -> T {
    if smoke() { small } else { full }
}

#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub errors: u64,
    /// Requests completed.
    pub requests: u64,
}

fn parse_latency(s: &str) -> f64 {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_alphabetic()).unwrap());
    let n: f64 = num.parse().unwrap();
    match unit {
        "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        other => panic!("unknown wrk unit {other}"),
    }
}

/// Runs wrk against `url` (POST `{"x":21}`) and parses its report.
pub fn wrk(url: &str, conns: u32, secs: u32, script: &std::path::Path) -> Load {
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{conns}"),
            &format!("-d{secs}s"),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(url)
        .output()
        .expect("wrk is needed: apt-get install wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_owned()))
    };
    let rps = field("Requests/sec:")
        .unwrap_or_else(|| panic!("wrk output:\n{text}"))
        .parse()
        .unwrap();
    let p50 = parse_latency(&field("50%").unwrap());
    let p99 = parse_latency(&field("99%").unwrap());
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in"))
        .map_or(0, |(n, _)| n.trim().parse().unwrap_or(0));
    let non2xx = field("Non-2xx or 3xx responses:").map_or(0, |v| v.parse().unwrap());
    let sock = text
        .lines()
        .find(|l| l.contains("Socket errors"))
        .map_or(0, |l| {
            l.split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse::<u64>().ok())
                .sum()
        });
    Load {
        rps,
        p50_us: p50,
        p99_us: p99,
        errors: non2xx + sock,
        requests,
    }
}

/// CPU time this process's threads have used, in nanoseconds by thread
/// name, from Linux's `/proc/self/task/*/schedstat`; empty elsewhere.
pub fn thread_cpu() -> HashMap<String, u64> {
    let mut by_name = HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_name;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let (Ok(name), Ok(stat)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("schedstat")),
        ) else {
            continue;
        };
        let ns: u64 = stat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        *by_name.entry(name.trim().to_owned()).or_insert(0) += ns;
    }
    by_name
}

/// Runs wrk like [`wrk`] and measures the CPU this process's threads used
/// per request meanwhile, in µs by thread name (threads that used none
/// are left out).
pub fn wrk_cpu(
    url: &str,
    conns: u32,
    secs: u32,
    script: &std::path::Path,
) -> (Load, Vec<(String, f64)>) {
    let before = thread_cpu();
    let load = wrk(url, conns, secs, script);
    let after = thread_cpu();
    let mut per_request: Vec<(String, f64)> = after
        .into_iter()
        .filter_map(|(name, ns)| {
            let used = ns.saturating_sub(before.get(&name).copied().unwrap_or(0));
            (used > 0 && load.requests > 0)
                .then(|| (name, used as f64 / 1e3 / load.requests as f64))
        })
        .collect();
    per_request.sort_by(|a, b| b.1.total_cmp(&a.1));
    (load, per_request)
}

pub fn median(mut v: Vec<Load>) -> Load {
    v.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    v[v.len() / 2]
}

/// The `p` quantile (0 to 1) of `v`, in µs.
pub fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    v[((v.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e6
}

fn rss_of(pid: &str) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .map_or(0, |v| {
            v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0)
        })
}

/// RSS of this process and its children (the worker processes), in KiB.
pub fn rss_kib() -> u64 {
    let (own, workers) = rss_split();
    own + workers
}

/// RSS of this process, and of its children together, in KiB.
pub fn rss_split() -> (u64, u64) {
    let mut workers = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for pid in children.split_whitespace() {
            workers += rss_of(pid);
        }
    }
    (rss_of("self"), workers)
}

/// The `workerd` program (Cloudflare's Workers runtime, from the npm package
/// `workerd`): `EXTEND_BENCH_WORKERD`, else `target/workerd` where `.ci/run`
/// installs it, else the PATH. `None` when it is not installed.
pub fn workerd_program() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("EXTEND_BENCH_WORKERD") {
        return Some(p.into());
    }
    let local = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/workerd/node_modules/.bin/workerd");
    if local.exists() {
        return Some(local);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("workerd"))
            .find(|p| p.exists())
    })
}

/// A workerd process serving one ES-module worker (`script`), with text
/// bindings, on a loopback port; killed when dropped.
pub struct Workerd {
    child: std::process::Child,
    /// `http://127.0.0.1:port/`.
    pub url: String,
    _dir: std::path::PathBuf,
}

impl Drop for Workerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

impl Workerd {
    /// Starts `program` serving `script`; loopback egress allowed (the
    /// benches' upstreams are local). Waits until it accepts connections.
    pub fn start(program: &std::path::Path, script: &str, bindings: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "extend-bench-workerd-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("worker.js"), script).unwrap();
        // A free port: bound and let go (workerd takes a fixed address).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let bindings: Vec<String> = bindings
            .iter()
            .map(|(k, v)| format!("(name = \"{k}\", text = \"{v}\")"))
            .collect();
        let config = format!(
            r#"using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .mainWorker),
    (name = "internet", network = (allow = ["public", "local"])),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:{port}", http = (), service = "main") ],
);
const mainWorker :Workerd.Worker = (
  modules = [ (name = "worker", esModule = embed "worker.js") ],
  compatibilityDate = "2024-09-23",
  bindings = [ {} ],
  globalOutbound = "internet",
);
"#,
            bindings.join(", ")
        );
        std::fs::write(dir.join("config.capnp"), config).unwrap();
        let child = Command::new(program)
            .arg("serve")
            .arg(dir.join("config.capnp"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("workerd starts");
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < until, "workerd did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Workerd {
            child,
            url: format!("http://127.0.0.1:{port}/"),
            _dir: dir,
        }
    }
}

/// Stores `code` as webtask `container/name` on `host` (master token).
pub async fn put(
    http: &reqwest::Client,
    host: &extend_host::Host,
    container: &str,
    name: &str,
    code: &str,
) {
    let r = http
        .put(format!("{}/api/webtask/{container}/{name}", host.url()))
        .bearer_auth(host.master_token())
        .json(&serde_json::json!({ "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

/// A child process killed (and reaped) when dropped, so that a bench that
/// panics leaves no server behind.
pub struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Node peer (`node-vm-server.js`) running the extension in
/// `code_file`, and its URL; the child is killed when the guard is dropped,
/// and exits by itself when this process dies otherwise (a signal): it
/// watches its stdin, a pipe whose only writer is the guard's `Child`.
pub fn node_vm_server(code_file: &std::path::Path) -> (KillOnDrop, String) {
    use std::io::BufRead as _;
    let mut node = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/node-vm-server.js"
        ))
        .arg(code_file)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node is needed");
    let mut line = String::new();
    std::io::BufReader::new(node.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = format!(
        "http://127.0.0.1:{}/",
        line.trim().strip_prefix("listening on ").unwrap()
    );
    (KillOnDrop(node), url)
}
