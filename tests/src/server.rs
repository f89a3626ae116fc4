//! Launching the server under test: the `jsfu` binary, or Debian's Janus as
//! the reference.
//!
//! Both run as child processes on free loopback ports, with their output
//! captured to a log file in a private work folder. The process is started
//! through a small `sh` guard that holds the read end of a pipe whose write
//! end only this test process has: when the [`Server`] is dropped, or when
//! the test process dies for any reason (panic, abort, `SIGKILL`), the pipe
//! closes and the guard stops the server (`SIGTERM`, then `SIGKILL` after
//! 5 s). So servers kept in `static`s for a whole test binary never outlive
//! it.

use std::fmt;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::ports::free_ports;

/// Debian's stock echo-test script (package `janus.plugin.echojs`).
pub const ECHOTEST_SCRIPT: &str = "/usr/share/janus/duktape/echotest.js";
/// The folder Debian's echo test loads `janus-sdp.js` from.
pub const DUKTAPE_MODULES: &str = "/usr/share/janus/duktape";
/// Package name of [`ECHOTEST_SCRIPT`].
pub const ECHOTEST_PACKAGE: &str = "janus.plugin.echojs";

/// How long a server may take to answer `GET /janus/info` after it started.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How many times a launch is retried with new ports when it fails.
const LAUNCH_ATTEMPTS: usize = 3;

/// Which implementation a [`Server`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// The `jsfu` binary (`JSFU_BIN`, default `<target>/<profile>/jsfu`).
    Jsfu,
    /// Debian's Janus (`JANUS_BIN`, default `/usr/bin/janus`).
    Janus,
}

impl Flavor {
    /// Lower-case name, as used in `JSFU_TEST_SERVERS` and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Jsfu => "jsfu",
            Self::Janus => "janus",
        }
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What to run and how. Every field has the same meaning for both flavors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// The script to load as the (only) plugin.
    pub script: PathBuf,
    /// The folder `getModulesFolder()` returns (default: the script's folder).
    pub modules: Option<PathBuf>,
    /// The string passed to the script's `init(config)` (default: `null`).
    pub config: Option<String>,
    /// API secret every Janus API request must carry as `apisecret`.
    pub api_secret: Option<String>,
    /// Admin secret every Admin API request but info/ping must carry.
    pub admin_secret: Option<String>,
    /// Stored-token authentication (tokens managed with the Admin API).
    pub token_auth: bool,
    /// Session timeout in seconds (default: the server's, 60).
    pub session_timeout: Option<u64>,
    /// Log level: `error`, `warn`, `info`, `debug` or `trace` (default `info`).
    pub log_level: Option<String>,
}

impl ServerOptions {
    /// Run `script` with default settings.
    pub fn script(script: impl Into<PathBuf>) -> Self {
        Self {
            script: script.into(),
            modules: None,
            config: None,
            api_secret: None,
            admin_secret: None,
            token_auth: false,
            session_timeout: None,
            log_level: None,
        }
    }

    /// Debian's `echotest.js` with its modules folder.
    pub fn echotest() -> Self {
        Self::script(ECHOTEST_SCRIPT).with_modules(DUKTAPE_MODULES)
    }

    /// Set the modules folder.
    pub fn with_modules(mut self, folder: impl Into<PathBuf>) -> Self {
        self.modules = Some(folder.into());
        self
    }

    /// Set the `init(config)` string.
    pub fn with_config(mut self, config: impl Into<String>) -> Self {
        self.config = Some(config.into());
        self
    }

    /// Require an API secret.
    pub fn with_api_secret(mut self, secret: impl Into<String>) -> Self {
        self.api_secret = Some(secret.into());
        self
    }

    /// Require an Admin API secret.
    pub fn with_admin_secret(mut self, secret: impl Into<String>) -> Self {
        self.admin_secret = Some(secret.into());
        self
    }

    /// Require a token (added with the Admin API's `add_token`) on every request.
    pub fn with_token_auth(mut self) -> Self {
        self.token_auth = true;
        self
    }

    /// Set the session timeout (seconds, 0 = never).
    pub fn with_session_timeout(mut self, secs: u64) -> Self {
        self.session_timeout = Some(secs);
        self
    }

    /// Set the log level.
    pub fn with_log_level(mut self, level: impl Into<String>) -> Self {
        self.log_level = Some(level.into());
        self
    }

    /// The effective modules folder: the configured one, else the script's folder.
    pub fn modules_folder(&self) -> PathBuf {
        match &self.modules {
            Some(folder) => folder.clone(),
            None => self
                .script
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
        }
    }
}

