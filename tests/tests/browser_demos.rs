//! jsfu serves the demo pages next to the Janus API (`--demos`, on by
//! default with the source tree's `demos/` folder): the right files with the
//! right content types, nothing outside the folder, and the API untouched.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use jsfu_tests::{Flavor, Server, ServerOptions, selected_flavors};

/// A raw HTTP/1.0 request (the path is sent exactly as given, without any
/// normalization); returns the status code, the head and the body.
fn raw(addr: SocketAddr, method: &str, path: &str) -> Result<(u16, String, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of HTTP head")?;
    let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status code")?;
    Ok((status, head, answer[end + 4..].to_vec()))
}

#[test]
fn jsfu_serves_the_demo_pages() -> Result<()> {
    if !selected_flavors().contains(&Flavor::Jsfu) {
        eprintln!("SKIPPED: jsfu is not selected by JSFU_TEST_SERVERS");
        return Ok(());
    }
    let server = Server::jsfu(&ServerOptions::echotest())?;
    let addr = server.endpoints().http;

    let (status, head, body) = raw(addr, "GET", "/")?;
    if status != 200 || !head.contains("content-type: text/html") {
        bail!("GET / answered {status}: {head}");
    }
    let page = String::from_utf8_lossy(&body);
    assert!(page.contains("echotest.js"), "the echo-test page: {page}");

    let (status, head, body) = raw(addr, "GET", "/echotest.js")?;
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("janus.plugin.echojs"));
    let (status, head, body) = raw(addr, "HEAD", "/demo.css")?;
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("content-type: text/css"), "{head}");
    assert!(body.is_empty(), "HEAD has no body");

    for path in [
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/images/%2E%2E/%2E%2E/Cargo.toml",
        "/..%2fCargo.toml",
        "/.gitignore",
        "/no-such-file.html",
        "/index.html%00.js",
    ] {
        let (status, head, _) = raw(addr, "GET", path)?;
        assert_eq!(status, 404, "GET {path}: {head}");
    }
    let (status, _, _) = raw(addr, "POST", "/index.html")?;
    assert_eq!(status, 404, "only GET and HEAD are served");

    // The API is untouched.
    let (status, _, body) = raw(addr, "GET", "/janus/info")?;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("server_info"));
    Ok(())
}
