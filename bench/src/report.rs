//! What a run measured: the JSON report, the side-by-side table and the plot.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use serde::Serialize;

/// Percentiles of a histogram in microseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Percentiles {
    pub(crate) samples: u64,
    pub(crate) p50: u64,
    pub(crate) p90: u64,
    pub(crate) p99: u64,
    pub(crate) p999: u64,
    pub(crate) max: u64,
}

impl Percentiles {
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            samples: h.len(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// CPU of one group of same-named server threads over the window.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ThreadCpu {
    pub(crate) name: String,
    pub(crate) threads: usize,
    /// Percent of one core.
    pub(crate) cpu_pct: f64,
}

/// One measurement window of a media scenario at one load.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MediaStep {
    /// Sessions (PeerConnections) set up and connected.
    pub(crate) sessions: u64,
    pub(crate) failed_sessions: u64,
    pub(crate) window_s: f64,
    /// Packets the clients sent to the server per second.
    pub(crate) ingress_pps: f64,
    /// Packets per second the server should send (ingress × copies per
    /// packet): the offered load.
    pub(crate) offered_pps: f64,
    /// Packets the clients received from the server per second.
    pub(crate) egress_pps: f64,
    /// 1 - received / expected (expected = sent × copies per packet).
    pub(crate) loss: f64,
    /// Packets per second that reached peers which should receive none
    /// (publishers): not counted in egress, non-zero means a server bug.
    pub(crate) stray_pps: f64,
    /// Simulcast: packets per second subscribers got of a layer other than
    /// the one they asked for (not counted in egress; 0 elsewhere).
    pub(crate) wrong_layer_pps: f64,
    /// Server CPU over the window, percent of one core.
    pub(crate) server_cpu_pct: f64,
    /// Server CPU microseconds per packet it sent.
    pub(crate) server_cpu_us_per_packet: f64,
    pub(crate) server_threads: Vec<ThreadCpu>,
    /// One-way latency (client → server → client) in microseconds.
    pub(crate) latency_us: Percentiles,
    /// Session setup (create → DTLS connected) in microseconds.
    pub(crate) setup_us: Percentiles,
    pub(crate) rss_kib_per_session: f64,
    /// The generator's own CPU, percent of one core.
    pub(crate) generator_cpu_pct: f64,
}

/// One transport of the signaling scenario.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SignalingStep {
    pub(crate) transport: String,
    pub(crate) clients: usize,
    pub(crate) window_s: f64,
    pub(crate) round_trips: u64,
    pub(crate) errors: u64,
    pub(crate) round_trips_per_s: f64,
    pub(crate) latency_us: Percentiles,
    pub(crate) server_cpu_pct: f64,
    pub(crate) server_cpu_us_per_round_trip: f64,
    pub(crate) generator_cpu_pct: f64,
}

/// Everything measured on one server.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ServerRun {
    pub(crate) server: String,
    pub(crate) version: String,
    pub(crate) script: String,
    pub(crate) media: Vec<MediaStep>,
    pub(crate) signaling: Vec<SignalingStep>,
    /// With --ramp: the last load with loss <= 1 % (egress packets/s, sessions).
    pub(crate) capacity: Option<Capacity>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Capacity {
    pub(crate) sessions: u64,
    pub(crate) egress_pps: f64,
    /// What the step past the capacity ran out of: "server" when the server
    /// used ≥ 85 % of its core (or of its --cpu-quota) there, else "not the server" (the generator
    /// or other load on the machine), or "ramp limit" when no step lost
    /// more than 1 %.
    pub(crate) limited_by: String,
    /// The share of one core the server could use, in percent (below 100
    /// with --cpu-quota).
    pub(crate) cpu_budget_pct: f64,
}

/// The machine the run happened on.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    pub(crate) cpu: String,
    pub(crate) cores: usize,
    pub(crate) kernel: String,
    /// /proc/loadavg when the run started: other work on the machine.
    pub(crate) load_average: String,
    /// Niceness of the server and the generator, when set.
    pub(crate) nice: Option<i32>,
    pub(crate) server_core: Option<usize>,
    pub(crate) generator_core: Option<usize>,
}

