//! Simulcast: which layer an incoming video packet belongs to (media.md §5.2
//! steps 1, 3 and 6, §7.2) and which layer each recipient gets (§7.3, §7.4,
//! §7.5), plus the fan-in of keyframe requests towards a sender.
//!
//! * [`LayerMap`] lives in the *source* session: it maps SSRCs to layers,
//!   from `a=ssrc-group:SIM` or by learning them from the rtp-stream-id and
//!   repaired-rtp-stream-id header extensions, and restores RTX packets to
//!   their layer's SSRC and sequence number.
//! * [`LayerTag`] is what the source's shard learned about one packet (layer,
//!   codec, parsed payload descriptor); it travels with the plaintext to the
//!   recipients, also across shards, so the payload is parsed once.
//! * [`LayerSelector`] lives in the *recipient* session: the per-recipient
//!   state machine of §7.3 (keyframe-gated switching, the 250 ms fallback,
//!   temporal-layer filtering) and the VP8 picture-id continuity of §7.5.
//!   It reads no clock (times are passed in) and never allocates, so it is
//!   also usable by recorders (§6.2 step 4, targets 2/2).
//!
//! AV1 temporal layers come from the dependency descriptor header extension
//! (AV1 RTP specification, appendix A): each layer's template structure
//! (sent with key frames) maps a packet's template id to a temporal id. A
//! frame start counts as a switching-up point (the descriptor's decode
//! target indications are not read). Without the extension, or before a
//! structure arrived, AV1 is relayed with every temporal layer.

use std::time::{Duration, Instant};

use jsfu_proto::rtp::codec::{self, PayloadInfo, VideoCodec};
use jsfu_proto::rtp::rewrite::Vp8Continuity;
use jsfu_proto::rtp::{Pt, RtpView, RtpViewMut, Ssrc};
use jsfu_proto::rtx;
use jsfu_route::{MediaDescription, MediaEvent, PcConfig, PluginSessionId, SimulcastTarget};

use crate::session::{Session, kind_index};
use crate::shard::Shard;
use crate::stats::DropReason;

/// Simulcast layers (0 = lowest quality).
pub(crate) const MAX_LAYERS: usize = 3;

/// How long a recipient may go without a relayed packet, while other layers
/// keep arriving, before its target is lowered by one (media.md §7.3 step 4).
pub(crate) const FALLBACK_AFTER_US: u64 = 250_000;

/// Keyframe requests for one sender arriving within this window produce one
/// PLI (on-demand fan-in); `sendPli` and `setPliFreq` are not throttled.
pub(crate) const PLI_FANIN_WINDOW: Duration = Duration::from_millis(200);

/// Longest rid kept (a one-byte extension carries at most 16 bytes, a
/// two-byte one 255).
const MAX_RID: usize = 255;

/// One source's SSRC → layer mapping (media.md §5.2, §7.2).
#[derive(Debug, Clone, Default)]
pub(crate) struct LayerMap {
    /// The source simulcasts (rids, or an SSRC group of two or more).
    simulcast: bool,
    ssrcs: [Option<u32>; MAX_LAYERS],
    rtx_ssrcs: [Option<u32>; MAX_LAYERS],
    /// rids by layer (lowest first), as bytes.
    rids: [Option<Box<[u8]>>; MAX_LAYERS],
    rid_ext: Option<u8>,
    repaired_rid_ext: Option<u8>,
    /// The codec of the receiving video m-line (media.md §7.6).
    codec: Option<VideoCodec>,
    /// The dependency descriptor extension id (AV1 temporal layers).
    dd_ext: Option<u8>,
    /// Each layer's last AV1 template structure.
    av1_templates: [Option<Av1Templates>; MAX_LAYERS],
}

/// The part of an AV1 template dependency structure the relay needs: the
/// temporal id of each template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Av1Templates {
    offset: u8,
    count: u8,
    temporal: [u8; 64],
}

/// What the dependency descriptor says about one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Av1Frame {
    start_of_frame: bool,
    end_of_frame: bool,
    template_id: u8,
}

/// A big-endian bit reader over a byte slice.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.at / 8)?;
            let bit = (byte >> (7 - self.at % 8)) & 1;
            v = (v << 1) | u32::from(bit);
            self.at += 1;
        }
        Some(v)
    }
}

/// Parses a dependency descriptor: the mandatory fields, and the template
/// temporal ids when it carries a template dependency structure.
pub(crate) fn parse_dependency_descriptor(dd: &[u8]) -> Option<(Av1Frame, Option<Av1Templates>)> {
    let mut b = Bits { data: dd, at: 0 };
    let frame = Av1Frame {
        start_of_frame: b.read(1)? == 1,
        end_of_frame: b.read(1)? == 1,
        // 6 bits.
        template_id: b.read(6)? as u8,
    };
    b.read(16)?;
    if dd.len() <= 3 || b.read(1)? == 0 {
        return Some((frame, None));
    }
    // active_decode_targets_present, custom_dtis, custom_fdiffs, custom_chains.
    b.read(4)?;
    let mut t = Av1Templates {
        // 6 bits.
        offset: b.read(6)? as u8,
        count: 0,
        temporal: [0; 64],
    };
    b.read(5)?;
    let mut temporal = 0u8;
    loop {
        let slot = t.temporal.get_mut(usize::from(t.count))?;
        *slot = temporal;
        t.count += 1;
        match b.read(2)? {
            1 => temporal = temporal.checked_add(1)?,
            2 => temporal = 0,
            3 => break,
            _ => {}
        }
    }
    Some((frame, Some(t)))
}

impl Av1Templates {
    /// The temporal id of a frame using `template_id`.
    fn temporal_id(&self, template_id: u8) -> Option<u8> {
        let index = (template_id + 64 - self.offset) % 64;
        (index < self.count).then(|| self.temporal[usize::from(index)])
    }
}

/// What [`LayerMap::ingest`] made of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ingested {
    /// The layer.
    pub(crate) layer: u8,
    /// The packet's length after RTX restoration.
    pub(crate) len: usize,
}

impl LayerMap {
    /// The mapping for the first receiving video m-line of `config`.
    pub(crate) fn from_config(config: &PcConfig) -> Self {
        config
            .media
            .iter()
            .find(|m| m.is_video() && m.recv)
            .map_or_else(Self::default, Self::from_line)
    }

