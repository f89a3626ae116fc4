//! The servers under test: launching `jsfu` or Debian's Janus on loopback
//! (or connecting to one already running), and reading their CPU time and
//! memory from `/proc`.
//!
//! A launched server runs pinned to one CPU core (`taskset`), with its output
//! in a private work folder, and is stopped (SIGTERM, then SIGKILL) when the
//! [`Server`] is dropped.

use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long a server may take to answer `GET /janus/info`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Which implementation to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Flavor {
    Jsfu,
    Janus,
}

impl Flavor {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Jsfu => "jsfu",
            Self::Janus => "janus",
        }
    }
}

/// How to launch a server.
#[derive(Debug, Clone)]
pub(crate) struct LaunchOptions {
    pub(crate) flavor: Flavor,
    /// The `jsfu` binary (ignored for Janus).
    pub(crate) jsfu_bin: PathBuf,
    /// The `janus` binary (ignored for jsfu).
    pub(crate) janus_bin: PathBuf,
    /// The script to load as the only plugin.
    pub(crate) script: PathBuf,
    /// `getModulesFolder()`: the script's folder unless given.
    pub(crate) modules: Option<PathBuf>,
    /// CPU core the server is pinned to (None: not pinned).
    pub(crate) core: Option<usize>,
    /// Extra arguments for jsfu.
    pub(crate) jsfu_args: Vec<String>,
    /// Niceness to run the server with (`nice -n`), e.g. -10 on a busy machine.
    pub(crate) nice: Option<i32>,
    /// Fraction of one core the server may use (`--cpu-quota`, a cgroup).
    pub(crate) cpu_quota: Option<f64>,
}

/// A server to benchmark: its API endpoints and, when known, its process.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) flavor: Flavor,
    pub(crate) http: String,
    pub(crate) ws: String,
    pub(crate) pid: Option<u32>,
    pub(crate) version: String,
    child: Option<Child>,
    work: Option<PathBuf>,
    /// The cgroup limiting it (dropped after the child is gone).
    quota: Option<crate::quota::CpuQuota>,
}

impl Server {
    /// An already running server (`pid` enables the CPU/memory figures).
    pub(crate) fn external(flavor: Flavor, http: String, ws: String, pid: Option<u32>) -> Self {
        Self {
            flavor,
            http,
            ws,
            pid,
            version: String::from("external"),
            child: None,
            work: None,
            quota: None,
        }
    }

    /// The share of one core the server may use, in percent (100 unless
    /// it runs under `--cpu-quota`).
    pub(crate) fn cpu_budget_pct(&self) -> f64 {
        self.quota.as_ref().map_or(100.0, |q| q.fraction() * 100.0)
    }

    /// Launch a server on free loopback ports and wait until it answers.
    pub(crate) fn launch(options: &LaunchOptions) -> Result<Self> {
        Self::start(options, false)
    }

    /// Like [`Server::launch`], but Janus runs its native VideoRoom plugin
    /// (`libjanus_videoroom.so`, no rooms configured) instead of the Duktape
    /// one; jsfu still runs the script (`scripts/videoroom.js`).
    pub(crate) fn launch_videoroom(options: &LaunchOptions) -> Result<Self> {
        Self::start(options, true)
    }

