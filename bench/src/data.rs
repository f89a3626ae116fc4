//! The `data` scenario: N sessions, each a str0m peer with one data channel
//! (an offer with only an `m=application` section), through the echo script
//! (scripts/echotest.js on both servers), each sending `--msg-rate`
//! messages per second of `--msg-size` bytes.
//!
//! Every message starts with the marker `JBNC`, its send time (20 decimal
//! digits, nanoseconds since the process's epoch) and its sequence number
//! (16 hex digits), padded to the size; the echo comes back as is (binary)
//! or behind the script's `[echotest.js] --> ` prefix (text). The figures
//! are those of the media scenarios with messages in place of packets:
//! messages echoed per second, loss, latency (send → server → receive),
//! server CPU µs per echoed message and RSS per session.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use hdrhistogram::Histogram;
use serde_json::json;
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

use crate::api::{Client, Transport};
use crate::peer::{self, Shared};
use crate::report::{MediaStep, Percentiles, ThreadCpu};
use crate::server::{self, Server};

/// The marker in front of the send time.
const MAGIC: &[u8; 4] = b"JBNC";
/// Marker, 20-digit send time, space, 16-digit sequence number.
const HEADER_LEN: usize = 4 + 20 + 1 + 16;
/// The smallest message that holds the header.
pub(crate) const MIN_SIZE: usize = HEADER_LEN;
/// The echo may put a prefix this long in front of the marker.
const FIND_WITHIN: usize = 64;
/// A session whose channel is not open this long after its setup began failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(25);
/// How long to wait for all sessions' channels to open.
const CONNECT_WAIT: Duration = Duration::from_secs(40);
const KEEPALIVE_EVERY: Duration = Duration::from_secs(15);
const LATENCY_MAX_US: u64 = 10_000_000;
/// Most messages per second one session may send.
const MAX_RATE: f64 = 100_000.0;

/// A duration of `s` seconds (zero for a negative or unrepresentable `s`).
pub(crate) fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or_default()
}

/// How to run the data scenario.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) sessions: u64,
    /// Messages per second per session.
    pub(crate) msg_rate: f64,
    /// Bytes per message (at least [`MIN_SIZE`]).
    pub(crate) msg_size: usize,
    /// Binary messages (else text).
    pub(crate) binary: bool,
    pub(crate) plugin: String,
    pub(crate) transport: Transport,
    pub(crate) seconds: f64,
    pub(crate) warmup: f64,
    pub(crate) workers: usize,
    pub(crate) generator_core: Option<usize>,
    pub(crate) setup_concurrency: usize,
}

