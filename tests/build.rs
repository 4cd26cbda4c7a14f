//! Generates the 1,000 extension points the catalog benchmark collects.

use std::fmt::Write as _;

fn main() {
    let mut points = String::new();
    for i in 0..1000 {
        let _ = writeln!(
            points,
            "/// Benchmark point {i}.\n#[extension_point(name = \"bench-point-{i}\", timeout = \"1s\")]\npub async fn bench_point_{i}(tenant: &Container, payload: &u32) -> u32;"
        );
    }
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(format!("{out}/bench_points.rs"), points).expect("write bench points");
    println!("cargo::rerun-if-changed=build.rs");
}
