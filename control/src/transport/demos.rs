//! Static files for the demo pages (`--demos DIR`), served on the Janus API's
//! HTTP port next to `/janus`: every path that is not the API resolves to a
//! file under the demos folder.
//!
//! Only `GET` and `HEAD` are answered. A path is percent-decoded and split
//! into segments; a segment that is empty is skipped, and one that is `..`,
//! starts with a dot (hidden files, `.`), or holds a NUL or a backslash makes
//! the answer 404. The resolved file is canonicalized and must still lie
//! inside the canonical demos folder, so symbolic links cannot lead out of
//! it. A folder answers with its `index.html` (a folder path without its
//! trailing slash is redirected to the one with it, so relative links in the
//! page resolve).

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;

/// Largest file served (the demo assets are a few hundred KiB at most).
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Answers `method` on `path` (the URI path, still percent-encoded) from
/// `root`, or `None` when the request is not for a demo file (a method other
/// than GET/HEAD), so the caller answers as it would without demos.
pub(crate) async fn serve(root: &Path, method: &Method, path: &str) -> Option<Response> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let Some(segments) = segments(path) else {
        return Some(status(StatusCode::NOT_FOUND));
    };
    let Ok(base) = tokio::fs::canonicalize(root).await else {
        tracing::warn!(folder = %root.display(), "demos folder is not readable");
        return Some(status(StatusCode::NOT_FOUND));
    };
    let mut file = base.clone();
    file.extend(&segments);
    let Ok(mut file) = tokio::fs::canonicalize(&file).await else {
        return Some(status(StatusCode::NOT_FOUND));
    };
    if !file.starts_with(&base) {
        return Some(status(StatusCode::NOT_FOUND));
    }
    let Ok(mut meta) = tokio::fs::metadata(&file).await else {
        return Some(status(StatusCode::NOT_FOUND));
    };
    if meta.is_dir() {
        if !path.ends_with('/') {
            let mut r = status(StatusCode::MOVED_PERMANENTLY);
            if let Ok(v) = HeaderValue::from_str(&format!("{path}/")) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            return Some(r);
        }
        file = file.join("index.html");
        meta = match tokio::fs::metadata(&file).await {
            Ok(m) if m.is_file() => m,
            _ => return Some(status(StatusCode::NOT_FOUND)),
        };
    }
    if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
        return Some(status(StatusCode::NOT_FOUND));
    }
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        match tokio::fs::read(&file).await {
            Ok(bytes) => Body::from(bytes),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "demo file unreadable");
                return Some(status(StatusCode::NOT_FOUND));
            }
        }
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&file)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.len()));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Some(r)
}

fn status(code: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = code;
    r
}

/// The decoded, checked segments of a URI path; `None` when one is refused.
fn segments(path: &str) -> Option<Vec<PathBuf>> {
    let decoded = percent_decode(path)?;
    let mut out = Vec::new();
    for seg in decoded.split('/') {
        if seg.is_empty() {
            continue;
        }
        if seg.starts_with('.') || seg.contains('\\') || seg.contains('\0') {
            return None;
        }
        out.push(PathBuf::from(seg));
    }
    Some(out)
}

/// Decodes `%XX` escapes; `None` for a malformed escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex(*bytes.get(i + 1)?)?;
            let lo = hex(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The `Content-Type` of a file, from its extension.
fn content_type(file: &Path) -> &'static str {
    let ext = file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs" | "cjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("wasm") => "application/wasm",
        Some("webm") => "video/webm",
        Some("mp4") => "video/mp4",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_and_hidden_segments_are_refused() {
        assert!(segments("/../etc/passwd").is_none());
        assert!(segments("/a/%2e%2e/b").is_none());
        assert!(segments("/.git/config").is_none());
        assert!(segments("/a%5c..%5cb").is_none());
        assert!(segments("/a%00b").is_none());
        assert!(segments("/a%zz").is_none());
        assert!(segments("/a%2").is_none());
        assert!(segments("/%ff").is_none());
        let ok = segments("//echotest/a%20b.js").map(|v| v.len());
        assert_eq!(ok, Some(2));
    }

    #[test]
    fn content_types() {
        assert_eq!(
            content_type(Path::new("x/index.HTML")),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("janus.es.js")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("shot.png")), "image/png");
        assert_eq!(
            content_type(Path::new("LICENSE")),
            "application/octet-stream"
        );
    }

    #[tokio::test]
    async fn serves_files_inside_the_folder_only() {
        let root = std::env::temp_dir().join(format!("jsfu-demos-test-{}", std::process::id()));
        let inner = root.join("site");
        std::fs::create_dir_all(inner.join("sub")).expect("temp folder is writable");
        std::fs::write(inner.join("index.html"), "<p>hi</p>").expect("temp folder is writable");
        std::fs::write(inner.join("sub/app.js"), "1").expect("temp folder is writable");
        std::fs::write(root.join("secret.txt"), "no").expect("temp folder is writable");
        #[cfg(unix)]
        std::os::unix::fs::symlink(root.join("secret.txt"), inner.join("link.txt"))
            .expect("temp folder is writable");

        let get = |p: &'static str| {
            let inner = inner.clone();
            async move { serve(&inner, &Method::GET, p).await }
        };
        let r = get("/").await.expect("GET is answered");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let r = get("/sub/app.js").await.expect("GET is answered");
        assert_eq!(r.status(), StatusCode::OK);
        let r = get("/sub").await.expect("GET is answered");
        assert_eq!(r.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(r.headers()[header::LOCATION], "/sub/");
        let r = get("/sub/").await.expect("GET is answered");
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "no index.html in sub/");
        let r = get("/../secret.txt").await.expect("GET is answered");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        #[cfg(unix)]
        {
            let r = get("/link.txt").await.expect("GET is answered");
            assert_eq!(
                r.status(),
                StatusCode::NOT_FOUND,
                "symlink out of the folder"
            );
        }
        let r = get("/missing.js").await.expect("GET is answered");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert!(serve(&inner, &Method::POST, "/").await.is_none());
        let _ = std::fs::remove_dir_all(&root);
    }
}
