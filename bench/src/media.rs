//! The media scenarios: `echo` (N sessions echoing audio+video) and
//! `fanout` (M publishers × N subscribers each), with an optional ramp that
//! adds load step by step until loss exceeds 1 %.
//!
//! Extension point: a new media scenario (simulcast, data channels) is a new
//! [`Shape`] variant saying which roles its sessions play, what body their
//! `message` carries and how many copies of each sent packet the clients
//! should receive; the setup, measurement window and report are shared.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::api::{Client, Transport};
use crate::data::seconds;
use crate::peer::{self, Peer, Role, Shared};
use crate::report::{Capacity, MediaStep, Percentiles, ThreadCpu};
use crate::rtc_io::{self, Driven};
use crate::server::{self, Server};

/// Loss above which the ramp stops.
const RAMP_LOSS: f64 = 0.01;
/// How long to wait for the sessions of one step to connect.
pub(crate) const CONNECT_WAIT: Duration = Duration::from_secs(40);
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
    /// The VideoRoom with rid simulcast (`crate::simulcast`): M publishers
    /// of three layers, each with N subscribers spread over the layers.
    Simulcast { publishers: u64, subscribers: u64 },
}

/// What the plans of the str0m scenarios (media and data) share: how the
/// generator sets up its sessions and how long it measures.
#[derive(Debug, Clone)]
pub(crate) struct Common {
    pub(crate) plugin: String,
    pub(crate) transport: Transport,
    pub(crate) seconds: f64,
    pub(crate) warmup: f64,
    pub(crate) workers: usize,
    pub(crate) generator_core: Option<usize>,
    pub(crate) setup_concurrency: usize,
}

/// How to run a media scenario.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) shape: Shape,
    pub(crate) common: Common,
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
    let result = generate(
        plan.common.workers,
        plan.common.generator_core,
        |shared, senders, held| steps(server, plan, shared, senders, held),
    );
    if let Shape::VideoRoom { .. } | Shape::Simulcast { .. } = plan.shape {
        crate::videoroom::destroy_room(server, plan);
    }
    result
}

/// Run `body` with the generator's threads: `workers` threads driving the
/// clients handed to `senders`, and one keeping the sessions in `held`
/// alive. Then stop them and tear the sessions down, so the server is idle
/// for whatever comes next.
pub(crate) fn generate<P: Driven + Send + 'static, T>(
    workers: usize,
    core: Option<usize>,
    body: impl FnOnce(&Arc<Shared>, &[Sender<P>], &Arc<Mutex<Vec<Held>>>) -> T,
) -> T {
    let shared = Shared::new();
    let mut senders = Vec::new();
    let mut threads = Vec::new();
    for _ in 0..workers.max(1) {
        let (tx, rx) = channel::<P>();
        let s = Arc::clone(&shared);
        threads.push(thread::spawn(move || rtc_io::worker(rx, s, core)));
        senders.push(tx);
    }
    let held: Arc<Mutex<Vec<Held>>> = Arc::new(Mutex::new(Vec::new()));
    let keepalive_stop = Arc::new(AtomicBool::new(false));
    let keepalive = {
        let held = Arc::clone(&held);
        let stop = Arc::clone(&keepalive_stop);
        thread::spawn(move || keepalives(&held, &stop))
    };
    let result = body(&shared, &senders, &held);
    keepalive_stop.store(true, Ordering::Relaxed);
    shared.stop.store(true, Ordering::Relaxed);
    drop(senders);
    for w in threads {
        let _ = w.join();
    }
    let _ = keepalive.join();
    if let Ok(mut list) = held.lock() {
        for h in list.iter_mut() {
            let _ = h.client.destroy(h.session);
        }
        list.clear();
    }
    result
}

