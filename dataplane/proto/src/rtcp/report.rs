//! Sender and receiver reports, SDES and BYE (RFC 3550 §6.4–§6.6), NTP time
//! helpers, round-trip time from LSR/DLSR, and the receiver statistics of
//! RFC 3550 Appendix A.1, A.3 and A.8.
//!
//! Wall-clock time is passed in as microseconds since the Unix epoch; nothing
//! here reads a clock, does IO or allocates.

use super::{PT_BYE, PT_RR, PT_SDES, PT_SR, RtcpDrop, RtcpRaw, be32, write_header};
use crate::rtp::{SeqNo, Ssrc};

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// A 64-bit NTP timestamp: seconds since 1900 in the high half, fraction in
/// the low half (RFC 3550 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NtpTime(pub u64);

impl NtpTime {
    /// The NTP time of a wall-clock value in microseconds since the Unix epoch.
    pub fn from_unix_us(us: u64) -> Self {
        let secs = us / 1_000_000 + NTP_UNIX_OFFSET_SECS;
        let frac = ((us % 1_000_000) << 32) / 1_000_000;
        Self((secs << 32) | frac)
    }

    /// Back to microseconds since the Unix epoch (0 before 1970).
    pub fn to_unix_us(self) -> u64 {
        let secs = (self.0 >> 32).saturating_sub(NTP_UNIX_OFFSET_SECS);
        let frac = ((self.0 & 0xffff_ffff) * 1_000_000) >> 32;
        secs * 1_000_000 + frac
    }

    /// The middle 32 bits, as used in LSR (RFC 3550 §6.4.1).
    pub fn compact(self) -> u32 {
        // Truncation intended: bits 16..48.
        (self.0 >> 16) as u32
    }
}

/// Round-trip time from a report block (RFC 3550 §6.4.1): `arrival` is when
/// the block arrived, `lsr`/`dlsr` are its fields. `None` when no SR was
/// reported (LSR 0) or the values are inconsistent.
pub fn rtt_us(arrival: NtpTime, lsr: u32, dlsr: u32) -> Option<u64> {
    if lsr == 0 {
        return None;
    }
    let since_sr = arrival.compact().wrapping_sub(lsr);
    // A negative interval (clock skew, garbage) shows as a huge wrapped value.
    if since_sr > 0x8000_0000 || since_sr < dlsr {
        return None;
    }
    Some((u64::from(since_sr - dlsr) * 1_000_000) >> 16)
}

/// Extrapolates the RTP timestamp of `now` from the last sent packet, for an
/// SR (media.md §5.5).
pub fn extrapolate_rtp_ts(last_ts: u32, last_sent_us: u64, now_us: u64, clock_rate: u32) -> u32 {
    let elapsed = u128::from(now_us.saturating_sub(last_sent_us));
    // Truncation is the mod-2^32 arithmetic of RTP timestamps.
    last_ts.wrapping_add((elapsed * u128::from(clock_rate) / 1_000_000) as u32)
}

/// Sender information of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// The sender's SSRC.
    pub ssrc: Ssrc,
    /// NTP time of the report.
    pub ntp: NtpTime,
    /// RTP timestamp corresponding to `ntp`.
    pub rtp_ts: u32,
    /// Packets sent.
    pub packet_count: u32,
    /// Payload octets sent.
    pub octet_count: u32,
}

/// One report block (RFC 3550 §6.4.1), owned, for building and deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source reported on.
    pub ssrc: Ssrc,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed on the wire; clamped when written).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub ext_highest_seq: u32,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
    /// Last SR timestamp (compact NTP).
    pub lsr: u32,
    /// Delay since last SR, in 1/65536 s.
    pub dlsr: u32,
}

impl ReportBlock {
    /// Writes the 24-byte block.
    fn write(&self, dst: &mut [u8]) {
        dst[0..4].copy_from_slice(&self.ssrc.0.to_be_bytes());
        let lost = self.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff);
        // Two's complement in 24 bits.
        let lost = (lost as u32) & 0x00ff_ffff;
        dst[4..8].copy_from_slice(&(u32::from(self.fraction_lost) << 24 | lost).to_be_bytes());
        dst[8..12].copy_from_slice(&self.ext_highest_seq.to_be_bytes());
        dst[12..16].copy_from_slice(&self.jitter.to_be_bytes());
        dst[16..20].copy_from_slice(&self.lsr.to_be_bytes());
        dst[20..24].copy_from_slice(&self.dlsr.to_be_bytes());
    }
}

