//! RTP header extensions in the RFC 8285 one-byte and two-byte forms.
//!
//! [`ExtIter`] walks the elements of a block in place; [`ExtensionWriter`]
//! builds a new block into a caller buffer. Typed encoders and decoders cover
//! the extensions the core reads or writes (media.md §5.2 step 11, §5.3 step 3).
//! Nothing here allocates, reads a clock or does IO.

use super::{RtpDrop, SeqNo};

/// "Defined by profile" value of the one-byte form (RFC 8285 §4.2).
pub const ONE_BYTE_PROFILE: u16 = 0xbede;
/// "Defined by profile" value of the two-byte form, app bits zero (RFC 8285 §4.3).
pub const TWO_BYTE_PROFILE: u16 = 0x1000;

/// URI of the mid extension (RFC 8843 §15).
pub const URI_MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// URI of the rtp-stream-id extension (RFC 8852 §3.1).
pub const URI_RID: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
/// URI of the repaired-rtp-stream-id extension (RFC 8852 §3.2).
pub const URI_REPAIRED_RID: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";
/// URI of abs-send-time.
pub const URI_ABS_SEND_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
/// URI of the transport-wide sequence number.
pub const URI_TRANSPORT_CC: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
/// URI of the client-to-mixer audio level (RFC 6464).
pub const URI_AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// The two RFC 8285 element forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtForm {
    /// One-byte headers: ids 1..=14, values of 1..=16 bytes.
    OneByte,
    /// Two-byte headers: ids 1..=255, values of 0..=255 bytes.
    TwoByte,
}

impl ExtForm {
    /// The form used by a "defined by profile" value, if any.
    pub fn from_profile(profile: u16) -> Option<Self> {
        if profile == ONE_BYTE_PROFILE {
            Some(Self::OneByte)
        } else if profile & 0xfff0 == TWO_BYTE_PROFILE {
            Some(Self::TwoByte)
        } else {
            None
        }
    }

    /// The "defined by profile" value written for this form.
    pub fn profile(self) -> u16 {
        match self {
            Self::OneByte => ONE_BYTE_PROFILE,
            Self::TwoByte => TWO_BYTE_PROFILE,
        }
    }

    /// Whether `id` can be carried in this form.
    pub fn valid_id(self, id: u8) -> bool {
        match self {
            Self::OneByte => (1..=14).contains(&id),
            Self::TwoByte => id >= 1,
        }
    }

    fn valid_len(self, len: usize) -> bool {
        match self {
            Self::OneByte => (1..=16).contains(&len),
            Self::TwoByte => len <= 255,
        }
    }

    fn header_len(self) -> usize {
        match self {
            Self::OneByte => 1,
            Self::TwoByte => 2,
        }
    }
}

/// One extension element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtElement<'a> {
    /// The local identifier (from `a=extmap`).
    pub id: u8,
    /// The value bytes.
    pub data: &'a [u8],
    /// Offset of the element header from the start of the extension data.
    pub header_offset: usize,
    /// Offset of the value from the start of the extension data.
    pub value_offset: usize,
}

/// Iterates the elements of an extension block. A malformed element ends the
/// iteration (RFC 8285 §4.2: stop processing); padding bytes are skipped.
#[derive(Debug, Clone)]
pub struct ExtIter<'a> {
    form: Option<ExtForm>,
    data: &'a [u8],
    pos: usize,
}

/// Iterates the elements of extension `data` (the bytes after the 4-byte
/// extension header) with the given profile; the fuzzing entry point.
pub fn parse_extensions(profile: u16, data: &[u8]) -> ExtIter<'_> {
    ExtIter::new(profile, data)
}

impl<'a> ExtIter<'a> {
    pub(crate) fn new(profile: u16, data: &'a [u8]) -> Self {
        Self {
            form: ExtForm::from_profile(profile),
            data,
            pos: 0,
        }
    }

    pub(crate) fn empty() -> Self {
        Self {
            form: None,
            data: &[],
            pos: 0,
        }
    }
}

impl<'a> Iterator for ExtIter<'a> {
    type Item = ExtElement<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let form = self.form?;
        loop {
            let header_offset = self.pos;
            let &b = self.data.get(header_offset)?;
            if b == 0 {
                self.pos += 1;
                continue;
            }
            let (id, len, value_offset) = match form {
                ExtForm::OneByte => {
                    if b >> 4 == 15 {
                        self.pos = self.data.len();
                        return None;
                    }
                    (b >> 4, usize::from(b & 0x0f) + 1, header_offset + 1)
                }
                ExtForm::TwoByte => {
                    let Some(&len) = self.data.get(header_offset + 1) else {
                        self.pos = self.data.len();
                        return None;
                    };
                    (b, usize::from(len), header_offset + 2)
                }
            };
            let Some(data) = self.data.get(value_offset..value_offset + len) else {
                self.pos = self.data.len();
                return None;
            };
            self.pos = value_offset + len;
            return Some(ExtElement {
                id,
                data,
                header_offset,
                value_offset,
            });
        }
    }
}

