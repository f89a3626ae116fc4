//! The `simulcast` scenario: the VideoRoom flows of `crate::videoroom`
//! with rid simulcast publishers and subscribers that each ask for one
//! layer.
//!
//! - Publisher: a str0m peer offering ONE sendonly VP8 m-line with
//!   `a=simulcast:send f;h;q` (high first, as browsers list them; both
//!   servers take the first rid as the highest layer). Each layer has its own
//!   rate ([`LAYERS`]); every packet carries a VP8 payload descriptor (15-bit
//!   PictureID, TL0PICIDX, temporal id in the pattern 0,2,1,2), the first
//!   packet of a frame a VP8 payload header (a key frame every
//!   [`KEYFRAME_EVERY`] on each layer, and on the next frame of a layer
//!   after a keyframe request for it), then the marker `JBNC`, the send time
//!   and the layer index.
//! - Subscriber: joins with `streams:[{feed, substream}]`
//!   ([`crate::videoroom::subscribe_with`]); subscriber j of a publisher asks
//!   for layer j mod 3. Packets of its layer count as received (and give
//!   latency samples); packets of another layer count as "wrong layer".
//!
//! The expected egress is each layer's packets times the subscribers per
//! publisher asking for that layer (`Shared::layer_copies`).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use str0m::Event;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt, Rid, Simulcast, SimulcastLayer};
use str0m::rtp::{RtpWrite, SeqNo};

use crate::media::{self, Setup, Shape};
use crate::peer::{self, LATENCY_MAX_US, Peer, Role, Shared};
use crate::rtc_io::Conn;
use crate::videoroom;

/// One simulcast layer's stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerRate {
    pub(crate) rid: &'static str,
    pub(crate) fps: u32,
    pub(crate) packets_per_frame: u32,
    /// RTP payload bytes of each packet.
    pub(crate) bytes: usize,
}

/// The layers, lowest first: 15 fps × 1 packet of 300 B (15 packets/s),
/// 30 fps × 1 of 800 B (30 packets/s), 30 fps × 3 of 1,100 B (90 packets/s,
/// the video of the other scenarios).
pub(crate) const LAYERS: [LayerRate; 3] = [
    LayerRate {
        rid: "q",
        fps: 15,
        packets_per_frame: 1,
        bytes: 300,
    },
    LayerRate {
        rid: "h",
        fps: 30,
        packets_per_frame: 1,
        bytes: 800,
    },
    LayerRate {
        rid: "f",
        fps: 30,
        packets_per_frame: 3,
        bytes: 1100,
    },
];
/// Packets per second one publisher sends (all layers).
pub(crate) const PACKETS_PER_SECOND: f64 = (LAYERS[0].fps * LAYERS[0].packets_per_frame
    + LAYERS[1].fps * LAYERS[1].packets_per_frame
    + LAYERS[2].fps * LAYERS[2].packets_per_frame)
    as f64;
/// A key frame on every layer this often.
pub(crate) const KEYFRAME_EVERY: Duration = Duration::from_secs(2);
/// Where the marker (`JBNC`, send time) sits: after the 6-byte VP8 payload
/// descriptor and a 10-byte key-frame-sized VP8 payload header. The layer
/// index follows it.
const MARK_AT: usize = 16;
const LAYER_AT: usize = MARK_AT + 12;
/// VP8's RTP clock.
const CLOCK: u64 = 90_000;

/// The layer rates for the JSON report's parameters.
pub(crate) fn layers_json() -> Value {
    json!(
        LAYERS
            .iter()
            .enumerate()
            .map(|(i, l)| json!({
                "layer": i,
                "rid": l.rid,
                "fps": l.fps,
                "packets_per_frame": l.packets_per_frame,
                "payload_bytes": l.bytes,
                "packets_per_second": l.fps * l.packets_per_frame,
            }))
            .collect::<Vec<_>>()
    )
}

/// The layer subscriber `j` of a publisher asks for.
fn layer_of(j: u64) -> u8 {
    (j % LAYERS.len() as u64) as u8
}

/// How many of the first `subscribers` subscribers of a publisher ask for
/// each layer.
fn copies(subscribers: u64) -> [u64; 3] {
    let n = LAYERS.len() as u64;
    [0, 1, 2].map(|l| subscribers / n + u64::from(subscribers % n > l))
}

/// What a simulcast [`Peer`] does in place of audio+video.
pub(crate) enum Sim {
    /// Sends the three layers.
    Publisher(Layers),
    /// Receives one video stream and expects packets of `layer` only.
    Subscriber { layer: u8 },
}

