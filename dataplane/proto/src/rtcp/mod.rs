//! RTCP compound packets (RFC 3550 §6, RFC 5506 reduced size): typed views,
//! builders into caller buffers, and the filter applied to plugin-sent RTCP.
//!
//! [`parse`] walks a compound packet and yields one [`RtcpPacket`] per
//! packet: sender and receiver reports and SDES/BYE in [`report`], NACK, PLI,
//! FIR and REMB in [`feedback`], transport-wide congestion control feedback in
//! [`twcc`]. APP, XR and unknown feedback types come out as
//! [`RtcpPacket::Other`] and are skipped by the core. Every `write_*` function
//! writes one packet into a caller slice and returns its length.
//!
//! This module never does IO, never reads a clock (wall-clock time is passed
//! in as microseconds) and never allocates: views borrow the caller's bytes.
//!
//! Fuzzing entry points: [`parse`] (every typed view behind it),
//! [`twcc::TwccView::parse`] and [`filter_plugin_rtcp`].

pub mod feedback;
pub mod report;
pub mod twcc;

#[cfg(test)]
mod no_alloc;

use crate::rtp::Ssrc;

pub use feedback::{FirView, NackView, PliView, RembView};
pub use report::{
    ByeView, NtpTime, ReceiverReportView, ReceiverStats, ReportBlock, ReportBlockView, SdesView,
    SenderInfo, SenderReportView,
};
pub use twcc::{TwccRecord, TwccView};

/// Sender report (RFC 3550 §6.4.1).
pub const PT_SR: u8 = 200;
/// Receiver report (RFC 3550 §6.4.2).
pub const PT_RR: u8 = 201;
/// Source description (RFC 3550 §6.5).
pub const PT_SDES: u8 = 202;
/// Goodbye (RFC 3550 §6.6).
pub const PT_BYE: u8 = 203;
/// Application-defined (RFC 3550 §6.7).
pub const PT_APP: u8 = 204;
/// Transport-layer feedback (RFC 4585 §6.1).
pub const PT_RTPFB: u8 = 205;
/// Payload-specific feedback (RFC 4585 §6.1).
pub const PT_PSFB: u8 = 206;
/// Extended reports (RFC 3611).
pub const PT_XR: u8 = 207;

/// RTPFB FMT of a generic NACK (RFC 4585 §6.2.1).
pub const FMT_NACK: u8 = 1;
/// RTPFB FMT of transport-wide CC feedback.
pub const FMT_TWCC: u8 = 15;
/// PSFB FMT of a PLI (RFC 4585 §6.3.1).
pub const FMT_PLI: u8 = 1;
/// PSFB FMT of a FIR (RFC 5104 §4.3.1).
pub const FMT_FIR: u8 = 4;
/// PSFB FMT of application-layer feedback, used by REMB.
pub const FMT_AFB: u8 = 15;

/// Why RTCP bytes were not accepted, or could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum RtcpDrop {
    /// Shorter than a common header, or than the packet type requires.
    #[error("RTCP packet too short")]
    TooShort,
    /// The version field is not 2.
    #[error("RTCP version is not 2")]
    BadVersion,
    /// The length field points past the end of the datagram.
    #[error("RTCP length past the end")]
    LengthOverrun,
    /// The padding count is zero or larger than the packet.
    #[error("bad RTCP padding")]
    BadPadding,
    /// The packet's contents contradict its own counts.
    #[error("malformed RTCP packet")]
    Malformed,
    /// The output buffer is too small.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// A value does not fit its field.
    #[error("value out of range for the field")]
    OutOfRange,
}

/// Walks a compound packet; the main fuzzing entry point of this module.
pub fn parse(buf: &[u8]) -> CompoundIter<'_> {
    CompoundIter { buf, pos: 0 }
}

/// One RTCP packet of a compound, framing checked, contents not interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpRaw<'a> {
    bytes: &'a [u8],
    body_len: usize,
}

