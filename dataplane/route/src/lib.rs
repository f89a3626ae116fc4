//! The contract between jsfu's control plane and its dataplane shards.
//!
//! Control compiles what scripts say (`addRecipient`, `configureMedium`,
//! `setBitrate`, ...) into [`RouteUpdate`]s and sends them to the shard that
//! owns the source session. Shards answer with [`MediaEvent`]s. This crate is
//! only types: it never opens a socket, reads a clock, spawns a thread or pulls
//! in glommio or rquickjs, so that control compiles without the dataplane and
//! the dataplane without the script engine.
//!
//! Updates carry an [`Epoch`]: a shard applies an update only when its epoch
//! is newer than the last one it applied for that session, so replaying an
//! update is harmless (idempotent).
#![forbid(unsafe_code)]

use std::fmt;

/// The 32-bit id scripts know a plugin session by (never 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PluginSessionId(pub u32);

impl fmt::Display for PluginSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Which dataplane shard owns a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub u16);

/// A session slot inside a shard's slab; the generation makes a stale command
/// miss a reused slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKey {
    /// The slab slot.
    pub slot: u32,
    /// Bumped every time the slot is reused.
    pub generation: u32,
}

/// Monotonic version of a session's route state, set by control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Epoch(pub u64);

/// A kind of media as scripts name it in `configureMedium`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Medium {
    /// Audio m-lines.
    Audio,
    /// Video m-lines.
    Video,
    /// The data channel.
    Data,
}

impl Medium {
    /// Parses a script's medium name, case-insensitively; anything else is `None`.
    pub fn parse(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("audio") {
            Some(Self::Audio)
        } else if name.eq_ignore_ascii_case("video") {
            Some(Self::Video)
        } else if name.eq_ignore_ascii_case("data") {
            Some(Self::Data)
        } else {
            None
        }
    }

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Data => "data",
        }
    }
}

/// The six gates of `configureMedium`: what a session's peer may receive
/// (`receive`) and what it publishes to its recipients (`publish`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Gates {
    /// Media of each kind may be relayed *to* this session's peer.
    pub receive_audio: bool,
    /// See `receive_audio`.
    pub receive_video: bool,
    /// See `receive_audio`.
    pub receive_data: bool,
    /// Media of each kind *from* this session's peer goes to its recipients.
    pub publish_audio: bool,
    /// See `publish_audio`.
    pub publish_video: bool,
    /// See `publish_audio`.
    pub publish_data: bool,
}

impl Gates {
    /// Sets one gate. `incoming` is the script's `"in"` direction (receive gate).
    pub fn set(&mut self, medium: Medium, incoming: bool, enabled: bool) {
        let gate = match (medium, incoming) {
            (Medium::Audio, true) => &mut self.receive_audio,
            (Medium::Video, true) => &mut self.receive_video,
            (Medium::Data, true) => &mut self.receive_data,
            (Medium::Audio, false) => &mut self.publish_audio,
            (Medium::Video, false) => &mut self.publish_video,
            (Medium::Data, false) => &mut self.publish_data,
        };
        *gate = enabled;
    }

    /// Reads one gate.
    pub fn get(&self, medium: Medium, incoming: bool) -> bool {
        match (medium, incoming) {
            (Medium::Audio, true) => self.receive_audio,
            (Medium::Video, true) => self.receive_video,
            (Medium::Data, true) => self.receive_data,
            (Medium::Audio, false) => self.publish_audio,
            (Medium::Video, false) => self.publish_video,
            (Medium::Data, false) => self.publish_data,
        }
    }
}

/// A simulcast target for what a session receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimulcastTarget {
    /// 0 low, 1 medium, 2 high.
    pub substream: u8,
    /// 0, 1 or 2.
    pub temporal: u8,
}

impl Default for SimulcastTarget {
    fn default() -> Self {
        Self {
            substream: 2,
            temporal: 2,
        }
    }
}

/// The compiled route state of one source session, as control last computed it.
/// A shard replaces its copy wholesale when the epoch is newer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionRoute {
    /// Version of this state.
    pub epoch: Epoch,
    /// The gates of this session.
    pub gates: Gates,
    /// Sessions that receive this session's media, in the order they were added.
    pub recipients: Vec<PluginSessionId>,
    /// Bitrate cap in bit/s for what this session's peer sends (0 = none).
    pub bitrate_cap: u32,
    /// Seconds between periodic PLIs to this session's peer (0 = off).
    pub pli_freq_secs: u16,
    /// The simulcast target for what this session receives.
    pub simulcast_target: SimulcastTarget,
}