impl Machine {
    pub(crate) fn detect(
        server_core: Option<usize>,
        generator_core: Option<usize>,
        nice: Option<i32>,
    ) -> Self {
        let cpu = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|v| v.trim().to_owned())
            })
            .unwrap_or_else(|| String::from("unknown"));
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let load_average = fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        Self {
            cpu,
            cores: crate::server::cpu_count(),
            kernel,
            load_average,
            nice,
            server_core,
            generator_core,
        }
    }
}

/// The whole report of one invocation.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) scenario: String,
    pub(crate) transport: String,
    pub(crate) parameters: serde_json::Value,
    pub(crate) machine: Machine,
    pub(crate) runs: Vec<ServerRun>,
    /// `--floor`: the floor's figures and each server's ratio to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) floor: Option<crate::floor::FloorReport>,
}

impl Report {
    pub(crate) fn write_json(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).context("serializing the report")?;
        fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }

    /// The readable table: one column per server, plus ratios when there
    /// are two (first server against the second).
    pub(crate) fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "scenario {} over {} on {} ({} cores, load average {}, server core {}, generator core {})",
            self.scenario,
            self.transport,
            self.machine.cpu,
            self.machine.cores,
            self.machine.load_average,
            self.machine
                .server_core
                .map_or_else(|| String::from("-"), |c| c.to_string()),
            self.machine
                .generator_core
                .map_or_else(|| String::from("-"), |c| c.to_string()),
        );
        let names: Vec<&str> = self.runs.iter().map(|r| r.server.as_str()).collect();
        let mut rows: Vec<(String, Vec<Option<f64>>, Better)> = Vec::new();
        let steps = self.runs.iter().map(|r| r.media.len()).max().unwrap_or(0);
        for i in 0..steps {
            let col = |f: &dyn Fn(&MediaStep) -> f64| -> Vec<Option<f64>> {
                self.runs.iter().map(|r| r.media.get(i).map(f)).collect()
            };
            let tag = if steps > 1 {
                format!("[{}] ", i + 1)
            } else {
                String::new()
            };
            rows.push((
                format!("{tag}sessions"),
                col(&|s| s.sessions as f64),
                Better::None,
            ));
            rows.push((
                format!("{tag}failed sessions"),
                col(&|s| s.failed_sessions as f64),
                Better::None,
            ));
            rows.push((
                format!("{tag}ingress packets/s"),
                col(&|s| s.ingress_pps),
                Better::None,
            ));
            rows.push((
                format!("{tag}egress packets/s"),
                col(&|s| s.egress_pps),
                Better::Higher,
            ));
            rows.push((
                format!("{tag}loss %"),
                col(&|s| s.loss * 100.0),
                Better::None,
            ));
            rows.push((
                format!("{tag}stray packets/s"),
                col(&|s| s.stray_pps),
                Better::None,
            ));
            if self.scenario == "simulcast" {
                rows.push((
                    format!("{tag}wrong-layer packets/s"),
                    col(&|s| s.wrong_layer_pps),
                    Better::None,
                ));
            }
            rows.push((
                format!("{tag}server CPU %"),
                col(&|s| s.server_cpu_pct),
                Better::Lower,
            ));
            rows.push((
                format!("{tag}server CPU µs/egress packet"),
                col(&|s| s.server_cpu_us_per_packet),
                Better::Lower,
            ));
            rows.push((
                format!("{tag}latency p50 µs"),
                col(&|s| s.latency_us.p50 as f64),
                Better::Lower,
            ));
            rows.push((
                format!("{tag}latency p90 µs"),
                col(&|s| s.latency_us.p90 as f64),
                Better::Lower,
            ));
            rows.push((
                format!("{tag}latency p99 µs"),
                col(&|s| s.latency_us.p99 as f64),
                Better::Lower,
            ));
            rows.push((
                format!("{tag}latency p99.9 µs"),
                col(&|s| s.latency_us.p999 as f64),
                Better::Lower,
            ));
            rows.push((
                format!("{tag}latency max µs"),
                col(&|s| s.latency_us.max as f64),
                Better::Lower,
            ));
            rows.push((
                format!("{tag}setup p50 ms"),
                col(&|s| s.setup_us.p50 as f64 / 1000.0),
                Better::Lower,
            ));
            rows.push((
                format!("{tag}setup p99 ms"),
                col(&|s| s.setup_us.p99 as f64 / 1000.0),
                Better::Lower,
            ));
            rows.push((
                format!("{tag}RSS KiB/session"),
                col(&|s| s.rss_kib_per_session),
                Better::Lower,
            ));
            rows.push((
                format!("{tag}generator CPU %"),
                col(&|s| s.generator_cpu_pct),
                Better::None,
            ));
        }
        let sig = self
            .runs
            .iter()
            .map(|r| r.signaling.len())
            .max()
            .unwrap_or(0);
        for i in 0..sig {
            let col = |f: &dyn Fn(&SignalingStep) -> f64| -> Vec<Option<f64>> {
                self.runs
                    .iter()
                    .map(|r| r.signaling.get(i).map(f))
                    .collect()
            };
            let t = self
                .runs
                .iter()
                .find_map(|r| r.signaling.get(i).map(|s| s.transport.clone()))
                .unwrap_or_default();
            rows.push((
                format!("{t}: round trips/s"),
                col(&|s| s.round_trips_per_s),
                Better::Higher,
            ));
            rows.push((
                format!("{t}: errors"),
                col(&|s| s.errors as f64),
                Better::None,
            ));
            rows.push((
                format!("{t}: latency p50 µs"),
                col(&|s| s.latency_us.p50 as f64),
                Better::Lower,
            ));
            rows.push((
                format!("{t}: latency p99 µs"),
                col(&|s| s.latency_us.p99 as f64),
                Better::Lower,
            ));
            rows.push((
                format!("{t}: server CPU %"),
                col(&|s| s.server_cpu_pct),
                Better::None,
            ));
            rows.push((
                format!("{t}: server CPU µs/round trip"),
                col(&|s| s.server_cpu_us_per_round_trip),
                Better::Lower,
            ));
            rows.push((
                format!("{t}: generator CPU %"),
                col(&|s| s.generator_cpu_pct),
                Better::None,
            ));
        }
        if self.runs.iter().any(|r| r.capacity.is_some()) {
            let col = |f: &dyn Fn(&Capacity) -> f64| -> Vec<Option<f64>> {
                self.runs
                    .iter()
                    .map(|r| r.capacity.as_ref().map(f))
                    .collect()
            };
            rows.push((
                String::from("capacity: sessions (loss <= 1 %)"),
                col(&|c| c.sessions as f64),
                Better::Higher,
            ));
            rows.push((
                String::from("capacity: egress packets/s"),
                col(&|c| c.egress_pps),
                Better::Higher,
            ));
            let quota = self
                .runs
                .iter()
                .filter_map(|r| r.capacity.as_ref())
                .any(|c| c.cpu_budget_pct < 100.0);
            if quota {
                rows.push((
                    String::from("capacity: egress packets/s per core (÷ quota)"),
                    col(&|c| c.egress_pps * 100.0 / c.cpu_budget_pct.max(1.0)),
                    Better::Higher,
                ));
            }
        }
        if self.scenario == "data" {
            for row in &mut rows {
                row.0 = crate::data::relabel(&row.0);
            }
        }
        let width = rows
            .iter()
            .map(|r| r.0.chars().count())
            .max()
            .unwrap_or(10)
            .max(10);
        let _ = write!(out, "{:width$}", "");
        for n in &names {
            let _ = write!(out, " {n:>12}");
        }
        if names.len() == 2 {
            let _ = write!(out, " {:>14}", format!("{} adv.", names[0]));
        }
        out.push('\n');
        for (label, values, better) in rows {
            let _ = write!(out, "{label:width$}");
            for v in &values {
                match v {
                    Some(v) => {
                        let _ = write!(out, " {:>12}", number(*v));
                    }
                    None => {
                        let _ = write!(out, " {:>12}", "-");
                    }
                }
            }
            if let [Some(a), Some(b)] = values[..] {
                let ratio = match better {
                    Better::Lower if a > 0.0 => Some(b / a),
                    Better::Higher if b > 0.0 => Some(a / b),
                    _ => None,
                };
                if let Some(r) = ratio {
                    let _ = write!(out, " {:>13.2}×", r);
                }
            }
            out.push('\n');
        }
        for run in &self.runs {
            if let Some(c) = &run.capacity {
                let _ = writeln!(out, "{} capacity limited by: {}", run.server, c.limited_by);
            }
            if let Some(step) = run.media.last() {
                let threads: Vec<String> = step
                    .server_threads
                    .iter()
                    .filter(|t| t.cpu_pct >= 0.5)
                    .map(|t| format!("{}×{} {:.1}%", t.name, t.threads, t.cpu_pct))
                    .collect();
                let _ = writeln!(
                    out,
                    "{} threads (last step): {}",
                    run.server,
                    threads.join(", ")
                );
            }
        }
        if names.len() == 2 {
            let _ = writeln!(
                out,
                "\"{} adv.\": how many times better {} is (cost: {b}/{a}; throughput: {a}/{b})",
                names[0],
                names[0],
                a = names[0],
                b = names[1]
            );
        }
        if let Some(floor) = &self.floor {
            out.push_str(&floor.table(&self.runs));
        }
        out
    }

    /// An SVG with two charts against egress packets/s: server CPU µs per
    /// packet, and p99 latency, one series per server.
    pub(crate) fn write_svg(&self, path: &Path) -> Result<()> {
        let mut series_cpu: Vec<(String, Vec<(f64, f64)>)> = self
            .runs
            .iter()
            .map(|r| {
                (
                    r.server.clone(),
                    r.media
                        .iter()
                        .map(|s| (s.offered_pps, s.server_cpu_us_per_packet))
                        .collect(),
                )
            })
            .collect();
        if let Some(f) = &self.floor {
            let point = (f.step.offered_pps, f.step.server_cpu_us_per_packet);
            series_cpu.push((String::from("floor"), vec![point]));
        }
        let series_p99: Vec<(String, Vec<(f64, f64)>)> = self
            .runs
            .iter()
            .map(|r| {
                (
                    r.server.clone(),
                    r.media
                        .iter()
                        .map(|s| (s.offered_pps, s.latency_us.p99 as f64 / 1000.0))
                        .collect(),
                )
            })
            .collect();
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="960" height="400" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(svg, r#"<rect width="960" height="400" fill="white"/>"#);
        chart(
            &mut svg,
            0.0,
            "server CPU µs per egress packet",
            &series_cpu,
        );
        chart(&mut svg, 480.0, "p99 latency (ms)", &series_p99);
        let _ = writeln!(
            svg,
            r#"<text x="480" y="392" text-anchor="middle">offered load (packets/s the server should send) — {} on {}</text>"#,
            xml(&self.scenario),
            xml(&self.machine.cpu)
        );
        svg.push_str("</svg>\n");
        fs::write(path, svg).with_context(|| format!("writing {}", path.display()))
    }
}

