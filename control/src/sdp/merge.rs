//! Merging a plugin's SDP with the core's transport details (media.md §2.3
//! steps 2, 4, 5; §2.4; §2.5).

use std::net::IpAddr;

use rand::Rng;

use super::SdpError;
use super::remote::{
    DataChannelInfo, ExtensionIds, RemoteInfo, RemoteMedia, SetupRole, parse_extmap, uri,
};
use super::strip::strip;
use super::syntax::{
    AddrType, Attribute, Connection, Direction, Media, MediaKind, Sdp, codec_name, parse_rtpmap,
    static_payload_type,
};

/// The RTP profile used when the client gave none (plugin offers).
const DEFAULT_RTP_PROFILE: &str = "UDP/TLS/RTP/SAVPF";
/// The SCTP port the core announces.
const SCTP_PORT: u16 = 5000;
/// The session name used when the plugin gave an empty one.
const DEFAULT_SESSION_NAME: &str = "Meetecho Janus";
/// Characters of generated ICE credentials (RFC 8839 `ice-char` minus `+` and `/`).
const ICE_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The local SSRCs of one m-line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalSsrcs {
    /// The media SSRC.
    pub ssrc: u32,
    /// The RTX SSRC (used for video when RFC 4588 is negotiated).
    pub rtx_ssrc: u32,
}

impl LocalSsrcs {
    /// Two random, distinct, non-zero SSRCs.
    pub fn generate<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let ssrc = nonzero(rng);
        let mut rtx_ssrc = nonzero(rng);
        while rtx_ssrc == ssrc {
            rtx_ssrc = nonzero(rng);
        }
        Self { ssrc, rtx_ssrc }
    }
}

fn nonzero<R: Rng + ?Sized>(rng: &mut R) -> u32 {
    loop {
        let v: u32 = rng.random();
        if v != 0 {
            return v;
        }
    }
}

/// SSRCs for `count` m-lines, all distinct.
pub fn generate_local_ssrcs<R: Rng + ?Sized>(rng: &mut R, count: usize) -> Vec<LocalSsrcs> {
    let mut out: Vec<LocalSsrcs> = Vec::with_capacity(count);
    while out.len() < count {
        let s = LocalSsrcs::generate(rng);
        let clash = out.iter().any(|o| {
            [o.ssrc, o.rtx_ssrc]
                .iter()
                .any(|x| *x == s.ssrc || *x == s.rtx_ssrc)
        });
        if !clash {
            out.push(s);
        }
    }
    out
}

/// Random local ICE credentials: a 4-character ufrag and a 22-character password.
pub fn generate_ice_credentials<R: Rng + ?Sized>(rng: &mut R) -> (String, String) {
    let mut pick = |n: usize| -> String {
        (0..n)
            .map(|_| char::from(ICE_CHARS[rng.random_range(0..ICE_CHARS.len())]))
            .collect()
    };
    let ufrag = pick(4);
    let pwd = pick(22);
    (ufrag, pwd)
}

/// What the media layer supplies for a merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTransport {
    /// Local ICE username fragment (4 characters).
    pub ice_ufrag: String,
    /// Local ICE password (22 characters).
    pub ice_pwd: String,
    /// The server certificate's SHA-256 fingerprint (`AB:CD:...`).
    pub fingerprint: String,
    /// The `a=setup` to write: `active`/`passive` in answers (media.md §4.1);
    /// `actpass` means the plugin SDP is an **offer** (media.md §2.5).
    pub setup: SetupRole,
    /// The advertised address (`o=` and `c=`).
    pub address: IpAddr,
    /// Local candidates as attribute values, e.g.
    /// `candidate:1 1 udp 2015363327 203.0.113.5 57012 typ host`.
    pub candidates: Vec<String>,
    /// Half trickle: write the candidates and `a=end-of-candidates` into
    /// every m-line (false: full trickle, no candidates in the SDP).
    pub half_trickle: bool,
    /// Write `a=ice-lite`.
    pub ice_lite: bool,
    /// Local SSRCs by m-line index; an entry is needed for every active
    /// audio/video m-line (see [`generate_local_ssrcs`]).
    pub ssrcs: Vec<LocalSsrcs>,
    /// "Now" in microseconds: the `o=` session id when the plugin gave 0.
    pub now_us: u64,
}

