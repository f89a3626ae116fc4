//! Transport-wide congestion control feedback (RTPFB FMT 15,
//! draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1).
//!
//! [`TwccView`] validates the packet status chunks and receive deltas once and
//! then iterates the per-packet statuses in place. [`write_twcc`] encodes a
//! feedback packet from (transport sequence, arrival time) records into a
//! caller buffer. Arrival times are microseconds on the receiver's clock,
//! passed in. Nothing here allocates, reads a clock or does IO.

use super::{FMT_TWCC, PT_RTPFB, RtcpDrop, RtcpRaw, be16, be32, write_header};
use crate::rtp::{SeqNo, Ssrc};

/// Receive delta unit: 250 µs.
const DELTA_US: i64 = 250;
/// Reference time unit: 64 ms.
const REFERENCE_US: i64 = 64_000;
/// Longest run a run-length chunk can carry.
const MAX_RUN: u64 = 0x1fff;

/// Status symbols (draft §3.1.1).
const NOT_RECEIVED: u8 = 0;
const SMALL_DELTA: u8 = 1;
const LARGE_DELTA: u8 = 2;

/// Number of symbols a chunk covers and the symbol at `i`.
fn chunk_capacity(chunk: u16) -> usize {
    match chunk >> 14 {
        0 | 1 => usize::from(chunk & 0x1fff),
        2 => 14,
        _ => 7,
    }
}

fn chunk_symbol(chunk: u16, i: usize) -> u8 {
    match chunk >> 14 {
        // Run length: T=0, S in bits 13..15.
        0 | 1 => ((chunk >> 13) & 0x03) as u8,
        // 1-bit status vector, first symbol in the most significant bit.
        2 => ((chunk >> (13 - i)) & 0x01) as u8,
        // 2-bit status vector.
        _ => ((chunk >> (12 - 2 * i)) & 0x03) as u8,
    }
}

/// A transport-cc feedback packet in place.
#[derive(Debug, Clone, Copy)]
pub struct TwccView<'a> {
    body: &'a [u8],
}

impl<'a> TwccView<'a> {
    /// Checks the header, that the chunks cover the status count with no
    /// reserved symbol, and that the receive deltas fit.
    pub fn parse(raw: RtcpRaw<'a>) -> Result<Self, RtcpDrop> {
        let body = raw.body();
        if raw.pt() != PT_RTPFB || raw.count() != FMT_TWCC || body.len() < 20 {
            return Err(RtcpDrop::TooShort);
        }
        let mut remaining = usize::from(be16(body, 14));
        let mut at = 20;
        let mut delta_bytes = 0usize;
        while remaining > 0 {
            let c = body.get(at..at + 2).ok_or(RtcpDrop::TooShort)?;
            let chunk = u16::from_be_bytes([c[0], c[1]]);
            at += 2;
            let covered = chunk_capacity(chunk).min(remaining);
            if chunk >> 14 <= 1 {
                let sym = chunk_symbol(chunk, 0);
                if sym == 3 {
                    return Err(RtcpDrop::Malformed);
                }
                delta_bytes += covered * usize::from(sym);
            } else {
                for i in 0..covered {
                    match chunk_symbol(chunk, i) {
                        3 => return Err(RtcpDrop::Malformed),
                        s => delta_bytes += usize::from(s),
                    }
                }
            }
            remaining -= covered;
        }
        if at + delta_bytes > body.len() {
            return Err(RtcpDrop::TooShort);
        }
        Ok(Self { body })
    }

    /// The feedback sender's SSRC.
    pub fn sender_ssrc(&self) -> Ssrc {
        Ssrc(be32(self.body, 4))
    }

    /// The media source SSRC.
    pub fn media_ssrc(&self) -> Ssrc {
        Ssrc(be32(self.body, 8))
    }

    /// Transport sequence number of the first status.
    pub fn base_seq(&self) -> SeqNo {
        SeqNo(be16(self.body, 12))
    }

    /// Number of statuses.
    pub fn status_count(&self) -> u16 {
        be16(self.body, 14)
    }

    /// Reference time in 64 ms units, sign-extended from 24 bits.
    pub fn reference_time(&self) -> i32 {
        (be32(self.body, 16) as i32) >> 8
    }

    /// The feedback packet counter.
    pub fn fb_count(&self) -> u8 {
        self.body[19]
    }