/// A report block in place.
#[derive(Debug, Clone, Copy)]
pub struct ReportBlockView<'a>(&'a [u8]);

impl ReportBlockView<'_> {
    /// The source reported on.
    pub fn ssrc(&self) -> Ssrc {
        Ssrc(be32(self.0, 0))
    }

    /// Fraction lost, in 1/256.
    pub fn fraction_lost(&self) -> u8 {
        self.0[4]
    }

    /// Cumulative lost, sign-extended from 24 bits.
    pub fn cumulative_lost(&self) -> i32 {
        (be32(self.0, 4) << 8) as i32 >> 8
    }

    /// Extended highest sequence number received.
    pub fn ext_highest_seq(&self) -> u32 {
        be32(self.0, 8)
    }

    /// Interarrival jitter.
    pub fn jitter(&self) -> u32 {
        be32(self.0, 12)
    }

    /// Last SR timestamp.
    pub fn lsr(&self) -> u32 {
        be32(self.0, 16)
    }

    /// Delay since last SR.
    pub fn dlsr(&self) -> u32 {
        be32(self.0, 20)
    }

    /// All fields, owned.
    pub fn block(&self) -> ReportBlock {
        ReportBlock {
            ssrc: self.ssrc(),
            fraction_lost: self.fraction_lost(),
            cumulative_lost: self.cumulative_lost(),
            ext_highest_seq: self.ext_highest_seq(),
            jitter: self.jitter(),
            lsr: self.lsr(),
            dlsr: self.dlsr(),
        }
    }
}

fn report_blocks(
    body: &[u8],
    first: usize,
    count: u8,
) -> impl Iterator<Item = ReportBlockView<'_>> {
    (0..usize::from(count))
        .map(move |i| ReportBlockView(&body[first + 24 * i..first + 24 * (i + 1)]))
}

/// An SR in place.
#[derive(Debug, Clone, Copy)]
pub struct SenderReportView<'a> {
    body: &'a [u8],
    count: u8,
}

impl<'a> SenderReportView<'a> {
    /// Checks the SR's size against its report count.
    pub fn parse(raw: RtcpRaw<'a>) -> Result<Self, RtcpDrop> {
        let count = raw.count();
        if raw.pt() != PT_SR || raw.body().len() < 28 + 24 * usize::from(count) {
            return Err(RtcpDrop::TooShort);
        }
        Ok(Self {
            body: raw.body(),
            count,
        })
    }

    /// The sender information.
    pub fn info(&self) -> SenderInfo {
        SenderInfo {
            ssrc: Ssrc(be32(self.body, 4)),
            ntp: NtpTime((u64::from(be32(self.body, 8)) << 32) | u64::from(be32(self.body, 12))),
            rtp_ts: be32(self.body, 16),
            packet_count: be32(self.body, 20),
            octet_count: be32(self.body, 24),
        }
    }

    /// The report blocks.
    pub fn report_blocks(&self) -> impl Iterator<Item = ReportBlockView<'a>> + 'a {
        report_blocks(self.body, 28, self.count)
    }
}

/// An RR in place.
#[derive(Debug, Clone, Copy)]
pub struct ReceiverReportView<'a> {
    body: &'a [u8],
    count: u8,
}

impl<'a> ReceiverReportView<'a> {
    /// Checks the RR's size against its report count.
    pub fn parse(raw: RtcpRaw<'a>) -> Result<Self, RtcpDrop> {
        let count = raw.count();
        if raw.pt() != PT_RR || raw.body().len() < 8 + 24 * usize::from(count) {
            return Err(RtcpDrop::TooShort);
        }
        Ok(Self {
            body: raw.body(),
            count,
        })
    }

    /// The reporter's SSRC.
    pub fn ssrc(&self) -> Ssrc {
        Ssrc(be32(self.body, 4))
    }

    /// The report blocks.
    pub fn report_blocks(&self) -> impl Iterator<Item = ReportBlockView<'a>> + 'a {
        report_blocks(self.body, 8, self.count)
    }
}

