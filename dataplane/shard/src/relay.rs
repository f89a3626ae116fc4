//! The packet path: demultiplex one received datagram, answer STUN, feed
//! DTLS, unprotect SRTP/SRTCP in place, then relay RTP to each recipient
//! (rewrite into a pooled egress slot, protect, queue) and handle RTCP
//! natively (media.md §5, §6). Nothing here allocates, locks or logs.

use std::net::SocketAddr;
use std::time::Instant;

use jsfu_proto::demux::{self, DemuxDrop, PacketKind};
use jsfu_proto::ice::StunOutcome;
use jsfu_proto::rtcp::feedback::write_remb;
use jsfu_proto::rtcp::{self, RtcpPacket, RtcpRaw, filter_plugin_rtcp, write_empty_rr};
use jsfu_proto::rtp::rewrite::switching_clock_rate;
use jsfu_proto::rtp::{RtpView, RtpViewMut, SeqNo, Ssrc, write_with_extensions};
use jsfu_proto::srtp::SrtpDrop;
use jsfu_proto::stun;
use jsfu_route::{MediaEvent, PluginSessionId, SessionKey};

use crate::io::SLOT_LEN;
use crate::session::kind_index;
use crate::shard::{DEFAULT_REMB_BPS, PeerMsg, Shard, clear_openssl_errors, slab_get};
use crate::simulcast::LayerTag;
use crate::stats::DropReason;

fn srtp_drop_reason(d: SrtpDrop) -> DropReason {
    match d {
        SrtpDrop::AuthFailed => DropReason::SrtpAuth,
        SrtpDrop::Replayed | SrtpDrop::TooOld => DropReason::SrtpReplay,
        _ => DropReason::SrtpOther,
    }
}

fn demux_drop_reason(d: DemuxDrop) -> DropReason {
    match d {
        DemuxDrop::Empty => DropReason::Empty,
        DemuxDrop::ShortRtp => DropReason::ShortRtp,
        DemuxDrop::ShortRtcp => DropReason::ShortRtcp,
        DemuxDrop::Oversize => DropReason::Oversize,
        _ => DropReason::UnknownFirstByte,
    }
}