impl<'a> RtcpRaw<'a> {
    /// Checks the common header of the packet at the start of `buf` and
    /// returns it and the bytes it occupies.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtcpDrop> {
        let h = buf.get(..4).ok_or(RtcpDrop::TooShort)?;
        if h[0] >> 6 != 2 {
            return Err(RtcpDrop::BadVersion);
        }
        let len = 4 * (usize::from(u16::from_be_bytes([h[2], h[3]])) + 1);
        let bytes = buf.get(..len).ok_or(RtcpDrop::LengthOverrun)?;
        let body_len = if h[0] & 0x20 != 0 {
            // Invariant: len >= 4, so there is a last byte.
            let pad = usize::from(bytes[len - 1]);
            if pad == 0 || pad > len - 4 {
                return Err(RtcpDrop::BadPadding);
            }
            len - pad
        } else {
            len
        };
        Ok(Self { bytes, body_len })
    }

    /// The packet type.
    pub fn pt(&self) -> u8 {
        self.bytes[1]
    }

    /// The 5-bit count field: RC, SC or FMT depending on the type.
    pub fn count(&self) -> u8 {
        self.bytes[0] & 0x1f
    }

    /// Whether the P bit is set.
    pub fn has_padding(&self) -> bool {
        self.body_len != self.bytes.len()
    }

    /// The whole packet as on the wire, padding included.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The packet without its padding.
    pub fn body(&self) -> &'a [u8] {
        &self.bytes[..self.body_len]
    }

    /// The SSRC after the common header (the sender's, for every type but
    /// SDES and BYE, where it is the first listed source).
    pub fn sender_ssrc(&self) -> Option<Ssrc> {
        self.body().get(4..8).map(|b| Ssrc(be32(b, 0)))
    }
}

