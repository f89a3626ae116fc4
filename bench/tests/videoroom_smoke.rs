//! Smoke test of the `videoroom` scenario: a 1 → 2 fan-out and a 3-person
//! meeting through jsfu's `scripts/videoroom.js`, a couple of seconds each,
//! checking that every PeerConnection came up and the subscribers got the
//! publishers' media.
//!
//! The jsfu binary: `JSFU_BIN`, else `target/debug/jsfu`, else
//! `target/release/jsfu`; without one the tests are skipped (with a notice).

mod common;

use serde_json::Value;

/// Run the harness's videoroom scenario with `args`; its JSON report's
/// only media step, or `None` when there is no jsfu binary.
fn videoroom(name: &str, args: &[&str]) -> Option<Value> {
    let Some(jsfu) = common::jsfu_bin() else {
        eprintln!("SKIP: no jsfu binary (cargo build -p jsfu, or set JSFU_BIN)");
        return None;
    };
    let mut all = vec!["videoroom"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--seconds", "2", "--warmup", "1"]);
    let (report, _) = common::bench(name, &all, &jsfu);
    assert_eq!(report["scenario"], "videoroom");
    assert_eq!(report["runs"][0]["server"], "jsfu");
    Some(report["runs"][0]["media"][0].clone())
}

/// Every PeerConnection is up, the subscribers received `copies` times
/// what the publishers sent (within 10 %), and no publisher got media.
fn check(step: &Value, pcs: u64, copies: f64) {
    assert_eq!(step["sessions"], pcs, "{step}");
    assert_eq!(step["failed_sessions"], 0, "{step}");
    let ingress = step["ingress_pps"].as_f64().expect("ingress_pps");
    let egress = step["egress_pps"].as_f64().expect("egress_pps");
    assert!(ingress > 100.0, "the publishers sent: {step}");
    assert!(
        egress > ingress * copies * 0.9,
        "the subscribers received {egress} packets/s of {ingress} × {copies}: {step}"
    );
    assert!(step["loss"].as_f64().expect("loss") < 0.1, "{step}");
    assert_eq!(step["stray_pps"].as_f64(), Some(0.0), "{step}");
    assert!(
        step["latency_us"]["samples"].as_u64().expect("samples") > 100,
        "{step}"
    );
}

#[test]
fn one_publisher_reaches_two_subscribers() {
    let Some(step) = videoroom("1x2", &["--publishers", "1", "--subscribers", "2"]) else {
        return;
    };
    check(&step, 3, 2.0);
}

#[test]
fn a_meeting_of_three_sees_each_other() {
    let Some(step) = videoroom("meeting-3", &["--meeting", "3"]) else {
        return;
    };
    // 3 publishers, each seen by the 2 others: 3 + 6 PeerConnections.
    check(&step, 9, 2.0);
}
