//! Smoke test of the `simulcast` scenario: one rid-simulcast publisher and
//! three subscribers (one per layer) through jsfu's `scripts/videoroom.js`
//! for a few seconds, checking that each subscriber got the layer it asked
//! for and nothing else.
//!
//! The jsfu binary: `JSFU_BIN`, else `target/debug/jsfu`, else
//! `target/release/jsfu`; without one the test is skipped (with a notice).

mod common;

/// Packets per second of each layer, lowest first (`src/simulcast.rs`).
const LAYER_RATES: [f64; 3] = [15.0, 30.0, 90.0];

#[test]
fn each_subscriber_gets_its_layer() {
    let Some(jsfu) = common::jsfu_bin() else {
        eprintln!("SKIP: no jsfu binary (cargo build -p jsfu, or set JSFU_BIN)");
        return;
    };
    let (report, table) = common::bench(
        "simulcast-1x3",
        &[
            "simulcast",
            "--publishers",
            "1",
            "--subscribers",
            "3",
            "--seconds",
            "3",
            "--warmup",
            "1",
        ],
        &jsfu,
    );
    assert_eq!(report["scenario"], "simulcast");
    assert_eq!(report["runs"][0]["server"], "jsfu");
    assert_eq!(
        report["parameters"]["simulcast_layers"]
            .as_array()
            .map(Vec::len),
        Some(3),
        "{report}"
    );
    assert!(table.contains("wrong-layer packets/s"), "{table}");
    let step = &report["runs"][0]["media"][0];
    assert_eq!(step["sessions"], 4, "{step}");
    assert_eq!(step["failed_sessions"], 0, "{step}");
    let ingress = step["ingress_pps"].as_f64().expect("ingress_pps");
    let total: f64 = LAYER_RATES.iter().sum();
    assert!(
        ingress > total * 0.9,
        "the publisher sent its three layers: {step}"
    );
    // One subscriber per layer: the expected egress is every layer once.
    // A subscriber that got nothing of its layer would lose at least the
    // lowest layer's share (15 of 135 packets/s, 11 %).
    let offered = step["offered_pps"].as_f64().expect("offered_pps");
    assert!(
        (offered - ingress).abs() < ingress * 0.05,
        "offered {offered} vs ingress {ingress}: {step}"
    );
    let loss = step["loss"].as_f64().expect("loss");
    assert!(loss < LAYER_RATES[0] / total / 2.0, "loss {loss}: {step}");
    assert_eq!(step["wrong_layer_pps"].as_f64(), Some(0.0), "{step}");
    assert_eq!(step["stray_pps"].as_f64(), Some(0.0), "{step}");
    assert!(
        step["latency_us"]["samples"].as_u64().expect("samples") > 100,
        "{step}"
    );
}
