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
    Script, assert_passed, in_ci, media_lock, run_client, start, transport_arg, url,
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

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Whether python and the client's packages are there; `false` (after a
/// notice) means skip; in CI a missing piece is a failure.
fn client_available() -> bool {
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

fn echo(flavor: Flavor, script: Script) {
    if !client_available() {
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
