//! Simulcast end to end: two `jsfu-simulcast-peer` processes (str0m, built
//! from `tests/simulcast-peer/`) each publish three rid layers of VP8-like
//! RTP through jsfu's `scripts/echotest.js` at the same time, one asking for
//! substream 0 first and the other staying on the default 2. Each checks
//! that only its layer comes back, that switches happen on key frames, that
//! the script's `substreamChanged`/`temporalLayerChanged` events arrive with
//! the right values, that stopping the top layer falls back to layer 1
//! within 500 ms and returns when it resumes, that `{"temporal": 0}` leaves
//! only temporal layer 0, and that sequence numbers and picture ids stay
//! continuous across every switch (media.md §7).
//!
//! A second test runs one publisher and two viewers through
//! `tests/scripts/simulcast-fanout.js`: the viewer on substream 0 gets only
//! layer 0, the viewer on 2 gets layer 2, falls back to 1 within 500 ms when
//! the publisher stops its top layer and returns to 2 when it resumes.
//!
//! The peer binary is looked up at `JSFU_SIMULCAST_PEER`, else next to the
//! test binary: build it first with `cargo build -p jsfu-simulcast-peer`.

// Shared with the echo tests; this file uses only part of it.
#[allow(dead_code)]
mod media_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use jsfu_tests::server::{Flavor, Server, ServerOptions};
use jsfu_tests::{Transport, selected_flavors};
use media_support::{Script, assert_passed, media_lock, run_client, start, url};

/// Checks every run makes, whatever its initial substream.
const COMMON: &[&str] = &[
    "answer_simulcast",
    "initial_event",
    "initial_only_layer",
    "switch_event",
    "switch_on_keyframe",
    "switch_only_layer",
    "fallback_within_500ms",
    "fallback_event",
    "resume_returns",
    "temporal_0",
    "temporal_2",
    "continuity",
];

fn peer_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("JSFU_SIMULCAST_PEER") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("locating the test binary: {e}"));
    let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    let bin = dir.join("jsfu-simulcast-peer");
    assert!(
        bin.is_file(),
        "{} does not exist: build it first with `cargo build -p jsfu-simulcast-peer` \
         (or set JSFU_SIMULCAST_PEER)",
        bin.display()
    );
    bin
}

#[test]
fn simulcast_two_receivers_jsfu() {
    let peer = peer_binary();
    let _serial = media_lock();
    let Some(server) = start(Flavor::Jsfu, Script::Jsfu) else {
        return;
    };
    let api = url(&server, Transport::Http);
    let runs: Vec<_> = [0u8, 2]
        .into_iter()
        .map(|initial| {
            let mut cmd = Command::new(&peer);
            cmd.args(["--url", &api, "--initial", &initial.to_string()]);
            let label = format!("simulcast/jsfu/initial-{initial}");
            (initial, thread::spawn(move || run_client(&label, cmd)))
        })
        .collect();
    for (initial, handle) in runs {
        let run = handle
            .join()
            .unwrap_or_else(|_| panic!("the client thread for initial {initial} panicked"));
        let mut checks = COMMON.to_vec();
        if initial == 2 {
            // 2 → 0 → 2 before the fallback.
            checks.extend([
                "initial_temporal_event",
                "back_to_2_event",
                "back_to_2_on_keyframe",
                "back_to_2_only_layer",
            ]);
        } else {
            checks.push("initial_on_keyframe");
        }
        assert_passed(&run, &server, &checks);
        let summary = run.summary.as_ref().map(|s| s["initial"].clone());
        assert_eq!(
            summary,
            Some(serde_json::json!(initial)),
            "{}",
            run.report()
        );
    }
}

#[test]
fn simulcast_fanout_one_publisher_two_viewers_jsfu() {
    let peer = peer_binary();
    let _serial = media_lock();
    if !selected_flavors().contains(&Flavor::Jsfu) {
        eprintln!("SKIP: jsfu is not in JSFU_TEST_SERVERS");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let options = ServerOptions::script(root.join("scripts/simulcast-fanout.js"))
        .with_modules(root.join("../scripts"));
    let server = match Server::start(Flavor::Jsfu, &options) {
        Ok(Some(server)) => server,
        Ok(None) => {
            eprintln!("SKIP: jsfu is not built");
            return;
        }
        Err(e) => panic!("starting jsfu with simulcast-fanout.js: {e:#}"),
    };
    let api = url(&server, Transport::Http);
    let plugin = "janus.plugin.simulcastfanout";
    // The publisher stops its top layer 5 s after connecting, for 1.5 s.
    let mut publisher = Command::new(&peer);
    publisher.args(["--url", &api, "--plugin", plugin, "--role", "publisher"]);
    publisher.args(["--duration", "11", "--pause-top", "5:1.5"]);
    let publisher = thread::spawn(move || run_client("simulcast/fanout/publisher", publisher));
    thread::sleep(Duration::from_millis(1500));
    let viewers: Vec<_> = [0u8, 2]
        .into_iter()
        .map(|substream| {
            let mut cmd = Command::new(&peer);
            cmd.args(["--url", &api, "--plugin", plugin, "--role", "viewer"]);
            cmd.args(["--initial", &substream.to_string(), "--duration", "8"]);
            let label = format!("simulcast/fanout/viewer-{substream}");
            (substream, thread::spawn(move || run_client(&label, cmd)))
        })
        .collect();
    for (substream, handle) in viewers {
        let run = handle
            .join()
            .unwrap_or_else(|_| panic!("the viewer {substream} thread panicked"));
        let mut checks = vec!["viewer_event", "viewer_only_layer", "continuity"];
        if substream == 2 {
            checks.extend(["viewer_fallback_within_500ms", "viewer_resume"]);
        }
        assert_passed(&run, &server, &checks);
    }
    let run = publisher
        .join()
        .unwrap_or_else(|_| panic!("the publisher thread panicked"));
    assert_passed(
        &run,
        &server,
        &["answer_simulcast", "publisher_keyframe_requests"],
    );
}
