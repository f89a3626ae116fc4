//! The RTP feedback the core owns (media.md §5.2 steps 6–8 and 14, §5.3
//! step 3, §5.4, §5.5) and the media-state reports (janus-api.md §5.3):
//!
//! * RTX from the peer restored to the original stream, useless
//!   retransmissions dropped;
//! * receiver statistics (jitter) per kind for the RR report blocks;
//! * NACKs towards the peer for missing video packets;
//! * transport-wide CC: arrival records turned into feedback every
//!   [`TWCC_PERIOD`], and a per-PC sequence on what we send;
//! * the header extensions of what we send, rebuilt for the recipient;
//! * NACKs from the peer answered from a retransmission buffer, as RFC 4588
//!   RTX when negotiated;
//! * `MediaEvent::Receiving` when a kind starts or stops arriving, and
//!   `MediaEvent::SlowLink` when a second's losses reach the configured
//!   threshold (media.md §9; the peer's report blocks also give the RTT
//!   that sets how long packets are kept for NACKs).
//!
//! Everything is allocated when the PC is created; nothing per packet.

use std::time::{Duration, Instant};

use jsfu_proto::nack::{Arrival, NackConfig, NackGenerator, RetransmitBuffer};
use jsfu_proto::rtcp::feedback::write_nack;
use jsfu_proto::rtcp::twcc::write_twcc;

use jsfu_proto::rtcp::report::{ReportBlockView, rtt_us};
use jsfu_proto::rtcp::{self, ReceiverStats, RtcpPacket, TwccRecord};
use jsfu_proto::rtp::ext::{self, ExtForm};
use jsfu_proto::rtp::{ExtensionWriter, Pt, RtpView, RtpViewMut, SeqNo, SeqUnwrapper, Ssrc};
use jsfu_proto::rtx;
use jsfu_route::{HeaderExtensionIds, MediaEvent, PcConfig, SessionKey};

use crate::session::{Session, kind_index};
use crate::shard::{RtcpSent, Shard, slab_get};
use crate::simulcast::MAX_LAYERS;
use crate::stats::DropReason;

/// How often transport-wide CC feedback is sent (media.md §5.5
/// `twcc_period`).
pub(crate) const TWCC_PERIOD: Duration = Duration::from_millis(200);

/// Most packets one transport-wide CC feedback reports (media.md §5.5).
const TWCC_MAX_PER_FEEDBACK: usize = 400;

/// Arrival records kept between two feedbacks (older ones are dropped when
/// more arrive in one period).
const TWCC_RECORDS: usize = 1024;

/// A kind that sent nothing for this long is reported as not receiving
/// (janus-api.md §5.3, `no_media_timer`).
const NO_MEDIA: Duration = Duration::from_secs(1);

/// How long DTLS must have been up before "not receiving" is reported.
const MEDIA_GRACE: Duration = Duration::from_secs(1);

/// How often slow links are checked (media.md §9).
const SLOWLINK_PERIOD: Duration = Duration::from_secs(1);

/// How often the "not receiving" check runs.
const MEDIA_CHECK: Duration = Duration::from_secs(1);

/// Sent video packets kept for NACKs (a power of two).
const RESEND_ENTRIES: usize = 512;

/// Largest plaintext RTP packet kept for retransmission.
const RESEND_BYTES: usize = 1500;

/// Most sequence numbers one NACK lists.
const NACK_BATCH: usize = 64;

/// The one-byte extension id the audio level of a relayed packet travels
/// under between ingress and egress (the relay renumbers it at ingress so
/// that a recipient on any shard finds it without the source's extmap).
pub(crate) const RELAY_AUDIO_LEVEL_ID: u8 = 14;
/// The same for the video orientation (`urn:3gpp:video-orientation`).
pub(crate) const RELAY_VIDEO_ORIENTATION_ID: u8 = 13;
/// The same for the playout delay.
pub(crate) const RELAY_PLAYOUT_DELAY_ID: u8 = 12;
/// The same for the absolute capture time.
pub(crate) const RELAY_ABS_CAPTURE_TIME_ID: u8 = 11;

/// Receive state of one kind (audio or video) of a session's peer.
#[derive(Debug, Default)]
struct RxKind {
    stats: ReceiverStats,
    nack: Option<NackGenerator>,
    last_packet: Option<Instant>,
    receiving: bool,
}

/// The feedback state of one PeerConnection.
#[derive(Debug)]
pub(crate) struct Feedback {
    rx: [RxKind; 2],
    /// NACK state of simulcast video layers 1 and 2 (layer 0 is the video
    /// `RxKind`'s), made when a layer's first packet arrives, if NACKs were
    /// negotiated.
    layer_nacks: [Option<NackGenerator>; MAX_LAYERS - 1],
    /// Receiver statistics (jitter) of simulcast video layers 1 and 2.
    layer_stats: [ReceiverStats; MAX_LAYERS - 1],
    /// Plaintext video packets sent to the peer, for its NACKs.
    resend: Option<RetransmitBuffer>,
    /// Sequence counter of our RTX stream.
    rtx_seq: u16,
    /// Per-PC transport-wide sequence of what we send.
    twcc_out: u16,
    twcc_in: SeqUnwrapper,
    twcc_records: Box<[TwccRecord]>,
    twcc_len: usize,
    twcc_fb_count: u8,
    next_twcc: Option<Instant>,
    /// When the timers first saw the PC with DTLS up.
    up_since: Option<Instant>,
    next_media_check: Option<Instant>,
    /// Cumulative loss the peer reports on what we send, per kind.
    peer_lost: [Option<i32>; 2],
    /// Loss totals at the previous slow-link check: [uplink, downlink][kind].
    lost_prev: [[i64; 2]; 2],
    next_slowlink: Option<Instant>,
}

fn nack_wanted(config: &PcConfig) -> bool {
    config
        .media
        .iter()
        .any(|m| m.is_video() && m.recv && m.nack)
}

fn resend_wanted(config: &PcConfig) -> bool {
    config
        .media
        .iter()
        .any(|m| m.is_video() && m.send && m.nack)
}

