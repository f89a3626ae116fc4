//! Static files for the demo pages (`--demos DIR`), served on the Janus API's
//! HTTP port next to `/janus`: every path that is not the API resolves to a
//! file under the demos folder.
//!
//! Only `GET` and `HEAD` are answered. A path is percent-decoded and split
//! into segments; a segment that is empty is skipped, and one that is `..`,
//! starts with a dot (hidden files, `.`), or holds a NUL or a backslash makes
//! the answer 404, so a request can only name entries below the folder.
//! Symbolic links inside the folder are followed wherever they lead, as a web
//! server's default does: whoever can write the folder chooses what it
//! serves. Debian's `janus-demos` needs that: its `javascript` entry is a
//! link to `/usr/share/javascript` (jQuery, Bootstrap and the rest). A
//! folder answers with its `index.html` (a folder path without its trailing
//! slash is redirected to the one with it, so relative links in the page
//! resolve).
//!
//! One compatibility fix-up: the demo scripts read the globals `token` and
//! `apisecret`, which upstream's `settings.js` declares and Debian's
//! (janus-demos 1.1.2) does not, so every demo stops at a `ReferenceError`.
//! When the folder's top-level `settings.js` declares neither, its body is
//! served with `var token = null; var apisecret = null;` appended (a `var`
//! never overrides an existing global); the file on disk is not touched.

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
    let settings = segments.len() == 1 && segments[0] == Path::new("settings.js");
    let mut file = root.to_path_buf();
    file.extend(&segments);
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
    // The settings fix-up changes the length, so that file is always read.
    let bytes = if method == Method::HEAD && !settings {
        None
    } else {
        match tokio::fs::read(&file).await {
            Ok(mut bytes) => {
                if settings {
                    declare_missing_settings(&mut bytes);
                }
                Some(bytes)
            }
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "demo file unreadable");
                return Some(status(StatusCode::NOT_FOUND));
            }
        }
    };
    let length = bytes.as_ref().map_or(meta.len(), |b| b.len() as u64);
    let body = match bytes {
        Some(bytes) if method != Method::HEAD => Body::from(bytes),
        _ => Body::empty(),
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&file)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Some(r)
}

/// What is appended to a `settings.js` that declares neither global.
const SETTINGS_DECLARATIONS: &str = "\n// Declared by jsfu: the demo scripts read these globals and this \
settings.js does not declare them.\nvar token = null;\nvar apisecret = null;\n";

/// `text` without its `/* */` and `//` comments (a `//` inside a string
/// literal also ends the line: enough to look for declarations in it).
fn code_without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("/*") {
        out.push_str(&rest[..at]);
        rest = rest[at + 2..]
            .find("*/")
            .map_or("", |end| &rest[at + 2 + end + 2..]);
    }
    out.push_str(rest);
    out.lines()
        .map(|line| line.find("//").map_or(line, |at| &line[..at]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Appends [`SETTINGS_DECLARATIONS`] to the text of a demos `settings.js`
/// unless its code (comments aside: Debian's mentions both in one) already
/// names `token` or `apisecret` (then it is upstream's, or the user's own,
/// and is served as it is).
fn declare_missing_settings(bytes: &mut Vec<u8>) {
    let text = code_without_comments(&String::from_utf8_lossy(bytes));
    let mentions = |name: &str| {
        text.match_indices(name).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = text[at + name.len()..].chars().next();
            let ident =
                |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$');
            !ident(before) && !ident(after)
        })
    };
    if mentions("token") || mentions("apisecret") {
        return;
    }
    bytes.extend_from_slice(SETTINGS_DECLARATIONS.as_bytes());
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
                StatusCode::OK,
                "a link the folder holds is followed"
            );
            let body = axum::body::to_bytes(r.into_body(), 1024)
                .await
                .expect("the body is small");
            assert_eq!(&body[..], b"no");
        }
        let r = get("/%2e%2e/secret.txt").await.expect("GET is answered");
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "encoded traversal");
        let r = get("/missing.js").await.expect("GET is answered");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert!(serve(&inner, &Method::POST, "/").await.is_none());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[tokio::test]
    async fn settings_without_the_globals_get_them_declared() {
        let root = std::env::temp_dir().join(format!("jsfu-demos-settings-{}", std::process::id()));
        std::fs::create_dir_all(root.join("sub")).expect("temp folder is writable");
        let debian = "var server = \"http://\" + host;\n/* token: x */\n// apisecret: \"s\",\nvar iceServers = null;\n";
        std::fs::write(root.join("settings.js"), debian).expect("temp folder is writable");
        std::fs::write(root.join("sub/settings.js"), debian).expect("temp folder is writable");
        let r = serve(&root, &Method::GET, "/settings.js")
            .await
            .expect("GET is answered");
        let len: usize = r.headers()[header::CONTENT_LENGTH]
            .to_str()
            .expect("ASCII")
            .parse()
            .expect("a number");
        let body = axum::body::to_bytes(r.into_body(), 4096)
            .await
            .expect("small");
        assert_eq!(len, body.len());
        let text = std::str::from_utf8(&body).expect("UTF-8");
        assert!(text.starts_with(debian));
        assert!(text.contains("var token = null;") && text.contains("var apisecret = null;"));
        let head = serve(&root, &Method::HEAD, "/settings.js")
            .await
            .expect("HEAD is answered");
        assert_eq!(
            head.headers()[header::CONTENT_LENGTH],
            len.to_string().as_str()
        );

        // Only the top-level settings.js, and only when it lacks both.
        let r = serve(&root, &Method::GET, "/sub/settings.js")
            .await
            .expect("GET is answered");
        let body = axum::body::to_bytes(r.into_body(), 4096)
            .await
            .expect("small");
        assert_eq!(&body[..], debian.as_bytes());
        let upstream = "var server = null;\nvar token = null;\nvar apisecret = null;\n";
        std::fs::write(root.join("settings.js"), upstream).expect("temp folder is writable");
        let r = serve(&root, &Method::GET, "/settings.js")
            .await
            .expect("GET is answered");
        let body = axum::body::to_bytes(r.into_body(), 4096)
            .await
            .expect("small");
        assert_eq!(&body[..], upstream.as_bytes());
        // A name that merely contains "token" does not count as declaring it.
        let mut other = b"var tokenizer = 1;".to_vec();
        declare_missing_settings(&mut other);
        assert!(other.ends_with(SETTINGS_DECLARATIONS.as_bytes()));
        let _ = std::fs::remove_dir_all(&root);
    }
}