/// What the local description negotiated for one m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// m-line index.
    pub mindex: usize,
    /// Media type.
    pub kind: MediaKind,
    /// The mid written.
    pub mid: String,
    /// 9, or 0 when rejected.
    pub port: u16,
    /// The direction written (the server's point of view).
    pub direction: Direction,
    /// The server sends on this m-line.
    pub send: bool,
    /// The server receives on this m-line.
    pub recv: bool,
    /// Payload types answered/offered (RTX excluded), in order.
    pub payload_types: Vec<u8>,
    /// Their clock rates.
    pub clock_rates: Vec<(u8, u32)>,
    /// Lower-case codec of the first payload type (the second when the first is RED).
    pub codec: Option<String>,
    /// RFC 4588 mapping `(payload type, rtx payload type)` written.
    pub rtx_payload_types: Vec<(u8, u8)>,
    /// NACKs are on for this m-line.
    pub nack: bool,
    /// Opus RED payload type, when negotiated.
    pub opus_red_pt: Option<u8>,
    /// The local SSRC announced (active audio/video).
    pub ssrc: Option<u32>,
    /// The local RTX SSRC announced (FID group).
    pub rtx_ssrc: Option<u32>,
    /// The `a=msid` written (`janus janus<mid>` by default).
    pub msid: Option<(String, String)>,
    /// Header extension ids kept in this m-line.
    pub extensions: ExtensionIds,
    /// Rid simulcast reception: rids by layer (0 = lowest); all `None` when off.
    pub rids: [Option<String>; 3],
}

/// What the merged local description negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMediaInfo {
    /// The local description is an offer (plugin offer).
    pub offer: bool,
    /// Per m-line, by index.
    pub media: Vec<LocalMedia>,
    /// The mids in `a=group:BUNDLE`.
    pub bundle_mids: Vec<String>,
    /// RFC 4588 is on for the PC.
    pub rtx: bool,
    /// The active data channel m-line, with the SCTP syntax written.
    pub data_channel: Option<DataChannelInfo>,
}

impl LocalMediaInfo {
    /// PC-wide extension ids (first m-line that keeps each extension).
    pub fn extensions(&self) -> ExtensionIds {
        self.media
            .iter()
            .fold(ExtensionIds::default(), |acc, m| acc.or(m.extensions))
    }
}

fn merge_error(detail: &str) -> SdpError {
    SdpError(format!("Error merging SDP: {detail}"))
}

/// Per m-line facts gathered before writing.
struct Prepared {
    mid: String,
    msid: Option<(String, String)>,
    rtx: Vec<(u8, u8)>,
    nack: bool,
}

/// Merges a plugin's SDP (an answer to `remote`, or an offer when
/// `transport.setup` is `actpass`) with the core's transport details, in the
/// serialization of media.md §2.4. Returns the text for the client and what
/// it negotiated.
///
/// Fails when an answer has no client offer to match, a different number or
/// kind of m-lines than the offer, an `a=msid` without track id, or an
/// active audio/video m-line has no entry in `transport.ssrcs`.
pub fn merge_local(
    plugin_sdp: &Sdp,
    remote: Option<&RemoteInfo>,
    transport: &LocalTransport,
) -> Result<(String, LocalMediaInfo), SdpError> {
    let offer = transport.setup == SetupRole::Actpass;
    if !offer {
        let Some(remote) = remote else {
            return Err(merge_error("an answer needs the client's offer"));
        };
        if remote.media.len() != plugin_sdp.media.len() {
            return Err(merge_error(&format!(
                "the answer has {} m-lines, the offer had {}",
                plugin_sdp.media.len(),
                remote.media.len()
            )));
        }
        let mismatch = plugin_sdp
            .media
            .iter()
            .zip(&remote.media)
            .position(|(m, r)| m.kind != r.kind);
        if let Some(index) = mismatch {
            return Err(merge_error(&format!("m-line #{index} changed kind")));
        }
    }
    let mut sdp = strip(plugin_sdp);
    let remote_media = |i: usize| remote.and_then(|r| r.medium(i));
    // Step 2 (answers) and §2.5 (offers): take mid/msid out, drop rid
    // extensions from offers, clamp answers to what the offer allowed.
    let mut prepared = Vec::with_capacity(sdp.media.len());
    for (index, m) in sdp.media.iter_mut().enumerate() {
        let plugin_mid = m.mid().map(str::to_owned);
        let mut msid = None;
        for a in m.attributes.iter().filter(|a| a.is("msid")) {
            let mut t = a.value_str().split_ascii_whitespace();
            let (Some(stream), Some(track)) = (t.next(), t.next()) else {
                return Err(merge_error(&format!("invalid msid on m-line #{index}")));
            };
            msid = Some((stream.to_owned(), track.to_owned()));
        }
        m.attributes.retain(|a| !a.is("mid") && !a.is("msid"));
        if offer {
            m.attributes.retain(|a| {
                !(a.is("extmap")
                    && parse_extmap(a.value_str())
                        .is_some_and(|(_, u)| u == uri::RID || u == uri::REPAIRED_RID))
            });
        }
        let r = remote_media(index);
        if let Some(r) = r.filter(|_| !offer) {
            if r.port == 0 {
                m.port = 0;
            }
            m.direction = intersect(m.direction, r.direction.reversed());
        }
        let mid = r
            .and_then(|r| r.mid.clone())
            .or(plugin_mid)
            .unwrap_or_else(|| index.to_string());
        prepared.push(Prepared {
            mid,
            msid,
            rtx: Vec::new(),
            nack: false,
        });
    }
    // Step 5 / §2.5: RFC 4588.
    let rtx_on = if offer {
        assign_offer_rtx(&sdp, &mut prepared);
        true
    } else {
        let remote_rtx = remote.is_some_and(|r| r.rtx);
        for (index, m) in sdp.media.iter_mut().enumerate() {
            let Some(r) = remote_media(index) else {
                continue;
            };
            prepared[index].nack = r.nack;
            if m.kind == MediaKind::Video && remote_rtx && r.nack {
                prepared[index].rtx = answer_rtx(m, r);
            }
        }
        remote_rtx
    };
    let legacy_data = remote.and_then(|r| r.data_channel).is_none_or(|d| d.legacy);
    let out = write_merged(&sdp, remote, transport, &prepared, offer, legacy_data)?;
    let info = describe(&out, remote, transport, &prepared, offer, rtx_on);
    Ok((out.serialize(), info))
}

