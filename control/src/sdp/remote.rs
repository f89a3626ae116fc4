//! What the core learns from a client offer or answer (media.md §2.1, §3.3,
//! §4.1, §7.1, §8).

use super::SdpError;
use super::syntax::{
    Attribute, Direction, Media, MediaKind, Sdp, effective_port, parse_payload_type, parse_rtpmap,
};

/// Header extension URIs the core knows (media.md §2.1).
pub mod uri {
    /// RFC 9143 mid.
    pub const MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
    /// RFC 8852 RtpStreamId.
    pub const RID: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
    /// RFC 8852 RepairedRtpStreamId.
    pub const REPAIRED_RID: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";
    /// RFC 6464 audio level.
    pub const AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
    /// 3GPP coordination of video orientation.
    pub const VIDEO_ORIENTATION: &str = "urn:3gpp:video-orientation";
    /// WebRTC playout delay.
    pub const PLAYOUT_DELAY: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";
    /// Absolute send time.
    pub const ABS_SEND_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
    /// Absolute capture time.
    pub const ABS_CAPTURE_TIME: &str =
        "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time";
    /// Video layers allocation.
    pub const VIDEO_LAYERS_ALLOCATION: &str =
        "http://www.webrtc.org/experiments/rtp-hdrext/video-layers-allocation00";
    /// Transport-wide congestion control sequence numbers.
    pub const TRANSPORT_CC: &str =
        "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
    /// AV1 dependency descriptor.
    pub const DEPENDENCY_DESCRIPTOR: &str =
        "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";
    /// RFC 6904 encrypted header extensions (never negotiated: stripped).
    pub const ENCRYPT: &str = "urn:ietf:params:rtp-hdrext:encrypt";
}

/// The ids of the header extensions the core knows, as negotiated in one
/// m-line (or, merged, in a whole PeerConnection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtensionIds {
    /// `urn:ietf:params:rtp-hdrext:sdes:mid`
    pub mid: Option<u8>,
    /// `urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id`
    pub rid: Option<u8>,
    /// `urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id`
    pub repaired_rid: Option<u8>,
    /// `urn:ietf:params:rtp-hdrext:ssrc-audio-level`
    pub audio_level: Option<u8>,
    /// `urn:3gpp:video-orientation`
    pub video_orientation: Option<u8>,
    /// `.../playout-delay`
    pub playout_delay: Option<u8>,
    /// `.../abs-send-time`
    pub abs_send_time: Option<u8>,
    /// `.../abs-capture-time`
    pub abs_capture_time: Option<u8>,
    /// `.../video-layers-allocation00`
    pub video_layers_allocation: Option<u8>,
    /// transport-wide CC
    pub transport_cc: Option<u8>,
    /// AV1 dependency descriptor
    pub dependency_descriptor: Option<u8>,
}

impl ExtensionIds {
    /// The known extensions among the `extmap` attributes of `m`.
    pub fn from_media(m: &Media) -> Self {
        let mut ids = Self::default();
        for a in m.attributes.iter().filter(|a| a.is("extmap")) {
            if let Some((id, uri)) = parse_extmap(a.value_str()) {
                if let Some(slot) = ids.slot_mut(uri) {
                    slot.get_or_insert(id);
                }
            }
        }
        ids
    }

    fn slot_mut(&mut self, uri: &str) -> Option<&mut Option<u8>> {
        Some(match uri {
            uri::MID => &mut self.mid,
            uri::RID => &mut self.rid,
            uri::REPAIRED_RID => &mut self.repaired_rid,
            uri::AUDIO_LEVEL => &mut self.audio_level,
            uri::VIDEO_ORIENTATION => &mut self.video_orientation,
            uri::PLAYOUT_DELAY => &mut self.playout_delay,
            uri::ABS_SEND_TIME => &mut self.abs_send_time,
            uri::ABS_CAPTURE_TIME => &mut self.abs_capture_time,
            uri::VIDEO_LAYERS_ALLOCATION => &mut self.video_layers_allocation,
            uri::TRANSPORT_CC => &mut self.transport_cc,
            uri::DEPENDENCY_DESCRIPTOR => &mut self.dependency_descriptor,
            _ => return None,
        })
    }

    /// Fills every id missing here from `other` (PC-wide view: first m-line wins).
    pub fn or(self, other: Self) -> Self {
        Self {
            mid: self.mid.or(other.mid),
            rid: self.rid.or(other.rid),
            repaired_rid: self.repaired_rid.or(other.repaired_rid),
            audio_level: self.audio_level.or(other.audio_level),
            video_orientation: self.video_orientation.or(other.video_orientation),
            playout_delay: self.playout_delay.or(other.playout_delay),
            abs_send_time: self.abs_send_time.or(other.abs_send_time),
            abs_capture_time: self.abs_capture_time.or(other.abs_capture_time),
            video_layers_allocation: self
                .video_layers_allocation
                .or(other.video_layers_allocation),
            transport_cc: self.transport_cc.or(other.transport_cc),
            dependency_descriptor: self.dependency_descriptor.or(other.dependency_descriptor),
        }
    }
}

