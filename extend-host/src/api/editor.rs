//! The Extension Editor's files, embedded in the binary by `build.rs`:
//! `GET /edit/{container}` (the standalone editor page; the webtask name and
//! the token travel in the URL fragment, which browsers never send),
//! `GET /editor.js` (the script a platform embeds: `ExtendEditor.show`) and
//! `GET /editor/{*path}` (its styles and the vendored Monaco editor).
//!
//! The editor adds no privilege: it calls the same management API with the
//! token it is given, so a tenant token reaches its own container only.

use crate::error::ApiError;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    /// The same, gzipped at build time, when that is smaller.
    gzip: Option<&'static [u8]>,
    /// The same, compressed with brotli at build time, when that is smaller.
    br: Option<&'static [u8]>,
}

/// A content coding the host can send an asset in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Brotli,
    Gzip,
    Identity,
}

/// The vendored Monaco's version, as its `VERSION` file names it: its files
/// are served under `/editor/monaco-{version}/` too, cached as immutable
/// (a new version is a new URL). `editor.js` loads them from there.
const MONACO_VERSION: &str = "0.52.2";

/// The weight (`q`, 0 to 1) that the request's `Accept-Encoding` gives
/// each coding the host precompresses: `(brotli, gzip)`. `*` stands for a
/// coding not named; a coding refused (`q=0`) or not named weighs 0.
fn accepted(headers: &HeaderMap) -> (f32, f32) {
    let (mut br, mut gzip, mut any) = (None, None, None);
    for coding in headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let q = parts
            .find_map(|p| p.strip_prefix("q="))
            .map_or(Some(1.0), |q| q.parse::<f32>().ok())
            .unwrap_or(0.0)
            .clamp(0.0, 1.0);
        if name.eq_ignore_ascii_case("br") {
            br = Some(q);
        } else if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q);
        } else if name == "*" {
            any = Some(q);
        }
    }
    let any = any.unwrap_or(0.0);
    (br.unwrap_or(any), gzip.unwrap_or(any))
}

/// The coding to send `a` in: the one the browser weighs most among those
/// the asset has, brotli on a tie (it is smaller); identity when neither.
fn negotiate(a: &Asset, headers: &HeaderMap) -> Coding {
    let (br, gzip) = accepted(headers);
    let br = if a.br.is_some() { br } else { 0.0 };
    let gzip = if a.gzip.is_some() { gzip } else { 0.0 };
    if br > 0.0 && br >= gzip {
        Coding::Brotli
    } else if gzip > 0.0 {
        Coding::Gzip
    } else {
        Coding::Identity
    }
}

/// Every embedded file, sorted by path (written by `build.rs`).
static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/editor_assets.rs"));

fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS
        .binary_search_by(|a| a.path.cmp(path))
        .ok()
        .map(|i| &ASSETS[i])
}