/// What control tells a shard about one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteUpdate {
    /// Replace the route state of `session` if `route.epoch` is newer.
    Route {
        /// The source session.
        session: PluginSessionId,
        /// Its new compiled state.
        route: SessionRoute,
    },
    /// Ask the peer of `session` for a keyframe now, and restart its PLI clock.
    SendPli {
        /// Whose peer to ask.
        session: PluginSessionId,
    },
    /// Forget everything about `session` (after `destroySession`).
    Remove {
        /// The session that went away.
        session: PluginSessionId,
    },
}

impl RouteUpdate {
    /// The session this update is about.
    pub fn session(&self) -> PluginSessionId {
        match self {
            Self::Route { session, .. } | Self::SendPli { session } | Self::Remove { session } => {
                *session
            }
        }
    }
}

/// One-off media actions a script asks for, executed by the shard that owns
/// the session (not part of the compiled route state).
#[derive(Debug)]
#[non_exhaustive]
pub enum ShardCommand {
    /// `relayRtp`: send an RTP packet to the peer of `session`.
    RelayRtp {
        /// Whose peer.
        session: PluginSessionId,
        /// On a video m-line (else audio).
        video: bool,
        /// The plaintext RTP packet.
        packet: Vec<u8>,
    },
    /// `relayRtcp`: send RTCP to the peer of `session` (filtered by the shard).
    RelayRtcp {
        /// Whose peer.
        session: PluginSessionId,
        /// About a video m-line (else audio).
        video: bool,
        /// The plaintext RTCP compound.
        packet: Vec<u8>,
    },
    /// `relayTextData` / `relayBinaryData`: send on the session's data channel.
    RelayData {
        /// Whose peer.
        session: PluginSessionId,
        /// PPID 51 (text) or 53 (binary).
        text: bool,
        /// Channel label (`JanusDataChannel` by default).
        label: String,
        /// Channel subprotocol (may be empty).
        protocol: String,
        /// The message bytes.
        data: Vec<u8>,
    },
    /// `startRecording`: record what `session`'s peer sends of `medium` into
    /// `file` (already created by control, so that file errors reach the
    /// script synchronously). The shard writes the MJR header on the first
    /// packet, as Janus does.
    StartRecording {
        /// Whose media.
        session: PluginSessionId,
        /// Which slot (audio, video or data).
        medium: Medium,
        /// Codec name as the script gave it (lower case), e.g. `opus`, `vp8`, `text`.
        codec: String,
        /// Codec parameters from `codec/fmtp=...` (the header's `f`).
        fmtp: Option<String>,
        /// The file being written.
        file: std::fs::File,
        /// Where the file is now.
        path: std::path::PathBuf,
        /// Where to rename it when it is closed (`None`: it already has its final name).
        final_path: Option<std::path::PathBuf>,
        /// The session is end-to-end encrypted (header `e: true`).
        encrypted: bool,
    },
    /// `stopRecording`: close and release a recorder (renaming a temporary file).
    StopRecording {
        /// Whose media.
        session: PluginSessionId,
        /// Which slot.
        medium: Medium,
    },
    /// `closePc`: tear the session's PeerConnection down.
    ClosePc {
        /// Whose PC.
        session: PluginSessionId,
        /// Why (reported in the client's `hangup` event).
        reason: HangupReason,
    },
    /// Create the PeerConnection of a session on this shard (after the SDP
    /// answer exists). The shard answers ICE checks for `local_ufrag` from
    /// then on, runs DTLS once a pair is nominated and reports
    /// [`MediaEvent::WebrtcUp`]. A `CreatePc` for a session that already has a
    /// PC on this shard replaces it (the old one is closed silently).
    CreatePc(Box<PcConfig>),
    /// Renegotiation of an existing PC: new m-line descriptions, remote
    /// credentials (an ICE restart when they differ) and script hooks. The
    /// DTLS association and SRTP keys are kept. Ignored when the session has
    /// no PC on this shard.
    UpdatePc(Box<PcConfig>),
    /// Drop a session's PC without a `hangup` (the handle went away; control
    /// already knows). Its route state stays until [`RouteUpdate::Remove`].
    RemovePc {
        /// Whose PC.
        session: PluginSessionId,
    },
}

