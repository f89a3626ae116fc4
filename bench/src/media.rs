//! The media scenarios: `echo` (N sessions echoing audio+video) and
//! `fanout` (M publishers × N subscribers each), with an optional ramp that
//! adds load step by step until loss exceeds 1 %.
//!
//! Extension point: a new media scenario (simulcast, data channels) is a new
//! [`Shape`] variant saying which roles its sessions play, what body their
//! `message` carries and how many copies of each sent packet the clients
//! should receive; the setup, measurement window and report are shared.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::api::{Client, Transport};
use crate::peer::{self, Peer, Role, Shared};
use crate::report::{Capacity, MediaStep, Percentiles, ThreadCpu};
use crate::server::{self, Server};

/// Loss above which the ramp stops.
const RAMP_LOSS: f64 = 0.01;
/// How long to wait for the sessions of one step to connect.
const CONNECT_WAIT: Duration = Duration::from_secs(40);
/// Keepalive period for the sessions (servers time out idle ones at 60 s).
const KEEPALIVE_EVERY: Duration = Duration::from_secs(15);

/// The shape of a media scenario's load.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape {
    /// N sessions that each send audio+video and get it echoed back.
    Echo { sessions: u64 },
    /// M publishers, each with N subscribers.
    Fanout { publishers: u64, subscribers: u64 },
    /// A VideoRoom (`crate::videoroom`): M publishers, each with N
    /// subscriber handles; with `meeting`, N = M − 1 and each participant
    /// subscribes to every other one.
    VideoRoom {
        publishers: u64,
        subscribers: u64,
        meeting: bool,
    },
}

/// How to run a media scenario.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) shape: Shape,
    pub(crate) plugin: String,
    pub(crate) transport: Transport,
    pub(crate) seconds: f64,
    pub(crate) warmup: f64,
    pub(crate) workers: usize,
    pub(crate) generator_core: Option<usize>,
    pub(crate) setup_concurrency: usize,
    /// Ramp: add this much load per step (sessions for echo, subscribers
    /// per publisher for fanout) up to `ramp_max`.
    pub(crate) ramp_step: Option<u64>,
    pub(crate) ramp_max: u64,
}

/// One Janus session the generator holds open.
pub(crate) struct Held {
    pub(crate) client: Client,
    pub(crate) session: u64,
}

/// Run the plan against `server`: one step, or a ramp.
pub(crate) fn run(server: &Server, plan: &Plan) -> Result<(Vec<MediaStep>, Option<Capacity>)> {
    let shared = Shared::new();
    let mut senders = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..plan.workers.max(1) {
        let (tx, rx) = channel::<Peer>();
        let s = Arc::clone(&shared);
        let core = plan.generator_core;
        workers.push(thread::spawn(move || peer::worker(rx, s, core)));
        senders.push(tx);
    }
    let held: Arc<Mutex<Vec<Held>>> = Arc::new(Mutex::new(Vec::new()));
    let keepalive_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let keepalive = {
        let held = Arc::clone(&held);
        let stop = Arc::clone(&keepalive_stop);
        thread::spawn(move || keepalives(&held, &stop))
    };
    let result = steps(server, plan, &shared, &senders, &held);
    keepalive_stop.store(true, Ordering::Relaxed);
    shared.stop.store(true, Ordering::Relaxed);
    drop(senders);
    for w in workers {
        let _ = w.join();
    }
    let _ = keepalive.join();
    // Tear the sessions down so the server is idle for whatever comes next.
    if let Ok(mut list) = held.lock() {
        for h in list.iter_mut() {
            let _ = h.client.destroy(h.session);
        }
        list.clear();
    }
    if let Shape::VideoRoom { .. } = plan.shape {
        crate::videoroom::destroy_room(server, plan);
    }
    result
}

fn keepalives(held: &Mutex<Vec<Held>>, stop: &std::sync::atomic::AtomicBool) {
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(200));
        if last.elapsed() < KEEPALIVE_EVERY {
            continue;
        }
        last = Instant::now();
        if let Ok(mut list) = held.lock() {
            for h in list.iter_mut() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let _ = h.client.keepalive(h.session);
            }
        }
    }
}