/// The addresses a running server listens on (all on 127.0.0.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    /// Janus API over HTTP (`http://ADDR/janus`).
    pub http: SocketAddr,
    /// Janus API over WebSocket (subprotocol `janus-protocol`).
    pub ws: SocketAddr,
    /// Admin API over HTTP (`http://ADDR/admin`).
    pub admin_http: SocketAddr,
    /// Admin API over WebSocket (subprotocol `janus-admin-protocol`);
    /// the same as `admin_http` for jsfu, a separate port for Janus.
    pub admin_ws: SocketAddr,
}

/// A running server. Stopped (and its work folder removed) on drop.
pub struct Server {
    flavor: Flavor,
    options: ServerOptions,
    endpoints: Endpoints,
    work_dir: PathBuf,
    log: PathBuf,
    child: Mutex<Child>,
    guard_pipe: Mutex<Option<ChildStdin>>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("flavor", &self.flavor)
            .field("endpoints", &self.endpoints)
            .field("log", &self.log)
            .finish()
    }
}

/// The guard script: runs `"$@"` with the pipe on fd 3 closed, and stops it
/// when the pipe (its stdin) reaches end of file.
const GUARD_SCRIPT: &str = r#"
exec 3<&0
"$@" </dev/null 3<&- &
child=$!
(
  read -r _ <&3
  kill -TERM "$child" 2>/dev/null
  n=0
  while kill -0 "$child" 2>/dev/null; do
    n=$((n + 1))
    if [ "$n" -ge 50 ]; then kill -KILL "$child" 2>/dev/null; break; fi
    sleep 0.1
  done
) </dev/null &
watcher=$!
exec 3<&-
wait "$child"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
"#;

impl Server {
    /// Start jsfu with `options`. Fails if the binary is missing or does not
    /// come up (the error carries the end of its log).
    pub fn jsfu(options: &ServerOptions) -> Result<Self> {
        let bin = jsfu_binary()?;
        launch(Flavor::Jsfu, options, |work_dir, ports| {
            let endpoints = Endpoints {
                http: ports[0],
                ws: ports[1],
                admin_http: ports[2],
                admin_ws: ports[2],
            };
            let args = jsfu_args(options, &endpoints, work_dir)?;
            let mut argv = vec![bin.display().to_string()];
            argv.extend(args);
            Ok((endpoints, argv))
        })
    }

    /// Start the reference Janus with `options`, or `Ok(None)` when it is not
    /// installed (`JANUS_BIN` or `/usr/bin/janus`).
    pub fn janus(options: &ServerOptions) -> Result<Option<Self>> {
        let Some(bin) = janus_binary() else {
            return Ok(None);
        };
        let shim = noloopback_shim()?;
        launch(Flavor::Janus, options, |work_dir, ports| {
            let endpoints = Endpoints {
                http: ports[0],
                ws: ports[1],
                admin_http: ports[2],
                admin_ws: ports[3],
            };
            let conf = work_dir.join("conf");
            crate::janus_conf::write(&conf, options, &endpoints)?;
            let argv = vec![
                "env".to_owned(),
                format!("LD_PRELOAD={}", shim.display()),
                bin.display().to_string(),
                "-F".to_owned(),
                conf.display().to_string(),
            ];
            Ok((endpoints, argv))
        })
        .map(Some)
    }

    /// Start a server of `flavor`; `Ok(None)` only for a Janus that is not installed.
    pub fn start(flavor: Flavor, options: &ServerOptions) -> Result<Option<Self>> {
        match flavor {
            Flavor::Jsfu => Self::jsfu(options).map(Some),
            Flavor::Janus => Self::janus(options),
        }
    }

    /// Which implementation this is.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The options it was started with.
    pub fn options(&self) -> &ServerOptions {
        &self.options
    }

    /// Its listening addresses.
    pub fn endpoints(&self) -> Endpoints {
        self.endpoints
    }

    /// `http://ADDR/janus`.
    pub fn api_url(&self) -> String {
        format!("http://{}/janus", self.endpoints.http)
    }

