//! Simulated WebRTC clients: str0m peers in RTP mode (the generator writes
//! RTP packets directly, encodes and decodes nothing), many per worker
//! thread, each on its own loopback UDP socket.
//!
//! Every packet a peer sends carries a marker (`JBNC`) and its send time in
//! nanoseconds since the process's epoch, so whoever receives it (the same
//! peer for an echo, a subscriber for a fan-out) records the one-way trip
//! through the server in a latency histogram.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use hdrhistogram::Histogram;
use str0m::change::{SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Event, RtcConfig};

use crate::rtc_io::{Conn, Driven};
use crate::simulcast::Sim;

/// Audio: one 20 ms packet.
const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
const AUDIO_BYTES: usize = 100;
/// Video: 30 frames per second, three packets per frame.
const VIDEO_INTERVAL: Duration = Duration::from_micros(33_333);
const VIDEO_PACKETS_PER_FRAME: u32 = 3;
const VIDEO_BYTES: usize = 1100;
/// A key frame every this many frames.
const KEYFRAME_EVERY: u64 = 90;
/// Packets per second one sending peer produces (audio + video).
pub(crate) const PACKETS_PER_SECOND: f64 = 50.0 + 30.0 * VIDEO_PACKETS_PER_FRAME as f64;
/// The marker in front of the send time.
const MAGIC: &[u8; 4] = b"JBNC";
/// Where the marker sits in audio (after the Opus TOC byte) and video
/// (after the VP8 descriptor and a key-frame-sized VP8 header) payloads.
const AUDIO_MARK_AT: usize = 1;
const VIDEO_MARK_AT: usize = 11;
/// Latency histogram range: 1 µs to 10 s, 3 significant digits.
pub(crate) const LATENCY_MAX_US: u64 = 10_000_000;

pub(crate) fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// A fresh latency (or setup time) histogram in microseconds.
pub(crate) fn histogram() -> Histogram<u64> {
    // Invariant: 1..=10 s with 3 significant figures is a valid range.
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("valid histogram bounds")
}

/// What a peer does with media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Sends audio+video and receives them back (echo test).
    Echo,
    /// Sends audio+video only.
    Publisher,
    /// Receives audio+video only.
    Subscriber,
}

impl Role {
    fn direction(self) -> Direction {
        match self {
            Self::Echo => Direction::SendRecv,
            Self::Publisher => Direction::SendOnly,
            Self::Subscriber => Direction::RecvOnly,
        }
    }

    fn sends(self) -> bool {
        self != Self::Subscriber
    }
}

/// Counters shared by the workers and read by the scenario driver.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) stop: AtomicBool,
    /// Latency samples are recorded only while this is set.
    pub(crate) measuring: AtomicBool,
    pub(crate) sent: AtomicU64,
    pub(crate) received: AtomicU64,
    /// Marked packets that reached a peer that should receive none (a
    /// publisher): a server bug, reported apart and not counted as received.
    pub(crate) stray: AtomicU64,
    pub(crate) connected: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) latency: Mutex<Histogram<u64>>,
    pub(crate) setup: Mutex<Histogram<u64>>,
    /// Simulcast (`crate::simulcast`): packets sent per layer (0 = lowest),
    /// and how many subscribers per publisher asked for each layer (all
    /// zero: not a simulcast run).
    pub(crate) layer_sent: [AtomicU64; 3],
    pub(crate) layer_copies: [AtomicU64; 3],
    /// Simulcast: marked packets a subscriber got of a layer it did not ask
    /// for (not counted as received).
    pub(crate) wrong_layer: AtomicU64,
}

impl Shared {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            stop: AtomicBool::new(false),
            measuring: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            stray: AtomicU64::new(0),
            connected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            latency: Mutex::new(histogram()),
            setup: Mutex::new(histogram()),
            layer_sent: Default::default(),
            layer_copies: Default::default(),
            wrong_layer: AtomicU64::new(0),
        })
    }

    /// A client whose setup began at `started` is connected now: record
    /// its setup time and count it.
    pub(crate) fn connected_since(&self, started: Instant) {
        let us = u64::try_from(started.elapsed().as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, LATENCY_MAX_US);
        if let Ok(mut h) = self.setup.lock() {
            let _ = h.record(us);
        }
        self.connected.fetch_add(1, Ordering::Relaxed);
    }
}