impl Shard {
    /// Handles one received datagram (`buf[..len]`, the rest of the slot is
    /// room for in-place work).
    pub(crate) fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        truncated: bool,
        buf: &mut [u8; SLOT_LEN],
        len: usize,
    ) {
        self.counters.datagrams_in += 1;
        if truncated {
            self.counters.drop(DropReason::Truncated);
            return;
        }
        let kind = match demux::classify(&buf[..len]) {
            Ok(kind) => kind,
            Err(d) => {
                self.counters.drop(demux_drop_reason(d));
                return;
            }
        };
        match kind {
            PacketKind::Stun => self.handle_stun(now, from, &buf[..len]),
            PacketKind::Dtls => {
                let Some(&key) = self.by_tuple.get(&from) else {
                    self.counters.drop(DropReason::UnknownTuple);
                    return;
                };
                self.counters.dtls_in += 1;
                let Some(s) = self.session_mut(key) else {
                    self.counters.drop(DropReason::UnknownTuple);
                    return;
                };
                clear_openssl_errors();
                s.dtls.handle_datagram(now, &buf[..len]);
                self.drain_dtls(now, key, Some(from));
            }
            PacketKind::Rtp => self.handle_srtp(now, from, &mut buf[..len]),
            PacketKind::Rtcp => self.handle_srtcp(now, from, &mut buf[..len]),
        }
    }

    pub(crate) fn handle_stun(&mut self, now: Instant, from: SocketAddr, packet: &[u8]) {
        let Ok(msg) = stun::parse(packet) else {
            self.counters.drop(DropReason::StunMalformed);
            return;
        };
        let Some(username) = msg.username() else {
            self.counters.drop(DropReason::StunMalformed);
            return;
        };
        let local = username
            .iter()
            .position(|&b| b == b':')
            .map_or(username, |colon| &username[..colon]);
        let Some(&key) = std::str::from_utf8(local)
            .ok()
            .and_then(|ufrag| self.by_ufrag.get(ufrag))
        else {
            // Perhaps its PeerConnection is being created: kept a while.
            if self.early_stun.keep(now, from, local, packet) {
                self.counters.stun_early_kept += 1;
            } else {
                self.counters.drop(DropReason::StunUnknownUfrag);
            }
            return;
        };
        let Some(slot) = self.pool.take() else {
            self.counters.drop(DropReason::EgressPoolEmpty);
            return;
        };
        let Some(s) = slab_get(&mut self.slab, key) else {
            self.pool.put(slot);
            return;
        };
        let outcome = s
            .ice
            .handle_stun(now, from, packet, &mut self.pool.get_mut(slot)[..]);
        match outcome {
            StunOutcome::Accepted { response_len } => {
                self.counters.stun_answered += 1;
                self.by_tuple.insert(from, key);
                self.queue(slot, response_len, from);
            }
            StunOutcome::Indication => self.pool.put(slot),
            StunOutcome::Rejected { response_len, .. } => {
                self.counters.drop(DropReason::StunRejected);
                match response_len {
                    Some(n) => self.queue(slot, n, from),
                    None => self.pool.put(slot),
                }
            }
        }
        self.drain_ice(now, key);
    }

    fn handle_srtp(&mut self, now: Instant, from: SocketAddr, buf: &mut [u8]) {
        let now_us = self.now_us(now);
        let Some(&key) = self.by_tuple.get(&from) else {
            self.counters.drop(DropReason::UnknownTuple);
            return;
        };
        let Some(s) = slab_get(&mut self.slab, key) else {
            self.counters.drop(DropReason::UnknownTuple);
            return;
        };
        let Some(srtp) = s.srtp_in.as_mut() else {
            self.counters.drop(DropReason::NoSrtp);
            return;
        };
        let len = match srtp.unprotect_rtp(buf) {
            Ok(len) => len,
            Err(d) => {
                s.stats.dropped += 1;
                self.counters.drop(srtp_drop_reason(d));
                return;
            }
        };
        self.counters.rtp_in += 1;
        let Ok(pt) = RtpView::parse(&buf[..len]).map(|v| v.pt().0) else {
            self.counters.drop(DropReason::RtpMalformed);
            return;
        };
        let Some((video, rtx)) = s.classify_pt(pt) else {
            s.stats.dropped += 1;
            self.counters.drop(DropReason::UnknownPayloadType);
            return;
        };
        // Simulcast video: find the layer, restore RTX (media.md §5.2 steps 3, 6).
        let mut len = len;
        let mut layer = None;
        if video && s.layers.is_simulcast() {
            let apt = rtx.then(|| crate::simulcast::rtx_apt(s, pt));
            if apt == Some(None) {
                self.counters.drop(DropReason::RtxFromPeer);
                return;
            }
            match s.layers.ingest(&mut buf[..len], apt.flatten()) {
                Ok(ingested) => {
                    len = ingested.len;
                    layer = Some(ingested.layer);
                }
                Err(reason) => {
                    s.stats.dropped += 1;
                    self.counters.drop(reason);
                    return;
                }
            }
        } else if rtx {
            // Restore the original packet (media.md §5.2 step 6).
            match crate::feedback::unwrap_rtx(s, pt, &mut buf[..len]) {
                Ok(restored) => len = restored,
                Err(reason) => {
                    s.stats.dropped += 1;
                    self.counters.drop(reason);
                    return;
                }
            }
        }
        let plain = &mut buf[..len];
        let Ok(view) = RtpView::parse(plain) else {
            self.counters.drop(DropReason::RtpMalformed);
            return;
        };
        s.stats.rtp_packets_in += 1;
        s.stats.rtp_bytes_in += len as u64;
        let kind = &mut s.stats.kinds[kind_index(video)];
        kind.packets_in += 1;
        kind.bytes_in += len as u64;
        if !crate::feedback::on_rtp(s, now, now_us, video, &view, rtx, layer.unwrap_or(0)) {
            s.stats.dropped += 1;
            self.counters.drop(DropReason::RtxFromPeer);
            return;
        }
        // Receiver statistics follow the stream (simulcast: each layer).
        let inbound = match layer {
            Some(l @ 1..) => s.layer_inbound.get_mut(usize::from(l) - 1),
            _ => Some(&mut s.inbound[kind_index(video)]),
        };
        if let Some(inbound) = inbound {
            inbound.follow(view.ssrc().0, view.seq());
        }
        let tag = layer.map(|l| s.layers.tag(l, &view));
        let source = s.id;
        if s.config.script_incoming_rtp {
            self.counters.slow_path_events += 1;
            // Slow path by the script's choice: one copy per packet.
            self.emit_lossy(MediaEvent::IncomingRtp {
                session: source,
                video,
                bytes: plain.to_vec(),
            });
            return;
        }
        let Some(route) = self.routes.get(&source) else {
            self.counters.drop(DropReason::NoRoute);
            return;
        };
        let open = if video {
            route.gates.publish_video
        } else {
            route.gates.publish_audio
        };
        if !open {
            self.counters.drop(DropReason::PublishGateClosed);
            return;
        }
        self.record_rtp(now, source, video, plain, tag.as_ref());
        if let Some(s) = self.session(key) {
            crate::feedback::normalize_ingress(s, video, plain);
        }
        self.relay_rtp(now, source, video, plain, tag);
    }

    /// Relays plaintext RTP of `source` to its recipients: local ones now,
    /// one copy per other shard holding recipients.
    fn relay_rtp(
        &mut self,
        now: Instant,
        source: PluginSessionId,
        video: bool,
        plain: &mut [u8],
        tag: Option<LayerTag>,
    ) {
        self.cross_sent.fill(false);
        let mut i = 0;
        while let Some(recipient) = self
            .routes
            .get(&source)
            .and_then(|r| r.recipients.get(i).copied())
        {
            i += 1;
            match self.placement.get(&recipient).copied() {
                Some(shard) if shard == self.id => {
                    self.relay_local(now, source, video, plain, recipient, tag.as_ref());
                }
                Some(shard) => self.hand_over(source, video, plain, shard, tag),
                None => self.counters.drop(DropReason::RecipientNotReady),
            }
        }
    }

    /// Gives a copy of the plaintext to another shard (once per packet).
    fn hand_over(
        &mut self,
        source: PluginSessionId,
        video: bool,
        plain: &[u8],
        shard: jsfu_route::ShardId,
        layer: Option<LayerTag>,
    ) {
        let index = usize::from(shard.0);
        if self.cross_sent.get(index).copied().unwrap_or(true) {
            return;
        }
        self.cross_sent[index] = true;
        let Some(mut slot) = self.cross_free.pop() else {
            self.counters.drop(DropReason::CrossShardPoolEmpty);
            return;
        };
        let len = plain.len().min(SLOT_LEN);
        slot.0[..len].copy_from_slice(&plain[..len]);
        let msg = PeerMsg::Rtp {
            source,
            video,
            len,
            slot,
            origin: self.id,
            layer,
        };
        match self.peers[index].try_send(msg) {
            Ok(()) => self.counters.cross_shard_out += 1,
            Err(e) => {
                self.counters.drop(DropReason::CrossShardQueueFull);
                if let PeerMsg::Rtp { slot, .. } = e.into_inner() {
                    self.cross_free.push(slot);
                }
            }
        }
    }

    /// Relays a packet from another shard to `source`'s recipients here.
    pub(crate) fn relay_to_local_recipients(
        &mut self,
        now: Instant,
        source: PluginSessionId,
        video: bool,
        plain: &mut [u8],
        tag: Option<LayerTag>,
    ) {
        if RtpView::parse(plain).is_err() {
            self.counters.drop(DropReason::RtpMalformed);
            return;
        }
        let mut i = 0;
        while let Some(recipient) = self
            .routes
            .get(&source)
            .and_then(|r| r.recipients.get(i).copied())
        {
            i += 1;
            if self.placement.get(&recipient) == Some(&self.id) {
                self.relay_local(now, source, video, plain, recipient, tag.as_ref());
            }
        }
    }

    /// Sends one packet to a recipient on this shard: gate, rewrite into an
    /// egress slot (SSRC, continuity, mid extension), protect, queue.
    fn relay_local(
        &mut self,
        now: Instant,
        source: PluginSessionId,
        video: bool,
        plain: &[u8],
        recipient: PluginSessionId,
        tag: Option<&LayerTag>,
    ) {
        let gate_open = self.routes.get(&recipient).is_some_and(|r| {
            if video {
                r.gates.receive_video
            } else {
                r.gates.receive_audio
            }
        });
        if !gate_open {
            self.counters.drop(DropReason::RecipientGateClosed);
            return;
        }
        let Some(&key) = self.by_id.get(&recipient) else {
            self.counters.drop(DropReason::RecipientNotReady);
            return;
        };
        // Simulcast: the recipient's layer selection (media.md §6.2 step 5).
        let vp8 = match tag {
            Some(tag) => match self.select_layer(now, source, recipient, tag) {
                Some(vp8) => vp8,
                None => return,
            },
            None => false,
        };
        let Some(slot) = self.pool.take() else {
            self.counters.drop(DropReason::EgressPoolEmpty);
            return;
        };
        let out = match self.rewrite_for(now, key, video, plain, slot, vp8) {
            Ok(out) => out,
            Err(reason) => {
                self.pool.put(slot);
                self.counters.drop(reason);
                return;
            }
        };
        if let Some(s) = self.session_mut(key) {
            if video {
                s.current_sender = Some(source);
            }
        }
        self.counters.rtp_relayed += 1;
        self.queue(slot, out.0, out.1);
    }

    /// Writes the recipient's copy into `slot` and protects it. Returns the
    /// SRTP length and the destination.
    fn rewrite_for(
        &mut self,
        now: Instant,
        key: SessionKey,
        video: bool,
        plain: &[u8],
        slot: u32,
        vp8: bool,
    ) -> Result<(usize, SocketAddr), DropReason> {
        let now_us = self.now_us(now);
        let Some(s) = slab_get(&mut self.slab, key) else {
            return Err(DropReason::RecipientNotReady);
        };
        let (Some(to), true) = (s.remote, s.started) else {
            return Err(DropReason::RecipientNotReady);
        };
        let Some(&line) = s.send_info(video) else {
            return Err(DropReason::RecipientNoSendLine);
        };
        let local_ssrc = line.local_ssrc;
        let view = RtpView::parse(plain).map_err(|_| DropReason::RtpMalformed)?;
        let clock_rate = switching_clock_rate(video, view.pt());
        let ids = line.extensions;
        let mut ext = [0u8; 64];
        let ext_len = crate::feedback::write_extensions(
            &mut s.feedback,
            ids,
            video,
            ids.mid.and(line.mid()),
            Some(&view),
            now_us,
            &mut ext,
        );
        let buf = &mut self.pool.get_mut(slot)[..];
        let len = write_with_extensions(&view, &ext[..ext_len], buf)
            .map_err(|_| DropReason::RtpMalformed)?;
        let outbound = &mut s.outbound[kind_index(video)];
        {
            let mut v = RtpViewMut::parse(&mut buf[..len]).map_err(|_| DropReason::RtpMalformed)?;
            // The context sees the sender's SSRC (a change is a switch),
            // the peer the m-line's.
            let r = outbound.switching.apply(&mut v, now_us, clock_rate);
            v.set_ssrc(Ssrc(local_ssrc));
            outbound.last_rtp_ts = r.timestamp;
            if vp8 {
                // Picture id / TL0PICIDX continuity (media.md §7.5); a
                // descriptor that does not parse is sent as is.
                let _ = s.layers_rx.vp8.rewrite(v.payload_mut(), r.switched);
            }
        }
        if video {
            let seq = SeqNo(u16::from_be_bytes([buf[2], buf[3]]));
            s.feedback.keep(now_us, seq, &buf[..len]);
        }
        let srtp = s.srtp_out.as_mut().ok_or(DropReason::RecipientNotReady)?;
        let n = srtp
            .protect_rtp(buf, len)
            .map_err(|_| DropReason::ProtectFailed)?;
        outbound.packets += 1;
        outbound.octets += (len - 12) as u64;
        outbound.last_sent = Some(now);
        s.stats.rtp_packets_out += 1;
        s.stats.rtp_bytes_out += len as u64;
        let kind = &mut s.stats.kinds[kind_index(video)];
        kind.packets_out += 1;
        kind.bytes_out += len as u64;
        Ok((n, to))
    }

    fn handle_srtcp(&mut self, now: Instant, from: SocketAddr, buf: &mut [u8]) {
        let Some(&key) = self.by_tuple.get(&from) else {
            self.counters.drop(DropReason::UnknownTuple);
            return;
        };
        let Some(s) = slab_get(&mut self.slab, key) else {
            self.counters.drop(DropReason::UnknownTuple);
            return;
        };
        let Some(srtp) = s.srtp_in.as_mut() else {
            self.counters.drop(DropReason::NoSrtp);
            return;
        };
        let len = match srtp.unprotect_rtcp(buf) {
            Ok(len) => len,
            Err(d) => {
                s.stats.dropped += 1;
                self.counters.drop(srtp_drop_reason(d));
                return;
            }
        };
        self.counters.rtcp_in += 1;
        s.stats.rtcp_packets_in += 1;
        let plain = &buf[..len];
        crate::feedback::on_rtcp(s, plain);
        let source = s.id;
        if s.config.script_incoming_rtcp {
            let video_ssrc = s.inbound[kind_index(true)].ssrc;
            let sender = RtcpRaw::parse(plain).ok().and_then(|p| p.sender_ssrc());
            let video = sender.is_some() && sender.map(|s| s.0) == video_ssrc;
            self.counters.slow_path_events += 1;
            self.emit_lossy(MediaEvent::IncomingRtcp {
                session: source,
                video,
                bytes: plain.to_vec(),
            });
            return;
        }
        // Malformed packets are skipped; a framing error ends the compound.
        for p in rtcp::parse(plain).flatten() {
            match p {
                RtcpPacket::SenderReport(sr) => {
                    let info = sr.info();
                    if let Some(s) = self.session_mut(key) {
                        for inbound in s.inbound.iter_mut().chain(&mut s.layer_inbound) {
                            if inbound.ssrc == Some(info.ssrc.0) {
                                inbound.last_sr = Some((info.ntp.compact(), now));
                            }
                        }
                    }
                }
                RtcpPacket::Remb(_) => self.answer_remb(key, source),
                RtcpPacket::Pli(_) => {
                    let sender = self.session(key).and_then(|s| s.current_sender);
                    if let Some(sender) = sender {
                        self.request_keyframe(now, sender);
                    }
                }
                RtcpPacket::Nack(nack) => {
                    for seq in nack.lost() {
                        self.answer_nack(now, key, seq);
                    }
                }
                _ => {}
            }
        }
    }

    /// Answers a REMB with the session's cap (media.md §6.6).
    fn answer_remb(&mut self, key: SessionKey, source: PluginSessionId) {
        let cap = self
            .routes
            .get(&source)
            .map_or(0, |r| u64::from(r.bitrate_cap));
        let bitrate = if cap == 0 { DEFAULT_REMB_BPS } else { cap };
        let Some(s) = self.session(key) else {
            return;
        };
        let Some(media) = s.inbound[kind_index(true)].ssrc else {
            self.counters.drop(DropReason::RtcpNotSent);
            return;
        };
        let sender = Ssrc(s.local_ssrc(true));
        self.send_rtcp(key, |_, out| {
            write_remb_answer(out, sender, bitrate, Ssrc(media))
        });
    }

    /// `relayRtp`: a script's packet to the session's peer; payload type,
    /// sequence number and timestamp as given (media.md §5.3).
    pub(crate) fn relay_rtp_from_script(
        &mut self,
        now: Instant,
        session: PluginSessionId,
        video: bool,
        packet: &[u8],
    ) {
        let Some(&key) = self.by_id.get(&session) else {
            self.counters.drop(DropReason::CommandUnknownSession);
            return;
        };
        let Ok(view) = RtpView::parse(packet) else {
            self.counters.drop(DropReason::RtpMalformed);
            return;
        };
        if packet.len() > demux::MAX_MEDIA_DATAGRAM {
            self.counters.drop(DropReason::Oversize);
            return;
        }
        let Some(slot) = self.pool.take() else {
            self.counters.drop(DropReason::EgressPoolEmpty);
            return;
        };
        let now_us = self.now_us(now);
        let e = slab_get(&mut self.slab, key);
        let result = (|| {
            let s = e.ok_or(DropReason::RecipientNotReady)?;
            let to = s
                .remote
                .filter(|_| s.started)
                .ok_or(DropReason::RecipientNotReady)?;
            let line = *s.send_info(video).ok_or(DropReason::RecipientNoSendLine)?;
            let ssrc = line.local_ssrc;
            let ids = line.extensions;
            let mid = line.mid();
            let mut ext = [0u8; 64];
            let ext_len = crate::feedback::write_extensions(
                &mut s.feedback,
                ids,
                video,
                mid,
                None,
                now_us,
                &mut ext,
            );
            let buf = &mut self.pool.get_mut(slot)[..];
            let len = write_with_extensions(&view, &ext[..ext_len], buf)
                .map_err(|_| DropReason::RtpMalformed)?;
            RtpViewMut::parse(&mut buf[..len])
                .map_err(|_| DropReason::RtpMalformed)?
                .set_ssrc(Ssrc(ssrc));
            if video {
                s.feedback.keep(now_us, view.seq(), &buf[..len]);
            }
            let srtp = s.srtp_out.as_mut().ok_or(DropReason::RecipientNotReady)?;
            let n = srtp
                .protect_rtp(buf, len)
                .map_err(|_| DropReason::ProtectFailed)?;
            let outbound = &mut s.outbound[kind_index(video)];
            outbound.packets += 1;
            outbound.octets += (len - 12) as u64;
            outbound.last_rtp_ts = view.timestamp();
            outbound.last_sent = Some(Instant::now());
            s.stats.rtp_packets_out += 1;
            s.stats.rtp_bytes_out += len as u64;
            let kind = &mut s.stats.kinds[kind_index(video)];
            kind.packets_out += 1;
            kind.bytes_out += len as u64;
            Ok((n, to))
        })();
        match result {
            Ok((n, to)) => self.queue(slot, n, to),
            Err(reason) => {
                self.pool.put(slot);
                self.counters.drop(reason);
            }
        }
    }

    /// `relayRtcp`: drops what the core generates itself (SR, RR, SDES, XR,
    /// NACK, transport-cc) and passes the rest with the SSRCs fixed to
    /// (local SSRC, the peer's SSRC) (media.md §5.5). A malformed compound,
    /// or one that does not fit a slot, is dropped whole.
    pub(crate) fn relay_rtcp_from_script(
        &mut self,
        session: PluginSessionId,
        video: bool,
        packet: &[u8],
    ) {
        let Some(&key) = self.by_id.get(&session) else {
            self.counters.drop(DropReason::CommandUnknownSession);
            return;
        };
        self.send_rtcp(key, |s, out| {
            let local = Ssrc(s.local_ssrc(video));
            let peer = Ssrc(s.inbound[kind_index(video)].ssrc.unwrap_or(0));
            filter_plugin_rtcp(packet, out, local, peer)
        });
    }
}