/// The answer direction may not exceed what the offer allows.
fn intersect(answer: Direction, allowed: Direction) -> Direction {
    let send = answer.sends() && allowed.sends();
    let recv = answer.receives() && allowed.receives();
    match (send, recv) {
        (true, true) => Direction::SendRecv,
        (true, false) => Direction::SendOnly,
        (false, true) => Direction::RecvOnly,
        (false, false) => Direction::Inactive,
    }
}

/// Plugin offers: an RTX payload type for each video format, the next unused
/// number above it (wrapping to 96 after 127), unique across the PC.
fn assign_offer_rtx(sdp: &Sdp, prepared: &mut [Prepared]) {
    let mut used: Vec<u8> = sdp
        .media
        .iter()
        .filter(|m| m.kind.is_rtp())
        .flat_map(Media::payload_types)
        .collect();
    let mut pc_map: Vec<(u8, u8)> = Vec::new();
    for (index, m) in sdp.media.iter().enumerate() {
        if m.kind != MediaKind::Video {
            continue;
        }
        let mut map = Vec::new();
        for pt in m.payload_types() {
            if pc_map.iter().any(|(_, r)| *r == pt) {
                continue;
            }
            let existing = pc_map.iter().find(|(p, _)| *p == pt).map(|(_, r)| *r);
            let Some(rtx) = existing.or_else(|| next_free_pt(pt, &used)) else {
                continue;
            };
            if existing.is_none() {
                used.push(rtx);
                pc_map.push((pt, rtx));
            }
            map.push((pt, rtx));
        }
        prepared[index].nack = !map.is_empty();
        prepared[index].rtx = map;
    }
}

fn next_free_pt(pt: u8, used: &[u8]) -> Option<u8> {
    let step = |p: u8| if p >= 127 { 96 } else { p + 1 };
    let mut candidate = step(pt);
    // At most one full round over 96..=127 plus the start below 96.
    for _ in 0..=128 {
        if candidate == pt {
            return None;
        }
        if !used.contains(&candidate) {
            return Some(candidate);
        }
        candidate = step(candidate);
    }
    None
}

/// Answers: removes answered payload types that clash with the offer's RTX
/// payload types, then maps each answered payload type to its offered RTX.
fn answer_rtx(m: &mut Media, r: &RemoteMedia) -> Vec<(u8, u8)> {
    let clashing: Vec<u8> = m
        .payload_types()
        .into_iter()
        .filter(|pt| {
            r.clock_rate(*pt).is_some() && r.rtx_payload_types.iter().any(|(_, x)| x == pt)
        })
        .collect();
    for pt in clashing {
        m.remove_payload_type(pt);
    }
    let answered = m.payload_types();
    answered
        .iter()
        .filter_map(|pt| r.rtx_for(*pt).map(|rtx| (*pt, rtx)))
        .filter(|(_, rtx)| !answered.contains(rtx))
        .collect()
}

