//! The MJR recording format (recording.md §3): the byte layout Janus writes
//! and `janus-pp-rec` reads. Format only: this module builds bytes into
//! caller-owned buffers and parses byte slices; it never touches a file,
//! never reads a clock (times are passed in) and never logs.
//!
//! A version-2 recording is the magic `MJR00002`, written when the file is
//! created ([`MAGIC`]), then — lazily, just before the first frame — a
//! 2-byte length and the info header JSON ([`write_info`]), then frames:
//! `MEET`, a 4-byte time in milliseconds since the info header was written,
//! a 2-byte length and the packet ([`write_rtp_frame`], [`write_data_frame`]).
//! All integers are big-endian.
//!
//! RTP is rewritten at write time by an [`RtpRecordRewriter`] (recording.md
//! §3.2): one constant SSRC for the whole file, sequence numbers and
//! timestamps continuous across source changes.
//!
//! [`read`] parses a recording the way `janus-pp-rec` does (§4), including
//! the version-1 and original layouts; it exists for tests and tools.

use std::fmt::Write as _;

use crate::rtp::rewrite::{Rewritten, SwitchingContext, switching_clock_rate};
use crate::rtp::{RtpView, RtpViewMut, Ssrc};

/// The magic of a version-2 recording (timestamped frames).
pub const MAGIC: &[u8; 8] = b"MJR00002";
/// The magic of a version-1 recording (frame times absent).
pub const MAGIC_V1: &[u8; 8] = b"MJR00001";
/// The magic (and frame prefix) of the original layout.
pub const LEGACY_MAGIC: &[u8; 8] = b"MEETECHO";
/// The first four bytes of every version-1/2 frame.
pub const FRAME_PREFIX: &[u8; 4] = b"MEET";
/// The longest info header `janus-pp-rec` accepts.
pub const MAX_INFO_LEN: usize = 1499;
/// Bytes before the packet in an RTP frame (prefix, time, length).
pub const RTP_FRAME_OVERHEAD: usize = 10;
/// Bytes before the message in a data frame (prefix, time, length, wall clock).
pub const DATA_FRAME_OVERHEAD: usize = 18;

/// What a recording holds, decided by the codec name (recording.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MjrKind {
    /// Audio RTP.
    Audio,
    /// Video RTP.
    Video,
    /// Data-channel messages.
    Data,
}

const VIDEO_CODECS: &[&str] = &["vp8", "vp9", "h264", "av1", "h265"];
const AUDIO_CODECS: &[&str] = &[
    "opus",
    "multiopus",
    "g711",
    "pcmu",
    "pcma",
    "g722",
    "l16-48",
    "l16",
];
const DATA_CODECS: &[&str] = &["text", "binary"];

impl MjrKind {
    /// The kind a codec name implies (case-insensitive); `None` for codecs
    /// recordings cannot hold.
    pub fn for_codec(codec: &str) -> Option<Self> {
        let is = |list: &[&str]| list.iter().any(|c| c.eq_ignore_ascii_case(codec));
        if is(VIDEO_CODECS) {
            Some(Self::Video)
        } else if is(AUDIO_CODECS) {
            Some(Self::Audio)
        } else if is(DATA_CODECS) {
            Some(Self::Data)
        } else {
            None
        }
    }

    /// The header's `t` value.
    pub fn tag(self) -> &'static str {
        match self {
            Self::Audio => "a",
            Self::Video => "v",
            Self::Data => "d",
        }
    }
}

/// Why bytes could not be written or read as MJR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MjrError {
    /// The info header JSON is longer than [`MAX_INFO_LEN`].
    #[error("info header of {0} bytes is longer than {MAX_INFO_LEN}")]
    InfoTooLong(usize),
    /// A frame does not fit the 16-bit length field.
    #[error("frame of {0} bytes does not fit a 16-bit length")]
    FrameTooLong(usize),
    /// What should be an RTP packet does not parse as one.
    #[error("not an RTP packet")]
    NotRtp,
    /// The file does not start with a known magic.
    #[error("invalid header at offset 0 (wrong prefix)")]
    BadMagic,
    /// The file ends inside its header.
    #[error("truncated header")]
    TruncatedHeader,
    /// The info header is not UTF-8 text.
    #[error("info header is not text")]
    InfoNotText,
    /// A frame prefix starts with `M` but is neither `ME...` nor `MJ...`:
    /// `janus-pp-rec` aborts on it.
    #[error("invalid frame header at offset {0}")]
    BadFramePrefix(usize),
}

