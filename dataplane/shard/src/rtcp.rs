//! The few RTCP packets the relay reads and writes (RFC 3550 §6.4, RFC 4585
//! §6, draft-alvestrand-rmcat-remb), written into caller buffers.

/// Sender report.
pub(crate) const PT_SR: u8 = 200;
/// Receiver report.
pub(crate) const PT_RR: u8 = 201;
/// Source description.
pub(crate) const PT_SDES: u8 = 202;
/// Goodbye.
pub(crate) const PT_BYE: u8 = 203;
/// Application-defined.
pub(crate) const PT_APP: u8 = 204;
/// Transport-layer feedback (generic NACK is FMT 1).
pub(crate) const PT_RTPFB: u8 = 205;
/// Payload-specific feedback (PLI FMT 1, FIR FMT 4, REMB FMT 15).
pub(crate) const PT_PSFB: u8 = 206;

/// One packet of a compound: packet type, FMT / count field, and its bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RtcpPacket<'a> {
    pub(crate) pt: u8,
    pub(crate) fmt: u8,
    pub(crate) bytes: &'a [u8],
}

impl RtcpPacket<'_> {
    /// Whether this is a REMB (PSFB FMT 15 with the `REMB` identifier).
    pub(crate) fn is_remb(&self) -> bool {
        self.pt == PT_PSFB && self.fmt == 15 && self.bytes.get(12..16) == Some(b"REMB")
    }

    /// Whether this is a PLI.
    pub(crate) fn is_pli(&self) -> bool {
        self.pt == PT_PSFB && self.fmt == 1
    }

    /// Whether this is a generic NACK.
    pub(crate) fn is_nack(&self) -> bool {
        self.pt == PT_RTPFB && self.fmt == 1
    }

    /// The sender SSRC (bytes 4..8).
    pub(crate) fn sender_ssrc(&self) -> u32 {
        read_u32(self.bytes, 4)
    }

    /// For a NACK: each lost sequence number it lists (PID plus BLP bits).
    pub(crate) fn nack_seqs(&self) -> impl Iterator<Item = u16> + '_ {
        self.bytes
            .get(12..)
            .unwrap_or(&[])
            .chunks_exact(4)
            .flat_map(|fci| {
                let pid = u16::from_be_bytes([fci[0], fci[1]]);
                let blp = u16::from_be_bytes([fci[2], fci[3]]);
                std::iter::once(pid).chain(
                    (0..16u16)
                        .filter(move |bit| blp & (1 << bit) != 0)
                        .map(move |bit| pid.wrapping_add(bit + 1)),
                )
            })
    }

    /// For an SR: the middle 32 bits of its NTP timestamp (RFC 3550 LSR).
    pub(crate) fn sr_lsr(&self) -> Option<u32> {
        (self.pt == PT_SR && self.bytes.len() >= 28).then(|| {
            let hi = read_u32(self.bytes, 8);
            let lo = read_u32(self.bytes, 12);
            (hi << 16) | (lo >> 16)
        })
    }
}

/// Iterates the packets of a compound; stops at the first malformed one.
pub(crate) fn packets(compound: &[u8]) -> impl Iterator<Item = RtcpPacket<'_>> {
    let mut rest = compound;
    std::iter::from_fn(move || {
        if rest.len() < 4 || rest[0] >> 6 != 2 {
            return None;
        }
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        if len > rest.len() {
            return None;
        }
        let (bytes, tail) = rest.split_at(len);
        rest = tail;
        Some(RtcpPacket {
            pt: bytes[1],
            fmt: bytes[0] & 0x1f,
            bytes,
        })
    })
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn header(out: &mut [u8], fmt: u8, pt: u8, words_minus_one: u16) {
    out[0] = 0x80 | (fmt & 0x1f);
    out[1] = pt;
    out[2..4].copy_from_slice(&words_minus_one.to_be_bytes());
}

/// Writes a PLI (12 bytes). `out` must hold 12 bytes.
pub(crate) fn write_pli(out: &mut [u8], sender: u32, media: u32) -> usize {
    header(out, 1, PT_PSFB, 2);
    out[4..8].copy_from_slice(&sender.to_be_bytes());
    out[8..12].copy_from_slice(&media.to_be_bytes());
    12
}

/// Writes a REMB for `bitrate` bit/s about `ssrc` (24 bytes): 6-bit exponent
/// and 18-bit mantissa, smallest exponent that fits.
pub(crate) fn write_remb(out: &mut [u8], sender: u32, bitrate: u64, ssrc: u32) -> usize {
    header(out, 15, PT_PSFB, 5);
    out[4..8].copy_from_slice(&sender.to_be_bytes());
    out[8..12].copy_from_slice(&0u32.to_be_bytes());
    out[12..16].copy_from_slice(b"REMB");
    let mut exp = 0u32;
    let mut mantissa = bitrate;
    while mantissa > 0x3_ffff && exp < 63 {
        mantissa >>= 1;
        exp += 1;
    }
    // After the loop the mantissa fits 18 bits (or the exponent saturated).
    let mantissa = (mantissa & 0x3_ffff) as u32;
    out[16] = 1;
    out[17] = ((exp as u8) << 2) | ((mantissa >> 16) as u8 & 0x03);
    out[18..20].copy_from_slice(&((mantissa & 0xffff) as u16).to_be_bytes());
    out[20..24].copy_from_slice(&ssrc.to_be_bytes());
    24
}

