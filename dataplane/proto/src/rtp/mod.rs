//! RTP packet views (RFC 3550 §5.1) and the identifiers and helpers around them.
//!
//! [`RtpView`] and [`RtpViewMut`] validate a packet once and then read or write
//! the header fields directly in the caller's bytes: `set_ssrc` writes bytes
//! 8..12 and nothing else. Header extensions (RFC 8285) are in [`ext`], codec
//! payload descriptors and keyframe detection in [`codec`], continuity
//! rewriting (media.md §6.3, §7.5) in [`rewrite`].
//!
//! This module never does IO, never reads a clock (time is passed in as
//! microseconds) and never allocates: every view borrows the caller's buffer
//! and every writer writes into a caller-owned slice.
//!
//! Fuzzing entry point: [`parse`] (and [`ext::parse_extensions`],
//! [`codec::parse_payload`]).

pub mod codec;
pub mod ext;
pub mod rewrite;

use core::ops::Range;

pub use ext::{ExtElement, ExtForm, ExtIter, ExtensionWriter};

/// Length of the fixed RTP header (RFC 3550 §5.1).
pub const FIXED_HEADER_LEN: usize = 12;

/// A synchronization source identifier (RFC 3550 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Ssrc(pub u32);

/// An RTP payload type (7 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Pt(pub u8);

/// A 16-bit RTP sequence number. Comparison is wrap-aware, so there is no
/// `Ord`: use [`SeqNo::is_newer_than`] or [`SeqNo::diff`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNo(pub u16);

impl SeqNo {
    /// The sequence number `n` steps later (mod 2^16).
    #[must_use]
    pub fn wrapping_add(self, n: u16) -> Self {
        Self(self.0.wrapping_add(n))
    }

    /// The sequence number `n` steps earlier (mod 2^16).
    #[must_use]
    pub fn wrapping_sub(self, n: u16) -> Self {
        Self(self.0.wrapping_sub(n))
    }

    /// Signed distance `self - other` taken the short way round the circle.
    /// Exactly half a circle apart counts as positive when `self > other`.
    pub fn diff(self, other: Self) -> i32 {
        let d = self.0.wrapping_sub(other.0);
        if d < 0x8000 || (d == 0x8000 && self.0 > other.0) {
            i32::from(d)
        } else {
            i32::from(d) - 0x1_0000
        }
    }

    /// Whether `self` comes after `other` (RFC 1982 serial number arithmetic).
    pub fn is_newer_than(self, other: Self) -> bool {
        self.diff(other) > 0
    }
}

/// Why bytes were not accepted as an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum RtpDrop {
    /// Shorter than the 12-byte fixed header.
    #[error("shorter than the fixed RTP header")]
    TooShort,
    /// The version field is not 2.
    #[error("RTP version is not 2")]
    BadVersion,
    /// The CSRC list runs past the end.
    #[error("CSRC list past the end")]
    CsrcOverrun,
    /// The header extension runs past the end.
    #[error("header extension past the end")]
    ExtensionOverrun,
    /// The padding count is zero or larger than the payload.
    #[error("bad padding count")]
    BadPadding,
    /// The output buffer is too small for what is being written.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// A value does not fit the field it is written to.
    #[error("value out of range for the field")]
    OutOfRange,
}

/// Validates `buf` as an RTP packet; the fuzzing entry point of this module.
pub fn parse(buf: &[u8]) -> Result<RtpView<'_>, RtpDrop> {
    RtpView::parse(buf)
}

/// Offsets found by validation, shared by the two views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// Start of the header extension (its 4-byte header), if the X bit is set.
    ext_start: Option<usize>,
    /// Start of the payload, i.e. the full header length.
    payload_start: usize,
    /// End of the payload, i.e. where padding starts.
    payload_end: usize,
}

