//! Echo test with a real WebRTC peer: the aiortc client
//! (`tests/media/echo_client.py`) sends an Opus sine tone and VP8 video of a
//! known size and pattern through the echo script and checks what comes back
//! (tone frequency by FFT, frame size and colours), the `video` toggle,
//! `hangup`, `detach` and `destroy`, over HTTP and over WebSocket.
//!
//! Servers: jsfu with Debian's `echotest.js` and with jsfu's own
//! `scripts/echotest.js`; the real Janus with Debian's `echotest.js` when it
//! is installed (the reference these tests were validated against).
//!
//! Needs `python3` (or `PYTHON`) with the packages of
//! `tests/media/requirements.txt`. Without them the tests are skipped with a
//! notice, except in CI (`CI=true`), where they fail.

mod media_support;

use std::path::PathBuf;
use std::process::Command;

use jsfu_tests::Transport;
use jsfu_tests::server::Flavor;
use media_support::{
    Script, aiortc_available, assert_passed, media_lock, python, run_client, start, transport_arg,
    url,
};

/// Checks every run must have made and passed.
const CHECKS: &[&str] = &[
    "answer",
    "audio_frames",
    "video_frames",
    "audio_tone",
    "video_size",
    "video_pattern",
    "rtp_packets",
    "video_off_stalls",
    "video_off_audio_continues",
    "video_on_resumes",
    "hangup_event",
    "hangup_media_stops",
    "detached_event",
    "rtcp_sender_reports",
    "media_events",
    "destroy",
];

fn client_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("media/echo_client.py")
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
        let label = format!("aiortc/{flavor}/{}", transport_arg(transport));
        let mut cmd = Command::new(python());
        cmd.arg(client_script())
            .args(["--transport", transport_arg(transport)])
            .args(["--url", &url(&server, transport)]);
        let run = run_client(&label, cmd);
        assert_passed(&run, &server, CHECKS);
    }
}

#[test]
fn aiortc_echo_janus_debian_script() {
    echo(Flavor::Janus, Script::Debian);
}

#[test]
fn aiortc_echo_jsfu_debian_script() {
    echo(Flavor::Jsfu, Script::Debian);
}

#[test]
fn aiortc_echo_jsfu_own_script() {
    echo(Flavor::Jsfu, Script::Jsfu);
}