    fn from_line(line: &MediaDescription) -> Self {
        let mut map = Self {
            codec: line
                .payload_types
                .first()
                .and_then(|p| VideoCodec::from_encoding_name(&p.codec)),
            rid_ext: line.extensions.rid,
            repaired_rid_ext: line.extensions.repaired_rid,
            dd_ext: line.extensions.dependency_descriptor,
            ..Self::default()
        };
        for (slot, rid) in map.rids.iter_mut().zip(&line.rids) {
            if !rid.is_empty() && rid.len() <= MAX_RID {
                *slot = Some(rid.as_bytes().into());
            }
        }
        let rid_based = map.rids[0].is_some();
        if rid_based {
            map.simulcast = true;
            if map.rid_ext.is_none() {
                // No rid extension: the one signalled SSRC is all we get.
                map.ssrcs[0] = line.remote_ssrcs.first().copied();
            }
        } else {
            map.simulcast = line.remote_ssrcs.len() >= 2;
            for (slot, ssrc) in map.ssrcs.iter_mut().zip(&line.remote_ssrcs) {
                *slot = Some(*ssrc);
            }
            for (slot, ssrc) in map.rtx_ssrcs.iter_mut().zip(&line.remote_rtx_ssrcs) {
                *slot = Some(*ssrc);
            }
        }
        map
    }

    /// Keeps what was learned when a renegotiation keeps the same rids and
    /// SSRCs; starts over otherwise.
    pub(crate) fn update(&mut self, config: &PcConfig) {
        let mut fresh = Self::from_config(config);
        if fresh.rids == self.rids {
            for layer in 0..MAX_LAYERS {
                fresh.ssrcs[layer] = fresh.ssrcs[layer].or(self.ssrcs[layer]);
                fresh.rtx_ssrcs[layer] = fresh.rtx_ssrcs[layer].or(self.rtx_ssrcs[layer]);
            }
        }
        *self = fresh;
    }

    /// Whether the source simulcasts.
    pub(crate) fn is_simulcast(&self) -> bool {
        self.simulcast
    }

    #[cfg(test)]
    /// The codec keyframes are detected with.
    pub(crate) fn codec(&self) -> Option<VideoCodec> {
        self.codec
    }

    /// The known media SSRCs, by layer (PLIs go to each of them, media.md §5.5).
    pub(crate) fn ssrcs(&self) -> [Option<u32>; MAX_LAYERS] {
        self.ssrcs
    }

    /// The layer of a media (or, with `rtx`, retransmission) SSRC.
    pub(crate) fn layer_of(&self, ssrc: u32, rtx: bool) -> Option<u8> {
        let table = if rtx { &self.rtx_ssrcs } else { &self.ssrcs };
        // MAX_LAYERS fits u8.
        table.iter().position(|s| *s == Some(ssrc)).map(|l| l as u8)
    }

    /// The layer a rid names.
    fn layer_of_rid(&self, rid: &[u8]) -> Option<u8> {
        self.rids
            .iter()
            .position(|r| r.as_deref() == Some(rid))
            .map(|l| l as u8)
    }

    /// Identifies the layer of a simulcast packet in `buf` (plaintext RTP),
    /// learning its SSRC from the rid extensions when needed, and restores an
    /// RTX packet in place (`rtx_apt`: the payload type it repairs).
    pub(crate) fn ingest(
        &mut self,
        buf: &mut [u8],
        rtx_apt: Option<u8>,
    ) -> Result<Ingested, DropReason> {
        let view = RtpView::parse(buf).map_err(|_| DropReason::RtpMalformed)?;
        let ssrc = view.ssrc().0;
        let is_rtx = rtx_apt.is_some();
        let layer = match self.layer_of(ssrc, is_rtx) {
            Some(layer) => layer,
            None => {
                let rid = if is_rtx {
                    self.repaired_rid_ext
                        .and_then(|id| view.extension(id))
                        .or_else(|| self.rid_ext.and_then(|id| view.extension(id)))
                } else {
                    self.rid_ext.and_then(|id| view.extension(id))
                };
                let layer = rid
                    .and_then(|r| self.layer_of_rid(r))
                    .ok_or(DropReason::SimulcastUnknownLayer)?;
                let table = if is_rtx {
                    &mut self.rtx_ssrcs
                } else {
                    &mut self.ssrcs
                };
                // A layer that shows up with a new SSRC restarted: follow it.
                table[usize::from(layer)] = Some(ssrc);
                layer
            }
        };
        let Some(apt) = rtx_apt else {
            return Ok(Ingested {
                layer,
                len: buf.len(),
            });
        };
        let original = self.ssrcs[usize::from(layer)].ok_or(DropReason::SimulcastUnknownLayer)?;
        let (len, _) = rtx::unwrap_in_place(buf, Pt(apt), Ssrc(original))
            .map_err(|_| DropReason::RtxFromPeer)?;
        if let (Some(from), Some(to)) = (self.repaired_rid_ext, self.rid_ext) {
            if let Ok(mut v) = RtpViewMut::parse(&mut buf[..len]) {
                // Only fails for an id the form cannot carry: keep the packet.
                let _ = v.set_extension_id(from, to);
            }
        }
        Ok(Ingested { layer, len })
    }

    /// The tag for a packet of `layer` (payload parsed once per packet).
    pub(crate) fn tag(&mut self, layer: u8, view: &RtpView<'_>) -> LayerTag {
        let mut info = self
            .codec
            .and_then(|c| codec::parse_payload(c, view.payload()).ok())
            .unwrap_or_default();
        if self.codec == Some(VideoCodec::Av1) {
            let dd = self
                .dd_ext
                .and_then(|id| view.extension(id))
                .and_then(parse_dependency_descriptor);
            if let Some((frame, structure)) = dd {
                let slot = &mut self.av1_templates[usize::from(layer) % MAX_LAYERS];
                if structure.is_some() {
                    *slot = structure;
                }
                info.temporal_id = slot.as_ref().and_then(|t| t.temporal_id(frame.template_id));
                info.start_of_frame = frame.start_of_frame;
                info.end_of_frame = frame.end_of_frame;
                info.switching_up = frame.start_of_frame;
            }
        }
        LayerTag {
            layer,
            codec: self.codec,
            info,
        }
    }
}

/// What the source's shard learned about one simulcast packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LayerTag {
    /// 0, 1 or 2.
    pub(crate) layer: u8,
    /// The sender's video codec (`None`: unknown, never a keyframe).
    pub(crate) codec: Option<VideoCodec>,
    /// The parsed payload descriptor (defaults when it did not parse).
    pub(crate) info: PayloadInfo,
}