/// One RR report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ReportBlock {
    pub(crate) ssrc: u32,
    pub(crate) fraction_lost: u8,
    pub(crate) cumulative_lost: u32,
    pub(crate) highest_seq: u32,
    pub(crate) jitter: u32,
    pub(crate) lsr: u32,
    pub(crate) dlsr: u32,
}

fn write_block(out: &mut [u8], b: &ReportBlock) {
    out[0..4].copy_from_slice(&b.ssrc.to_be_bytes());
    out[4] = b.fraction_lost;
    out[5..8].copy_from_slice(&b.cumulative_lost.min(0x7f_ffff).to_be_bytes()[1..]);
    out[8..12].copy_from_slice(&b.highest_seq.to_be_bytes());
    out[12..16].copy_from_slice(&b.jitter.to_be_bytes());
    out[16..20].copy_from_slice(&b.lsr.to_be_bytes());
    out[20..24].copy_from_slice(&b.dlsr.to_be_bytes());
}

/// Writes an SR (28 bytes, plus 24 with a report block).
pub(crate) fn write_sr(
    out: &mut [u8],
    ssrc: u32,
    ntp: u64,
    rtp_ts: u32,
    packets: u32,
    octets: u32,
    block: Option<&ReportBlock>,
) -> usize {
    let blocks = u8::from(block.is_some());
    header(out, blocks, PT_SR, 6 + 6 * u16::from(blocks));
    out[4..8].copy_from_slice(&ssrc.to_be_bytes());
    out[8..16].copy_from_slice(&ntp.to_be_bytes());
    out[16..20].copy_from_slice(&rtp_ts.to_be_bytes());
    out[20..24].copy_from_slice(&packets.to_be_bytes());
    out[24..28].copy_from_slice(&octets.to_be_bytes());
    match block {
        Some(b) => {
            write_block(&mut out[28..52], b);
            52
        }
        None => 28,
    }
}

/// Writes an RR (8 bytes, plus 24 with a report block).
pub(crate) fn write_rr(out: &mut [u8], ssrc: u32, block: Option<&ReportBlock>) -> usize {
    let blocks = u8::from(block.is_some());
    header(out, blocks, PT_RR, 1 + 6 * u16::from(blocks));
    out[4..8].copy_from_slice(&ssrc.to_be_bytes());
    match block {
        Some(b) => {
            write_block(&mut out[8..32], b);
            32
        }
        None => 8,
    }
}

/// Writes an SDES with one chunk carrying CNAME (padded to 32 bits).
pub(crate) fn write_sdes_cname(out: &mut [u8], ssrc: u32, cname: &[u8]) -> usize {
    let cname = &cname[..cname.len().min(255)];
    // chunk: ssrc, CNAME item (type, len, text), at least one null byte.
    let chunk = (4 + 2 + cname.len() + 1).next_multiple_of(4);
    let total = 4 + chunk;
    // `total` is at most 4 + 264 bytes, so the word count fits u16.
    header(out, 1, PT_SDES, (total / 4 - 1) as u16);
    out[4..8].copy_from_slice(&ssrc.to_be_bytes());
    out[8] = 1;
    out[9] = cname.len() as u8;
    out[10..10 + cname.len()].copy_from_slice(cname);
    out[10 + cname.len()..total].fill(0);
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remb_encodes_exponent_and_mantissa() {
        let mut b = [0u8; 24];
        assert_eq!(write_remb(&mut b, 1, 10_000_000, 0x1234_5678), 24);
        let exp = b[17] >> 2;
        let mantissa = (u32::from(b[17] & 3) << 16) | u32::from(u16::from_be_bytes([b[18], b[19]]));
        assert_eq!(u64::from(mantissa) << exp, 10_000_000 & !((1 << exp) - 1));
        assert!(mantissa <= 0x3_ffff);
        let p = packets(&b).next().expect("one packet");
        assert!(p.is_remb());
    }

    #[test]
    fn nack_lists_pid_and_bitmask() {
        // RTPFB FMT 1, length 3 words: sender, media, one FCI.
        let pkt = [
            0x81,
            205,
            0,
            3,
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            2,
            0x00,
            0x10,
            0b0000_0000,
            0b0000_0101,
        ];
        let p = packets(&pkt).next().expect("packet");
        assert!(p.is_nack());
        assert_eq!(p.nack_seqs().collect::<Vec<_>>(), vec![16, 17, 19]);
    }

    #[test]
    fn compound_walk_stops_at_garbage() {
        let mut buf = [0u8; 64];
        let n = write_pli(&mut buf, 1, 2);
        let m = write_rr(&mut buf[n..], 3, None);
        buf[n + m] = 0xff;
        let kinds: Vec<u8> = packets(&buf[..n + m + 4]).map(|p| p.pt).collect();
        assert_eq!(kinds, vec![PT_PSFB, PT_RR]);
        let sdes_len = write_sdes_cname(&mut buf, 9, b"janus");
        assert_eq!(sdes_len % 4, 0);
        assert_eq!(packets(&buf[..sdes_len]).count(), 1);
    }
}
