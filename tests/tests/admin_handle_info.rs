//! The Admin API's `handle_info` of a live PeerConnection (janus-api.md
//! §8.3): while the aiortc echo client (`tests/media/echo_client.py`)
//! streams audio and video through the echo script, the test asks for the
//! handle's info and checks the `webrtc` summary — ICE state and selected
//! pair, DTLS state, role and fingerprints (the local one must be the
//! `a=fingerprint` of the handle's local SDP), negotiated extensions, and
//! per-m-line type, codec, SSRCs and packet counters that grow — under the
//! key names of Janus 1.x. The same checks run against the real Janus,
//! which proves them.
//!
//! Needs `python3` with aiortc; skipped with a notice without it, except in
//! CI.

#[allow(dead_code)]
mod media_support;

use std::process::Command;
use std::time::{Duration, Instant};

use jsfu_tests::selected_flavors;
use jsfu_tests::server::{ECHOTEST_SCRIPT, Flavor, Server, ServerOptions};
use media_support::{aiortc_available, assert_passed, media_lock, python, run_client};
use serde_json::{Value, json};

const ADMIN_SECRET: &str = "handle-info-admin";

/// One Admin API request; the reply's JSON.
async fn admin(http: &reqwest::Client, url: &str, mut body: Value) -> Value {
    body["transaction"] = json!("hi");
    body["admin_secret"] = json!(ADMIN_SECRET);
    let reply = http
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("admin request {body} to {url}: {e}"));
    reply
        .json()
        .await
        .unwrap_or_else(|e| panic!("admin reply to {body}: {e}"))
}

/// The `info` of the first handle of the first session, when there is one.
async fn first_handle_info(http: &reqwest::Client, base: &str) -> Option<Value> {
    let sessions = admin(http, base, json!({"janus": "list_sessions"})).await;
    let session = sessions["sessions"].as_array()?.first()?.as_u64()?;
    let url = format!("{base}/{session}");
    let handles = admin(http, &url, json!({"janus": "list_handles"})).await;
    let handle = handles["handles"].as_array()?.first()?.as_u64()?;
    let info = admin(
        http,
        &format!("{url}/{handle}"),
        json!({"janus": "handle_info"}),
    )
    .await;
    info.get("info").cloned()
}

