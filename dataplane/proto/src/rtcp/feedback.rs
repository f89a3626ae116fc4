//! Feedback messages (RFC 4585 §6): generic NACK (§6.2.1), PLI (§6.3.1),
//! FIR (RFC 5104 §4.3.1) and REMB (draft-alvestrand-rmcat-remb-03 §2.2).
//!
//! Views read the caller's bytes; writers fill a caller slice and return the
//! length. Nothing here allocates, reads a clock or does IO.

use super::{
    FMT_AFB, FMT_FIR, FMT_NACK, FMT_PLI, PT_PSFB, PT_RTPFB, RtcpDrop, RtcpRaw, be16, be32,
    write_header,
};
use crate::rtp::{SeqNo, Ssrc};

/// Common feedback header: sender SSRC and media source SSRC (RFC 4585 §6.1).
fn feedback_ssrcs(body: &[u8]) -> (Ssrc, Ssrc) {
    (Ssrc(be32(body, 4)), Ssrc(be32(body, 8)))
}

fn write_feedback_header(
    dst: &mut [u8],
    fmt: u8,
    pt: u8,
    sender: Ssrc,
    media: Ssrc,
) -> Result<(), RtcpDrop> {
    write_header(dst, fmt, pt)?;
    dst[4..8].copy_from_slice(&sender.0.to_be_bytes());
    dst[8..12].copy_from_slice(&media.0.to_be_bytes());
    Ok(())
}

/// A generic NACK in place.
#[derive(Debug, Clone, Copy)]
pub struct NackView<'a> {
    body: &'a [u8],
}

impl<'a> NackView<'a> {
    /// Checks the header and that the FCI is whole PID/BLP pairs.
    pub fn parse(raw: RtcpRaw<'a>) -> Result<Self, RtcpDrop> {
        let body = raw.body();
        if raw.pt() != PT_RTPFB || raw.count() != FMT_NACK || body.len() < 16 {
            return Err(RtcpDrop::TooShort);
        }
        if body.len() % 4 != 0 {
            return Err(RtcpDrop::Malformed);
        }
        Ok(Self { body })
    }

    /// The requester's SSRC.
    pub fn sender_ssrc(&self) -> Ssrc {
        feedback_ssrcs(self.body).0
    }

    /// The SSRC whose packets are missing.
    pub fn media_ssrc(&self) -> Ssrc {
        feedback_ssrcs(self.body).1
    }

    /// The (PID, BLP) pairs.
    pub fn pairs(&self) -> impl Iterator<Item = (SeqNo, u16)> + 'a {
        self.body[12..]
            .chunks_exact(4)
            .map(|c| (SeqNo(be16(c, 0)), be16(c, 2)))
    }

    /// Every sequence number reported lost: each PID, then PID+i+1 for each
    /// set bit i of its BLP.
    pub fn lost(&self) -> impl Iterator<Item = SeqNo> + 'a {
        self.pairs().flat_map(|(pid, blp)| {
            core::iter::once(pid).chain(
                (0..16u16)
                    .filter(move |i| blp & (1 << i) != 0)
                    .map(move |i| pid.wrapping_add(i + 1)),
            )
        })
    }
}

/// Writes a generic NACK for `lost` (ascending order packs best; any order is
/// correct) from `sender` about `media`. Fails on an empty list.
pub fn write_nack(
    out: &mut [u8],
    sender: Ssrc,
    media: Ssrc,
    lost: &[SeqNo],
) -> Result<usize, RtcpDrop> {
    let mut pairs = 0usize;
    let mut current: Option<(SeqNo, u16)> = None;
    let put = |out: &mut [u8], (pid, blp): (SeqNo, u16), pairs: &mut usize| {
        let at = 12 + 4 * *pairs;
        let dst = out.get_mut(at..at + 4).ok_or(RtcpDrop::BufferTooSmall)?;
        dst[..2].copy_from_slice(&pid.0.to_be_bytes());
        dst[2..].copy_from_slice(&blp.to_be_bytes());
        *pairs += 1;
        Ok::<(), RtcpDrop>(())
    };
    for &s in lost {
        match current {
            Some((pid, ref mut blp)) if (1..=16).contains(&s.diff(pid)) => {
                *blp |= 1 << (s.diff(pid) - 1);
            }
            Some(pair) if s == pair.0 => {}
            _ => {
                if let Some(pair) = current {
                    put(out, pair, &mut pairs)?;
                }
                current = Some((s, 0));
            }
        }
    }
    let Some(pair) = current else {
        return Err(RtcpDrop::OutOfRange);
    };
    put(out, pair, &mut pairs)?;
    let len = 12 + 4 * pairs;
    let dst = out.get_mut(..len).ok_or(RtcpDrop::BufferTooSmall)?;
    write_feedback_header(dst, FMT_NACK, PT_RTPFB, sender, media)?;
    Ok(len)
}