/// What [`LayerSelector::process`] decided for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Selection {
    /// Relay the packet.
    pub(crate) relay: bool,
    /// The packet was of the current layer but filtered out by the temporal
    /// layer: the recipient's sequence base must move (media.md §6.3).
    pub(crate) temporal_drop: bool,
    /// Ask the sender for a keyframe.
    pub(crate) pli: bool,
    /// The substream changed: report it with this packet (§7.4).
    pub(crate) substream_changed: Option<u8>,
    /// The temporal layer changed: report it with this packet.
    pub(crate) temporal_changed: Option<u8>,
    /// Rewrite the VP8 picture id and TL0PICIDX (§7.5).
    pub(crate) vp8: bool,
}

/// A recipient's simulcast context (media.md §6.1, §7.3).
#[derive(Debug, Clone, Default)]
pub(crate) struct LayerSelector {
    /// Whose layers these are; another source starts over.
    source: Option<PluginSessionId>,
    /// The layer being relayed.
    current: Option<u8>,
    /// Temporary lower target after a layer stopped.
    fallback: Option<u8>,
    /// The temporal layer being relayed (`None`: not known yet).
    temporal: Option<u8>,
    /// When the last packet was relayed (µs, caller's clock).
    last_relayed_us: u64,
    /// Reports owed to the script, sent with the next relayed packet.
    pending_substream: bool,
    pending_temporal: bool,
    /// VP8 picture-id continuity (§7.5).
    pub(crate) vp8: Vp8Continuity,
}

impl LayerSelector {
    /// A context that relayed nothing yet.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    #[cfg(test)]
    /// The layer being relayed.
    pub(crate) fn current(&self) -> Option<u8> {
        self.current
    }

    #[cfg(test)]
    /// The temporal layer being relayed.
    pub(crate) fn temporal(&self) -> Option<u8> {
        self.temporal
    }

    /// Runs media.md §7.3 for one packet of `source` at `now_us`.
    pub(crate) fn process(
        &mut self,
        source: PluginSessionId,
        tag: &LayerTag,
        target: SimulcastTarget,
        now_us: u64,
    ) -> Selection {
        if self.source != Some(source) {
            let vp8 = self.vp8;
            *self = Self {
                source: Some(source),
                vp8,
                ..Self::default()
            };
        }
        let mut out = Selection::default();
        let layer = tag.layer;
        let target_layer = target.substream.min(MAX_LAYERS as u8 - 1);
        // 1. Cancel a fallback that is no longer needed.
        if let Some(f) = self.fallback {
            if layer > f || target_layer <= f {
                self.fallback = None;
            }
        }
        let effective = self.fallback.unwrap_or(target_layer);
        let keyframe = tag.codec.is_some() && tag.info.keyframe;
        match self.current {
            // 2. Start on a keyframe of any layer.
            None => {
                if !keyframe {
                    return out;
                }
                self.switch_to(layer, now_us);
            }
            // 3. Move towards the target on a keyframe.
            Some(current) if current != effective => {
                let towards = (effective > current && layer > current)
                    || (effective < current && layer < current);
                if towards && keyframe {
                    self.switch_to(layer, now_us);
                }
            }
            Some(_) => {}
        }
        // 4. A layer that stopped: lower the target by one, ask for a keyframe.
        if let Some(current) = self.current {
            if current > 0
                && layer != current
                && now_us.saturating_sub(self.last_relayed_us) >= FALLBACK_AFTER_US
            {
                self.last_relayed_us = now_us;
                let lowered = effective.min(current).saturating_sub(1);
                if self.fallback != Some(lowered) {
                    self.fallback = Some(lowered);
                    out.pli = true;
                }
            }
        }
        // 5. Only the current layer passes.
        if self.current != Some(layer) {
            return out;
        }
        // 6. Temporal layers.
        let temporal_target = target.temporal.min(2);
        if !self.temporal_passes(tag, temporal_target) {
            out.temporal_drop = true;
            return out;
        }
        // 7. Relay.
        self.last_relayed_us = now_us;
        out.relay = true;
        out.vp8 = tag.codec == Some(VideoCodec::Vp8);
        if self.pending_substream {
            self.pending_substream = false;
            out.substream_changed = Some(layer);
        }
        if self.pending_temporal {
            if let Some(t) = self.temporal {
                self.pending_temporal = false;
                out.temporal_changed = Some(t);
            }
        }
        out
    }

    fn switch_to(&mut self, layer: u8, now_us: u64) {
        if self.current != Some(layer) {
            self.current = Some(layer);
            self.pending_substream = true;
        }
        self.last_relayed_us = now_us;
    }

    fn set_temporal(&mut self, t: u8) {
        if self.temporal != Some(t) {
            self.temporal = Some(t);
            self.pending_temporal = true;
        }
    }

    /// Step 6 of §7.3: updates the temporal layer and says whether the
    /// packet passes.
    fn temporal_passes(&mut self, tag: &LayerTag, target: u8) -> bool {
        let Some(tid) = tag.info.temporal_id else {
            return true;
        };
        match tag.codec {
            Some(VideoCodec::Vp8) => {
                if tid == target && self.temporal != Some(tid) {
                    self.set_temporal(tid);
                }
                self.temporal.is_none_or(|t| tid <= t)
            }
            Some(VideoCodec::Vp9 | VideoCodec::Av1) => {
                let info = &tag.info;
                match self.temporal {
                    None => {
                        // Start with the first frame at or below the target.
                        if info.start_of_frame && tid <= target {
                            self.set_temporal(tid);
                        }
                    }
                    Some(current) if current < target => {
                        if info.start_of_frame
                            && info.switching_up
                            && tid > current
                            && tid <= target
                        {
                            self.set_temporal(tid);
                        }
                    }
                    Some(current) if current > target => {
                        if info.end_of_frame && tid == target {
                            // The frame that ends here is still relayed whole.
                            let passes = tid <= current;
                            self.set_temporal(tid);
                            return passes;
                        }
                    }
                    Some(_) => {}
                }
                self.temporal.is_some_and(|t| tid <= t)
            }
            // H.264, H.265: no temporal filtering.
            _ => true,
        }
    }
}

/// Fan-in of on-demand keyframe requests: the last request this shard passed
/// on for each sender.
#[derive(Debug, Default)]
pub(crate) struct PliFanIn {
    last: std::collections::HashMap<PluginSessionId, Instant>,
}