/// The server's DTLS role in a PeerConnection (media.md §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtlsRole {
    /// The server sends the ClientHello (`a=setup:active` in its SDP).
    Client,
    /// The server waits for the ClientHello (`a=setup:passive`).
    Server,
}

/// A certificate fingerprint from an SDP `a=fingerprint` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// The hash function as written in the SDP, e.g. `sha-256` (compared
    /// case-insensitively).
    pub algorithm: String,
    /// Hex byte pairs separated by colons, as written in the SDP (compared
    /// case-insensitively).
    pub value: String,
}

/// One payload type negotiated on an m-line (`a=rtpmap`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadType {
    /// The payload type number (0..=127).
    pub pt: u8,
    /// The codec name, lower case (`opus`, `vp8`, `h264`, ...).
    pub codec: String,
    /// The RTP clock rate in Hz.
    pub clock_rate: u32,
}

/// An RFC 4588 retransmission payload type and the payload type it repairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtxMapping {
    /// The `rtx` payload type.
    pub rtx_pt: u8,
    /// Its `apt=` (the original payload type).
    pub apt: u8,
}

/// RTP header extension ids negotiated on an m-line (`a=extmap`), 1..=255;
/// `None` when not negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeaderExtensionIds {
    /// `urn:ietf:params:rtp-hdrext:sdes:mid`.
    pub mid: Option<u8>,
    /// `urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id`.
    pub rid: Option<u8>,
    /// `urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id`.
    pub repaired_rid: Option<u8>,
    /// Transport-wide congestion control sequence numbers.
    pub transport_cc: Option<u8>,
    /// `abs-send-time`.
    pub abs_send_time: Option<u8>,
    /// `urn:ietf:params:rtp-hdrext:ssrc-audio-level`.
    pub audio_level: Option<u8>,
    /// `urn:3gpp:video-orientation` (forwarded from publisher to recipients).
    pub video_orientation: Option<u8>,
    /// `http://www.webrtc.org/experiments/rtp-hdrext/playout-delay` (forwarded).
    pub playout_delay: Option<u8>,
    /// `http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time` (forwarded).
    pub abs_capture_time: Option<u8>,
    /// The AV1 dependency descriptor (`https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension`):
    /// temporal-layer filtering of simulcast AV1 (media.md §7.3).
    pub dependency_descriptor: Option<u8>,
}

/// One negotiated audio or video m-line of a PeerConnection (media.md §1).
/// Data m-lines are not listed here; see [`PcConfig::data_channel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// The m-line index (`mindex`).
    pub index: u16,
    /// The `a=mid` value.
    pub mid: String,
    /// [`Medium::Audio`] or [`Medium::Video`].
    pub kind: Medium,
    /// The server may send on this m-line (negotiated direction).
    pub send: bool,
    /// The server receives on this m-line (negotiated direction).
    pub recv: bool,
    /// Negotiated payload types; the first one is the codec in use.
    pub payload_types: Vec<PayloadType>,
    /// RTX payload types (video, RFC 4588), empty when not negotiated.
    pub rtx: Vec<RtxMapping>,
    /// The SSRC the server sends this m-line's media with.
    pub local_ssrc: u32,
    /// The SSRC of the server's retransmissions, when RTX is negotiated.
    pub local_rtx_ssrc: Option<u32>,
    /// The peer's media SSRCs when signalled (`a=ssrc`, `a=ssrc-group:SIM`
    /// lowest layer first); learned from the first packets otherwise.
    pub remote_ssrcs: Vec<u32>,
    /// The peer's RTX SSRCs when signalled (`a=ssrc-group:FID`), in the
    /// order of `remote_ssrcs`.
    pub remote_rtx_ssrcs: Vec<u32>,
    /// The peer's simulcast rids, lowest layer first (empty without rid
    /// simulcast).
    pub rids: Vec<String>,
    /// Negotiated header extension ids.
    pub extensions: HeaderExtensionIds,
    /// Generic NACK (`a=rtcp-fb:* nack`) is negotiated.
    pub nack: bool,
}

impl MediaDescription {
    /// Whether this is a video m-line.
    pub fn is_video(&self) -> bool {
        self.kind == Medium::Video
    }
}