/// A PLI in place.
#[derive(Debug, Clone, Copy)]
pub struct PliView<'a> {
    body: &'a [u8],
}

impl<'a> PliView<'a> {
    /// Checks the 12-byte header.
    pub fn parse(raw: RtcpRaw<'a>) -> Result<Self, RtcpDrop> {
        if raw.pt() != PT_PSFB || raw.count() != FMT_PLI || raw.body().len() < 12 {
            return Err(RtcpDrop::TooShort);
        }
        Ok(Self { body: raw.body() })
    }

    /// The requester.
    pub fn sender_ssrc(&self) -> Ssrc {
        feedback_ssrcs(self.body).0
    }

    /// The source asked for a keyframe.
    pub fn media_ssrc(&self) -> Ssrc {
        feedback_ssrcs(self.body).1
    }
}

/// Writes a 12-byte PLI (media.md §5.5).
pub fn write_pli(out: &mut [u8], sender: Ssrc, media: Ssrc) -> Result<usize, RtcpDrop> {
    let dst = out.get_mut(..12).ok_or(RtcpDrop::BufferTooSmall)?;
    write_feedback_header(dst, FMT_PLI, PT_PSFB, sender, media)?;
    Ok(12)
}

/// A FIR in place.
#[derive(Debug, Clone, Copy)]
pub struct FirView<'a> {
    body: &'a [u8],
}

impl<'a> FirView<'a> {
    /// Checks that the FCI is whole 8-byte entries, at least one.
    pub fn parse(raw: RtcpRaw<'a>) -> Result<Self, RtcpDrop> {
        let body = raw.body();
        if raw.pt() != PT_PSFB || raw.count() != FMT_FIR || body.len() < 20 {
            return Err(RtcpDrop::TooShort);
        }
        if (body.len() - 12) % 8 != 0 {
            return Err(RtcpDrop::Malformed);
        }
        Ok(Self { body })
    }

    /// The requester.
    pub fn sender_ssrc(&self) -> Ssrc {
        feedback_ssrcs(self.body).0
    }

    /// (target SSRC, command sequence number) per FCI entry.
    pub fn entries(&self) -> impl Iterator<Item = (Ssrc, u8)> + 'a {
        self.body[12..]
            .chunks_exact(8)
            .map(|c| (Ssrc(be32(c, 0)), c[4]))
    }
}

/// Writes a FIR with one entry per (target, command sequence number); the
/// header's media SSRC is 0 (RFC 5104 §4.3.1.2). One entry makes 20 bytes.
pub fn write_fir(out: &mut [u8], sender: Ssrc, entries: &[(Ssrc, u8)]) -> Result<usize, RtcpDrop> {
    if entries.is_empty() {
        return Err(RtcpDrop::OutOfRange);
    }
    let len = 12 + 8 * entries.len();
    let dst = out.get_mut(..len).ok_or(RtcpDrop::BufferTooSmall)?;
    write_feedback_header(dst, FMT_FIR, PT_PSFB, sender, Ssrc(0))?;
    for (i, (ssrc, seq)) in entries.iter().enumerate() {
        let e = &mut dst[12 + 8 * i..20 + 8 * i];
        e[..4].copy_from_slice(&ssrc.0.to_be_bytes());
        e[4..].copy_from_slice(&[*seq, 0, 0, 0]);
    }
    Ok(len)
}

/// A REMB in place.
#[derive(Debug, Clone, Copy)]
pub struct RembView<'a> {
    body: &'a [u8],
}

impl<'a> RembView<'a> {
    /// Whether an AFB packet carries the "REMB" identifier.
    pub fn is_remb(raw: RtcpRaw<'_>) -> bool {
        raw.pt() == PT_PSFB && raw.count() == FMT_AFB && raw.body().get(12..16) == Some(b"REMB")
    }

    /// Checks the identifier and that the SSRC list fits.
    pub fn parse(raw: RtcpRaw<'a>) -> Result<Self, RtcpDrop> {
        let body = raw.body();
        if !Self::is_remb(raw) || body.len() < 20 {
            return Err(RtcpDrop::TooShort);
        }
        if body.len() < 20 + 4 * usize::from(body[16]) {
            return Err(RtcpDrop::Malformed);
        }
        Ok(Self { body })
    }

    /// The estimator's SSRC.
    pub fn sender_ssrc(&self) -> Ssrc {
        feedback_ssrcs(self.body).0
    }