impl PliFanIn {
    /// Whether a request for `sender` at `now` should produce a PLI.
    pub(crate) fn admit(&mut self, sender: PluginSessionId, now: Instant) -> bool {
        match self.last.get(&sender) {
            Some(&t) if now.saturating_duration_since(t) < PLI_FANIN_WINDOW => false,
            _ => {
                if self.last.len() >= 4096 {
                    self.last
                        .retain(|_, t| now.saturating_duration_since(*t) < PLI_FANIN_WINDOW);
                }
                self.last.insert(sender, now);
                true
            }
        }
    }
}

/// The payload type an RTX payload type of the receiving video m-line repairs.
pub(crate) fn rtx_apt(s: &Session, pt: u8) -> Option<u8> {
    s.recv_line(true)
        .and_then(|m| m.rtx.iter().find(|r| r.rtx_pt == pt))
        .map(|r| r.apt)
}

impl Shard {
    /// A keyframe request for `sender` on behalf of a recipient (forwarded
    /// PLI, simulcast switch or fallback): at most one PLI per
    /// [`PLI_FANIN_WINDOW`] from this shard.
    pub(crate) fn request_keyframe(&mut self, now: Instant, sender: PluginSessionId) {
        if self.pli_fanin.admit(sender, now) {
            self.request_pli(now, sender);
        }
    }