/// Builds a header extension block (4-byte header plus elements plus padding)
/// into a caller buffer.
#[derive(Debug)]
pub struct ExtensionWriter<'a> {
    buf: &'a mut [u8],
    form: ExtForm,
    len: usize,
}

impl<'a> ExtensionWriter<'a> {
    /// Starts a block of the given form in `buf`.
    pub fn new(buf: &'a mut [u8], form: ExtForm) -> Self {
        Self { buf, form, len: 4 }
    }

    /// Appends an element. Fails (writing nothing) when the id or length is
    /// invalid for the form, or the buffer is full.
    pub fn push(&mut self, id: u8, value: &[u8]) -> Result<(), RtpDrop> {
        if !self.form.valid_id(id) || !self.form.valid_len(value.len()) {
            return Err(RtpDrop::OutOfRange);
        }
        let start = self.len;
        let value_start = start + self.form.header_len();
        let end = value_start + value.len();
        // The block length counts 32-bit words in 16 bits.
        if end > 4 + 4 * usize::from(u16::MAX) {
            return Err(RtpDrop::OutOfRange);
        }
        let out = self
            .buf
            .get_mut(start..end)
            .ok_or(RtpDrop::BufferTooSmall)?;
        match self.form {
            // Invariant: valid_len checked 1..=16, so len - 1 fits 4 bits.
            ExtForm::OneByte => out[0] = (id << 4) | (value.len() - 1) as u8,
            ExtForm::TwoByte => {
                out[0] = id;
                // Invariant: valid_len checked <= 255.
                out[1] = value.len() as u8;
            }
        }
        out[self.form.header_len()..].copy_from_slice(value);
        self.len = end;
        Ok(())
    }

    /// Appends mid (RFC 8843), rtp-stream-id or repaired-rtp-stream-id
    /// (RFC 8852): all are the identifier's bytes.
    pub fn push_mid(&mut self, id: u8, mid: &[u8]) -> Result<(), RtpDrop> {
        self.push(id, mid)
    }

    /// Appends abs-send-time for a wall-clock time in microseconds.
    pub fn push_abs_send_time(&mut self, id: u8, now_us: u64) -> Result<(), RtpDrop> {
        self.push(id, &abs_send_time_from_us(now_us).to_be_bytes()[1..])
    }

    /// Appends a transport-wide sequence number.
    pub fn push_transport_cc(&mut self, id: u8, seq: SeqNo) -> Result<(), RtpDrop> {
        self.push(id, &seq.0.to_be_bytes())
    }

    /// Appends an audio level (RFC 6464): `level` in -dBov, 0..=127.
    pub fn push_audio_level(&mut self, id: u8, voice: bool, level: u8) -> Result<(), RtpDrop> {
        if level > 127 {
            return Err(RtpDrop::OutOfRange);
        }
        self.push(id, &[level | if voice { 0x80 } else { 0 }])
    }

    /// Pads to a 32-bit boundary and writes the block header. Returns the
    /// block length including its header, or 0 when nothing was pushed (the
    /// packet then needs no extension).
    pub fn finish(self) -> Result<usize, RtpDrop> {
        if self.len == 4 {
            return Ok(0);
        }
        let total = self.len.next_multiple_of(4);
        let out = self.buf.get_mut(..total).ok_or(RtpDrop::BufferTooSmall)?;
        out[self.len..].fill(0);
        out[..2].copy_from_slice(&self.form.profile().to_be_bytes());
        // Invariant: push kept the block under 4 * u16::MAX + 4 bytes.
        let words = ((total - 4) / 4) as u16;
        out[2..4].copy_from_slice(&words.to_be_bytes());
        Ok(total)
    }
}

/// abs-send-time value: 6.18 fixed-point seconds, 24 bits, from microseconds.
pub fn abs_send_time_from_us(now_us: u64) -> u32 {
    let secs = (now_us / 1_000_000) & 0x3f;
    let frac = ((now_us % 1_000_000) << 18) / 1_000_000;
    // Invariant: secs < 64 and frac < 2^18, so the value fits 24 bits.
    ((secs << 18) | frac) as u32
}

/// Decodes abs-send-time (3 bytes) to its 24-bit value.
pub fn abs_send_time(value: &[u8]) -> Option<u32> {
    match value {
        [a, b, c] => Some(u32::from_be_bytes([0, *a, *b, *c])),
        _ => None,
    }
}

/// Decodes a transport-wide sequence number (2 bytes).
pub fn transport_cc_seq(value: &[u8]) -> Option<SeqNo> {
    match value {
        [a, b] => Some(SeqNo(u16::from_be_bytes([*a, *b]))),
        _ => None,
    }
}

/// Decodes an audio level (RFC 6464): (voice activity, level in -dBov).
pub fn audio_level(value: &[u8]) -> Option<(bool, u8)> {
    match value {
        [b, ..] => Some((b & 0x80 != 0, b & 0x7f)),
        [] => None,
    }
}

/// Video orientation (3GPP TS 26.114 CVO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoOrientation {
    /// Rotation in degrees: 0, 90, 180 or 270.
    pub rotation: u16,
    /// Back-facing camera.
    pub back_camera: bool,
    /// Horizontally flipped.
    pub flipped: bool,
}