fn keepalives(held: &Mutex<Vec<Held>>, stop: &AtomicBool) {
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

/// Hand a client to the next worker thread (round robin).
pub(crate) fn deliver<P>(senders: &[Sender<P>], next_worker: &AtomicUsize, peer: P) -> Result<()> {
    let k = next_worker.fetch_add(1, Ordering::Relaxed) % senders.len();
    if senders[k].send(peer).is_err() {
        bail!("the worker thread is gone");
    }
    Ok(())
}

/// Create a session, attach the plan's plugin and send `body` with the
/// offer `make` returns; the client, the session to hold and the event
/// that answered.
pub(crate) fn offer_session<P>(
    server: &Server,
    transport: Transport,
    plugin: &str,
    http: &reqwest::blocking::Client,
    body: Value,
    make: impl FnOnce() -> Result<(P, String)>,
) -> Result<(P, Held, Value)> {
    let mut client = Client::connect(transport, http, &server.http, &server.ws)?;
    let session = client.create()?;
    let handle = client.attach(session, plugin)?;
    let (peer, offer) = make()?;
    let event = client.message(
        session,
        handle,
        body,
        Some(json!({"type": "offer", "sdp": offer})),
    )?;
    Ok((peer, Held { client, session }, event))
}

/// Run `job(i)` for i in 0..n on `threads` threads; returns how many
/// failed (naming the first three as `what` setup failures).
pub(crate) fn parallel(
    threads: usize,
    n: u64,
    what: &str,
    job: impl Fn(u64) -> Result<()> + Sync,
) -> u64 {
    let next = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    thread::scope(|scope| {
        for _ in 0..threads.clamp(1, 64) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    if let Err(e) = job(i)
                        && failed.fetch_add(1, Ordering::Relaxed) < 3
                    {
                        eprintln!("[bench] {what} setup failed: {e:#}");
                    }
                }
            });
        }
    });
    failed.load(Ordering::Relaxed)
}

/// [`parallel`] for setting up `n` sessions with `concurrency` threads;
/// an error when every setup failed.
pub(crate) fn set_up_many(
    n: u64,
    concurrency: usize,
    what: &str,
    one: impl Fn(u64) -> Result<()> + Sync,
) -> Result<u64> {
    let failed = parallel(concurrency, n, what, one);
    if failed == n && n > 0 {
        bail!("every session setup failed ({n})");
    }
    Ok(failed)
}