    fn start(options: &LaunchOptions, native_videoroom: bool) -> Result<Self> {
        let work = std::env::temp_dir().join(format!(
            "jsfu-bench-{}-{}-{}",
            options.flavor.name(),
            std::process::id(),
            unique()
        ));
        fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
        let [http_port, ws_port, admin_port] = free_ports()?;
        let script = fs::canonicalize(&options.script)
            .with_context(|| format!("script {}", options.script.display()))?;
        let modules = match &options.modules {
            Some(m) => fs::canonicalize(m).with_context(|| format!("modules {}", m.display()))?,
            None => script
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        };
        let log = fs::File::create(work.join("server.log")).context("creating the server log")?;
        let log2 = log.try_clone().context("cloning the log handle")?;
        let mut cmd;
        let version;
        match options.flavor {
            Flavor::Jsfu => {
                cmd = pinned(options.core, options.nice, &options.jsfu_bin);
                cmd.arg("--script")
                    .arg(&script)
                    .arg("--http")
                    .arg(format!("127.0.0.1:{http_port}"))
                    .arg("--ws")
                    .arg(format!("127.0.0.1:{ws_port}"))
                    .arg("--admin")
                    .arg(format!("127.0.0.1:{admin_port}"))
                    .args(["--media-ip", "127.0.0.1", "--rtp-port-base", "0"])
                    .args(["--log-level", "warn"])
                    .args(&options.jsfu_args);
                version = command_version(&options.jsfu_bin, "--version");
            }
            Flavor::Janus => {
                let conf = work.join("conf");
                let ports = [http_port, ws_port, admin_port];
                write_janus_config(&conf, &script, &modules, ports, native_videoroom)?;
                let shim = build_shim(&work)?;
                cmd = pinned(options.core, options.nice, &options.janus_bin);
                cmd.arg("-F")
                    .arg(&conf)
                    .arg("-L")
                    .arg(work.join("janus.log"))
                    .args(["-N", "-d", "3"])
                    .env("LD_PRELOAD", &shim);
                version = command_version(&options.janus_bin, "--version");
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        let quota = options
            .cpu_quota
            .map(crate::quota::CpuQuota::create)
            .transpose()?;
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", options.flavor.name()))?;
        let pid = child.id();
        let mut server = Self {
            flavor: options.flavor,
            http: format!("http://127.0.0.1:{http_port}/janus"),
            ws: format!("ws://127.0.0.1:{ws_port}/"),
            pid: Some(pid),
            version,
            child: Some(child),
            work: Some(work),
            quota: None,
        };
        if let Some(quota) = quota {
            // Before the server has any load (an error drops `server`,
            // which stops the child).
            quota.add(pid)?;
            server.quota = Some(quota);
        }
        server.wait_ready(http_port)?;
        Ok(server)
    }

    fn wait_ready(&mut self, port: u16) -> Result<()> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .context("building an HTTP client")?;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!(
                    "{} exited at start ({status}); log in {}",
                    self.flavor.name(),
                    self.work_dir()
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
                && client
                    .get(format!("{}/info", self.http))
                    .send()
                    .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "{} did not answer on {} in time; log in {}",
            self.flavor.name(),
            self.http,
            self.work_dir()
        )
    }

    /// The folder holding the server's log and configuration.
    pub(crate) fn work_dir(&self) -> String {
        self.work
            .as_ref()
            .map_or_else(|| String::from("-"), |w| w.display().to_string())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: kill(2) on our own child's pid; no memory is involved.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// `[nice -n N] [taskset -c CORE] BIN` (nice and taskset exec, so the
/// child's pid is BIN's).
pub(crate) fn pinned(core: Option<usize>, nice: Option<i32>, bin: &Path) -> Command {
    let mut words: Vec<std::ffi::OsString> = Vec::new();
    if let Some(n) = nice {
        words.extend(["nice".into(), "-n".into(), n.to_string().into()]);
    }
    if let Some(core) = core {
        words.extend(["taskset".into(), "-c".into(), core.to_string().into()]);
    }
    words.push(bin.as_os_str().to_owned());
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..]);
    cmd
}

/// Set this process's niceness (best effort; lowering it needs privileges).
pub(crate) fn renice_self(nice: i32) {
    // SAFETY: setpriority has no memory side effects.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, nice);
    }
}

fn command_version(bin: &Path, flag: &str) -> String {
    Command::new(bin)
        .arg(flag)
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().to_owned())
        })
        .unwrap_or_else(|| String::from("unknown"))
}

/// Three distinct free TCP ports on 127.0.0.1.
fn free_ports() -> Result<[u16; 3]> {
    let listeners = [
        TcpListener::bind("127.0.0.1:0"),
        TcpListener::bind("127.0.0.1:0"),
        TcpListener::bind("127.0.0.1:0"),
    ];
    let mut ports = [0; 3];
    for (port, l) in ports.iter_mut().zip(listeners) {
        *port = l
            .context("binding a free port")?
            .local_addr()
            .context("reading a port")?
            .port();
    }
    Ok(ports)
}

/// The getifaddrs() shim Janus needs to gather candidates on loopback: Janus
/// skips interfaces flagged IFF_LOOPBACK, so the shim (preloaded into Janus
/// only) clears that flag on every interface it reports.
const SHIM_SOURCE: &str = r#"#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stddef.h>

typedef int (*real_fn)(struct ifaddrs **);

int getifaddrs(struct ifaddrs **list) {
	static real_fn real = NULL;
	if (real == NULL)
		real = (real_fn)dlsym(RTLD_NEXT, "getifaddrs");
	if (real == NULL)
		return -1;
	int rc = real(list);
	if (rc != 0 || list == NULL)
		return rc;
	for (struct ifaddrs *i = *list; i != NULL; i = i->ifa_next)
		i->ifa_flags &= ~IFF_LOOPBACK;
	return rc;
}
"#;