impl Layout {
    fn validate(buf: &[u8]) -> Result<Self, RtpDrop> {
        if buf.len() < FIXED_HEADER_LEN {
            return Err(RtpDrop::TooShort);
        }
        if buf[0] >> 6 != 2 {
            return Err(RtpDrop::BadVersion);
        }
        let csrc_end = FIXED_HEADER_LEN + 4 * usize::from(buf[0] & 0x0f);
        if csrc_end > buf.len() {
            return Err(RtpDrop::CsrcOverrun);
        }
        let (ext_start, payload_start) = if buf[0] & 0x10 != 0 {
            let words = buf
                .get(csrc_end + 2..csrc_end + 4)
                .ok_or(RtpDrop::ExtensionOverrun)?;
            let end = csrc_end + 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
            if end > buf.len() {
                return Err(RtpDrop::ExtensionOverrun);
            }
            (Some(csrc_end), end)
        } else {
            (None, csrc_end)
        };
        let payload_end = if buf[0] & 0x20 != 0 {
            // Invariant: buf.len() >= 12, so there is a last byte.
            let count = usize::from(buf[buf.len() - 1]);
            if count == 0 || payload_start + count > buf.len() {
                return Err(RtpDrop::BadPadding);
            }
            buf.len() - count
        } else {
            buf.len()
        };
        Ok(Self {
            ext_start,
            payload_start,
            payload_end,
        })
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A validated, read-only RTP packet.
#[derive(Debug, Clone, Copy)]
pub struct RtpView<'a> {
    buf: &'a [u8],
    layout: Layout,
}

impl<'a> RtpView<'a> {
    /// Validates the fixed header, CSRC list, extension length and padding.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpDrop> {
        Ok(Self {
            layout: Layout::validate(buf)?,
            buf,
        })
    }

    /// The whole packet.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// The P bit.
    pub fn has_padding(&self) -> bool {
        self.buf[0] & 0x20 != 0
    }

    /// The X bit.
    pub fn has_extension(&self) -> bool {
        self.layout.ext_start.is_some()
    }

    /// Number of CSRCs.
    pub fn csrc_count(&self) -> usize {
        usize::from(self.buf[0] & 0x0f)
    }

    /// The M bit.
    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }

    /// The payload type.
    pub fn pt(&self) -> Pt {
        Pt(self.buf[1] & 0x7f)
    }

    /// The sequence number.
    pub fn seq(&self) -> SeqNo {
        SeqNo(be16(self.buf, 2))
    }

    /// The RTP timestamp.
    pub fn timestamp(&self) -> u32 {
        be32(self.buf, 4)
    }

    /// The SSRC.
    pub fn ssrc(&self) -> Ssrc {
        Ssrc(be32(self.buf, 8))
    }

    /// The CSRC list.
    pub fn csrcs(&self) -> impl Iterator<Item = Ssrc> + 'a {
        let buf = self.buf;
        (0..self.csrc_count()).map(move |i| Ssrc(be32(buf, FIXED_HEADER_LEN + 4 * i)))
    }

    /// Length of the header including CSRCs and extension: where the payload starts.
    pub fn header_len(&self) -> usize {
        self.layout.payload_start
    }

    /// Byte range of the payload inside the packet (padding excluded).
    pub fn payload_range(&self) -> Range<usize> {
        self.layout.payload_start..self.layout.payload_end
    }

    /// The payload, padding excluded.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.payload_range()]
    }

    /// Number of padding bytes at the end (0 without the P bit).
    pub fn padding_len(&self) -> usize {
        self.buf.len() - self.layout.payload_end
    }

    /// The "defined by profile" field of the extension header, if present.
    pub fn extension_profile(&self) -> Option<u16> {
        self.layout.ext_start.map(|at| be16(self.buf, at))
    }

    /// The extension header and its data (without the 4-byte extension header).
    fn extension_data(&self) -> Option<(u16, &'a [u8])> {
        let at = self.layout.ext_start?;
        Some((
            be16(self.buf, at),
            &self.buf[at + 4..self.layout.payload_start],
        ))
    }

    /// The RFC 8285 form of the header extension, if it uses one.
    pub fn extension_form(&self) -> Option<ExtForm> {
        self.extension_profile().and_then(ExtForm::from_profile)
    }

    /// Iterates the RFC 8285 extension elements (empty for other profiles).
    pub fn extensions(&self) -> ExtIter<'a> {
        match self.extension_data() {
            Some((profile, data)) => ExtIter::new(profile, data),
            None => ExtIter::empty(),
        }
    }

    /// The value of the first extension element with this id.
    pub fn extension(&self, id: u8) -> Option<&'a [u8]> {
        self.extensions().find(|e| e.id == id).map(|e| e.data)
    }
}

