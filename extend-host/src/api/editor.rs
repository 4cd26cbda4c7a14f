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
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

/// Every embedded file, sorted by path (written by `build.rs`).
static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/editor_assets.rs"));

fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS
        .binary_search_by(|a| a.path.cmp(path))
        .ok()
        .map(|i| &ASSETS[i])
}

fn serve(a: &'static Asset, cache: &'static str) -> Response {
    let mut res = a.bytes.into_response();
    let h = res.headers_mut();
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
pub(super) async fn page(Path(container): Path<String>) -> Result<Response, ApiError> {
    crate::names::check("container", &container)?;
    let a = asset("edit.html").ok_or_else(|| missing("edit.html"))?;
    let mut res = serve(a, "no-cache");
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
) -> Result<Response, ApiError> {
    if !matches!(version.as_str(), "v1" | "v2" | "canary") {
        return Err(ApiError::not_found(format!(
            "no editor version `{version}`: use /edit/{{container}}"
        )));
    }
    page(Path(container)).await
}

/// `GET /editor.js`: `window.ExtendEditor`, for the platform's pages.
pub(super) async fn script() -> Result<Response, ApiError> {
    let a = asset("editor.js").ok_or_else(|| missing("editor.js"))?;
    Ok(serve(a, "no-cache"))
}

/// `GET /editor/{*path}`: the editor's styles and the vendored Monaco files.
pub(super) async fn file(Path(path): Path<String>) -> Result<Response, ApiError> {
    let a = asset(&path)
        .filter(|a| a.path != "edit.html")
        .ok_or_else(|| ApiError::not_found(format!("no editor file at /editor/{path}")))?;
    // Monaco's files change only with its pinned version, which is in the path.
    let cache = if a.path.starts_with("monaco/") {
        "public, max-age=86400"
    } else {
        "no-cache"
    };
    Ok(serve(a, cache))
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
}