    /// Per-packet status: arrival time in µs on the reference time's clock
    /// (reference time × 64 ms plus the deltas so far), or `None` if lost.
    pub fn packets(&self) -> TwccPackets<'a> {
        let chunks_end = self.chunks_end();
        TwccPackets {
            body: self.body,
            chunk_at: 20,
            chunk: 0,
            index: 0,
            capacity: 0,
            delta_at: chunks_end,
            remaining: self.status_count(),
            seq: self.base_seq(),
            time_us: i64::from(self.reference_time()) * REFERENCE_US,
        }
    }

    fn chunks_end(&self) -> usize {
        let mut remaining = usize::from(self.status_count());
        let mut at = 20;
        while remaining > 0 && at + 2 <= self.body.len() {
            remaining -= chunk_capacity(be16(self.body, at)).min(remaining);
            at += 2;
        }
        at
    }
}

/// One packet's status in a feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwccStatus {
    /// Transport-wide sequence number.
    pub seq: SeqNo,
    /// Arrival time in µs (see [`TwccView::packets`]), `None` if not received.
    pub arrival_us: Option<i64>,
}

/// Iterator over a feedback's statuses.
#[derive(Debug, Clone)]
pub struct TwccPackets<'a> {
    body: &'a [u8],
    chunk_at: usize,
    chunk: u16,
    index: usize,
    capacity: usize,
    delta_at: usize,
    remaining: u16,
    seq: SeqNo,
    time_us: i64,
}

impl Iterator for TwccPackets<'_> {
    type Item = TwccStatus;

    fn next(&mut self) -> Option<TwccStatus> {
        if self.remaining == 0 {
            return None;
        }
        while self.index >= self.capacity {
            let c = self.body.get(self.chunk_at..self.chunk_at + 2)?;
            self.chunk = u16::from_be_bytes([c[0], c[1]]);
            self.chunk_at += 2;
            self.capacity = chunk_capacity(self.chunk);
            self.index = 0;
        }
        let sym = chunk_symbol(self.chunk, self.index);
        self.index += 1;
        self.remaining -= 1;
        let seq = self.seq;
        self.seq = seq.wrapping_add(1);
        let arrival_us = match sym {
            SMALL_DELTA => {
                let &d = self.body.get(self.delta_at)?;
                self.delta_at += 1;
                self.time_us += i64::from(d) * DELTA_US;
                Some(self.time_us)
            }
            LARGE_DELTA => {
                let d = self.body.get(self.delta_at..self.delta_at + 2)?;
                self.delta_at += 2;
                self.time_us += i64::from(i16::from_be_bytes([d[0], d[1]])) * DELTA_US;
                Some(self.time_us)
            }
            _ => None,
        };
        Some(TwccStatus { seq, arrival_us })
    }
}

/// A received packet to report: extended transport sequence number (from a
/// [`crate::rtp::SeqUnwrapper`]) and arrival time in µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwccRecord {
    /// Extended transport-wide sequence number.
    pub seq: u64,
    /// Arrival time, µs on the receiver's clock.
    pub arrival_us: u64,
}

/// What [`write_twcc`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwccWritten {
    /// Bytes written.
    pub len: usize,
    /// How many leading records the packet covers; report the rest in the
    /// next feedback.
    pub records_used: usize,
}

/// Status symbols of the covered sequence range, computed from the records.
#[derive(Debug, Clone)]
struct SymbolCursor<'r> {
    records: &'r [TwccRecord],
    base: u64,
    pos: u64,
    next_record: usize,
    prev_ticks: i64,
}

impl SymbolCursor<'_> {
    fn next_symbol(&mut self) -> u8 {
        match self.records.get(self.next_record) {
            Some(r) if r.seq - self.base == self.pos => {
                self.pos += 1;
                self.next_record += 1;
                let t = ticks(r.arrival_us);
                let d = t - self.prev_ticks;
                self.prev_ticks = t;
                if (0..=255).contains(&d) {
                    SMALL_DELTA
                } else {
                    LARGE_DELTA
                }
            }
            _ => {
                self.pos += 1;
                NOT_RECEIVED
            }
        }
    }
}

/// Arrival time in 250 µs ticks.
fn ticks(arrival_us: u64) -> i64 {
    // Invariant: u64 / 250 < 2^56 fits i64.
    (arrival_us / 250) as i64
}