/// A validated RTP packet whose header fields can be rewritten in place.
#[derive(Debug)]
pub struct RtpViewMut<'a> {
    buf: &'a mut [u8],
    layout: Layout,
}

impl<'a> RtpViewMut<'a> {
    /// Validates like [`RtpView::parse`].
    pub fn parse(buf: &'a mut [u8]) -> Result<Self, RtpDrop> {
        Ok(Self {
            layout: Layout::validate(buf)?,
            buf,
        })
    }

    /// Sets the M bit.
    pub fn set_marker(&mut self, marker: bool) {
        self.buf[1] = (self.buf[1] & 0x7f) | if marker { 0x80 } else { 0 };
    }

    /// Sets the payload type (the high bit of `pt` is ignored).
    pub fn set_pt(&mut self, pt: Pt) {
        self.buf[1] = (self.buf[1] & 0x80) | (pt.0 & 0x7f);
    }

    /// Sets the sequence number (bytes 2..4).
    pub fn set_seq(&mut self, seq: SeqNo) {
        self.buf[2..4].copy_from_slice(&seq.0.to_be_bytes());
    }

    /// Sets the timestamp (bytes 4..8).
    pub fn set_timestamp(&mut self, ts: u32) {
        self.buf[4..8].copy_from_slice(&ts.to_be_bytes());
    }

    /// Sets the SSRC (bytes 8..12).
    pub fn set_ssrc(&mut self, ssrc: Ssrc) {
        self.buf[8..12].copy_from_slice(&ssrc.0.to_be_bytes());
    }

    /// The payload, writable (padding excluded).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let r = self.layout.payload_start..self.layout.payload_end;
        &mut self.buf[r]
    }

    /// The value of the first extension element with `id`, writable in place.
    pub fn extension_mut(&mut self, id: u8) -> Option<&mut [u8]> {
        let range = self.find_extension(id)?.1;
        Some(&mut self.buf[range])
    }

    /// Overwrites the first element with `id` (header and value) with padding
    /// bytes, which every RFC 8285 parser skips. Returns whether one was found.
    pub fn remove_extension(&mut self, id: u8) -> bool {
        match self.find_extension(id) {
            Some((header, value)) => {
                self.buf[header.start..value.end].fill(0);
                true
            }
            None => false,
        }
    }

    /// Zeroes the value of the first element with `id`, keeping the element.
    pub fn zero_extension(&mut self, id: u8) -> bool {
        match self.find_extension(id) {
            Some((_, value)) => {
                self.buf[value].fill(0);
                true
            }
            None => false,
        }
    }

    /// Renumbers the first element with id `from` to `to` (media.md §5.2 step 6:
    /// repaired-rid becomes rid). Fails when `to` is not valid for the form.
    pub fn set_extension_id(&mut self, from: u8, to: u8) -> Result<bool, RtpDrop> {
        let Some(form) = self.view().extension_form() else {
            return Ok(false);
        };
        if !form.valid_id(to) {
            return Err(RtpDrop::OutOfRange);
        }
        let Some((header, _)) = self.find_extension(from) else {
            return Ok(false);
        };
        match form {
            ExtForm::OneByte => {
                let b = &mut self.buf[header.start];
                *b = (to << 4) | (*b & 0x0f);
            }
            ExtForm::TwoByte => self.buf[header.start] = to,
        }
        Ok(true)
    }

    /// Renumbers every extension element at once: an element with id `i`
    /// gets id `map(i)`, or becomes padding when `map(i)` is `None` or not a
    /// valid id for the packet's form. Renumbering all elements in one pass
    /// never lets two of them end up with one id, whatever the order, as
    /// long as `map` is injective on the ids it keeps. Does nothing for a
    /// packet without an RFC 8285 extension block.
    pub fn remap_extensions(&mut self, mut map: impl FnMut(u8) -> Option<u8>) {
        let Some(form) = self.view().extension_form() else {
            return;
        };
        let Some(at) = self.layout.ext_start else {
            return;
        };
        let base = at + 4;
        // Element positions are found on the unmodified block first; the
        // block's length and layout never change below.
        let mut pos = base;
        while pos < self.layout.payload_start {
            let (id, header_len, value_len) = match form {
                ExtForm::OneByte => {
                    let b = self.buf[pos];
                    if b == 0 {
                        pos += 1;
                        continue;
                    }
                    let id = b >> 4;
                    if id == 15 {
                        // RFC 8285: id 15 ends the block.
                        return;
                    }
                    (id, 1, usize::from(b & 0x0f) + 1)
                }
                ExtForm::TwoByte => {
                    let id = self.buf[pos];
                    if id == 0 {
                        pos += 1;
                        continue;
                    }
                    let Some(&len) = self.buf.get(pos + 1) else {
                        return;
                    };
                    (id, 2, usize::from(len))
                }
            };
            let end = pos + header_len + value_len;
            if end > self.layout.payload_start {
                // Malformed tail: leave it as it was (parsers stop there too).
                return;
            }
            match map(id).filter(|&to| form.valid_id(to)) {
                Some(to) => match form {
                    ExtForm::OneByte => self.buf[pos] = (to << 4) | (self.buf[pos] & 0x0f),
                    ExtForm::TwoByte => self.buf[pos] = to,
                },
                None => self.buf[pos..end].fill(0),
            }
            pos = end;
        }
    }

    /// A read-only view of the same packet.
    pub fn view(&self) -> RtpView<'_> {
        RtpView {
            buf: self.buf,
            layout: self.layout,
        }
    }

    /// The whole packet, writable. Header fields changed through this slice
    /// are not revalidated, so change only what keeps the layout.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        self.buf
    }

    /// (element header range, value range) of the first element with `id`.
    fn find_extension(&self, id: u8) -> Option<(Range<usize>, Range<usize>)> {
        let view = self.view();
        let at = self.layout.ext_start?;
        let base = at + 4;
        view.extensions().find(|e| e.id == id).map(|e| {
            (base + e.header_offset..base + e.value_offset, {
                let start = base + e.value_offset;
                start..start + e.data.len()
            })
        })
    }
}

