//! Per-shard counters: plain integers bumped on the packet path, copied out
//! in a [`ShardStats`] snapshot.

use jsfu_route::ShardId;

/// Why a datagram (or one recipient's copy of a packet) was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Empty datagram.
    Empty,
    /// First byte outside the STUN, DTLS and RTP/RTCP ranges (RFC 7983).
    UnknownFirstByte,
    /// RTP shorter than 12 bytes.
    ShortRtp,
    /// RTCP shorter than 8 bytes.
    ShortRtcp,
    /// RTP/RTCP larger than 1500 bytes.
    Oversize,
    /// Larger than a pool slot: the kernel truncated it.
    Truncated,
    /// STUN that is not a parsable request with a USERNAME.
    StunMalformed,
    /// STUN whose USERNAME names no session on this shard.
    StunUnknownUfrag,
    /// STUN refused by the session's ICE agent (integrity, fingerprint, ...).
    StunRejected,
    /// DTLS or media from a transport address no session has validated.
    UnknownTuple,
    /// Media before the SRTP keys exist.
    NoSrtp,
    /// SRTP/SRTCP authentication failed.
    SrtpAuth,
    /// SRTP/SRTCP replay (or too old).
    SrtpReplay,
    /// SRTP/SRTCP unprotect failed otherwise (malformed header, ...).
    SrtpOther,
    /// Plaintext RTP that does not parse.
    RtpMalformed,
    /// RTP whose payload type belongs to no receiving m-line.
    UnknownPayloadType,
    /// An RTP retransmission (RFC 4588) from the peer that cannot be
    /// restored, or that repairs nothing (duplicate, never NACKed).
    RtxFromPeer,
    /// The source session has no route state yet.
    NoRoute,
    /// The source's publish gate for this kind is closed.
    PublishGateClosed,
    /// A recipient's receive gate for this kind is closed.
    RecipientGateClosed,
    /// A recipient's PC is not up (no keys, no address, or not on any shard).
    RecipientNotReady,
    /// A recipient has no m-line of this kind that sends.
    RecipientNoSendLine,
    /// No free egress slot.
    EgressPoolEmpty,
    /// SRTP protect failed.
    ProtectFailed,
    /// The kernel refused the datagram (buffer full, unreachable).
    SendFailed,
    /// No free cross-shard buffer.
    CrossShardPoolEmpty,
    /// The other shard's inbox is full.
    CrossShardQueueFull,
    /// A stats or slow-path event found the event queue full.
    EventQueueFull,
    /// SCTP (DTLS application data) or a data-channel message for a PC
    /// without a negotiated data m-line or whose association is not up.
    DataChannelUnsupported,
    /// A command this shard does not execute.
    CommandUnsupported,
    /// A command for a session that has no PC on this shard.
    CommandUnknownSession,
    /// RTCP that could not be built or sent (no keys, no SSRC).
    RtcpNotSent,
    /// Simulcast video whose layer is unknown (no signalled SSRC, no rid).
    SimulcastUnknownLayer,
    /// Simulcast video a recipient's layer selection did not take.
    SimulcastNotSelected,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [Self; 34] = [
        Self::Empty,
        Self::UnknownFirstByte,
        Self::ShortRtp,
        Self::ShortRtcp,
        Self::Oversize,
        Self::Truncated,
        Self::StunMalformed,
        Self::StunUnknownUfrag,
        Self::StunRejected,
        Self::UnknownTuple,
        Self::NoSrtp,
        Self::SrtpAuth,
        Self::SrtpReplay,
        Self::SrtpOther,
        Self::RtpMalformed,
        Self::UnknownPayloadType,
        Self::RtxFromPeer,
        Self::NoRoute,
        Self::PublishGateClosed,
        Self::RecipientGateClosed,
        Self::RecipientNotReady,
        Self::RecipientNoSendLine,
        Self::EgressPoolEmpty,
        Self::ProtectFailed,
        Self::SendFailed,
        Self::CrossShardPoolEmpty,
        Self::CrossShardQueueFull,
        Self::EventQueueFull,
        Self::DataChannelUnsupported,
        Self::CommandUnsupported,
        Self::CommandUnknownSession,
        Self::RtcpNotSent,
        Self::SimulcastUnknownLayer,
        Self::SimulcastNotSelected,
    ];

    fn slot(self) -> usize {
        // `ALL` lists every variant once, in declaration order.
        self as usize
    }
}

