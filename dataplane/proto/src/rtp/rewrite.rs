//! Continuity rewriting: the switching context of media.md §6.3 and the VP8
//! picture-id context of §7.5.
//!
//! Both are small per-receiver state machines fed with header values and the
//! time (microseconds, passed in). They never read a clock and never allocate.

use super::codec::{CodecDrop, Vp8Descriptor};
use super::{Pt, RtpViewMut, SeqNo, Ssrc};

/// The clock rate media.md §6.3 uses to turn elapsed wall time into RTP
/// ticks: 90 kHz for video, 8 kHz for audio payload types 0, 8 and 9, else 48 kHz.
pub fn switching_clock_rate(video: bool, pt: Pt) -> u32 {
    if video {
        90_000
    } else if matches!(pt.0, 0 | 8 | 9) {
        8_000
    } else {
        48_000
    }
}

/// The header values to emit for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    /// Sequence number to write.
    pub seq: SeqNo,
    /// Timestamp to write.
    pub timestamp: u32,
    /// Whether this packet started a new source (SSRC change or forced reset).
    pub switched: bool,
}

/// Makes sequence numbers and timestamps continuous across SSRC changes
/// (media.md §6.3). The first packet ever passes through unchanged; after a
/// switch the new source continues from the last emitted values, timestamps
/// advanced by the wall time elapsed since the last emitted packet.
#[derive(Debug, Clone, Copy, Default)]
pub struct SwitchingContext {
    last_ssrc: Option<Ssrc>,
    force_reset: bool,
    base_seq: u16,
    prev_base_seq: u16,
    last_seq: u16,
    base_ts: u32,
    prev_base_ts: u32,
    last_ts: u32,
    last_time_us: u64,
}

impl SwitchingContext {
    /// A context that has seen no packet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Computes the emitted values for a packet and updates the context.
    pub fn rewrite(
        &mut self,
        ssrc: Ssrc,
        seq: SeqNo,
        ts: u32,
        now_us: u64,
        clock_rate: u32,
    ) -> Rewritten {
        let switched = self.force_reset || self.last_ssrc != Some(ssrc);
        if switched {
            if self.last_ssrc.is_none() {
                self.prev_base_seq = seq.0.wrapping_sub(1);
                self.prev_base_ts = ts;
            } else {
                let elapsed = now_us.saturating_sub(self.last_time_us);
                let ticks = (u128::from(elapsed) * u128::from(clock_rate) / 1_000_000).max(1);
                // Truncation is the mod-2^32 arithmetic of RTP timestamps.
                self.prev_base_ts = self.last_ts.wrapping_add(ticks as u32);
                self.prev_base_seq = self.last_seq;
            }
            self.base_seq = seq.0;
            self.base_ts = ts;
            self.last_ssrc = Some(ssrc);
            self.force_reset = false;
        }
        let out_seq = seq
            .0
            .wrapping_sub(self.base_seq)
            .wrapping_add(self.prev_base_seq)
            .wrapping_add(1);
        let out_ts = ts
            .wrapping_sub(self.base_ts)
            .wrapping_add(self.prev_base_ts);
        if switched || SeqNo(out_seq).is_newer_than(SeqNo(self.last_seq)) {
            self.last_seq = out_seq;
            self.last_ts = out_ts;
            self.last_time_us = now_us;
        }
        Rewritten {
            seq: SeqNo(out_seq),
            timestamp: out_ts,
            switched,
        }
    }

    /// Rewrites the packet's sequence number and timestamp in place.
    pub fn apply(&mut self, pkt: &mut RtpViewMut<'_>, now_us: u64, clock_rate: u32) -> Rewritten {
        let v = pkt.view();
        let r = self.rewrite(v.ssrc(), v.seq(), v.timestamp(), now_us, clock_rate);
        pkt.set_seq(r.seq);
        pkt.set_timestamp(r.timestamp);
        r
    }

    /// A packet of the current source was dropped on purpose (temporal-layer
    /// filter): shift the base so the receiver sees no gap.
    pub fn skip_packet(&mut self) {
        self.base_seq = self.base_seq.wrapping_add(1);
    }

    /// Treats the next packet as a switch even if its SSRC is unchanged.
    pub fn reset(&mut self) {
        self.force_reset = true;
    }
}

/// Keeps the VP8 PictureID and TL0PICIDX continuous across simulcast layer
/// switches (media.md §7.5): on a switch the new layer's values are re-based
/// onto the last emitted ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct Vp8Continuity {
    started: bool,
    base_pid: u16,
    prev_base_pid: u16,
    last_pid: u16,
    base_tl0: u8,
    prev_base_tl0: u8,
    last_tl0: u8,
}