/// Writes an SR with up to 31 report blocks.
pub fn write_sr(
    out: &mut [u8],
    info: &SenderInfo,
    blocks: &[ReportBlock],
) -> Result<usize, RtcpDrop> {
    let count = u8::try_from(blocks.len()).map_err(|_| RtcpDrop::OutOfRange)?;
    let len = 28 + 24 * blocks.len();
    let dst = out.get_mut(..len).ok_or(RtcpDrop::BufferTooSmall)?;
    write_header(dst, count, PT_SR)?;
    dst[4..8].copy_from_slice(&info.ssrc.0.to_be_bytes());
    dst[8..16].copy_from_slice(&info.ntp.0.to_be_bytes());
    dst[16..20].copy_from_slice(&info.rtp_ts.to_be_bytes());
    dst[20..24].copy_from_slice(&info.packet_count.to_be_bytes());
    dst[24..28].copy_from_slice(&info.octet_count.to_be_bytes());
    for (i, b) in blocks.iter().enumerate() {
        b.write(&mut dst[28 + 24 * i..]);
    }
    Ok(len)
}

/// Writes an RR with up to 31 report blocks.
pub fn write_rr(out: &mut [u8], ssrc: Ssrc, blocks: &[ReportBlock]) -> Result<usize, RtcpDrop> {
    let count = u8::try_from(blocks.len()).map_err(|_| RtcpDrop::OutOfRange)?;
    let len = 8 + 24 * blocks.len();
    let dst = out.get_mut(..len).ok_or(RtcpDrop::BufferTooSmall)?;
    write_header(dst, count, PT_RR)?;
    dst[4..8].copy_from_slice(&ssrc.0.to_be_bytes());
    for (i, b) in blocks.iter().enumerate() {
        b.write(&mut dst[8 + 24 * i..]);
    }
    Ok(len)
}

/// SDES item type of a CNAME.
pub const SDES_CNAME: u8 = 1;

/// An SDES packet in place; all chunks are checked at parse time.
#[derive(Debug, Clone, Copy)]
pub struct SdesView<'a> {
    body: &'a [u8],
    count: u8,
}

impl<'a> SdesView<'a> {
    /// Checks every chunk: items inside the packet, each chunk terminated.
    pub fn parse(raw: RtcpRaw<'a>) -> Result<Self, RtcpDrop> {
        if raw.pt() != PT_SDES {
            return Err(RtcpDrop::Malformed);
        }
        let v = Self {
            body: raw.body(),
            count: raw.count(),
        };
        let mut at = 4;
        for _ in 0..v.count {
            at = chunk_end(v.body, at).ok_or(RtcpDrop::Malformed)?;
        }
        Ok(v)
    }

    /// The chunks.
    pub fn chunks(&self) -> impl Iterator<Item = SdesChunk<'a>> + 'a {
        let body = self.body;
        let mut at = 4;
        (0..self.count).map_while(move |_| {
            let end = chunk_end(body, at)?;
            let chunk = SdesChunk {
                ssrc: Ssrc(be32(body, at)),
                items: &body[at + 4..end],
            };
            at = end;
            Some(chunk)
        })
    }

    /// The first CNAME of the first chunk that has one.
    pub fn cname(&self) -> Option<(Ssrc, &'a [u8])> {
        self.chunks().find_map(|c| {
            c.items()
                .find(|(t, _)| *t == SDES_CNAME)
                .map(|(_, v)| (c.ssrc, v))
        })
    }
}

/// Where the chunk starting at `at` ends (after its null terminator and
/// padding to a 32-bit boundary), if it fits.
fn chunk_end(body: &[u8], at: usize) -> Option<usize> {
    body.get(at..at + 4)?;
    let mut i = at + 4;
    loop {
        let &t = body.get(i)?;
        if t == 0 {
            let end = (i + 1).next_multiple_of(4);
            return (end <= body.len()).then_some(end);
        }
        let len = usize::from(*body.get(i + 1)?);
        body.get(i + 2..i + 2 + len)?;
        i += 2 + len;
    }
}

/// One SDES chunk.
#[derive(Debug, Clone, Copy)]
pub struct SdesChunk<'a> {
    /// The source described.
    pub ssrc: Ssrc,
    items: &'a [u8],
}