/// The answer to a peer's REMB: an empty RR, then a REMB for `bitrate`
/// about `media`, as Janus sends it (media.md §5.5).
fn write_remb_answer(
    out: &mut [u8],
    sender: Ssrc,
    bitrate: u64,
    media: Ssrc,
) -> Result<usize, rtcp::RtcpDrop> {
    let n = write_empty_rr(out, sender)?;
    Ok(n + write_remb(&mut out[n..], sender, bitrate, &[media])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remb_answer_is_empty_rr_then_remb() {
        let mut out = [0u8; 64];
        let n = write_remb_answer(&mut out, Ssrc(0x0102_0304), 10_000_000, Ssrc(0x0a0b_0c0d))
            .expect("fits");
        #[rustfmt::skip]
        let expect: &[u8] = &[
            // RR without report blocks
            0x80, 201, 0, 1, 1, 2, 3, 4,
            // REMB: media 0, one SSRC, 10 Mbit/s = 156250 << 6
            0x8f, 206, 0, 5, 1, 2, 3, 4, 0, 0, 0, 0,
            b'R', b'E', b'M', b'B', 1, (6 << 2) | 0x02, 0x62, 0x5a,
            0x0a, 0x0b, 0x0c, 0x0d,
        ];
        assert_eq!(&out[..n], expect);
        assert!(write_remb_answer(&mut out[..30], Ssrc(1), 1, Ssrc(2)).is_err());
    }
}
