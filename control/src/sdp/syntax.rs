//! The SDP data model, the strict parser (media.md §2.1) and the canonical
//! serializer (the line order of media.md §2.4).

use std::fmt::{self, Write as _};

use super::SdpError;

/// Longest accepted `m=` line, in bytes, `m=` included.
const MAX_MLINE_LEN: usize = 200;
/// Longest `a=mid` value on an active audio/video m-line.
const MAX_MID_LEN: usize = 16;
/// Longest media type token of an `m=` line.
const MAX_MEDIA_TYPE_LEN: usize = 31;
/// Longest transport protocol token of an `m=` line.
const MAX_PROTO_LEN: usize = 63;
/// Longest address token of `o=`/`c=` lines.
const MAX_ADDR_LEN: usize = 255;
/// Longest address type token of `o=`/`c=` lines (`IP4`, `IP6`).
const MAX_ADDRTYPE_LEN: usize = 5;

/// The media type of an m-line. Anything else fails the parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// `m=audio`
    Audio,
    /// `m=video`
    Video,
    /// `m=application` (data channels when the protocol is DTLS/SCTP)
    Application,
}

impl MediaKind {
    /// The token written in `m=` lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Application => "application",
        }
    }

    fn parse(token: &str) -> Option<Self> {
        if token.eq_ignore_ascii_case("audio") {
            Some(Self::Audio)
        } else if token.eq_ignore_ascii_case("video") {
            Some(Self::Video)
        } else if token.eq_ignore_ascii_case("application") {
            Some(Self::Application)
        } else {
            None
        }
    }

    /// Audio or video (an RTP m-line).
    pub fn is_rtp(self) -> bool {
        matches!(self, Self::Audio | Self::Video)
    }
}

/// The network address type of `o=` and `c=` lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrType {
    /// `IP4`
    Ip4,
    /// `IP6`
    Ip6,
}

impl AddrType {
    /// The token written in `o=`/`c=` lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ip4 => "IP4",
            Self::Ip6 => "IP6",
        }
    }

    fn parse(token: &str) -> Option<Self> {
        if token.eq_ignore_ascii_case("IP4") {
            Some(Self::Ip4)
        } else if token.eq_ignore_ascii_case("IP6") {
            Some(Self::Ip6)
        } else {
            None
        }
    }
}

/// A media direction (`a=sendrecv` and friends), from the writer's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// `a=sendrecv` (the default)
    #[default]
    SendRecv,
    /// `a=sendonly`
    SendOnly,
    /// `a=recvonly`
    RecvOnly,
    /// `a=inactive`
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    /// Parses a direction attribute name (case-insensitive).
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::SendRecv,
            Self::SendOnly,
            Self::RecvOnly,
            Self::Inactive,
        ]
        .into_iter()
        .find(|d| name.eq_ignore_ascii_case(d.as_str()))
    }

    /// The same direction seen from the other peer (`sendonly` ↔ `recvonly`).
    pub fn reversed(self) -> Self {
        match self {
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            other => other,
        }
    }

    /// Whether the writer of this direction sends.
    pub fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }

    /// Whether the writer of this direction receives.
    pub fn receives(self) -> bool {
        matches!(self, Self::SendRecv | Self::RecvOnly)
    }
}

/// `o=<username> <sess-id> <sess-version> IN <addrtype> <address>`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// User name (`-` for none).
    pub username: String,
    /// Session id.
    pub session_id: u64,
    /// Session version.
    pub session_version: u64,
    /// `IP4` or `IP6`.
    pub addr_type: AddrType,
    /// Unicast address.
    pub address: String,
}

/// `c=IN <addrtype> <address>`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `IP4` or `IP6`.
    pub addr_type: AddrType,
    /// Connection address.
    pub address: String,
}

impl Connection {
    /// `IN IP4 1.1.1.1`, the placeholder of stripped SDPs (media.md §2.2).
    pub fn placeholder() -> Self {
        Self {
            addr_type: AddrType::Ip4,
            address: "1.1.1.1".to_owned(),
        }
    }
}

/// `t=<start> <stop>`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Start time.
    pub start: u64,
    /// Stop time.
    pub stop: u64,
}