impl<'a> SdesChunk<'a> {
    /// The items as (type, value), up to the terminator.
    pub fn items(self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        let items = self.items;
        let mut at = 0;
        core::iter::from_fn(move || {
            let &t = items.get(at)?;
            if t == 0 {
                return None;
            }
            let len = usize::from(*items.get(at + 1)?);
            let v = items.get(at + 2..at + 2 + len)?;
            at += 2 + len;
            Some((t, v))
        })
    }
}

/// Writes an SDES packet with one chunk holding one CNAME (at most 255 bytes).
pub fn write_sdes_cname(out: &mut [u8], ssrc: Ssrc, cname: &[u8]) -> Result<usize, RtcpDrop> {
    let cname_len = u8::try_from(cname.len()).map_err(|_| RtcpDrop::OutOfRange)?;
    let len = (8 + 2 + cname.len() + 1).next_multiple_of(4);
    let dst = out.get_mut(..len).ok_or(RtcpDrop::BufferTooSmall)?;
    write_header(dst, 1, PT_SDES)?;
    dst[4..8].copy_from_slice(&ssrc.0.to_be_bytes());
    dst[8] = SDES_CNAME;
    dst[9] = cname_len;
    dst[10..10 + cname.len()].copy_from_slice(cname);
    dst[10 + cname.len()..].fill(0);
    Ok(len)
}

/// A BYE in place.
#[derive(Debug, Clone, Copy)]
pub struct ByeView<'a> {
    body: &'a [u8],
    count: u8,
}

impl<'a> ByeView<'a> {
    /// Checks the SSRC list and the optional reason.
    pub fn parse(raw: RtcpRaw<'a>) -> Result<Self, RtcpDrop> {
        let count = raw.count();
        let body = raw.body();
        let list_end = 4 + 4 * usize::from(count);
        if raw.pt() != PT_BYE || body.len() < list_end {
            return Err(RtcpDrop::TooShort);
        }
        if let Some(&len) = body.get(list_end)
            && list_end + 1 + usize::from(len) > body.len()
        {
            return Err(RtcpDrop::Malformed);
        }
        Ok(Self { body, count })
    }

    /// The sources leaving.
    pub fn ssrcs(&self) -> impl Iterator<Item = Ssrc> + 'a {
        let body = self.body;
        (0..usize::from(self.count)).map(move |i| Ssrc(be32(body, 4 + 4 * i)))
    }

    /// The reason, if given.
    pub fn reason(&self) -> Option<&'a [u8]> {
        let at = 4 + 4 * usize::from(self.count);
        let len = usize::from(*self.body.get(at)?);
        self.body.get(at + 1..at + 1 + len)
    }
}

/// Writes a BYE for up to 31 sources with an optional reason (≤ 255 bytes).
pub fn write_bye(out: &mut [u8], ssrcs: &[Ssrc], reason: Option<&[u8]>) -> Result<usize, RtcpDrop> {
    let count = u8::try_from(ssrcs.len()).map_err(|_| RtcpDrop::OutOfRange)?;
    let list_end = 4 + 4 * ssrcs.len();
    let len = match reason {
        Some(r) => (list_end + 1 + r.len()).next_multiple_of(4),
        None => list_end,
    };
    let dst = out.get_mut(..len).ok_or(RtcpDrop::BufferTooSmall)?;
    write_header(dst, count, PT_BYE)?;
    for (i, s) in ssrcs.iter().enumerate() {
        dst[4 + 4 * i..8 + 4 * i].copy_from_slice(&s.0.to_be_bytes());
    }
    if let Some(r) = reason {
        dst[list_end] = u8::try_from(r.len()).map_err(|_| RtcpDrop::OutOfRange)?;
        dst[list_end + 1..list_end + 1 + r.len()].copy_from_slice(r);
        dst[list_end + 1 + r.len()..].fill(0);
    }
    Ok(len)
}

/// RFC 3550 A.1: a jump of less than this is in-order progress.
const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 A.1: a step back of less than this is reordering.
const MAX_MISORDER: u16 = 100;