/// A publisher's layers.
pub(crate) struct Layers {
    /// The VP8 payload type, once the answer is applied.
    pt: Option<Pt>,
    mid: Mid,
    out: Vec<LayerOut>,
}

/// One layer's sending state.
struct LayerOut {
    rid: Rid,
    rate: LayerRate,
    seq: u64,
    picture_id: u16,
    tl0: u8,
    frame: u64,
    next: Instant,
    /// The next frame is a key frame (a keyframe request came).
    key: bool,
}

/// A publisher peer and its offer: one sendonly VP8 m-line with three rid
/// layers. `started` is when its setup began.
pub(crate) fn publisher(started: Instant) -> Result<(Peer, String)> {
    let mut io = peer::bind(started)?;
    let mut simulcast = Simulcast::new();
    for layer in LAYERS.iter().rev() {
        simulcast.add_send_layer(SimulcastLayer {
            rid: layer.rid.into(),
            attributes: None,
        });
    }
    let mut api = io.rtc.sdp_api();
    let mid = api.add_media(
        MediaKind::Video,
        Direction::SendOnly,
        Some("bench".into()),
        None,
        Some(simulcast),
    );
    let (offer, pending) = api
        .apply()
        .ok_or_else(|| anyhow!("str0m produced no offer"))?;
    let now = Instant::now();
    let out = LAYERS
        .iter()
        .zip(0u16..)
        .map(|(rate, i)| LayerOut {
            rid: rate.rid.into(),
            rate: *rate,
            seq: 1000 * u64::from(i + 1),
            picture_id: 100 * (i + 1),
            tl0: 10 * (i as u8 + 1),
            frame: 0,
            next: now,
            key: true,
        })
        .collect();
    let sim = Sim::Publisher(Layers { pt: None, mid, out });
    let peer = Peer::simulcast(io, Role::Publisher, mid, Some(pending), sim);
    Ok((peer, offer.to_sdp_string()))
}

/// A subscriber peer answering the server's offer (one sendonly video
/// m-line), expecting `layer`, and its answer.
pub(crate) fn subscriber(offer: &str, started: Instant, layer: u8) -> Result<(Peer, String)> {
    let (io, answer) = peer::answering(offer, started)?;
    let mid = peer::mid_of(offer, "video")?;
    let peer = Peer::simulcast(io, Role::Subscriber, mid, None, Sim::Subscriber { layer });
    Ok((peer, answer))
}