/// One outgoing stream.
#[derive(Debug)]
struct Out {
    mid: Mid,
    pt: Pt,
    seq: u64,
    next: Instant,
    count: u64,
}

/// One simulated client's PeerConnection.
pub(crate) struct Peer {
    io: Conn,
    role: Role,
    audio_mid: Mid,
    video_mid: Mid,
    audio: Option<Out>,
    video: Option<Out>,
    pending: Option<SdpPendingOffer>,
    /// A simulcast peer: sends or receives this in place of `audio` and
    /// `video`.
    sim: Option<Sim>,
}

impl Peer {
    /// A simulcast peer (`crate::simulcast`) with one video m-line `mid`.
    pub(crate) fn simulcast(
        io: Conn,
        role: Role,
        mid: Mid,
        pending: Option<SdpPendingOffer>,
        sim: Sim,
    ) -> Self {
        Self {
            io,
            role,
            audio_mid: mid,
            video_mid: mid,
            audio: None,
            video: None,
            pending,
            sim: Some(sim),
        }
    }

    /// A peer with one Opus and one VP8 m-line in the direction of `role`,
    /// and its offer. `started` is when its session setup began.
    pub(crate) fn offer(role: Role, started: Instant) -> Result<(Self, String)> {
        let mut io = bind(started)?;
        let mut api = io.rtc.sdp_api();
        let dir = role.direction();
        let audio_mid = api.add_media(MediaKind::Audio, dir, Some("bench".into()), None, None);
        let video_mid = api.add_media(MediaKind::Video, dir, Some("bench".into()), None, None);
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| anyhow!("str0m produced no offer"))?;
        let peer = Self {
            io,
            role,
            audio_mid,
            video_mid,
            audio: None,
            video: None,
            pending: Some(pending),
            sim: None,
        };
        Ok((peer, offer.to_sdp_string()))
    }

    /// A receive-only peer answering a server's offer of sendonly audio and
    /// video (a VideoRoom subscriber), and its answer. `started` is when
    /// its session setup began.
    pub(crate) fn answer_offer(offer: &str, started: Instant) -> Result<(Self, String)> {
        let (io, answer) = answering(offer, started)?;
        let peer = Self {
            io,
            role: Role::Subscriber,
            audio_mid: mid_of(offer, "audio")?,
            video_mid: mid_of(offer, "video")?,
            audio: None,
            video: None,
            pending: None,
            sim: None,
        };
        Ok((peer, answer))
    }

    /// Apply the server's answer and find the payload types to send with.
    pub(crate) fn accept_answer(&mut self, sdp: &str) -> Result<()> {
        self.io.accept_answer(self.pending.take(), sdp)?;
        if let Some(sim) = self.sim.as_mut() {
            return sim.start(&self.io, self.video_mid);
        }
        if self.role.sends() {
            // Spread the peers' send times over the packet intervals.
            let now = Instant::now();
            let phase = Duration::from_micros(u64::from(self.io.local.port()) * 7919 % 20_000);
            let seed = u64::from(self.io.local.port());
            self.audio = Some(Out {
                mid: self.audio_mid,
                pt: self.pt(self.audio_mid, Codec::Opus)?,
                seq: seed * 13 % 20_000,
                next: now + phase,
                count: 0,
            });
            self.video = Some(Out {
                mid: self.video_mid,
                pt: self.pt(self.video_mid, Codec::Vp8)?,
                seq: seed * 17 % 20_000,
                next: now + phase,
                count: 0,
            });
        }
        Ok(())
    }

    fn pt(&self, mid: Mid, codec: Codec) -> Result<Pt> {
        let media = self
            .io
            .rtc
            .media(mid)
            .ok_or_else(|| anyhow!("no media for mid {mid}"))?;
        let remote = media.remote_pts();
        self.io
            .rtc
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == codec && remote.contains(&p.pt()))
            .map(|p| p.pt())
            .ok_or_else(|| anyhow!("{codec:?} was not negotiated on mid {mid}"))
    }
}

impl Driven for Peer {
    fn conn(&mut self) -> &mut Conn {
        &mut self.io
    }

    fn next_send(&self) -> Option<Instant> {
        if let Some(sim) = &self.sim {
            return sim.next_send();
        }
        [self.audio.as_ref(), self.video.as_ref()]
            .into_iter()
            .flatten()
            .map(|out| out.next)
            .min()
    }