/// `<id>[/<direction>] <uri> [<attributes>]` → `(id, uri)`; ids 1..=255.
pub(crate) fn parse_extmap(value: &str) -> Option<(u8, &str)> {
    let mut tokens = value.split_ascii_whitespace();
    let id = tokens.next()?.split('/').next()?;
    let id = id.parse::<u8>().ok().filter(|id| *id > 0)?;
    Some((id, tokens.next()?))
}

/// The order in which `a=rid` lines list simulcast layers (`jsep.rid_order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RidOrder {
    /// High quality first (`"hml"`, the default).
    #[default]
    HighToLow,
    /// Low quality first (`"lmh"`).
    LowToHigh,
}

impl RidOrder {
    /// From `jsep.rid_order`: `"lmh"` (any case) is low-first, anything else
    /// (including absent or invalid) high-first.
    pub fn from_jsep(value: Option<&str>) -> Self {
        match value {
            Some(v) if v.eq_ignore_ascii_case("lmh") => Self::LowToHigh,
            _ => Self::HighToLow,
        }
    }
}

/// A DTLS `a=setup` role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupRole {
    /// `active`: the writer is the DTLS client.
    Active,
    /// `passive`: the writer is the DTLS server.
    Passive,
    /// `actpass`: the writer lets the answerer choose.
    Actpass,
}

impl SetupRole {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Passive => "passive",
            Self::Actpass => "actpass",
        }
    }

    /// Parses an `a=setup` value (case-insensitive); `holdconn` and unknown
    /// values give `None`.
    pub fn parse(value: &str) -> Option<Self> {
        [Self::Active, Self::Passive, Self::Actpass]
            .into_iter()
            .find(|r| value.eq_ignore_ascii_case(r.as_str()))
    }
}

/// The server's DTLS role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsRole {
    /// The server sends the ClientHello.
    Client,
    /// The server waits for the ClientHello.
    Server,
}

/// The hash function of a remote `a=fingerprint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashFunction {
    /// `sha-256`
    Sha256,
    /// `sha-1`
    Sha1,
}

/// A remote certificate fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// `sha-256` or `sha-1`.
    pub hash: HashFunction,
    /// The hex byte pairs as written (compared case-insensitively).
    pub value: String,
}

impl Fingerprint {
    /// Parses an `a=fingerprint` value; other hash functions give `None`.
    pub fn parse(value: &str) -> Option<Self> {
        let (hash, rest) = value.split_once(' ')?;
        let hash = if hash.eq_ignore_ascii_case("sha-256") {
            HashFunction::Sha256
        } else if hash.eq_ignore_ascii_case("sha-1") {
            HashFunction::Sha1
        } else {
            return None;
        };
        let value = rest.trim();
        (!value.is_empty()).then(|| Self {
            hash,
            value: value.to_owned(),
        })
    }
}

/// A remote ICE candidate (RFC 8839 §5.1 grammar).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Foundation.
    pub foundation: String,
    /// Component id (1 = RTP; RTCP is multiplexed).
    pub component: u32,
    /// `udp` or `tcp` (lower-cased).
    pub transport: String,
    /// Priority.
    pub priority: u32,
    /// Address or `.local` mDNS name.
    pub address: String,
    /// Port.
    pub port: u16,
    /// `host`, `srflx`, `prflx` or `relay`.
    pub typ: String,
    /// Related address.
    pub raddr: Option<String>,
    /// Related port.
    pub rport: Option<u16>,
    /// `active`, `passive` or `so` for TCP candidates.
    pub tcptype: Option<String>,
}

impl Candidate {
    /// Parses a candidate attribute value, with or without the leading
    /// `candidate:` (also accepts a leading `a=`). `None` when malformed.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let text = text.strip_prefix("a=").unwrap_or(text);
        let text = text.strip_prefix("candidate:").unwrap_or(text);
        let mut t = text.split_ascii_whitespace();
        let foundation = t.next()?.to_owned();
        let component = t.next()?.parse().ok()?;
        let transport = t.next()?.to_ascii_lowercase();
        let priority = t.next()?.parse().ok()?;
        let address = t.next()?.to_owned();
        let port = t.next()?.parse().ok()?;
        if t.next()? != "typ" {
            return None;
        }
        let typ = t.next()?.to_owned();
        let mut candidate = Self {
            foundation,
            component,
            transport,
            priority,
            address,
            port,
            typ,
            raddr: None,
            rport: None,
            tcptype: None,
        };
        while let Some(key) = t.next() {
            let Some(value) = t.next() else { break };
            match key {
                "raddr" => candidate.raddr = Some(value.to_owned()),
                "rport" => candidate.rport = value.parse().ok(),
                "tcptype" => candidate.tcptype = Some(value.to_owned()),
                _ => {}
            }
        }
        Some(candidate)
    }
}

