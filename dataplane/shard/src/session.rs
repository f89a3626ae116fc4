//! The state of one PeerConnection on a shard.

use std::net::SocketAddr;
use std::time::Instant;

use jsfu_proto::dtls::DtlsEndpoint;
use jsfu_proto::ice::IceLiteAgent;
use jsfu_proto::rtp::SeqNo;
use jsfu_proto::rtp::rewrite::SwitchingContext;
use jsfu_proto::srtp::SrtpSession;
use jsfu_route::{MediaDescription, PcConfig, PluginSessionId, SessionStats};

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
}

impl LineIndex {
    /// The index of `config` (a data m-line counts as "not video", as
    /// [`MediaDescription::is_video`] has it).
    pub(crate) fn of(config: &PcConfig) -> Self {
        let mut index = Self::default();
        for (i, m) in config.media.iter().enumerate() {
            let k = kind_index(m.is_video());
            index.first[k].get_or_insert(i);
            if m.send {
                index.send[k].get_or_insert(i);
            }
            if m.recv {
                index.recv[k].get_or_insert(i);
            }
        }
        index
    }
}

/// Payload type → (video, RTX) of a session's receiving m-lines, built when
/// its configuration is set so the packet path does one array lookup.
#[derive(Debug, Clone)]
pub(crate) struct PtTable([u8; 128]);

impl PtTable {
    const UNKNOWN: u8 = 0;
    const KNOWN: u8 = 1;
    const VIDEO: u8 = 2;
    const RTX: u8 = 4;

    /// The table of `config`: the first receiving m-line that negotiated a
    /// payload type (as media or as RTX) wins.
    pub(crate) fn of(config: &PcConfig) -> Self {
        let mut table = [Self::UNKNOWN; 128];
        for m in config.media.iter().filter(|m| m.recv) {
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
        Self(table)
    }

    fn classify(&self, pt: u8) -> Option<(bool, bool)> {
        let entry = *self.0.get(usize::from(pt))?;
        (entry != Self::UNKNOWN).then_some((entry & Self::VIDEO != 0, entry & Self::RTX != 0))
    }
}