fn build_shim(work: &Path) -> Result<PathBuf> {
    let source = work.join("loopback_shim.c");
    let library = work.join("libloopback_shim.so");
    fs::write(&source, SHIM_SOURCE).context("writing the getifaddrs shim")?;
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&library)
        .arg(&source)
        .arg("-ldl")
        .status()
        .context("running cc for the getifaddrs shim (apt-get install gcc)")?;
    if !status.success() {
        bail!("cc failed building the getifaddrs shim ({status})");
    }
    Ok(library)
}

/// Janus's library folder (`JANUS_LIB_DIR`, else the first
/// `/usr/lib/*/janus` holding the Duktape plugin).
fn janus_lib_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("JANUS_LIB_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let mut candidates: Vec<PathBuf> = fs::read_dir("/usr/lib")
        .map(|d| d.flatten().map(|e| e.path().join("janus")).collect())
        .unwrap_or_default();
    candidates.sort();
    candidates.push(PathBuf::from("/usr/lib/janus"));
    candidates
        .into_iter()
        .find(|d| d.join("plugins/libjanus_duktape.so").is_file())
        .context(
            "Janus's library folder (plugins/libjanus_duktape.so) not found; set JANUS_LIB_DIR",
        )
}

/// Every `.so` in `folder` but the `keep` ones, comma separated.
fn others(folder: &Path, keep: &[&str]) -> String {
    let mut names: Vec<String> = fs::read_dir(folder)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".so") && !keep.contains(&n.as_str()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.join(",")
}

fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Write Janus's configuration folder: the core (loopback-only ICE, the
/// Duktape plugin only, or the native VideoRoom plugin only), the Duktape
/// plugin (our script) or the VideoRoom plugin (no rooms: the harness
/// creates them), and the HTTP and WebSocket transports on the given ports
/// (HTTP, WebSocket, admin).
fn write_janus_config(
    dir: &Path,
    script: &Path,
    modules: &Path,
    [http, ws, admin]: [u16; 3],
    native_videoroom: bool,
) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let lib = janus_lib_dir()?;
    let plugin = if native_videoroom {
        "libjanus_videoroom.so"
    } else {
        "libjanus_duktape.so"
    };
    if !lib.join("plugins").join(plugin).is_file() {
        bail!("{plugin} is not in {}/plugins", lib.display());
    }
    let keep = [plugin, "libjanus_http.so", "libjanus_websockets.so"];
    let mut core = String::from("general: {\n");
    for kind in ["plugins", "transports", "events", "loggers"] {
        let folder = lib.join(kind).display().to_string();
        writeln!(core, "\t{kind}_folder = {}", quoted(&folder))?;
    }
    core.push_str("\tdebug_level = 3\n\tinterface = \"127.0.0.1\"\n\tsession_timeout = 120\n}\n");
    core.push_str("media: {\n\tipv6 = false\n\trtp_port_range = \"30000-60000\"\n}\n");
    core.push_str(
        "nat: {\n\tice_lite = false\n\tice_tcp = false\n\tfull_trickle = false\n\tignore_mdns = true\n\tice_enforce_list = \"127.0.0.1\"\n}\n",
    );
    for kind in ["plugins", "transports", "loggers", "events"] {
        writeln!(
            core,
            "{kind}: {{\n\tdisable = {}\n}}",
            quoted(&others(&lib.join(kind), &keep))
        )?;
    }
    fs::write(dir.join("janus.jcfg"), core).context("writing janus.jcfg")?;
    let duktape = format!(
        "general: {{\n\tpath = {}\n\tscript = {}\n}}\n",
        quoted(&modules.display().to_string()),
        quoted(&script.display().to_string())
    );
    fs::write(dir.join("janus.plugin.duktape.jcfg"), duktape)
        .context("writing janus.plugin.duktape.jcfg")?;
    fs::write(dir.join("janus.plugin.videoroom.jcfg"), "general: {\n}\n")
        .context("writing janus.plugin.videoroom.jcfg")?;
    let http_conf = format!(
        "general: {{\n\tjson = \"compact\"\n\tbase_path = \"/janus\"\n\thttp = true\n\tport = {http}\n\tip = \"127.0.0.1\"\n\thttps = false\n}}\n\
         admin: {{\n\tadmin_http = false\n\tadmin_port = {admin}\n\tadmin_https = false\n}}\ncors: {{\n}}\n"
    );
    fs::write(dir.join("janus.transport.http.jcfg"), http_conf)
        .context("writing janus.transport.http.jcfg")?;
    let ws_conf = format!(
        "general: {{\n\tjson = \"compact\"\n\tws = true\n\tws_port = {ws}\n\tws_ip = \"127.0.0.1\"\n\twss = false\n}}\n\
         admin: {{\n\tadmin_ws = false\n\tadmin_wss = false\n}}\ncors: {{\n}}\n"
    );
    fs::write(dir.join("janus.transport.websockets.jcfg"), ws_conf)
        .context("writing janus.transport.websockets.jcfg")?;
    Ok(())
}