#[derive(Debug, Clone, Copy)]
enum Better {
    None,
    Lower,
    Higher,
}

fn number(v: f64) -> String {
    if (v.fract() == 0.0 && v.abs() < 1e12) || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// One line chart in a 480×380 box at `x0`.
fn chart(svg: &mut String, x0: f64, title: &str, series: &[(String, Vec<(f64, f64)>)]) {
    let (left, top, w, h) = (x0 + 60.0, 30.0, 390.0, 300.0);
    let xmax = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.0))
        .fold(0.0_f64, f64::max)
        .max(1.0)
        * 1.05;
    let ymax = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.1))
        .fold(0.0_f64, f64::max)
        .max(1e-3)
        * 1.1;
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="18" text-anchor="middle" font-weight="bold">{}</text>"#,
        left + w / 2.0,
        xml(title)
    );
    let _ = writeln!(
        svg,
        r#"<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="black"/>"#
    );
    for i in 0..=4 {
        let f = f64::from(i) / 4.0;
        let y = top + h - f * h;
        let x = left + f * w;
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            left + w,
            left - 4.0,
            y + 4.0,
            number(f * ymax)
        );
        let _ = writeln!(
            svg,
            r#"<text x="{x}" y="{}" text-anchor="middle">{}</text>"#,
            top + h + 16.0,
            number((f * xmax).round())
        );
    }
    for (k, (name, points)) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let coords: Vec<String> = points
            .iter()
            .map(|(x, y)| {
                format!(
                    "{:.1},{:.1}",
                    left + x / xmax * w,
                    top + h - (y / ymax).min(1.0) * h
                )
            })
            .collect();
        if coords.len() > 1 {
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
                coords.join(" ")
            );
        }
        for c in &coords {
            let mut xy = c.split(',');
            if let (Some(x), Some(y)) = (xy.next(), xy.next()) {
                let _ = writeln!(svg, r#"<circle cx="{x}" cy="{y}" r="3" fill="{color}"/>"#);
            }
        }
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" fill="{color}">{}</text>"#,
            left + 8.0,
            top + 16.0 + 14.0 * k as f64,
            xml(name)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(egress: f64, cpu_us: f64) -> MediaStep {
        MediaStep {
            sessions: 10,
            failed_sessions: 0,
            window_s: 1.0,
            ingress_pps: egress,
            offered_pps: egress,
            egress_pps: egress,
            loss: 0.0,
            stray_pps: 0.0,
            wrong_layer_pps: 0.0,
            server_cpu_pct: egress * cpu_us / 1e4,
            server_cpu_us_per_packet: cpu_us,
            server_threads: Vec::new(),
            latency_us: Percentiles::default(),
            setup_us: Percentiles::default(),
            rss_kib_per_session: 0.0,
            generator_cpu_pct: 1.0,
        }
    }

    fn run(name: &str, cpu_us: f64) -> ServerRun {
        ServerRun {
            server: name.to_owned(),
            version: String::new(),
            script: String::new(),
            media: vec![step(1000.0, cpu_us)],
            signaling: Vec::new(),
            capacity: None,
        }
    }

    #[test]
    fn table_shows_cost_ratio_of_the_second_server_over_the_first() {
        let report = Report {
            scenario: "echo".into(),
            transport: "http".into(),
            parameters: serde_json::Value::Null,
            machine: Machine::detect(None, None, None),
            runs: vec![run("jsfu", 10.0), run("janus", 45.0)],
            floor: None,
        };
        let table = report.table();
        let row = table
            .lines()
            .find(|l| l.starts_with("server CPU µs/egress packet"))
            .expect("the CPU per packet row");
        assert!(row.contains("4.50×"), "{row}");
        let header = table.lines().nth(1).expect("a header line");
        assert!(header.contains("jsfu") && header.contains("janus") && header.contains("adv."));
    }

    #[test]
    fn percentiles_of_a_histogram() {
        let mut h = crate::peer::histogram();
        for v in 1..=1000 {
            h.record(v).expect("in range");
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.samples, 1000);
        assert!((495..=505).contains(&p.p50), "{p:?}");
        assert!((985..=995).contains(&p.p99), "{p:?}");
        assert!(p.max >= 1000 && p.max <= 1001, "{p:?}");
        assert_eq!(Percentiles::of(&crate::peer::histogram()).samples, 0);
    }
}