fn write_merged(
    sdp: &Sdp,
    remote: Option<&RemoteInfo>,
    transport: &LocalTransport,
    prepared: &[Prepared],
    offer: bool,
    legacy_data: bool,
) -> Result<Sdp, SdpError> {
    let addr_type = match transport.address {
        IpAddr::V4(_) => AddrType::Ip4,
        IpAddr::V6(_) => AddrType::Ip6,
    };
    let address = transport.address.to_string();
    let connection = Connection {
        addr_type,
        address: address.clone(),
    };
    let mut origin = sdp.origin.clone();
    if origin.session_id == 0 || origin.session_version == 0 {
        origin.session_id = transport.now_us;
        origin.session_version = 1;
    }
    origin.addr_type = addr_type;
    origin.address = address;
    let session_name = if sdp.session_name.is_empty() {
        DEFAULT_SESSION_NAME.to_owned()
    } else {
        sdp.session_name.clone()
    };
    let mids: Vec<&str> = sdp
        .media
        .iter()
        .zip(prepared)
        .filter(|(m, _)| m.port > 0)
        .map(|(_, p)| p.mid.as_str())
        .collect();
    let mut attributes = vec![
        Attribute::new(
            "group",
            format!("BUNDLE {}", mids.join(" ")).trim_end().to_owned(),
        ),
        Attribute::new("ice-options", "trickle"),
        Attribute::new("fingerprint", format!("sha-256 {}", transport.fingerprint)),
        Attribute::flag("extmap-allow-mixed"),
        Attribute::new("msid-semantic", " WMS *"),
    ];
    if transport.ice_lite {
        attributes.push(Attribute::flag("ice-lite"));
    }
    attributes.extend(
        sdp.attributes
            .iter()
            .filter(|a| !a.is("ice-lite") && !a.is("setup"))
            .cloned(),
    );
    let rtp_profile = remote
        .and_then(|r| r.rtp_profile.clone())
        .unwrap_or_else(|| DEFAULT_RTP_PROFILE.to_owned());
    let mut media = Vec::with_capacity(sdp.media.len());
    let mut data = 0;
    for (index, (m, p)) in sdp.media.iter().zip(prepared).enumerate() {
        let mut out = m.clone();
        out.connection = Some(connection.clone());
        let mut attrs = vec![Attribute::new("mid", p.mid.clone())];
        let is_data = m.kind == MediaKind::Application && m.port > 0 && m.is_sctp() && {
            data += 1;
            data == 1
        };
        if m.kind.is_rtp() {
            out.proto.clone_from(&rtp_profile);
            if m.port == 0 {
                out.direction = Direction::Inactive;
            }
            attrs.push(Attribute::flag("rtcp-mux"));
        } else if is_data {
            if legacy_data && !m.proto.eq_ignore_ascii_case("UDP/DTLS/SCTP") {
                attrs.push(Attribute::new(
                    "sctpmap",
                    format!("{SCTP_PORT} webrtc-datachannel 16"),
                ));
            } else {
                attrs.push(Attribute::new("sctp-port", SCTP_PORT.to_string()));
            }
        } else {
            out.port = 0;
            out.direction = Direction::Inactive;
        }
        attrs.push(Attribute::new("ice-ufrag", transport.ice_ufrag.clone()));
        attrs.push(Attribute::new("ice-pwd", transport.ice_pwd.clone()));
        attrs.push(Attribute::new("ice-options", "trickle"));
        attrs.push(Attribute::new("setup", transport.setup.as_str()));
        attrs.extend(m.attributes.iter().cloned());
        let active_rtp = m.kind.is_rtp() && out.port > 0;
        if active_rtp {
            for (pt, rtx) in &p.rtx {
                out.formats.push(rtx.to_string());
                attrs.push(Attribute::new("rtpmap", format!("{rtx} rtx/90000")));
                attrs.push(Attribute::new("fmtp", format!("{rtx} apt={pt}")));
            }
            let Some(ssrcs) = transport.ssrcs.get(index) else {
                return Err(merge_error(&format!("no local SSRC for m-line #{index}")));
            };
            let with_rtx = m.kind == MediaKind::Video && !p.rtx.is_empty() && out.direction.sends();
            if with_rtx {
                attrs.push(Attribute::new(
                    "ssrc-group",
                    format!("FID {} {}", ssrcs.ssrc, ssrcs.rtx_ssrc),
                ));
            }
            if out.direction != Direction::Inactive {
                let (stream, track) = p
                    .msid
                    .clone()
                    .unwrap_or_else(|| ("janus".to_owned(), format!("janus{}", p.mid)));
                attrs.push(Attribute::new("msid", format!("{stream} {track}")));
            }
            attrs.push(Attribute::new(
                "ssrc",
                format!("{} cname:janus", ssrcs.ssrc),
            ));
            if with_rtx {
                attrs.push(Attribute::new(
                    "ssrc",
                    format!("{} cname:janus", ssrcs.rtx_ssrc),
                ));
            }
            if !offer {
                if let Some(r) = remote.and_then(|r| r.medium(index)) {
                    attrs.extend(simulcast_recv(&out, &attrs, r));
                }
            }
        }
        if transport.half_trickle && out.port > 0 {
            for c in &transport.candidates {
                let c = c.trim();
                let c = c.strip_prefix("a=").unwrap_or(c);
                let value = c.strip_prefix("candidate:").unwrap_or(c);
                attrs.push(Attribute::new("candidate", value));
            }
            attrs.push(Attribute::flag("end-of-candidates"));
        }
        out.attributes = attrs;
        media.push(out);
    }
    Ok(Sdp {
        version: 0,
        origin,
        session_name,
        timing: sdp.timing,
        connection: None,
        attributes,
        media,
    })
}

/// `a=rid:<rid> recv` lines (offer order) and `a=simulcast:recv ...` for a
/// video m-line whose offer simulcasts with rids, when the answer keeps the
/// rtp-stream-id extension.
fn simulcast_recv(out: &Media, attrs: &[Attribute], r: &RemoteMedia) -> Vec<Attribute> {
    let keeps_rid_ext = attrs
        .iter()
        .any(|a| a.is("extmap") && parse_extmap(a.value_str()).is_some_and(|(_, u)| u == uri::RID));
    if out.kind != MediaKind::Video || !r.has_rids() || !keeps_rid_ext {
        return Vec::new();
    }
    let mut lines: Vec<Attribute> = r
        .rids_in_order
        .iter()
        .map(|rid| Attribute::new("rid", format!("{rid} recv")))
        .collect();
    let list: Vec<String> = r
        .rids_in_order
        .iter()
        .map(|rid| {
            let paused = r
                .rids
                .iter()
                .position(|x| x.as_deref() == Some(rid.as_str()))
                .is_some_and(|layer| r.paused_rids[layer]);
            if paused {
                format!("~{rid}")
            } else {
                rid.clone()
            }
        })
        .collect();
    let value = if r.legacy_simulcast {
        format!(" recv rid={}", list.join(";"))
    } else {
        format!("recv {}", list.join(";"))
    };
    lines.push(Attribute::new("simulcast", value));
    lines
}