/// What the core learns about one m-line of a client SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    /// m-line index.
    pub mindex: usize,
    /// Media type.
    pub kind: MediaKind,
    /// The port the core uses (see [`Sdp::effective_port`]); 0 = rejected.
    pub port: u16,
    /// The transport protocol.
    pub proto: String,
    /// `a=mid`.
    pub mid: Option<String>,
    /// The client's direction attribute.
    pub direction: Direction,
    /// The server sends on this m-line (client `sendrecv`/`recvonly`, active).
    pub send: bool,
    /// The server receives on this m-line (client `sendrecv`/`sendonly`, active).
    pub recv: bool,
    /// The payload types of the m-line, in order.
    pub payload_types: Vec<u8>,
    /// Clock rates from `rtpmap` (RTX excluded), in order.
    pub clock_rates: Vec<(u8, u32)>,
    /// Opus RED (`red/48000/2`) payload type.
    pub opus_red_pt: Option<u8>,
    /// An `rtcp-fb` with `nack` was offered for some payload type.
    pub nack: bool,
    /// RFC 4588 mapping `(payload type, rtx payload type)` from `fmtp apt=`.
    pub rtx_payload_types: Vec<(u8, u8)>,
    /// `a=msid:<stream> <track>`.
    pub msid: Option<(String, String)>,
    /// Simulcast rids by layer (0 = lowest quality).
    pub rids: [Option<String>; 3],
    /// The rids in the order of the `a=rid` lines.
    pub rids_in_order: Vec<String>,
    /// Layers marked paused (`~rid`) in `a=simulcast`, by layer.
    pub paused_rids: [bool; 3],
    /// Firefox's legacy `a=simulcast: send rid=...` syntax.
    pub legacy_simulcast: bool,
    /// Peer SSRCs by layer (0 = unknown).
    pub ssrcs: [u32; 3],
    /// Peer RTX SSRCs by layer (0 = unknown).
    pub rtx_ssrcs: [u32; 3],
    /// With rid simulcast: the first `a=ssrc` seen (fallback when the rid
    /// extension is not negotiated).
    pub fallback_ssrc: Option<u32>,
    /// Known header extension ids in this m-line.
    pub extensions: ExtensionIds,
    /// The m-line is an SCTP data channel (active, DTLS/SCTP protocol).
    pub data_channel: bool,
}

impl RemoteMedia {
    /// The clock rate of `pt`, if an `rtpmap` gave one.
    pub fn clock_rate(&self, pt: u8) -> Option<u32> {
        self.clock_rates
            .iter()
            .find(|(p, _)| *p == pt)
            .map(|(_, c)| *c)
    }

    /// The RTX payload type mapped to `pt`.
    pub fn rtx_for(&self, pt: u8) -> Option<u8> {
        self.rtx_payload_types
            .iter()
            .find(|(p, _)| *p == pt)
            .map(|(_, r)| *r)
    }

    /// Rid-based simulcast (at least one rid).
    pub fn has_rids(&self) -> bool {
        self.rids[0].is_some()
    }

    /// SSRC-based simulcast (an `ssrc-group:SIM` with at least two SSRCs).
    pub fn has_ssrc_simulcast(&self) -> bool {
        self.ssrcs[1] != 0
    }
}

/// Which data channel m-line syntax the client used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataChannelInfo {
    /// m-line index.
    pub mindex: usize,
    /// Legacy `DTLS/SCTP` with `a=sctpmap` (else `UDP/DTLS/SCTP` with `a=sctp-port`).
    pub legacy: bool,
    /// The client's SCTP port (`a=sctp-port` or the `a=sctpmap` number), if given.
    pub sctp_port: Option<u16>,
}

/// Everything the core learns from a client offer or answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteInfo {
    /// Remote ICE username fragment.
    pub ice_ufrag: String,
    /// Remote ICE password.
    pub ice_pwd: String,
    /// Remote DTLS certificate fingerprint.
    pub fingerprint: Fingerprint,
    /// The client's `a=setup` (session level first, else the first m-line
    /// that has one); `None` when absent or `holdconn`.
    pub setup: Option<SetupRole>,
    /// `a=ice-options:trickle` was present.
    pub trickle: bool,
    /// `a=ice-lite` was present at session level.
    pub ice_lite: bool,
    /// Candidates of the first two m-lines (unparsable ones skipped).
    pub candidates: Vec<Candidate>,
    /// An `a=end-of-candidates` was present.
    pub end_of_candidates: bool,
    /// The protocol of the first audio/video m-line (reused in answers).
    pub rtp_profile: Option<String>,
    /// The first `a=mid` (the "bundle mid" used for trickle).
    pub bundle_mid: Option<String>,
    /// Some m-line had an `fmtp apt=` mapping (RFC 4588 is on for the PC).
    pub rtx: bool,
    /// The first active SCTP data channel m-line.
    pub data_channel: Option<DataChannelInfo>,
    /// Per m-line, by index.
    pub media: Vec<RemoteMedia>,
    /// The rid order used to map `a=rid` lines to layers.
    pub rid_order: RidOrder,
}

