//! The VideoRoom API (`scripts/videoroom.js`, package
//! `janus.plugin.videoroom`) driven by real WebRTC peers: the aiortc client
//! `tests/videoroom/videoroom_client.py` creates a room, has two publishers
//! join and publish, subscribes to one of them (server offer, client answer,
//! `start`), checks that media flows and that `configure`/`pause`/`start`
//! gate it, exercises the error codes (421–437 family), and follows the
//! room's life to `unpublished`, `leaving`, `kicked` and `destroyed`; data
//! channel messages of the publisher reach the subscriber, and the room
//! records each publisher (`.mjr` files in a temporary folder).
//!
//! The same client runs against the real Janus with its native C VideoRoom
//! plugin (Debian's `janus` package; started here with a generated
//! configuration), which proves the checks, and the plugin events both
//! servers sent are compared field by field (ids and numbers abstracted).
//!
//! Janode's VideoRoom module (`tests/videoroom/janode_videoroom.mjs`, npm
//! `janode` from `tests/browser/node_modules`) drives the same server
//! through create/join/publish/subscribe/configure/unpublish/leave/kick/
//! destroy and the error cases, with an aiortc publisher to subscribe to;
//! it too runs against both servers.
//!
//! Needs `python3` (or `PYTHON`) with the packages of
//! `tests/media/requirements.txt`, and `node` with `npm ci` done in
//! `tests/browser` for the Janode tests; without them the tests are skipped
//! with a notice, except in CI (`CI=true`), where they fail.

#[allow(dead_code)]
mod media_support;
#[allow(dead_code)]
mod videoroom_support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use jsfu_tests::selected_flavors;
use jsfu_tests::server::{Flavor, Server, ServerOptions};
use media_support::{ClientRun, aiortc_available, in_ci, media_lock, python, run_client};
use serde_json::Value;
use videoroom_support::{JanusSetup, NativeJanus};

/// Checks every Janode run must have made and passed.
const JANODE_CHECKS: &[&str] = &[
    "create",
    "create_exists_427",
    "exists",
    "list",
    "destroy_wrong_secret_433",
    "allowed_enable",
    "join_without_token_433",
    "alice_joined",
    "already_joined_425",
    "alice_sees_bob_joining",
    "alice_published",
    "republish_is_renegotiation",
    "publish_without_offer_before_up",
    "alice_configured",
    "list_participants",
    "alice_sees_dave_published",
    "subscribe_missing_feed_428",
    "subscriber_joined",
    "subscriber_started",
    "subscriber_paused",
    "subscriber_configured",
    "subscriber_restarted",
    "alice_sees_dave_unpublished",
    "unpublish_not_published_435",
    "bob_left",
    "alice_sees_bob_leaving",
    "subscriber_left",
    "alice_sees_carol_kicked",
    "destroy",
    "alice_sees_destroyed",
    "gone",
    "join_destroyed_room_426",
];

