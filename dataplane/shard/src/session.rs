//! The state of one PeerConnection on a shard.

use std::net::SocketAddr;
use std::time::Instant;

use jsfu_proto::dtls::DtlsEndpoint;
use jsfu_proto::ice::IceLiteAgent;
use jsfu_proto::rtp::SeqNo;
use jsfu_proto::rtp::rewrite::SwitchingContext;
use jsfu_proto::srtp::SrtpSession;
use jsfu_route::{HeaderExtensionIds, MediaDescription, PcConfig, PluginSessionId, SessionStats};

/// Index of the audio (0) or video (1) state of a session.
pub(crate) fn kind_index(video: bool) -> usize {
    usize::from(video)
}

/// What a session's peer sends us on one kind.
#[derive(Debug, Default)]
pub(crate) struct Inbound {
    /// The peer's SSRC (signalled or learned from the first packet).
    pub(crate) ssrc: Option<u32>,
    /// Highest extended sequence number and first one.
    pub(crate) highest: u64,
    pub(crate) base: u64,
    pub(crate) unwrapper: jsfu_proto::rtp::SeqUnwrapper,
    pub(crate) received: u64,
    /// Values at the previous report (for the fraction lost).
    pub(crate) expected_prior: u64,
    pub(crate) received_prior: u64,
    /// LSR of the peer's last SR and when it arrived.
    pub(crate) last_sr: Option<(u32, Instant)>,
}

impl Inbound {
    /// Counts a packet of `ssrc`; a new SSRC (a restarted sender, media.md
    /// §5.2 step 5) starts the statistics over.
    pub(crate) fn follow(&mut self, ssrc: u32, seq: SeqNo) {
        match self.ssrc {
            None => self.ssrc = Some(ssrc),
            Some(known) if known != ssrc => {
                *self = Self::default();
                self.ssrc = Some(ssrc);
            }
            Some(_) => {}
        }
        self.on_packet(seq);
    }

    /// Remembers the counts a report just covered (for the next fraction
    /// lost).
    pub(crate) fn mark_reported(&mut self) {
        self.expected_prior = self.highest.saturating_sub(self.base) + 1;
        self.received_prior = self.received;
    }

    pub(crate) fn on_packet(&mut self, seq: SeqNo) {
        let ext = self.unwrapper.unwrap(seq);
        if self.received == 0 {
            self.base = ext;
            self.highest = ext;
        } else if ext > self.highest {
            self.highest = ext;
        }
        self.received += 1;
    }
}

/// What the shard sends the session's peer on one kind.
#[derive(Debug, Default)]
pub(crate) struct Outbound {
    /// Continuity rewriting of what this session receives (media.md §6.3).
    pub(crate) switching: SwitchingContext,
    pub(crate) packets: u64,
    pub(crate) octets: u64,
    pub(crate) last_rtp_ts: u32,
    pub(crate) last_sent: Option<Instant>,
}

/// One PeerConnection.
pub(crate) struct Session {
    pub(crate) id: PluginSessionId,
    pub(crate) config: Box<PcConfig>,
    /// `config`'s payload types and m-line positions (set with it).
    pub(crate) pt_table: PtTable,
    pub(crate) lines: LineIndex,
    pub(crate) ice: IceLiteAgent,
    pub(crate) dtls: DtlsEndpoint,
    pub(crate) srtp_in: Option<SrtpSession>,
    pub(crate) srtp_out: Option<SrtpSession>,
    /// Where media and DTLS go (ICE's selected address).
    pub(crate) remote: Option<SocketAddr>,
    /// WebrtcUp was reported.
    pub(crate) started: bool,
    /// ICE failed at this time (hangup after a grace period).
    pub(crate) ice_failed_since: Option<Instant>,
    pub(crate) inbound: [Inbound; 2],
    /// Receive statistics of simulcast video layers 1 and 2 (layer 0 is
    /// `inbound[video]`), for their own report blocks.
    pub(crate) layer_inbound: [Inbound; 2],
    pub(crate) outbound: [Outbound; 2],
    /// The session whose video was last relayed to this one (PLI routing).
    pub(crate) current_sender: Option<PluginSessionId>,
    pub(crate) last_pli: Option<Instant>,
    pub(crate) next_report: Instant,
    pub(crate) next_stats: Instant,
    pub(crate) stats: SessionStats,
    /// NACKs, RTX, receiver stats, transport-wide CC, media state (feedback.rs).
    pub(crate) feedback: crate::feedback::Feedback,
    /// Simulcast layers of what the peer sends (media.md §7.2).
    pub(crate) layers: crate::simulcast::LayerMap,
    /// Simulcast layer selection for what the peer receives (media.md §7.3).
    pub(crate) layers_rx: crate::simulcast::LayerSelector,
    /// The data channels' SCTP association (once DTLS is up, with a data m-line).
    pub(crate) sctp: Option<jsfu_proto::sctp::SctpAssociation>,
}