impl RemoteInfo {
    /// The server's DTLS role (media.md §4.1): client `active` → server,
    /// anything else (`actpass`, `passive`, absent) → client.
    pub fn dtls_role(&self) -> DtlsRole {
        match self.setup {
            Some(SetupRole::Active) => DtlsRole::Server,
            _ => DtlsRole::Client,
        }
    }

    /// A renegotiation changed the ICE credentials (ICE restart).
    pub fn ice_restart_from(&self, previous: &Self) -> bool {
        self.ice_ufrag != previous.ice_ufrag || self.ice_pwd != previous.ice_pwd
    }

    /// PC-wide extension ids: for each extension, the id of the first m-line
    /// that negotiates it.
    pub fn extensions(&self) -> ExtensionIds {
        self.media
            .iter()
            .fold(ExtensionIds::default(), |acc, m| acc.or(m.extensions))
    }

    /// m-line `index`.
    pub fn medium(&self, index: usize) -> Option<&RemoteMedia> {
        self.media.get(index)
    }
}

/// The error every failed check of [`check_remote`] reports.
pub const PROCESSING_ERROR: &str = "Error processing SDP";

/// Learns what the core needs from a parsed client offer or answer
/// (media.md §2.1). Fails with [`PROCESSING_ERROR`] when the first m-line has
/// no ICE credentials or no `sha-256`/`sha-1` fingerprint (at media or session
/// level), or an `a=msid` lacks its track id.
pub fn check_remote(sdp: &Sdp, rid_order: RidOrder) -> Result<RemoteInfo, SdpError> {
    let fail = || SdpError(PROCESSING_ERROR.to_owned());
    let mut ufrag = None;
    let mut pwd = None;
    let mut fingerprint = None;
    let mut setup = None;
    let mut setup_found = false;
    let mut trickle = false;
    let mut ice_lite = false;
    let mut end_of_candidates = false;
    for a in &sdp.attributes {
        let value = a.value.as_deref();
        if a.is("ice-ufrag") {
            ufrag = ufrag.or(value);
        } else if a.is("ice-pwd") {
            pwd = pwd.or(value);
        } else if a.is("fingerprint") {
            fingerprint = fingerprint.or_else(|| value.and_then(Fingerprint::parse));
        } else if a.is("setup") && !setup_found {
            setup_found = true;
            setup = value.and_then(SetupRole::parse);
        } else if a.is("ice-options") {
            trickle |= has_trickle(value);
        } else if a.is("ice-lite") {
            ice_lite = true;
        } else if a.is("end-of-candidates") {
            end_of_candidates = true;
        }
    }
    let mut candidates = Vec::new();
    let mut media = Vec::with_capacity(sdp.media.len());
    let mut rtp_profile = None;
    let mut bundle_mid: Option<String> = None;
    let mut data_channel = None;
    for (index, m) in sdp.media.iter().enumerate() {
        for a in &m.attributes {
            let value = a.value.as_deref();
            if a.is("setup") && !setup_found {
                setup_found = true;
                setup = value.and_then(SetupRole::parse);
            } else if a.is("ice-options") {
                trickle |= has_trickle(value);
            } else if a.is("end-of-candidates") {
                end_of_candidates = true;
            } else if a.is("candidate") && index <= 1 {
                candidates.extend(value.and_then(Candidate::parse));
            } else if index == 0 {
                // Media-level credentials of the first m-line override session ones.
                if a.is("ice-ufrag") && value.is_some() {
                    ufrag = value;
                } else if a.is("ice-pwd") && value.is_some() {
                    pwd = value;
                } else if a.is("fingerprint") {
                    if let Some(fp) = value.and_then(Fingerprint::parse) {
                        fingerprint = Some(fp);
                    }
                }
            }
        }
        if index == 0 && (ufrag.is_none() || pwd.is_none() || fingerprint.is_none()) {
            return Err(fail());
        }
        let learned = learn_media(index, m, rid_order).ok_or_else(fail)?;
        if rtp_profile.is_none() && m.kind.is_rtp() {
            rtp_profile = Some(m.proto.clone());
        }
        if bundle_mid.is_none() {
            bundle_mid.clone_from(&learned.mid);
        }
        if data_channel.is_none() && learned.data_channel {
            data_channel = Some(DataChannelInfo {
                mindex: index,
                legacy: !m.proto.eq_ignore_ascii_case("UDP/DTLS/SCTP"),
                sctp_port: sctp_port(m),
            });
        }
        media.push(learned);
    }
    let (Some(ufrag), Some(pwd), Some(fingerprint)) = (ufrag, pwd, fingerprint) else {
        return Err(fail());
    };
    let rtx = media.iter().any(|m| !m.rtx_payload_types.is_empty());
    Ok(RemoteInfo {
        ice_ufrag: ufrag.to_owned(),
        ice_pwd: pwd.to_owned(),
        fingerprint,
        setup,
        trickle,
        ice_lite,
        candidates,
        end_of_candidates,
        rtp_profile,
        bundle_mid,
        rtx,
        data_channel,
        media,
        rid_order,
    })
}