/// Checks every aiortc run must have made and passed.
const CHECKS: &[&str] = &[
    "create",
    "create_exists_427",
    "create_bad_type_430",
    "exists",
    "exists_false",
    "list",
    "missing_request_429",
    "unknown_request_423",
    "no_such_room_426",
    "wrong_secret_433",
    "edit",
    "alice_joined",
    "already_joined_425",
    "alice_configured",
    "bob_joined_sees_alice",
    "alice_sees_joining",
    "bob_configured",
    "alice_sees_bob_published",
    "already_published_434",
    "no_such_feed_428",
    "missing_feed_429",
    "join_first_424",
    "subscriber_attached",
    "subscriber_started",
    "subscriber_receives_media",
    "subscriber_receives_data",
    "subscriber_configured",
    "subscriber_video_off",
    "subscriber_paused",
    "paused_stops_media",
    "restart_resumes_media",
    "listparticipants",
    "carol_joined",
    "publishers_full_432",
    "wrong_pin_433",
    "join_no_such_room_426",
    "id_exists_436",
    "bob_unpublished_ok",
    "alice_sees_unpublished",
    "not_published_435",
    "recorded",
    "bob_leaving_ok",
    "alice_sees_leaving",
    "subscriber_told_feed_gone",
    "renegotiation_answered",
    "kick_no_such_user_428",
    "kick",
    "carol_kicked",
    "alice_sees_kicked",
    "destroy",
    "alice_sees_destroyed",
    "gone_after_destroy",
    "session_destroy",
];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run the client against the WebSocket URL `url`, the test room recording
/// into a fresh folder (removed afterwards).
fn run_flow(label: &str, url: &str) -> ClientRun {
    let rec_dir = std::env::temp_dir().join(format!(
        "jsfu-videoroom-rec-{}-{}",
        std::process::id(),
        label.replace('/', "-")
    ));
    let _ = fs::remove_dir_all(&rec_dir);
    fs::create_dir_all(&rec_dir).unwrap_or_else(|e| panic!("creating {}: {e}", rec_dir.display()));
    let mut cmd = Command::new(python());
    cmd.arg(manifest_dir().join("videoroom/videoroom_client.py"))
        .args(["--url", url])
        .arg("--rec-dir")
        .arg(&rec_dir);
    let run = run_client(label, cmd);
    let _ = fs::remove_dir_all(&rec_dir);
    run
}

/// The summary of a run that passed every check in `checks` (panics with
/// the client's output and `log` otherwise).
fn passed(run: &ClientRun, log: &Path, checks: &[&str]) -> Value {
    let Some(summary) = &run.summary else {
        panic!("{}: no JSON summary on stdout\n{}", run.label, run.report());
    };
    let missing: Vec<&str> = checks
        .iter()
        .copied()
        .filter(|c| summary["checks"][c]["ok"] != Value::Bool(true))
        .collect();
    if summary["ok"] != Value::Bool(true) || run.status != Some(0) || !missing.is_empty() {
        panic!(
            "{} failed.\nfailures: {}\nchecks not passed: {missing:?}\nserver log: {}\n{}",
            run.label,
            summary["failures"],
            log.display(),
            run.report()
        );
    }
    eprintln!("{}: {} checks passed", run.label, checks.len());
    summary.clone()
}

fn start_jsfu() -> Server {
    let script = manifest_dir().join("../scripts/videoroom.js");
    Server::jsfu(&ServerOptions::script(script))
        .unwrap_or_else(|e| panic!("starting jsfu with scripts/videoroom.js: {e:#}"))
}

#[test]
fn videoroom_api_jsfu() {
    if !selected_flavors().contains(&Flavor::Jsfu) {
        eprintln!("SKIP: jsfu is not in JSFU_TEST_SERVERS");
        return;
    }
    if !aiortc_available() {
        return;
    }
    let _serial = media_lock();
    let server = start_jsfu();
    let run = run_flow("videoroom/jsfu", &server.ws_url());
    passed(&run, server.log_path(), CHECKS);
}

/// Whether node and Janode are there (skip otherwise; fail in CI).
fn janode_available() -> bool {
    let janode = manifest_dir().join("browser/node_modules/janode/src/janode.js");
    let problem = match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() && janode.is_file() => return true,
        Ok(out) if out.status.success() => format!(
            "{} is missing (run npm ci in tests/browser)",
            janode.display()
        ),
        Ok(_) | Err(_) => "node is not installed".to_owned(),
    };
    if in_ci() {
        panic!("{problem}");
    }
    eprintln!("SKIP: {problem}");
    false
}

fn run_janode(label: &str, url: &str) -> ClientRun {
    let mut cmd = Command::new("node");
    cmd.arg(manifest_dir().join("videoroom/janode_videoroom.mjs"))
        .args(["--url", url]);
    run_client(label, cmd)
}