/// A media-level `b=AS:<n>` or `b=TIAS:<n>` line (other kinds are ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    /// `AS` or `TIAS`.
    pub kind: String,
    /// The value (leading digits of the line; 0 when there are none).
    pub value: u64,
}

/// An `a=name` or `a=name:value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The name (before the first colon).
    pub name: String,
    /// The value (after the first colon), never empty.
    pub value: Option<String>,
}

impl Attribute {
    /// `a=name`
    pub fn flag(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            value: None,
        }
    }

    /// `a=name:value`
    pub fn new(name: &str, value: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            value: Some(value.into()),
        }
    }

    /// Whether the name equals `name` (case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// The value, or `""` for a value-less attribute.
    pub fn value_str(&self) -> &str {
        self.value.as_deref().unwrap_or("")
    }

    /// For `rtpmap`/`fmtp`/`rtcp-fb`-like values: the leading payload type.
    pub fn payload_type(&self) -> Option<u8> {
        let value = self.value.as_deref()?;
        let token = value.split(|c: char| c.is_ascii_whitespace()).next()?;
        parse_payload_type(token)
    }
}

/// One m-line and everything up to the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video` or `application`.
    pub kind: MediaKind,
    /// The port as written (0 = rejected, but see [`Sdp::effective_port`]).
    pub port: u16,
    /// The transport protocol (`UDP/TLS/RTP/SAVPF`, `UDP/DTLS/SCTP`, ...).
    pub proto: String,
    /// The formats (payload types for RTP m-lines), at least one.
    pub formats: Vec<String>,
    /// The media-level `c=` line.
    pub connection: Option<Connection>,
    /// The first `b=AS`/`b=TIAS` line.
    pub bandwidth: Option<Bandwidth>,
    /// The direction attribute (default `sendrecv`); not kept in `attributes`.
    pub direction: Direction,
    /// All other `a=` lines, in order.
    pub attributes: Vec<Attribute>,
}

impl Media {
    /// The first attribute called `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.is(name))
    }

    /// The value of the first attribute called `name` that has one.
    pub fn attribute_value(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .filter(|a| a.is(name))
            .find_map(|a| a.value.as_deref())
    }

    /// The `a=mid` value.
    pub fn mid(&self) -> Option<&str> {
        self.attribute_value("mid")
    }

    /// The numeric formats (payload types) of the m-line, in order.
    pub fn payload_types(&self) -> Vec<u8> {
        self.formats
            .iter()
            .filter_map(|f| parse_payload_type(f))
            .collect()
    }

    /// Whether the protocol is one of the SCTP-over-DTLS ones.
    pub fn is_sctp(&self) -> bool {
        self.proto.eq_ignore_ascii_case("UDP/DTLS/SCTP")
            || self.proto.eq_ignore_ascii_case("DTLS/SCTP")
    }

    /// The `rtpmap` of `pt`: `(encoding name, clock rate)`.
    pub fn rtpmap(&self, pt: u8) -> Option<(&str, Option<u32>)> {
        self.attributes
            .iter()
            .filter(|a| a.is("rtpmap") && a.payload_type() == Some(pt))
            .find_map(|a| parse_rtpmap(a.value.as_deref()?))
            .map(|(_, name, clock)| (name, clock))
    }

    /// Removes payload type `pt` from the formats together with its
    /// `rtpmap`/`fmtp`/`rtcp-fb` lines.
    pub fn remove_payload_type(&mut self, pt: u8) {
        self.formats.retain(|f| parse_payload_type(f) != Some(pt));
        self.attributes.retain(|a| {
            !((a.is("rtpmap") || a.is("fmtp") || a.is("rtcp-fb")) && a.payload_type() == Some(pt))
        });
    }
}

/// A parsed SDP: session-level lines and attributes, then the m-lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    /// `v=`
    pub version: u32,
    /// `o=`
    pub origin: Origin,
    /// `s=`
    pub session_name: String,
    /// `t=` (written as `t=0 0` when absent)
    pub timing: Option<Timing>,
    /// Session-level `c=`
    pub connection: Option<Connection>,
    /// Session-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// The m-lines, in order (at least one).
    pub media: Vec<Media>,
}