    fn send_due(&mut self, now: Instant, shared: &Shared) {
        if let Some(sim) = self.sim.as_mut() {
            sim.send_due(&mut self.io, now, shared);
            return;
        }
        let stamp = u64::try_from(now.duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX);
        let mut written = 0;
        if let Some(out) = self.audio.as_mut() {
            while out.next <= now {
                let mut payload = vec![0u8; AUDIO_BYTES];
                payload[0] = 0xf8;
                mark(&mut payload, AUDIO_MARK_AT, stamp);
                let time = (out.count * 960) as u32;
                let write = RtpWrite::new(out.pt, SeqNo::from(out.seq), time, now, payload);
                match self.io.rtc.direct_api().stream_tx_by_mid(out.mid, None) {
                    Some(tx) => tx.write_rtp(write.marker(true)),
                    None => {
                        self.io.dead = true;
                        return;
                    }
                }
                out.seq += 1;
                out.count += 1;
                out.next += AUDIO_INTERVAL;
                written += 1;
            }
        }
        if let Some(out) = self.video.as_mut() {
            while out.next <= now {
                let key = out.count % KEYFRAME_EVERY == 0;
                let time = (out.count * 3000) as u32;
                for part in 0..VIDEO_PACKETS_PER_FRAME {
                    let mut payload = vec![0u8; VIDEO_BYTES];
                    // VP8 descriptor: S (start of partition) on the first
                    // packet of a frame, partition index 0.
                    payload[0] = if part == 0 { 0x10 } else { 0x00 };
                    if part == 0 {
                        // Frame tag: key frame flag (0 = key), show_frame.
                        let tag: u32 = u32::from(!key) | (1 << 4) | (100 << 5);
                        payload[1..4].copy_from_slice(&tag.to_le_bytes()[..3]);
                        if key {
                            payload[4..7].copy_from_slice(&[0x9d, 0x01, 0x2a]);
                            payload[7..9].copy_from_slice(&320u16.to_le_bytes());
                            payload[9..11].copy_from_slice(&240u16.to_le_bytes());
                        }
                    }
                    mark(&mut payload, VIDEO_MARK_AT, stamp);
                    let last = part + 1 == VIDEO_PACKETS_PER_FRAME;
                    let write = RtpWrite::new(out.pt, SeqNo::from(out.seq), time, now, payload)
                        .marker(last);
                    match self.io.rtc.direct_api().stream_tx_by_mid(out.mid, None) {
                        Some(tx) => tx.write_rtp(write),
                        None => {
                            self.io.dead = true;
                            return;
                        }
                    }
                    out.seq += 1;
                    written += 1;
                }
                out.count += 1;
                out.next += VIDEO_INTERVAL;
            }
        }
        if written > 0 {
            shared.sent.fetch_add(written, Ordering::Relaxed);
        }
    }

    fn on_event(&mut self, ev: Event, shared: &Shared, latency: &mut Histogram<u64>) {
        if let Some(sim) = self.sim.as_mut()
            && !matches!(ev, Event::Connected)
        {
            sim.on_event(ev, shared, latency);
            return;
        }
        match ev {
            Event::Connected if !self.io.ready => {
                self.io.ready = true;
                shared.connected_since(self.io.started);
            }
            Event::RtpPacket(packet) => {
                let payload = &packet.payload[..];
                let stamp =
                    read_mark(payload, AUDIO_MARK_AT).or_else(|| read_mark(payload, VIDEO_MARK_AT));
                if stamp.is_some() && self.role == Role::Publisher {
                    shared.stray.fetch_add(1, Ordering::Relaxed);
                } else if let Some(stamp) = stamp {
                    shared.received.fetch_add(1, Ordering::Relaxed);
                    if shared.measuring.load(Ordering::Relaxed) {
                        let now = u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX);
                        let us = (now.saturating_sub(stamp) / 1000).clamp(1, LATENCY_MAX_US);
                        let _ = latency.record(us);
                    }
                }
            }
            _ => {}
        }
    }
}

/// A str0m peer in RTP mode (Opus and VP8 only) with one host candidate on
/// a fresh non-blocking loopback UDP socket.
pub(crate) fn bind(started: Instant) -> Result<Conn> {
    Conn::bind(
        RtcConfig::new()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .set_rtp_mode(true),
        started,
    )
}

