//! Smoke test of the bench harness: a tiny `echo` and a tiny `signaling`
//! run against the real `jsfu` binary, checking that the JSON report holds
//! sane figures. Keeps the harness from rotting; the figures themselves come
//! from full runs.
//!
//! The jsfu binary: `JSFU_BIN`, else `target/debug/jsfu`, else
//! `target/release/jsfu` (build it first: `cargo build -p jsfu`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn jsfu_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("JSFU_BIN") {
        return PathBuf::from(bin);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    for profile in ["debug", "release"] {
        let bin = target.join(profile).join("jsfu");
        if bin.is_file() {
            return bin;
        }
    }
    panic!(
        "no jsfu binary under {}: run `cargo build -p jsfu` or set JSFU_BIN",
        target.display()
    );
}

/// Run the harness with `args` and return its JSON report.
fn bench(name: &str, args: &[&str]) -> Value {
    let dir = std::env::temp_dir().join(format!("jsfu-bench-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating a temporary folder");
    let json = dir.join(format!("{name}.json"));
    let svg = dir.join(format!("{name}.svg"));
    let out = Command::new(env!("CARGO_BIN_EXE_jsfu-bench"))
        .args(args)
        .arg("--jsfu-bin")
        .arg(jsfu_bin())
        .arg("--json")
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .arg("--no-pin")
        .output()
        .expect("running jsfu-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "jsfu-bench {args:?} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("jsfu"),
        "the table names the server:\n{stdout}"
    );
    let text = std::fs::read_to_string(&json).expect("the JSON report was written");
    serde_json::from_str(&text).expect("the JSON report parses")
}

#[test]
fn echo_reports_packets_latency_and_cpu() {
    let report = bench(
        "echo",
        &["echo", "--sessions", "2", "--seconds", "2", "--warmup", "1"],
    );
    assert_eq!(report["scenario"], "echo");
    let run = &report["runs"][0];
    assert_eq!(run["server"], "jsfu");
    let step = &run["media"][0];
    assert_eq!(step["sessions"], 2, "{step}");
    assert_eq!(step["failed_sessions"], 0, "{step}");
    let ingress = step["ingress_pps"].as_f64().expect("ingress_pps");
    let egress = step["egress_pps"].as_f64().expect("egress_pps");
    // Two senders at 140 packets/s each.
    assert!(ingress > 200.0 && ingress < 350.0, "ingress {ingress}");
    assert!(egress > 100.0, "echoed packets came back: {egress}");
    assert!(step["loss"].as_f64().expect("loss") < 0.5, "{step}");
    let latency = &step["latency_us"];
    assert!(
        latency["samples"].as_u64().expect("samples") > 100,
        "{latency}"
    );
    let p50 = latency["p50"].as_u64().expect("p50");
    let p99 = latency["p99"].as_u64().expect("p99");
    let max = latency["max"].as_u64().expect("max");
    assert!(p50 > 0 && p50 <= p99 && p99 <= max, "{latency}");
    assert!(
        step["setup_us"]["p50"].as_u64().expect("setup p50") > 0,
        "{step}"
    );
    assert!(
        step["server_cpu_us_per_packet"]
            .as_f64()
            .expect("cpu per packet")
            > 0.0,
        "{step}"
    );
    assert!(step["rss_kib_per_session"].as_f64().is_some(), "{step}");
    assert!(
        step["generator_cpu_pct"].as_f64().expect("generator cpu") > 0.0,
        "{step}"
    );
}

#[test]
fn signaling_reports_round_trips_on_both_transports() {
    let report = bench(
        "signaling",
        &["signaling", "--seconds", "1", "--clients", "2"],
    );
    let steps = report["runs"][0]["signaling"]
        .as_array()
        .expect("signaling steps");
    let transports: Vec<&str> = steps
        .iter()
        .map(|s| s["transport"].as_str().expect("transport"))
        .collect();
    assert_eq!(transports, ["http", "ws"]);
    for step in steps {
        assert!(
            step["round_trips"].as_u64().expect("round_trips") >= 10,
            "{step}"
        );
        assert_eq!(step["errors"], 0, "{step}");
        assert!(
            step["round_trips_per_s"].as_f64().expect("rate") > 0.0,
            "{step}"
        );
        assert!(
            step["latency_us"]["p99"].as_u64().expect("p99") > 0,
            "{step}"
        );
    }
}

#[test]
fn echo_floor_and_data_channels_report_their_figures() {
    let report = bench(
        "echo-floor",
        &[
            "echo",
            "--sessions",
            "4",
            "--seconds",
            "2",
            "--warmup",
            "1",
            "--floor",
        ],
    );
    let floor = &report["floor"];
    let step = &floor["step"];
    assert_eq!(step["sessions"], 4, "one flow per session: {floor}");
    let egress = step["egress_pps"].as_f64().expect("floor egress_pps");
    assert!(egress > 300.0, "the floor echoed the packets: {floor}");
    assert!(step["loss"].as_f64().expect("loss") < 0.05, "{floor}");
    let floor_us = step["server_cpu_us_per_packet"]
        .as_f64()
        .expect("floor CPU per packet");
    assert!(floor_us > 0.0 && floor_us < 10_000.0, "{floor}");
    let ratio = floor["ratio_to_floor"]["jsfu"]
        .as_f64()
        .expect("jsfu's ratio to the floor");
    assert!(ratio > 0.0, "{floor}");

    let report = bench(
        "data",
        &[
            "data",
            "--sessions",
            "3",
            "--seconds",
            "2",
            "--warmup",
            "1",
            "--msg-rate",
            "50",
        ],
    );
    assert_eq!(report["scenario"], "data");
    let step = &report["runs"][0]["media"][0];
    assert_eq!(step["sessions"], 3, "every channel opened: {step}");
    let sent = step["ingress_pps"].as_f64().expect("sent messages/s");
    let echoed = step["egress_pps"].as_f64().expect("echoed messages/s");
    assert!(sent > 100.0 && sent < 200.0, "3 × 50 messages/s: {step}");
    assert!(echoed > 100.0, "messages were echoed: {step}");
    assert!(step["loss"].as_f64().expect("loss") < 0.05, "{step}");
    let latency = &step["latency_us"];
    assert!(
        latency["samples"].as_u64().expect("samples") > 100,
        "{step}"
    );
    assert!(
        step["server_cpu_us_per_packet"]
            .as_f64()
            .expect("CPU per message")
            > 0.0,
        "{step}"
    );
}