fn steps(
    server: &Server,
    plan: &Plan,
    shared: &Arc<Shared>,
    senders: &[Sender<Peer>],
    held: &Arc<Mutex<Vec<Held>>>,
) -> Result<(Vec<MediaStep>, Option<Capacity>)> {
    let http = Client::http_client()?;
    let rss_idle = server.pid.map_or(0, server::rss_kib);
    let next_worker = AtomicUsize::new(0);
    let setup = Setup {
        server,
        plan,
        http: &http,
        senders,
        held,
        next_worker: &next_worker,
    };
    let mut feeds: Vec<u64> = Vec::new();
    let mut results = Vec::new();
    let mut capacity = None;
    // Load of the current step: sessions (echo) or subscribers per publisher.
    let (first, mut load) = match plan.shape {
        Shape::Echo { sessions } => (sessions, 0),
        Shape::Fanout { subscribers, .. } | Shape::VideoRoom { subscribers, .. } => {
            (subscribers, 0)
        }
    };
    let mut target = first;
    let mut expected_sessions: u64 = 0;
    let mut setup_errors: u64 = 0;
    loop {
        let added = target.saturating_sub(load);
        match plan.shape {
            Shape::Echo { .. } => {
                setup_errors += setup.many(added, |_| {
                    (Role::Echo, json!({"audio": true, "video": true}))
                })?;
                expected_sessions += added;
            }
            Shape::Fanout { publishers, .. } => {
                if feeds.is_empty() {
                    for _ in 0..publishers {
                        let (published, _) =
                            setup.one(Role::Publisher, json!({"request": "publish"}))?;
                        let Some(feed) = published else {
                            bail!("the publish answer named no feed (\"published\")");
                        };
                        feeds.push(feed);
                    }
                    expected_sessions += publishers;
                }
                let list = feeds.clone();
                let n = added * list.len() as u64;
                setup_errors += setup.many(n, |i| {
                    let feed = list[(i % list.len() as u64) as usize];
                    (
                        Role::Subscriber,
                        json!({"request": "subscribe", "feed": feed}),
                    )
                })?;
                expected_sessions += n;
            }
            Shape::VideoRoom { .. } => {
                let (added, errors) =
                    crate::videoroom::grow(&setup, shared, &mut feeds, load, target)?;
                expected_sessions += added;
                setup_errors += errors;
            }
        }
        load = target;
        // Wait for the new sessions to connect (or fail).
        let deadline = Instant::now() + CONNECT_WAIT;
        while Instant::now() < deadline {
            let done = shared.connected.load(Ordering::Relaxed)
                + shared.failed.load(Ordering::Relaxed)
                + setup_errors;
            if done >= expected_sessions {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        thread::sleep(Duration::from_secs_f64(plan.warmup));
        let copies = match plan.shape {
            Shape::Echo { .. } => 1.0,
            Shape::Fanout { .. } | Shape::VideoRoom { .. } => load as f64,
        };
        let step = measure(server, plan, shared, copies, rss_idle, setup_errors)?;
        eprintln!(
            "[bench] {}: {} sessions, {:.0} egress packets/s, loss {:.2} %, {:.1} µs CPU/packet, p99 {} µs",
            server.flavor.name(),
            step.sessions,
            step.egress_pps,
            step.loss * 100.0,
            step.server_cpu_us_per_packet,
            step.latency_us.p99
        );
        let ok = step.loss <= RAMP_LOSS && step.failed_sessions == 0;
        if ok {
            capacity = Some(Capacity {
                sessions: step.sessions,
                egress_pps: step.egress_pps,
                limited_by: String::from("ramp limit"),
            });
        } else if let Some(c) = capacity.as_mut() {
            c.limited_by = String::from(if step.server_cpu_pct >= 85.0 {
                "server"
            } else {
                "not the server"
            });
        }
        results.push(step);
        match plan.ramp_step {
            Some(inc) if ok && target + inc <= plan.ramp_max => target += inc,
            _ => break,
        }
    }
    if plan.ramp_step.is_none() {
        capacity = None;
    }
    Ok((results, capacity))
}

/// What setting up sessions needs.
pub(crate) struct Setup<'a> {
    pub(crate) server: &'a Server,
    pub(crate) plan: &'a Plan,
    pub(crate) http: &'a reqwest::blocking::Client,
    pub(crate) senders: &'a [Sender<Peer>],
    pub(crate) held: &'a Arc<Mutex<Vec<Held>>>,
    pub(crate) next_worker: &'a AtomicUsize,
}

impl Setup<'_> {
    /// Set up one session: create, attach, offer → answer; hands the peer
    /// to a worker. Returns the `published` feed id of the answer, if any.
    fn one(&self, role: Role, body: Value) -> Result<(Option<u64>, ())> {
        let started = Instant::now();
        let mut client = Client::connect(
            self.plan.transport,
            self.http,
            &self.server.http,
            &self.server.ws,
        )?;
        let session = client.create()?;
        let handle = client.attach(session, &self.plan.plugin)?;
        let (mut peer, offer) = Peer::offer(role, started)?;
        let event = client.message(
            session,
            handle,
            body,
            Some(json!({"type": "offer", "sdp": offer})),
        )?;
        let sdp = peer::answer_sdp(&event)?;
        peer.accept_answer(&sdp)?;
        let published = event["plugindata"]["data"]["published"].as_u64();
        let k = self.next_worker.fetch_add(1, Ordering::Relaxed) % self.senders.len();
        if self.senders[k].send(peer).is_err() {
            bail!("the worker thread is gone");
        }
        if let Ok(mut list) = self.held.lock() {
            list.push(Held { client, session });
        }
        Ok((published, ()))
    }

    /// Set up `n` sessions with `setup_concurrency` threads; `what(i)` gives
    /// the role and message body of the i-th. Returns how many failed.
    fn many(&self, n: u64, what: impl Fn(u64) -> (Role, Value) + Sync) -> Result<u64> {
        let next = std::sync::atomic::AtomicU64::new(0);
        let failed = std::sync::atomic::AtomicU64::new(0);
        let threads = self.plan.setup_concurrency.clamp(1, 64);
        thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return;
                        }
                        let (role, body) = what(i);
                        if let Err(e) = self.one(role, body) {
                            let count = failed.fetch_add(1, Ordering::Relaxed);
                            if count < 3 {
                                eprintln!("[bench] session setup failed: {e:#}");
                            }
                        }
                    }
                });
            }
        });
        let failed = failed.load(Ordering::Relaxed);
        if failed == n && n > 0 {
            bail!("every session setup failed ({n})");
        }
        Ok(failed)
    }
}