/// Receiver statistics for one incoming source (RFC 3550 A.1, A.3, A.8),
/// producing the report block of an RR.
///
/// The first packet initialises the sequence state without the probation of
/// A.1 (the stream is already authenticated by SRTP). A jump of 3000 or more
/// resynchronises when the next packet follows it, as in A.1.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReceiverStats {
    started: bool,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    bad_seq: Option<u16>,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    last_transit: Option<u32>,
    /// Jitter in RTP units, scaled by 16 (A.8); u64 so garbage transit
    /// times cannot overflow it.
    jitter_q4: u64,
    last_sr: Option<(u32, u64)>,
}

impl ReceiverStats {
    /// Statistics with no packet yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one received packet. Returns `false` when the packet was taken
    /// as a possible resync point and not counted.
    pub fn handle_packet(
        &mut self,
        seq: SeqNo,
        rtp_ts: u32,
        arrival_us: u64,
        clock_rate: u32,
    ) -> bool {
        let s = seq.0;
        if !self.started {
            self.init(s);
        } else {
            let delta = s.wrapping_sub(self.max_seq);
            if delta < MAX_DROPOUT {
                if s < self.max_seq {
                    self.cycles = self.cycles.wrapping_add(1 << 16);
                }
                self.max_seq = s;
            } else if delta <= u16::MAX - MAX_MISORDER {
                if self.bad_seq == Some(s) {
                    // Two sequential packets after a jump: the source restarted.
                    self.init(s);
                    self.last_transit = None;
                } else {
                    self.bad_seq = Some(s.wrapping_add(1));
                    return false;
                }
            }
            // Otherwise a duplicate or reordered packet: counted, no change.
        }
        self.received += 1;
        let arrival = (u128::from(arrival_us) * u128::from(clock_rate) / 1_000_000) as u32;
        let transit = arrival.wrapping_sub(rtp_ts);
        if let Some(last) = self.last_transit {
            let d = u64::from((transit.wrapping_sub(last) as i32).unsigned_abs());
            // A.8: J += (|D| - J) / 16, with J kept scaled by 16. Invariant:
            // J/16 <= max |D| < 2^31, so neither step overflows or underflows.
            self.jitter_q4 = self.jitter_q4 + d - ((self.jitter_q4 + 8) >> 4);
        }
        self.last_transit = Some(transit);
        true
    }

    /// Records an SR received from this source at `arrival_us`, for LSR/DLSR.
    pub fn handle_sender_report(&mut self, ntp: NtpTime, arrival_us: u64) {
        self.last_sr = Some((ntp.compact(), arrival_us));
    }

    /// The report block for an RR sent at `now_us`; updates the interval
    /// counters behind "fraction lost" (A.3). `None` before any packet.
    pub fn report_block(&mut self, ssrc: Ssrc, now_us: u64) -> Option<ReportBlock> {
        if !self.started {
            return None;
        }
        let ext_max = self.extended_highest_seq();
        // Invariant: max_seq only grows from base_seq, so expected >= 1.
        let expected = u64::from(ext_max).saturating_sub(u64::from(self.base_seq)) + 1;
        let lost = i128::from(expected) - i128::from(self.received);
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval.saturating_sub(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval == 0 {
            0
        } else {
            // Invariant: lost_interval <= expected_interval, so the result <= 256;
            // 256 only if nothing was received, which min(255) keeps in range.
            ((lost_interval << 8) / expected_interval).min(255) as u8
        };
        let (lsr, dlsr) = match self.last_sr {
            Some((lsr, at)) => {
                let delay = now_us.saturating_sub(at);
                (
                    lsr,
                    u32::try_from((u128::from(delay) << 16) / 1_000_000).unwrap_or(u32::MAX),
                )
            }
            None => (0, 0),
        };
        Some(ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: lost.clamp(-0x80_0000, 0x7f_ffff) as i32,
            ext_highest_seq: ext_max,
            jitter: self.jitter(),
            lsr,
            dlsr,
        })
    }