/// Decodes video orientation (1 byte: C F R1 R0 in the low bits).
pub fn video_orientation(value: &[u8]) -> Option<VideoOrientation> {
    let &b = value.first()?;
    Some(VideoOrientation {
        rotation: u16::from(b & 0x03) * 90,
        back_camera: b & 0x08 != 0,
        flipped: b & 0x04 != 0,
    })
}

/// Decodes playout delay (3 bytes: 12-bit min, 12-bit max, in 10 ms units).
pub fn playout_delay(value: &[u8]) -> Option<(u16, u16)> {
    match value {
        [a, b, c] => Some((
            (u16::from(*a) << 4) | u16::from(*b >> 4),
            (u16::from(*b & 0x0f) << 8) | u16::from(*c),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_byte_writer_round_trip() {
        let mut buf = [0u8; 64];
        let mut w = ExtensionWriter::new(&mut buf, ExtForm::OneByte);
        w.push_abs_send_time(2, 1_500_000).expect("fits");
        w.push_transport_cc(3, SeqNo(0x0102)).expect("fits");
        w.push_audio_level(1, true, 30).expect("fits");
        w.push_mid(4, b"audio").expect("fits");
        assert_eq!(w.push(15, b"x"), Err(RtpDrop::OutOfRange));
        assert_eq!(w.push(5, &[0; 17]), Err(RtpDrop::OutOfRange));
        assert_eq!(w.push(5, &[]), Err(RtpDrop::OutOfRange));
        let n = w.finish().expect("fits");
        #[rustfmt::skip]
        let expect: [u8; 20] = [
            0xbe, 0xde, 0x00, 0x04, // one-byte profile, 4 words
            0x22, 0x06, 0x00, 0x00, // id 2 len 3: 1.5 s = 6.18 0x060000
            0x31, 0x01, 0x02,       // id 3 len 2: twcc 0x0102
            0x10, 0x9e,             // id 1 len 1: voice, level 30
            0x44, b'a', b'u', b'd', b'i', b'o', // id 4 len 5: mid
            0,                      // padding to 20 bytes
        ];
        assert_eq!(&buf[..n], &expect);
        let it = parse_extensions(0xbede, &expect[4..]);
        let ids: Vec<(u8, &[u8])> = it.map(|e| (e.id, e.data)).collect();
        assert_eq!(ids.len(), 4);
        assert_eq!(abs_send_time(ids[0].1), Some(0x06_0000));
        assert_eq!(transport_cc_seq(ids[1].1), Some(SeqNo(0x0102)));
        assert_eq!(audio_level(ids[2].1), Some((true, 30)));
        assert_eq!(ids[3], (4, &b"audio"[..]));
    }

    #[test]
    fn two_byte_form() {
        let mut buf = [0u8; 300];
        let mut w = ExtensionWriter::new(&mut buf, ExtForm::TwoByte);
        w.push(200, &[]).expect("fits");
        w.push(7, &[9; 20]).expect("fits");
        let n = w.finish().expect("fits");
        assert_eq!(n, 4 + 24);
        assert_eq!(&buf[..8], &[0x10, 0x00, 0x00, 0x06, 200, 0, 7, 20]);
        let e: Vec<_> = parse_extensions(0x1003, &buf[4..n]).collect();
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].id, e[0].data.len()), (200, 0));
        assert_eq!((e[1].id, e[1].data), (7, &[9u8; 20][..]));
    }

    #[test]
    fn malformed_elements_stop_iteration() {
        // id 1 len 4 but only 2 bytes follow.
        assert_eq!(parse_extensions(0xbede, &[0x13, 1, 2]).count(), 0);
        // id 15 stops processing; the element after it is ignored.
        assert_eq!(
            parse_extensions(0xbede, &[0x10, 1, 0xf0, 0x20, 1]).count(),
            1
        );
        // Unknown profile: no elements.
        assert_eq!(parse_extensions(0x1234, &[0x10, 1]).count(), 0);
        // Two-byte element missing its length byte.
        assert_eq!(parse_extensions(0x1000, &[0, 0, 5]).count(), 0);
    }

    #[test]
    fn empty_writer_finishes_to_nothing() {
        let mut buf = [0u8; 4];
        assert_eq!(
            ExtensionWriter::new(&mut buf, ExtForm::OneByte).finish(),
            Ok(0)
        );
        let mut w = ExtensionWriter::new(&mut buf, ExtForm::OneByte);
        assert_eq!(w.push(1, &[1]), Err(RtpDrop::BufferTooSmall));
    }

    #[test]
    fn typed_decoders() {
        assert_eq!(abs_send_time_from_us(64_000_000), 0);
        assert_eq!(abs_send_time_from_us(63_999_999), 0xff_ffff);
        assert_eq!(
            video_orientation(&[0x0b]),
            Some(VideoOrientation {
                rotation: 270,
                back_camera: true,
                flipped: false
            })
        );
        assert_eq!(playout_delay(&[0x01, 0x20, 0x64]), Some((0x12, 0x64)));
        assert_eq!(audio_level(&[]), None);
    }
}