impl Session {
    /// The first m-line of a kind the server sends on (media.md §5.3 step 1).
    pub(crate) fn send_line(&self, video: bool) -> Option<&MediaDescription> {
        self.line(self.lines.send[kind_index(video)])
    }

    /// What the packet path needs of [`Self::send_line`].
    pub(crate) fn send_info(&self, video: bool) -> Option<&SendLine> {
        self.lines.send_lines[kind_index(video)].as_ref()
    }

    /// The header extension ids of [`Self::recv_line`] (none without one).
    pub(crate) fn recv_extensions(&self, video: bool) -> HeaderExtensionIds {
        self.lines.recv_extensions[kind_index(video)]
    }

    /// The clock rate of payload type `pt` on [`Self::recv_line`], if it
    /// is one of its media payload types.
    pub(crate) fn recv_clock_rate(&self, video: bool, pt: u8) -> Option<u32> {
        self.pt_table.clock[kind_index(video)]
            .get(usize::from(pt))
            .copied()
            .filter(|&rate| rate != 0)
    }

    /// The first receiving m-line of a kind.
    pub(crate) fn recv_line(&self, video: bool) -> Option<&MediaDescription> {
        self.line(self.lines.recv[kind_index(video)])
    }

    /// The SSRC RTCP about a kind is sent from: the m-line's local SSRC.
    pub(crate) fn local_ssrc(&self, video: bool) -> u32 {
        self.line(self.lines.first[kind_index(video)])
            .map_or(1, |m| m.local_ssrc)
    }

    fn line(&self, index: Option<usize>) -> Option<&MediaDescription> {
        self.config.media.get(index?)
    }

    /// Classifies an incoming payload type: (video, is RTX) of the first
    /// receiving m-line that negotiated it (a table lookup; see
    /// [`PtTable::of`]).
    pub(crate) fn classify_pt(&self, pt: u8) -> Option<(bool, bool)> {
        self.pt_table.classify(pt)
    }
}

/// Where the m-lines the packet path looks up sit in a session's
/// configuration, per kind (audio, video): found once when the
/// configuration is set instead of searched for every packet.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LineIndex {
    /// The first m-line of the kind the server sends on.
    send: [Option<usize>; 2],
    /// The first m-line of the kind the server receives on.
    recv: [Option<usize>; 2],
    /// The first m-line of the kind.
    first: [Option<usize>; 2],
    /// What every relayed copy needs of `send`, copied out of the
    /// configuration: with hundreds of recipients per packet, each pointer
    /// followed into a recipient's configuration is a cache miss.
    send_lines: [Option<SendLine>; 2],
    /// The header extension ids of `recv` (none negotiated without one).
    recv_extensions: [HeaderExtensionIds; 2],
}

/// The parts of a send m-line that every relayed packet needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SendLine {
    /// The SSRC the server sends with on it.
    pub(crate) local_ssrc: u32,
    /// Its negotiated header extension ids.
    pub(crate) extensions: HeaderExtensionIds,
    mid: [u8; 16],
    /// 0 when the mid cannot go into a one-byte extension (empty, or longer
    /// than 16 bytes).
    mid_len: u8,
}

