//! Shared by `browser_echotest.rs` and `janode_echotest.rs`: the Node.js
//! programs of `tests/browser/` (headless Chromium through playwright-core,
//! and Janode), the private network namespace the browser tests run in, and
//! a tiny static file server for the demo page when the server under test
//! (the real Janus) does not serve it.
//!
//! Prerequisites: `node`, `npm ci` done in `tests/browser/` and `demos/`,
//! Debian's `chromium` (`/usr/bin/chromium`, or `CHROMIUM_BIN`), and root for
//! `unshare --net`. Without them a test is skipped with a notice, except in
//! CI (`CI=true`), where it fails.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Set in the environment of a test binary re-run inside the namespace.
const IN_NETNS: &str = "JSFU_TESTS_IN_NETNS";

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// `tests/browser`.
pub fn browser_dir() -> PathBuf {
    repo_root().join("tests").join("browser")
}

/// `demos`.
pub fn demos_dir() -> PathBuf {
    repo_root().join("demos")
}

/// Whether this runs in CI, where missing prerequisites are failures.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// `Ok(())` to go on, `Err` to fail; prints a notice and returns `Ok(false)`
/// to skip when `reason` is set outside CI.
pub fn require(reason: Option<String>) -> Result<bool> {
    match reason {
        None => Ok(true),
        Some(why) if in_ci() => bail!("{why}"),
        Some(why) => {
            eprintln!("SKIPPED: {why}");
            Ok(false)
        }
    }
}

/// What is missing to run the Node.js programs (`None`: nothing).
pub fn node_missing() -> Option<String> {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return Some("node is not installed (apt-get install nodejs)".into());
    }
    if !browser_dir().join("node_modules").join("janode").is_dir()
        || !browser_dir()
            .join("node_modules")
            .join("playwright-core")
            .is_dir()
    {
        return Some(format!("run `npm ci` in {} first", browser_dir().display()));
    }
    None
}

/// The Chromium binary: `CHROMIUM_BIN`, else `/usr/bin/chromium`.
pub fn chromium_binary() -> PathBuf {
    std::env::var_os("CHROMIUM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// What is missing to run the browser tests (`None`: nothing).
pub fn browser_missing() -> Option<String> {
    if let Some(why) = node_missing() {
        return Some(why);
    }
    if !demos_dir()
        .join("node_modules")
        .join("janus-gateway")
        .is_dir()
    {
        return Some(format!("run `npm ci` in {} first", demos_dir().display()));
    }
    if !chromium_binary().is_file() {
        return Some(format!(
            "{} not found (apt-get install chromium chromium-driver, or set CHROMIUM_BIN)",
            chromium_binary().display()
        ));
    }
    if !is_root() {
        return Some("the browser tests need root for `unshare --net`".into());
    }
    None
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            .is_some_and(|euid| euid == "0")
    })
}

/// One browser at a time per test binary: the machine may have two cores.
pub fn browser_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether this process is the copy re-run inside the private namespace.
pub fn in_netns() -> bool {
    std::env::var_os(IN_NETNS).is_some()
}

/// Re-runs the test `name` of this test binary inside a private network
/// namespace (`tests/browser/netns-run.sh`), where it starts its server and
/// browser; fails when that run fails or did not run exactly that test.
pub fn rerun_in_netns(name: &str, timeout: Duration) -> Result<()> {
    let exe = std::env::current_exe().context("locating the test binary")?;
    let script = browser_dir().join("netns-run.sh");
    let mut cmd = Command::new("sh");
    cmd.arg(&script)
        .arg(&exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(IN_NETNS, "1");
    let out = run_with_timeout(cmd, timeout)?;
    println!(
        "--- {name} in a private network namespace ---\n{}",
        out.text
    );
    if !out.success {
        bail!("{name} failed inside the network namespace (output above)");
    }
    if !out.text.contains("test result: ok. 1 passed") {
        bail!("{name} did not run inside the network namespace (output above)");
    }
    Ok(())
}

/// What a child process printed, and whether it succeeded.
pub struct Output {
    /// Exit status 0.
    pub success: bool,
    /// Its stdout, then its stderr.
    pub text: String,
}

/// Runs `cmd` to completion, killing it after `timeout`.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Result<Output> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let out_path = std::env::temp_dir().join(format!(
        "jsfu-browser-{}-{}.out",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let out_file = std::fs::File::create(&out_path).context("creating an output file")?;
    let err_file = out_file.try_clone().context("duplicating a file handle")?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(out_file))
        .stderr(Stdio::from(err_file))
        .spawn()
        .with_context(|| format!("spawning {cmd:?}"))?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for a child")? {
            break Some(status);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(&out_path) {
        let mut bytes = Vec::new();
        let _ = f.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let _ = std::fs::remove_file(&out_path);
    if status.is_none() {
        text.push_str(&format!("\n(killed after {timeout:?})\n"));
    }
    Ok(Output {
        success: status.is_some_and(|s| s.success()),
        text,
    })
}

/// Runs `node tests/browser/<program> <args>`; fails unless it exits 0 and
/// its last line is a JSON summary with `"ok": true`.
pub fn run_node(program: &str, args: &[String], timeout: Duration) -> Result<String> {
    let mut cmd = Command::new("node");
    cmd.arg(browser_dir().join(program))
        .args(args)
        .current_dir(browser_dir())
        .env("CHROMIUM_BIN", chromium_binary());
    let out = run_with_timeout(cmd, timeout)?;
    let summary = out
        .text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
        .filter(|v| v.get("checks").is_some());
    let ok = summary
        .as_ref()
        .and_then(|v| v.get("ok"))
        .and_then(serde_json::Value::as_bool)
        == Some(true);
    if !out.success || !ok {
        bail!("{program} failed:\n{}", out.text);
    }
    Ok(out.text)
}

/// `artifacts/browser/<name>` under the repository root (gitignored).
pub fn artifact(name: &str) -> PathBuf {
    repo_root().join("artifacts").join("browser").join(name)
}

/// A static file server on 127.0.0.1 (HTTP/1.0 `GET` only), for the demo
/// page when the server under test does not serve it. Stops when dropped.
pub struct StaticServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StaticServer {
    /// Serves the files under `root` on a free port.
    pub fn start(root: PathBuf) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
        let addr = listener.local_addr().context("reading a bound address")?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let root = root.clone();
                std::thread::spawn(move || {
                    let _ = answer(&root, stream);
                });
            }
        });
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop up so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer(root: &Path, mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let file = resolve(root, path);
    let (status, body, kind) = match (method, file) {
        ("GET", Some(file)) => match std::fs::read(&file) {
            Ok(bytes) => ("200 OK", bytes, content_type(&file)),
            Err(_) => ("404 Not Found", Vec::new(), "text/plain"),
        },
        ("GET", None) => ("404 Not Found", Vec::new(), "text/plain"),
        _ => ("405 Method Not Allowed", Vec::new(), "text/plain"),
    };
    write!(
        stream,
        "HTTP/1.0 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(&body)?;
    stream.shutdown(Shutdown::Both)
}

/// The file for a URL path: no `..`, no hidden segments, `index.html` for folders.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let mut file = root.to_path_buf();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        if seg.starts_with('.') || seg.contains('%') || seg.contains('\\') {
            return None;
        }
        file.push(seg);
    }
    if file.is_dir() {
        file.push("index.html");
    }
    file.is_file().then_some(file)
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}