/// Clock ticks per second of /proc's CPU times.
fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no memory side effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// utime + stime of a `/proc/.../stat` file, in microseconds, and the
/// thread's name.
fn stat_cpu(path: &Path) -> Option<(String, u64)> {
    let text = fs::read_to_string(path).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_owned();
    // Fields after the name: state is field 3; utime, stime are 14 and 15.
    let rest: Vec<&str> = text.get(close + 2..)?.split_whitespace().collect();
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    let us = (utime + stime) as f64 * 1e6 / clock_ticks();
    Some((name, us as u64))
}

/// CPU time of a process and of each of its threads.
#[derive(Debug, Clone, Default)]
pub(crate) struct CpuSample {
    pub(crate) total_us: u64,
    /// (tid, name, µs)
    pub(crate) threads: Vec<(u32, String, u64)>,
}

/// Sample `/proc/PID/stat` and `/proc/PID/task/*/stat`.
pub(crate) fn cpu_sample(pid: u32) -> CpuSample {
    let base = PathBuf::from(format!("/proc/{pid}"));
    let total_us = stat_cpu(&base.join("stat")).map_or(0, |(_, us)| us);
    let mut threads = Vec::new();
    if let Ok(dir) = fs::read_dir(base.join("task")) {
        for entry in dir.flatten() {
            let Ok(tid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if let Some((name, us)) = stat_cpu(&entry.path().join("stat")) {
                threads.push((tid, name, us));
            }
        }
    }
    CpuSample { total_us, threads }
}

/// CPU time of this process (the generator).
pub(crate) fn own_cpu_us() -> u64 {
    stat_cpu(Path::new("/proc/self/stat")).map_or(0, |(_, us)| us)
}

/// Resident set size of a process in KiB.
pub(crate) fn rss_kib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Per-thread CPU between two samples, grouped by thread name, as
/// (name, threads, µs), busiest first.
pub(crate) fn thread_delta(before: &CpuSample, after: &CpuSample) -> Vec<(String, usize, u64)> {
    let mut by_name: Vec<(String, usize, u64)> = Vec::new();
    for (tid, raw, us) in &after.threads {
        let name = &generic(raw);
        let prev = before
            .threads
            .iter()
            .find(|(t, _, _)| t == tid)
            .map_or(0, |(_, _, u)| *u);
        let delta = us.saturating_sub(prev);
        match by_name.iter_mut().find(|(n, _, _)| n == name) {
            Some(entry) => {
                entry.1 += 1;
                entry.2 += delta;
            }
            None => by_name.push((name.clone(), 1, delta)),
        }
    }
    by_name.sort_by_key(|b| std::cmp::Reverse(b.2));
    by_name
}

/// A thread name with every run of digits replaced by `#`, so that threads
/// named per session or per shard group together.
fn generic(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_digit() {
            if !out.ends_with('#') {
                out.push('#');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Pin the calling thread to `core` (best effort).
pub(crate) fn pin_current_thread(core: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside
    // it; sched_setaffinity reads it for the calling thread (pid 0).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Number of online CPUs.
pub(crate) fn cpu_count() -> usize {
    // SAFETY: sysconf has no memory side effects. (Not available_parallelism:
    // that follows this thread's affinity, which pinning narrows.)
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).ok().filter(|n| *n > 0).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_names_group_without_their_numbers() {
        assert_eq!(generic("hloop 978090098"), "hloop #");
        assert_eq!(generic("jsfu-shard-0-12"), "jsfu-shard-#-#");
        let before = CpuSample {
            total_us: 0,
            threads: vec![(1, "hloop 1".into(), 100), (2, "hloop 2".into(), 0)],
        };
        let after = CpuSample {
            total_us: 0,
            threads: vec![
                (1, "hloop 1".into(), 300),
                (2, "hloop 2".into(), 50),
                (3, "main".into(), 10),
            ],
        };
        let d = thread_delta(&before, &after);
        assert_eq!(d[0], ("hloop #".to_owned(), 2, 250));
        assert_eq!(d[1], ("main".to_owned(), 1, 10));
    }

    #[test]
    fn own_cpu_time_is_read() {
        let spin = Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(30) {
            x = x.wrapping_add(1);
        }
        assert!(x > 0);
        assert!(own_cpu_us() > 0);
        assert!(rss_kib(std::process::id()) > 0);
    }
}
