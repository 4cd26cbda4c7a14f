//! Helpers the host benchmarks share: wrk runs and percentiles.
#![allow(dead_code, unreachable_pub)]

use std::process::Command;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub errors: u64,
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
    }
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