/// Everything a shard needs to run one PeerConnection: sent by control in
/// [`ShardCommand::CreatePc`] to the shard whose address the session's ICE
/// candidate advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcConfig {
    /// The plugin session the PC belongs to.
    pub session: PluginSessionId,
    /// The server's `a=ice-ufrag` (4..=256 ice-chars, unique per shard).
    pub local_ufrag: String,
    /// The server's `a=ice-pwd` (22..=256 ice-chars).
    pub local_pwd: String,
    /// The peer's `a=ice-ufrag`.
    pub remote_ufrag: String,
    /// The peer's `a=ice-pwd`.
    pub remote_pwd: String,
    /// The server's DTLS role.
    pub dtls_role: DtlsRole,
    /// The fingerprint the peer's certificate must match.
    pub remote_fingerprint: Fingerprint,
    /// Audio and video m-lines, in m-line order.
    pub media: Vec<MediaDescription>,
    /// An SCTP data channel m-line was negotiated.
    pub data_channel: bool,
    /// The script defines `incomingRtp`: plaintext RTP goes to control as
    /// [`MediaEvent::IncomingRtp`] instead of the native relay (slow path).
    pub script_incoming_rtp: bool,
    /// The script defines `incomingRtcp`: plaintext RTCP goes to control as
    /// [`MediaEvent::IncomingRtcp`] instead of the native handling.
    pub script_incoming_rtcp: bool,
    /// The script defines `incomingTextData` (or the legacy `incomingData`):
    /// text messages go to control as [`MediaEvent::IncomingData`] instead
    /// of the native data relay.
    pub script_incoming_text_data: bool,
    /// The script defines `incomingBinaryData`: binary messages go to control
    /// as [`MediaEvent::IncomingData`] instead of the native data relay.
    pub script_incoming_binary_data: bool,
}

/// Why a PeerConnection went down, as Janus words it in `hangup` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HangupReason {
    /// The client sent `hangup`.
    JanusApi,
    /// The script called `closePc`.
    ClosePc,
    /// ICE failed.
    IceFailed,
    /// The peer closed DTLS or DTLS failed.
    DtlsAlert,
    /// No DTLS handshake in time.
    DtlsTimeout,
    /// Admin `hangup_webrtc`.
    AdminApi,
}

impl HangupReason {
    /// The text of the `reason` member of the `hangup` event.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::JanusApi => "Janus API",
            Self::ClosePc => "Close PC",
            Self::IceFailed => "ICE failed",
            Self::DtlsAlert => "DTLS alert",
            Self::DtlsTimeout => "DTLS timeout",
            Self::AdminApi => "Admin API",
        }
    }
}

/// What shards report back to control. Lifecycle events are never dropped;
/// stats may be.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MediaEvent {
    /// ICE connected and DTLS-SRTP keys are set: the script's `setupMedia`.
    WebrtcUp {
        /// The session whose PC came up.
        session: PluginSessionId,
    },
    /// The PC went down: the script's `hangupMedia`.
    Hangup {
        /// The session whose PC went down.
        session: PluginSessionId,
        /// Why.
        reason: HangupReason,
    },
    /// Media of a kind started or stopped arriving on an m-line.
    Receiving {
        /// The session.
        session: PluginSessionId,
        /// The m-line's mid.
        mid_index: u16,
        /// Video (else audio).
        video: bool,
        /// Started (else stopped).
        receiving: bool,
    },
    /// Packets were lost in the last second.
    SlowLink {
        /// The session.
        session: PluginSessionId,
        /// Lost on the way to the peer (else from it).
        uplink: bool,
        /// Video (else audio).
        video: bool,
        /// Packets lost in the last second.
        lost: u32,
    },
    /// ICE selected (or changed) the peer's transport address.
    IcePairSelected {
        /// The session.
        session: PluginSessionId,
        /// Where media and DTLS now go.
        remote: std::net::SocketAddr,
    },
    /// The DTLS association of a PC changed state.
    DtlsState {
        /// The session.
        session: PluginSessionId,
        /// The new state.
        state: DtlsState,
    },
    /// Plaintext RTP for a script that defines `incomingRtp` (slow path: one
    /// allocation per packet, counted by the shard).
    IncomingRtp {
        /// The source session.
        session: PluginSessionId,
        /// From a video m-line (else audio).
        video: bool,
        /// The RTP packet.
        bytes: Vec<u8>,
    },
    /// Plaintext RTCP for a script that defines `incomingRtcp` (slow path).
    IncomingRtcp {
        /// The source session.
        session: PluginSessionId,
        /// About a video m-line (else audio).
        video: bool,
        /// The RTCP compound.
        bytes: Vec<u8>,
    },
    /// The simulcast substream relayed to `session` changed (media.md §7.4):
    /// the script's `substreamChanged(session, substream)`.
    SubstreamChanged {
        /// The receiving session.
        session: PluginSessionId,
        /// 0 (low), 1 or 2 (high).
        substream: u8,
    },
    /// The temporal layer relayed to `session` changed: the script's
    /// `temporalLayerChanged(session, layer)`.
    TemporalLayerChanged {
        /// The receiving session.
        session: PluginSessionId,
        /// 0, 1 or 2.
        layer: u8,
    },
    /// A data-channel message for a script that defines `incomingTextData`
    /// / `incomingBinaryData` (may be dropped when control is slow; counted).
    IncomingData {
        /// The session whose peer sent it.
        session: PluginSessionId,
        /// PPID 51/56 (else binary, 53/57).
        text: bool,
        /// The channel's label.
        label: String,
        /// The channel's subprotocol (empty when none).
        protocol: String,
        /// The message.
        data: Vec<u8>,
    },
    /// The session's data channel is ready: the SCTP association came up, or
    /// its send buffers drained (the script's `dataReady`; never dropped).
    DataReady {
        /// The session.
        session: PluginSessionId,
    },
    /// Periodic per-session counters (may be dropped when control is slow).
    Stats {
        /// The session.
        session: PluginSessionId,
        /// Its counters since the PC was created.
        stats: SessionStats,
    },
}

