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
        self.config
            .media
            .iter()
            .find(|m| m.is_video() == video && m.send)
    }

    /// The first receiving m-line of a kind.
    pub(crate) fn recv_line(&self, video: bool) -> Option<&MediaDescription> {
        self.config
            .media
            .iter()
            .find(|m| m.is_video() == video && m.recv)
    }

    /// The SSRC RTCP about a kind is sent from: the m-line's local SSRC.
    pub(crate) fn local_ssrc(&self, video: bool) -> u32 {
        self.config
            .media
            .iter()
            .find(|m| m.is_video() == video)
            .map_or(1, |m| m.local_ssrc)
    }

    /// Classifies an incoming payload type: (video, is RTX) of the first
    /// receiving m-line that negotiated it.
    pub(crate) fn classify_pt(&self, pt: u8) -> Option<(bool, bool)> {
        self.config.media.iter().filter(|m| m.recv).find_map(|m| {
            if m.payload_types.iter().any(|p| p.pt == pt) {
                Some((m.is_video(), false))
            } else if m.rtx.iter().any(|r| r.rtx_pt == pt) {
                Some((m.is_video(), true))
            } else {
                None
            }
        })
    }
}