    /// Packets received (counted) so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The extended highest sequence number: cycles plus the highest seq.
    pub fn extended_highest_seq(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// The interarrival jitter in RTP timestamp units.
    pub fn jitter(&self) -> u32 {
        u32::try_from(self.jitter_q4 >> 4).unwrap_or(u32::MAX)
    }

    fn init(&mut self, s: u16) {
        self.started = true;
        self.base_seq = u32::from(s);
        self.max_seq = s;
        self.bad_seq = None;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::super::{RtcpPacket, parse};
    use super::*;

    #[rustfmt::skip]
    const SR: &[u8] = &[
        0x81, 200, 0x00, 0x0c,  // V=2 RC=1 SR, length 12
        0x01, 0x02, 0x03, 0x04, // sender SSRC
        0xe8, 0x00, 0x00, 0x00, // NTP seconds
        0x80, 0x00, 0x00, 0x00, // NTP fraction 0.5
        0x00, 0x01, 0x5f, 0x90, // RTP timestamp 90000
        0x00, 0x00, 0x00, 0x0a, // packets 10
        0x00, 0x00, 0x03, 0xe8, // octets 1000
        0x05, 0x06, 0x07, 0x08, // block: SSRC
        0x19, 0xff, 0xff, 0xfe, // fraction 25, cumulative lost -2
        0x00, 0x00, 0xff, 0xff, // extended highest 65535
        0x00, 0x00, 0x00, 0x03, // jitter 3
        0xe8, 0x00, 0x80, 0x00, // LSR
        0x00, 0x00, 0x80, 0x00, // DLSR 0.5 s
    ];

    #[test]
    fn sr_round_trip() {
        let Some(Ok(RtcpPacket::SenderReport(sr))) = parse(SR).next() else {
            panic!("not an SR");
        };
        let info = sr.info();
        assert_eq!(info.ssrc, Ssrc(0x0102_0304));
        assert_eq!(info.ntp, NtpTime(0xe800_0000_8000_0000));
        assert_eq!(
            (info.rtp_ts, info.packet_count, info.octet_count),
            (90_000, 10, 1000)
        );
        let blocks: Vec<ReportBlock> = sr.report_blocks().map(|b| b.block()).collect();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].cumulative_lost, -2);
        assert_eq!(blocks[0].fraction_lost, 25);
        assert_eq!(blocks[0].dlsr, 0x8000);
        let mut out = [0u8; 64];
        let n = write_sr(&mut out, &info, &blocks).expect("fits");
        assert_eq!(&out[..n], SR);
    }

    #[test]
    fn rr_sdes_bye_round_trip() {
        let rr = &super::super::tests::COMPOUND[..32];
        let Some(Ok(RtcpPacket::ReceiverReport(v))) = parse(rr).next() else {
            panic!("not an RR");
        };
        let blocks: Vec<ReportBlock> = v.report_blocks().map(|b| b.block()).collect();
        let mut out = [0u8; 64];
        let n = write_rr(&mut out, v.ssrc(), &blocks).expect("fits");
        assert_eq!(&out[..n], rr);

        let sdes = &super::super::tests::COMPOUND[32..48];
        let Some(Ok(RtcpPacket::Sdes(s))) = parse(sdes).next() else {
            panic!("not an SDES");
        };
        assert_eq!(s.cname(), Some((Ssrc(0x1111_1111), &b"ab"[..])));
        let n = write_sdes_cname(&mut out, Ssrc(0x1111_1111), b"ab").expect("fits");
        assert_eq!(&out[..n], sdes);

        #[rustfmt::skip]
        let bye: &[u8] = &[
            0x82, 203, 0x00, 0x03,  // SC=2 BYE, length 3
            0x00, 0x00, 0x00, 0x01, // SSRC 1
            0x00, 0x00, 0x00, 0x02, // SSRC 2
            0x03, b'b', b'y', b'e', // reason "bye", exactly one word
        ];
        let Some(Ok(RtcpPacket::Bye(b))) = parse(bye).next() else {
            panic!("not a BYE");
        };
        assert_eq!(b.ssrcs().collect::<Vec<_>>(), [Ssrc(1), Ssrc(2)]);
        assert_eq!(b.reason(), Some(&b"bye"[..]));
        let n = write_bye(&mut out, &[Ssrc(1), Ssrc(2)], Some(b"bye")).expect("fits");
        assert_eq!(&out[..n], bye);
        assert_eq!(write_bye(&mut out, &[Ssrc(1)], None), Ok(8));
    }

    #[test]
    fn sdes_unterminated_chunk_is_malformed() {
        // CNAME item fills the packet with no terminator.
        let p = [0x81, 202, 0, 2, 0, 0, 0, 1, 1, 2, b'a', b'b'];
        assert_eq!(
            parse(&p).next().and_then(|r| r.err()),
            Some(RtcpDrop::Malformed)
        );
    }

