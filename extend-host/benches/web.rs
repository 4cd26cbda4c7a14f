//! The web platform basics inside an extension, against the same work done
//! natively in this process (`cargo bench -p extend-host --bench web`):
//! HMAC-SHA256 and SHA-256 of 1 KiB, and `TextEncoder.encode` of 1 KiB of
//! text, each timed inside a real worker process over many calls. The goal
//! of the HMAC figure is at most 5 µs per call (it signs webhooks).

mod support;

use extend_host::Host;
use hmac::Mac as _;
use serde_json::json;
use std::time::Instant;
use support::scaled;

const WORKER: &str = env!("CARGO_BIN_EXE_extend-host");

/// Times `n` calls of each operation inside the sandbox, after a warm-up;
/// answers milliseconds per operation name.
const CODE: &str = r#"module.exports = async (ctx) => {
  const n = ctx.body.n;
  const data = new Uint8Array(1024).fill(7);
  const text = 'x'.repeat(1000) + 'é😀ab';
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode('whsec_key'), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const time = async (f) => {
    for (let i = 0; i < 100; i++) await f();
    const t = Date.now();
    for (let i = 0; i < n; i++) await f();
    return Date.now() - t;
  };
  const enc = new TextEncoder();
  return {
    hmac: await time(() => crypto.subtle.sign('HMAC', key, data)),
    digest: await time(() => crypto.subtle.digest('SHA-256', data)),
    encode: await time(() => enc.encode(text)),
    empty: await time(() => undefined),
  };
};"#;

fn main() {
    // reqwest is built without a provider in a workspace build (see extend-hooks).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let n: u64 = scaled(20_000, 200);
    let inside = rt.block_on(async {
        let host = Host::builder()
            .memory()
            .worker_program(WORKER)
            .start()
            .await
            .unwrap();
        let http = reqwest::Client::new();
        let r = http
            .put(format!("{}/api/webtask/acme/web", host.url()))
            .bearer_auth(host.master_token())
            .json(&json!({ "code": CODE }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = http
            .post(format!("{}/api/run/acme/web", host.url()))
            .json(&json!({ "n": n }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        host.shutdown().await.unwrap();
        v
    });
    let per_call_us = |k: &str| inside[k].as_f64().unwrap() * 1000.0 / n as f64;

    // The same work natively, in this run.
    let data = [7u8; 1024];
    let native_n = n * 10;
    let t = Instant::now();
    for _ in 0..native_n {
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"whsec_key").unwrap();
        m.update(std::hint::black_box(&data));
        std::hint::black_box(m.finalize());
    }
    let native_hmac = t.elapsed().as_secs_f64() * 1e6 / native_n as f64;
    let t = Instant::now();
    for _ in 0..native_n {
        use sha2::Digest as _;
        std::hint::black_box(sha2::Sha256::digest(std::hint::black_box(&data)));
    }
    let native_digest = t.elapsed().as_secs_f64() * 1e6 / native_n as f64;

    println!(
        "# web platform basics inside an extension: {n} calls each, timed with Date.now() in the worker{}",
        if support::smoke() {
            " (smoke round: the figures mean nothing)"
        } else {
            ""
        }
    );
    let (hmac, digest) = (per_call_us("hmac"), per_call_us("digest"));
    println!(
        "HMAC-SHA256 of 1 KiB (crypto.subtle.sign, awaited): {hmac:.2} µs per call; native Rust {native_hmac:.2} µs; ratio {:.1}; goal <= 5 µs: {}",
        hmac / native_hmac,
        if hmac <= 5.0 { "met" } else { "NOT met" }
    );
    println!(
        "SHA-256 of 1 KiB (crypto.subtle.digest, awaited): {digest:.2} µs per call; native Rust {native_digest:.2} µs; ratio {:.1}",
        digest / native_digest
    );
    println!(
        "TextEncoder.encode of 1 KiB: {:.2} µs per call; an awaited no-op: {:.2} µs",
        per_call_us("encode"),
        per_call_us("empty")
    );
}