/// The info header of a recording (recording.md §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoHeader {
    /// `t`.
    pub kind: MjrKind,
    /// `c`: the codec name as given.
    pub codec: String,
    /// `f`: codec parameters.
    pub fmtp: Option<String>,
    /// `d`: a free-text description.
    pub description: Option<String>,
    /// `x`: RTP extension ids (1–15) and URIs, in the order given.
    pub extensions: Vec<(u8, String)>,
    /// `s`: when the recorder was created, µs since the epoch.
    pub created_us: u64,
    /// `u`: when the first frame was written, µs since the epoch.
    pub written_us: u64,
    /// `or`: payload type of Opus RED.
    pub opus_red_pt: Option<u8>,
    /// `e`: payloads are end-to-end encrypted.
    pub encrypted: bool,
}

impl InfoHeader {
    /// A header with the mandatory keys only; `written_us` is set when the
    /// first frame is written.
    pub fn new(kind: MjrKind, codec: impl Into<String>, created_us: u64) -> Self {
        Self {
            kind,
            codec: codec.into(),
            fmtp: None,
            description: None,
            extensions: Vec::new(),
            created_us,
            written_us: created_us,
            opus_red_pt: None,
            encrypted: false,
        }
    }

    /// The JSON text: one line, separators `", "` and `": "`, keys in the
    /// order of recording.md §3.1, optional keys only when set.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(96);
        out.push_str("{\"t\": ");
        push_json_string(&mut out, self.kind.tag());
        out.push_str(", \"c\": ");
        push_json_string(&mut out, &self.codec);
        if let Some(f) = &self.fmtp {
            out.push_str(", \"f\": ");
            push_json_string(&mut out, f);
        }
        if let Some(d) = &self.description {
            out.push_str(", \"d\": ");
            push_json_string(&mut out, d);
        }
        if !self.extensions.is_empty() {
            out.push_str(", \"x\": {");
            for (i, (id, uri)) in self.extensions.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                // Writing to a String cannot fail.
                let _ = write!(out, "\"{id}\": ");
                push_json_string(&mut out, uri);
            }
            out.push('}');
        }
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            ", \"s\": {}, \"u\": {}",
            self.created_us, self.written_us
        );
        if let Some(pt) = self.opus_red_pt {
            let _ = write!(out, ", \"or\": {pt}");
        }
        if self.encrypted {
            out.push_str(", \"e\": true");
        }
        out.push('}');
        out
    }
}