impl Vp8Continuity {
    /// A context that has seen no packet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rewrites the descriptor at the start of `payload` in place. `switched`
    /// comes from [`SwitchingContext::rewrite`]. Payloads shorter than six
    /// bytes are left alone, as in media.md §7.5.
    pub fn rewrite(&mut self, payload: &mut [u8], switched: bool) -> Result<(), CodecDrop> {
        if payload.len() < 6 {
            return Ok(());
        }
        let d = Vp8Descriptor::parse(payload)?;
        let pid = d.picture_id.unwrap_or(0);
        let tl0 = d.tl0picidx.unwrap_or(0);
        if !self.started {
            self.started = true;
            self.base_pid = pid;
            self.prev_base_pid = pid.wrapping_sub(1) & 0x7fff;
            self.base_tl0 = tl0;
            self.prev_base_tl0 = tl0.wrapping_sub(1);
        } else if switched {
            self.base_pid = pid;
            self.prev_base_pid = self.last_pid;
            self.base_tl0 = tl0;
            self.prev_base_tl0 = self.last_tl0;
        }
        let out_pid = pid
            .wrapping_sub(self.base_pid)
            .wrapping_add(self.prev_base_pid)
            .wrapping_add(1)
            & 0x7fff;
        let out_tl0 = tl0
            .wrapping_sub(self.base_tl0)
            .wrapping_add(self.prev_base_tl0)
            .wrapping_add(1);
        self.last_pid = out_pid;
        self.last_tl0 = out_tl0;
        d.write_picture_id(payload, out_pid);
        d.write_tl0picidx(payload, out_tl0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_source_passes_through() {
        let mut c = SwitchingContext::new();
        let r = c.rewrite(Ssrc(1), SeqNo(100), 5000, 0, 90_000);
        assert_eq!((r.seq, r.timestamp, r.switched), (SeqNo(100), 5000, true));
        let r = c.rewrite(Ssrc(1), SeqNo(101), 8000, 33_000, 90_000);
        assert_eq!((r.seq, r.timestamp, r.switched), (SeqNo(101), 8000, false));
    }

    #[test]
    fn switch_continues_sequence_and_time() {
        let mut c = SwitchingContext::new();
        c.rewrite(Ssrc(1), SeqNo(0xfffe), 0xffff_fff0, 1_000_000, 90_000);
        // 100 ms later another source appears with unrelated numbers.
        let r = c.rewrite(Ssrc(2), SeqNo(7), 42, 1_100_000, 90_000);
        assert!(r.switched);
        assert_eq!(r.seq, SeqNo(0xffff));
        assert_eq!(r.timestamp, 0xffff_fff0u32.wrapping_add(9000));
        let r = c.rewrite(Ssrc(2), SeqNo(8), 42 + 3000, 1_133_000, 90_000);
        assert_eq!(r.seq, SeqNo(0));
        assert_eq!(r.timestamp, 0xffff_fff0u32.wrapping_add(12_000));
        // A dropped temporal packet leaves no gap.
        c.skip_packet();
        let r = c.rewrite(Ssrc(2), SeqNo(10), 42 + 6000, 1_166_000, 90_000);
        assert_eq!(r.seq, SeqNo(1));
        // Same time switch back: at least one tick.
        let r = c.rewrite(Ssrc(1), SeqNo(500), 0, 1_166_000, 90_000);
        assert_eq!(r.seq, SeqNo(2));
        assert_eq!(r.timestamp, 0xffff_fff0u32.wrapping_add(15_001));
    }

    #[test]
    fn vp8_picture_id_rebased_on_switch() {
        // X=1 S=1 | I=1 L=1 | M=1 pid | TL0 | VP8 header byte
        let mut a = [0x90, 0xc0, 0x80 | 0x10, 0x00, 0x20, 0x00, 0x00];
        let mut v = Vp8Continuity::new();
        v.rewrite(&mut a, true).expect("valid");
        assert_eq!(&a[2..5], &[0x90, 0x00, 0x20]);
        // Another layer with pid 0x0005 and tl0 0x70.
        let mut b = [0x90, 0xc0, 0x80, 0x05, 0x70, 0x00, 0x00];
        v.rewrite(&mut b, true).expect("valid");
        assert_eq!(&b[2..5], &[0x90, 0x01, 0x21]);
        let mut c = [0x90, 0xc0, 0x80, 0x06, 0x70, 0x00, 0x00];
        v.rewrite(&mut c, false).expect("valid");
        assert_eq!(&c[2..5], &[0x90, 0x02, 0x21]);
        // 7-bit ids wrap at 128 on the wire.
        let mut d = [0x90, 0x80, 0x7f, 0x00, 0x00, 0x00];
        let mut w = Vp8Continuity::new();
        w.rewrite(&mut d, true).expect("valid");
        assert_eq!(d[2], 0x7f);
        let mut e = [0x90, 0x80, 0x00, 0x00, 0x00, 0x00];
        w.rewrite(&mut e, false).expect("valid");
        assert_eq!(e[2], 0x00);
    }

    #[test]
    fn clock_rates() {
        assert_eq!(switching_clock_rate(true, Pt(96)), 90_000);
        assert_eq!(switching_clock_rate(false, Pt(0)), 8_000);
        assert_eq!(switching_clock_rate(false, Pt(111)), 48_000);
    }
}