fn has_trickle(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        v.split_ascii_whitespace()
            .any(|o| o.eq_ignore_ascii_case("trickle"))
    })
}

fn sctp_port(m: &Media) -> Option<u16> {
    if let Some(port) = m.attribute_value("sctp-port") {
        return port.trim().parse().ok();
    }
    m.attribute_value("sctpmap")?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `None` when an `a=msid` is malformed (fewer than two tokens).
fn learn_media(index: usize, m: &Media, rid_order: RidOrder) -> Option<RemoteMedia> {
    let port = effective_port(index, m);
    let active = port > 0;
    let (send, recv) = match (m.kind, active) {
        (MediaKind::Application, true) => (m.is_sctp(), m.is_sctp()),
        (_, false) => (false, false),
        _ => (m.direction.receives(), m.direction.sends()),
    };
    let mut learned = RemoteMedia {
        mindex: index,
        kind: m.kind,
        port,
        proto: m.proto.clone(),
        mid: m.mid().map(str::to_owned),
        direction: m.direction,
        send,
        recv,
        payload_types: if m.kind.is_rtp() {
            m.payload_types()
        } else {
            Vec::new()
        },
        clock_rates: Vec::new(),
        opus_red_pt: None,
        nack: false,
        rtx_payload_types: Vec::new(),
        msid: None,
        rids: [None, None, None],
        rids_in_order: Vec::new(),
        paused_rids: [false; 3],
        legacy_simulcast: false,
        ssrcs: [0; 3],
        rtx_ssrcs: [0; 3],
        fallback_ssrc: None,
        extensions: ExtensionIds::from_media(m),
        data_channel: m.kind == MediaKind::Application && active && m.is_sctp(),
    };
    for a in &m.attributes {
        let Some(value) = a.value.as_deref() else {
            continue;
        };
        if a.is("msid") {
            let mut t = value.split_ascii_whitespace();
            let (Some(stream), Some(track)) = (t.next(), t.next()) else {
                return None;
            };
            learned.msid = Some((stream.to_owned(), track.to_owned()));
        } else if a.is("rtcp-fb") {
            learned.nack |= value.contains("nack");
        } else if a.is("fmtp") {
            learn_apt(&mut learned, value);
        } else if a.is("rtpmap") {
            learn_rtpmap(&mut learned, value);
        } else if a.is("rid") {
            learn_rid(&mut learned, value);
        }
    }
    learn_simulcast(&mut learned, &m.attributes, rid_order);
    learn_ssrcs(&mut learned, &m.attributes);
    Some(learned)
}

fn learn_apt(learned: &mut RemoteMedia, value: &str) {
    let mut t = value.split_ascii_whitespace();
    let (Some(rtx), Some(params)) = (t.next().and_then(parse_payload_type), t.next()) else {
        return;
    };
    let Some(pt) = params
        .split(';')
        .find_map(|p| p.trim().strip_prefix("apt="))
        .and_then(parse_payload_type)
    else {
        return;
    };
    let taken = learned
        .rtx_payload_types
        .iter()
        .any(|(p, r)| *r == rtx && *p != pt);
    let known = learned.rtx_payload_types.iter().any(|(p, _)| *p == pt);
    if !taken && !known {
        learned.rtx_payload_types.push((pt, rtx));
    }
}

fn learn_rtpmap(learned: &mut RemoteMedia, value: &str) {
    let Some((pt, name, Some(clock))) = parse_rtpmap(value) else {
        return;
    };
    if name.eq_ignore_ascii_case("rtx") || learned.clock_rate(pt).is_some() {
        return;
    }
    learned.clock_rates.push((pt, clock));
    if learned.kind == MediaKind::Audio && value.to_ascii_lowercase().contains("red/48000/2") {
        learned.opus_red_pt = Some(pt);
    }
}

/// Longest rid accepted (RFC 8851 `rid-id` is at most 255 characters).
const MAX_RID_LEN: usize = 255;

fn learn_rid(learned: &mut RemoteMedia, value: &str) {
    let mut t = value.split_ascii_whitespace();
    let (Some(rid), Some(dir)) = (t.next(), t.next()) else {
        return;
    };
    let valid = rid.len() <= MAX_RID_LEN
        && rid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid || !dir.eq_ignore_ascii_case("send") || learned.rids_in_order.len() >= 3 {
        return;
    }
    if !learned.rids_in_order.iter().any(|r| r == rid) {
        learned.rids_in_order.push(rid.to_owned());
    }
}

/// Maps the rid lines to layers (layer 0 = lowest quality; fewer than three
/// rids occupy the lowest layers) and reads paused layers from `a=simulcast`.
fn learn_simulcast(learned: &mut RemoteMedia, attributes: &[Attribute], rid_order: RidOrder) {
    let n = learned.rids_in_order.len();
    for (i, rid) in learned.rids_in_order.iter().enumerate() {
        let layer = match rid_order {
            RidOrder::HighToLow => n - 1 - i,
            RidOrder::LowToHigh => i,
        };
        learned.rids[layer] = Some(rid.clone());
    }
    for a in attributes.iter().filter(|a| a.is("simulcast")) {
        let value = a.value_str();
        learned.legacy_simulcast = value.contains("rid=");
        if learned.legacy_simulcast || !value.contains('~') {
            continue;
        }
        let mut tokens = value.split_ascii_whitespace();
        while let Some(token) = tokens.next() {
            if !token.eq_ignore_ascii_case("send") {
                continue;
            }
            let Some(list) = tokens.next() else { break };
            for alternative in list.split([';', ',']) {
                let Some(paused) = alternative.strip_prefix('~') else {
                    continue;
                };
                if let Some(layer) = learned
                    .rids
                    .iter()
                    .position(|r| r.as_deref() == Some(paused))
                {
                    learned.paused_rids[layer] = true;
                }
            }
        }
    }
}

fn parse_ssrc(token: &str) -> Option<u32> {
    token.parse::<u32>().ok().filter(|s| *s != 0)
}

/// `ssrc-group:SIM` (video), then `ssrc-group:FID` (video), then `a=ssrc`.
/// With rid simulcast the groups are ignored and the first SSRC is only kept
/// as a fallback.
fn learn_ssrcs(learned: &mut RemoteMedia, attributes: &[Attribute]) {
    let video = learned.kind == MediaKind::Video;
    let rid_based = learned.has_rids();
    let groups = attributes
        .iter()
        .filter(|a| a.is("ssrc-group"))
        .map(Attribute::value_str);
    if video && !rid_based {
        for semantics in ["SIM", "FID"] {
            for value in groups.clone() {
                let mut t = value.split_ascii_whitespace();
                if t.next() != Some(semantics) {
                    continue;
                }
                let ssrcs: Vec<u32> = t.filter_map(parse_ssrc).collect();
                learn_group(learned, semantics == "FID", &ssrcs);
            }
        }
    }
    for a in attributes.iter().filter(|a| a.is("ssrc")) {
        let Some(ssrc) = a
            .value_str()
            .split_ascii_whitespace()
            .next()
            .and_then(parse_ssrc)
        else {
            continue;
        };
        if rid_based {
            learned.fallback_ssrc.get_or_insert(ssrc);
        } else if learned.ssrcs[0] == 0 {
            learned.ssrcs[0] = ssrc;
        }
    }
}

fn learn_group(learned: &mut RemoteMedia, fid: bool, ssrcs: &[u32]) {
    let Some(&first) = ssrcs.first() else { return };
    if !learned.ssrcs.contains(&first) && learned.ssrcs[0] == 0 {
        learned.ssrcs[0] = first;
    }
    if fid {
        if let Some(&rtx) = ssrcs.get(1) {
            let layer = (0..3).find(|&l| learned.ssrcs[l] == first && learned.rtx_ssrcs[l] == 0);
            if let Some(layer) = layer {
                learned.rtx_ssrcs[layer] = rtx;
            }
        }
    } else {
        for (layer, &ssrc) in ssrcs.iter().enumerate().take(3).skip(1) {
            learned.ssrcs[layer] = ssrc;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures;
    use super::super::parse;
    use super::*;

    fn remote(text: &str, order: RidOrder) -> RemoteInfo {
        check_remote(&parse(text).expect("parses"), order).expect("checks")
    }

    #[test]
    fn sdp_remote_learns_browser_offer() {
        let info = remote(&fixtures::browser_offer(false), RidOrder::HighToLow);
        assert_eq!(info.ice_ufrag, "Hc7Y");
        assert_eq!(info.ice_pwd, "8Wh6Y2Bm3U7mZ0cNQhm+XXnt");
        assert_eq!(info.fingerprint.hash, HashFunction::Sha256);
        assert!(info.fingerprint.value.starts_with("7B:8B:"));
        assert_eq!(info.setup, Some(SetupRole::Actpass));
        assert_eq!(info.dtls_role(), DtlsRole::Client);
        assert!(info.trickle);
        assert_eq!(info.candidates.len(), 2, "{:?}", info.candidates);
        assert_eq!(info.candidates[0].address, "192.168.0.196");
        assert_eq!(info.candidates[0].port, 46243);
        assert_eq!(info.candidates[1].typ, "srflx");
        assert_eq!(info.candidates[1].raddr.as_deref(), Some("192.168.0.196"));
        assert_eq!(info.candidates[1].rport, Some(46243));
        assert!(info.end_of_candidates);
        assert_eq!(info.rtp_profile.as_deref(), Some("UDP/TLS/RTP/SAVPF"));
        assert_eq!(info.bundle_mid.as_deref(), Some("0"));
        assert!(info.rtx);
        assert_eq!(
            info.data_channel,
            Some(DataChannelInfo {
                mindex: 2,
                legacy: false,
                sctp_port: Some(5000)
            })
        );
        let audio = &info.media[0];
        assert_eq!(
            (audio.kind, audio.send, audio.recv),
            (MediaKind::Audio, true, true)
        );
        assert_eq!(audio.payload_types, vec![111, 63, 0]);
        assert_eq!(
            audio.clock_rates,
            vec![(111, 48000), (63, 48000), (0, 8000)]
        );
        assert_eq!(audio.opus_red_pt, Some(63));
        assert!(!audio.nack);
        assert_eq!(audio.ssrcs, [1111, 0, 0]);
        assert_eq!(audio.msid, Some(("stream1".into(), "audiotrack1".into())));
        assert_eq!(audio.extensions.audio_level, Some(1));
        assert_eq!(audio.extensions.transport_cc, Some(3));
        assert_eq!(audio.extensions.mid, Some(4));
        let video = &info.media[1];
        assert_eq!(video.mid.as_deref(), Some("1"));
        assert!(video.nack);
        assert_eq!(
            video.rtx_payload_types,
            vec![(96, 97), (102, 103), (108, 109)]
        );
        assert_eq!(video.clock_rate(97), None, "rtx has no clock rate entry");
        assert_eq!(video.clock_rate(96), Some(90000));
        assert_eq!(video.ssrcs, [2222, 0, 0]);
        assert_eq!(video.rtx_ssrcs, [3333, 0, 0]);
        assert_eq!(video.extensions.rid, Some(10));
        assert!(!video.has_rids() && !video.has_ssrc_simulcast());
        assert_eq!(info.extensions().mid, Some(4));
        assert_eq!(info.extensions().rid, Some(10));
    }

    #[test]
    fn sdp_remote_directions() {
        let text = fixtures::browser_offer(false)
            .replace(
                "a=sendrecv\r\na=msid:stream1 audiotrack1",
                "a=sendonly\r\na=msid:stream1 audiotrack1",
            )
            .replace(
                "a=sendrecv\r\na=msid:stream1 videotrack1",
                "a=recvonly\r\na=msid:stream1 videotrack1",
            );
        let info = remote(&text, RidOrder::HighToLow);
        assert_eq!((info.media[0].send, info.media[0].recv), (false, true));
        assert_eq!((info.media[1].send, info.media[1].recv), (true, false));
        let inactive = fixtures::browser_offer(false).replace(
            "a=sendrecv\r\na=msid:stream1 videotrack1",
            "a=inactive\r\na=msid:stream1 videotrack1",
        );
        let info = remote(&inactive, RidOrder::HighToLow);
        assert_eq!((info.media[1].send, info.media[1].recv), (false, false));
        let rejected = fixtures::browser_offer(false).replace("m=video 9 ", "m=video 0 ");
        let info = remote(&rejected, RidOrder::HighToLow);
        assert_eq!(
            (info.media[1].port, info.media[1].send, info.media[1].recv),
            (0, false, false)
        );
        // A first m-line with port 0 counts as active.
        let first = fixtures::browser_offer(false).replace("m=audio 9 ", "m=audio 0 ");
        let info = remote(&first, RidOrder::HighToLow);
        assert_eq!((info.media[0].port, info.media[0].send), (9, true));
    }

    #[test]
    fn sdp_remote_requires_ice_and_fingerprint() {
        let base = fixtures::browser_offer(false);
        for (from, to) in [
            ("a=ice-ufrag:Hc7Y\r\n", ""),
            ("a=ice-pwd:8Wh6Y2Bm3U7mZ0cNQhm+XXnt\r\n", ""),
            ("a=fingerprint:sha-256 ", "a=fingerprint:sha-512 "),
        ] {
            // Only remove them from the first m-line (session level has none).
            let (head, tail) = base.split_at(base.find("m=video").expect("video"));
            let text = format!("{}{tail}", head.replace(from, to));
            let e = check_remote(&parse(&text).expect("parses"), RidOrder::HighToLow)
                .expect_err("must fail");
            assert_eq!(e.0, "Error processing SDP", "{from}");
        }
        // Session-level credentials and a sha-1 fingerprint are fine.
        let (head, tail) = base.split_at(base.find("m=audio").expect("audio"));
        let moved = format!(
            "{head}a=ice-ufrag:sess\r\na=ice-pwd:sesspwdsesspwdsesspwd\r\na=fingerprint:sha-1 AA:BB\r\n{}",
            tail.replace("a=ice-ufrag:Hc7Y\r\n", "")
                .replace("a=ice-pwd:8Wh6Y2Bm3U7mZ0cNQhm+XXnt\r\n", "")
                .replace("a=fingerprint:sha-256 ", "a=x-fingerprint:sha-256 ")
        );
        let info = remote(&moved, RidOrder::HighToLow);
        assert_eq!(info.ice_ufrag, "sess");
        assert_eq!(
            info.fingerprint,
            Fingerprint {
                hash: HashFunction::Sha1,
                value: "AA:BB".into()
            }
        );
        let bad_msid = base.replace("a=msid:stream1 audiotrack1", "a=msid:stream1");
        assert!(check_remote(&parse(&bad_msid).expect("parses"), RidOrder::HighToLow).is_err());
    }

    #[test]
    fn sdp_remote_setup_roles() {
        let base = fixtures::browser_offer(false);
        let active = base.replace("a=setup:actpass", "a=setup:active");
        assert_eq!(
            remote(&active, RidOrder::HighToLow).dtls_role(),
            DtlsRole::Server
        );
        let passive = base.replace("a=setup:actpass", "a=setup:passive");
        let info = remote(&passive, RidOrder::HighToLow);
        assert_eq!(
            (info.setup, info.dtls_role()),
            (Some(SetupRole::Passive), DtlsRole::Client)
        );
        let absent = base.replace("a=setup:actpass\r\n", "");
        assert_eq!(remote(&absent, RidOrder::HighToLow).setup, None);
    }

    #[test]
    fn sdp_remote_rid_simulcast_hml_and_lmh() {
        let text = fixtures::simulcast_offer();
        let hml = remote(&text, RidOrder::HighToLow);
        let video = &hml.media[1];
        assert_eq!(
            video.rids,
            [Some("l".into()), Some("m".into()), Some("h".into())]
        );
        assert_eq!(video.rids_in_order, vec!["h", "m", "l"]);
        assert_eq!(video.paused_rids, [false, true, false]);
        assert!(!video.legacy_simulcast);
        assert_eq!(video.ssrcs, [0, 0, 0], "groups ignored with rids");
        assert_eq!(video.fallback_ssrc, Some(5555));
        let lmh = remote(&text, RidOrder::LowToHigh);
        assert_eq!(
            lmh.media[1].rids,
            [Some("h".into()), Some("m".into()), Some("l".into())]
        );
        assert_eq!(lmh.media[1].paused_rids, [false, true, false]);
        // Two rids occupy the lowest layers.
        let two = text
            .replace("a=rid:m send\r\n", "")
            .replace("h;~m;l", "h;l");
        let two = remote(&two, RidOrder::HighToLow);
        assert_eq!(
            two.media[1].rids,
            [Some("l".into()), Some("h".into()), None]
        );
        // Legacy Firefox syntax.
        let legacy = text.replace("a=simulcast:send h;~m;l", "a=simulcast: send rid=h;m;l");
        let legacy = remote(&legacy, RidOrder::HighToLow);
        assert!(legacy.media[1].legacy_simulcast);
        assert_eq!(legacy.media[1].paused_rids, [false; 3]);
    }

    #[test]
    fn sdp_remote_ssrc_simulcast() {
        let text = fixtures::browser_offer(false).replace(
            "a=ssrc-group:FID 2222 3333\r\n",
            "a=ssrc-group:FID 2222 3333\r\na=ssrc-group:FID 4444 5555\r\na=ssrc-group:FID 6666 7777\r\na=ssrc-group:SIM 2222 4444 6666\r\n",
        );
        let info = remote(&text, RidOrder::HighToLow);
        let video = &info.media[1];
        assert!(video.has_ssrc_simulcast());
        assert_eq!(video.ssrcs, [2222, 4444, 6666]);
        assert_eq!(video.rtx_ssrcs, [3333, 5555, 7777]);
    }

    #[test]
    fn sdp_remote_data_channel_only_and_legacy() {
        let info = remote(&fixtures::data_only_offer(false), RidOrder::HighToLow);
        assert_eq!(info.media.len(), 1);
        assert_eq!(
            info.data_channel,
            Some(DataChannelInfo {
                mindex: 0,
                legacy: false,
                sctp_port: Some(5000)
            })
        );
        assert_eq!(info.rtp_profile, None);
        assert!(!info.rtx);
        let legacy = remote(&fixtures::data_only_offer(true), RidOrder::HighToLow);
        assert_eq!(
            legacy.data_channel,
            Some(DataChannelInfo {
                mindex: 0,
                legacy: true,
                sctp_port: Some(5000)
            })
        );
        assert!(legacy.media[0].send && legacy.media[0].recv);
    }

    #[test]
    fn sdp_remote_parses_candidates() {
        let c = Candidate::parse("candidate:3 1 TCP 1518280447 10.0.0.1 9 typ host tcptype active")
            .expect("valid");
        assert_eq!(
            (c.transport.as_str(), c.tcptype.as_deref()),
            ("tcp", Some("active"))
        );
        assert_eq!(c.priority, 1_518_280_447);
        assert!(Candidate::parse("a=candidate:1 1 udp 1 1.2.3.4 99999 typ host").is_none());
        assert!(Candidate::parse("1 1 udp 1 1.2.3.4 5 host").is_none());
        let c = Candidate::parse("1 1 udp 1 abc.local 5 typ host").expect("valid");
        assert_eq!(c.address, "abc.local");
    }
}