    /// Runs the recipient's simulcast context for one packet of `source`
    /// (media.md §6.2 step 5): `None` drops the packet, `Some(vp8)` relays it
    /// (rewriting the VP8 descriptor when `vp8`). Callbacks and keyframe
    /// requests are issued here.
    pub(crate) fn select_layer(
        &mut self,
        now: Instant,
        source: PluginSessionId,
        recipient: PluginSessionId,
        tag: &LayerTag,
    ) -> Option<bool> {
        let target = self
            .routes
            .get(&recipient)
            .map_or_else(SimulcastTarget::default, |r| r.simulcast_target);
        let now_us = self.now_us(now);
        let &key = self.by_id.get(&recipient)?;
        let s = self.session_mut(key)?;
        // A recipient that is not started is skipped before its context runs.
        if !s.started || s.remote.is_none() {
            self.counters.drop(DropReason::RecipientNotReady);
            return None;
        }
        let selection = s.layers_rx.process(source, tag, target, now_us);
        if selection.temporal_drop {
            s.outbound[kind_index(true)].switching.skip_packet();
        }
        if selection.pli {
            self.request_keyframe(now, source);
        }
        if let Some(substream) = selection.substream_changed {
            self.emit(MediaEvent::SubstreamChanged {
                session: recipient,
                substream,
            });
            // A new layer needs a keyframe to be decodable further on.
        }
        if let Some(layer) = selection.temporal_changed {
            self.emit(MediaEvent::TemporalLayerChanged {
                session: recipient,
                layer,
            });
        }
        if !selection.relay {
            self.counters.drop(DropReason::SimulcastNotSelected);
            return None;
        }
        Some(selection.vp8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsfu_proto::rtp::SeqNo;
    use jsfu_proto::rtp::rewrite::SwitchingContext;
    use jsfu_route::{HeaderExtensionIds, Medium, PayloadType};

    const SRC: PluginSessionId = PluginSessionId(7);

    /// A VP8 payload: descriptor with 15-bit picture id, TL0PICIDX and TID,
    /// then a 10-byte VP8 payload header (keyframe or not).
    fn vp8_payload(pid: u16, tl0: u8, tid: u8, keyframe: bool) -> Vec<u8> {
        let mut p = vec![
            0x90,
            0xe0,
            0x80 | (pid >> 8) as u8,
            pid as u8,
            tl0,
            tid << 6,
        ];
        if keyframe {
            p.extend_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01]);
        } else {
            p.extend_from_slice(&[0x11, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
        }
        p
    }

    fn tag(layer: u8, payload: &[u8]) -> LayerTag {
        LayerTag {
            layer,
            codec: Some(VideoCodec::Vp8),
            info: codec::parse_payload(VideoCodec::Vp8, payload).expect("valid VP8"),
        }
    }

    fn target(substream: u8, temporal: u8) -> SimulcastTarget {
        SimulcastTarget {
            substream,
            temporal,
        }
    }

    /// A synthetic three-layer VP8 sender: per layer SSRC, sequence number,
    /// timestamp, picture id, TL0PICIDX; temporal pattern 0,2,1,2.
    struct Sender {
        seq: [u16; 3],
        ts: [u32; 3],
        pid: [u16; 3],
        tl0: [u8; 3],
        frame: u32,
    }

    impl Sender {
        fn new() -> Self {
            Self {
                seq: [100, 20_000, 65_500],
                ts: [1000, 500_000, 4_294_000_000],
                pid: [5, 3000, 32_760],
                tl0: [0, 100, 250],
                frame: 0,
            }
        }

        /// One frame (one packet) per layer; `key` marks keyframes.
        fn frame(&mut self, key: bool) -> Vec<(u8, u32, u16, u32, Vec<u8>)> {
            let tid = [0u8, 2, 1, 2][(self.frame % 4) as usize];
            self.frame += 1;
            let mut out = Vec::new();
            for l in 0..3 {
                if tid == 0 {
                    self.tl0[l] = self.tl0[l].wrapping_add(1);
                }
                self.pid[l] = (self.pid[l] + 1) & 0x7fff;
                self.seq[l] = self.seq[l].wrapping_add(1);
                self.ts[l] = self.ts[l].wrapping_add(3000);
                let tid = if key { 0 } else { tid };
                out.push((
                    l as u8,
                    1000 + l as u32,
                    self.seq[l],
                    self.ts[l],
                    vp8_payload(self.pid[l], self.tl0[l], tid, key),
                ));
            }
            out
        }
    }

    /// What a recipient saw: (layer, seq, ts, pid, tl0).
    type Seen = Vec<(u8, u16, u32, u16, u8)>;

    struct Recipient {
        sel: LayerSelector,
        sw: SwitchingContext,
        seen: Seen,
        plis: u32,
        substreams: Vec<u8>,
        temporals: Vec<u8>,
    }

    impl Recipient {
        fn new() -> Self {
            Self {
                sel: LayerSelector::new(),
                sw: SwitchingContext::new(),
                seen: Vec::new(),
                plis: 0,
                substreams: Vec::new(),
                temporals: Vec::new(),
            }
        }

        fn feed(&mut self, pkt: &(u8, u32, u16, u32, Vec<u8>), t: SimulcastTarget, now_us: u64) {
            let (layer, ssrc, seq, ts, payload) = pkt;
            let mut payload = payload.clone();
            let sel = self.sel.process(SRC, &tag(*layer, &payload), t, now_us);
            if sel.pli {
                self.plis += 1;
            }
            self.substreams.extend(sel.substream_changed);
            self.temporals.extend(sel.temporal_changed);
            if sel.temporal_drop {
                self.sw.skip_packet();
            }
            if !sel.relay {
                return;
            }
            let r = self
                .sw
                .rewrite(Ssrc(*ssrc), SeqNo(*seq), *ts, now_us, 90_000);
            assert!(sel.vp8);
            self.sel
                .vp8
                .rewrite(&mut payload, r.switched)
                .expect("valid");
            let d = codec::Vp8Descriptor::parse(&payload).expect("valid");
            self.seen.push((
                *layer,
                r.seq.0,
                r.timestamp,
                d.picture_id.expect("pid"),
                d.tl0picidx.expect("tl0"),
            ));
        }
    }

    /// Sequence numbers +1, timestamps forward, TL0PICIDX +0/+1, picture
    /// ids +1 (`strict_pid`) or forward (frames filtered out leave gaps).
    fn assert_continuous_with(seen: &Seen, strict_pid: bool) {
        for w in seen.windows(2) {
            let (a, b) = (w[0], w[1]);
            assert_eq!(b.1, a.1.wrapping_add(1), "sequence gap: {a:?} → {b:?}");
            let dts = b.2.wrapping_sub(a.2);
            assert!(dts > 0 && dts < 90_000, "timestamp jump: {a:?} → {b:?}");
            let dpid = b.3.wrapping_sub(a.3) & 0x7fff;
            if strict_pid {
                assert_eq!(dpid, 1, "picture id gap: {a:?} → {b:?}");
            } else {
                assert!((1..8).contains(&dpid), "picture id jump: {a:?} → {b:?}");
            }
            let dtl0 = b.4.wrapping_sub(a.4);
            assert!(dtl0 <= 1, "TL0PICIDX jump: {a:?} → {b:?}");
        }
    }

    fn assert_continuous(seen: &Seen) {
        assert_continuous_with(seen, true);
    }

    #[test]
    fn starts_on_a_keyframe_and_switches_only_on_keyframes() {
        let mut s = Sender::new();
        let mut r = Recipient::new();
        let mut now = 0u64;
        // Delta frames first: nothing relayed.
        for _ in 0..3 {
            for p in s.frame(false) {
                r.feed(&p, target(2, 2), now);
            }
            now += 33_000;
        }
        assert!(r.seen.is_empty());
        assert_eq!(r.sel.current(), None);
        // A keyframe on every layer: the first one seen (layer 0) starts it,
        // the next ones (1, then 2) move up to the target.
        for p in s.frame(true) {
            r.feed(&p, target(2, 2), now);
        }
        assert_eq!(r.sel.current(), Some(2));
        assert_eq!(r.substreams, vec![0, 1, 2]);
        for _ in 0..8 {
            now += 33_000;
            for p in s.frame(false) {
                r.feed(&p, target(2, 2), now);
            }
        }
        assert!(r.seen.iter().skip(3).all(|x| x.0 == 2));
        // Target 0: no switch until a keyframe.
        for _ in 0..5 {
            now += 33_000;
            for p in s.frame(false) {
                r.feed(&p, target(0, 2), now);
            }
        }
        assert_eq!(r.sel.current(), Some(2));
        now += 33_000;
        for p in s.frame(true) {
            r.feed(&p, target(0, 2), now);
        }
        assert_eq!(r.sel.current(), Some(0));
        assert_eq!(r.substreams, vec![0, 1, 2, 0]);
        for _ in 0..5 {
            now += 33_000;
            for p in s.frame(false) {
                r.feed(&p, target(0, 2), now);
            }
        }
        assert_eq!(r.seen.last().map(|x| x.0), Some(0));
        assert_continuous(&r.seen);
        assert_eq!(r.plis, 0);
    }

    #[test]
    fn falls_back_after_250_ms_with_a_pli_and_returns() {
        let mut s = Sender::new();
        let mut r = Recipient::new();
        let mut now = 0u64;
        for p in s.frame(true) {
            r.feed(&p, target(2, 2), now);
        }
        assert_eq!(r.sel.current(), Some(2));
        // Layer 2 stops; layers 0 and 1 go on (delta frames).
        let mut fell_back_at = None;
        for i in 0..12 {
            now += 33_000;
            let frame = s.frame(false);
            for p in frame.iter().filter(|p| p.0 != 2) {
                r.feed(p, target(2, 2), now);
            }
            if r.plis > 0 && fell_back_at.is_none() {
                fell_back_at = Some(i);
            }
        }
        assert_eq!(r.plis, 1, "one PLI for the fallback");
        let at = fell_back_at.expect("fallback");
        assert!(
            (7..=8).contains(&at),
            "fallback after 250 ms, at frame {at}"
        );
        // Still on 2 until a keyframe of layer 1 arrives.
        assert_eq!(r.sel.current(), Some(2));
        now += 33_000;
        let frame = s.frame(true);
        for p in frame.iter().filter(|p| p.0 != 2) {
            r.feed(p, target(2, 2), now);
        }
        assert_eq!(r.sel.current(), Some(1));
        for _ in 0..5 {
            now += 33_000;
            for p in s.frame(false).iter().filter(|p| p.0 != 2) {
                r.feed(p, target(2, 2), now);
            }
        }
        assert_eq!(r.seen.last().map(|x| x.0), Some(1));
        // Layer 2 resumes with a keyframe: back to 2.
        now += 33_000;
        for p in s.frame(true) {
            r.feed(&p, target(2, 2), now);
        }
        assert_eq!(r.sel.current(), Some(2));
        // The keyframes of one frame come lowest layer first: the layer-0
        // one overshoots the fallback target (1), the layer-1 one corrects
        // it, the layer-2 one goes back to the real target (§7.3 step 3).
        assert_eq!(r.substreams, vec![0, 1, 2, 0, 1, 2]);
        assert_continuous(&r.seen);
    }

    #[test]
    fn fallback_goes_down_one_layer_at_a_time_and_not_below_zero() {
        let mut s = Sender::new();
        let mut r = Recipient::new();
        let mut now = 0u64;
        for p in s.frame(true) {
            r.feed(&p, target(2, 2), now);
        }
        // Layers 1 and 2 stop.
        for _ in 0..30 {
            now += 33_000;
            for p in s.frame(false).iter().filter(|p| p.0 == 0) {
                r.feed(p, target(2, 2), now);
            }
        }
        assert_eq!(r.plis, 2, "2 → 1, then 1 → 0");
        now += 33_000;
        for p in s.frame(true).iter().filter(|p| p.0 == 0) {
            r.feed(p, target(2, 2), now);
        }
        assert_eq!(r.sel.current(), Some(0));
        for _ in 0..30 {
            now += 33_000;
            for p in s.frame(false).iter().filter(|p| p.0 == 0) {
                r.feed(p, target(2, 2), now);
            }
        }
        assert_eq!(r.plis, 2, "layer 0 never falls back");
    }

    #[test]
    fn vp8_temporal_filtering_keeps_sequence_continuous() {
        let mut s = Sender::new();
        let mut r = Recipient::new();
        let mut now = 0u64;
        for p in s.frame(true) {
            r.feed(&p, target(0, 0), now);
        }
        assert_eq!(r.sel.current(), Some(0));
        assert_eq!(r.sel.temporal(), Some(0));
        for _ in 0..12 {
            now += 33_000;
            for p in s.frame(false) {
                r.feed(&p, target(0, 0), now);
            }
        }
        // Pattern 0,2,1,2 after the keyframe: only tid 0 frames pass.
        let after_key = r.seen.len() - 1;
        assert_eq!(after_key, 3, "{:?}", r.seen);
        assert_continuous_with(&r.seen, false);
        assert_eq!(r.temporals, vec![0]);
        // Temporal target 2: switches when a tid 2 packet arrives.
        for _ in 0..8 {
            now += 33_000;
            for p in s.frame(false) {
                r.feed(&p, target(0, 2), now);
            }
        }
        assert_eq!(r.sel.temporal(), Some(2));
        assert_eq!(r.temporals, vec![0, 2]);
        assert_continuous_with(&r.seen, false);
        // Back down to 1: tid 2 frames dropped from then on.
        let before = r.seen.len();
        for _ in 0..8 {
            now += 33_000;
            for p in s.frame(false) {
                r.feed(&p, target(0, 1), now);
            }
        }
        assert_eq!(r.sel.temporal(), Some(1));
        // Until the first tid 1 frame, tid 2 frames still pass.
        let passed = r.seen.len() - before;
        assert!(
            (4..=5).contains(&passed),
            "tid 0 and 1 of 8 frames: {passed}"
        );
        assert_continuous_with(&r.seen, false);
    }

    #[test]
    fn picture_id_and_tl0_continue_across_switches() {
        let mut s = Sender::new();
        let mut r = Recipient::new();
        let mut now = 0;
        for round in 0..6u32 {
            let t = target([0, 2, 1][(round % 3) as usize], 2);
            for p in s.frame(true) {
                r.feed(&p, t, now);
            }
            for _ in 0..6 {
                now += 33_000;
                for p in s.frame(false) {
                    r.feed(&p, t, now);
                }
            }
        }
        let layers: Vec<u8> = r.seen.iter().map(|x| x.0).collect();
        assert!(layers.contains(&0) && layers.contains(&1) && layers.contains(&2));
        assert_continuous(&r.seen);
    }

    #[test]
    fn vp9_temporal_switches_at_switching_points() {
        // VP9 descriptor: I=0 P B E L=1 flags, then TID/U/SID/D, TL0PICIDX.
        fn vp9(tid: u8, u: bool, start: bool, end: bool, key: bool) -> LayerTag {
            let b0 = 0x20
                | if key { 0 } else { 0x40 }
                | if start { 0x08 } else { 0 }
                | if end { 0x04 } else { 0 };
            let l = (tid << 5) | if u { 0x10 } else { 0 };
            let p = [b0, l, 0, 0];
            LayerTag {
                layer: 0,
                codec: Some(VideoCodec::Vp9),
                info: codec::parse_payload(VideoCodec::Vp9, &p).expect("valid VP9"),
            }
        }
        let mut sel = LayerSelector::new();
        let t = target(0, 1);
        assert!(
            sel.process(SRC, &vp9(0, false, true, true, true), t, 0)
                .relay
        );
        assert_eq!(sel.temporal(), Some(0));
        // tid 1 without the switching-up bit: dropped.
        let s = sel.process(SRC, &vp9(1, false, true, true, false), t, 1);
        assert!(!s.relay && s.temporal_drop);
        // tid 1 with U at a frame start: switch up.
        let s = sel.process(SRC, &vp9(1, true, true, false, false), t, 2);
        assert!(s.relay);
        assert_eq!(s.temporal_changed, Some(1));
        // tid 2 stays above the target.
        assert!(
            !sel.process(SRC, &vp9(2, true, true, true, false), t, 3)
                .relay
        );
        // Down to 0 at the end of a tid 0 frame.
        let t0 = target(0, 0);
        assert!(
            sel.process(SRC, &vp9(1, false, true, true, false), t0, 4)
                .relay
        );
        assert!(
            sel.process(SRC, &vp9(0, false, false, true, false), t0, 5)
                .relay
        );
        assert_eq!(sel.temporal(), Some(0));
        assert!(
            !sel.process(SRC, &vp9(1, true, true, true, false), t0, 6)
                .relay
        );
    }

    #[test]
    fn h264_switches_on_sps_only() {
        let sps = LayerTag {
            layer: 1,
            codec: Some(VideoCodec::H264),
            info: codec::parse_payload(VideoCodec::H264, &[0x67, 0x42, 0x00, 0x1f]).expect("valid"),
        };
        let delta = LayerTag {
            layer: 1,
            codec: Some(VideoCodec::H264),
            info: codec::parse_payload(VideoCodec::H264, &[0x41, 0x9a]).expect("valid"),
        };
        let mut sel = LayerSelector::new();
        assert!(!sel.process(SRC, &delta, target(2, 2), 0).relay);
        let s = sel.process(SRC, &sps, target(2, 2), 1);
        assert!(s.relay && !s.vp8);
        assert_eq!(s.substream_changed, Some(1));
        assert!(sel.process(SRC, &delta, target(2, 2), 2).relay);
    }

    #[test]
    fn unknown_codec_never_starts() {
        let mut sel = LayerSelector::new();
        let mut t = tag(0, &vp8_payload(1, 1, 0, true));
        t.codec = None;
        assert!(!sel.process(SRC, &t, target(2, 2), 0).relay);
        assert_eq!(sel.current(), None);
    }

    fn line(rids: &[&str], ssrcs: &[u32], rtx: &[u32]) -> PcConfig {
        PcConfig {
            session: SRC,
            local_ufrag: "abcd".into(),
            local_pwd: "0123456789012345678901".into(),
            remote_ufrag: "efgh".into(),
            remote_pwd: "0123456789012345678901".into(),
            dtls_role: jsfu_route::DtlsRole::Server,
            remote_fingerprint: jsfu_route::Fingerprint {
                algorithm: "sha-256".into(),
                value: "00".into(),
            },
            media: vec![MediaDescription {
                index: 0,
                mid: "0".into(),
                kind: Medium::Video,
                send: true,
                recv: true,
                payload_types: vec![PayloadType {
                    pt: 96,
                    codec: "vp8".into(),
                    clock_rate: 90_000,
                }],
                rtx: vec![jsfu_route::RtxMapping {
                    rtx_pt: 97,
                    apt: 96,
                }],
                local_ssrc: 1,
                local_rtx_ssrc: None,
                remote_ssrcs: ssrcs.to_vec(),
                remote_rtx_ssrcs: rtx.to_vec(),
                rids: rids.iter().map(|r| (*r).to_owned()).collect(),
                extensions: HeaderExtensionIds {
                    rid: Some(10),
                    repaired_rid: Some(11),
                    ..HeaderExtensionIds::default()
                },
                nack: true,
            }],
            data_channel: false,
            script_incoming_rtp: false,
            script_incoming_rtcp: false,
            script_incoming_text_data: false,
            script_incoming_binary_data: false,
        }
    }

    /// An RTP packet with a one-byte extension `id` = `value`.
    fn rtp(pt: u8, seq: u16, ssrc: u32, ext: Option<(u8, &[u8])>, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, pt, (seq >> 8) as u8, seq as u8, 0, 0, 0, 9];
        p.extend_from_slice(&ssrc.to_be_bytes());
        if let Some((id, v)) = ext {
            p[0] |= 0x10;
            let mut e = vec![(id << 4) | (v.len() as u8 - 1)];
            e.extend_from_slice(v);
            while e.len() % 4 != 0 {
                e.push(0);
            }
            p.extend_from_slice(&[0xbe, 0xde, 0, (e.len() / 4) as u8]);
            p.extend_from_slice(&e);
        }
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn rid_layers_are_learned_and_rtx_restored() {
        let mut map = LayerMap::from_config(&line(&["q", "h", "f"], &[], &[]));
        assert!(map.is_simulcast());
        assert_eq!(map.codec(), Some(VideoCodec::Vp8));
        // Unknown SSRC without a rid: dropped.
        let mut p = rtp(96, 1, 0xaaaa, None, &[1, 2, 3]);
        assert_eq!(
            map.ingest(&mut p, None),
            Err(DropReason::SimulcastUnknownLayer)
        );
        let mut p = rtp(96, 1, 0xaaaa, Some((10, b"h")), &[1, 2, 3]);
        assert_eq!(
            map.ingest(&mut p, None),
            Ok(Ingested {
                layer: 1,
                len: p.len()
            })
        );
        // Learned: no rid needed any more.
        let mut p = rtp(96, 2, 0xaaaa, None, &[1, 2, 3]);
        assert_eq!(map.ingest(&mut p, None).map(|i| i.layer), Ok(1));
        assert_eq!(map.ssrcs(), [None, Some(0xaaaa), None]);
        // RTX of layer 1, named by repaired-rid: restored to SSRC 0xaaaa, seq 0x0102.
        let mut p = rtp(97, 77, 0xbbbb, Some((11, b"h")), &[0x01, 0x02, 9, 9]);
        let got = map.ingest(&mut p, Some(96)).expect("restored");
        assert_eq!(got.layer, 1);
        let v = RtpView::parse(&p[..got.len]).expect("valid");
        assert_eq!((v.pt().0, v.seq().0, v.ssrc().0), (96, 0x0102, 0xaaaa));
        assert_eq!(v.payload(), &[9, 9]);
        assert_eq!(v.extension(10), Some(&b"h"[..]));
        // RTX of a layer whose media SSRC is unknown: dropped.
        let mut p = rtp(97, 78, 0xcccc, Some((11, b"f")), &[0x01, 0x02, 9]);
        assert_eq!(
            map.ingest(&mut p, Some(96)),
            Err(DropReason::SimulcastUnknownLayer)
        );
        // A renegotiation with the same rids keeps what was learned.
        map.update(&line(&["q", "h", "f"], &[], &[]));
        assert_eq!(map.ssrcs(), [None, Some(0xaaaa), None]);
    }

    #[test]
    fn ssrc_group_layers() {
        let mut map = LayerMap::from_config(&line(&[], &[11, 22, 33], &[44, 55, 66]));
        assert!(map.is_simulcast());
        let mut p = rtp(96, 1, 33, None, &[1]);
        assert_eq!(map.ingest(&mut p, None).map(|i| i.layer), Ok(2));
        let mut p = rtp(97, 1, 44, None, &[0, 5, 1]);
        let got = map.ingest(&mut p, Some(96)).expect("restored");
        assert_eq!(got.layer, 0);
        assert_eq!(RtpView::parse(&p[..got.len]).expect("valid").ssrc().0, 11);
        let mut p = rtp(96, 1, 99, None, &[1]);
        assert!(map.ingest(&mut p, None).is_err());
        assert!(!LayerMap::from_config(&line(&[], &[11], &[])).is_simulcast());
    }

    /// Bytes from a string of `0`/`1` (spaces ignored), zero-padded.
    fn bits(text: &str) -> Vec<u8> {
        let bits: Vec<u8> = text
            .bytes()
            .filter(|b| *b != b' ')
            .map(|b| b - b'0')
            .collect();
        let mut out = vec![0u8; bits.len().div_ceil(8) + 2];
        for (i, bit) in bits.iter().enumerate() {
            out[i / 8] |= bit << (7 - i % 8);
        }
        out
    }

    #[test]
    fn av1_temporal_layers_from_the_dependency_descriptor() {
        // Mandatory fields: start, end, template id (6 bits), frame number.
        let dd = |template: u8| bits(&format!("1 1 {template:06b} {:016b}", 7))[..3].to_vec();
        // With a structure: present=1, 4 flags 0, offset 0, dt_cnt-1 = 2,
        // template layers: next_layer_idc 1, 1, 3 (temporal ids 0, 1, 2).
        let key_dd = bits(&format!(
            "1 1 000000 {:016b} 1 0000 000000 00010 01 01 11",
            7
        ));
        let (frame, structure) = parse_dependency_descriptor(&key_dd).expect("valid");
        assert!(frame.start_of_frame && frame.end_of_frame);
        let structure = structure.expect("structure");
        assert_eq!(
            (structure.count, &structure.temporal[..3]),
            (3, &[0, 1, 2][..])
        );
        assert!(parse_dependency_descriptor(&[0xc0]).is_none());

        let mut config = line(&[], &[11, 22, 33], &[]);
        config.media[0].payload_types[0].codec = "AV1".into();
        config.media[0].extensions.dependency_descriptor = Some(12);
        let mut map = LayerMap::from_config(&config);
        let mut sel = LayerSelector::new();
        let t = target(1, 0);
        let mut feed = |ext: &[u8], payload: &[u8], now: u64| {
            let p = rtp(45, 1, 22, Some((12, ext)), payload);
            let view = RtpView::parse(&p).expect("valid");
            let tag = map.tag(1, &view);
            (tag.info.temporal_id, sel.process(SRC, &tag, t, now))
        };
        // A key frame (N bit) with the structure: starts on temporal 0.
        let (tid, s) = feed(&key_dd, &[0x08, 0x0a, 0x00], 0);
        assert_eq!(tid, Some(0));
        assert!(s.relay);
        assert_eq!(
            (s.substream_changed, s.temporal_changed),
            (Some(1), Some(0))
        );
        let (tid, s) = feed(&dd(1), &[0x10, 0x32], 1);
        assert_eq!(tid, Some(1));
        assert!(!s.relay && s.temporal_drop);
        let (tid, s) = feed(&dd(2), &[0x10, 0x32], 2);
        assert_eq!(tid, Some(2));
        assert!(!s.relay);
        let (tid, s) = feed(&dd(0), &[0x10, 0x32], 3);
        assert_eq!(tid, Some(0));
        assert!(s.relay);
    }

    #[test]
    fn pli_fan_in() {
        let mut f = PliFanIn::default();
        let t = Instant::now();
        assert!(f.admit(SRC, t));
        for i in 1..100 {
            assert!(!f.admit(SRC, t + Duration::from_millis(i)));
        }
        assert!(f.admit(PluginSessionId(8), t));
        assert!(f.admit(SRC, t + PLI_FANIN_WINDOW));
    }

    /// Benchmark (not a timed test; run it in release mode):
    /// `cargo test -p jsfu-shard --release --lib simulcast::tests::bench -- --ignored --nocapture`.
    ///
    /// The per-packet relay work of the shard without the socket and SRTP:
    /// the plain relay (parse, copy into an egress buffer, continuity
    /// rewrite, SSRC) against the simulcast relay (layer identification by
    /// rid, payload descriptor parse, the recipient's layer selection, then
    /// the same rewrite plus the VP8 picture-id rewrite for the selected
    /// third of the packets), on 1,200-byte VP8 packets of three layers.
    #[test]
    #[ignore = "benchmark: run explicitly in release mode"]
    fn bench_relay_with_and_without_simulcast() {
        use jsfu_proto::rtp::write_with_extensions;
        use std::hint::black_box;
        const PACKETS: usize = 3_000_000;
        let rids: [&[u8]; 3] = [b"q", b"h", b"f"];
        let mut sender = Sender::new();
        let mut packets = Vec::new();
        for i in 0..300 {
            for (layer, ssrc, seq, ts, mut payload) in sender.frame(i % 60 == 0) {
                payload.resize(1200, 0x55);
                let mut p = rtp(
                    96,
                    seq,
                    ssrc,
                    Some((10, rids[usize::from(layer)])),
                    &payload,
                );
                p[4..8].copy_from_slice(&ts.to_be_bytes());
                packets.push(p);
            }
        }
        let mut out = vec![0u8; 1500];
        let plain = |packets: &[Vec<u8>], out: &mut [u8]| {
            let mut sw = SwitchingContext::new();
            let started = Instant::now();
            for (i, p) in packets.iter().cycle().take(PACKETS).enumerate() {
                let view = RtpView::parse(p).expect("valid");
                let len = write_with_extensions(&view, &[], out).expect("fits");
                let mut v = RtpViewMut::parse(&mut out[..len]).expect("valid");
                sw.apply(&mut v, i as u64 * 11, 90_000);
                v.set_ssrc(Ssrc(1));
                black_box(&out[..len]);
            }
            started.elapsed()
        };
        let simulcast = |packets: &[Vec<u8>], out: &mut [u8]| {
            let mut map = LayerMap::from_config(&line(&["q", "h", "f"], &[], &[]));
            let mut sel = LayerSelector::new();
            let mut sw = SwitchingContext::new();
            let mut input = vec![0u8; 1500];
            let mut relayed = 0u64;
            let started = Instant::now();
            for (i, p) in packets.iter().cycle().take(PACKETS).enumerate() {
                // The receive buffer is the socket's: the packet is in it already.
                input[..p.len()].copy_from_slice(p);
                let buf = &mut input[..p.len()];
                let got = map.ingest(buf, None).expect("known layer");
                let view = RtpView::parse(&buf[..got.len]).expect("valid");
                let tag = map.tag(got.layer, &view);
                let now_us = i as u64 * 11;
                let s = sel.process(SRC, &tag, target(1, 2), now_us);
                if !s.relay {
                    continue;
                }
                relayed += 1;
                let len = write_with_extensions(&view, &[], out).expect("fits");
                let mut v = RtpViewMut::parse(&mut out[..len]).expect("valid");
                let r = sw.apply(&mut v, now_us, 90_000);
                v.set_ssrc(Ssrc(1));
                let _ = sel.vp8.rewrite(v.payload_mut(), r.switched);
                black_box(&out[..len]);
            }
            (started.elapsed(), relayed)
        };
        // Warm up, then measure.
        plain(&packets, &mut out);
        let t_plain = plain(&packets, &mut out);
        let (t_sim, relayed) = simulcast(&packets, &mut out);
        let ns = |d: Duration, n: u64| d.as_nanos() as f64 / n as f64;
        println!(
            "plain relay:     {:6.1} ns/packet ({PACKETS} packets)",
            ns(t_plain, PACKETS as u64)
        );
        println!(
            "simulcast relay: {:6.1} ns/incoming packet, {:6.1} ns/relayed packet \
             ({PACKETS} packets of 3 layers, {relayed} relayed)",
            ns(t_sim, PACKETS as u64),
            ns(t_sim, relayed)
        );
        assert!(relayed > 0 && relayed < PACKETS as u64);
    }
}