/// Writes `src` into `out` with its header extension replaced by `ext_block`
/// (a complete block from [`ExtensionWriter::finish`], or empty for none),
/// keeping the fixed header, CSRCs and payload, and dropping padding.
/// Returns the length written (media.md §5.3 step 3).
pub fn write_with_extensions(
    src: &RtpView<'_>,
    ext_block: &[u8],
    out: &mut [u8],
) -> Result<usize, RtpDrop> {
    if ext_block.len() % 4 != 0 || (!ext_block.is_empty() && ext_block.len() < 4) {
        return Err(RtpDrop::OutOfRange);
    }
    let csrc_end = FIXED_HEADER_LEN + 4 * src.csrc_count();
    let payload = src.payload();
    let total = csrc_end + ext_block.len() + payload.len();
    let out = out.get_mut(..total).ok_or(RtpDrop::BufferTooSmall)?;
    out[..csrc_end].copy_from_slice(&src.buf[..csrc_end]);
    out[0] &= !0x30;
    if !ext_block.is_empty() {
        out[0] |= 0x10;
    }
    out[csrc_end..csrc_end + ext_block.len()].copy_from_slice(ext_block);
    out[csrc_end + ext_block.len()..].copy_from_slice(payload);
    Ok(total)
}

/// Unwraps 16-bit sequence numbers into a monotonic 64-bit space.
///
/// The first value is placed in cycle 1 (`65536 + seq`), so packets reordered
/// before it still map to distinct, smaller values without going negative.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeqUnwrapper {
    last: Option<u64>,
}

impl SeqUnwrapper {
    /// A fresh unwrapper.
    pub fn new() -> Self {
        Self::default()
    }

    /// Extends `seq` relative to the highest value seen so far.
    pub fn unwrap(&mut self, seq: SeqNo) -> u64 {
        let ext = self.peek(seq);
        if self.last.is_none_or(|l| ext > l) {
            self.last = Some(ext);
        }
        ext
    }

    /// What [`Self::unwrap`] would return, without updating.
    pub fn peek(&self, seq: SeqNo) -> u64 {
        match self.last {
            None => 0x1_0000 + u64::from(seq.0),
            Some(last) => {
                // Invariant: last >= 0x1_0000 and diff >= -0x8000, so no underflow
                // until 2^63 packets; saturate anyway.
                let d = seq.diff(SeqNo(last as u16));
                last.saturating_add_signed(i64::from(d))
            }
        }
    }