impl Sim {
    /// The answer is applied: a publisher finds its payload type and
    /// schedules its layers.
    pub(crate) fn start(&mut self, io: &Conn, mid: Mid) -> Result<()> {
        let Self::Publisher(layers) = self else {
            return Ok(());
        };
        let media = io
            .rtc
            .media(mid)
            .ok_or_else(|| anyhow!("no media for mid {mid}"))?;
        let remote = media.remote_pts();
        let pt = io
            .rtc
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == Codec::Vp8 && remote.contains(&p.pt()))
            .map(|p| p.pt())
            .ok_or_else(|| anyhow!("VP8 was not negotiated on mid {mid}"))?;
        layers.pt = Some(pt);
        // Spread the publishers' send times over the frame interval.
        let phase = Duration::from_micros(u64::from(io.local.port()) * 7919 % 33_333);
        let now = Instant::now();
        for out in &mut layers.out {
            out.next = now + phase;
        }
        Ok(())
    }

    pub(crate) fn next_send(&self) -> Option<Instant> {
        match self {
            Self::Publisher(layers) if layers.pt.is_some() => {
                layers.out.iter().map(|o| o.next).min()
            }
            _ => None,
        }
    }

    /// Write every frame due by `now` on every layer.
    pub(crate) fn send_due(&mut self, io: &mut Conn, now: Instant, shared: &Shared) {
        let Self::Publisher(layers) = self else {
            return;
        };
        let Some(pt) = layers.pt else {
            return;
        };
        let stamp = u64::try_from(now.duration_since(peer::epoch()).as_nanos()).unwrap_or(u64::MAX);
        for (index, out) in layers.out.iter_mut().enumerate() {
            let mut written = 0;
            while out.next <= now {
                let fps = u64::from(out.rate.fps);
                let key = out.key || out.frame % (fps * KEYFRAME_EVERY.as_secs()).max(1) == 0;
                out.key = false;
                let tid = if key {
                    0
                } else {
                    [0u8, 2, 1, 2][(out.frame % 4) as usize]
                };
                out.picture_id = (out.picture_id + 1) & 0x7fff;
                if tid == 0 {
                    out.tl0 = out.tl0.wrapping_add(1);
                }
                let time = (out.frame * CLOCK / fps) as u32;
                let frame = Frame {
                    layer: index as u8,
                    key,
                    tid,
                    picture_id: out.picture_id,
                    tl0: out.tl0,
                    stamp,
                };
                for part in 0..out.rate.packets_per_frame {
                    let payload = frame.payload(part, out.rate.bytes);
                    let last = part + 1 == out.rate.packets_per_frame;
                    let write =
                        RtpWrite::new(pt, SeqNo::from(out.seq), time, now, payload).marker(last);
                    match io
                        .rtc
                        .direct_api()
                        .stream_tx_by_mid(layers.mid, Some(out.rid))
                    {
                        Some(tx) => tx.write_rtp(write),
                        None => {
                            io.dead = true;
                            return;
                        }
                    }
                    out.seq += 1;
                    written += 1;
                }
                out.frame += 1;
                out.next += Duration::from_nanos(1_000_000_000 / fps);
            }
            if written > 0 {
                shared.sent.fetch_add(written, Ordering::Relaxed);
                shared.layer_sent[index].fetch_add(written, Ordering::Relaxed);
            }
        }
    }

    /// Everything but `Connected`: keyframe requests (publisher) and media
    /// (subscriber).
    pub(crate) fn on_event(&mut self, ev: Event, shared: &Shared, latency: &mut Histogram<u64>) {
        match (self, ev) {
            (Self::Publisher(layers), Event::KeyframeRequest(request)) => {
                for out in &mut layers.out {
                    if request.rid.is_none_or(|rid| rid == out.rid) {
                        out.key = true;
                    }
                }
            }
            (Self::Publisher(_), Event::RtpPacket(packet))
                if peer::read_mark(&packet.payload, MARK_AT).is_some() =>
            {
                shared.stray.fetch_add(1, Ordering::Relaxed);
            }
            (Self::Subscriber { layer }, Event::RtpPacket(packet)) => {
                let payload = &packet.payload[..];
                let Some(stamp) = peer::read_mark(payload, MARK_AT) else {
                    return;
                };
                if payload.get(LAYER_AT).copied() != Some(*layer) {
                    shared.wrong_layer.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                shared.received.fetch_add(1, Ordering::Relaxed);
                if shared.measuring.load(Ordering::Relaxed) {
                    let now = u64::try_from(peer::epoch().elapsed().as_nanos()).unwrap_or(u64::MAX);
                    let us = (now.saturating_sub(stamp) / 1000).clamp(1, LATENCY_MAX_US);
                    let _ = latency.record(us);
                }
            }
            _ => {}
        }
    }
}

/// One frame of one layer.
struct Frame {
    layer: u8,
    key: bool,
    tid: u8,
    picture_id: u16,
    tl0: u8,
    /// Send time (ns since the process's epoch).
    stamp: u64,
}

impl Frame {
    /// The RTP payload of packet `part` of the frame, `bytes` long: VP8
    /// payload descriptor (X; S on the first packet; I with a 15-bit
    /// PictureID, L, T), on the first packet a VP8 payload header (key frame:
    /// tag with P = 0, start code, size), then the marker and the layer.
    fn payload(&self, part: u32, bytes: usize) -> Vec<u8> {
        let mut p = vec![0u8; bytes.max(LAYER_AT + 1)];
        p[0] = if part == 0 { 0x90 } else { 0x80 };
        p[1] = 0xe0;
        p[2] = 0x80 | (self.picture_id >> 8) as u8;
        p[3] = self.picture_id as u8;
        p[4] = self.tl0;
        p[5] = (self.tid << 6) | if self.tid > 0 { 0x20 } else { 0 };
        if part == 0 {
            if self.key {
                let (w, h) = (320u16 << self.layer, 180u16 << self.layer);
                p[6..12].copy_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a]);
                p[12..14].copy_from_slice(&w.to_le_bytes());
                p[14..16].copy_from_slice(&h.to_le_bytes());
            } else {
                p[6..9].copy_from_slice(&[0x11, 0x02, 0x00]);
            }
        }
        peer::mark(&mut p, MARK_AT, self.stamp);
        p[LAYER_AT] = self.layer;
        p
    }
}

