//! Shared by `media_aiortc.rs` and `media_str0m.rs`: which servers and
//! scripts to run, running an echo client process with a deadline, and
//! checking its JSON summary.
//!
//! Each client (the aiortc one in `tests/media/`, the str0m one built from
//! `tests/peer/`) runs the echo flow once against one server over one
//! transport and prints a summary `{"ok": bool, "checks": {name: {"ok",
//! "detail"}}, "failures": [...], ...}`; these helpers assert on it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use jsfu_tests::server::{ECHOTEST_SCRIPT, Flavor, Server, ServerOptions};
use jsfu_tests::{Transport, selected_flavors};
use serde_json::Value;

/// How long one client run (one server, one transport) may take.
pub(crate) const CLIENT_DEADLINE: Duration = Duration::from_secs(45);

/// The echo scripts a server can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Script {
    /// Debian's `/usr/share/janus/duktape/echotest.js`.
    Debian,
    /// jsfu's own `scripts/echotest.js`.
    Jsfu,
}

impl Script {
    fn options(self) -> Option<ServerOptions> {
        match self {
            Self::Debian => Path::new(ECHOTEST_SCRIPT)
                .is_file()
                .then(ServerOptions::echotest),
            Self::Jsfu => {
                let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/echotest.js");
                Some(ServerOptions::script(script))
            }
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Debian => "Debian's echotest.js",
            Self::Jsfu => "jsfu's scripts/echotest.js",
        }
    }
}

/// Media runs are CPU-heavy (real encoders, real time): one at a time per
/// test binary, whatever `--test-threads` says.
pub(crate) fn media_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Start `flavor` running `script`, or `None` (with a notice) when that
/// combination is not selected or not installed.
pub(crate) fn start(flavor: Flavor, script: Script) -> Option<Server> {
    if !selected_flavors().contains(&flavor) {
        eprintln!("SKIP: {flavor} is not in JSFU_TEST_SERVERS");
        return None;
    }
    let Some(options) = script.options() else {
        eprintln!("SKIP: {} is not installed (package janus)", script.name());
        return None;
    };
    match Server::start(flavor, &options) {
        Ok(Some(server)) => Some(server),
        Ok(None) => {
            eprintln!("SKIP: {flavor} is not installed");
            None
        }
        Err(e) => panic!("starting {flavor} with {}: {e:#}", script.name()),
    }
}

/// The URL a client uses for `transport` on `server`.
pub(crate) fn url(server: &Server, transport: Transport) -> String {
    match transport {
        Transport::Http => server.api_url(),
        Transport::Ws => server.ws_url(),
    }
}

/// `"http"` or `"ws"`, as the clients spell it.
pub(crate) fn transport_arg(transport: Transport) -> &'static str {
    match transport {
        Transport::Http => "http",
        Transport::Ws => "ws",
    }
}

/// What one client run produced.
pub(crate) struct ClientRun {
    pub(crate) label: String,
    pub(crate) status: Option<i32>,
    pub(crate) summary: Option<Value>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl ClientRun {
    /// Everything worth printing when an assertion fails.
    pub(crate) fn report(&self) -> String {
        format!(
            "--- {} exited with {:?}\n--- stdout:\n{}\n--- stderr (last 60 lines):\n{}",
            self.label,
            self.status,
            self.stdout,
            last_lines(&self.stderr, 60)
        )
    }
}

/// Run `cmd` to completion (killed after [`CLIENT_DEADLINE`]), capturing
/// its output in files under `<target>/<profile>/jsfu-tests/`.
pub(crate) fn run_client(label: &str, mut cmd: Command) -> ClientRun {
    let dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().and_then(Path::parent).map(Path::to_path_buf))
        .unwrap_or_else(std::env::temp_dir)
        .join("jsfu-tests")
        .join(format!("media-{}-{}", std::process::id(), sanitize(label)));
    if let Err(e) = fs::create_dir_all(&dir) {
        panic!("creating {}: {e}", dir.display());
    }
    let out_path = dir.join("stdout.json");
    let err_path = dir.join("stderr.txt");
    let create = |p: &PathBuf| {
        fs::File::create(p).unwrap_or_else(|e| panic!("creating {}: {e}", p.display()))
    };
    cmd.stdin(Stdio::null())
        .stdout(create(&out_path))
        .stderr(create(&err_path));
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{label}: cannot start {cmd:?}: {e}"));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.code(),
            Ok(None) if started.elapsed() > CLIENT_DEADLINE => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("{label}: waiting for the client: {e}"),
        }
    };
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    let _ = fs::remove_dir_all(&dir);
    let summary = serde_json::from_str(&stdout).ok();
    eprintln!(
        "{label}: exit {status:?} after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    ClientRun {
        label: label.to_owned(),
        status,
        summary,
        stdout,
        stderr,
    }
}

/// Assert that the run succeeded and that each of `checks` was made and
/// passed (so a client that skipped a step cannot pass).
pub(crate) fn assert_passed(run: &ClientRun, server: &Server, checks: &[&str]) {
    let Some(summary) = &run.summary else {
        panic!("{}: no JSON summary on stdout\n{}", run.label, run.report());
    };
    let failures = summary["failures"].clone();
    let missing: Vec<&str> = checks
        .iter()
        .copied()
        .filter(|c| summary["checks"][c]["ok"] != Value::Bool(true))
        .collect();
    if summary["ok"] != Value::Bool(true) || run.status != Some(0) || !missing.is_empty() {
        panic!(
            "{} against {} failed.\nfailures: {failures}\nchecks not passed: {missing:?}\n\
             server log: {}\n{}",
            run.label,
            server.flavor(),
            server.log_path().display(),
            run.report()
        );
    }
    eprintln!(
        "{}: {} checks passed (webrtcup after {} ms)",
        run.label,
        summary["checks"].as_object().map_or(0, |c| c.len()),
        summary["webrtcup_ms"]
    );
}

/// Whether this is a CI run (`CI=true`), where missing tools are failures.
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn sanitize(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The Python interpreter that runs the aiortc clients (`PYTHON`, default
/// `python3`).
pub(crate) fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Whether python and the aiortc clients' packages are there; `false` (after
/// a notice) means skip; in CI a missing piece is a failure.
#[allow(dead_code)] // the str0m and simulcast test binaries run no aiortc client
pub(crate) fn aiortc_available() -> bool {
    let probe = Command::new(python())
        .args(["-c", "import aiortc, aioice, av, numpy, websockets"])
        .output();
    let problem = match probe {
        Ok(out) if out.status.success() => return true,
        Ok(out) => format!(
            "{} cannot import the client's packages: {}",
            python(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("cannot run {}: {e}", python()),
    };
    let fix = "install them with: python3 -m pip install -r tests/media/requirements.txt";
    if in_ci() {
        panic!("{problem}\n{fix}");
    }
    eprintln!("SKIP: {problem}\n({fix})");
    false
}
