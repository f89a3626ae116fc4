//! Smoke test of the bench harness: a tiny `echo` and a tiny `signaling`
//! run against the real `jsfu` binary, checking that the JSON report holds
//! sane figures. Keeps the harness from rotting; the figures themselves come
//! from full runs.
//!
//! The jsfu binary: `JSFU_BIN`, else `target/debug/jsfu`, else
//! `target/release/jsfu` (build it first: `cargo build -p jsfu`).

mod common;

use serde_json::Value;

/// Run the harness with `args` and return its JSON report.
fn bench(name: &str, args: &[&str]) -> Value {
    let jsfu =
        common::jsfu_bin().expect("no jsfu binary: run `cargo build -p jsfu` or set JSFU_BIN");
    let (report, stdout) = common::bench(name, args, &jsfu);
    assert!(
        stdout.contains("jsfu"),
        "the table names the server:\n{stdout}"
    );
    report
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