impl Sdp {
    /// The first session-level attribute called `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.is(name))
    }

    /// The port of m-line `index` as the core treats it: a first m-line with
    /// port 0, and an m-line with `a=bundle-only` and port 0, count as port 9.
    pub fn effective_port(&self, index: usize) -> u16 {
        self.media
            .get(index)
            .map_or(0, |m| effective_port(index, m))
    }

    /// The first video codec: the lower-case encoding name of the first
    /// payload type (the second one if the first is RED) of the first active
    /// video m-line whose codec is a known video codec (vp8, vp9, h264, av1,
    /// h265), if any.
    pub fn first_video_codec(&self) -> Option<String> {
        self.media.iter().enumerate().find_map(|(index, m)| {
            if m.kind != MediaKind::Video
                || effective_port(index, m) == 0
                || m.direction == Direction::Inactive
            {
                return None;
            }
            let mut pts = m.payload_types().into_iter();
            let mut codec = codec_name(m, pts.next()?)?;
            if codec == "red" {
                codec = codec_name(m, pts.next()?)?;
            }
            const KNOWN: [&str; 5] = ["vp8", "vp9", "h264", "av1", "h265"];
            KNOWN.contains(&codec.as_str()).then_some(codec)
        })
    }

    /// Writes the canonical text: `v=`, `o=`, `s=`, `t=`, session `c=` (if
    /// any), session attributes, then per m-line `m=`, `c=`, `b=` (active
    /// m-lines only), the direction and the attributes. A rejected (port 0)
    /// audio/video m-line is written with the single format `0` and only its
    /// `a=mid`; a rejected application m-line keeps its formats. Every line
    /// ends with `\r\n`.
    pub fn serialize(&self) -> String {
        let mut out = String::with_capacity(1024);
        let t = self.timing.unwrap_or(Timing { start: 0, stop: 0 });
        let o = &self.origin;
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "v={}\r\no={} {} {} IN {} {}\r\ns={}\r\nt={} {}\r\n",
            self.version,
            o.username,
            o.session_id,
            o.session_version,
            o.addr_type.as_str(),
            o.address,
            self.session_name,
            t.start,
            t.stop
        );
        if let Some(c) = &self.connection {
            write_connection(&mut out, c);
        }
        for a in &self.attributes {
            write_attribute(&mut out, a);
        }
        for m in &self.media {
            let _ = write!(out, "m={} {} {}", m.kind.as_str(), m.port, m.proto);
            if m.port == 0 && m.kind != MediaKind::Application {
                out.push_str(" 0");
            } else {
                for f in &m.formats {
                    out.push(' ');
                    out.push_str(f);
                }
            }
            out.push_str("\r\n");
            if let Some(c) = &m.connection {
                write_connection(&mut out, c);
            }
            if let (true, Some(b)) = (m.port > 0, &m.bandwidth) {
                let _ = write!(out, "b={}:{}\r\n", b.kind, b.value);
            }
            let _ = write!(out, "a={}\r\n", m.direction.as_str());
            for a in &m.attributes {
                if m.port == 0 && !a.is("mid") {
                    continue;
                }
                write_attribute(&mut out, a);
            }
        }
        out
    }
}

impl fmt::Display for Sdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.serialize())
    }
}

fn write_connection(out: &mut String, c: &Connection) {
    let _ = write!(out, "c=IN {} {}\r\n", c.addr_type.as_str(), c.address);
}

fn write_attribute(out: &mut String, a: &Attribute) {
    match &a.value {
        Some(v) => {
            let _ = write!(out, "a={}:{}\r\n", a.name, v);
        }
        None => {
            let _ = write!(out, "a={}\r\n", a.name);
        }
    }
}

/// See [`Sdp::effective_port`].
pub(crate) fn effective_port(index: usize, m: &Media) -> u16 {
    if m.port == 0 && (index == 0 || m.attribute("bundle-only").is_some()) {
        9
    } else {
        m.port
    }
}