fn new_nack() -> Option<NackGenerator> {
    // The default configuration is valid by construction.
    NackGenerator::new(NackConfig::default()).ok()
}

fn new_resend() -> Option<RetransmitBuffer> {
    // Constant, valid arguments (capacity within 1..=32768, non-zero slots).
    RetransmitBuffer::new(
        RESEND_ENTRIES,
        RESEND_BYTES,
        jsfu_proto::nack::DEFAULT_MIN_QUEUE_US,
    )
    .ok()
}

impl Feedback {
    /// The state for a new PC.
    pub(crate) fn new(config: &PcConfig) -> Self {
        let mut rx: [RxKind; 2] = Default::default();
        if nack_wanted(config) {
            rx[kind_index(true)].nack = new_nack();
        }
        Self {
            rx,
            layer_nacks: Default::default(),
            layer_stats: Default::default(),
            resend: resend_wanted(config).then(new_resend).flatten(),
            rtx_seq: 0,
            twcc_out: 0,
            twcc_in: SeqUnwrapper::new(),
            twcc_records: vec![
                TwccRecord {
                    seq: 0,
                    arrival_us: 0
                };
                TWCC_RECORDS
            ]
            .into_boxed_slice(),
            twcc_len: 0,
            twcc_fb_count: 0,
            next_twcc: None,
            up_since: None,
            next_media_check: None,
            peer_lost: [None, None],
            lost_prev: [[0; 2]; 2],
            next_slowlink: None,
        }
    }

    /// A renegotiation may turn NACKs on.
    pub(crate) fn update(&mut self, config: &PcConfig) {
        let video = &mut self.rx[kind_index(true)];
        if video.nack.is_none() && nack_wanted(config) {
            video.nack = new_nack();
        }
        if self.resend.is_none() && resend_wanted(config) {
            self.resend = new_resend();
        }
    }

    /// The interarrival jitter of a kind, in RTP units (for the RR block).
    pub(crate) fn jitter(&self, video: bool) -> u32 {
        self.rx[kind_index(video)].stats.jitter()
    }

    /// The interarrival jitter of simulcast video layer `layer` (0 is the
    /// video stream's).
    pub(crate) fn layer_jitter(&self, layer: usize) -> u32 {
        match layer {
            0 => self.jitter(true),
            l => self.layer_stats.get(l - 1).map_or(0, ReceiverStats::jitter),
        }
    }

    /// Keeps a plaintext video packet sent to the peer for its NACKs.
    pub(crate) fn keep(&mut self, now_us: u64, seq: SeqNo, plain: &[u8]) {
        if let Some(buf) = self.resend.as_mut() {
            // Too large to keep: it is not resent (the peer asks for a keyframe).
            let _ = buf.insert(now_us, seq, plain);
        }
    }

    fn record_twcc(&mut self, seq: SeqNo, arrival_us: u64) {
        let ext = self.twcc_in.unwrap(seq);
        if self.twcc_len == self.twcc_records.len() {
            // Full: forget the oldest half (reported as lost).
            let half = self.twcc_len / 2;
            self.twcc_records.copy_within(half.., 0);
            self.twcc_len -= half;
        }
        self.twcc_records[self.twcc_len] = TwccRecord {
            seq: ext,
            arrival_us,
        };
        self.twcc_len += 1;
    }

    /// See [`on_rtp`]: the bookkeeping once the m-line's extension ids and
    /// the payload type's clock rate are known.
    #[allow(clippy::too_many_arguments)]
    fn on_packet(
        &mut self,
        now: Instant,
        now_us: u64,
        video: bool,
        view: &RtpView<'_>,
        retransmission: bool,
        layer: u8,
        ids: HeaderExtensionIds,
        clock_rate: u32,
    ) -> bool {
        if let Some(seq) = ids
            .transport_cc
            .and_then(|id| view.extension(id))
            .and_then(ext::transport_cc_seq)
        {
            self.record_twcc(seq, now_us);
        }
        if layer > 0 {
            // Upper simulcast layers: their own NACK state (with the same
            // negotiation as layer 0), nothing else.
            let i = usize::from(layer) - 1;
            if !retransmission && let Some(stats) = self.layer_stats.get_mut(i) {
                stats.handle_packet(view.seq(), view.timestamp(), now_us, clock_rate);
            }
            let Some(slot) = self.layer_nacks.get_mut(i) else {
                return true;
            };
            if slot.is_none() && self.rx[kind_index(true)].nack.is_some() {
                *slot = new_nack();
            }
            let arrival = slot
                .as_mut()
                .map(|n| n.handle_packet(now_us, view.seq(), false));
            return !(retransmission
                && matches!(
                    arrival,
                    Some(Arrival::Duplicate | Arrival::Recovered { nacked: false })
                ));
        }
        let rx = &mut self.rx[kind_index(video)];
        rx.last_packet = Some(now);
        let arrival = rx
            .nack
            .as_mut()
            .map(|n| n.handle_packet(now_us, view.seq(), false));
        if retransmission
            && matches!(
                arrival,
                Some(Arrival::Duplicate | Arrival::Recovered { nacked: false })
            )
        {
            return false;
        }
        if !retransmission {
            rx.stats
                .handle_packet(view.seq(), view.timestamp(), now_us, clock_rate);
        }
        true
    }

    /// The video sequence numbers of simulcast layer `layer` (0 for a plain
    /// stream) due for a NACK at `now_us` (at most `out.len()`).
    pub(crate) fn poll_nacks(&mut self, now_us: u64, layer: u8, out: &mut [SeqNo]) -> usize {
        let generator = match layer {
            0 => self.rx[kind_index(true)].nack.as_mut(),
            l => self
                .layer_nacks
                .get_mut(usize::from(l) - 1)
                .and_then(Option::as_mut),
        };
        let Some(generator) = generator else {
            return 0;
        };
        if generator.poll_timeout().is_some_and(|t| t <= now_us) {
            generator.handle_timeout(now_us);
        }
        generator.poll_nack(out)
    }