/// The steady window: counters, CPU and memory before and after.
fn measure(
    server: &Server,
    plan: &Plan,
    shared: &Shared,
    copies: f64,
    rss_idle: u64,
    setup_errors: u64,
) -> Result<MediaStep> {
    if let Ok(mut h) = shared.latency.lock() {
        h.reset();
    }
    shared.measuring.store(true, Ordering::Relaxed);
    let cpu0 = server.pid.map(server::cpu_sample);
    let own0 = server::own_cpu_us();
    let sent0 = shared.sent.load(Ordering::Relaxed);
    let recv0 = shared.received.load(Ordering::Relaxed);
    let stray0 = shared.stray.load(Ordering::Relaxed);
    let t0 = Instant::now();
    thread::sleep(Duration::from_secs_f64(plan.seconds));
    let sent1 = shared.sent.load(Ordering::Relaxed);
    let recv1 = shared.received.load(Ordering::Relaxed);
    let stray1 = shared.stray.load(Ordering::Relaxed);
    let cpu1 = server.pid.map(server::cpu_sample);
    let own1 = server::own_cpu_us();
    let elapsed = t0.elapsed().as_secs_f64();
    // Let the workers flush their latency samples.
    thread::sleep(Duration::from_millis(150));
    shared.measuring.store(false, Ordering::Relaxed);
    let latency = shared
        .latency
        .lock()
        .map(|h| Percentiles::of(&h))
        .unwrap_or_default();
    let setup = match shared.setup.lock() {
        Ok(mut h) => {
            let p = Percentiles::of(&h);
            h.reset();
            p
        }
        Err(_) => Percentiles::default(),
    };
    let sent = sent1.saturating_sub(sent0) as f64;
    let received = recv1.saturating_sub(recv0) as f64;
    let expected = sent * copies;
    let loss = if expected > 0.0 {
        (1.0 - received / expected).max(0.0)
    } else {
        1.0
    };
    let (server_cpu_us, threads) = match (&cpu0, &cpu1) {
        (Some(a), Some(b)) => (
            b.total_us.saturating_sub(a.total_us) as f64,
            server::thread_delta(a, b)
                .into_iter()
                .map(|(name, n, us)| ThreadCpu {
                    name,
                    threads: n,
                    cpu_pct: us as f64 / elapsed / 1e4,
                })
                .collect(),
        ),
        _ => (f64::NAN, Vec::new()),
    };
    let sessions = shared.connected.load(Ordering::Relaxed);
    let rss = server.pid.map_or(0, server::rss_kib);
    Ok(MediaStep {
        sessions,
        failed_sessions: shared.failed.load(Ordering::Relaxed) + setup_errors,
        window_s: elapsed,
        ingress_pps: sent / elapsed,
        offered_pps: expected / elapsed,
        egress_pps: received / elapsed,
        loss,
        stray_pps: stray1.saturating_sub(stray0) as f64 / elapsed,
        server_cpu_pct: server_cpu_us / elapsed / 1e4,
        server_cpu_us_per_packet: if received > 0.0 {
            server_cpu_us / received
        } else {
            f64::NAN
        },
        server_threads: threads,
        latency_us: latency,
        setup_us: setup,
        rss_kib_per_session: if sessions > 0 {
            rss.saturating_sub(rss_idle) as f64 / sessions as f64
        } else {
            0.0
        },
        generator_cpu_pct: own1.saturating_sub(own0) as f64 / elapsed / 1e4,
    })
}