impl SendLine {
    fn of(m: &MediaDescription) -> Self {
        let bytes = m.mid.as_bytes();
        let mut mid = [0u8; 16];
        let mid_len = if (1..=16).contains(&bytes.len()) {
            mid[..bytes.len()].copy_from_slice(bytes);
            bytes.len()
        } else {
            0
        };
        Self {
            local_ssrc: m.local_ssrc,
            extensions: m.extensions,
            mid,
            // At most 16 (checked above).
            mid_len: mid_len as u8,
        }
    }

    /// The mid as the sdes:mid extension carries it, if it fits.
    pub(crate) fn mid(&self) -> Option<&[u8]> {
        (self.mid_len > 0).then(|| &self.mid[..usize::from(self.mid_len)])
    }
}

impl LineIndex {
    /// The index of `config` (a data m-line counts as "not video", as
    /// [`MediaDescription::is_video`] has it).
    pub(crate) fn of(config: &PcConfig) -> Self {
        let mut index = Self::default();
        for (i, m) in config.media.iter().enumerate() {
            let k = kind_index(m.is_video());
            index.first[k].get_or_insert(i);
            if m.send && index.send[k].is_none() {
                index.send[k] = Some(i);
                index.send_lines[k] = Some(SendLine::of(m));
            }
            if m.recv && index.recv[k].is_none() {
                index.recv[k] = Some(i);
                index.recv_extensions[k] = m.extensions;
            }
        }
        index
    }
}

/// Payload type → (video, RTX) of a session's receiving m-lines, built when
/// its configuration is set so the packet path does one array lookup.
#[derive(Debug, Clone)]
pub(crate) struct PtTable {
    class: [u8; 128],
    /// Per kind: the clock rate of each media payload type of the first
    /// receiving m-line of that kind (0: not one of them).
    clock: [[u32; 128]; 2],
}

impl PtTable {
    const UNKNOWN: u8 = 0;
    const KNOWN: u8 = 1;
    const VIDEO: u8 = 2;
    const RTX: u8 = 4;

    /// The table of `config`: the first receiving m-line that negotiated a
    /// payload type (as media or as RTX) wins.
    pub(crate) fn of(config: &PcConfig) -> Self {
        let mut table = [Self::UNKNOWN; 128];
        let mut clock = [[0u32; 128]; 2];
        let mut first = [true; 2];
        for m in config.media.iter().filter(|m| m.recv) {
            let k = kind_index(m.is_video());
            if std::mem::take(&mut first[k]) {
                for p in &m.payload_types {
                    if let Some(rate) = clock[k].get_mut(usize::from(p.pt)) {
                        if *rate == 0 {
                            *rate = p.clock_rate;
                        }
                    }
                }
            }
            let video = if m.is_video() { Self::VIDEO } else { 0 };
            let media = m.payload_types.iter().map(|p| (p.pt, 0));
            let rtx = m.rtx.iter().map(|r| (r.rtx_pt, Self::RTX));
            for (pt, flag) in media.chain(rtx) {
                if let Some(entry) = table.get_mut(usize::from(pt)) {
                    if *entry == Self::UNKNOWN {
                        *entry = Self::KNOWN | video | flag;
                    }
                }
            }
        }
        Self {
            class: table,
            clock,
        }
    }

    fn classify(&self, pt: u8) -> Option<(bool, bool)> {
        let entry = *self.class.get(usize::from(pt))?;
        (entry != Self::UNKNOWN).then_some((entry & Self::VIDEO != 0, entry & Self::RTX != 0))
    }
}

#[cfg(test)]
mod tests {
    use jsfu_route::{
        DtlsRole, Fingerprint, HeaderExtensionIds, MediaDescription, Medium, PayloadType, PcConfig,
        PluginSessionId, RtxMapping,
    };

    use super::{LineIndex, PtTable};