    /// Number of SSRCs the estimate applies to.
    pub fn ssrc_count(&self) -> usize {
        usize::from(self.body[16])
    }

    /// The estimate in bits per second (saturating at `u64::MAX`).
    pub fn bitrate(&self) -> u64 {
        let exp = self.body[17] >> 2;
        let mantissa = (u32::from(self.body[17] & 0x03) << 16) | u32::from(be16(self.body, 18));
        decode_remb_bitrate(exp, mantissa)
    }

    /// The SSRCs the estimate applies to.
    pub fn ssrcs(&self) -> impl Iterator<Item = Ssrc> + 'a {
        let body = self.body;
        (0..self.ssrc_count()).map(move |i| Ssrc(be32(body, 20 + 4 * i)))
    }
}

/// REMB bitrate from its 6-bit exponent and 18-bit mantissa.
pub fn decode_remb_bitrate(exp: u8, mantissa: u32) -> u64 {
    let v = u128::from(mantissa) << exp.min(63);
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// REMB (exponent, mantissa) for a bitrate: the smallest exponent whose
/// mantissa fits 18 bits (media.md §5.5). Rounds down.
pub fn encode_remb_bitrate(bps: u64) -> (u8, u32) {
    let mut exp = 0u8;
    while (bps >> exp) >= 1 << 18 {
        exp += 1;
    }
    // Invariant: the loop ends with bps >> exp < 2^18; exp <= 46 for u64.
    (exp, (bps >> exp) as u32)
}

/// Writes a REMB (media SSRC 0, "REMB", the SSRC list; up to 255 SSRCs). One
/// SSRC makes 24 bytes.
pub fn write_remb(
    out: &mut [u8],
    sender: Ssrc,
    bps: u64,
    ssrcs: &[Ssrc],
) -> Result<usize, RtcpDrop> {
    let n = u8::try_from(ssrcs.len()).map_err(|_| RtcpDrop::OutOfRange)?;
    let len = 20 + 4 * ssrcs.len();
    let dst = out.get_mut(..len).ok_or(RtcpDrop::BufferTooSmall)?;
    write_feedback_header(dst, FMT_AFB, PT_PSFB, sender, Ssrc(0))?;
    dst[12..16].copy_from_slice(b"REMB");
    let (exp, mantissa) = encode_remb_bitrate(bps);
    dst[16] = n;
    dst[17] = (exp << 2) | (mantissa >> 16) as u8;
    dst[18..20].copy_from_slice(&(mantissa as u16).to_be_bytes());
    for (i, s) in ssrcs.iter().enumerate() {
        dst[20 + 4 * i..24 + 4 * i].copy_from_slice(&s.0.to_be_bytes());
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::super::{RtcpPacket, parse};
    use super::*;

    fn first(b: &[u8]) -> RtcpPacket<'_> {
        parse(b).next().expect("one packet").expect("valid")
    }

    #[test]
    fn nack_round_trip() {
        #[rustfmt::skip]
        let wire: &[u8] = &[
            0x81, 205, 0x00, 0x04,  // FMT=1 RTPFB, length 4
            0x00, 0x00, 0x00, 0x01, // sender SSRC
            0x00, 0x00, 0x00, 0x02, // media SSRC
            0xff, 0xff, 0x80, 0x01, // PID 65535, BLP: +1 (0) and +16 (15)
            0x00, 0x20, 0x00, 0x00, // PID 32, BLP empty
        ];
        let RtcpPacket::Nack(n) = first(wire) else {
            panic!("not a NACK")
        };
        assert_eq!((n.sender_ssrc(), n.media_ssrc()), (Ssrc(1), Ssrc(2)));
        let lost: Vec<SeqNo> = n.lost().collect();
        assert_eq!(lost, [SeqNo(65535), SeqNo(0), SeqNo(15), SeqNo(32)]);
        let mut out = [0u8; 64];
        let len = write_nack(&mut out, Ssrc(1), Ssrc(2), &lost).expect("fits");
        assert_eq!(&out[..len], wire);
        assert_eq!(
            write_nack(&mut out, Ssrc(1), Ssrc(2), &[]),
            Err(RtcpDrop::OutOfRange)
        );
        assert_eq!(
            write_nack(&mut out[..15], Ssrc(1), Ssrc(2), &lost),
            Err(RtcpDrop::BufferTooSmall)
        );
    }

    #[test]
    fn nack_property_expands_to_input() {
        // Random ascending loss sets survive write → parse unchanged.
        let mut rng = crate::rtp::tests::TestRng(0x5eed_2001);
        let mut out = [0u8; 4096];
        for _ in 0..500 {
            let mut seq = SeqNo(rng.next_u64() as u16);
            let mut lost = Vec::new();
            for _ in 0..1 + rng.below(100) {
                lost.push(seq);
                seq = seq.wrapping_add(1 + rng.below(40) as u16);
            }
            let len = write_nack(&mut out, Ssrc(1), Ssrc(2), &lost).expect("fits");
            let RtcpPacket::Nack(n) = first(&out[..len]) else {
                panic!("not a NACK")
            };
            assert_eq!(n.lost().collect::<Vec<_>>(), lost);
        }
    }

    #[test]
    fn pli_round_trip() {
        // RFC 4585 §6.3.1: PLI has no FCI; 12 bytes.
        let wire = [0x81, 206, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 2];
        let RtcpPacket::Pli(p) = first(&wire) else {
            panic!("not a PLI")
        };
        assert_eq!((p.sender_ssrc(), p.media_ssrc()), (Ssrc(1), Ssrc(2)));
        let mut out = [0u8; 12];
        assert_eq!(write_pli(&mut out, Ssrc(1), Ssrc(2)), Ok(12));
        assert_eq!(out, wire);
    }

    #[test]
    fn fir_round_trip() {
        #[rustfmt::skip]
        let wire: &[u8] = &[
            0x84, 206, 0x00, 0x04,  // FMT=4 PSFB, length 4
            0x00, 0x00, 0x00, 0x01, // sender SSRC
            0x00, 0x00, 0x00, 0x00, // media SSRC unused (RFC 5104 §4.3.1.2)
            0x00, 0x00, 0x00, 0x09, // FCI: target SSRC 9
            0x2a, 0x00, 0x00, 0x00, // command sequence number 42, reserved
        ];
        let RtcpPacket::Fir(f) = first(wire) else {
            panic!("not a FIR")
        };
        assert_eq!(f.sender_ssrc(), Ssrc(1));
        assert_eq!(f.entries().collect::<Vec<_>>(), [(Ssrc(9), 42)]);
        let mut out = [0u8; 20];
        assert_eq!(write_fir(&mut out, Ssrc(1), &[(Ssrc(9), 42)]), Ok(20));
        assert_eq!(&out[..], wire);
        // An FCI that is not whole entries is malformed.
        let mut bad = wire.to_vec();
        bad.extend_from_slice(&[0, 0, 0, 0]);
        bad[3] = 5;
        assert_eq!(
            parse(&bad).next().and_then(|r| r.err()),
            Some(RtcpDrop::Malformed)
        );
    }

    #[test]
    fn remb_round_trip() {
        #[rustfmt::skip]
        let wire: &[u8] = &[
            0x8f, 206, 0x00, 0x06,  // FMT=15 PSFB, length 6
            0x00, 0x00, 0x00, 0x01, // sender SSRC
            0x00, 0x00, 0x00, 0x00, // media SSRC 0
            b'R', b'E', b'M', b'B', // identifier
            0x02, 0x1a, 0x62, 0x5a, // 2 SSRCs, exp 6, mantissa 0x2625a: 10_000_000 bps
            0x00, 0x00, 0x00, 0x0a, // SSRC 10
            0x00, 0x00, 0x00, 0x0b, // SSRC 11
        ];
        let RtcpPacket::Remb(r) = first(wire) else {
            panic!("not a REMB")
        };
        assert_eq!(r.bitrate(), 0x2625a << 6);
        assert_eq!(r.ssrcs().collect::<Vec<_>>(), [Ssrc(10), Ssrc(11)]);
        let mut out = [0u8; 28];
        assert_eq!(
            write_remb(&mut out, Ssrc(1), 10_000_000, &[Ssrc(10), Ssrc(11)]),
            Ok(28)
        );
        assert_eq!(&out[..], wire);
    }

    #[test]
    fn remb_encoding() {
        assert_eq!(encode_remb_bitrate(0), (0, 0));
        assert_eq!(encode_remb_bitrate(0x3ffff), (0, 0x3ffff));
        assert_eq!(encode_remb_bitrate(0x40000), (1, 0x20000));
        assert_eq!(encode_remb_bitrate(u64::MAX), (46, 0x3ffff));
        assert_eq!(decode_remb_bitrate(63, 0x3ffff), u64::MAX);
        for bps in [1u64, 1000, 64_000, 300_000, 2_500_000, 10_000_000, 1 << 40] {
            let (e, m) = encode_remb_bitrate(bps);
            let back = decode_remb_bitrate(e, m);
            assert!(back <= bps && bps - back < 1 << e, "{bps} -> {back}");
        }
    }
}