/// Grow the room from `load` to `target` subscribers per publisher (the
/// first call also creates the room and its publishers, whose feed ids it
/// keeps in `feeds`). Returns the PeerConnections set up and the setups
/// that failed.
pub(crate) fn grow(
    setup: &Setup<'_>,
    shared: &Shared,
    feeds: &mut Vec<u64>,
    load: u64,
    target: u64,
) -> Result<(u64, u64)> {
    let Shape::Simulcast { publishers, .. } = setup.plan.shape else {
        bail!("not a simulcast plan");
    };
    let mut added = 0;
    if feeds.is_empty() {
        videoroom::create_room(setup, publishers)?;
        for i in 0..publishers {
            let (mut client, session) = videoroom::open(setup)?;
            let feed = videoroom::publish_with(setup, &mut client, session, i, publisher);
            videoroom::hold(setup, client, session);
            feeds.push(feed.context("setting up a publisher")?);
        }
        added += publishers;
        media::wait_connected(shared, publishers, 0, videoroom::PUBLISHERS_WAIT);
    }
    for (counter, n) in shared.layer_copies.iter().zip(copies(target)) {
        counter.store(n, Ordering::Relaxed);
    }
    let list = feeds.clone();
    let per = list.len() as u64;
    let n = target.saturating_sub(load) * per;
    let failed = media::parallel(setup.plan.common.setup_concurrency, n, "simulcast", |i| {
        let feed = list[(i % per) as usize];
        let layer = layer_of(load + i / per);
        let started = Instant::now();
        let (mut client, session) = videoroom::open(setup)?;
        let result = videoroom::subscribe_with(
            setup,
            &mut client,
            session,
            feed,
            started,
            Some(layer),
            |offer, started| subscriber(offer, started, layer),
        );
        videoroom::hold(setup, client, session);
        result
    });
    if failed == n && n > 0 {
        bail!("every subscriber setup failed ({n})");
    }
    Ok((added + n, failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_spread_over_the_layers() {
        assert_eq!(copies(0), [0, 0, 0]);
        assert_eq!(copies(1), [1, 0, 0]);
        assert_eq!(copies(5), [2, 2, 1]);
        assert_eq!(copies(60), [20, 20, 20]);
        let counted = (0..7).fold([0u64; 3], |mut c, j| {
            c[usize::from(layer_of(j))] += 1;
            c
        });
        assert_eq!(counted, copies(7));
        let sum: u32 = LAYERS.iter().map(|l| l.fps * l.packets_per_frame).sum();
        assert_eq!(f64::from(sum), PACKETS_PER_SECOND);
    }

    #[test]
    fn payloads_carry_layer_keyframe_and_descriptor() {
        let frame = Frame {
            layer: 2,
            key: true,
            tid: 0,
            picture_id: 0x1234,
            tl0: 7,
            stamp: 99,
        };
        let first = frame.payload(0, 1100);
        assert_eq!(first.len(), 1100);
        assert_eq!(first[0], 0x90, "X and S");
        assert_eq!(u16::from_be_bytes([first[2], first[3]]), 0x8000 | 0x1234);
        assert_eq!(first[6] & 1, 0, "key frame tag");
        assert_eq!(&first[9..12], &[0x9d, 0x01, 0x2a]);
        assert_eq!(peer::read_mark(&first, MARK_AT), Some(99));
        assert_eq!(first[LAYER_AT], 2);
        let next = frame.payload(1, 1100);
        assert_eq!(next[0], 0x80, "no S on a continuation packet");
        assert_eq!(next[LAYER_AT], 2);
        let delta = Frame {
            layer: 0,
            key: false,
            tid: 2,
            ..frame
        }
        .payload(0, 300);
        assert_eq!(delta.len(), 300);
        assert_eq!(delta[6] & 1, 1, "inter frame tag");
        assert_eq!(delta[5], 0x80 | 0x20, "tid 2 with Y");
        assert_eq!(delta[LAYER_AT], 0);
    }

    #[test]
    fn the_publisher_offers_three_rids_high_first() {
        let (_, offer) = publisher(Instant::now()).expect("publisher offer");
        assert_eq!(offer.matches("m=").count(), 1, "{offer}");
        assert!(offer.contains("a=sendonly"), "{offer}");
        assert!(offer.contains("a=simulcast:send f;h;q"), "{offer}");
        for rid in ["q", "h", "f"] {
            assert!(offer.contains(&format!("a=rid:{rid} send")), "{offer}");
        }
    }
}
