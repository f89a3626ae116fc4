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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use hdrhistogram::Histogram;
use serde_json::json;
use str0m::change::SdpPendingOffer;
use str0m::channel::ChannelId;
use str0m::{Event, RtcConfig};

use crate::api::Client;
use crate::media::{self, Held, Window};
use crate::peer::{self, Shared};
use crate::report::MediaStep;
use crate::rtc_io::{Conn, Driven};
use crate::server::{self, Server};

/// The marker in front of the send time.
const MAGIC: &[u8; 4] = b"JBNC";
/// Marker, 20-digit send time, space, 16-digit sequence number.
const HEADER_LEN: usize = 4 + 20 + 1 + 16;
/// The smallest message that holds the header.
pub(crate) const MIN_SIZE: usize = HEADER_LEN;
/// The echo may put a prefix this long in front of the marker.
const FIND_WITHIN: usize = 64;
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
    pub(crate) common: media::Common,
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
    io: Conn,
    channel: ChannelId,
    pending: Option<SdpPendingOffer>,
    next: Instant,
    interval: Duration,
    seq: u64,
    message: Vec<u8>,
    binary: bool,
}

impl DataPeer {
    /// A peer whose offer has only an `m=application` section.
    fn offer(plan: &Plan, started: Instant) -> Result<(Self, String)> {
        let mut io = Conn::bind(RtcConfig::new(), started)?;
        let mut api = io.rtc.sdp_api();
        let channel = api.add_channel(String::from("bench"));
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| anyhow!("str0m produced no offer"))?;
        // `run` checked the rate: finite and positive.
        let rate = plan.msg_rate.clamp(0.001, MAX_RATE);
        let peer = Self {
            io,
            channel,
            pending: Some(pending),
            next: Instant::now(),
            interval: Duration::from_secs_f64(1.0 / rate),
            seq: 0,
            message: vec![0; plan.msg_size.max(MIN_SIZE)],
            binary: plan.binary,
        };
        Ok((peer, offer.to_sdp_string()))
    }

    fn accept_answer(&mut self, sdp: &str) -> Result<()> {
        self.io.accept_answer(self.pending.take(), sdp)
    }
}

impl Driven for DataPeer {
    fn conn(&mut self) -> &mut Conn {
        &mut self.io
    }

    fn next_send(&self) -> Option<Instant> {
        Some(self.next)
    }

    /// Send every message due by `now`.
    fn send_due(&mut self, now: Instant, shared: &Shared) {
        let mut sent = 0;
        while self.next <= now {
            self.seq += 1;
            encode(&mut self.message, nanos_now(), self.seq);
            let Some(mut ch) = self.io.rtc.channel(self.channel) else {
                self.io.dead = true;
                return;
            };
            // A full SCTP send buffer refuses the message: it counts as sent
            // and lost (the server did not keep up).
            if ch.write(self.binary, &self.message).is_err() {
                self.io.dead = true;
                return;
            }
            sent += 1;
            self.next += self.interval;
        }
        if sent > 0 {
            shared.sent.fetch_add(sent, Ordering::Relaxed);
        }
    }

    fn on_event(&mut self, ev: Event, shared: &Shared, latency: &mut Histogram<u64>) {
        match ev {
            Event::ChannelOpen(id, _) if id == self.channel && !self.io.ready => {
                self.io.ready = true;
                shared.connected_since(self.io.started);
                // Spread the sessions' send times over the interval.
                let phase = u64::from(self.io.local.port()) * 7919 % 1_000_000;
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
            Event::ChannelClose(id) if id == self.channel => self.io.dead = true,
            _ => {}
        }
    }
}

/// Set up one session: create, attach, data-only offer → answer.
fn setup_one(
    server: &Server,
    plan: &Plan,
    http: &reqwest::blocking::Client,
) -> Result<(DataPeer, Held)> {
    let started = Instant::now();
    let (mut p, held, event) = media::offer_session(
        server,
        plan.common.transport,
        &plan.common.plugin,
        http,
        json!({"data": true}),
        || DataPeer::offer(plan, started),
    )?;
    p.accept_answer(&peer::answer_sdp(&event)?)?;
    Ok((p, held))
}

/// Run the data scenario against `server`: one window.
pub(crate) fn run(server: &Server, plan: &Plan) -> Result<MediaStep> {
    if !(plan.msg_rate.is_finite() && plan.msg_rate > 0.0 && plan.msg_rate <= MAX_RATE) {
        bail!("--msg-rate must be a number of messages per second in (0, {MAX_RATE}]");
    }
    media::generate(
        plan.common.workers,
        plan.common.generator_core,
        |shared, senders, held| window(server, plan, shared, senders, held),
    )
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
    let next_worker = AtomicUsize::new(0);
    let setup_errors = media::set_up_many(
        plan.sessions,
        plan.common.setup_concurrency,
        "data session",
        |_| {
            let (p, h) = setup_one(server, plan, &http)?;
            media::deliver(senders, &next_worker, p)?;
            if let Ok(mut list) = held.lock() {
                list.push(h);
            }
            Ok(())
        },
    )?;
    media::wait_connected(shared, plan.sessions, setup_errors, media::CONNECT_WAIT);
    thread::sleep(seconds(plan.common.warmup));
    let step = Window {
        pid: server.pid,
        seconds: plan.common.seconds,
        copies: 1.0,
        rss_idle,
        flows: None,
        setup_errors,
    }
    .measure(shared);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Transport;

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
            common: media::Common {
                plugin: String::new(),
                transport: Transport::Http,
                seconds: 1.0,
                warmup: 0.0,
                workers: 1,
                generator_core: None,
                setup_concurrency: 1,
            },
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