fn describe(
    sdp: &Sdp,
    remote: Option<&RemoteInfo>,
    transport: &LocalTransport,
    prepared: &[Prepared],
    offer: bool,
    rtx: bool,
) -> LocalMediaInfo {
    let mut data_channel = None;
    let media = sdp
        .media
        .iter()
        .zip(prepared)
        .enumerate()
        .map(|(index, (m, p))| {
            let r = remote.and_then(|r| r.medium(index));
            let active = m.port > 0;
            let is_data = m.kind == MediaKind::Application && active;
            if is_data && data_channel.is_none() {
                data_channel = Some(DataChannelInfo {
                    mindex: index,
                    legacy: m.attribute("sctpmap").is_some(),
                    sctp_port: Some(SCTP_PORT),
                });
            }
            let rtx_pts: Vec<u8> = p.rtx.iter().map(|(_, x)| *x).collect();
            let payload_types: Vec<u8> = if m.kind.is_rtp() && active {
                m.payload_types()
                    .into_iter()
                    .filter(|pt| !rtx_pts.contains(pt))
                    .collect()
            } else {
                Vec::new()
            };
            let clock_rates = payload_types
                .iter()
                .filter_map(|pt| clock_rate(m, r, *pt).map(|c| (*pt, c)))
                .collect();
            let codec = payload_types.first().and_then(|first| {
                let c = codec_name(m, *first)?;
                if c == "red" {
                    payload_types
                        .get(1)
                        .and_then(|second| codec_name(m, *second))
                } else {
                    Some(c)
                }
            });
            let plugin_red = m
                .attributes
                .iter()
                .filter(|a| {
                    a.is("rtpmap") && a.value_str().to_ascii_lowercase().contains("red/48000/2")
                })
                .find_map(Attribute::payload_type)
                .filter(|pt| payload_types.contains(pt));
            let opus_red_pt = match (m.kind, offer) {
                (MediaKind::Audio, true) => plugin_red,
                (MediaKind::Audio, false) => r
                    .and_then(|r| r.opus_red_pt)
                    .filter(|_| plugin_red.is_some()),
                _ => None,
            };
            let rtp = m.kind.is_rtp() && active;
            let ssrcs = transport.ssrcs.get(index).filter(|_| rtp);
            let announced_rtx = m
                .attributes
                .iter()
                .any(|a| a.is("ssrc-group") && a.value_str().starts_with("FID "));
            let rids = match r {
                Some(r) if m.attribute("simulcast").is_some() => r.rids.clone(),
                _ => Default::default(),
            };
            let msid = m.attribute_value("msid").and_then(|v| {
                let mut t = v.split_ascii_whitespace();
                Some((t.next()?.to_owned(), t.next()?.to_owned()))
            });
            let (send, recv) = if is_data {
                (true, true)
            } else if rtp {
                (m.direction.sends(), m.direction.receives())
            } else {
                (false, false)
            };
            LocalMedia {
                mindex: index,
                kind: m.kind,
                mid: p.mid.clone(),
                port: m.port,
                direction: m.direction,
                send,
                recv,
                payload_types,
                clock_rates,
                codec,
                rtx_payload_types: if rtp { p.rtx.clone() } else { Vec::new() },
                nack: rtp && p.nack,
                opus_red_pt,
                ssrc: ssrcs.map(|s| s.ssrc),
                rtx_ssrc: ssrcs.filter(|_| announced_rtx).map(|s| s.rtx_ssrc),
                msid,
                extensions: ExtensionIds::from_media(m),
                rids,
            }
        })
        .collect();
    let bundle_mids = sdp
        .attribute("group")
        .map(|g| {
            g.value_str()
                .split_ascii_whitespace()
                .skip(1)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    LocalMediaInfo {
        offer,
        media,
        bundle_mids,
        rtx,
        data_channel,
    }
}

fn clock_rate(m: &Media, r: Option<&RemoteMedia>, pt: u8) -> Option<u32> {
    m.attributes
        .iter()
        .filter(|a| a.is("rtpmap"))
        .filter_map(|a| parse_rtpmap(a.value.as_deref()?))
        .find(|(p, _, _)| *p == pt)
        .and_then(|(_, _, clock)| clock)
        .or_else(|| r.and_then(|r| r.clock_rate(pt)))
        .or_else(|| static_payload_type(pt).map(|(_, clock)| clock))
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::super::fixtures::{self, assert_same_lines};
    use super::super::parse;
    use super::super::remote::{RidOrder, check_remote};
    use super::*;

    fn spec_transport(setup: SetupRole) -> LocalTransport {
        LocalTransport {
            ice_ufrag: "7gEW".into(),
            ice_pwd: "zLrZJlZz9cH4L2gpEn0wB6".into(),
            fingerprint: "47:F8:09:...:91:17".into(),
            setup,
            address: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)),
            candidates: vec!["candidate:1 1 udp 2015363327 203.0.113.5 57012 typ host".into()],
            half_trickle: true,
            ice_lite: false,
            ssrcs: vec![
                LocalSsrcs {
                    ssrc: 3_082_545_957,
                    rtx_ssrc: 1,
                },
                LocalSsrcs {
                    ssrc: 776_393_357,
                    rtx_ssrc: 4_132_927_568,
                },
                LocalSsrcs {
                    ssrc: 5,
                    rtx_ssrc: 6,
                },
            ],
            now_us: 1_700_000_000_000_000,
        }
    }

    fn remote_of(text: &str) -> RemoteInfo {
        check_remote(&parse(text).expect("parses"), RidOrder::HighToLow).expect("checks")
    }

    #[test]
    fn sdp_merge_echotest_answer_matches_spec() {
        let offer_text = fixtures::browser_offer(true);
        let offer = parse(&offer_text).expect("parses");
        let remote = check_remote(&offer, RidOrder::HighToLow).expect("checks");
        // The script sees the stripped offer; its answer is what janus-sdp.js
        // would build from it.
        let stripped = strip(&offer).serialize();
        assert!(stripped.contains("a=rtcp-fb:96 goog-remb\r\n"));
        let answer = parse(fixtures::ECHOTEST_ANSWER).expect("parses");
        let (text, info) = merge_local(&answer, Some(&remote), &spec_transport(SetupRole::Active))
            .expect("merges");
        assert!(text.ends_with("\r\n"));
        assert_same_lines(&text, fixtures::MERGED_ANSWER);
        assert!(!info.offer);
        assert!(info.rtx);
        assert_eq!(info.bundle_mids, vec!["0", "1", "2"]);
        assert_eq!(
            info.data_channel,
            Some(DataChannelInfo {
                mindex: 2,
                legacy: false,
                sctp_port: Some(5000)
            })
        );
        let audio = &info.media[0];
        assert_eq!((audio.send, audio.recv, audio.port), (true, true, 9));
        assert_eq!(audio.payload_types, vec![111]);
        assert_eq!(audio.clock_rates, vec![(111, 48000)]);
        assert_eq!(audio.codec.as_deref(), Some("opus"));
        assert_eq!(audio.opus_red_pt, None, "the answer dropped RED");
        assert_eq!((audio.ssrc, audio.rtx_ssrc), (Some(3_082_545_957), None));
        assert_eq!(audio.extensions.transport_cc, Some(3));
        assert_eq!(audio.extensions.audio_level, None);
        assert_eq!(audio.msid, Some(("janus".into(), "janus0".into())));
        let video = &info.media[1];
        assert_eq!(video.payload_types, vec![96]);
        assert_eq!(video.rtx_payload_types, vec![(96, 97)]);
        assert_eq!(video.codec.as_deref(), Some("vp8"));
        assert!(video.nack);
        assert_eq!(
            (video.ssrc, video.rtx_ssrc),
            (Some(776_393_357), Some(4_132_927_568))
        );
        assert_eq!(video.extensions.repaired_rid, Some(11));
        assert_eq!(video.rids, [None, None, None]);
        let data = &info.media[2];
        assert_eq!(
            (data.kind, data.send, data.recv, data.ssrc),
            (MediaKind::Application, true, true, None)
        );
        assert_eq!(info.extensions().mid, Some(4));
    }

    #[test]
    fn sdp_merge_simulcast_recv_and_directions() {
        let text = fixtures::simulcast_offer().replace(
            "a=sendrecv\r\na=msid:stream1 audiotrack1",
            "a=sendonly\r\na=msid:stream1 audiotrack1",
        );
        let remote = remote_of(&text);
        let answer = fixtures::ECHOTEST_ANSWER.replace(
            "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n",
            "",
        );
        let answer = parse(&answer).expect("parses");
        let mut transport = spec_transport(SetupRole::Passive);
        transport.half_trickle = false;
        transport.ice_lite = true;
        let (merged, info) = merge_local(&answer, Some(&remote), &transport).expect("merges");
        let lines = fixtures::lines(&merged);
        assert!(lines.contains(&"a=ice-lite"));
        assert!(!merged.contains("candidate"));
        assert!(lines.contains(&"a=setup:passive"));
        // The answer said sendrecv to a sendonly offer: clamped to recvonly
        // (the msid is still written: only inactive m-lines omit it).
        assert_eq!(info.media[0].direction, Direction::RecvOnly);
        assert_eq!((info.media[0].send, info.media[0].recv), (false, true));
        assert!(lines.contains(&"a=recvonly") && lines.contains(&"a=msid:janus janus0"));
        let video_tail: Vec<&str> = lines
            .iter()
            .skip_while(|l| !l.starts_with("a=ssrc:776393357"))
            .copied()
            .collect();
        assert_eq!(
            &video_tail[..6],
            &[
                "a=ssrc:776393357 cname:janus",
                "a=ssrc:4132927568 cname:janus",
                "a=rid:h recv",
                "a=rid:m recv",
                "a=rid:l recv",
                "a=simulcast:recv h;~m;l",
            ]
        );
        assert_eq!(
            info.media[1].rids,
            [Some("l".into()), Some("m".into()), Some("h".into())]
        );
        // Without the rid extension in the answer, no rid lines.
        let no_rid = fixtures::ECHOTEST_ANSWER.replace(
            "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n",
            "",
        );
        let (merged, info) =
            merge_local(&parse(&no_rid).expect("parses"), Some(&remote), &transport)
                .expect("merges");
        assert!(!merged.contains("a=rid:") && !merged.contains("a=simulcast"));
        assert_eq!(info.media[1].rids, [None, None, None]);
        // Legacy Firefox syntax is mirrored.
        let legacy = remote_of(
            &fixtures::simulcast_offer()
                .replace("a=simulcast:send h;~m;l", "a=simulcast: send rid=h;m;l"),
        );
        let (merged, _) = merge_local(&answer, Some(&legacy), &transport).expect("merges");
        assert!(merged.contains("\r\na=simulcast: recv rid=h;m;l\r\n"));
    }

    #[test]
    fn sdp_merge_rejected_mlines_and_plugin_msid() {
        let text = fixtures::browser_offer(false).replace(
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
            "m=video 9 UDP/TLS/RTP/SAVPF 96",
        );
        let remote = remote_of(&text);
        let answer = "v=0\r\no=- 0 0 IN IP4 1.1.1.1\r\ns=-\r\nt=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=recvonly\r\na=msid:s t\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=inactive\r\na=rtpmap:96 VP8/90000\r\n\
m=video 0 UDP/TLS/RTP/SAVPF 0\r\n";
        let (merged, info) = merge_local(
            &parse(answer).expect("parses"),
            Some(&remote),
            &spec_transport(SetupRole::Active),
        )
        .expect("merges");
        let lines = fixtures::lines(&merged);
        assert_eq!(lines[1], "o=- 1700000000000000 1 IN IP4 203.0.113.5");
        assert!(lines.contains(&"a=group:BUNDLE 0 1"));
        let rejected: Vec<&str> = lines
            .iter()
            .skip_while(|l| !l.starts_with("m=video 0"))
            .copied()
            .collect();
        assert_eq!(
            rejected,
            vec![
                "m=video 0 UDP/TLS/RTP/SAVPF 0",
                "c=IN IP4 203.0.113.5",
                "a=inactive",
                "a=mid:2"
            ]
        );
        assert!(lines.contains(&"a=msid:s t"));
        assert_eq!(info.media[0].clock_rates, vec![(0, 8000)]);
        assert_eq!(info.media[0].codec.as_deref(), Some("pcmu"));
        assert_eq!((info.media[0].send, info.media[0].recv), (false, true));
        // Inactive video: no msid, no FID, the SSRC is still announced.
        assert_eq!(info.media[1].direction, Direction::Inactive);
        assert!(!merged.contains("FID"));
        assert!(!merged.contains("a=msid:janus janus1"));
        assert!(merged.contains("a=ssrc:776393357 cname:janus"));
        assert_eq!(info.media[2].port, 0);
        assert_eq!(info.media[2].ssrc, None);
    }

    #[test]
    fn sdp_merge_answer_errors() {
        let remote = remote_of(&fixtures::browser_offer(true));
        let answer = parse(fixtures::ECHOTEST_ANSWER).expect("parses");
        let t = spec_transport(SetupRole::Active);
        assert!(merge_local(&answer, None, &t).is_err());
        let mut short = answer.clone();
        short.media.pop();
        assert!(merge_local(&short, Some(&remote), &t).is_err());
        let mut swapped = answer.clone();
        swapped.media.swap(0, 1);
        assert!(merge_local(&swapped, Some(&remote), &t).is_err());
        let mut no_ssrc = t.clone();
        no_ssrc.ssrcs.truncate(1);
        let e = merge_local(&answer, Some(&remote), &no_ssrc).expect_err("needs SSRCs");
        assert_eq!(e.0, "Error merging SDP: no local SSRC for m-line #1");
        let bad_msid = fixtures::ECHOTEST_ANSWER.replace(
            "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n",
            "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=msid:x\r\n",
        );
        assert!(merge_local(&parse(&bad_msid).expect("parses"), Some(&remote), &t).is_err());
    }

    #[test]
    fn sdp_merge_plugin_offer() {
        let plugin = "v=0\r\no=- 42 7 IN IP4 127.0.0.1\r\ns=VideoRoom\r\nt=0 0\r\n\
m=audio 1 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\na=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=rtpmap:111 opus/48000/2\r\n\
m=video 1 UDP/TLS/RTP/SAVPF 96 127 98\r\na=mid:v\r\na=sendonly\r\na=msid:pub track\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n\
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n\
a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtpmap:127 H264/90000\r\na=rtpmap:98 VP9/90000\r\n\
m=application 1 DTLS/SCTP 5000\r\n";
        let t = spec_transport(SetupRole::Actpass);
        let (merged, info) =
            merge_local(&parse(plugin).expect("parses"), None, &t).expect("merges");
        let lines = fixtures::lines(&merged);
        assert_eq!(lines[1], "o=- 42 7 IN IP4 203.0.113.5");
        assert_eq!(lines[2], "s=VideoRoom");
        assert!(lines.contains(&"a=group:BUNDLE 0 v 2"));
        assert!(lines.contains(&"a=setup:actpass"));
        assert!(!lines.contains(&"a=setup:active"));
        // RTX: 96 → 97, 127 → 96 is taken → 99 (97, 98 used), 98 → 100.
        assert!(
            lines.contains(&"m=video 9 UDP/TLS/RTP/SAVPF 96 127 98 97 99 100"),
            "{merged}"
        );
        assert!(lines.contains(&"a=fmtp:99 apt=127"));
        assert!(lines.contains(&"a=fmtp:100 apt=98"));
        assert!(lines.contains(&"a=ssrc-group:FID 776393357 4132927568"));
        assert!(lines.contains(&"a=msid:pub track"));
        assert!(lines.contains(&"a=msid:janus janus0"));
        assert!(
            !merged.contains("rtp-stream-id"),
            "rid extensions are removed from offers"
        );
        // Legacy data channel syntax without a client preference.
        assert!(lines.contains(&"m=application 9 DTLS/SCTP 5000"));
        assert!(lines.contains(&"a=sctpmap:5000 webrtc-datachannel 16"));
        assert!(info.offer);
        assert_eq!(info.media[1].mid, "v");
        assert_eq!(
            info.media[1].rtx_payload_types,
            vec![(96, 97), (127, 99), (98, 100)]
        );
        assert_eq!((info.media[0].send, info.media[0].recv), (true, false));
        assert_eq!(info.media[1].extensions.rid, None);
        assert_eq!(
            info.data_channel,
            Some(DataChannelInfo {
                mindex: 2,
                legacy: true,
                sctp_port: Some(5000)
            })
        );
        // The audio has no RTX.
        assert!(!lines.contains(&"a=ssrc:1 cname:janus"));
    }

    #[test]
    fn sdp_merge_rtx_wraps_and_ipv6() {
        assert_eq!(next_free_pt(127, &[]), Some(96));
        assert_eq!(next_free_pt(126, &[127]), Some(96));
        assert_eq!(next_free_pt(100, &(96..=127).collect::<Vec<_>>()), None);
        assert_eq!(next_free_pt(34, &(35..=127).collect::<Vec<_>>()), None);
        let plugin = "v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nm=video 9 UDP/TLS/RTP/SAVPF 127\r\na=rtpmap:127 VP8/90000\r\n";
        let mut t = spec_transport(SetupRole::Actpass);
        t.address = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let (merged, _) = merge_local(&parse(plugin).expect("parses"), None, &t).expect("merges");
        assert!(merged.contains("m=video 9 UDP/TLS/RTP/SAVPF 127 96\r\nc=IN IP6 ::1\r\n"));
        assert!(merged.contains("o=- 1 1 IN IP6 ::1\r\n"));
        assert!(merged.contains("a=fmtp:96 apt=127\r\n"));
    }

    #[test]
    fn sdp_merge_data_only_answers() {
        for legacy in [false, true] {
            let remote = remote_of(&fixtures::data_only_offer(legacy));
            let stripped = strip(&parse(&fixtures::data_only_offer(legacy)).expect("parses"));
            let (merged, info) =
                merge_local(&stripped, Some(&remote), &spec_transport(SetupRole::Active))
                    .expect("merges");
            let expected = if legacy {
                "a=sctpmap:5000 webrtc-datachannel 16"
            } else {
                "a=sctp-port:5000"
            };
            assert!(merged.contains(expected), "{merged}");
            assert!(merged.contains("a=group:BUNDLE 0\r\n"));
            assert_eq!(info.data_channel.map(|d| d.legacy), Some(legacy));
        }
    }

    #[test]
    fn sdp_merge_generators() {
        let mut rng = StdRng::seed_from_u64(7);
        let ssrcs = generate_local_ssrcs(&mut rng, 5);
        let mut all: Vec<u32> = ssrcs.iter().flat_map(|s| [s.ssrc, s.rtx_ssrc]).collect();
        assert!(all.iter().all(|s| *s != 0));
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 10);
        let (ufrag, pwd) = generate_ice_credentials(&mut rng);
        assert_eq!((ufrag.len(), pwd.len()), (4, 22));
        assert!(
            ufrag
                .bytes()
                .chain(pwd.bytes())
                .all(|b| b.is_ascii_alphanumeric())
        );
    }
}
