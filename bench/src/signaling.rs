//! The `signaling` scenario: Janus API round trips per second. Each client
//! thread loops create → attach → message → detach → destroy on its own
//! connection, timing every request, until the window ends.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;
use hdrhistogram::Histogram;
use serde_json::Value;

use crate::api::{Client, Transport};
use crate::peer::histogram;
use crate::report::{Percentiles, SignalingStep};
use crate::server::{self, Server};

/// How to run the signaling scenario.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) transports: Vec<Transport>,
    pub(crate) clients: usize,
    pub(crate) seconds: f64,
    pub(crate) plugin: String,
    /// The body of the `message` request (answered synchronously).
    pub(crate) body: Value,
    pub(crate) generator_core: Option<usize>,
}

pub(crate) fn run(server: &Server, plan: &Plan) -> Result<Vec<SignalingStep>> {
    let http = Client::http_client()?;
    let mut out = Vec::new();
    for &transport in &plan.transports {
        let merged = Mutex::new(histogram());
        let trips = AtomicU64::new(0);
        let errors = AtomicU64::new(0);
        let cpu0 = server.pid.map(server::cpu_sample);
        let own0 = server::own_cpu_us();
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs_f64(plan.seconds);
        thread::scope(|scope| {
            for _ in 0..plan.clients.max(1) {
                scope.spawn(|| {
                    if let Some(core) = plan.generator_core {
                        server::pin_current_thread(core);
                    }
                    let mut local = histogram();
                    match Client::connect(transport, &http, &server.http, &server.ws) {
                        Ok(mut client) => {
                            while Instant::now() < end {
                                match cycle(&mut client, plan, &mut local) {
                                    Ok(n) => {
                                        trips.fetch_add(n, Ordering::Relaxed);
                                    }
                                    Err(e) => {
                                        if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                                            eprintln!("[bench] signaling error: {e:#}");
                                        }
                                        thread::sleep(Duration::from_millis(10));
                                    }
                                }
                            }
                        }
                        Err(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            eprintln!("[bench] signaling connect failed: {e:#}");
                        }
                    }
                    if let Ok(mut h) = merged.lock() {
                        let _ = h.add(&local);
                    }
                });
            }
        });
        let elapsed = t0.elapsed().as_secs_f64();
        let cpu1 = server.pid.map(server::cpu_sample);
        let own1 = server::own_cpu_us();
        let server_us = match (cpu0, cpu1) {
            (Some(a), Some(b)) => b.total_us.saturating_sub(a.total_us) as f64,
            _ => f64::NAN,
        };
        let trips = trips.load(Ordering::Relaxed);
        let latency = merged
            .lock()
            .map(|h| Percentiles::of(&h))
            .unwrap_or_default();
        let step = SignalingStep {
            transport: transport.name().to_owned(),
            clients: plan.clients,
            window_s: elapsed,
            round_trips: trips,
            errors: errors.load(Ordering::Relaxed),
            round_trips_per_s: trips as f64 / elapsed,
            latency_us: latency,
            server_cpu_pct: server_us / elapsed / 1e4,
            server_cpu_us_per_round_trip: if trips > 0 {
                server_us / trips as f64
            } else {
                f64::NAN
            },
            generator_cpu_pct: own1.saturating_sub(own0) as f64 / elapsed / 1e4,
        };
        eprintln!(
            "[bench] {} signaling over {}: {:.0} round trips/s, p99 {} µs",
            server.flavor.name(),
            step.transport,
            step.round_trips_per_s,
            step.latency_us.p99
        );
        out.push(step);
    }
    Ok(out)
}

/// One create/attach/message/detach/destroy cycle; returns the number of
/// completed round trips (5).
fn cycle(client: &mut Client, plan: &Plan, h: &mut Histogram<u64>) -> Result<u64> {
    let timed = |h: &mut Histogram<u64>, t: Instant| {
        let us = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
        let _ = h.record(us.clamp(1, 10_000_000));
    };
    let t = Instant::now();
    let session = client.create()?;
    timed(h, t);
    let t = Instant::now();
    let handle = client.attach(session, &plan.plugin)?;
    timed(h, t);
    let t = Instant::now();
    client.message(session, handle, plan.body.clone(), None)?;
    timed(h, t);
    let t = Instant::now();
    client.detach(session, handle)?;
    timed(h, t);
    let t = Instant::now();
    client.destroy(session)?;
    timed(h, t);
    Ok(5)
}
