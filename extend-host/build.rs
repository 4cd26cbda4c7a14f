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
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let mut out = String::from("&[\n");
    for (path, file) in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let gzip = gzipped(&out_dir, path, file).map_or_else(
            || "None".to_owned(),
            |gz| format!("Some(include_bytes!({:?}))", gz.display().to_string()),
        );
        let _ = writeln!(
            out,
            "    Asset {{ path: {path:?}, content_type: {:?}, bytes: include_bytes!({:?}), gzip: {gzip} }},",
            content_type(path),
            file.display().to_string()
        );
    }
    out.push(']');
    std::fs::write(out_dir.join("editor_assets.rs"), out).expect("writing the asset table");
}

/// Writes `file` gzipped (best compression) under `out_dir`, when that makes
/// it smaller; the host sends it to browsers that accept gzip. Monaco's
/// first load went from 10.2 MB to under 3 MB this way.
fn gzipped(out_dir: &Path, path: &str, file: &Path) -> Option<PathBuf> {
    use std::io::Write as _;
    let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    if bytes.len() < 1024 || content_type(path).starts_with("image/png") {
        return None;
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&bytes).expect("gzip into memory");
    let gz = gz.finish().expect("gzip into memory");
    if gz.len() >= bytes.len() {
        return None;
    }
    let dest = out_dir.join("gz").join(format!("{path}.gz"));
    std::fs::create_dir_all(dest.parent().expect("a folder")).expect("the gzip folder");
    std::fs::write(&dest, gz).expect("writing a gzipped asset");
    Some(dest)
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