fn packets(info: &Value, mindex: &str, dir: &str) -> u64 {
    info.pointer(&format!("/webrtc/media/{mindex}/stats/{dir}/packets"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// The `a=fingerprint` value (without the hash name) in an SDP.
fn sdp_fingerprint(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=fingerprint:"))
        .and_then(|v| v.split_whitespace().nth(1))
}

fn check(flavor: Flavor) {
    if !selected_flavors().contains(&flavor) {
        eprintln!("SKIP: {flavor} is not in JSFU_TEST_SERVERS");
        return;
    }
    if !aiortc_available() {
        return;
    }
    if !std::path::Path::new(ECHOTEST_SCRIPT).is_file() {
        eprintln!("SKIP: {ECHOTEST_SCRIPT} is not installed (package janus)");
        return;
    }
    let _serial = media_lock();
    let options = ServerOptions::echotest().with_admin_secret(ADMIN_SECRET);
    let server = match Server::start(flavor, &options) {
        Ok(Some(s)) => s,
        Ok(None) => {
            eprintln!("SKIP: {flavor} is not installed");
            return;
        }
        Err(e) => panic!("starting {flavor}: {e:#}"),
    };
    let mut cmd = Command::new(python());
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/media/echo_client.py"))
        .args(["--transport", "http", "--url", &server.api_url()])
        .args(["--duration", "8"]);
    let label = format!("handle_info/{flavor}");
    let client = std::thread::spawn(move || run_client(&label, cmd));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime builds");
    let base = server.admin_url();
    let (first, later) = runtime.block_on(async {
        let http = reqwest::Client::new();
        // Wait for the PC to be up and video to be flowing both ways.
        let deadline = Instant::now() + Duration::from_secs(25);
        let first = loop {
            let info = first_handle_info(&http, &base).await;
            if let Some(info) = info.filter(|i| {
                i.pointer("/webrtc/ice/state") == Some(&json!("ready"))
                    && packets(i, "1", "in") > 0
                    && packets(i, "1", "out") > 0
            }) {
                break Some(info);
            }
            if Instant::now() > deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        // Counters are reported periodically: a later look must show more.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        (first, first_handle_info(&http, &base).await)
    });
    let run = client.join().expect("the client thread does not panic");
    assert_passed(&run, &server, &["answer", "audio_frames", "video_frames"]);
    let Some(info) = first else {
        panic!(
            "{flavor}: the handle never showed ICE ready with video counted both ways\n{}",
            server.log_tail(40)
        );
    };
    let at = |p: &str| info.pointer(p).cloned().unwrap_or(Value::Null);
    let fail = |what: &str| -> ! {
        panic!(
            "{flavor}: {what}\n{}",
            serde_json::to_string_pretty(&info).unwrap_or_default()
        )
    };

    if at("/flags/ready") != json!(true) {
        fail("flags.ready is not true");
    }
    let pair = at("/webrtc/ice/selected-pair");
    if !pair.as_str().is_some_and(|p| p.contains(" <-> 127.0.0.1:")) {
        fail("no selected pair towards the client");
    }
    if at("/webrtc/ice/local-candidates")
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        fail("no local candidates");
    }
    if at("/webrtc/dtls/dtls-state") != json!("connected") {
        fail("DTLS is not connected");
    }
    if at("/webrtc/dtls/remote-fingerprint-hash") != json!("sha-256") {
        fail("remote fingerprint hash");
    }
    // aiortc offers actpass: the server takes the client role.
    if at("/webrtc/dtls/dtls-role") != json!("active") {
        fail("DTLS role");
    }
    let local_sdp = at("/sdps/local");
    let expected = local_sdp.as_str().and_then(sdp_fingerprint);
    if expected.is_none() || at("/webrtc/dtls/fingerprint").as_str() != expected {
        fail("the local fingerprint is not the local SDP's");
    }
    let remote_sdp = at("/sdps/remote");
    let remote_fp = remote_sdp.as_str().and_then(sdp_fingerprint);
    if remote_fp.is_none()
        || !at("/webrtc/dtls/remote-fingerprint")
            .as_str()
            .zip(remote_fp)
            .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
    {
        fail("the remote fingerprint is not the remote SDP's");
    }
    if at("/webrtc/extensions/urn:ietf:params:rtp-hdrext:sdes:mid")
        .as_u64()
        .is_none()
    {
        fail("the mid extension is not listed");
    }
    for (mindex, kind, codec) in [("0", "audio", "opus"), ("1", "video", "vp8")] {
        if at(&format!("/webrtc/media/{mindex}/type")) != json!(kind) {
            fail(&format!("m-line {mindex} is not {kind}"));
        }
        if at(&format!("/webrtc/media/{mindex}/codecs/codec")) != json!(codec) {
            fail(&format!("m-line {mindex} codec is not {codec}"));
        }
        if at(&format!("/webrtc/media/{mindex}/ssrc/ssrc-peer"))
            .as_u64()
            .is_none()
        {
            fail(&format!("m-line {mindex} has no peer SSRC"));
        }
        if packets(&info, mindex, "in") == 0 || packets(&info, mindex, "out") == 0 {
            fail(&format!("m-line {mindex} counted no packets"));
        }
    }
    if at("/webrtc/media/1/do_nacks") != json!(true) {
        fail("NACKs are off on video");
    }
    // The echo went on: the counters grew (the client streamed 8 s).
    let later = later.unwrap_or_else(|| fail("the handle vanished too early"));
    if packets(&later, "1", "in") <= packets(&info, "1", "in") {
        fail("video counters did not grow");
    }
}

#[test]
fn handle_info_of_a_live_pc_jsfu() {
    check(Flavor::Jsfu);
}

#[test]
fn handle_info_of_a_live_pc_native_janus() {
    check(Flavor::Janus);
}