    /// `ws://ADDR/`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/", self.endpoints.ws)
    }

    /// `http://ADDR/admin`.
    pub fn admin_url(&self) -> String {
        format!("http://{}/admin", self.endpoints.admin_http)
    }

    /// `ws://ADDR/` of the Admin API.
    pub fn admin_ws_url(&self) -> String {
        format!("ws://{}/", self.endpoints.admin_ws)
    }

    /// The file that receives the server's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail_of(&self.log, lines)
    }

    /// Whether the process is still running.
    pub fn is_running(&self) -> bool {
        let mut child = lock(&self.child);
        matches!(child.try_wait(), Ok(None))
    }

    /// The path of the `jsfu` binary that [`Server::jsfu`] runs.
    pub fn jsfu_binary() -> Result<PathBuf> {
        jsfu_binary()
    }

    /// The path of the Janus binary, if installed.
    pub fn janus_binary() -> Option<PathBuf> {
        janus_binary()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Closing the pipe makes the guard stop the server.
        drop(lock(&self.guard_pipe).take());
        let mut child = lock(&self.child);
        let deadline = Instant::now() + Duration::from_secs(8);
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "--- {} log ({}), last lines ---\n{}",
                self.flavor,
                self.log.display(),
                tail_of(&self.log, 60)
            );
            eprintln!("(work folder kept: {})", self.work_dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.work_dir);
        }
    }
}

/// Lock a mutex, ignoring poisoning (the guarded data stays consistent:
/// every critical section here is a single call).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Ports needed per flavor.
fn port_count(flavor: Flavor) -> usize {
    match flavor {
        Flavor::Jsfu => 3,
        Flavor::Janus => 4,
    }
}

/// Start `flavor`, retrying with fresh ports when the process dies early
/// (typically a port that another process grabbed meanwhile).
fn launch(
    flavor: Flavor,
    options: &ServerOptions,
    prepare: impl Fn(&Path, &[SocketAddr]) -> Result<(Endpoints, Vec<String>)>,
) -> Result<Server> {
    let mut last_error = None;
    for attempt in 1..=LAUNCH_ATTEMPTS {
        let work_dir = new_work_dir(flavor)?;
        let ports = free_ports(port_count(flavor))?;
        let (endpoints, argv) = prepare(&work_dir, &ports)?;
        match spawn(flavor, options, endpoints, &work_dir, &argv) {
            Ok(server) => return Ok(server),
            Err(e) => {
                eprintln!("{flavor}: launch attempt {attempt} failed: {e:#}");
                last_error = Some(e);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!("{flavor}: no launch attempt was made")))
}

fn spawn(
    flavor: Flavor,
    options: &ServerOptions,
    endpoints: Endpoints,
    work_dir: &Path,
    argv: &[String],
) -> Result<Server> {
    let log = work_dir.join("server.log");
    let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone().context("duplicating the log file handle")?;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(GUARD_SCRIPT)
        .arg("jsfu-tests-guard")
        .args(argv)
        .current_dir(work_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .with_context(|| format!("spawning {flavor}: {argv:?}"))?;
    let pipe = child.stdin.take();
    let server = Server {
        flavor,
        options: options.clone(),
        endpoints,
        work_dir: work_dir.to_path_buf(),
        log: log.clone(),
        child: Mutex::new(child),
        guard_pipe: Mutex::new(pipe),
    };
    let started = Instant::now();
    loop {
        if !server.is_running() {
            let tail = server.log_tail(30);
            // Dropping `server` removes the work folder; the log is quoted here.
            bail!("{flavor} exited during startup ({argv:?}); log:\n{tail}");
        }
        if is_ready(&endpoints) {
            return Ok(server);
        }
        if started.elapsed() > STARTUP_TIMEOUT {
            let tail = server.log_tail(30);
            bail!(
                "{flavor} did not answer GET /janus/info on {} within {STARTUP_TIMEOUT:?}; log:\n{tail}",
                endpoints.http
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `GET /janus/info` answers with a `server_info` and every other port accepts connections.
fn is_ready(endpoints: &Endpoints) -> bool {
    let Ok(body) = blocking_get(endpoints.http, "/janus/info") else {
        return false;
    };
    if !body.contains("server_info") {
        return false;
    }
    [endpoints.ws, endpoints.admin_http, endpoints.admin_ws]
        .iter()
        .all(|addr| TcpStream::connect_timeout(addr, Duration::from_millis(300)).is_ok())
}

/// A minimal HTTP/1.0 GET (no runtime needed); returns the body of a 200 answer.
fn blocking_get(addr: SocketAddr, path: &str) -> Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(300))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let Some((head, body)) = answer.split_once("\r\n\r\n") else {
        bail!("no HTTP header end");
    };
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!("status line {:?}", head.lines().next());
    }
    Ok(body.to_owned())
}

fn jsfu_args(
    options: &ServerOptions,
    endpoints: &Endpoints,
    work_dir: &Path,
) -> Result<Vec<String>> {
    let mut args = vec![
        "--http".to_owned(),
        endpoints.http.to_string(),
        "--ws".to_owned(),
        endpoints.ws.to_string(),
        "--admin".to_owned(),
        endpoints.admin_http.to_string(),
        "--log-level".to_owned(),
        options
            .log_level
            .clone()
            .unwrap_or_else(|| "info".to_owned()),
    ];
    if let Some(secret) = &options.api_secret {
        args.extend(["--api-secret".to_owned(), secret.clone()]);
    }
    if let Some(secret) = &options.admin_secret {
        args.extend(["--admin-secret".to_owned(), secret.clone()]);
    }
    if options.token_auth {
        args.push("--token-auth".to_owned());
    }
    if let Some(secs) = options.session_timeout {
        args.extend(["--session-timeout".to_owned(), secs.to_string()]);
    }
    let default_modules = options.modules.is_none()
        || options.modules.as_deref()
            == options
                .script
                .parent()
                .filter(|p| !p.as_os_str().is_empty());
    if default_modules && options.config.is_none() {
        args.extend(["--script".to_owned(), options.script.display().to_string()]);
    } else {
        // Modules folder and init config have no flags: use a config file.
        let file = work_dir.join("jsfu.toml");
        let mut toml = String::from("[[scripts]]\n");
        toml.push_str(&format!(
            "file = {}\n",
            toml_string(&options.script.display().to_string())
        ));
        toml.push_str(&format!(
            "modules = {}\n",
            toml_string(&options.modules_folder().display().to_string())
        ));
        if let Some(config) = &options.config {
            toml.push_str(&format!("config = {}\n", toml_string(config)));
        }
        fs::write(&file, toml).with_context(|| format!("writing {}", file.display()))?;
        args.extend(["--config".to_owned(), file.display().to_string()]);
    }
    Ok(args)
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `JSFU_BIN`, else `jsfu` in the profile folder this test binary was built into.
fn jsfu_binary() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("JSFU_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let profile_dir = profile_dir()?;
    let bin = profile_dir.join("jsfu");
    if !bin.is_file() {
        bail!(
            "{} does not exist: build it first with `cargo build -p jsfu` (or set JSFU_BIN)",
            bin.display()
        );
    }
    Ok(bin)
}

/// `JANUS_BIN` if set (and existing), else `/usr/bin/janus` if it exists.
fn janus_binary() -> Option<PathBuf> {
    let bin = std::env::var_os("JANUS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/janus"));
    bin.is_file().then_some(bin)
}

/// `<target>/<profile>`: test binaries live in `<target>/<profile>/deps`.
fn profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test binary")?;
    let mut dir = exe
        .parent()
        .context("test binary has no parent folder")?
        .to_path_buf();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    Ok(dir)
}

/// `<target>/<profile>/jsfu-tests`, pruned once per process of folders left
/// by test processes that no longer exist.
fn work_root() -> Result<PathBuf> {
    static ROOT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = profile_dir()
            .map_err(|e| format!("{e:#}"))?
            .join("jsfu-tests");
        fs::create_dir_all(&root).map_err(|e| format!("creating {}: {e}", root.display()))?;
        if let Ok(entries) = fs::read_dir(&root) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let owner = name.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
                if let Some(pid) = owner {
                    if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                        let _ = fs::remove_dir_all(entry.path());
                    }
                }
            }
        }
        Ok(root)
    })
    .clone()
    .map_err(anyhow::Error::msg)
}