/// Encodes a feedback for `records` (strictly ascending extended sequence
/// numbers of received packets; the gaps between them are reported lost).
///
/// The packet stops early (see [`TwccWritten::records_used`]) at a record
/// that is not ascending, lies more than 65535 after the first, or whose delta
/// does not fit 16 bits. The caller caps the number of records per feedback
/// (media.md §5.5: 400) and keeps the 8-bit `fb_count`. Padding uses the P bit
/// with a count byte, as libwebrtc writes it.
pub fn write_twcc(
    out: &mut [u8],
    sender: Ssrc,
    media: Ssrc,
    fb_count: u8,
    records: &[TwccRecord],
) -> Result<TwccWritten, RtcpDrop> {
    let first = records.first().ok_or(RtcpDrop::OutOfRange)?;
    let reference = first.arrival_us / REFERENCE_US as u64;
    let start_ticks = ticks(reference * REFERENCE_US as u64);
    let mut prev = start_ticks;
    let mut used = 0;
    let mut delta_bytes = 0;
    for (k, r) in records.iter().enumerate() {
        if k > 0 && (r.seq <= records[k - 1].seq || r.seq - first.seq > 0xfffe) {
            break;
        }
        let t = ticks(r.arrival_us);
        let d = t - prev;
        delta_bytes += if (0..=255).contains(&d) {
            1
        } else if i16::try_from(d).is_ok() {
            2
        } else {
            break;
        };
        prev = t;
        used = k + 1;
    }
    let records = &records[..used];
    // Invariant: used >= 1 (the first record always fits) and the span is <= 0xfffe.
    let count = records[used - 1].seq - first.seq + 1;

    let mut cursor = SymbolCursor {
        records,
        base: first.seq,
        pos: 0,
        next_record: 0,
        prev_ticks: start_ticks,
    };
    let mut at = 20;
    let mut done = 0u64;
    while done < count {
        let remaining = count - done;
        let mut look = cursor.clone();
        let s0 = look.next_symbol();
        let mut run = 1;
        while run < remaining.min(MAX_RUN) {
            let mut step = look.clone();
            if step.next_symbol() != s0 {
                break;
            }
            look = step;
            run += 1;
        }
        let chunk = if run == remaining || run >= 14 {
            cursor = look;
            done += run;
            // Invariant: run <= 0x1fff and s0 <= 2.
            (u16::from(s0) << 13) | run as u16
        } else {
            let n = remaining.min(14) as usize;
            let mut look = cursor.clone();
            let mut syms = [0u8; 14];
            for s in &mut syms[..n] {
                *s = look.next_symbol();
            }
            if syms[..n].iter().all(|&s| s <= SMALL_DELTA) {
                cursor = look;
                done += n as u64;
                syms.iter()
                    .enumerate()
                    .fold(0x8000u16, |c, (i, &s)| c | (u16::from(s) << (13 - i)))
            } else {
                let n = remaining.min(7) as usize;
                let mut c = 0xc000u16;
                for i in 0..n {
                    c |= u16::from(cursor.next_symbol()) << (12 - 2 * i);
                }
                done += n as u64;
                c
            }
        };
        let dst = out.get_mut(at..at + 2).ok_or(RtcpDrop::BufferTooSmall)?;
        dst.copy_from_slice(&chunk.to_be_bytes());
        at += 2;
    }

    let chunks_end = at;
    let mut prev = start_ticks;
    for r in records {
        let t = ticks(r.arrival_us);
        let d = t - prev;
        prev = t;
        if (0..=255).contains(&d) {
            *out.get_mut(at).ok_or(RtcpDrop::BufferTooSmall)? = d as u8;
            at += 1;
        } else {
            // Invariant: the first pass only kept deltas that fit i16.
            let d = d as i16;
            out.get_mut(at..at + 2)
                .ok_or(RtcpDrop::BufferTooSmall)?
                .copy_from_slice(&d.to_be_bytes());
            at += 2;
        }
    }
    debug_assert_eq!(at - chunks_end, delta_bytes);

    let len = at.next_multiple_of(4);
    let dst = out.get_mut(..len).ok_or(RtcpDrop::BufferTooSmall)?;
    dst[at..].fill(0);
    write_header(dst, FMT_TWCC, PT_RTPFB)?;
    if len > at {
        dst[0] |= 0x20;
        // Invariant: at most 3 padding bytes.
        dst[len - 1] = (len - at) as u8;
    }
    dst[4..8].copy_from_slice(&sender.0.to_be_bytes());
    dst[8..12].copy_from_slice(&media.0.to_be_bytes());
    // Truncation intended: the base is the low 16 bits of the extended seq.
    dst[12..14].copy_from_slice(&(first.seq as u16).to_be_bytes());
    // Invariant: count <= 0xffff by the first pass.
    dst[14..16].copy_from_slice(&(count as u16).to_be_bytes());
    // The reference time is 24 bits and wraps (every ~12.4 days).
    let reference = (reference as u32) & 0x00ff_ffff;
    dst[16..20].copy_from_slice(&((reference << 8) | u32::from(fb_count)).to_be_bytes());
    Ok(TwccWritten {
        len,
        records_used: used,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{RtcpPacket, parse};
    use super::*;

    fn view(b: &[u8]) -> TwccView<'_> {
        match parse(b).next() {
            Some(Ok(RtcpPacket::TransportCc(t))) => t,
            other => panic!("not transport-cc: {other:?}"),
        }
    }

    /// A feedback with a run-length and a 1-bit vector chunk, by hand from draft §3.1.
    #[rustfmt::skip]
    const WIRE: &[u8] = &[
        0x8f, 205, 0x00, 0x06,  // FMT=15 RTPFB, length 6
        0x00, 0x00, 0x00, 0x01, // sender SSRC
        0x00, 0x00, 0x00, 0x02, // media SSRC
        0x00, 0x0a, 0x00, 0x11, // base seq 10, status count 17
        0x00, 0x00, 0x02, 0x05, // reference time 2 (128 ms), fb count 5
        0x20, 0x03,             // run length: 3 x small delta (seq 10..=12)
        0xa0, 0x00,             // 1-bit vector: seq 13 received, 14..=26 lost
        0x04, 0x08, 0x0c,       // small deltas 1 ms, 2 ms, 3 ms for 10, 11, 12
        0x00,                   // small delta 0 for 13
    ];

    #[test]
    fn parse_hand_written() {
        let t = view(WIRE);
        assert_eq!((t.sender_ssrc(), t.media_ssrc()), (Ssrc(1), Ssrc(2)));
        assert_eq!(
            (t.base_seq(), t.status_count(), t.fb_count()),
            (SeqNo(10), 17, 5)
        );
        assert_eq!(t.reference_time(), 2);
        let p: Vec<TwccStatus> = t.packets().collect();
        assert_eq!(p.len(), 17);
        assert_eq!(p[0].arrival_us, Some(128_000 + 1_000));
        assert_eq!(p[1].arrival_us, Some(128_000 + 3_000));
        assert_eq!(p[2].arrival_us, Some(128_000 + 6_000));
        assert_eq!(
            p[3],
            TwccStatus {
                seq: SeqNo(13),
                arrival_us: Some(134_000)
            }
        );
        assert!(p[4..].iter().all(|s| s.arrival_us.is_none()));
        assert_eq!(p[16].seq, SeqNo(26));
        // A negative reference time sign-extends.
        let mut b = WIRE.to_vec();
        b[16..19].copy_from_slice(&[0xff, 0xff, 0xff]);
        assert_eq!(view(&b).reference_time(), -1);
    }

    #[test]
    fn reserved_symbol_and_short_deltas_rejected() {
        #[rustfmt::skip]
        let bad: &[u8] = &[
            0x8f, 205, 0x00, 0x05, 0, 0, 0, 1, 0, 0, 0, 2,
            0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
            0x60, 0x01, 0x00, 0x00, // run length of symbol 3
        ];
        assert_eq!(
            parse(bad).next().and_then(|r| r.err()),
            Some(RtcpDrop::Malformed)
        );
        let mut short = bad.to_vec();
        short[20] = 0x40; // two large deltas needed (4 bytes), only 2 present
        short[21] = 0x02;
        short[15] = 2;
        assert_eq!(
            parse(&short).next().and_then(|r| r.err()),
            Some(RtcpDrop::TooShort)
        );
    }

    #[test]
    fn write_then_parse_exact_bytes() {
        let recs = [
            TwccRecord {
                seq: 0x1_0005,
                arrival_us: 1_000_000,
            },
            TwccRecord {
                seq: 0x1_0006,
                arrival_us: 1_000_250,
            },
            TwccRecord {
                seq: 0x1_0008,
                arrival_us: 1_100_000,
            },
        ];
        let mut out = [0u8; 64];
        let w = write_twcc(&mut out, Ssrc(1), Ssrc(2), 9, &recs).expect("fits");
        #[rustfmt::skip]
        let expect: &[u8] = &[
            0xaf, 205, 0x00, 0x06,  // P=1 FMT=15 RTPFB, length 6
            0x00, 0x00, 0x00, 0x01, // sender SSRC
            0x00, 0x00, 0x00, 0x02, // media SSRC
            0x00, 0x05, 0x00, 0x04, // base 5, count 4 (5, 6, 7 lost, 8)
            0x00, 0x00, 0x0f, 0x09, // reference 15 (960 ms), fb count 9
            0xd4, 0x80,             // 2-bit vector: small, small, lost, large
            160, 1,                 // 40 ms after 960 ms = 160 ticks; 1 tick
            0x01, 0x8f,             // large delta: 99.75 ms = 399 ticks
            0x00, 0x02,             // padding, count 2
        ];
        assert_eq!(&out[..w.len], expect);
        assert_eq!(w.records_used, 3);
        let t = view(&out[..w.len]);
        assert_eq!(t.base_seq(), SeqNo(5));
        assert_eq!(t.status_count(), 4);
        assert_eq!(t.reference_time(), 15);
        assert_eq!(t.fb_count(), 9);
        let got: Vec<Option<i64>> = t.packets().map(|s| s.arrival_us).collect();
        assert_eq!(
            got,
            [Some(1_000_000), Some(1_000_250), None, Some(1_100_000)]
        );
    }

    #[test]
    fn property_round_trip() {
        // Random loss patterns and jitter: every record comes back with its
        // arrival time rounded down to 250 µs, every gap as lost.
        let mut rng = crate::rtp::tests::TestRng(0x5eed_3001);
        let mut out = vec![0u8; 8192];
        for _ in 0..300 {
            let mut recs = Vec::new();
            let mut seq = 0x1_0000 + rng.below(0x1_0000);
            let mut t = 5_000_000 + rng.below(1 << 30);
            let long_runs = rng.below(2) == 0;
            for _ in 0..1 + rng.below(400) {
                recs.push(TwccRecord { seq, arrival_us: t });
                seq += 1 + if long_runs {
                    rng.below(30)
                } else {
                    rng.below(3) / 2
                };
                t = match rng.below(10) {
                    0 => t + rng.below(200_000),
                    1 => t.saturating_sub(rng.below(5_000)),
                    _ => t + rng.below(20_000),
                };
            }
            let mut offset = 0;
            while offset < recs.len() {
                let w = write_twcc(&mut out, Ssrc(1), Ssrc(2), 0, &recs[offset..]).expect("fits");
                assert!(w.records_used >= 1);
                let batch = &recs[offset..offset + w.records_used];
                let tv = view(&out[..w.len]);
                let mut expect = batch.iter().peekable();
                for st in tv.packets() {
                    let want_seq =
                        batch[0].seq + u64::from(st.seq.0.wrapping_sub(batch[0].seq as u16));
                    match expect.peek() {
                        Some(r) if r.seq == want_seq => {
                            let exact = i64::try_from(r.arrival_us / 250 * 250).expect("small");
                            let reference = i64::from(tv.reference_time()) * 64_000;
                            let base = i64::try_from(batch[0].arrival_us / 64_000 * 64_000)
                                .expect("small");
                            // The 24-bit reference wraps; compare relative to it.
                            assert_eq!(st.arrival_us.map(|a| a - reference), Some(exact - base));
                            expect.next();
                        }
                        _ => assert_eq!(st.arrival_us, None),
                    }
                }
                assert!(expect.next().is_none(), "every record reported");
                offset += w.records_used;
            }
        }
    }

    #[test]
    fn long_runs_and_stops() {
        // 10 000 lost between two received packets: run-length chunks.
        let recs = [
            TwccRecord {
                seq: 100,
                arrival_us: 0,
            },
            TwccRecord {
                seq: 10_101,
                arrival_us: 1_000,
            },
            TwccRecord {
                seq: 10_102,
                arrival_us: 60_000_000,
            }, // delta too large
        ];
        let mut out = [0u8; 64];
        let w = write_twcc(&mut out, Ssrc(1), Ssrc(2), 0, &recs).expect("fits");
        assert_eq!(w.records_used, 2);
        let t = view(&out[..w.len]);
        assert_eq!(t.status_count(), 10_002);
        assert_eq!(t.packets().filter(|s| s.arrival_us.is_some()).count(), 2);
        assert_eq!(
            write_twcc(&mut out, Ssrc(1), Ssrc(2), 0, &[]),
            Err(RtcpDrop::OutOfRange)
        );
        assert_eq!(
            write_twcc(&mut out[..21], Ssrc(1), Ssrc(2), 0, &recs),
            Err(RtcpDrop::BufferTooSmall)
        );
    }
}