/// The counters of one shard (plain integers, owned by the shard thread).
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    pub(crate) datagrams_in: u64,
    pub(crate) datagrams_out: u64,
    pub(crate) batches: u64,
    pub(crate) stun_answered: u64,
    pub(crate) stun_early_kept: u64,
    pub(crate) stun_early_replayed: u64,
    pub(crate) dtls_in: u64,
    pub(crate) rtp_in: u64,
    pub(crate) rtcp_in: u64,
    pub(crate) rtp_relayed: u64,
    pub(crate) cross_shard_out: u64,
    pub(crate) cross_shard_in: u64,
    pub(crate) plis_sent: u64,
    pub(crate) rtcp_reports_sent: u64,
    pub(crate) retransmissions: u64,
    pub(crate) nacks_sent: u64,
    pub(crate) twcc_sent: u64,
    pub(crate) slow_path_events: u64,
    drops: DropCounts,
}

/// One counter per [`DropReason`] (`Default` by hand: arrays derive it only
/// up to 32 elements).
#[derive(Debug, Clone)]
struct DropCounts([u64; DropReason::ALL.len()]);

impl Default for DropCounts {
    fn default() -> Self {
        Self([0; DropReason::ALL.len()])
    }
}

impl Counters {
    pub(crate) fn drop(&mut self, reason: DropReason) {
        self.drops.0[reason.slot()] += 1;
    }
}

/// A snapshot of one shard's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardStats {
    /// The shard.
    pub shard: ShardId,
    /// PeerConnections on the shard.
    pub sessions: usize,
    /// Datagrams received.
    pub datagrams_in: u64,
    /// Datagrams handed to the kernel.
    pub datagrams_out: u64,
    /// Receive batches processed.
    pub batches: u64,
    /// STUN checks answered with a success response.
    pub stun_answered: u64,
    /// Checks for a local ufrag no PeerConnection had yet, kept for a while.
    pub stun_early_kept: u64,
    /// Of those, checks replayed when their PeerConnection was created.
    pub stun_early_replayed: u64,
    /// DTLS datagrams received.
    pub dtls_in: u64,
    /// SRTP packets decrypted.
    pub rtp_in: u64,
    /// SRTCP packets decrypted.
    pub rtcp_in: u64,
    /// RTP packets sent to recipients on this shard.
    pub rtp_relayed: u64,
    /// Plaintext packets handed to other shards.
    pub cross_shard_out: u64,
    /// Plaintext packets received from other shards.
    pub cross_shard_in: u64,
    /// PLIs sent.
    pub plis_sent: u64,
    /// SR/RR compounds sent.
    pub rtcp_reports_sent: u64,
    /// Packets resent for NACKs.
    pub retransmissions: u64,
    /// Generic NACKs sent to peers.
    pub nacks_sent: u64,
    /// Transport-wide CC feedback packets sent to peers.
    pub twcc_sent: u64,
    /// Packets copied to control for `incomingRtp`/`incomingRtcp`.
    pub slow_path_events: u64,
    /// Times the egress pool was empty.
    pub egress_pool_misses: u64,
    /// Drops by reason (every reason listed, zeros included).
    pub drops: Vec<(DropReason, u64)>,
    /// Recorders and their writer.
    pub recording: crate::record::RecordingStats,
}

impl ShardStats {
    pub(crate) fn new(shard: ShardId, sessions: usize, c: &Counters, pool_misses: u64) -> Self {
        Self {
            shard,
            sessions,
            datagrams_in: c.datagrams_in,
            datagrams_out: c.datagrams_out,
            batches: c.batches,
            stun_answered: c.stun_answered,
            stun_early_kept: c.stun_early_kept,
            stun_early_replayed: c.stun_early_replayed,
            dtls_in: c.dtls_in,
            rtp_in: c.rtp_in,
            rtcp_in: c.rtcp_in,
            rtp_relayed: c.rtp_relayed,
            cross_shard_out: c.cross_shard_out,
            cross_shard_in: c.cross_shard_in,
            plis_sent: c.plis_sent,
            rtcp_reports_sent: c.rtcp_reports_sent,
            retransmissions: c.retransmissions,
            nacks_sent: c.nacks_sent,
            twcc_sent: c.twcc_sent,
            slow_path_events: c.slow_path_events,
            egress_pool_misses: pool_misses,
            drops: DropReason::ALL
                .iter()
                .map(|&r| (r, c.drops.0[r.slot()]))
                .collect(),
            recording: crate::record::RecordingStats::default(),
        }
    }

    /// The count for one drop reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }

    /// All drops.
    pub fn dropped_total(&self) -> u64 {
        self.drops.iter().map(|(_, n)| n).sum()
    }
}