/// An RTCP packet, typed.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum RtcpPacket<'a> {
    /// SR.
    SenderReport(SenderReportView<'a>),
    /// RR.
    ReceiverReport(ReceiverReportView<'a>),
    /// SDES.
    Sdes(SdesView<'a>),
    /// BYE.
    Bye(ByeView<'a>),
    /// Generic NACK.
    Nack(NackView<'a>),
    /// Transport-wide congestion control feedback.
    TransportCc(TwccView<'a>),
    /// Picture loss indication.
    Pli(PliView<'a>),
    /// Full intra request.
    Fir(FirView<'a>),
    /// Receiver estimated maximum bitrate.
    Remb(RembView<'a>),
    /// APP, XR, other feedback types and unknown packet types: skipped.
    Other(RtcpRaw<'a>),
}

impl<'a> RtcpPacket<'a> {
    /// Types a framed packet.
    pub fn from_raw(raw: RtcpRaw<'a>) -> Result<Self, RtcpDrop> {
        Ok(match (raw.pt(), raw.count()) {
            (PT_SR, _) => Self::SenderReport(SenderReportView::parse(raw)?),
            (PT_RR, _) => Self::ReceiverReport(ReceiverReportView::parse(raw)?),
            (PT_SDES, _) => Self::Sdes(SdesView::parse(raw)?),
            (PT_BYE, _) => Self::Bye(ByeView::parse(raw)?),
            (PT_RTPFB, FMT_NACK) => Self::Nack(NackView::parse(raw)?),
            (PT_RTPFB, FMT_TWCC) => Self::TransportCc(TwccView::parse(raw)?),
            (PT_PSFB, FMT_PLI) => Self::Pli(PliView::parse(raw)?),
            (PT_PSFB, FMT_FIR) => Self::Fir(FirView::parse(raw)?),
            (PT_PSFB, FMT_AFB) if RembView::is_remb(raw) => Self::Remb(RembView::parse(raw)?),
            _ => Self::Other(raw),
        })
    }
}

/// Iterates the packets of a compound. A framing error (bad version, length
/// past the end) is yielded once and ends the iteration; a packet whose
/// contents are malformed is yielded as an error and iteration goes on.
#[derive(Debug, Clone)]
pub struct CompoundIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for CompoundIter<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpDrop>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.buf.get(self.pos..).filter(|r| !r.is_empty())?;
        match RtcpRaw::parse(rest) {
            Ok(raw) => {
                self.pos += raw.bytes().len();
                Some(RtcpPacket::from_raw(raw))
            }
            Err(e) => {
                self.pos = self.buf.len();
                Some(Err(e))
            }
        }
    }
}

/// Checks that `buf` is a well-framed compound (or reduced-size, RFC 5506)
/// packet and returns the number of packets in it.
pub fn validate_compound(buf: &[u8]) -> Result<usize, RtcpDrop> {
    if buf.is_empty() {
        return Err(RtcpDrop::TooShort);
    }
    let mut pos = 0;
    let mut n = 0;
    while pos < buf.len() {
        pos += RtcpRaw::parse(&buf[pos..])?.bytes().len();
        n += 1;
    }
    Ok(n)
}

/// Copies the RTCP a plugin or script sent (script contract `relayRtcp`,
/// media.md §5.5) into `out`, keeping only what the core does not generate
/// itself: SR, RR, SDES, XR, generic NACK and transport-cc feedback are
/// removed; BYE, APP, FIR, PLI, REMB and other feedback pass. Sender SSRCs
/// become `local`, media SSRCs (and FIR / REMB targets) `peer`. Padding is
/// dropped. Returns the length written (0 when nothing is left).
pub fn filter_plugin_rtcp(
    input: &[u8],
    out: &mut [u8],
    local: Ssrc,
    peer: Ssrc,
) -> Result<usize, RtcpDrop> {
    let mut pos = 0;
    let mut written = 0;
    while pos < input.len() {
        let raw = RtcpRaw::parse(&input[pos..])?;
        pos += raw.bytes().len();
        let generated_by_core = matches!(
            (raw.pt(), raw.count()),
            (PT_SR | PT_RR | PT_SDES | PT_XR, _) | (PT_RTPFB, FMT_NACK | FMT_TWCC)
        );
        if generated_by_core {
            continue;
        }
        // Validate the kept packet's contents before relaying it.
        let typed = RtcpPacket::from_raw(raw)?;
        let body = raw.body();
        // Trailing padding-less bodies may not be a whole number of words.
        let len = body.len().next_multiple_of(4);
        let dst = out
            .get_mut(written..written + len)
            .ok_or(RtcpDrop::BufferTooSmall)?;
        dst[..body.len()].copy_from_slice(body);
        dst[body.len()..].fill(0);
        dst[0] &= !0x20;
        write_length(dst)?;
        if dst.len() >= 8 {
            dst[4..8].copy_from_slice(&local.0.to_be_bytes());
        }
        match typed {
            RtcpPacket::Fir(_) => {
                // Media SSRC unused (RFC 5104 §4.3.1.2); target every entry at the peer.
                let mut at = 12;
                while at + 8 <= dst.len() {
                    dst[at..at + 4].copy_from_slice(&peer.0.to_be_bytes());
                    at += 8;
                }
            }
            RtcpPacket::Remb(r) if r.ssrc_count() > 0 => {
                dst[20..24].copy_from_slice(&peer.0.to_be_bytes());
            }
            // Media SSRC of a REMB stays 0 (draft-alvestrand-rmcat-remb §2.2).
            RtcpPacket::Remb(_) => {}
            _ if matches!(raw.pt(), PT_RTPFB | PT_PSFB) && dst.len() >= 12 => {
                dst[8..12].copy_from_slice(&peer.0.to_be_bytes());
            }
            _ => {}
        }
        written += len;
    }
    Ok(written)
}

/// Rewrites, in place, the SSRC of every report block of every SR and RR in
/// a compound through `map` (media.md §5.5: swap report blocks that refer to
/// an RTX SSRC, translate to the rewritten stream).
pub fn map_report_block_ssrcs(
    buf: &mut [u8],
    mut map: impl FnMut(Ssrc) -> Ssrc,
) -> Result<(), RtcpDrop> {
    let mut pos = 0;
    while pos < buf.len() {
        let raw = RtcpRaw::parse(&buf[pos..])?;
        let (len, first, count) = match RtcpPacket::from_raw(raw)? {
            RtcpPacket::SenderReport(sr) => (raw.bytes().len(), 28, sr.report_blocks().count()),
            RtcpPacket::ReceiverReport(rr) => (raw.bytes().len(), 8, rr.report_blocks().count()),
            _ => (raw.bytes().len(), 0, 0),
        };
        for i in 0..count {
            let at = pos + first + 24 * i;
            let old = Ssrc(be32(buf, at));
            buf[at..at + 4].copy_from_slice(&map(old).0.to_be_bytes());
        }
        pos += len;
    }
    Ok(())
}

/// Writes an RR with no report blocks (8 bytes), which media.md §5.5
/// prepends to a REMB.
pub fn write_empty_rr(out: &mut [u8], ssrc: Ssrc) -> Result<usize, RtcpDrop> {
    let dst = out.get_mut(..8).ok_or(RtcpDrop::BufferTooSmall)?;
    dst[..4].copy_from_slice(&[0x80, PT_RR, 0, 1]);
    dst[4..8].copy_from_slice(&ssrc.0.to_be_bytes());
    Ok(8)
}

/// Writes a common header for a packet occupying all of `dst` (a multiple
/// of four bytes).
pub(crate) fn write_header(dst: &mut [u8], count: u8, pt: u8) -> Result<(), RtcpDrop> {
    if count > 31 || dst.len() < 4 {
        return Err(RtcpDrop::OutOfRange);
    }
    dst[0] = 0x80 | count;
    dst[1] = pt;
    write_length(dst)
}

/// Sets the length field of the packet occupying all of `dst`.
fn write_length(dst: &mut [u8]) -> Result<(), RtcpDrop> {
    let words = u16::try_from(dst.len() / 4 - 1).map_err(|_| RtcpDrop::OutOfRange)?;
    dst[2..4].copy_from_slice(&words.to_be_bytes());
    Ok(())
}

pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rtp::SeqNo;

    /// A compound as a browser sends it: RR + SDES + NACK + PLI + REMB + APP.
    #[rustfmt::skip]
    pub(crate) const COMPOUND: &[u8] = &[
        // RR, RC=1, length 7: sender 0x11111111, one report block
        0x81, 201, 0x00, 0x07, 0x11, 0x11, 0x11, 0x11,
        0x22, 0x22, 0x22, 0x22, // block: source SSRC
        0x40, 0x00, 0x00, 0x05, // fraction 64/256, cumulative lost 5
        0x00, 0x01, 0x00, 0x10, // extended highest seq: cycle 1, seq 16
        0x00, 0x00, 0x00, 0x20, // jitter 32
        0x12, 0x34, 0x56, 0x78, // LSR
        0x00, 0x01, 0x00, 0x00, // DLSR 1 s
        // SDES, SC=1, length 3: chunk 0x11111111, CNAME "ab", end
        0x81, 202, 0x00, 0x03, 0x11, 0x11, 0x11, 0x11,
        0x01, 0x02, b'a', b'b',
        0x00, 0x00, 0x00, 0x00,
        // RTPFB NACK, length 3: sender, media 0x22222222, PID 100 BLP 0x0005
        0x81, 205, 0x00, 0x03, 0x11, 0x11, 0x11, 0x11,
        0x22, 0x22, 0x22, 0x22, 0x00, 100, 0x00, 0x05,
        // PSFB PLI, length 2
        0x81, 206, 0x00, 0x02, 0x11, 0x11, 0x11, 0x11,
        0x22, 0x22, 0x22, 0x22,
        // PSFB REMB, length 5: media 0, "REMB", 1 SSRC, exp 2 mantissa 0x3ffff
        0x8f, 206, 0x00, 0x05, 0x11, 0x11, 0x11, 0x11,
        0x00, 0x00, 0x00, 0x00, b'R', b'E', b'M', b'B',
        0x01, 0x0b, 0xff, 0xff, 0x22, 0x22, 0x22, 0x22,
        // APP, subtype 0, length 2: "name"
        0x80, 204, 0x00, 0x02, 0x11, 0x11, 0x11, 0x11,
        b'n', b'a', b'm', b'e',
    ];

    #[test]
    fn compound_types() {
        assert_eq!(validate_compound(COMPOUND), Ok(6));
        let kinds: Vec<&str> = parse(COMPOUND)
            .map(|p| match p.expect("valid") {
                RtcpPacket::ReceiverReport(_) => "rr",
                RtcpPacket::Sdes(_) => "sdes",
                RtcpPacket::Nack(_) => "nack",
                RtcpPacket::Pli(_) => "pli",
                RtcpPacket::Remb(_) => "remb",
                RtcpPacket::Other(r) if r.pt() == PT_APP => "app",
                _ => "?",
            })
            .collect();
        assert_eq!(kinds, ["rr", "sdes", "nack", "pli", "remb", "app"]);
        let nack = parse(COMPOUND)
            .find_map(|p| match p {
                Ok(RtcpPacket::Nack(n)) => Some(n),
                _ => None,
            })
            .expect("present");
        let lost: Vec<SeqNo> = nack.lost().collect();
        assert_eq!(lost, [SeqNo(100), SeqNo(101), SeqNo(103)]);
    }

    #[test]
    fn framing_errors_end_iteration() {
        let mut b = COMPOUND.to_vec();
        b[32] = 0x40; // version 1 on the SDES
        let items: Vec<_> = parse(&b).collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].err(), Some(RtcpDrop::BadVersion));
        assert_eq!(
            validate_compound(&COMPOUND[..30]),
            Err(RtcpDrop::LengthOverrun)
        );
        // Padding count of 0 is invalid.
        assert_eq!(
            validate_compound(&[0xa0, 201, 0, 1, 1, 1, 1, 0]),
            Err(RtcpDrop::BadPadding)
        );
        // Padding of 4 on an 8-byte RR: valid framing, RR too short after it.
        let padded = [0xa0, 201, 0, 1, 0, 0, 0, 4];
        assert_eq!(validate_compound(&padded), Ok(1));
        assert_eq!(
            parse(&padded).next().and_then(|r| r.err()),
            Some(RtcpDrop::TooShort)
        );
    }

    #[test]
    fn filter_keeps_feedback_and_fixes_ssrcs() {
        let mut out = [0u8; 256];
        let n = filter_plugin_rtcp(COMPOUND, &mut out, Ssrc(0xaaaa_aaaa), Ssrc(0xbbbb_bbbb))
            .expect("valid");
        #[rustfmt::skip]
        let expect: &[u8] = &[
            // PLI: sender local, media peer
            0x81, 206, 0x00, 0x02, 0xaa, 0xaa, 0xaa, 0xaa, 0xbb, 0xbb, 0xbb, 0xbb,
            // REMB: media stays 0, first listed SSRC becomes the peer
            0x8f, 206, 0x00, 0x05, 0xaa, 0xaa, 0xaa, 0xaa, 0x00, 0x00, 0x00, 0x00,
            b'R', b'E', b'M', b'B', 0x01, 0x0b, 0xff, 0xff, 0xbb, 0xbb, 0xbb, 0xbb,
            // APP: sender local
            0x80, 204, 0x00, 0x02, 0xaa, 0xaa, 0xaa, 0xaa, b'n', b'a', b'm', b'e',
        ];
        assert_eq!(&out[..n], expect);
        // A FIR gets its entries retargeted.
        let mut fir = [0u8; 20];
        let len = feedback::write_fir(&mut fir, Ssrc(1), &[(Ssrc(2), 7)]).expect("fits");
        let n = filter_plugin_rtcp(&fir[..len], &mut out, Ssrc(9), Ssrc(8)).expect("valid");
        assert_eq!(n, 20);
        assert_eq!(&out[12..17], &[0, 0, 0, 8, 7]);
        assert_eq!(
            filter_plugin_rtcp(COMPOUND, &mut out[..20], Ssrc(1), Ssrc(2)),
            Err(RtcpDrop::BufferTooSmall)
        );
    }

    #[test]
    fn report_blocks_remapped_in_place() {
        let mut b = COMPOUND.to_vec();
        map_report_block_ssrcs(&mut b, |s| if s == Ssrc(0x2222_2222) { Ssrc(5) } else { s })
            .expect("valid");
        assert_eq!(&b[8..12], &[0, 0, 0, 5]);
        assert_eq!(&b[4..8], &[0x11; 4]);
    }

    #[test]
    fn empty_rr() {
        let mut out = [0u8; 8];
        assert_eq!(write_empty_rr(&mut out, Ssrc(0x0102_0304)), Ok(8));
        assert_eq!(out, [0x80, 201, 0, 1, 1, 2, 3, 4]);
        match parse(&out).next() {
            Some(Ok(RtcpPacket::ReceiverReport(rr))) => assert_eq!(rr.report_blocks().count(), 0),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn no_panic_on_garbage_or_truncation() {
        let mut rng = crate::rtp::tests::TestRng(0x5eed_1001);
        let mut buf = [0u8; 512];
        let mut out = [0u8; 512];
        for round in 0..30_000 {
            let len = rng.below(buf.len() as u64 + 1) as usize;
            rng.fill(&mut buf[..len]);
            if round % 2 == 0 && len >= 4 {
                // Plausible header: version 2, a known type, a length that fits.
                buf[0] = 0x80 | (buf[0] & 0x3f);
                buf[1] = 200 + (buf[1] % 8);
                let words = (len / 4).saturating_sub(1) as u16;
                buf[2..4].copy_from_slice(&words.to_be_bytes());
            }
            exercise(&mut buf[..len], &mut out);
        }
        for n in 0..=COMPOUND.len() {
            let mut b = COMPOUND.to_vec();
            exercise(&mut b[..n], &mut out);
        }
    }

    /// Every packet type the builders write, in one compound.
    pub(crate) fn built_compound() -> Vec<u8> {
        let mut b = vec![0u8; 1024];
        let mut at = 0;
        let block = ReportBlock {
            ssrc: Ssrc(2),
            fraction_lost: 3,
            cumulative_lost: -4,
            ext_highest_seq: 5,
            jitter: 6,
            lsr: 7,
            dlsr: 8,
        };
        let info = SenderInfo {
            ssrc: Ssrc(1),
            ntp: NtpTime(9),
            rtp_ts: 10,
            packet_count: 11,
            octet_count: 12,
        };
        at += report::write_sr(&mut b[at..], &info, &[block]).expect("fits");
        at += report::write_rr(&mut b[at..], Ssrc(1), &[block, block]).expect("fits");
        at += report::write_sdes_cname(&mut b[at..], Ssrc(1), b"janus").expect("fits");
        at += report::write_bye(&mut b[at..], &[Ssrc(1)], Some(b"done")).expect("fits");
        let lost = [SeqNo(1), SeqNo(3), SeqNo(40)];
        at += feedback::write_nack(&mut b[at..], Ssrc(1), Ssrc(2), &lost).expect("fits");
        at += feedback::write_pli(&mut b[at..], Ssrc(1), Ssrc(2)).expect("fits");
        at += feedback::write_fir(&mut b[at..], Ssrc(1), &[(Ssrc(2), 1)]).expect("fits");
        at += feedback::write_remb(&mut b[at..], Ssrc(1), 1_000_000, &[Ssrc(2)]).expect("fits");
        let recs = [
            TwccRecord {
                seq: 10,
                arrival_us: 1_000,
            },
            TwccRecord {
                seq: 12,
                arrival_us: 2_000,
            },
            TwccRecord {
                seq: 40,
                arrival_us: 90_000,
            },
        ];
        at += twcc::write_twcc(&mut b[at..], Ssrc(1), Ssrc(2), 0, &recs)
            .expect("fits")
            .len;
        b.truncate(at);
        b
    }

    #[test]
    fn builders_compose_and_mutations_do_not_panic() {
        let compound = built_compound();
        assert_eq!(validate_compound(&compound), Ok(9));
        assert!(parse(&compound).all(|p| p.is_ok()));
        let mut out = [0u8; 1024];
        let mut rng = crate::rtp::tests::TestRng(0x5eed_1002);
        for _ in 0..20_000 {
            let mut b = compound.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(b.len() as u64) as usize;
                b[i] = rng.next_u64() as u8;
            }
            let cut = b.len() - rng.below(b.len() as u64 / 4) as usize;
            exercise(&mut b[..cut], &mut out);
        }
        for n in 0..=compound.len() {
            let mut b = compound.clone();
            exercise(&mut b[..n], &mut out);
        }
    }

    pub(crate) fn exercise(buf: &mut [u8], out: &mut [u8]) {
        for p in parse(buf).flatten() {
            touch(p);
        }
        let _ = validate_compound(buf);
        let _ = filter_plugin_rtcp(buf, out, Ssrc(1), Ssrc(2));
        let _ = map_report_block_ssrcs(buf, |s| Ssrc(s.0 ^ 1));
    }

    fn touch(p: RtcpPacket<'_>) {
        match p {
            RtcpPacket::SenderReport(sr) => {
                let _ = sr.info();
                sr.report_blocks().for_each(|b| {
                    let _ = b.block();
                });
            }
            RtcpPacket::ReceiverReport(rr) => {
                rr.report_blocks().for_each(|b| {
                    let _ = b.block();
                });
            }
            RtcpPacket::Sdes(s) => {
                let _ = (s.cname(), s.chunks().flat_map(|c| c.items()).count());
            }
            RtcpPacket::Bye(b) => {
                let _ = (b.ssrcs().count(), b.reason());
            }
            RtcpPacket::Nack(n) => {
                let _ = n.lost().count();
            }
            RtcpPacket::TransportCc(t) => {
                let _ = t.packets().count();
            }
            RtcpPacket::Pli(p) => {
                let _ = p.media_ssrc();
            }
            RtcpPacket::Fir(f) => {
                let _ = f.entries().count();
            }
            RtcpPacket::Remb(r) => {
                let _ = (r.bitrate(), r.ssrcs().count());
            }
            RtcpPacket::Other(o) => {
                let _ = o.sender_ssrc();
            }
        }
    }
}