/// Wait (at most `within`) until `expected` sessions connected, failed to,
/// or (`setup_errors`) could not be set up.
pub(crate) fn wait_connected(shared: &Shared, expected: u64, setup_errors: u64, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let done = shared.connected.load(Ordering::Relaxed)
            + shared.failed.load(Ordering::Relaxed)
            + setup_errors;
        if done >= expected {
            break;
        }
        thread::sleep(Duration::from_millis(50));
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
        Shape::Fanout { subscribers, .. }
        | Shape::VideoRoom { subscribers, .. }
        | Shape::Simulcast { subscribers, .. } => (subscribers, 0),
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
            Shape::Simulcast { .. } => {
                let (added, errors) =
                    crate::simulcast::grow(&setup, shared, &mut feeds, load, target)?;
                expected_sessions += added;
                setup_errors += errors;
            }
        }
        load = target;
        wait_connected(shared, expected_sessions, setup_errors, CONNECT_WAIT);
        thread::sleep(seconds(plan.common.warmup));
        let copies = match plan.shape {
            Shape::Echo { .. } => 1.0,
            Shape::Fanout { .. } | Shape::VideoRoom { .. } | Shape::Simulcast { .. } => load as f64,
        };
        let step = Window {
            pid: server.pid,
            seconds: plan.common.seconds,
            copies,
            rss_idle,
            flows: None,
            setup_errors,
        }
        .measure(shared);
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
                cpu_budget_pct: server.cpu_budget_pct(),
            });
        } else if let Some(c) = capacity.as_mut() {
            c.limited_by = String::from(if step.server_cpu_pct >= 0.85 * server.cpu_budget_pct() {
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
        let (mut peer, held, event) = offer_session(
            self.server,
            self.plan.common.transport,
            &self.plan.common.plugin,
            self.http,
            body,
            || Peer::offer(role, started),
        )?;
        let sdp = peer::answer_sdp(&event)?;
        peer.accept_answer(&sdp)?;
        let published = event["plugindata"]["data"]["published"].as_u64();
        deliver(self.senders, self.next_worker, peer)?;
        if let Ok(mut list) = self.held.lock() {
            list.push(held);
        }
        Ok((published, ()))
    }

    /// Set up `n` sessions with `setup_concurrency` threads; `what(i)` gives
    /// the role and message body of the i-th. Returns how many failed.
    fn many(&self, n: u64, what: impl Fn(u64) -> (Role, Value) + Sync) -> Result<u64> {
        set_up_many(n, self.plan.common.setup_concurrency, "session", |i| {
            let (role, body) = what(i);
            self.one(role, body).map(drop)
        })
    }
}

/// A measurement window: which server process to sample and how the
/// figures are counted.
pub(crate) struct Window {
    /// The server's process (none: no CPU or memory figures).
    pub(crate) pid: Option<u32>,
    pub(crate) seconds: f64,
    /// How many copies of each sent packet the clients should receive.
    pub(crate) copies: f64,
    /// The server's RSS before the sessions, in KiB.
    pub(crate) rss_idle: u64,
    /// The number of sessions, when not the connected count.
    pub(crate) flows: Option<u64>,
    /// Sessions that could not be set up (counted as failed).
    pub(crate) setup_errors: u64,
}

impl Window {
    /// The steady window: counters, CPU and memory before and after.
    pub(crate) fn measure(&self, shared: &Shared) -> MediaStep {
        if let Ok(mut h) = shared.latency.lock() {
            h.reset();
        }
        shared.measuring.store(true, Ordering::Relaxed);
        let cpu0 = self.pid.map(server::cpu_sample);
        let own0 = server::own_cpu_us();
        let sent0 = shared.sent.load(Ordering::Relaxed);
        let recv0 = shared.received.load(Ordering::Relaxed);
        let stray0 = shared.stray.load(Ordering::Relaxed);
        let layers0 = layer_counts(&shared.layer_sent);
        let wrong0 = shared.wrong_layer.load(Ordering::Relaxed);
        let t0 = Instant::now();
        thread::sleep(seconds(self.seconds));
        let sent1 = shared.sent.load(Ordering::Relaxed);
        let recv1 = shared.received.load(Ordering::Relaxed);
        let stray1 = shared.stray.load(Ordering::Relaxed);
        let layers1 = layer_counts(&shared.layer_sent);
        let wrong1 = shared.wrong_layer.load(Ordering::Relaxed);
        let cpu1 = self.pid.map(server::cpu_sample);
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
        // Simulcast: each layer's packets times the subscribers asking for it.
        let layer_copies = layer_counts(&shared.layer_copies);
        let expected = if layer_copies.iter().any(|&c| c > 0) {
            (0..3)
                .map(|l| layers1[l].saturating_sub(layers0[l]) as f64 * layer_copies[l] as f64)
                .sum()
        } else {
            sent * self.copies
        };
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
        let sessions = self
            .flows
            .unwrap_or_else(|| shared.connected.load(Ordering::Relaxed));
        let rss = self.pid.map_or(0, server::rss_kib);
        MediaStep {
            sessions,
            failed_sessions: shared.failed.load(Ordering::Relaxed) + self.setup_errors,
            window_s: elapsed,
            ingress_pps: sent / elapsed,
            offered_pps: expected / elapsed,
            egress_pps: received / elapsed,
            loss,
            stray_pps: stray1.saturating_sub(stray0) as f64 / elapsed,
            wrong_layer_pps: wrong1.saturating_sub(wrong0) as f64 / elapsed,
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
                rss.saturating_sub(self.rss_idle) as f64 / sessions as f64
            } else {
                0.0
            },
            generator_cpu_pct: own1.saturating_sub(own0) as f64 / elapsed / 1e4,
        }
    }
}

/// The three per-layer counters' current values.
fn layer_counts(counters: &[AtomicU64; 3]) -> [u64; 3] {
    counters.each_ref().map(|c| c.load(Ordering::Relaxed))
}
