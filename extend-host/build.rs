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
    // The UI tests (trybuild) build this crate only to type-check callers,
    // in a project of their own without our profile settings: brotli would
    // run unoptimised there for minutes, to serve no one.
    let codings: &[Coding] = if std::env::var_os("CARGO_CFG_TRYBUILD").is_some() {
        &[Coding::Gzip]
    } else {
        &[Coding::Gzip, Coding::Brotli]
    };
    let mut out = String::from("&[\n");
    for (path, file) in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let [gzip, br] = [Coding::Gzip, Coding::Brotli].map(|coding| {
            codings
                .contains(&coding)
                .then(|| compressed(&out_dir, path, file, coding))
                .flatten()
                .map_or_else(
                    || "None".to_owned(),
                    |f| format!("Some(include_bytes!({:?}))", f.display().to_string()),
                )
        });
        let _ = writeln!(
            out,
            "    Asset {{ path: {path:?}, content_type: {:?}, bytes: include_bytes!({:?}), gzip: {gzip}, br: {br} }},",
            content_type(path),
            file.display().to_string()
        );
    }
    out.push(']');
    std::fs::write(out_dir.join("editor_assets.rs"), out).expect("writing the asset table");
}

/// The codings the host serves precompressed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Coding {
    Gzip,
    Brotli,
}

/// Writes `file` compressed with `coding` (best compression) under
/// `out_dir`, when that makes it smaller; the host sends it to browsers that
/// accept the coding. Monaco's first load went from 10.2 MB to under 3 MB
/// with gzip, and about 2.3 MB with brotli. A file compressed by an earlier
/// build and not changed since is kept: brotli's best setting takes seconds
/// on Monaco's largest files.
fn compressed(out_dir: &Path, path: &str, file: &Path, coding: Coding) -> Option<PathBuf> {
    use std::io::Write as _;
    let meta =
        std::fs::metadata(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    if meta.len() < 1024 || content_type(path).starts_with("image/png") {
        return None;
    }
    let (folder, ext) = match coding {
        Coding::Gzip => ("gz", "gz"),
        Coding::Brotli => ("br", "br"),
    };
    let dest = out_dir.join(folder).join(format!("{path}.{ext}"));
    // An empty marker says an earlier build found compression did not help.
    let none = out_dir.join(folder).join(format!("{path}.{ext}.none"));
    let fresh = |f: &Path| {
        std::fs::metadata(f)
            .and_then(|m| m.modified())
            .is_ok_and(|t| meta.modified().is_ok_and(|src| t >= src))
    };
    if fresh(&dest) {
        return Some(dest);
    }
    if fresh(&none) {
        return None;
    }
    let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    let packed = match coding {
        Coding::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            gz.write_all(&bytes).expect("gzip into memory");
            gz.finish().expect("gzip into memory")
        }
        Coding::Brotli => {
            let mut out = Vec::new();
            let params = brotli::enc::BrotliEncoderParams {
                quality: 11,
                lgwin: 22,
                ..Default::default()
            };
            brotli::BrotliCompress(&mut &bytes[..], &mut out, &params).expect("brotli into memory");
            out
        }
    };
    std::fs::create_dir_all(dest.parent().expect("a folder"))
        .expect("the compressed files' folder");
    if packed.len() >= bytes.len() {
        std::fs::write(&none, b"").expect("writing a marker");
        return None;
    }
    std::fs::write(&dest, packed).expect("writing a compressed asset");
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