/// A payload type token: a decimal number up to 127.
pub(crate) fn parse_payload_type(token: &str) -> Option<u8> {
    if token.is_empty() || token.len() > 3 || !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse::<u8>().ok().filter(|pt| *pt <= 127)
}

/// `<pt> <name>/<clock>[/<params>]` → `(pt, name, clock)`.
pub(crate) fn parse_rtpmap(value: &str) -> Option<(u8, &str, Option<u32>)> {
    let mut tokens = value.split_ascii_whitespace();
    let pt = parse_payload_type(tokens.next()?)?;
    let encoding = tokens.next()?;
    let mut parts = encoding.split('/');
    let name = parts.next().filter(|n| !n.is_empty())?;
    let clock = parts.next().and_then(|c| c.parse::<u32>().ok());
    Some((pt, name, clock))
}

/// The lower-case codec name of `pt` on `m`: its `rtpmap` encoding name, or the
/// static assignment (RFC 3551) for payload types without one.
pub(crate) fn codec_name(m: &Media, pt: u8) -> Option<String> {
    if let Some((name, _)) = m.rtpmap(pt) {
        return Some(name.to_ascii_lowercase());
    }
    static_payload_type(pt).map(|(name, _)| name.to_owned())
}

/// Static RTP/AVP payload types that browsers use without an `rtpmap`.
pub(crate) fn static_payload_type(pt: u8) -> Option<(&'static str, u32)> {
    match pt {
        0 => Some(("pcmu", 8000)),
        8 => Some(("pcma", 8000)),
        9 => Some(("g722", 8000)),
        _ => None,
    }
}

/// Longest error text (Janus reports parse errors through a 512-byte buffer).
const MAX_ERROR_LEN: usize = 511;