#[test]
fn janode_videoroom_jsfu() {
    if !selected_flavors().contains(&Flavor::Jsfu) {
        eprintln!("SKIP: jsfu is not in JSFU_TEST_SERVERS");
        return;
    }
    if !aiortc_available() || !janode_available() {
        return;
    }
    let _serial = media_lock();
    let server = start_jsfu();
    let run = run_janode("janode-videoroom/jsfu", &server.ws_url());
    passed(&run, server.log_path(), JANODE_CHECKS);
}

#[test]
fn janode_videoroom_native_janus() {
    if !selected_flavors().contains(&Flavor::Janus) {
        eprintln!("SKIP: janus is not in JSFU_TEST_SERVERS");
        return;
    }
    if !aiortc_available() || !janode_available() {
        return;
    }
    let _serial = media_lock();
    let Some(janus) = NativeJanus::start(&JanusSetup::default()) else {
        return;
    };
    let run = run_janode("janode-videoroom/janus-native", &janus.ws_url());
    passed(&run, &janus.log, JANODE_CHECKS);
}

#[test]
fn videoroom_events_match_native_janus() {
    if !selected_flavors().contains(&Flavor::Janus) || !selected_flavors().contains(&Flavor::Jsfu) {
        eprintln!("SKIP: comparing needs both jsfu and janus in JSFU_TEST_SERVERS");
        return;
    }
    if !aiortc_available() {
        return;
    }
    let _serial = media_lock();
    let Some(janus) = NativeJanus::start(&JanusSetup::default()) else {
        return;
    };
    let reference = passed(
        &run_flow("videoroom/janus-native", &janus.ws_url()),
        &janus.log,
        CHECKS,
    );
    drop(janus);
    let server = start_jsfu();
    let ours = passed(
        &run_flow("videoroom/jsfu", &server.ws_url()),
        server.log_path(),
        CHECKS,
    );

    // The same kinds of events, each with the same members of the same
    // kinds. The order of one notification's copies to several participants
    // is not part of the API (Janus walks a hash table), and Janus sometimes
    // sends an "unpublished" notification twice (once for the request, once
    // when the PeerConnection goes down), so compare which event shapes
    // each recipient got, not how many times.
    let reference = event_shapes(&reference["events"]);
    let ours = event_shapes(&ours["events"]);
    assert!(
        reference.len() >= 25,
        "the Janus run recorded only {} kinds of plugin events",
        reference.len()
    );
    let only_janus: Vec<&String> = reference
        .keys()
        .filter(|k| !ours.contains_key(*k))
        .collect();
    let only_jsfu: Vec<&String> = ours
        .keys()
        .filter(|k| !reference.contains_key(*k))
        .collect();
    assert!(
        only_janus.is_empty() && only_jsfu.is_empty(),
        "plugin events differ from the native VideoRoom's.\nonly from Janus:\n  {}\nonly from jsfu:\n  {}",
        only_janus
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  "),
        only_jsfu
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

/// Each event of a client transcript (`{"to", "data", "jsep"}`) as a string
/// with every number and the digits of every string abstracted and every
/// list sorted, counted.
fn event_shapes(events: &Value) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for event in events.as_array().map(Vec::as_slice).unwrap_or_default() {
        *out.entry(shape(event).to_string()).or_insert(0) += 1;
    }
    out
}

fn shape(value: &Value) -> Value {
    match value {
        Value::Number(_) => Value::String("<number>".to_owned()),
        Value::String(s) => {
            // Every run of digits becomes one '#'.
            let mut out = String::with_capacity(s.len());
            for c in s.chars() {
                if !c.is_ascii_digit() {
                    out.push(c);
                } else if !out.ends_with('#') {
                    out.push('#');
                }
            }
            Value::String(out)
        }
        // Lists of participants come in hash-table order from Janus.
        Value::Array(items) => {
            let mut shaped: Vec<Value> = items.iter().map(shape).collect();
            shaped.sort_by_key(Value::to_string);
            Value::Array(shaped)
        }
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        other => other.clone(),
    }
}