/// A fresh peer connection ([`bind`]) that accepted the server's `offer`,
/// and its answer.
pub(crate) fn answering(offer: &str, started: Instant) -> Result<(Conn, String)> {
    let mut io = bind(started)?;
    let parsed = SdpOffer::from_sdp_string(offer).context("parsing the offer SDP")?;
    let answer = io
        .rtc
        .sdp_api()
        .accept_offer(parsed)
        .context("str0m rejected the offer")?;
    Ok((io, answer.to_sdp_string()))
}

/// [`offer_mid`], or an error naming the missing kind.
pub(crate) fn mid_of(offer: &str, kind: &str) -> Result<Mid> {
    offer_mid(offer, kind).ok_or_else(|| anyhow!("the offer has no {kind} m-line"))
}

/// The `a=mid` of the first `m=<kind>` section of an SDP.
fn offer_mid(sdp: &str, kind: &str) -> Option<Mid> {
    let mut in_kind = false;
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(m) = line.strip_prefix("m=") {
            in_kind = m.split(' ').next() == Some(kind);
        } else if in_kind && let Some(mid) = line.strip_prefix("a=mid:") {
            return Some(Mid::from(mid));
        }
    }
    None
}

pub(crate) fn mark(payload: &mut [u8], at: usize, stamp: u64) {
    payload[at..at + 4].copy_from_slice(MAGIC);
    payload[at + 4..at + 12].copy_from_slice(&stamp.to_be_bytes());
}

pub(crate) fn read_mark(payload: &[u8], at: usize) -> Option<u64> {
    let magic = payload.get(at..at + 4)?;
    if magic != MAGIC {
        return None;
    }
    let bytes: [u8; 8] = payload.get(at + 4..at + 12)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// Answer SDP of a plugin event, or an error naming what came instead.
pub(crate) fn answer_sdp(event: &serde_json::Value) -> Result<String> {
    let jsep = &event["jsep"];
    if jsep["type"] != "answer" {
        bail!("expected an answer, got {event}");
    }
    jsep["sdp"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("answer without SDP"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip_at_both_offsets() {
        let mut audio = vec![0u8; AUDIO_BYTES];
        mark(&mut audio, AUDIO_MARK_AT, 0x0102_0304_0506_0708);
        assert_eq!(
            read_mark(&audio, AUDIO_MARK_AT),
            Some(0x0102_0304_0506_0708)
        );
        let mut video = vec![0u8; VIDEO_BYTES];
        mark(&mut video, VIDEO_MARK_AT, 42);
        assert_eq!(read_mark(&video, AUDIO_MARK_AT), None);
        assert_eq!(read_mark(&video, VIDEO_MARK_AT), Some(42));
        assert_eq!(read_mark(b"JBNC", 0), None, "too short for a time stamp");
        assert_eq!(read_mark(&[], VIDEO_MARK_AT), None);
    }

    #[test]
    fn offers_have_the_direction_of_the_role() {
        let now = Instant::now();
        let (_, sub) = Peer::offer(Role::Subscriber, now).expect("subscriber offer");
        assert_eq!(sub.matches("a=recvonly").count(), 2, "{sub}");
        let (_, publ) = Peer::offer(Role::Publisher, now).expect("publisher offer");
        assert_eq!(publ.matches("a=sendonly").count(), 2, "{publ}");
        let (_, echo) = Peer::offer(Role::Echo, now).expect("echo offer");
        // A sendonly offer (as a VideoRoom server makes) is answered recvonly.
        let (mut server, offer) = Peer::offer(Role::Publisher, now).expect("server offer");
        let (sub, answer) = Peer::answer_offer(&offer, now).expect("answer");
        assert_eq!(answer.matches("a=recvonly").count(), 2, "{answer}");
        assert_eq!(sub.role, Role::Subscriber);
        assert_eq!(Some(sub.audio_mid), offer_mid(&offer, "audio"));
        assert_ne!(sub.audio_mid, sub.video_mid);
        server
            .accept_answer(&answer)
            .expect("the answer is accepted");
        assert!(
            echo.contains("opus/48000") && echo.contains("VP8/90000"),
            "{echo}"
        );
    }
}