fn serve(a: &'static Asset, cache: &'static str, headers: &HeaderMap) -> Response {
    let (body, coding) = match negotiate(a, headers) {
        Coding::Brotli => (a.br.unwrap_or(a.bytes), Some("br")),
        Coding::Gzip => (a.gzip.unwrap_or(a.bytes), Some("gzip")),
        Coding::Identity => (a.bytes, None),
    };
    let mut res = body.into_response();
    let h = res.headers_mut();
    if let Some(coding) = coding {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    if a.gzip.is_some() || a.br.is_some() {
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The script is meant to be loaded by the platform's own pages.
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    res
}

fn missing(what: &str) -> ApiError {
    ApiError::internal(format!(
        "the editor's `{what}` is not embedded in this build"
    ))
}

/// `GET /edit/{container}`: the editor page. Its token and webtask name come
/// from the fragment (`#/{name}/{token}`), as `wt edit` writes it.
pub(super) async fn page(
    Path(container): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    crate::names::check("container", &container)?;
    let a = asset("edit.html").ok_or_else(|| missing("edit.html"))?;
    let mut res = serve(a, "no-cache", &headers);
    let h = res.headers_mut();
    // The page holds a token: no referrer leaves it, no other site frames it.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.remove(header::ACCESS_CONTROL_ALLOW_ORIGIN);
    Ok(res)
}

/// `GET /edit/{v1|v2|canary}/{container}`: the same page, for the editor
/// versions `wt edit --editor-version` and `--canary` ask for.
pub(super) async fn versioned_page(
    Path((version, container)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !matches!(version.as_str(), "v1" | "v2" | "canary") {
        return Err(ApiError::not_found(format!(
            "no editor version `{version}`: use /edit/{{container}}"
        )));
    }
    page(Path(container), headers).await
}

/// `GET /editor.js`: `window.ExtendEditor`, for the platform's pages.
pub(super) async fn script(headers: HeaderMap) -> Result<Response, ApiError> {
    let a = asset("editor.js").ok_or_else(|| missing("editor.js"))?;
    Ok(serve(a, "no-cache", &headers))
}

/// `GET /editor/{*path}`: the editor's styles and the vendored Monaco
/// files, also at `monaco-{version}/…`, a URL whose content never changes.
pub(super) async fn file(
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let versioned = path
        .strip_prefix("monaco-")
        .and_then(|rest| rest.strip_prefix(MONACO_VERSION))
        .and_then(|rest| rest.strip_prefix('/'))
        .map(|rest| format!("monaco/{rest}"));
    let a = asset(versioned.as_deref().unwrap_or(&path))
        .filter(|a| a.path != "edit.html")
        .ok_or_else(|| ApiError::not_found(format!("no editor file at /editor/{path}")))?;
    let cache = if versioned.is_some() {
        "public, max-age=31536000, immutable"
    } else if a.path.starts_with("monaco/") {
        "public, max-age=86400"
    } else {
        "no-cache"
    };
    Ok(serve(a, cache, &headers))
}

#[cfg(test)]
mod tests {
    use super::{ASSETS, asset};

    #[test]
    fn the_editor_and_monaco_are_embedded_and_sorted() {
        assert!(ASSETS.windows(2).all(|w| w[0].path < w[1].path));
        for path in [
            "edit.html",
            "editor.js",
            "editor.css",
            "js/main.js",
            "js/schema.js",
            "monaco/vs/loader.js",
            "monaco/vs/editor/editor.main.js",
            "monaco/vs/language/typescript/tsWorker.js",
            "monaco/LICENSE",
        ] {
            let a = asset(path).unwrap_or_else(|| panic!("{path} is not embedded"));
            assert!(!a.bytes.is_empty(), "{path} is empty");
        }
        assert_eq!(
            asset("monaco/vs/loader.js").map(|a| a.content_type),
            Some("text/javascript; charset=utf-8")
        );
    }

    #[test]
    fn the_versioned_monaco_url_names_the_vendored_version_and_editor_js_uses_it() {
        let version = asset("monaco/VERSION").expect("VERSION is embedded");
        let version = std::str::from_utf8(version.bytes).unwrap();
        assert!(
            version.starts_with(&format!("monaco-editor@{} ", super::MONACO_VERSION)),
            "{version}"
        );
        let js = std::str::from_utf8(asset("js/monaco.js").unwrap().bytes).unwrap();
        assert!(
            js.contains(&format!("/editor/monaco-{}/", super::MONACO_VERSION)),
            "the editor loads Monaco from its versioned URL"
        );
    }

    #[test]
    fn the_coding_is_negotiated_from_accept_encoding() {
        use super::Coding::{Brotli, Gzip, Identity};
        use axum::http::{HeaderMap, HeaderValue};
        let big = asset("monaco/vs/language/typescript/tsWorker.js").unwrap();
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert("accept-encoding", HeaderValue::from_static(v));
            super::negotiate(big, &h)
        };
        assert_eq!(with("gzip, deflate, br"), Brotli);
        assert_eq!(with("gzip, deflate"), Gzip);
        assert_eq!(with("br;q=0.5, gzip;q=0.8"), Gzip);
        assert_eq!(with("br;q=1.0, gzip;q=0.8"), Brotli);
        assert_eq!(with("*"), Brotli);
        assert_eq!(with("br;q=0, *"), Gzip);
        assert_eq!(with("gzip;q=0"), Identity);
        assert_eq!(with("br;q=0, gzip;q=0"), Identity);
        assert_eq!(with("identity"), Identity);
        assert_eq!(with("gzip;q=nonsense"), Identity);
        assert_eq!(super::negotiate(big, &HeaderMap::new()), Identity);
        assert!(big.gzip.is_some_and(|g| g.len() * 3 < big.bytes.len()));
        let (gz, br) = (big.gzip.unwrap().len(), big.br.unwrap().len());
        assert!(br < gz, "brotli ({br} B) is smaller than gzip ({gz} B)");
    }
}