/// States of a PC's DTLS association, as reported in [`MediaEvent::DtlsState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtlsState {
    /// The handshake started.
    Connecting,
    /// The handshake completed and the SRTP keys are installed.
    Connected,
    /// The peer closed the association (close_notify).
    Closed,
    /// The handshake or the association failed (alert, fingerprint mismatch,
    /// timeout).
    Failed,
}

/// Counters of one session, cumulative since its PC was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionStats {
    /// RTP packets received from the peer and decrypted.
    pub rtp_packets_in: u64,
    /// Bytes of those packets (plaintext).
    pub rtp_bytes_in: u64,
    /// RTP packets sent to the peer.
    pub rtp_packets_out: u64,
    /// Bytes of those packets (plaintext).
    pub rtp_bytes_out: u64,
    /// RTCP compounds received from the peer.
    pub rtcp_packets_in: u64,
    /// RTCP compounds sent to the peer.
    pub rtcp_packets_out: u64,
    /// NACKed packets retransmitted to the peer.
    pub retransmissions: u64,
    /// PLIs sent to the peer.
    pub plis_sent: u64,
    /// Datagrams from or to this session that were dropped (any reason).
    pub dropped: u64,
    /// RTP per kind: `[audio, video]`.
    pub kinds: [KindStats; 2],
    /// Data-channel messages (the SCTP association's counters).
    pub data: DataStats,
}

/// RTP counters of one kind (audio or video) of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KindStats {
    /// RTP packets received from the peer and decrypted.
    pub packets_in: u64,
    /// Their plaintext bytes.
    pub bytes_in: u64,
    /// RTP packets sent to the peer.
    pub packets_out: u64,
    /// Their plaintext bytes.
    pub bytes_out: u64,
}

/// Data-channel counters of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DataStats {
    /// An SCTP association exists (was set up) for the PC.
    pub association: bool,
    /// User messages received.
    pub messages_in: u64,
    /// Their bytes.
    pub bytes_in: u64,
    /// User messages sent.
    pub messages_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
    /// Messages dropped either way (queue full, oversized, unknown stream,
    /// other).
    pub dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medium_names_are_case_insensitive() {
        assert_eq!(Medium::parse("AuDiO"), Some(Medium::Audio));
        assert_eq!(Medium::parse("data"), Some(Medium::Data));
        assert_eq!(Medium::parse("screen"), None);
    }

    #[test]
    fn gates_set_and_get_are_independent() {
        let mut g = Gates::default();
        g.set(Medium::Video, true, true);
        assert!(g.get(Medium::Video, true));
        assert!(!g.get(Medium::Video, false));
        assert!(!g.get(Medium::Audio, true));
        g.set(Medium::Video, true, false);
        assert_eq!(g, Gates::default());
    }
}