    /// Media-state changes at `now` per kind (audio, video): `Some(true)`
    /// when packets started arriving, `Some(false)` when none came for
    /// [`NO_MEDIA`] (checked every [`MEDIA_CHECK`], once DTLS has been up
    /// for [`MEDIA_GRACE`]; the first call marks DTLS up).
    pub(crate) fn media_transitions(&mut self, now: Instant) -> [Option<bool>; 2] {
        let up_since = *self.up_since.get_or_insert(now);
        let check_stop =
            now >= up_since + MEDIA_GRACE && self.next_media_check.is_none_or(|t| now >= t);
        if check_stop {
            self.next_media_check = Some(now + MEDIA_CHECK);
        }
        let mut out = [None, None];
        for (rx, change) in self.rx.iter_mut().zip(out.iter_mut()) {
            let Some(last) = rx.last_packet else {
                continue;
            };
            let silent = now.saturating_duration_since(last) >= NO_MEDIA;
            if !rx.receiving && !silent {
                rx.receiving = true;
                *change = Some(true);
            } else if rx.receiving && silent && check_stop {
                rx.receiving = false;
                *change = Some(false);
            }
        }
        out
    }

    /// Whether transport-wide CC feedback is due at `now` (and something to
    /// report); schedules the next one.
    pub(crate) fn twcc_due(&mut self, now: Instant) -> bool {
        if self.next_twcc.is_some_and(|t| now < t) {
            return false;
        }
        self.next_twcc = Some(now + TWCC_PERIOD);
        self.twcc_len > 0
    }

    /// Writes one transport-wide CC feedback about the oldest pending
    /// records; returns its length and how many records it covers.
    pub(crate) fn write_twcc(&self, out: &mut [u8], sender: Ssrc, media: Ssrc) -> (usize, usize) {
        let records = &self.twcc_records[..self.twcc_len.min(TWCC_MAX_PER_FEEDBACK)];
        match write_twcc(out, sender, media, self.twcc_fb_count, records) {
            Ok(w) => (w.len, w.records_used),
            Err(_) => (0, 0),
        }
    }

    /// Forgets the records a feedback covered (all of them when it could not
    /// be sent, so a bad record cannot wedge the queue).
    pub(crate) fn twcc_consumed(&mut self, used: usize, sent: bool) {
        let used = if sent {
            self.twcc_fb_count = self.twcc_fb_count.wrapping_add(1);
            used.clamp(1, self.twcc_len)
        } else {
            self.twcc_len
        };
        self.twcc_records.copy_within(used..self.twcc_len, 0);
        self.twcc_len -= used;
    }

    /// Slow-link check (media.md §9), at most once per [`SLOWLINK_PERIOD`]:
    /// `totals[0][kind]` is the cumulative loss the peer reports on what we
    /// send (uplink), `totals[1][kind]` what we measured on what it sends
    /// (downlink), `None` when not sending / receiving. Returns the increases
    /// that reached `threshold`, same layout.
    pub(crate) fn slow_link(
        &mut self,
        now: Instant,
        totals: [[Option<i64>; 2]; 2],
        threshold: u32,
    ) -> [[Option<u32>; 2]; 2] {
        let mut out = [[None; 2]; 2];
        if threshold == 0 || self.next_slowlink.is_some_and(|t| now < t) {
            return out;
        }
        self.next_slowlink = Some(now + SLOWLINK_PERIOD);
        for (dir, totals) in totals.iter().enumerate() {
            for (kind, total) in totals.iter().enumerate() {
                let Some(total) = *total else {
                    continue;
                };
                let prev = std::mem::replace(&mut self.lost_prev[dir][kind], total);
                let increase = total.saturating_sub(prev);
                if increase > 0 && increase >= i64::from(threshold) {
                    out[dir][kind] = Some(u32::try_from(increase).unwrap_or(u32::MAX));
                }
            }
        }
        out
    }

    /// Pending transport-wide CC records.
    #[cfg(test)]
    fn twcc_pending(&self) -> usize {
        self.twcc_len
    }
}

/// Restores an RTX packet of the peer (non-simulcast video) in place:
/// payload type from the `apt`, SSRC from the video stream, sequence number
/// from the OSN (media.md §5.2 step 6). Returns the new length.
pub(crate) fn unwrap_rtx(s: &Session, rtx_pt: u8, buf: &mut [u8]) -> Result<usize, DropReason> {
    let line = s
        .config
        .media
        .iter()
        .filter(|m| m.is_video() && m.recv)
        .find(|m| m.rtx.iter().any(|r| r.rtx_pt == rtx_pt))
        .ok_or(DropReason::RtxFromPeer)?;
    let apt = line
        .rtx
        .iter()
        .find(|r| r.rtx_pt == rtx_pt)
        .map(|r| r.apt)
        .ok_or(DropReason::RtxFromPeer)?;
    let ssrc = s.inbound[kind_index(true)]
        .ssrc
        .or_else(|| line.remote_ssrcs.first().copied())
        .ok_or(DropReason::RtxFromPeer)?;
    rtx::unwrap_in_place(buf, Pt(apt), Ssrc(ssrc))
        .map(|(len, _)| len)
        .map_err(|_| DropReason::RtxFromPeer)
}

/// Bookkeeping for one received (and restored) RTP packet: NACK state per
/// stream (a plain stream is `layer` 0, a simulcast layer its index),
/// receiver stats and media-state time (of the stream, or of simulcast layer
/// 0), transport-wide CC arrival (every packet). Returns `false` when
/// the packet is a useless retransmission to drop (media.md §5.2 step 8).
pub(crate) fn on_rtp(
    s: &mut Session,
    now: Instant,
    now_us: u64,
    video: bool,
    view: &RtpView<'_>,
    retransmission: bool,
    layer: u8,
) -> bool {
    let ids = s.recv_extensions(video);
    let clock_rate =
        s.recv_clock_rate(video, view.pt().0)
            .unwrap_or(if video { 90_000 } else { 48_000 });
    s.feedback.on_packet(
        now,
        now_us,
        video,
        view,
        retransmission,
        layer,
        ids,
        clock_rate,
    )
}

