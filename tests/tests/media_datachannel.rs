//! Data channels end to end with a real WebRTC peer: the aiortc client
//! `tests/media/datachannel_echo.py`.
//!
//! * Echo (`--mode echo`): Debian's unchanged `echotest.js` and jsfu's
//!   `scripts/echotest.js` answer text with `[echotest.js] --> <text>` and
//!   binary byte for byte, including the message sent in the channel's
//!   `open` handler, a 60000-byte message, a second (unordered, unreliable)
//!   channel and a burst of 1,500 messages of 1 KiB; over HTTP and WebSocket. The real
//!   Janus runs the same flow as the reference (its lost first message is
//!   only noted).
//! * Relay across shards (`--mode relay-native` / `relay-script`): jsfu with
//!   two shards runs `tests/media/datachannel-relay.js` (native relay along
//!   `addRecipient` edges: label `JanusDataChannel`) and
//!   `datachannel-relay-script.js` (the script relays: label and protocol
//!   kept); the two PeerConnections must land on different shards.
//!
//! Needs `python3` (or `PYTHON`) with aiortc; skipped with a notice without
//! it, except in CI (`CI=true`), where that fails.

mod media_support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jsfu_tests::Transport;
use jsfu_tests::server::{DUKTAPE_MODULES, Flavor, Server};
use media_support::{
    Script, aiortc_available, assert_passed, media_lock, python, run_client, start, transport_arg,
    url,
};
use serde_json::Value;

/// Checks every echo run must have made and passed.
const ECHO_CHECKS: &[&str] = &[
    "answer",
    "first_message",
    "text_echo",
    "binary_echo",
    "large_binary_echo",
    "second_channel",
    "throughput",
];

/// Checks of the reference run (Janus may lose the first message).
const REFERENCE_CHECKS: &[&str] = &[
    "answer",
    "text_echo",
    "binary_echo",
    "large_binary_echo",
    "second_channel",
    "throughput",
];

/// Checks every relay run must have made and passed.
const RELAY_CHECKS: &[&str] = &["different_shards", "a_to_b", "b_to_a", "no_echo_to_sender"];

fn media_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("media")
}

fn client(args: &[&str]) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(media_dir().join("datachannel_echo.py")).args(args);
    cmd
}

fn echo(flavor: Flavor, script: Script) {
    if !aiortc_available() {
        return;
    }
    let _serial = media_lock();
    let Some(server) = start(flavor, script) else {
        return;
    };
    for transport in [Transport::Http, Transport::Ws] {
        let label = format!(
            "datachannel/{flavor}/{script:?}/{}",
            transport_arg(transport)
        );
        let server_url = url(&server, transport);
        // 1,500 messages of 1 KiB back to back: more than a megabyte waits
        // in the server's send queue while the peer catches up, and more
        // than 1,024 messages wait in the queues between shard, control and
        // script; every message must still come back, in order.
        let mut args = vec![
            "--transport",
            transport_arg(transport),
            "--url",
            &server_url,
            "--burst",
            "1500",
        ];
        // jsfu's own script passes byte lengths: non-ASCII text survives.
        if script == Script::Jsfu {
            args.push("--unicode");
        }
        let checks = if flavor == Flavor::Janus {
            args.push("--first-message-optional");
            REFERENCE_CHECKS
        } else {
            ECHO_CHECKS
        };
        let run = run_client(&label, client(&args));
        assert_passed(&run, &server, checks);
        if let Some(summary) = &run.summary {
            eprintln!(
                "{label}: throughput {} first message lost: {}",
                summary["throughput"],
                summary["first_message_lost"] == Value::Bool(true)
            );
        }
    }
}

#[test]
fn datachannel_echo_janus_debian_script() {
    echo(Flavor::Janus, Script::Debian);
}

#[test]
fn datachannel_echo_jsfu_debian_script() {
    echo(Flavor::Jsfu, Script::Debian);
}

#[test]
fn datachannel_echo_jsfu_own_script() {
    echo(Flavor::Jsfu, Script::Jsfu);
}

/// jsfu started by this test (the harness has no shard option), killed on drop.
struct TwoShardJsfu {
    child: Child,
    http: SocketAddr,
    log: PathBuf,
}

impl TwoShardJsfu {
    fn start() -> Option<Self> {
        if !Path::new(DUKTAPE_MODULES).join("janus-sdp.js").is_file() {
            eprintln!("SKIP: {DUKTAPE_MODULES}/janus-sdp.js is not installed (package janus)");
            return None;
        }
        let bin = Server::jsfu_binary().unwrap_or_else(|e| panic!("jsfu binary: {e:#}"));
        let ports = jsfu_tests::ports::free_ports(2).unwrap_or_else(|e| panic!("ports: {e:#}"));
        let dir = std::env::temp_dir().join(format!("jsfu-dc-relay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let config = dir.join("jsfu.toml");
        let mut toml = String::new();
        for script in ["datachannel-relay.js", "datachannel-relay-script.js"] {
            toml.push_str(&format!(
                "[[scripts]]\nfile = {:?}\nmodules = {:?}\n\n",
                media_dir().join(script).display().to_string(),
                DUKTAPE_MODULES
            ));
        }
        std::fs::write(&config, toml).unwrap_or_else(|e| panic!("{}: {e}", config.display()));
        let log = dir.join("jsfu.log");
        let log_file =
            std::fs::File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let child = Command::new(bin)
            .arg("--config")
            .arg(&config)
            .args([
                "--shards",
                "2",
                "--rtp-port-base",
                "0",
                "--media-ip",
                "127.0.0.1",
            ])
            .args(["--http", &ports[0].to_string(), "--ws", "off"])
            .args(["--admin", &ports[1].to_string(), "--log-level", "info"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting jsfu: {e}"));
        let server = Self {
            child,
            http: ports[0],
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(server.http).is_err() {
            assert!(
                Instant::now() < deadline,
                "jsfu did not listen on {}: {}",
                server.http,
                std::fs::read_to_string(&server.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(server)
    }
}

impl Drop for TwoShardJsfu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn datachannel_relay_across_shards() {
    if !aiortc_available() {
        return;
    }
    let _serial = media_lock();
    let Some(server) = TwoShardJsfu::start() else {
        return;
    };
    let api = format!("http://{}/janus", server.http);
    for (mode, plugin) in [
        ("relay-native", "janus.plugin.dcrelayjs"),
        ("relay-script", "janus.plugin.dcrelayscriptjs"),
    ] {
        let label = format!("datachannel/{mode}");
        let args = [
            "--mode",
            mode,
            "--plugin",
            plugin,
            "--expect-shards",
            "2",
            "--transport",
            "http",
            "--url",
            &api,
        ];
        let run = run_client(&label, client(&args));
        let passed = run.summary.as_ref().is_some_and(|s| {
            s["ok"] == Value::Bool(true)
                && RELAY_CHECKS
                    .iter()
                    .all(|c| s["checks"][c]["ok"] == Value::Bool(true))
        });
        if !passed || run.status != Some(0) {
            let mut out = std::io::stderr();
            let _ = writeln!(
                out,
                "server log:\n{}",
                std::fs::read_to_string(&server.log).unwrap_or_default()
            );
            panic!("{label} failed\n{}", run.report());
        }
        eprintln!("{label}: passed");
    }
}