    fn line(
        index: u16,
        kind: Medium,
        send: bool,
        recv: bool,
        pts: &[(u8, u32)],
    ) -> MediaDescription {
        MediaDescription {
            index,
            mid: index.to_string(),
            kind,
            send,
            recv,
            payload_types: pts
                .iter()
                .map(|&(pt, clock_rate)| PayloadType {
                    pt,
                    codec: "x".into(),
                    clock_rate,
                })
                .collect(),
            rtx: Vec::new(),
            local_ssrc: 1000 + u32::from(index),
            local_rtx_ssrc: None,
            remote_ssrcs: Vec::new(),
            remote_rtx_ssrcs: Vec::new(),
            rids: Vec::new(),
            extensions: HeaderExtensionIds {
                mid: Some(1),
                audio_level: Some(u8::try_from(index).unwrap_or(0) + 2),
                ..HeaderExtensionIds::default()
            },
            nack: false,
        }
    }

    fn config(media: Vec<MediaDescription>) -> PcConfig {
        PcConfig {
            session: PluginSessionId(7),
            local_ufrag: "abcd".into(),
            local_pwd: "0123456789012345678901".into(),
            remote_ufrag: "efgh".into(),
            remote_pwd: "0123456789012345678901".into(),
            dtls_role: DtlsRole::Server,
            remote_fingerprint: Fingerprint {
                algorithm: "sha-256".into(),
                value: "00".into(),
            },
            media,
            data_channel: false,
            script_incoming_rtp: false,
            script_incoming_rtcp: false,
            script_incoming_text_data: false,
            script_incoming_binary_data: false,
        }
    }

    #[test]
    fn tables_answer_like_a_search_of_the_configuration() {
        let mut video_in = line(1, Medium::Video, false, true, &[(96, 90_000), (98, 90_000)]);
        video_in.rtx.push(RtxMapping {
            rtx_pt: 97,
            apt: 96,
        });
        let mut long_mid = line(3, Medium::Video, true, true, &[(100, 90_000)]);
        long_mid.mid = "a-mid-longer-than-16".into();
        let cfg = config(vec![
            line(0, Medium::Audio, true, true, &[(111, 48_000), (0, 8_000)]),
            video_in,
            line(2, Medium::Audio, false, true, &[(8, 8_000)]),
            long_mid,
        ]);
        let pts = PtTable::of(&cfg);
        assert_eq!(pts.classify(111), Some((false, false)));
        assert_eq!(pts.classify(0), Some((false, false)));
        assert_eq!(pts.classify(96), Some((true, false)));
        assert_eq!(pts.classify(97), Some((true, true)));
        assert_eq!(
            pts.classify(8),
            Some((false, false)),
            "a later m-line still counts"
        );
        assert_eq!(pts.classify(100), Some((true, false)));
        assert_eq!(pts.classify(99), None);
        assert_eq!(pts.classify(200), None, "not a payload type");
        // Clock rates only from the first receiving m-line of the kind.
        assert_eq!(pts.clock[0][0], 8_000);
        assert_eq!(pts.clock[0][8], 0);
        assert_eq!(pts.clock[1][98], 90_000);
        assert_eq!(pts.clock[1][100], 0);
        assert_eq!(pts.clock[1][97], 0, "RTX has no clock rate of its own");

        let lines = LineIndex::of(&cfg);
        assert_eq!(lines.first, [Some(0), Some(1)]);
        assert_eq!(lines.recv, [Some(0), Some(1)]);
        assert_eq!(lines.send, [Some(0), Some(3)]);
        assert_eq!(lines.recv_extensions[1].audio_level, Some(3));
        let [Some(audio), Some(video)] = lines.send_lines else {
            panic!("both kinds have a send line");
        };
        assert_eq!((audio.local_ssrc, audio.mid()), (1000, Some(&b"0"[..])));
        assert_eq!(video.local_ssrc, 1003);
        assert_eq!(video.mid(), None, "too long for the one-byte extension");

        let empty = LineIndex::of(&config(Vec::new()));
        assert!(empty.send_lines.iter().all(Option::is_none));
        assert_eq!(empty.recv_extensions[0], HeaderExtensionIds::default());
    }
}