    #[test]
    fn ntp_and_rtt() {
        // 2020-09-13T12:26:40Z = 1_600_000_000 s.
        let t = NtpTime::from_unix_us(1_600_000_000_250_000);
        assert_eq!(t.0 >> 32, 1_600_000_000 + 2_208_988_800);
        assert_eq!(t.0 & 0xffff_ffff, 0x4000_0000);
        assert_eq!(t.to_unix_us(), 1_600_000_000_250_000);
        // SR sent at t, answered after 0.5 s hold, arriving 0.6 s after t: RTT 100 ms.
        let lsr = t.compact();
        let arrival = NtpTime::from_unix_us(1_600_000_000_850_000);
        let rtt = rtt_us(arrival, lsr, 0x8000).expect("valid");
        assert!((99_900..=100_100).contains(&rtt), "{rtt}");
        assert_eq!(rtt_us(arrival, 0, 0), None);
        assert_eq!(rtt_us(arrival, lsr, 0x10_0000), None);
        assert_eq!(extrapolate_rtp_ts(u32::MAX, 0, 1_000_000, 90_000), 89_999);
    }

    #[test]
    fn receiver_stats_loss_and_wrap() {
        let mut st = ReceiverStats::new();
        // 0xfff0..=0x000f with 0xfffa and 0x0003 lost, and 0x0005 duplicated.
        let t = 32 * 20_000;
        for i in 0..32u16 {
            let s = 0xfff0u16.wrapping_add(i);
            if s == 0xfffa || s == 0x0003 {
                continue;
            }
            let t = u64::from(i) * 20_000;
            assert!(st.handle_packet(SeqNo(s), u32::from(i) * 960, t, 48_000));
        }
        let b = st.report_block(Ssrc(7), t).expect("started");
        assert_eq!(b.ext_highest_seq, 0x1_000f);
        assert_eq!(b.cumulative_lost, 2);
        assert_eq!(b.fraction_lost, (2 * 256 / 32) as u8);
        assert_eq!(b.jitter, 0, "packets arrive exactly on their clock");
        // Nothing new: fraction 0 next time.
        assert_eq!(
            st.report_block(Ssrc(7), t).map(|b| b.fraction_lost),
            Some(0)
        );
        // A jump is ignored once, then accepted as a restart.
        assert!(!st.handle_packet(SeqNo(30_000), 0, t, 48_000));
        assert!(st.handle_packet(SeqNo(30_001), 0, t, 48_000));
        assert_eq!(st.extended_highest_seq(), 30_001);
    }

    #[test]
    fn receiver_stats_random_inputs() {
        // Arbitrary values never panic and the block stays in its ranges.
        let mut rng = crate::rtp::tests::TestRng(0x5eed_7001);
        let mut st = ReceiverStats::new();
        let mut now = 0u64;
        for i in 0..100_000u32 {
            now += rng.below(100_000);
            let seq = SeqNo(rng.next_u64() as u16);
            st.handle_packet(seq, rng.next_u64() as u32, now, 90_000);
            if i % 1000 == 0 {
                st.handle_sender_report(NtpTime(rng.next_u64()), now);
                let b = st
                    .report_block(Ssrc(1), now + rng.below(1 << 40))
                    .expect("started");
                assert!((-0x80_0000..=0x7f_ffff).contains(&b.cumulative_lost));
            }
        }
    }

    #[test]
    fn receiver_stats_jitter_and_dlsr() {
        let mut st = ReceiverStats::new();
        st.handle_sender_report(NtpTime(0x0000_1234_5678_0000), 1_000_000);
        // Alternate 0 and 10 ms of extra delay: |D| = 80 ticks at 8 kHz.
        for i in 0..200u64 {
            let extra = if i % 2 == 0 { 0 } else { 10_000 };
            st.handle_packet(SeqNo(i as u16), (i * 160) as u32, i * 20_000 + extra, 8_000);
        }
        let j = st.jitter();
        assert!((75..=80).contains(&j), "{j}");
        let b = st.report_block(Ssrc(1), 1_500_000).expect("started");
        assert_eq!(b.lsr, 0x1234_5678);
        assert_eq!(b.dlsr, 0x8000);
    }
}