    /// The highest extended value seen.
    pub fn highest(&self) -> Option<u64> {
        self.last
    }
}

/// Unwraps 32-bit RTP timestamps into a monotonic 64-bit space (first value
/// in cycle 1, as for [`SeqUnwrapper`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct TimestampUnwrapper {
    last: Option<u64>,
}

impl TimestampUnwrapper {
    /// A fresh unwrapper.
    pub fn new() -> Self {
        Self::default()
    }

    /// Extends `ts` relative to the highest value seen so far.
    pub fn unwrap(&mut self, ts: u32) -> u64 {
        let ext = match self.last {
            None => (1u64 << 32) + u64::from(ts),
            Some(last) => {
                let d = ts.wrapping_sub(last as u32) as i32;
                last.saturating_add_signed(i64::from(d))
            }
        };
        if self.last.is_none_or(|l| ext > l) {
            self.last = Some(ext);
        }
        ext
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A packet: V=2 P=0 X=1 CC=1, M=1 PT=96, seq 0x1234, ts 0xdeadbeef,
    /// SSRC 0x11223344, one CSRC, a one-byte extension block, 3 payload bytes.
    const PACKET: [u8; 35] = [
        0x91, 0xe0, 0x12, 0x34, // V=2 X=1 CC=1 | M=1 PT=96 | seq
        0xde, 0xad, 0xbe, 0xef, // timestamp
        0x11, 0x22, 0x33, 0x44, // SSRC
        0xaa, 0xbb, 0xcc, 0xdd, // CSRC
        0xbe, 0xde, 0x00, 0x03, // one-byte profile, 3 words
        0x10, 0x7f, // id 1 len 1: audio level 0x7f
        0x32, 0x01, 0x02, 0x03, // id 3 len 3: abs-send-time
        0x00, 0x00, // padding
        0x51, 0x00, 0x05, 0x00, // id 5 len 2: twcc seq 5 ; padding
        0x01, 0x02, 0x03, // payload
    ];

    #[test]
    fn parses_fields() {
        let v = parse(&PACKET).expect("valid");
        assert!(v.marker());
        assert_eq!(v.pt(), Pt(96));
        assert_eq!(v.seq(), SeqNo(0x1234));
        assert_eq!(v.timestamp(), 0xdead_beef);
        assert_eq!(v.ssrc(), Ssrc(0x1122_3344));
        assert_eq!(v.csrcs().collect::<Vec<_>>(), vec![Ssrc(0xaabb_ccdd)]);
        assert_eq!(v.header_len(), 32);
        assert_eq!(v.payload(), &[1, 2, 3]);
        assert_eq!(v.extension_form(), Some(ExtForm::OneByte));
        assert_eq!(v.extension(1), Some(&[0x7f][..]));
        assert_eq!(v.extension(3), Some(&[1, 2, 3][..]));
        assert_eq!(v.extension(5), Some(&[0, 5][..]));
        assert_eq!(v.extension(2), None);
    }

    #[test]
    fn setters_write_in_place() {
        let mut b = PACKET;
        let mut v = RtpViewMut::parse(&mut b).expect("valid");
        v.set_ssrc(Ssrc(0x0102_0304));
        v.set_seq(SeqNo(0xfffe));
        v.set_timestamp(7);
        v.set_pt(Pt(111));
        v.set_marker(false);
        v.extension_mut(5)
            .expect("present")
            .copy_from_slice(&[0x12, 0x34]);
        assert!(v.remove_extension(1));
        assert!(v.zero_extension(3));
        assert_eq!(v.set_extension_id(5, 9), Ok(true));
        let r = v.view();
        assert_eq!(r.ssrc(), Ssrc(0x0102_0304));
        assert_eq!(r.seq(), SeqNo(0xfffe));
        assert_eq!(r.timestamp(), 7);
        assert_eq!(r.pt(), Pt(111));
        assert!(!r.marker());
        assert_eq!(r.extension(1), None);
        assert_eq!(r.extension(3), Some(&[0, 0, 0][..]));
        assert_eq!(r.extension(9), Some(&[0x12, 0x34][..]));
        assert_eq!(&b[8..12], &[1, 2, 3, 4]);
        assert_eq!(&b[20..22], &[0, 0]);
    }

    #[test]
    fn rejects_bad_headers() {
        assert_eq!(parse(&PACKET[..11]).err(), Some(RtpDrop::TooShort));
        let mut b = PACKET;
        b[0] = 0x51;
        assert_eq!(parse(&b).err(), Some(RtpDrop::BadVersion));
        b[0] = 0x8f;
        assert_eq!(parse(&b[..20]).err(), Some(RtpDrop::CsrcOverrun));
        b[0] = 0x91;
        assert_eq!(parse(&b[..30]).err(), Some(RtpDrop::ExtensionOverrun));
        b[0] = 0xb1; // padding, last byte 3: payload becomes empty
        assert_eq!(parse(&b).expect("valid").payload(), &[] as &[u8]);
        b[34] = 4; // padding larger than payload
        assert_eq!(parse(&b).err(), Some(RtpDrop::BadPadding));
        b[34] = 0;
        assert_eq!(parse(&b).err(), Some(RtpDrop::BadPadding));
    }

    #[test]
    fn rebuild_with_new_extensions() {
        let v = parse(&PACKET).expect("valid");
        let mut ext = [0u8; 32];
        let mut w = ExtensionWriter::new(&mut ext, ExtForm::OneByte);
        w.push_mid(4, b"0").expect("fits");
        let n = w.finish().expect("fits");
        let mut out = [0u8; 64];
        let len = write_with_extensions(&v, &ext[..n], &mut out).expect("fits");
        let r = parse(&out[..len]).expect("valid");
        assert_eq!(r.extension(4), Some(&b"0"[..]));
        assert_eq!(r.extension(1), None);
        assert_eq!(r.payload(), &[1, 2, 3]);
        assert_eq!(r.csrcs().count(), 1);
        let len = write_with_extensions(&v, &[], &mut out).expect("fits");
        let r = parse(&out[..len]).expect("valid");
        assert!(!r.has_extension());
        assert_eq!(r.header_len(), 16);
        assert_eq!(
            write_with_extensions(&v, &[], &mut out[..10]),
            Err(RtpDrop::BufferTooSmall)
        );
    }

    #[test]
    fn remap_renumbers_all_elements_at_once() {
        // Swap 1 and 3 (in one pass: no collision), drop 5.
        let mut b = PACKET;
        let mut v = RtpViewMut::parse(&mut b).expect("valid");
        v.remap_extensions(|id| match id {
            1 => Some(3),
            3 => Some(1),
            _ => None,
        });
        let r = v.view();
        assert_eq!(r.extension(3), Some(&[0x7f][..]));
        assert_eq!(r.extension(1), Some(&[1, 2, 3][..]));
        assert_eq!(r.extension(5), None);
        assert_eq!(r.payload(), &[1, 2, 3]);
        // An id the form cannot carry removes the element.
        let mut b = PACKET;
        let mut v = RtpViewMut::parse(&mut b).expect("valid");
        v.remap_extensions(|id| Some(if id == 3 { 15 } else { id }));
        let r = v.view();
        assert_eq!(r.extension(3), None);
        assert_eq!(r.extensions().map(|e| e.id).collect::<Vec<_>>(), vec![1, 5]);
        // Two-byte form.
        let mut two = vec![0x90, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2];
        two.extend_from_slice(&[0x10, 0x00, 0x00, 0x02, 20, 2, 0xaa, 0xbb, 7, 1, 0xcc, 0]);
        two.push(0x42);
        let mut v = RtpViewMut::parse(&mut two).expect("valid");
        v.remap_extensions(|id| (id == 20).then_some(200));
        let r = v.view();
        assert_eq!(r.extension(200), Some(&[0xaa, 0xbb][..]));
        assert_eq!(r.extension(7), None);
        assert_eq!(r.payload(), &[0x42]);
        // Random blocks: never a panic, the payload never changes.
        let mut rng = TestRng(7);
        for _ in 0..2000 {
            let mut p = PACKET;
            for byte in &mut p[20..32] {
                *byte = rng.below(256) as u8;
            }
            let Ok(mut v) = RtpViewMut::parse(&mut p) else {
                continue;
            };
            let k = rng.below(16) as u8;
            v.remap_extensions(|id| Some(id ^ k));
            assert_eq!(v.view().payload(), &[1, 2, 3]);
        }
    }

    #[test]
    fn seq_comparison_wraps() {
        assert!(SeqNo(1).is_newer_than(SeqNo(0xffff)));
        assert!(!SeqNo(0xffff).is_newer_than(SeqNo(1)));
        assert_eq!(SeqNo(2).diff(SeqNo(0xfffe)), 4);
        assert_eq!(SeqNo(0xfffe).diff(SeqNo(2)), -4);
        assert!(SeqNo(0x8000).is_newer_than(SeqNo(0)));
        assert!(!SeqNo(0).is_newer_than(SeqNo(0x8000)));
        assert!(!SeqNo(5).is_newer_than(SeqNo(5)));
    }

    /// Deterministic pseudo-random generator for property tests (SplitMix64).
    pub(crate) struct TestRng(pub(crate) u64);

    impl TestRng {
        pub(crate) fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        pub(crate) fn below(&mut self, n: u64) -> u64 {
            self.next_u64() % n.max(1)
        }

        pub(crate) fn fill(&mut self, buf: &mut [u8]) {
            for b in buf {
                *b = self.next_u64() as u8;
            }
        }
    }

    #[test]
    fn seq_unwrap_property() {
        // A stream advancing by random steps with bounded reordering: the
        // unwrapped value always equals the true counter.
        let mut rng = TestRng(0x5eed_0001);
        for _ in 0..50 {
            let mut truth: u64 = 0x1_0000 + rng.below(0x1_0000);
            let mut u = SeqUnwrapper::new();
            assert_eq!(u.unwrap(SeqNo(truth as u16)), truth);
            let mut highest = truth;
            for _ in 0..2000 {
                // Forward jumps up to 3000, or a late packet up to 1000 behind.
                if rng.below(4) == 0 {
                    let back = rng.below(1000).min(truth - 0x1_0000);
                    let late = highest - back;
                    assert_eq!(u.unwrap(SeqNo(late as u16)), late);
                } else {
                    truth = highest + rng.below(3000);
                    highest = highest.max(truth);
                    assert_eq!(u.unwrap(SeqNo(truth as u16)), truth);
                }
                assert_eq!(u.highest(), Some(highest));
            }
        }
    }

    #[test]
    fn timestamp_unwrap_property() {
        let mut rng = TestRng(0x5eed_0002);
        let mut truth: u64 = (1 << 32) + rng.below(1 << 32);
        let mut u = TimestampUnwrapper::new();
        assert_eq!(u.unwrap(truth as u32), truth);
        for _ in 0..10_000 {
            truth += rng.below(1 << 30);
            assert_eq!(u.unwrap(truth as u32), truth);
            let late = truth - rng.below(1 << 20);
            assert_eq!(u.unwrap(late as u32), late);
        }
    }

    #[test]
    fn no_panic_on_garbage() {
        let mut rng = TestRng(0x5eed_0003);
        let mut buf = [0u8; 256];
        for round in 0..20_000 {
            let len = rng.below(buf.len() as u64 + 1) as usize;
            rng.fill(&mut buf[..len]);
            if round % 2 == 0 {
                buf[0] = 0x80 | (buf[0] & 0x3f); // make the version right half the time
            }
            exercise(&mut buf[..len]);
        }
        // Every truncation of a valid packet.
        for n in 0..=PACKET.len() {
            let mut b = PACKET;
            exercise(&mut b[..n]);
        }
    }

    fn exercise(buf: &mut [u8]) {
        if let Ok(v) = parse(buf) {
            let _ = (v.payload(), v.csrcs().count(), v.extensions().count());
            for c in codec::VideoCodec::ALL {
                let _ = codec::parse_payload(c, v.payload());
            }
            let mut out = [0u8; 300];
            let _ = write_with_extensions(&v, &[], &mut out);
        }
        if let Ok(mut m) = RtpViewMut::parse(buf) {
            for id in 0..16 {
                let _ = m.set_extension_id(id, 14);
                m.remove_extension(id);
            }
        }
    }
}