/// Appends `s` as a JSON string literal (quotes, backslashes and control
/// characters escaped, everything else as UTF-8).
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends the 2-byte length and the info header JSON (the bytes that follow
/// [`MAGIC`]).
pub fn write_info(out: &mut Vec<u8>, info: &InfoHeader) -> Result<(), MjrError> {
    let json = info.to_json();
    if json.len() > MAX_INFO_LEN {
        return Err(MjrError::InfoTooLong(json.len()));
    }
    // At most MAX_INFO_LEN (checked above): fits u16.
    out.extend_from_slice(&(json.len() as u16).to_be_bytes());
    out.extend_from_slice(json.as_bytes());
    Ok(())
}

fn frame_len(len: usize) -> Result<u16, MjrError> {
    u16::try_from(len).map_err(|_| MjrError::FrameTooLong(len))
}

/// Appends an RTP frame holding `packet` as is.
pub fn write_rtp_frame(out: &mut Vec<u8>, time_ms: u32, packet: &[u8]) -> Result<(), MjrError> {
    let len = frame_len(packet.len())?;
    out.reserve(RTP_FRAME_OVERHEAD + packet.len());
    out.extend_from_slice(FRAME_PREFIX);
    out.extend_from_slice(&time_ms.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(packet);
    Ok(())
}

/// Appends a data frame: the length covers the 8-byte wall-clock time
/// (µs since the epoch) and the message.
pub fn write_data_frame(
    out: &mut Vec<u8>,
    time_ms: u32,
    wall_us: u64,
    message: &[u8],
) -> Result<(), MjrError> {
    let len = frame_len(message.len() + 8)?;
    out.reserve(DATA_FRAME_OVERHEAD + message.len());
    out.extend_from_slice(FRAME_PREFIX);
    out.extend_from_slice(&time_ms.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&wall_us.to_be_bytes());
    out.extend_from_slice(message);
    Ok(())
}

/// The RTP rewriting of a recorder (recording.md §3.2): the first SSRC seen
/// is written for the whole recording, and sequence numbers and timestamps
/// continue across source changes (media.md §6.3).
#[derive(Debug, Clone, Default)]
pub struct RtpRecordRewriter {
    ssrc: Option<Ssrc>,
    switching: SwitchingContext,
}

impl RtpRecordRewriter {
    /// A rewriter that has seen no packet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next packet starts a new source segment even with the same SSRC
    /// (after a pause in what is written).
    pub fn resume(&mut self) {
        self.switching.reset();
    }

    /// A packet of the current source is left out on purpose (temporal-layer
    /// filter): the sequence numbers written stay gapless.
    pub fn skip_packet(&mut self) {
        self.switching.skip_packet();
    }

    /// Appends a frame holding a rewritten copy of `packet` (the caller's
    /// bytes are not touched; the copy is `out[start + RTP_FRAME_OVERHEAD..]`
    /// with `start` the length of `out` before the call). `now_us` is a
    /// monotonic time in µs. Returns what the switching context decided.
    pub fn write_frame(
        &mut self,
        out: &mut Vec<u8>,
        time_ms: u32,
        packet: &[u8],
        now_us: u64,
        video: bool,
    ) -> Result<Rewritten, MjrError> {
        let view = RtpView::parse(packet).map_err(|_| MjrError::NotRtp)?;
        let clock_rate = switching_clock_rate(video, view.pt());
        let start = out.len();
        write_rtp_frame(out, time_ms, packet)?;
        let copy = &mut out[start + RTP_FRAME_OVERHEAD..];
        // The copy is the packet that parsed above.
        let Ok(mut v) = RtpViewMut::parse(copy) else {
            out.truncate(start);
            return Err(MjrError::NotRtp);
        };
        let rewritten = self.switching.apply(&mut v, now_us, clock_rate);
        let ssrc = *self.ssrc.get_or_insert(view.ssrc());
        v.set_ssrc(ssrc);
        Ok(rewritten)
    }
}

/// Which layout a recording uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MjrVersion {
    /// `MEETECHO` files.
    Legacy,
    /// `MJR00001`.
    V1,
    /// `MJR00002`.
    V2,
}

/// One frame of a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MjrFrame<'a> {
    /// Offset of the frame prefix in the file.
    pub offset: usize,
    /// Milliseconds since the info header (version 2 only).
    pub time_ms: Option<u32>,
    /// What the length covers: the RTP packet, or for data the 8-byte wall
    /// clock time followed by the message.
    pub body: &'a [u8],
}

impl<'a> MjrFrame<'a> {
    /// A data frame's wall-clock time (µs since the epoch) and message.
    pub fn data(&self) -> Option<(u64, &'a [u8])> {
        let (time, message) = self.body.split_first_chunk::<8>()?;
        Some((u64::from_be_bytes(*time), message))
    }
}

/// A parsed recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MjrFile<'a> {
    /// The layout.
    pub version: MjrVersion,
    /// The info header JSON (for the original layout: the kind word),
    /// `None` when the file is only the magic.
    pub info: Option<&'a str>,
    /// The frames, in file order.
    pub frames: Vec<MjrFrame<'a>>,
    /// Where reading stopped early (garbage or a truncated last frame), as
    /// `janus-pp-rec` stops gracefully there.
    pub stopped_at: Option<usize>,
}

