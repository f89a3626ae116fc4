//! RTP retransmission payload format (RFC 4588 §4).
//!
//! An RTX packet is the original packet with the RTX payload type, the RTX
//! SSRC and the RTX stream's own sequence number, its payload prefixed with
//! the original sequence number (OSN). [`wrap`] builds one into a caller
//! buffer (media.md §5.4); [`unwrap_in_place`] restores the original packet
//! (media.md §5.2 step 6; renaming the repaired-rid extension to rid is
//! [`crate::rtp::RtpViewMut::set_extension_id`]).
//!
//! This module never does IO, never reads a clock and never allocates.
//! Fuzzing entry point: [`unwrap_in_place`] (and [`wrap`] on what it accepts).

use crate::rtp::{Pt, RtpDrop, RtpView, RtpViewMut, SeqNo, Ssrc};

/// Why an RTX packet could not be unwrapped or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum RtxDrop {
    /// Not a valid RTP packet.
    #[error("invalid RTP: {0}")]
    Rtp(#[from] RtpDrop),
    /// The payload is shorter than the 2-byte OSN: a padding-only packet
    /// (bandwidth probing), nothing to restore.
    #[error("RTX packet without an original sequence number")]
    NoOsn,
    /// The output buffer is too small.
    #[error("output buffer too small")]
    BufferTooSmall,
}

/// Writes the RTX form of `original` into `out`: header (CSRCs and header
/// extension kept) with `rtx_pt`, `rtx_ssrc` and `rtx_seq`, then the OSN,
/// then the original payload. The original padding is dropped. Returns the
/// length written.
pub fn wrap(
    original: &RtpView<'_>,
    rtx_pt: Pt,
    rtx_ssrc: Ssrc,
    rtx_seq: SeqNo,
    out: &mut [u8],
) -> Result<usize, RtxDrop> {
    let header_len = original.header_len();
    let payload = original.payload();
    let total = header_len + 2 + payload.len();
    let dst = out.get_mut(..total).ok_or(RtxDrop::BufferTooSmall)?;
    dst[..header_len].copy_from_slice(&original.as_bytes()[..header_len]);
    dst[0] &= !0x20;
    dst[header_len..header_len + 2].copy_from_slice(&original.seq().0.to_be_bytes());
    dst[header_len + 2..].copy_from_slice(payload);
    let mut v = RtpViewMut::parse(dst)?;
    v.set_pt(rtx_pt);
    v.set_ssrc(rtx_ssrc);
    v.set_seq(rtx_seq);
    Ok(total)
}

/// Restores the original packet from an RTX packet in `buf`: sequence number
/// from the OSN (which is removed, shifting the payload), payload type and
/// SSRC from the arguments, padding dropped. Returns the new length (the
/// caller truncates to it) and the original sequence number.
pub fn unwrap_in_place(
    buf: &mut [u8],
    original_pt: Pt,
    original_ssrc: Ssrc,
) -> Result<(usize, SeqNo), RtxDrop> {
    let v = RtpView::parse(buf)?;
    let payload = v.payload_range();
    if payload.len() < 2 {
        return Err(RtxDrop::NoOsn);
    }
    let osn = SeqNo(u16::from_be_bytes([
        buf[payload.start],
        buf[payload.start + 1],
    ]));
    buf.copy_within(payload.start + 2..payload.end, payload.start);
    let len = payload.end - 2;
    buf[0] &= !0x20;
    let mut v = RtpViewMut::parse(&mut buf[..len])?;
    v.set_seq(osn);
    v.set_pt(original_pt);
    v.set_ssrc(original_ssrc);
    Ok((len, osn))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp;

    #[rustfmt::skip]
    const ORIGINAL: [u8; 24] = [
        0x90, 0x60, 0x00, 0x10, // V=2 X=1 | PT=96 | seq 16
        0x00, 0x00, 0x03, 0xe8, // timestamp 1000
        0x00, 0x00, 0x00, 0x0a, // SSRC 10
        0xbe, 0xde, 0x00, 0x01, // one-byte extensions, 1 word
        0x10, 0x55, 0x00, 0x00, // id 1 len 1, padding
        0xaa, 0xbb, 0xcc, 0xdd, // payload
    ];

    #[rustfmt::skip]
    const RTX: [u8; 26] = [
        0x90, 0x61, 0x01, 0x00, // V=2 X=1 | PT=97 | RTX seq 256
        0x00, 0x00, 0x03, 0xe8, // timestamp unchanged
        0x00, 0x00, 0x00, 0x0b, // RTX SSRC 11
        0xbe, 0xde, 0x00, 0x01, // extensions unchanged
        0x10, 0x55, 0x00, 0x00,
        0x00, 0x10,             // OSN 16
        0xaa, 0xbb, 0xcc, 0xdd, // original payload
    ];

    #[test]
    fn wrap_matches_rfc4588_layout() {
        let v = rtp::parse(&ORIGINAL).expect("valid");
        let mut out = [0u8; 64];
        let n = wrap(&v, Pt(97), Ssrc(11), SeqNo(256), &mut out).expect("fits");
        assert_eq!(&out[..n], &RTX);
        assert_eq!(
            wrap(&v, Pt(97), Ssrc(11), SeqNo(256), &mut out[..25]),
            Err(RtxDrop::BufferTooSmall)
        );
    }

    #[test]
    fn unwrap_restores_original() {
        let mut b = RTX;
        let (n, osn) = unwrap_in_place(&mut b, Pt(96), Ssrc(10)).expect("valid");
        assert_eq!(osn, SeqNo(16));
        assert_eq!(&b[..n], &ORIGINAL);
    }

    #[test]
    fn padded_and_probe_packets() {
        // RTX with padding (P=1, 3 padding bytes): padding dropped on unwrap.
        let mut b = [0u8; 29];
        b[..26].copy_from_slice(&RTX);
        b[0] |= 0x20;
        b[28] = 3;
        let (n, _) = unwrap_in_place(&mut b, Pt(96), Ssrc(10)).expect("valid");
        assert_eq!(&b[..n], &ORIGINAL);
        // Padding-only probe: no OSN.
        let mut probe = [0xa0, 0x61, 0, 1, 0, 0, 0, 0, 0, 0, 0, 11, 0, 0, 0, 4];
        assert_eq!(
            unwrap_in_place(&mut probe, Pt(96), Ssrc(10)),
            Err(RtxDrop::NoOsn)
        );
    }

    #[test]
    fn no_panic_on_garbage_or_truncation() {
        let mut rng = rtp::tests::TestRng(0x5eed_6001);
        let mut buf = [0u8; 128];
        let mut out = [0u8; 160];
        for _ in 0..20_000 {
            let len = rng.below(buf.len() as u64 + 1) as usize;
            rng.fill(&mut buf[..len]);
            if len > 0 {
                buf[0] = 0x80 | (buf[0] & 0x3f);
            }
            if let Ok(v) = rtp::parse(&buf[..len]) {
                let _ = wrap(&v, Pt(1), Ssrc(2), SeqNo(3), &mut out);
            }
            let _ = unwrap_in_place(&mut buf[..len], Pt(1), Ssrc(2));
        }
        for n in 0..=RTX.len() {
            let mut b = RTX;
            let _ = unwrap_in_place(&mut b[..n], Pt(1), Ssrc(2));
        }
    }
}
