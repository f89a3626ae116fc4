//! Smoke test of the `videoroom` scenario: a 1 → 2 fan-out and a 3-person
//! meeting through jsfu's `scripts/videoroom.js`, a couple of seconds each,
//! checking that every PeerConnection came up and the subscribers got the
//! publishers' media.
//!
//! The jsfu binary: `JSFU_BIN`, else `target/debug/jsfu`, else
//! `target/release/jsfu`; without one the tests are skipped (with a notice).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn jsfu_bin() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("JSFU_BIN") {
        return Some(PathBuf::from(bin));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    ["debug", "release"]
        .iter()
        .map(|profile| target.join(profile).join("jsfu"))
        .find(|bin| bin.is_file())
}

/// Run the harness's videoroom scenario with `args`; its JSON report's
/// only media step, or `None` when there is no jsfu binary.
fn videoroom(name: &str, args: &[&str]) -> Option<Value> {
    let Some(jsfu) = jsfu_bin() else {
        eprintln!("SKIP: no jsfu binary (cargo build -p jsfu, or set JSFU_BIN)");
        return None;
    };
    let dir = std::env::temp_dir().join(format!("jsfu-bench-vr-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating a temporary folder");
    let json = dir.join(format!("{name}.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_jsfu-bench"))
        .arg("videoroom")
        .args(args)
        .args(["--seconds", "2", "--warmup", "1", "--no-pin"])
        .arg("--jsfu-bin")
        .arg(jsfu)
        .arg("--json")
        .arg(&json)
        .arg("--svg")
        .arg(dir.join(format!("{name}.svg")))
        .output()
        .expect("running jsfu-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "jsfu-bench videoroom {args:?} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let text = std::fs::read_to_string(&json).expect("the JSON report was written");
    let report: Value = serde_json::from_str(&text).expect("the JSON report parses");
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
