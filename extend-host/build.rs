//! Embeds the Extension Editor's files (`editor/app` and the vendored
//! `editor/vendor/monaco`) into the binary, so that a host serves its editor
//! with nothing fetched at run time.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let mut files = Vec::new();
    for (dir, prefix) in [("editor/app", ""), ("editor/vendor/monaco", "monaco/")] {
        let dir = root.join(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        collect(&dir, &dir, prefix, &mut files);
    }
    files.sort();
    let mut out = String::from("&[\n");
    for (path, file) in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let _ = writeln!(
            out,
            "    Asset {{ path: {path:?}, content_type: {:?}, bytes: include_bytes!({:?}) }},",
            content_type(path),
            file.display().to_string()
        );
    }
    out.push(']');
    let dest =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("editor_assets.rs");
    std::fs::write(dest, out).expect("writing the asset table");
}

fn collect(root: &Path, dir: &Path, prefix: &str, files: &mut Vec<(String, PathBuf)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(root, &path, prefix, files);
        } else {
            let rel = path.strip_prefix(root).expect("under root");
            let rel = rel.to_string_lossy().replace('\\', "/");
            files.push((format!("{prefix}{rel}"), path));
        }
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("ttf") => "font/ttf",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => "text/plain; charset=utf-8",
    }
}
