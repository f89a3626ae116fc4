//! Echo test with an independent WebRTC stack: `jsfu-test-peer` (str0m,
//! built from `tests/peer/`) sends synthetic Opus and VP8 frames through the
//! echo script and checks that every echoed frame is byte-identical to one it
//! sent, the counts, the `video` toggle (and the keyframe request that
//! follows `{"video": true}`), `hangup`, `detach` and `destroy`, over HTTP
//! and over WebSocket.
//!
//! Servers: jsfu with Debian's `echotest.js` and with jsfu's own
//! `scripts/echotest.js`; the real Janus with Debian's `echotest.js` when it
//! is installed.
//!
//! The peer binary is looked up at `JSFU_TEST_PEER`, else next to the test
//! binary (`<target>/debug/jsfu-test-peer`): build it first with
//! `cargo build -p jsfu-test-peer` (`cargo build --workspace --bins` does).
//! Without it the tests are skipped with a notice, except in CI (`CI=true`),
//! where they fail.

mod media_support;

use std::path::PathBuf;
use std::process::Command;

use jsfu_tests::Transport;
use jsfu_tests::server::Flavor;
use media_support::{
    Script, assert_passed, in_ci, media_lock, run_client, start, transport_arg, url,
};

/// Checks every run must have made and passed.
const CHECKS: &[&str] = &[
    "answer",
    "dtls_connected",
    "audio_frames",
    "video_frames",
    "audio_content",
    "video_content",
    "data_echo",
    "video_off_stalls",
    "video_off_audio_continues",
    "video_on_resumes",
    "video_on_keyframe_request",
    "hangup_event",
    "hangup_media_stops",
    "detached_event",
    "rtcp_sender_reports",
    "media_events",
    "hangup_dtls_close",
    "destroy",
];

/// The peer binary, or `None` (after a notice) when it was not built; in CI
/// a missing binary is a failure.
fn peer_binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("JSFU_TEST_PEER") {
        return Some(PathBuf::from(bin));
    }
    // Test binaries live in <target>/<profile>/deps.
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("locating the test binary: {e}"));
    let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    let bin = dir.join("jsfu-test-peer");
    if bin.is_file() {
        return Some(bin);
    }
    let problem = format!(
        "{} does not exist: build it first with `cargo build -p jsfu-test-peer` (or set JSFU_TEST_PEER)",
        bin.display()
    );
    assert!(!in_ci(), "{problem}");
    eprintln!("SKIP: {problem}");
    None
}

fn echo(flavor: Flavor, script: Script) {
    let Some(peer) = peer_binary() else {
        return;
    };
    let _serial = media_lock();
    let Some(server) = start(flavor, script) else {
        return;
    };
    for transport in [Transport::Http, Transport::Ws] {
        let label = format!("str0m/{flavor}/{}", transport_arg(transport));
        let mut cmd = Command::new(&peer);
        cmd.args(["--transport", transport_arg(transport)])
            .args(["--url", &url(&server, transport)]);
        let run = run_client(&label, cmd);
        assert_passed(&run, &server, CHECKS);
    }
}

#[test]
fn str0m_echo_janus_debian_script() {
    echo(Flavor::Janus, Script::Debian);
}

#[test]
fn str0m_echo_jsfu_debian_script() {
    echo(Flavor::Jsfu, Script::Debian);
}

#[test]
fn str0m_echo_jsfu_own_script() {
    echo(Flavor::Jsfu, Script::Jsfu);
}