/// Reads the report blocks of the peer's SRs and RRs about our streams:
/// the loss it reports (slow link, media.md §9) and the round-trip time
/// (retransmission keep time, media.md §5.4).
pub(crate) fn on_rtcp(s: &mut Session, plain: &[u8]) {
    let local = [s.local_ssrc(false), s.local_ssrc(true)];
    let arrival = crate::shard::ntp_now();
    let fb = &mut s.feedback;
    let mut visit = |b: ReportBlockView<'_>| {
        for (kind, ssrc) in local.iter().enumerate() {
            if b.ssrc().0 != *ssrc {
                continue;
            }
            fb.peer_lost[kind] = Some(b.cumulative_lost());
            if kind == kind_index(true) && b.lsr() != 0 {
                if let (Some(rtt), Some(resend)) =
                    (rtt_us(arrival, b.lsr(), b.dlsr()), fb.resend.as_mut())
                {
                    resend.update_rtt(rtt);
                }
            }
        }
    };
    for packet in rtcp::parse(plain) {
        match packet {
            Ok(RtcpPacket::SenderReport(sr)) => sr.report_blocks().for_each(&mut visit),
            Ok(RtcpPacket::ReceiverReport(rr)) => rr.report_blocks().for_each(&mut visit),
            _ => {}
        }
    }
}

/// Renumbers the header extensions a relayed packet carries on to its
/// recipients — the audio level ([`RELAY_AUDIO_LEVEL_ID`]), video
/// orientation, playout delay and absolute capture time — from the source's
/// negotiated ids to the fixed relay ids, and turns every other element into
/// padding, so that egress on any shard finds them without the source's
/// extmap (media.md §6 step 5: "the parsed header extensions of the incoming
/// packet are forwarded").
pub(crate) fn normalize_ingress(s: &Session, video: bool, plain: &mut [u8]) {
    normalize_with(s.recv_extensions(video), video, plain);
}

/// [`normalize_ingress`] with the source's negotiated ids.
fn normalize_with(ids: HeaderExtensionIds, video: bool, plain: &mut [u8]) {
    let keep: [(Option<u8>, u8); 3] = if video {
        [
            (ids.video_orientation, RELAY_VIDEO_ORIENTATION_ID),
            (ids.playout_delay, RELAY_PLAYOUT_DELAY_ID),
            (ids.abs_capture_time, RELAY_ABS_CAPTURE_TIME_ID),
        ]
    } else {
        [
            (ids.audio_level, RELAY_AUDIO_LEVEL_ID),
            (None, 0),
            (ids.abs_capture_time, RELAY_ABS_CAPTURE_TIME_ID),
        ]
    };
    if let Ok(mut v) = RtpViewMut::parse(plain) {
        v.remap_extensions(|id| {
            keep.iter()
                .find(|(from, _)| *from == Some(id))
                .map(|&(_, to)| to)
        });
    }
}

/// Writes the header extensions of an outgoing packet for a recipient
/// (media.md §5.3 step 3), those the recipient negotiated, in this order:
/// abs-send-time and the per-PC transport-wide sequence on video, the audio
/// level the packet carried on audio, the video orientation and playout
/// delay it carried on video, the mid, then the absolute capture time it
/// carried (`carried`: the packet when it went through [`normalize_ingress`],
/// so that values under the relay ids are real; `None` for a packet a script
/// relays). Returns the length of the extension block written to `out` (0 for
/// none).
pub(crate) fn write_extensions(
    fb: &mut Feedback,
    ids: HeaderExtensionIds,
    video: bool,
    mid: Option<&[u8]>,
    carried: Option<&RtpView<'_>>,
    now_us: u64,
    out: &mut [u8],
) -> usize {
    let mut w = ExtensionWriter::new(out, ExtForm::OneByte);
    let one_byte = |id: Option<u8>| id.filter(|&i| ExtForm::OneByte.valid_id(i));
    // Values the packet carries under the relay ids (none for a packet a
    // script relays: its ids are the script's business).
    let carried_value = |id: u8| carried.and_then(|view| view.extension(id));
    if video {
        if let Some(id) = one_byte(ids.abs_send_time) {
            let _ = w.push_abs_send_time(id, now_us);
        }
        if let Some(id) = one_byte(ids.transport_cc) {
            if w.push_transport_cc(id, SeqNo(fb.twcc_out)).is_ok() {
                fb.twcc_out = fb.twcc_out.wrapping_add(1);
            }
        }
    } else if let (Some(id), Some(level)) = (
        one_byte(ids.audio_level),
        carried_value(RELAY_AUDIO_LEVEL_ID).filter(|v| ext::audio_level(v).is_some()),
    ) {
        let _ = w.push(id, &level[..1]);
    }
    if video {
        // Carried values of the sizes their drafts define; anything else
        // (a malformed element) is not passed on.
        if let (Some(id), Some(cvo)) = (
            one_byte(ids.video_orientation),
            carried_value(RELAY_VIDEO_ORIENTATION_ID).filter(|v| v.len() == 1),
        ) {
            let _ = w.push(id, cvo);
        }
        if let (Some(id), Some(delay)) = (
            one_byte(ids.playout_delay),
            carried_value(RELAY_PLAYOUT_DELAY_ID).filter(|v| v.len() == 3),
        ) {
            let _ = w.push(id, delay);
        }
    }
    if let (Some(id), Some(mid)) = (one_byte(ids.mid), mid) {
        let _ = w.push_mid(id, mid);
    }
    if let (Some(id), Some(capture)) = (
        one_byte(ids.abs_capture_time),
        carried_value(RELAY_ABS_CAPTURE_TIME_ID).filter(|v| v.len() == 8 || v.len() == 16),
    ) {
        let _ = w.push(id, capture);
    }
    w.finish().unwrap_or(0)
}