fn error(text: String) -> SdpError {
    let mut text = text;
    if text.len() > MAX_ERROR_LEN {
        let mut cut = MAX_ERROR_LEN;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    SdpError(text)
}

fn parse_addr(addr_type: &str, addr: &str) -> Option<(Option<AddrType>, String)> {
    if addr_type.len() > MAX_ADDRTYPE_LEN || addr.len() > MAX_ADDR_LEN {
        return None;
    }
    Some((AddrType::parse(addr_type), addr.to_owned()))
}

fn parse_connection(line: &str) -> Result<Connection, SdpError> {
    let mut tokens = line[2..].split_ascii_whitespace();
    let parsed = match (tokens.next(), tokens.next(), tokens.next()) {
        (Some("IN"), Some(t), Some(addr)) => parse_addr(t, addr).map(|(ty, a)| (t, ty, a)),
        _ => None,
    };
    match parsed {
        None => Err(error(format!("Invalid c= line: {line}"))),
        Some((t, None, _)) => Err(error(format!(
            "Invalid c= line (unsupported protocol {t}): {line}"
        ))),
        Some((_, Some(addr_type), address)) => Ok(Connection { addr_type, address }),
    }
}

fn parse_origin(line: &str) -> Result<Origin, SdpError> {
    let invalid = || error(format!("Invalid o= line: {line}"));
    let tokens: Vec<&str> = line[2..].split_ascii_whitespace().collect();
    let [username, sid, version, net, addr_type, address, ..] = tokens.as_slice() else {
        return Err(invalid());
    };
    if *net != "IN" {
        return Err(invalid());
    }
    let session_id = sid.parse::<u64>().map_err(|_| invalid())?;
    let session_version = version.parse::<u64>().map_err(|_| invalid())?;
    let (addr_type, address) = parse_addr(addr_type, address).ok_or_else(invalid)?;
    let Some(addr_type) = addr_type else {
        let t = tokens[4];
        return Err(error(format!(
            "Invalid o= line (unsupported protocol {t}): {line}"
        )));
    };
    Ok(Origin {
        username: (*username).to_owned(),
        session_id,
        session_version,
        addr_type,
        address,
    })
}

fn parse_timing(line: &str) -> Result<Timing, SdpError> {
    let mut tokens = line[2..].split_ascii_whitespace();
    match (
        tokens.next().and_then(|t| t.parse::<u64>().ok()),
        tokens.next().and_then(|t| t.parse::<u64>().ok()),
    ) {
        (Some(start), Some(stop)) => Ok(Timing { start, stop }),
        _ => Err(error(format!("Invalid t= line: {line}"))),
    }
}

fn parse_attribute(line: &str) -> Result<Attribute, SdpError> {
    let rest = &line[2..];
    match rest.split_once(':') {
        None => Ok(Attribute {
            name: rest.to_owned(),
            value: None,
        }),
        Some((_, "")) => Err(error(format!("Invalid a= line: {rest}"))),
        Some((name, value)) => Ok(Attribute {
            name: name.to_owned(),
            value: Some(value.to_owned()),
        }),
    }
}

fn parse_mline(line: &str) -> Result<Media, SdpError> {
    if line.len() > MAX_MLINE_LEN {
        return Err(error(format!("Invalid m= line (too long): {}", line.len())));
    }
    let invalid = || error(format!("Invalid m= line: {line}"));
    let mut tokens = line[2..].split_ascii_whitespace();
    let (Some(kind), Some(port), Some(proto)) = (tokens.next(), tokens.next(), tokens.next())
    else {
        return Err(invalid());
    };
    if kind.len() > MAX_MEDIA_TYPE_LEN || proto.len() > MAX_PROTO_LEN {
        return Err(invalid());
    }
    let port = port.parse::<u16>().map_err(|_| invalid())?;
    let kind = MediaKind::parse(kind).ok_or_else(invalid)?;
    let formats: Vec<String> = tokens.map(str::to_owned).collect();
    if formats.is_empty() {
        return Err(error(format!(
            "Invalid m= line (no payload types/formats): {line}"
        )));
    }
    Ok(Media {
        kind,
        port,
        proto: proto.to_owned(),
        formats,
        connection: None,
        bandwidth: None,
        direction: Direction::SendRecv,
        attributes: Vec::new(),
    })
}

fn parse_bandwidth(line: &str) -> Result<Option<Bandwidth>, SdpError> {
    let rest = &line[2..];
    let Some((kind, value)) = rest.split_once(':').filter(|(_, v)| !v.is_empty()) else {
        return Err(error(format!("Invalid b= line: {rest}")));
    };
    if kind != "AS" && kind != "TIAS" {
        return Ok(None);
    }
    let digits: String = value
        .chars()
        .take_while(char::is_ascii_digit)
        .take(19)
        .collect();
    Ok(Some(Bandwidth {
        kind: kind.to_owned(),
        value: digits.parse().unwrap_or(0),
    }))
}

/// Parses an SDP (media.md §2.1). Lines end with `\n` or `\r\n` (anything
/// after a `\r` inside a line is ignored); empty lines are skipped.
pub fn parse(text: &str) -> Result<Sdp, SdpError> {
    if !text.starts_with("v=") {
        return Err(error("Invalid SDP (doesn't start with v=)".to_owned()));
    }
    let mut version = None;
    let mut origin = None;
    let mut session_name = None;
    let mut timing = None;
    let mut connection = None;
    let mut attributes = Vec::new();
    let mut media: Vec<Media> = Vec::new();
    for raw in text.split('\n') {
        let line = raw.split('\r').next().unwrap_or("");
        if line.is_empty() {
            continue;
        }
        if line.len() < 3 {
            return Err(error(format!(
                "Invalid line ({} bytes): {line}",
                line.len()
            )));
        }
        let bytes = line.as_bytes();
        if bytes[1] != b'=' {
            return Err(error(format!("Invalid line (2nd char is not '='): {line}")));
        }
        // bytes[1] is '=' so bytes[0] is a one-byte character and line[2..] is
        // on a character boundary.
        let kind = bytes[0];
        if kind == b'm' {
            media.push(parse_mline(line)?);
            continue;
        }
        if let Some(m) = media.last_mut() {
            match kind {
                b'c' => {
                    if m.connection.is_some() {
                        return Err(error(format!("Multiple m-line c= lines: {line}")));
                    }
                    m.connection = Some(parse_connection(line)?);
                }
                b'b' if m.bandwidth.is_none() => m.bandwidth = parse_bandwidth(line)?,
                b'a' => {
                    let a = parse_attribute(line)?;
                    match (&a.value, Direction::parse(&a.name)) {
                        (None, Some(direction)) => m.direction = direction,
                        _ => m.attributes.push(a),
                    }
                }
                _ => {}
            }
            continue;
        }
        match kind {
            b'v' => {
                let digits: String = line[2..].chars().take_while(char::is_ascii_digit).collect();
                version = Some(
                    digits
                        .parse::<u32>()
                        .map_err(|_| error(format!("Invalid v= line: {line}")))?,
                );
            }
            b'o' => {
                if origin.is_some() {
                    return Err(error(format!("Multiple o= lines: {line}")));
                }
                origin = Some(parse_origin(line)?);
            }
            b's' => {
                if session_name.is_some() {
                    return Err(error(format!("Multiple s= lines: {line}")));
                }
                session_name = Some(line[2..].to_owned());
            }
            b't' => timing = Some(parse_timing(line)?),
            b'c' => {
                if connection.is_some() {
                    return Err(error(format!("Multiple global c= lines: {line}")));
                }
                connection = Some(parse_connection(line)?);
            }
            b'a' => attributes.push(parse_attribute(line)?),
            _ => {}
        }
    }
    let (Some(origin), Some(session_name), false) = (origin, session_name, media.is_empty()) else {
        return Err(error("Missing mandatory lines (o=, s= or m=)".to_owned()));
    };
    let sdp = Sdp {
        version: version.unwrap_or(0),
        origin,
        session_name,
        timing,
        connection,
        attributes,
        media,
    };
    check_attributes(&sdp)?;
    Ok(sdp)
}

/// The attribute checks of media.md §2.1 that follow the syntax: `a=mid` has
/// a value (at most 16 characters on active audio/video m-lines) and
/// `a=setup` has a value.
fn check_attributes(sdp: &Sdp) -> Result<(), SdpError> {
    if sdp
        .attributes
        .iter()
        .any(|a| a.is("setup") && a.value.is_none())
    {
        return Err(error("Invalid setup attribute (no value)".to_owned()));
    }
    for (index, m) in sdp.media.iter().enumerate() {
        for a in &m.attributes {
            if a.is("setup") && a.value.is_none() {
                return Err(error("Invalid setup attribute (no value)".to_owned()));
            }
            if !a.is("mid") {
                continue;
            }
            let Some(mid) = &a.value else {
                return Err(error(format!(
                    "Invalid mid attribute on m-line #{index} (no value)"
                )));
            };
            let len = mid.chars().count();
            if m.kind.is_rtp() && effective_port(index, m) > 0 && len > MAX_MID_LEN {
                return Err(error(format!(
                    "mid on m-line #{index} too large ({len} > {MAX_MID_LEN})"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n";

    fn err(text: &str) -> String {
        parse(text).map(|_| ()).expect_err("must be rejected").0
    }

    #[test]
    fn sdp_parses_minimal_with_crlf_and_lf() {
        let crlf = parse(MINIMAL).expect("valid");
        let lf = parse(&MINIMAL.replace("\r\n", "\n")).expect("valid");
        assert_eq!(crlf, lf);
        assert_eq!(crlf.origin.session_id, 1);
        assert_eq!(crlf.origin.session_version, 2);
        assert_eq!(crlf.media.len(), 1);
        assert_eq!(crlf.media[0].kind, MediaKind::Audio);
        assert_eq!(crlf.media[0].formats, vec!["111".to_owned()]);
        assert_eq!(crlf.media[0].mid(), Some("0"));
        assert_eq!(crlf.media[0].rtpmap(111), Some(("opus", Some(48000))));
        // Blank lines are skipped; a stray \r cuts the line.
        let blank = MINIMAL
            .replace("s=-\r\n", "s=-\r\n\r\n\n")
            .replace("a=mid:0", "a=mid:0\rjunk");
        assert_eq!(parse(&blank).expect("valid"), crlf);
    }

    #[test]
    fn sdp_serializes_canonically() {
        let sdp = parse(MINIMAL).expect("valid");
        assert_eq!(
            sdp.serialize(),
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=sendrecv\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n"
        );
        let no_t = parse(&MINIMAL.replace("t=0 0\r\n", "")).expect("valid");
        assert!(no_t.serialize().contains("\r\nt=0 0\r\n"));
    }

    #[test]
    fn sdp_rejects_each_syntax_error() {
        let cases: &[(&str, &str)] = &[
            (
                "o=- 1 2 IN IP4 x\r\nv=0\r\n",
                "Invalid SDP (doesn't start with v=)",
            ),
            ("", "Invalid SDP (doesn't start with v=)"),
            ("v=0\r\nab\r\n", "Invalid line (2 bytes): ab"),
            ("v=0\r\nabc\r\n", "Invalid line (2nd char is not '='): abc"),
            ("v=x\r\n", "Invalid v= line: v=x"),
            (
                "v=0\r\no=- 1 2 IN IP4 a\r\no=- 1 2 IN IP4 a\r\n",
                "Multiple o= lines: o=- 1 2 IN IP4 a",
            ),
            (
                "v=0\r\no=- 1 2 IN IP4\r\n",
                "Invalid o= line: o=- 1 2 IN IP4",
            ),
            (
                "v=0\r\no=- x 2 IN IP4 a\r\n",
                "Invalid o= line: o=- x 2 IN IP4 a",
            ),
            (
                "v=0\r\no=- 1 2 ON IP4 a\r\n",
                "Invalid o= line: o=- 1 2 ON IP4 a",
            ),
            (
                "v=0\r\no=- 1 2 IN IPX a\r\n",
                "Invalid o= line (unsupported protocol IPX): o=- 1 2 IN IPX a",
            ),
            ("v=0\r\ns=a\r\ns=b\r\n", "Multiple s= lines: s=b"),
            ("v=0\r\nt=0\r\n", "Invalid t= line: t=0"),
            ("v=0\r\nt=a b\r\n", "Invalid t= line: t=a b"),
            ("v=0\r\nc=IN IP4\r\n", "Invalid c= line: c=IN IP4"),
            (
                "v=0\r\nc=IN XX4 1.2.3.4\r\n",
                "Invalid c= line (unsupported protocol XX4): c=IN XX4 1.2.3.4",
            ),
            (
                "v=0\r\nc=IN IP4 a\r\nc=IN IP4 b\r\n",
                "Multiple global c= lines: c=IN IP4 b",
            ),
            ("v=0\r\na=foo:\r\n", "Invalid a= line: foo:"),
            (
                "v=0\r\nm=audio 9 RTP/AVP\r\n",
                "Invalid m= line (no payload types/formats): m=audio 9 RTP/AVP",
            ),
            (
                "v=0\r\nm=text 9 RTP/AVP 0\r\n",
                "Invalid m= line: m=text 9 RTP/AVP 0",
            ),
            (
                "v=0\r\nm=audio x RTP/AVP 0\r\n",
                "Invalid m= line: m=audio x RTP/AVP 0",
            ),
            (
                "v=0\r\nm=audio 70000 RTP/AVP 0\r\n",
                "Invalid m= line: m=audio 70000 RTP/AVP 0",
            ),
            ("v=0\r\nm=audio\r\n", "Invalid m= line: m=audio"),
            (
                "v=0\r\nm=audio 9 RTP/AVP 0\r\nc=IN IP4 a\r\nc=IN IP4 b\r\n",
                "Multiple m-line c= lines: c=IN IP4 b",
            ),
            (
                "v=0\r\nm=audio 9 RTP/AVP 0\r\nc=IN IP9 a\r\n",
                "Invalid c= line (unsupported protocol IP9): c=IN IP9 a",
            ),
            (
                "v=0\r\nm=audio 9 RTP/AVP 0\r\nb=AS\r\n",
                "Invalid b= line: AS",
            ),
            (
                "v=0\r\nm=audio 9 RTP/AVP 0\r\na=x:\r\n",
                "Invalid a= line: x:",
            ),
            (
                "v=0\r\ns=-\r\nm=audio 9 RTP/AVP 0\r\n",
                "Missing mandatory lines (o=, s= or m=)",
            ),
            (
                "v=0\r\no=- 1 2 IN IP4 a\r\nm=audio 9 RTP/AVP 0\r\n",
                "Missing mandatory lines (o=, s= or m=)",
            ),
            (
                "v=0\r\no=- 1 2 IN IP4 a\r\ns=-\r\nt=0 0\r\n",
                "Missing mandatory lines (o=, s= or m=)",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(err(text), *expected, "input {text:?}");
        }
        let long = format!("v=0\r\nm=audio 9 RTP/AVP {}\r\n", "0 ".repeat(100));
        assert!(
            err(&long).starts_with("Invalid m= line (too long): 2"),
            "{}",
            err(&long)
        );
    }

    #[test]
    fn sdp_rejects_bad_mid_and_setup() {
        let no_mid = MINIMAL.replace("a=mid:0", "a=mid");
        assert_eq!(
            err(&no_mid),
            "Invalid mid attribute on m-line #0 (no value)"
        );
        let long_mid = MINIMAL.replace("a=mid:0", "a=mid:abcdefghijklmnopq");
        assert_eq!(err(&long_mid), "mid on m-line #0 too large (17 > 16)");
        // A long mid on a rejected (not first, no bundle-only) m-line is fine.
        let rejected =
            format!("{MINIMAL}m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:abcdefghijklmnopq\r\n");
        assert!(parse(&rejected).is_ok());
        let bundle_only = rejected.replace(
            "a=mid:abcdefghijklmnopq",
            "a=bundle-only\r\na=mid:abcdefghijklmnopq",
        );
        assert_eq!(err(&bundle_only), "mid on m-line #1 too large (17 > 16)");
        let setup = MINIMAL.replace("a=mid:0", "a=mid:0\r\na=setup");
        assert_eq!(err(&setup), "Invalid setup attribute (no value)");
        let session_setup = MINIMAL.replace("t=0 0\r\n", "t=0 0\r\na=setup\r\n");
        assert_eq!(err(&session_setup), "Invalid setup attribute (no value)");
    }

    #[test]
    fn sdp_ignores_unknown_lines_and_other_bandwidths() {
        let text = MINIMAL
            .replace("s=-\r\n", "s=-\r\ni=info\r\nu=http://x\r\nb=AS:30\r\n")
            .replace(
                "a=mid:0",
                "b=CT:5\r\nb=AS:64\r\nb=TIAS:9\r\nk=prompt\r\na=mid:0\r\na=SENDONLY",
            );
        let sdp = parse(&text).expect("valid");
        let m = &sdp.media[0];
        assert_eq!(
            m.bandwidth,
            Some(Bandwidth {
                kind: "AS".into(),
                value: 64
            })
        );
        assert_eq!(m.direction, Direction::SendOnly);
        assert!(m.attribute("SENDONLY").is_none());
        assert!(
            sdp.serialize()
                .contains("b=AS:64\r\na=sendonly\r\na=mid:0\r\n")
        );
    }

    #[test]
    fn sdp_error_text_is_bounded() {
        let text = format!("v=0\r\nc=IN IP4 {}\r\n", "é".repeat(600));
        let e = err(&text);
        assert!(e.len() <= MAX_ERROR_LEN);
        assert!(e.starts_with("Invalid c= line: "));
    }

    #[test]
    fn sdp_first_video_codec() {
        let text = format!(
            "{MINIMAL}m=video 0 UDP/TLS/RTP/SAVPF 100\r\na=rtpmap:100 H264/90000\r\nm=video 9 UDP/TLS/RTP/SAVPF 98 96\r\na=rtpmap:98 red/90000\r\na=rtpmap:96 VP8/90000\r\n"
        );
        assert_eq!(
            parse(&text).expect("valid").first_video_codec().as_deref(),
            Some("vp8")
        );
        let unknown = format!(
            "{MINIMAL}m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 XYZ/90000\r\nm=video 9 UDP/TLS/RTP/SAVPF 97\r\na=rtpmap:97 AV1/90000\r\n"
        );
        assert_eq!(
            parse(&unknown)
                .expect("valid")
                .first_video_codec()
                .as_deref(),
            Some("av1")
        );
        assert_eq!(parse(MINIMAL).expect("valid").first_video_codec(), None);
    }
}