/// The table of the data scenario speaks of messages, not packets.
pub(crate) fn relabel(table: &str) -> String {
    table
        .replace("egress packets/s", "echoed messages/s")
        .replace("ingress packets/s", "sent messages/s")
        .replace("stray packets/s", "stray messages/s")
        .replace("µs/egress packet", "µs/echoed message")
        .replace("setup p50", "channel open p50")
        .replace("setup p99", "channel open p99")
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn nanos_now() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Write a message of `buf.len()` bytes carrying `stamp` and `seq`.
fn encode(buf: &mut [u8], stamp: u64, seq: u64) {
    buf.fill(b'.');
    let header = format!("JBNC{stamp:020} {seq:016x}");
    let n = header.len().min(buf.len());
    buf[..n].copy_from_slice(&header.as_bytes()[..n]);
}

/// The send time of an echoed message, found within its first bytes.
fn decode(data: &[u8]) -> Option<u64> {
    let window = &data[..data.len().min(FIND_WITHIN + HEADER_LEN)];
    let at = window.windows(MAGIC.len()).position(|w| w == MAGIC)?;
    let digits = data.get(at + 4..at + 24)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// One simulated client: a str0m peer with one data channel.
struct DataPeer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    channel: ChannelId,
    pending: Option<SdpPendingOffer>,
    started: Instant,
    open: bool,
    dead: bool,
    timeout: Instant,
    next: Instant,
    interval: Duration,
    seq: u64,
    message: Vec<u8>,
    binary: bool,
}

impl DataPeer {
    /// A peer whose offer has only an `m=application` section.
    fn offer(plan: &Plan, started: Instant) -> Result<(Self, String)> {
        let socket = UdpSocket::bind("127.0.0.1:0").context("binding a loopback UDP socket")?;
        socket
            .set_nonblocking(true)
            .context("making the UDP socket non-blocking")?;
        let local = socket
            .local_addr()
            .context("reading the UDP socket address")?;
        let mut rtc = RtcConfig::new().build(Instant::now());
        let candidate =
            Candidate::host(local, "udp").map_err(|e| anyhow!("host candidate: {e}"))?;
        rtc.add_local_candidate(candidate)
            .ok_or_else(|| anyhow!("str0m refused the host candidate {local}"))?;
        let mut api = rtc.sdp_api();
        let channel = api.add_channel(String::from("bench"));
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| anyhow!("str0m produced no offer"))?;
        // `run` checked the rate: finite and positive.
        let rate = plan.msg_rate.clamp(0.001, MAX_RATE);
        let peer = Self {
            rtc,
            socket,
            local,
            channel,
            pending: Some(pending),
            started,
            open: false,
            dead: false,
            timeout: Instant::now(),
            next: Instant::now(),
            interval: Duration::from_secs_f64(1.0 / rate),
            seq: 0,
            message: vec![0; plan.msg_size.max(MIN_SIZE)],
            binary: plan.binary,
        };
        Ok((peer, offer.to_sdp_string()))
    }

    fn accept_answer(&mut self, sdp: &str) -> Result<()> {
        let answer = SdpAnswer::from_sdp_string(sdp).context("parsing the answer SDP")?;
        let pending = self
            .pending
            .take()
            .ok_or_else(|| anyhow!("no pending offer"))?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .context("str0m rejected the answer")
    }

    /// Send every message due by `now`.
    fn send_due(&mut self, now: Instant, shared: &Shared) {
        let mut sent = 0;
        while self.next <= now {
            self.seq += 1;
            encode(&mut self.message, nanos_now(), self.seq);
            let Some(mut ch) = self.rtc.channel(self.channel) else {
                self.dead = true;
                return;
            };
            // A full SCTP send buffer refuses the message: it counts as sent
            // and lost (the server did not keep up).
            if ch.write(self.binary, &self.message).is_err() {
                self.dead = true;
                return;
            }
            sent += 1;
            self.next += self.interval;
        }
        if sent > 0 {
            shared.sent.fetch_add(sent, Ordering::Relaxed);
        }
    }

    fn drain(&mut self, shared: &Shared, latency: &mut Histogram<u64>) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.timeout = t;
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(ev)) => self.on_event(ev, shared, latency),
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
    }

    fn on_event(&mut self, ev: Event, shared: &Shared, latency: &mut Histogram<u64>) {
        match ev {
            Event::ChannelOpen(id, _) if id == self.channel && !self.open => {
                self.open = true;
                let us = u64::try_from(self.started.elapsed().as_micros())
                    .unwrap_or(u64::MAX)
                    .clamp(1, LATENCY_MAX_US);
                if let Ok(mut h) = shared.setup.lock() {
                    let _ = h.record(us);
                }
                shared.connected.fetch_add(1, Ordering::Relaxed);
                // Spread the sessions' send times over the interval.
                let phase = u64::from(self.local.port()) * 7919 % 1_000_000;
                self.next = Instant::now() + self.interval.mul_f64(phase as f64 / 1_000_000.0);
            }
            Event::ChannelData(data) => {
                if let Some(stamp) = decode(&data.data) {
                    shared.received.fetch_add(1, Ordering::Relaxed);
                    if shared.measuring.load(Ordering::Relaxed) {
                        let us =
                            (nanos_now().saturating_sub(stamp) / 1000).clamp(1, LATENCY_MAX_US);
                        let _ = latency.record(us);
                    }
                }
            }
            Event::ChannelClose(id) if id == self.channel => self.dead = true,
            _ => {}
        }
    }

    fn handle(&mut self, input: Input<'_>, shared: &Shared, latency: &mut Histogram<u64>) {
        if self.rtc.handle_input(input).is_err() {
            self.dead = true;
            return;
        }
        self.drain(shared, latency);
    }

    fn read(&mut self, buf: &mut [u8], shared: &Shared, latency: &mut Histogram<u64>) {
        loop {
            match self.socket.recv_from(buf) {
                Ok((n, source)) => {
                    let Ok(contents) = buf[..n].try_into() else {
                        continue;
                    };
                    let input = Input::Receive(
                        Instant::now(),
                        Receive {
                            proto: Protocol::Udp,
                            source,
                            destination: self.local,
                            contents,
                        },
                    );
                    self.handle(input, shared, latency);
                    if self.dead {
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
    }
}

/// Drive peers handed over on `incoming` until `shared.stop` is set.
fn worker(incoming: Receiver<DataPeer>, shared: Arc<Shared>, core: Option<usize>) {
    if let Some(core) = core {
        server::pin_current_thread(core);
    }
    let mut peers: Vec<DataPeer> = Vec::new();
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let mut live: Vec<usize> = Vec::new();
    let mut buf = vec![0u8; 2048];
    let mut latency = peer::histogram();
    let mut flushed = Instant::now();
    let mut accepting = true;
    while !shared.stop.load(Ordering::Relaxed) {
        while accepting {
            match incoming.try_recv() {
                Ok(mut p) => {
                    p.drain(&shared, &mut latency);
                    peers.push(p);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => accepting = false,
            }
        }
        let now = Instant::now();
        let mut next = now + Duration::from_millis(20);
        for p in &mut peers {
            if p.dead {
                continue;
            }
            if !p.open && now.duration_since(p.started) > CONNECT_TIMEOUT {
                p.dead = true;
                shared.failed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if p.open {
                p.send_due(now, &shared);
                p.drain(&shared, &mut latency);
                next = next.min(p.next);
            }
            if p.timeout <= now {
                p.handle(Input::Timeout(now), &shared, &mut latency);
            }
            next = next.min(p.timeout);
        }
        live.clear();
        live.extend((0..peers.len()).filter(|&i| !peers[i].dead));
        fds.clear();
        fds.extend(live.iter().map(|&i| libc::pollfd {
            fd: peers[i].socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }));
        let wait = next.saturating_duration_since(Instant::now());
        let ms = i32::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(20);
        if fds.is_empty() {
            thread::sleep(Duration::from_millis(u64::try_from(ms.max(1)).unwrap_or(1)));
        } else {
            // SAFETY: `fds` is a valid, initialized slice of pollfd for the
            // duration of the call; the length matches.
            unsafe {
                libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms);
            }
            for (fd, &i) in fds.iter().zip(&live) {
                if fd.revents != 0 {
                    peers[i].read(&mut buf, &shared, &mut latency);
                }
            }
        }
        if flushed.elapsed() >= Duration::from_millis(100) {
            flushed = Instant::now();
            if shared.measuring.load(Ordering::Relaxed)
                && let Ok(mut h) = shared.latency.lock()
            {
                let _ = h.add(&latency);
            }
            latency.reset();
        }
    }
}

/// One Janus session the generator holds open.
struct Held {
    client: Client,
    session: u64,
}

/// Set up one session: create, attach, data-only offer → answer.
fn setup_one(
    server: &Server,
    plan: &Plan,
    http: &reqwest::blocking::Client,
) -> Result<(DataPeer, Held)> {
    let started = Instant::now();
    let mut client = Client::connect(plan.transport, http, &server.http, &server.ws)?;
    let session = client.create()?;
    let handle = client.attach(session, &plan.plugin)?;
    let (mut p, offer) = DataPeer::offer(plan, started)?;
    let event = client.message(
        session,
        handle,
        json!({"data": true}),
        Some(json!({"type": "offer", "sdp": offer})),
    )?;
    let sdp = peer::answer_sdp(&event)?;
    p.accept_answer(&sdp)?;
    Ok((p, Held { client, session }))
}

/// Run the data scenario against `server`: one window.
pub(crate) fn run(server: &Server, plan: &Plan) -> Result<MediaStep> {
    if !(plan.msg_rate.is_finite() && plan.msg_rate > 0.0 && plan.msg_rate <= MAX_RATE) {
        bail!("--msg-rate must be a number of messages per second in (0, {MAX_RATE}]");
    }
    let shared = Shared::new();
    let mut senders: Vec<Sender<DataPeer>> = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..plan.workers.max(1) {
        let (tx, rx) = channel::<DataPeer>();
        let s = Arc::clone(&shared);
        let core = plan.generator_core;
        workers.push(thread::spawn(move || worker(rx, s, core)));
        senders.push(tx);
    }
    let held: Arc<Mutex<Vec<Held>>> = Arc::new(Mutex::new(Vec::new()));
    let keepalive_stop = Arc::new(AtomicBool::new(false));
    let keepalive = {
        let held = Arc::clone(&held);
        let stop = Arc::clone(&keepalive_stop);
        thread::spawn(move || keepalives(&held, &stop))
    };
    let result = window(server, plan, &shared, &senders, &held);
    keepalive_stop.store(true, Ordering::Relaxed);
    shared.stop.store(true, Ordering::Relaxed);
    drop(senders);
    for w in workers {
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

fn window(
    server: &Server,
    plan: &Plan,
    shared: &Shared,
    senders: &[Sender<DataPeer>],
    held: &Mutex<Vec<Held>>,
) -> Result<MediaStep> {
    let http = Client::http_client()?;
    let rss_idle = server.pid.map_or(0, server::rss_kib);
    let next = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let next_worker = AtomicUsize::new(0);
    thread::scope(|scope| {
        for _ in 0..plan.setup_concurrency.clamp(1, 64) {
            scope.spawn(|| {
                while next.fetch_add(1, Ordering::Relaxed) < plan.sessions {
                    match setup_one(server, plan, &http) {
                        Ok((p, h)) => {
                            let k = next_worker.fetch_add(1, Ordering::Relaxed) % senders.len();
                            if senders[k].send(p).is_err() {
                                failed.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            if let Ok(mut list) = held.lock() {
                                list.push(h);
                            }
                        }
                        Err(e) => {
                            if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                                eprintln!("[bench] data session setup failed: {e:#}");
                            }
                        }
                    }
                }
            });
        }
    });
    let setup_errors = failed.load(Ordering::Relaxed);
    if setup_errors == plan.sessions && plan.sessions > 0 {
        bail!("every session setup failed ({})", plan.sessions);
    }
    let deadline = Instant::now() + CONNECT_WAIT;
    while Instant::now() < deadline {
        let done = shared.connected.load(Ordering::Relaxed)
            + shared.failed.load(Ordering::Relaxed)
            + setup_errors;
        if done >= plan.sessions {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(seconds(plan.warmup));
    let step = measure(server, plan, shared, rss_idle, setup_errors);
    eprintln!(
        "[bench] {}: {} data sessions, {:.0} echoed messages/s, loss {:.2} %, {:.1} µs CPU/message, p99 {} µs",
        server.flavor.name(),
        step.sessions,
        step.egress_pps,
        step.loss * 100.0,
        step.server_cpu_us_per_packet,
        step.latency_us.p99
    );
    Ok(step)
}

/// The steady window: counters, CPU and memory before and after.
fn measure(
    server: &Server,
    plan: &Plan,
    shared: &Shared,
    rss_idle: u64,
    setup_errors: u64,
) -> MediaStep {
    if let Ok(mut h) = shared.latency.lock() {
        h.reset();
    }
    shared.measuring.store(true, Ordering::Relaxed);
    let cpu0 = server.pid.map(server::cpu_sample);
    let own0 = server::own_cpu_us();
    let sent0 = shared.sent.load(Ordering::Relaxed);
    let recv0 = shared.received.load(Ordering::Relaxed);
    let t0 = Instant::now();
    thread::sleep(seconds(plan.seconds));
    let sent1 = shared.sent.load(Ordering::Relaxed);
    let recv1 = shared.received.load(Ordering::Relaxed);
    let cpu1 = server.pid.map(server::cpu_sample);
    let own1 = server::own_cpu_us();
    let elapsed = t0.elapsed().as_secs_f64();
    thread::sleep(Duration::from_millis(150));
    shared.measuring.store(false, Ordering::Relaxed);
    let latency = shared
        .latency
        .lock()
        .map(|h| Percentiles::of(&h))
        .unwrap_or_default();
    let setup = shared
        .setup
        .lock()
        .map(|h| Percentiles::of(&h))
        .unwrap_or_default();
    let sent = sent1.saturating_sub(sent0) as f64;
    let received = recv1.saturating_sub(recv0) as f64;
    let (cpu_us, threads) = match (&cpu0, &cpu1) {
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
    MediaStep {
        sessions,
        failed_sessions: shared.failed.load(Ordering::Relaxed) + setup_errors,
        window_s: elapsed,
        ingress_pps: sent / elapsed,
        offered_pps: sent / elapsed,
        egress_pps: received / elapsed,
        loss: if sent > 0.0 {
            (1.0 - received / sent).max(0.0)
        } else {
            1.0
        },
        stray_pps: 0.0,
        server_cpu_pct: cpu_us / elapsed / 1e4,
        server_cpu_us_per_packet: if received > 0.0 {
            cpu_us / received
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_their_send_time_through_the_echo_prefix() {
        let mut m = vec![0u8; 1024];
        encode(&mut m, 123_456_789, 7);
        assert_eq!(m.len(), 1024);
        assert_eq!(decode(&m), Some(123_456_789));
        let mut echoed = b"[echotest.js] --> ".to_vec();
        echoed.extend_from_slice(&m);
        assert_eq!(decode(&echoed), Some(123_456_789));
        assert_eq!(decode(b"JBNC12"), None, "too short");
        assert_eq!(decode(b"hello world"), None);
        let mut garbled = m.clone();
        garbled[10] = b'x';
        assert_eq!(decode(&garbled), None);
    }

    #[test]
    fn the_offer_has_only_an_application_section() {
        let plan = Plan {
            sessions: 1,
            msg_rate: 50.0,
            msg_size: 10,
            binary: false,
            plugin: String::new(),
            transport: Transport::Http,
            seconds: 1.0,
            warmup: 0.0,
            workers: 1,
            generator_core: None,
            setup_concurrency: 1,
        };
        let (p, sdp) = DataPeer::offer(&plan, Instant::now()).expect("a data offer");
        assert!(sdp.contains("m=application"), "{sdp}");
        assert!(
            !sdp.contains("m=audio") && !sdp.contains("m=video"),
            "{sdp}"
        );
        assert_eq!(
            p.message.len(),
            MIN_SIZE,
            "short sizes grow to hold the header"
        );
    }

    #[test]
    fn tables_speak_of_messages() {
        let t = relabel("egress packets/s\nserver CPU µs/egress packet\n");
        assert_eq!(t, "echoed messages/s\nserver CPU µs/echoed message\n");
    }
}