impl Shard {
    /// Answers one sequence number of a NACK from the peer (media.md §5.4):
    /// the kept packet as RTX when negotiated, else resent as is; subject
    /// to the buffer's age limit and back-off.
    pub(crate) fn answer_nack(&mut self, now: Instant, key: SessionKey, seq: SeqNo) {
        let now_us = self.now_us(now);
        let Some(slot) = self.pool.take() else {
            self.counters.drop(DropReason::EgressPoolEmpty);
            return;
        };
        let buf = &mut self.pool.get_mut(slot)[..];
        let sent = slab_get(&mut self.slab, key).and_then(|s| {
            let to = s.remote?;
            let kept = s.feedback.resend.as_mut()?.resend(now_us, seq).ok()?;
            let view = RtpView::parse(kept).ok()?;
            let line = s.config.media.iter().find(|m| m.is_video() && m.send)?;
            let local_rtx = line.local_rtx_ssrc;
            let rtx_pt = line
                .rtx
                .iter()
                .find(|r| r.apt == view.pt().0)
                .map(|r| r.rtx_pt);
            let len = match (local_rtx, rtx_pt) {
                (Some(ssrc), Some(pt)) => {
                    let n = rtx::wrap(&view, Pt(pt), Ssrc(ssrc), SeqNo(s.feedback.rtx_seq), buf)
                        .ok()?;
                    s.feedback.rtx_seq = s.feedback.rtx_seq.wrapping_add(1);
                    n
                }
                _ => {
                    let n = kept.len();
                    buf.get_mut(..n)?.copy_from_slice(kept);
                    n
                }
            };
            let n = s.srtp_out.as_mut()?.protect_rtp(buf, len).ok()?;
            s.stats.retransmissions += 1;
            Some((n, to))
        });
        match sent {
            Some((n, to)) => {
                self.counters.retransmissions += 1;
                self.queue(slot, n, to);
            }
            None => self.pool.put(slot),
        }
    }

    /// The feedback timers of one started session: NACKs to the peer,
    /// transport-wide CC feedback, media-state events.
    pub(crate) fn feedback_timers(&mut self, now: Instant, key: SessionKey) {
        let now_us = self.now_us(now);
        self.send_nacks(now_us, key);
        self.send_twcc(now, key);
        self.media_state(now, key);
        self.check_slow_link(now, key);
    }

    fn check_slow_link(&mut self, now: Instant, key: SessionKey) {
        let threshold = self.slowlink_threshold;
        if threshold == 0 {
            return;
        }
        let Some(s) = self.session_mut(key) else {
            return;
        };
        let mut totals = [[None; 2]; 2];
        for video in [false, true] {
            let k = kind_index(video);
            if s.send_line(video).is_some() && s.outbound[k].packets > 0 {
                totals[0][k] = s.feedback.peer_lost[k].map(i64::from);
            }
            let inbound = &s.inbound[k];
            if s.recv_line(video).is_some() && inbound.received > 0 {
                let expected = inbound.highest.saturating_sub(inbound.base) + 1;
                let lost = expected.saturating_sub(inbound.received);
                totals[1][k] = Some(i64::try_from(lost).unwrap_or(i64::MAX));
            }
        }
        let session = s.id;
        let slow = s.feedback.slow_link(now, totals, threshold);
        for (dir, kinds) in slow.iter().enumerate() {
            for (k, lost) in kinds.iter().enumerate() {
                if let Some(lost) = *lost {
                    self.emit(MediaEvent::SlowLink {
                        session,
                        uplink: dir == 0,
                        video: k == kind_index(true),
                        lost,
                    });
                }
            }
        }
    }

    /// NACKs for the video stream, or for each simulcast layer (about that
    /// layer's SSRC).
    fn send_nacks(&mut self, now_us: u64, key: SessionKey) {
        for layer in 0..MAX_LAYERS as u8 {
            let mut lost = [SeqNo(0); NACK_BATCH];
            let Some(s) = self.session_mut(key) else {
                return;
            };
            let media = if s.layers.is_simulcast() {
                s.layers.ssrcs()[usize::from(layer)]
            } else if layer == 0 {
                s.inbound[kind_index(true)].ssrc
            } else {
                None
            };
            let Some(media) = media else {
                continue;
            };
            let sender = s.local_ssrc(true);
            let n = s.feedback.poll_nacks(now_us, layer, &mut lost);
            if n == 0 {
                continue;
            }
            let lost = &lost[..n];
            if self.send_rtcp(key, |_, out| {
                write_nack(out, Ssrc(sender), Ssrc(media), lost)
            }) == RtcpSent::Sent
            {
                self.counters.nacks_sent += 1;
            }
        }
    }

    fn send_twcc(&mut self, now: Instant, key: SessionKey) {
        let Some(s) = self.session_mut(key) else {
            return;
        };
        if !s.feedback.twcc_due(now) {
            return;
        }
        // About the first receiving video stream with a known peer SSRC
        // (media.md §5.5), else the audio stream.
        let Some(media) = s.inbound[kind_index(true)]
            .ssrc
            .or(s.inbound[kind_index(false)].ssrc)
        else {
            return;
        };
        let sender = Ssrc(s.local_ssrc(true));
        let mut used = 0;
        let sent = self.send_rtcp(key, |s, out| {
            let (len, n) = s.feedback.write_twcc(out, sender, Ssrc(media));
            used = n;
            Ok(len)
        }) == RtcpSent::Sent;
        if let Some(s) = self.session_mut(key) {
            s.feedback.twcc_consumed(used, sent);
        }
        if sent {
            self.counters.twcc_sent += 1;
        }
    }

