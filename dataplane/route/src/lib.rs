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