/// A new folder `<flavor>-<pid>-<n>` under [`work_root`].
fn new_work_dir(flavor: Flavor) -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = work_root()?.join(format!("{flavor}-{}-{n}", std::process::id()));
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Build (once per process) the getifaddrs shim preloaded into Janus.
fn noloopback_shim() -> Result<PathBuf> {
    static SHIM: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    SHIM.get_or_init(|| {
        let build = || -> Result<PathBuf> {
            let dir = work_root()?.join(format!("shim-{}", std::process::id()));
            fs::create_dir_all(&dir)?;
            let source = dir.join("noloopback.c");
            fs::write(&source, include_str!("shim/noloopback.c"))?;
            let library = dir.join("libnoloopback.so");
            let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
            let output = Command::new(&cc)
                .args(["-shared", "-fPIC", "-O2", "-o"])
                .arg(&library)
                .arg(&source)
                .arg("-ldl")
                .output()
                .with_context(|| format!("running {cc} (a C compiler is needed to run Janus)"))?;
            if !output.status.success() {
                bail!(
                    "{cc} failed to build the getifaddrs shim: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            Ok(library)
        };
        build().map_err(|e| format!("{e:#}"))
    })
    .clone()
    .map_err(anyhow::Error::msg)
}

/// The last `lines` lines of a text file (lossy UTF-8).
fn tail_of(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}