    fn media_state(&mut self, now: Instant, key: SessionKey) {
        let Some(s) = self.session_mut(key) else {
            return;
        };
        let changes = s.feedback.media_transitions(now);
        let mut events = [None, None];
        for video in [false, true] {
            if let (Some(receiving), Some(line)) = (changes[kind_index(video)], s.recv_line(video))
            {
                events[kind_index(video)] = Some(MediaEvent::Receiving {
                    session: s.id,
                    mid_index: line.index,
                    video,
                    receiving,
                });
            }
        }
        for event in events.into_iter().flatten() {
            self.emit(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use jsfu_proto::rtcp::{RtcpRaw, TwccView};
    use jsfu_proto::rtp::ext::{ONE_BYTE_PROFILE, abs_send_time, parse_extensions};
    use jsfu_proto::rtp::write_with_extensions;
    use jsfu_route::{
        DtlsRole, Fingerprint, MediaDescription, Medium, PayloadType, PcConfig, PluginSessionId,
    };

    use super::*;

    fn config(nack: bool) -> PcConfig {
        let line = |index: u16, kind: Medium, pt: u8, clock_rate: u32| MediaDescription {
            index,
            mid: index.to_string(),
            kind,
            send: true,
            recv: true,
            payload_types: vec![PayloadType {
                pt,
                codec: "x".to_owned(),
                clock_rate,
            }],
            rtx: vec![],
            local_ssrc: 100 + u32::from(index),
            local_rtx_ssrc: None,
            remote_ssrcs: vec![],
            remote_rtx_ssrcs: vec![],
            rids: vec![],
            extensions: HeaderExtensionIds::default(),
            nack,
        };
        PcConfig {
            session: PluginSessionId(1),
            local_ufrag: "abcd".to_owned(),
            local_pwd: "p".repeat(22),
            remote_ufrag: "efgh".to_owned(),
            remote_pwd: "q".repeat(22),
            dtls_role: DtlsRole::Server,
            remote_fingerprint: Fingerprint {
                algorithm: "sha-256".to_owned(),
                value: String::new(),
            },
            media: vec![
                line(0, Medium::Audio, 111, 48_000),
                line(1, Medium::Video, 96, 90_000),
            ],
            data_channel: false,
            script_incoming_rtp: false,
            script_incoming_rtcp: false,
            script_incoming_text_data: false,
            script_incoming_binary_data: false,
        }
    }

    /// A 12-byte-header RTP packet with optional one-byte extensions.
    fn packet(seq: u16, ts: u32, ext: &[u8]) -> Vec<u8> {
        let mut plain = vec![0x80, 96];
        plain.extend_from_slice(&seq.to_be_bytes());
        plain.extend_from_slice(&ts.to_be_bytes());
        plain.extend_from_slice(&7u32.to_be_bytes());
        plain.extend_from_slice(&[1, 2, 3, 4]);
        let view = RtpView::parse(&plain).expect("valid RTP");
        let mut out = vec![0u8; 128];
        let n = write_with_extensions(&view, ext, &mut out).expect("fits");
        out.truncate(n);
        out
    }

    fn twcc_ext(id: u8, seq: u16) -> Vec<u8> {
        let mut buf = [0u8; 16];
        let mut w = ExtensionWriter::new(&mut buf, ExtForm::OneByte);
        w.push_transport_cc(id, SeqNo(seq)).expect("fits");
        let n = w.finish().expect("fits");
        buf[..n].to_vec()
    }

    #[test]
    fn missing_video_packet_is_nacked_and_useless_rtx_dropped() {
        let mut fb = Feedback::new(&config(true));
        let t0 = Instant::now();
        let ids = HeaderExtensionIds::default();
        for (i, seq) in [1u16, 2, 4].into_iter().enumerate() {
            let p = packet(seq, 3000 * u32::from(seq), &[]);
            let view = RtpView::parse(&p).expect("valid");
            let us = 1_000 * i as u64;
            assert!(fb.on_packet(t0, us, true, &view, false, 0, ids, 90_000));
        }
        let mut lost = [SeqNo(0); 8];
        // Not yet missing for 12 ms.
        assert_eq!(fb.poll_nacks(5_000, 0, &mut lost), 0);
        assert_eq!(fb.poll_nacks(20_000, 0, &mut lost), 1);
        assert_eq!(lost[0], SeqNo(3));
        // A retransmission of a packet already received is useless ...
        let dup = packet(2, 6000, &[]);
        let view = RtpView::parse(&dup).expect("valid");
        assert!(!fb.on_packet(t0, 21_000, true, &view, true, 0, ids, 90_000));
        // ... one of the NACKed packet is not.
        let fix = packet(3, 9000, &[]);
        let view = RtpView::parse(&fix).expect("valid");
        assert!(fb.on_packet(t0, 22_000, true, &view, true, 0, ids, 90_000));
        assert_eq!(
            fb.poll_nacks(200_000, 0, &mut lost),
            0,
            "recovered: no more NACKs"
        );
    }

    #[test]
    fn simulcast_layers_have_their_own_nacks() {
        let mut fb = Feedback::new(&config(true));
        let t0 = Instant::now();
        let ids = HeaderExtensionIds::default();
        // Layer 0 complete; layer 1 misses 12; layer 2 misses 40 and 41.
        for (layer, seqs) in [(0u8, &[1u16, 2, 3][..]), (1, &[10, 11, 13]), (2, &[39, 42])] {
            for seq in seqs {
                let p = packet(*seq, 0, &[]);
                let view = RtpView::parse(&p).expect("valid");
                assert!(fb.on_packet(t0, 1_000, true, &view, false, layer, ids, 90_000));
            }
        }
        let mut lost = [SeqNo(0); 8];
        assert_eq!(fb.poll_nacks(30_000, 0, &mut lost), 0);
        assert_eq!(fb.poll_nacks(30_000, 1, &mut lost), 1);
        assert_eq!(lost[0], SeqNo(12));
        assert_eq!(fb.poll_nacks(30_000, 2, &mut lost), 2);
        assert_eq!(&lost[..2], &[SeqNo(40), SeqNo(41)]);
        assert_eq!(fb.poll_nacks(30_000, 3, &mut lost), 0, "no such layer");
        // A layer-1 retransmission of what layer 1 already has is useless;
        // the missing one is not.
        let dup = packet(11, 0, &[]);
        let view = RtpView::parse(&dup).expect("valid");
        assert!(!fb.on_packet(t0, 31_000, true, &view, true, 1, ids, 90_000));
        let fix = packet(12, 0, &[]);
        let view = RtpView::parse(&fix).expect("valid");
        assert!(fb.on_packet(t0, 31_000, true, &view, true, 1, ids, 90_000));
        // Without negotiated NACKs no layer gets any.
        let mut plain = Feedback::new(&config(false));
        for seq in [1u16, 5] {
            let p = packet(seq, 0, &[]);
            let view = RtpView::parse(&p).expect("valid");
            plain.on_packet(t0, 0, true, &view, false, 1, ids, 90_000);
        }
        assert_eq!(plain.poll_nacks(1_000_000, 1, &mut lost), 0);
    }

    #[test]
    fn no_nack_generator_without_negotiation() {
        let mut fb = Feedback::new(&config(false));
        let t0 = Instant::now();
        let ids = HeaderExtensionIds::default();
        for seq in [1u16, 5] {
            let p = packet(seq, 0, &[]);
            let view = RtpView::parse(&p).expect("valid");
            assert!(fb.on_packet(t0, 0, true, &view, false, 0, ids, 90_000));
        }
        let mut lost = [SeqNo(0); 8];
        assert_eq!(fb.poll_nacks(1_000_000, 0, &mut lost), 0);
        assert!(fb.resend.is_none());
        fb.update(&config(true));
        assert!(fb.resend.is_some() && fb.rx[1].nack.is_some());
    }

    #[test]
    fn jitter_follows_arrival_spread() {
        let mut fb = Feedback::new(&config(false));
        let t0 = Instant::now();
        let ids = HeaderExtensionIds::default();
        // 20 ms of audio per packet, alternately 10 ms early and late.
        for i in 0..50u16 {
            let p = packet(i, 960 * u32::from(i), &[]);
            let view = RtpView::parse(&p).expect("valid");
            let us = 20_000 * u64::from(i) + if i % 2 == 0 { 0 } else { 10_000 };
            fb.on_packet(t0, us, false, &view, false, 0, ids, 48_000);
        }
        // |D| = 10 ms = 480 units each time: J converges towards 480.
        let j = fb.jitter(false);
        assert!((300..=480).contains(&j), "jitter {j}");
        assert_eq!(fb.jitter(true), 0);
    }

    #[test]
    fn twcc_feedback_reports_arrivals_and_gaps() {
        let mut fb = Feedback::new(&config(false));
        let t0 = Instant::now();
        let ids = HeaderExtensionIds {
            transport_cc: Some(5),
            ..HeaderExtensionIds::default()
        };
        for seq in [10u16, 11, 13] {
            let p = packet(seq, 0, &twcc_ext(5, seq));
            let view = RtpView::parse(&p).expect("valid");
            let us = 1_000_000 + 1_000 * u64::from(seq);
            // Simulcast layers other than 0 count for transport-cc too.
            fb.on_packet(t0, us, true, &view, false, u8::from(seq == 11), ids, 90_000);
        }
        assert!(fb.twcc_due(t0));
        assert!(!fb.twcc_due(t0 + Duration::from_millis(100)), "period");
        let mut out = [0u8; 256];
        let (len, used) = fb.write_twcc(&mut out, Ssrc(1), Ssrc(2));
        assert_eq!(used, 3);
        let raw = RtcpRaw::parse(&out[..len]).expect("framed");
        let view = TwccView::parse(raw).expect("transport-cc");
        assert_eq!(view.base_seq(), SeqNo(10));
        let received: Vec<(u16, bool)> = view
            .packets()
            .map(|p| (p.seq.0, p.arrival_us.is_some()))
            .collect();
        assert_eq!(
            received,
            vec![(10, true), (11, true), (12, false), (13, true)]
        );
        fb.twcc_consumed(used, true);
        assert_eq!(fb.twcc_pending(), 0);
        assert_eq!(fb.twcc_fb_count, 1);
        assert!(!fb.twcc_due(t0 + TWCC_PERIOD), "nothing pending");
    }

    #[test]
    fn media_state_starts_at_once_and_stops_after_a_silent_second() {
        let mut fb = Feedback::new(&config(false));
        let t0 = Instant::now();
        assert_eq!(fb.media_transitions(t0), [None, None]);
        fb.rx[1].last_packet = Some(t0);
        assert_eq!(fb.media_transitions(t0), [None, Some(true)]);
        assert_eq!(
            fb.media_transitions(t0 + Duration::from_millis(500)),
            [None, None]
        );
        // Silent for 1 s, DTLS up for 1 s: stopped.
        let t1 = t0 + Duration::from_millis(1_000);
        assert_eq!(fb.media_transitions(t1), [None, Some(false)]);
        // Back, then silent again: the stop waits for the next check.
        let t2 = t1 + Duration::from_millis(100);
        fb.rx[1].last_packet = Some(t2);
        assert_eq!(fb.media_transitions(t2), [None, Some(true)]);
        let t3 = t2 + Duration::from_millis(1_000);
        assert_eq!(fb.media_transitions(t3), [None, Some(false)]);
    }

    #[test]
    fn no_stop_report_in_the_first_second_of_dtls() {
        let mut fb = Feedback::new(&config(false));
        let t0 = Instant::now();
        fb.rx[0].last_packet = Some(t0);
        assert_eq!(fb.media_transitions(t0), [Some(true), None]);
        // Silent, but DTLS has been up less than a second at t0 + 0.99 s.
        fb.rx[0].last_packet = Some(t0 - Duration::from_secs(5));
        assert_eq!(
            fb.media_transitions(t0 + Duration::from_millis(990)),
            [None, None]
        );
        assert_eq!(
            fb.media_transitions(t0 + Duration::from_millis(1_000)),
            [Some(false), None]
        );
    }

    #[test]
    fn orientation_playout_delay_and_capture_time_are_forwarded() {
        // The publisher: orientation 13, playout delay 2, capture time 6,
        // and id 11 (a relay id) for something the relay does not forward.
        let source = HeaderExtensionIds {
            video_orientation: Some(13),
            playout_delay: Some(2),
            abs_capture_time: Some(6),
            ..HeaderExtensionIds::default()
        };
        let mut block = [0u8; 40];
        let mut w = ExtensionWriter::new(&mut block, ExtForm::OneByte);
        w.push(11, &[0xee; 8]).expect("fits");
        w.push(13, &[0x03]).expect("fits");
        w.push(2, &[0x00, 0x10, 0x20]).expect("fits");
        w.push(6, &[0x11; 8]).expect("fits");
        w.push(9, &[0x99]).expect("fits");
        let n = w.finish().expect("fits");
        let mut plain = packet(1, 0, &block[..n]);
        normalize_with(source, true, &mut plain);
        // The recipient negotiated its own ids for all three.
        let recipient = HeaderExtensionIds {
            mid: Some(1),
            video_orientation: Some(3),
            playout_delay: Some(4),
            abs_capture_time: Some(5),
            ..HeaderExtensionIds::default()
        };
        let mut fb = Feedback::new(&config(false));
        let view = RtpView::parse(&plain).expect("valid");
        let mut out = [0u8; 64];
        let n = write_extensions(
            &mut fb,
            recipient,
            true,
            Some(b"v"),
            Some(&view),
            0,
            &mut out,
        );
        let got: Vec<(u8, Vec<u8>)> = parse_extensions(ONE_BYTE_PROFILE, &out[4..n])
            .map(|e| (e.id, e.data.to_vec()))
            .collect();
        assert_eq!(
            got,
            vec![
                (3, vec![0x03]),
                (4, vec![0x00, 0x10, 0x20]),
                (1, b"v".to_vec()),
                (5, vec![0x11; 8]),
            ]
        );
        // A script's packet: its ids mean nothing to the relay.
        let n = write_extensions(&mut fb, recipient, true, Some(b"v"), None, 0, &mut out);
        let got: Vec<u8> = parse_extensions(ONE_BYTE_PROFILE, &out[4..n])
            .map(|e| e.id)
            .collect();
        assert_eq!(got, vec![1]);
        // A recipient that negotiated none of them gets none.
        let n = write_extensions(
            &mut fb,
            HeaderExtensionIds::default(),
            true,
            None,
            Some(&view),
            0,
            &mut out,
        );
        assert_eq!(n, 0);
        // Audio keeps its level and drops the video-only elements.
        let audio_source = HeaderExtensionIds {
            audio_level: Some(13),
            ..HeaderExtensionIds::default()
        };
        let mut w = ExtensionWriter::new(&mut block, ExtForm::OneByte);
        w.push(13, &[0x80 | 30]).expect("fits");
        w.push(12, &[0, 1, 2]).expect("fits");
        let n = w.finish().expect("fits");
        let mut plain = packet(2, 0, &block[..n]);
        normalize_with(audio_source, false, &mut plain);
        let view = RtpView::parse(&plain).expect("valid");
        let ids: Vec<u8> = view.extensions().map(|e| e.id).collect();
        assert_eq!(ids, vec![RELAY_AUDIO_LEVEL_ID]);
    }

    #[test]
    fn outgoing_extensions_are_rebuilt_for_the_recipient() {
        let mut fb = Feedback::new(&config(false));
        let ids = HeaderExtensionIds {
            mid: Some(4),
            abs_send_time: Some(3),
            transport_cc: Some(5),
            audio_level: Some(1),
            ..HeaderExtensionIds::default()
        };
        // Incoming video with a foreign element (id 9): dropped.
        let incoming = packet(1, 0, &[0xbe, 0xde, 0, 1, 0x90, 0xaa, 0, 0]);
        let view = RtpView::parse(&incoming).expect("valid");
        let mut out = [0u8; 40];
        for expected_seq in 0u16..2 {
            let n = write_extensions(
                &mut fb,
                ids,
                true,
                Some(b"1"),
                Some(&view),
                2_000_000,
                &mut out,
            );
            let got: Vec<(u8, Vec<u8>)> = parse_extensions(ONE_BYTE_PROFILE, &out[4..n])
                .map(|e| (e.id, e.data.to_vec()))
                .collect();
            let idents: Vec<u8> = got.iter().map(|(id, _)| *id).collect();
            assert_eq!(idents, vec![3, 5, 4]);
            assert_eq!(
                abs_send_time(&got[0].1),
                Some(abs_send_time_from(2_000_000))
            );
            assert_eq!(ext::transport_cc_seq(&got[1].1), Some(SeqNo(expected_seq)));
            assert_eq!(got[2].1, b"1");
        }
        // Audio: the level travels under RELAY_AUDIO_LEVEL_ID; renumbered.
        let level = [(RELAY_AUDIO_LEVEL_ID << 4), 0x80 | 42];
        let incoming = packet(1, 0, &[0xbe, 0xde, 0, 1, level[0], level[1], 0, 0]);
        let view = RtpView::parse(&incoming).expect("valid");
        let n = write_extensions(&mut fb, ids, false, None, Some(&view), 0, &mut out);
        let got: Vec<(u8, Vec<u8>)> = parse_extensions(ONE_BYTE_PROFILE, &out[4..n])
            .map(|e| (e.id, e.data.to_vec()))
            .collect();
        assert_eq!(got, vec![(1, vec![0x80 | 42])]);
        // Nothing negotiated: no extension block at all.
        let none = HeaderExtensionIds::default();
        assert_eq!(
            write_extensions(&mut fb, none, true, None, Some(&view), 0, &mut out),
            0
        );
    }

    #[test]
    fn slow_link_reports_increases_reaching_the_threshold() {
        let mut fb = Feedback::new(&config(false));
        let t0 = Instant::now();
        // Off: nothing, whatever the losses.
        assert_eq!(fb.slow_link(t0, [[Some(100); 2]; 2], 0), [[None; 2]; 2]);
        // Uplink video lost 12, downlink audio 3 (below 5).
        let totals = [[None, Some(12)], [Some(3), None]];
        assert_eq!(
            fb.slow_link(t0, totals, 5),
            [[None, Some(12)], [None, None]]
        );
        // Within the second: not checked again.
        let later = [[None, Some(40)], [Some(30), None]];
        let t_half = t0 + Duration::from_millis(500);
        assert_eq!(fb.slow_link(t_half, later, 5), [[None; 2]; 2]);
        // Next second: increases since the last check (28 and 27).
        let t1 = t0 + SLOWLINK_PERIOD;
        assert_eq!(
            fb.slow_link(t1, later, 5),
            [[None, Some(28)], [Some(27), None]]
        );
        // No new loss: quiet.
        let t2 = t1 + SLOWLINK_PERIOD;
        assert_eq!(fb.slow_link(t2, later, 5), [[None; 2]; 2]);
    }

    fn abs_send_time_from(us: u64) -> u32 {
        ext::abs_send_time_from_us(us)
    }
}