/// Parses a recording like `janus-pp-rec` (recording.md §4): frames up to
/// the first prefix not starting with `M` or the first truncated frame.
pub fn read(bytes: &[u8]) -> Result<MjrFile<'_>, MjrError> {
    let magic = bytes.get(..8).ok_or(MjrError::TruncatedHeader)?;
    let version = if magic == MAGIC {
        MjrVersion::V2
    } else if magic == MAGIC_V1 {
        MjrVersion::V1
    } else if magic == LEGACY_MAGIC {
        MjrVersion::Legacy
    } else {
        return Err(MjrError::BadMagic);
    };
    let mut file = MjrFile {
        version,
        info: None,
        frames: Vec::new(),
        stopped_at: None,
    };
    if bytes.len() == 8 {
        return Ok(file);
    }
    let len = bytes.get(8..10).ok_or(MjrError::TruncatedHeader)?;
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    let info = bytes.get(10..10 + len).ok_or(MjrError::TruncatedHeader)?;
    file.info = Some(std::str::from_utf8(info).map_err(|_| MjrError::InfoNotText)?);
    let mut at = 10 + len;
    while at < bytes.len() {
        let Some(prefix) = bytes.get(at..at + 8) else {
            file.stopped_at = Some(at);
            break;
        };
        if prefix[0] != b'M' {
            file.stopped_at = Some(at);
            break;
        }
        if prefix[1] != b'E' {
            return Err(MjrError::BadFramePrefix(at));
        }
        let Some(len) = bytes.get(at + 8..at + 10) else {
            file.stopped_at = Some(at);
            break;
        };
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let Some(body) = bytes.get(at + 10..at + 10 + len) else {
            file.stopped_at = Some(at);
            break;
        };
        let time_ms = (version == MjrVersion::V2)
            .then(|| u32::from_be_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]));
        file.frames.push(MjrFrame {
            offset: at,
            time_ms,
            body,
        });
        at += 10 + len;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::SeqNo;

    fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, pt];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn the_composed_example_of_the_spec() {
        let mut info = InfoHeader::new(MjrKind::Audio, "opus", 1_700_000_000_000_000);
        info.written_us = 1_700_000_000_005_000;
        let mut out = MAGIC.to_vec();
        write_info(&mut out, &info).unwrap();
        let packet = rtp(111, 1000, 0x1234, 0xdead_beef, &[0u8; 41]);
        assert_eq!(packet.len(), 53);
        write_rtp_frame(&mut out, 0, &packet).unwrap();
        let json = br#"{"t": "a", "c": "opus", "s": 1700000000000000, "u": 1700000000005000}"#;
        let mut expected = b"MJR00002\x00\x45".to_vec();
        expected.extend_from_slice(json);
        expected.extend_from_slice(&[0x4D, 0x45, 0x45, 0x54, 0, 0, 0, 0, 0x00, 0x35]);
        expected.extend_from_slice(&[0x80, 0x6F, 0x03, 0xE8]);
        assert_eq!(&out[..expected.len()], &expected[..]);
        assert_eq!(&out[expected.len() - 4..], &packet[..]);
    }

    #[test]
    fn optional_keys_come_in_order_and_strings_are_escaped() {
        let mut info = InfoHeader::new(MjrKind::Video, "VP9", 1);
        info.written_us = 2;
        info.fmtp = Some("profile-id=2".into());
        info.description = Some("say \"hi\"\\\n\u{1}é".into());
        info.extensions = vec![(1, "urn:a".into()), (3, "urn:b".into())];
        info.opus_red_pt = Some(63);
        info.encrypted = true;
        assert_eq!(
            info.to_json(),
            "{\"t\": \"v\", \"c\": \"VP9\", \"f\": \"profile-id=2\", \
             \"d\": \"say \\\"hi\\\"\\\\\\n\\u0001é\", \
             \"x\": {\"1\": \"urn:a\", \"3\": \"urn:b\"}, \"s\": 1, \"u\": 2, \"or\": 63, \"e\": true}"
        );
    }

    #[test]
    fn kinds_follow_the_codec_name() {
        assert_eq!(MjrKind::for_codec("OPUS"), Some(MjrKind::Audio));
        assert_eq!(MjrKind::for_codec("l16-48"), Some(MjrKind::Audio));
        assert_eq!(MjrKind::for_codec("h265"), Some(MjrKind::Video));
        assert_eq!(MjrKind::for_codec("binary"), Some(MjrKind::Data));
        assert_eq!(MjrKind::for_codec("speex"), None);
        assert_eq!(MjrKind::Data.tag(), "d");
    }

    #[test]
    fn oversized_pieces_are_refused() {
        let mut info = InfoHeader::new(MjrKind::Data, "text", 0);
        info.description = Some("x".repeat(MAX_INFO_LEN));
        let mut out = Vec::new();
        assert!(matches!(
            write_info(&mut out, &info),
            Err(MjrError::InfoTooLong(_))
        ));
        assert!(out.is_empty());
        assert_eq!(
            write_rtp_frame(&mut out, 0, &[0u8; 70_000]),
            Err(MjrError::FrameTooLong(70_000))
        );
        assert_eq!(
            write_data_frame(&mut out, 0, 0, &[0u8; 65_530]),
            Err(MjrError::FrameTooLong(65_538))
        );
        let mut rw = RtpRecordRewriter::new();
        assert_eq!(
            rw.write_frame(&mut out, 0, &[0x80, 0], 0, false),
            Err(MjrError::NotRtp)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn data_frames_round_trip() {
        let mut out = MAGIC.to_vec();
        let mut info = InfoHeader::new(MjrKind::Data, "text", 10);
        info.written_us = 20;
        write_info(&mut out, &info).unwrap();
        write_data_frame(&mut out, 7, 1_000_000, b"hello").unwrap();
        write_data_frame(&mut out, 300, 1_300_000, b"").unwrap();
        // Byte layout of the first frame.
        let first = 10 + info.to_json().len();
        assert_eq!(&out[first..first + 10], b"MEET\x00\x00\x00\x07\x00\x0d");
        assert_eq!(&out[first + 10..first + 18], &1_000_000u64.to_be_bytes());
        let file = read(&out).unwrap();
        assert_eq!(file.version, MjrVersion::V2);
        assert_eq!(file.info, Some(info.to_json().as_str()));
        assert_eq!(file.stopped_at, None);
        assert_eq!(file.frames.len(), 2);
        assert_eq!(file.frames[0].time_ms, Some(7));
        assert_eq!(file.frames[0].data(), Some((1_000_000, &b"hello"[..])));
        assert_eq!(file.frames[1].time_ms, Some(300));
        assert_eq!(file.frames[1].data(), Some((1_300_000, &b""[..])));
    }

    #[test]
    fn rtp_is_rewritten_to_one_ssrc_and_continuous_numbers() {
        let mut out = MAGIC.to_vec();
        write_info(&mut out, &InfoHeader::new(MjrKind::Audio, "opus", 0)).unwrap();
        let mut rw = RtpRecordRewriter::new();
        let a1 = rtp(111, 100, 48_000, 0xaaaa, b"x");
        let a2 = rtp(111, 101, 48_960, 0xaaaa, b"y");
        // A restarted sender: new SSRC, unrelated numbers, 100 ms later.
        let b1 = rtp(111, 9000, 5, 0xbbbb, b"z");
        let b2 = rtp(111, 9001, 965, 0xbbbb, b"w");
        rw.write_frame(&mut out, 0, &a1, 0, false).unwrap();
        rw.write_frame(&mut out, 20, &a2, 20_000, false).unwrap();
        rw.write_frame(&mut out, 120, &b1, 120_000, false).unwrap();
        rw.write_frame(&mut out, 140, &b2, 140_000, false).unwrap();
        // The caller's bytes are untouched.
        assert_eq!(b1, rtp(111, 9000, 5, 0xbbbb, b"z"));
        let file = read(&out).unwrap();
        let got: Vec<(u16, u32, u32, u8)> = file
            .frames
            .iter()
            .map(|f| {
                let v = RtpView::parse(f.body).unwrap();
                (v.seq().0, v.timestamp(), v.ssrc().0, v.payload()[0])
            })
            .collect();
        // 100 ms after 48960 at 48 kHz: +4800.
        assert_eq!(
            got,
            vec![
                (100, 48_000, 0xaaaa, b'x'),
                (101, 48_960, 0xaaaa, b'y'),
                (102, 53_760, 0xaaaa, b'z'),
                (103, 54_720, 0xaaaa, b'w'),
            ]
        );
        assert_eq!(
            file.frames.iter().map(|f| f.time_ms).collect::<Vec<_>>(),
            vec![Some(0), Some(20), Some(120), Some(140)]
        );
    }

    #[test]
    fn skipped_packets_leave_no_gap() {
        let mut out = Vec::new();
        let mut rw = RtpRecordRewriter::new();
        rw.write_frame(&mut out, 0, &rtp(96, 10, 0, 1, b"a"), 0, true)
            .unwrap();
        rw.skip_packet();
        rw.write_frame(&mut out, 0, &rtp(96, 12, 0, 1, b"b"), 0, true)
            .unwrap();
        let second = &out[RTP_FRAME_OVERHEAD + 13 + RTP_FRAME_OVERHEAD..];
        assert_eq!(RtpView::parse(second).unwrap().seq(), SeqNo(11));
    }

    #[test]
    fn the_reader_stops_like_janus_pp_rec() {
        let mut out = MAGIC.to_vec();
        write_info(&mut out, &InfoHeader::new(MjrKind::Audio, "opus", 0)).unwrap();
        let packet = rtp(111, 1, 0, 1, b"abc");
        write_rtp_frame(&mut out, 0, &packet).unwrap();
        let complete = out.len();
        // A frame cut short by a crash.
        write_rtp_frame(&mut out, 1, &packet).unwrap();
        out.truncate(out.len() - 2);
        let file = read(&out).unwrap();
        assert_eq!(file.frames.len(), 1);
        assert_eq!(file.stopped_at, Some(complete));
        // Garbage that does not start with M.
        out.truncate(complete);
        out.extend_from_slice(b"garbage garbage");
        assert_eq!(read(&out).unwrap().stopped_at, Some(complete));
        // A prefix starting with M but not ME: fatal.
        out.truncate(complete);
        out.extend_from_slice(b"MXXX\0\0\0\0\0\0");
        assert_eq!(read(&out), Err(MjrError::BadFramePrefix(complete)));
        // Only the magic: a valid, empty recording.
        let empty = read(MAGIC).unwrap();
        assert_eq!((empty.info, empty.frames.len()), (None, 0));
        assert_eq!(read(b"XJR00002"), Err(MjrError::BadMagic));
        assert_eq!(read(b"MJR00002\x00\x10{}"), Err(MjrError::TruncatedHeader));
    }

    #[test]
    fn older_layouts_are_read() {
        let mut v1 = MAGIC_V1.to_vec();
        v1.extend_from_slice(b"\x00\x02{}MEET\x00\x00\x00\x09\x00\x01Z");
        let f = read(&v1).unwrap();
        assert_eq!(f.version, MjrVersion::V1);
        assert_eq!(f.frames[0].time_ms, None);
        assert_eq!(f.frames[0].body, b"Z");
        let mut legacy = LEGACY_MAGIC.to_vec();
        legacy.extend_from_slice(b"\x00\x05audioMEETECHO\x00\x02ab");
        let f = read(&legacy).unwrap();
        assert_eq!((f.version, f.info), (MjrVersion::Legacy, Some("audio")));
        assert_eq!(f.frames[0].body, b"ab");
    }
}
