//! Shared by the VideoRoom tests (`videoroom_api.rs`, `videoroom_demo.rs`):
//! the real Janus with its native C VideoRoom plugin (Debian's `janus`
//! package), started with a generated configuration as the reference.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use jsfu_tests::ports;

/// Room 1234 as Janus's sample configuration has it (the demo pages use it).
pub(crate) const DEMO_ROOM: &str = "room-1234: {\n\tdescription = \"Demo Room\"\n\tsecret = \"adminpwd\"\n\tpublishers = 6\n\tbitrate = 128000\n\tfir_freq = 10\n\trecord = false\n}\n";

/// Where the reference Janus listens and what it knows.
#[derive(Debug, Clone, Default)]
pub(crate) struct JanusSetup {
    /// The Janus API over HTTP on 127.0.0.1:`port` (path /janus), if set.
    pub(crate) http_port: Option<u16>,
    /// Room definitions for `janus.plugin.videoroom.jcfg` (libconfig text).
    pub(crate) rooms: String,
}

/// The real Janus with only its native VideoRoom plugin and the WebSocket
/// transport, on a free loopback port; stopped when dropped.
pub(crate) struct NativeJanus {
    child: Child,
    ws_port: u16,
    pub(crate) log: PathBuf,
    dir: PathBuf,
}

impl NativeJanus {
    /// `None` (with a notice) when Janus or its VideoRoom plugin is not
    /// installed.
    pub(crate) fn start(setup: &JanusSetup) -> Option<Self> {
        let bin = std::env::var_os("JANUS_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/janus"));
        let Some(lib) = janus_library_folder() else {
            eprintln!("SKIP: Janus's native VideoRoom plugin is not installed (package janus)");
            return None;
        };
        if !bin.is_file() {
            eprintln!("SKIP: {} is not installed (package janus)", bin.display());
            return None;
        }
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "jsfu-videoroom-janus-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let conf = dir.join("conf");
        fs::create_dir_all(&conf).unwrap_or_else(|e| panic!("creating {}: {e}", conf.display()));
        let shim = build_shim(&dir);
        let ws_port =
            ports::free_ports(1).unwrap_or_else(|e| panic!("finding a free port: {e:#}"))[0].port();
        write_config(&conf, &lib, ws_port, setup);
        let log = dir.join("janus.log");
        let child = Command::new(&bin)
            .env("LD_PRELOAD", &shim)
            .arg("-F")
            .arg(&conf)
            .arg("-L")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let janus = Self {
            child,
            ws_port,
            log,
            dir,
        };
        // Generous: a loaded 2-core CI machine can take a while to start Janus.
        let deadline = Instant::now() + Duration::from_secs(45);
        while TcpStream::connect(("127.0.0.1", ws_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "Janus did not open its WebSocket port in time; log: {}",
                janus.log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(janus)
    }

    pub(crate) fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.ws_port)
    }
}

impl Drop for NativeJanus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The first `/usr/lib/<triplet>/janus` (or `JANUS_LIB_DIR`) holding the
/// native VideoRoom plugin.
fn janus_library_folder() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("JANUS_LIB_DIR")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    if let Ok(entries) = fs::read_dir("/usr/lib") {
        let mut found: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("janus")).collect();
        found.sort();
        candidates.extend(found);
    }
    candidates.push(PathBuf::from("/usr/lib/janus"));
    candidates
        .into_iter()
        .find(|dir| dir.join("plugins/libjanus_videoroom.so").is_file())
}

/// Janus skips loopback interfaces when gathering candidates; the harness's
/// getifaddrs shim (built here) clears that flag so ICE works on 127.0.0.1.
fn build_shim(dir: &Path) -> PathBuf {
    let source = dir.join("noloopback.c");
    fs::write(&source, include_str!("../../src/shim/noloopback.c"))
        .unwrap_or_else(|e| panic!("writing {}: {e}", source.display()));
    let library = dir.join("libnoloopback.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let output = Command::new(&cc)
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&library)
        .arg(&source)
        .arg("-ldl")
        .output()
        .unwrap_or_else(|e| panic!("running {cc} (needed to run Janus): {e}"));
    assert!(
        output.status.success(),
        "{cc} failed to build the getifaddrs shim: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    library
}

/// `janus.jcfg` enabling only the VideoRoom plugin and the WebSocket (and,
/// with `setup.http_port`, HTTP) transports, plus their configurations.
fn write_config(conf: &Path, lib: &Path, ws_port: u16, setup: &JanusSetup) {
    // The HTTP transport is only loaded when it has a port to serve.
    let transports: &[&str] = if setup.http_port.is_some() {
        &["libjanus_websockets.so", "libjanus_http.so"]
    } else {
        &["libjanus_websockets.so"]
    };
    let disabled = |kind: &str, keep: &[&str]| -> String {
        let mut names: Vec<String> = fs::read_dir(lib.join(kind))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".so") && !keep.contains(&n.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names.join(",")
    };
    let core = format!(
        "general: {{\n\tplugins_folder = \"{lib}/plugins\"\n\ttransports_folder = \"{lib}/transports\"\n\
         \tevents_folder = \"{lib}/events\"\n\tloggers_folder = \"{lib}/loggers\"\n\tdebug_level = 4\n\
         \tdebug_colors = false\n\tinterface = \"127.0.0.1\"\n}}\n\
         media: {{\n\tipv6 = false\n\trtp_port_range = \"20000-40000\"\n}}\n\
         nat: {{\n\tfull_trickle = false\n\tice_lite = false\n\tice_tcp = false\n\tignore_mdns = true\n\
         \tice_enforce_list = \"127.0.0.1\"\n}}\n\
         plugins: {{\n\tdisable = \"{plugins}\"\n}}\n\
         transports: {{\n\tdisable = \"{transports}\"\n}}\n\
         loggers: {{\n\tdisable = \"{loggers}\"\n}}\n\
         events: {{\n\tbroadcast = false\n\tdisable = \"{events}\"\n}}\n",
        lib = lib.display(),
        plugins = disabled("plugins", &["libjanus_videoroom.so"]),
        transports = disabled("transports", transports),
        loggers = disabled("loggers", &[]),
        events = disabled("events", &[]),
    );
    let ws = format!(
        "general: {{\n\tjson = \"plain\"\n\tws = true\n\tws_port = {ws_port}\n\tws_ip = \"127.0.0.1\"\n\
         \twss = false\n}}\nadmin: {{\n\tadmin_ws = false\n\tadmin_wss = false\n}}\ncors: {{\n}}\n"
    );
    let http = format!(
        "general: {{\n\tjson = \"plain\"\n\tbase_path = \"/janus\"\n\thttp = true\n\tport = {}\n\
         \tip = \"127.0.0.1\"\n\thttps = false\n}}\nadmin: {{\n\tadmin_http = false\n\tadmin_https = false\n}}\n\
         cors: {{\n}}\n",
        setup.http_port.unwrap_or(0)
    );
    let videoroom = format!("general: {{\n}}\n{}", setup.rooms);
    for (name, text) in [
        ("janus.jcfg", core.as_str()),
        ("janus.transport.websockets.jcfg", ws.as_str()),
        ("janus.transport.http.jcfg", http.as_str()),
        ("janus.plugin.videoroom.jcfg", videoroom.as_str()),
    ] {
        let path = conf.join(name);
        fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}
