//! NACK generation for incoming streams and the retransmission store for
//! outgoing ones (media.md §5.2 step 8 and 14, §5.4).
//!
//! [`NackGenerator`] tracks which sequence numbers of a received stream are
//! missing and says which to NACK when; [`RetransmitBuffer`] keeps recently
//! sent packets in fixed slots to answer NACKs.
//!
//! Both are sans-IO: time is passed in as microseconds, inputs are
//! `handle_*`, outputs `poll_*`, timers `poll_timeout()` /
//! `handle_timeout(now)`. They never read a clock, never do IO, and allocate
//! only in their constructors: memory is bounded by their configuration.
//!
//! # Schedule chosen (media.md §5.2 step 14, matching Janus)
//!
//! * The window is the last 160 sequence numbers ([`NackConfig::window`]).
//! * A missing number is NACKed once it has been missing for more than 12 ms,
//!   a second time once missing for more than 155 ms, then given up
//!   ([`NackConfig::schedule_us`]); the "max age" of a NACK is the last step.
//! * A packet 160 or more ahead of the newest, or more than 1000 behind it,
//!   resets the window; so does a keyframe newer than everything seen.
//!
//! The sender side keeps packets for RTT + 100 ms clamped to
//! [min queue (200 ms), 1000 ms], smoothed, and resends one packet at most
//! once per back-off (40 ms, doubling, capped at 1 s) (media.md §5.4).

use crate::rtp::SeqNo;

/// Largest window a [`NackGenerator`] can track.
pub const MAX_NACK_WINDOW: u16 = 4096;
/// Most NACK attempts per packet.
pub const MAX_NACK_ATTEMPTS: usize = 4;

/// Invalid configuration at construction (not on the packet path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NackConfigError {
    /// Window 0 or above [`MAX_NACK_WINDOW`].
    #[error("NACK window must be 1..={MAX_NACK_WINDOW}")]
    Window,
    /// Attempts 0 or above [`MAX_NACK_ATTEMPTS`], or a schedule not increasing.
    #[error("NACK schedule must have 1..={MAX_NACK_ATTEMPTS} increasing steps")]
    Schedule,
    /// Retransmit buffer capacity 0 or above 32768, or slot size 0.
    #[error("retransmit buffer needs 1..=32768 slots of at least one byte")]
    Capacity,
}

/// Settings of a [`NackGenerator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NackConfig {
    /// How many of the most recent sequence numbers are tracked.
    pub window: u16,
    /// Attempt `k` is due once the number has been missing for more than
    /// `schedule_us[k]`; only the first `attempts` entries are used.
    pub schedule_us: [u64; MAX_NACK_ATTEMPTS],
    /// Number of NACKs per missing packet before giving up.
    pub attempts: u8,
    /// A packet this far or further ahead of the newest resets the window.
    pub reset_ahead: u16,
    /// A packet more than this far behind the newest resets the window.
    pub reset_behind: u16,
}

impl Default for NackConfig {
    fn default() -> Self {
        Self {
            window: 160,
            schedule_us: [12_000, 155_000, 0, 0],
            attempts: 2,
            reset_ahead: 160,
            reset_behind: 1000,
        }
    }
}

/// What a received packet was, for the stream's NACK state. media.md §5.2
/// step 8 drops a retransmission that is a `Duplicate` or a
/// `Recovered { nacked: false }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The first packet of the stream.
    First,
    /// The newest so far (any gap before it is now missing).
    InOrder,
    /// Filled a gap; `nacked` says whether a NACK had been sent for it.
    Recovered {
        /// A NACK was sent for this number.
        nacked: bool,
    },
    /// Already received.
    Duplicate,
    /// Older than the window, but not old enough to reset it.
    OutOfWindow,
    /// The window was reset (jump, restart or keyframe); tracking restarts here.
    Reset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Empty,
    Received,
    Missing,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    ext: u64,
    state: SlotState,
    missing_since_us: u64,
    sent: u8,
    pending: bool,
}

const EMPTY_SLOT: Slot = Slot {
    ext: 0,
    state: SlotState::Empty,
    missing_since_us: 0,
    sent: 0,
    pending: false,
};

/// Base of the extended sequence space after a reset, far from 0 so that
/// numbers behind the newest never underflow.
const EXT_BASE: u64 = 1 << 32;

/// Tracks missing sequence numbers of one incoming stream (one simulcast
/// layer) and schedules NACKs for them.
#[derive(Debug, Clone)]
pub struct NackGenerator {
    config: NackConfig,
    slots: Box<[Slot]>,
    newest: Option<u64>,
    next_due_us: Option<u64>,
    /// Whether a slot may be pending: [`Self::poll_nack`] scans the window
    /// only then (it is called on every timer tick).
    any_pending: bool,
}

impl NackGenerator {
    /// A generator with the given settings; allocates the window once.
    pub fn new(config: NackConfig) -> Result<Self, NackConfigError> {
        if config.window == 0 || config.window > MAX_NACK_WINDOW {
            return Err(NackConfigError::Window);
        }
        let n = usize::from(config.attempts);
        if n == 0
            || n > MAX_NACK_ATTEMPTS
            || config.schedule_us[..n].windows(2).any(|w| w[0] >= w[1])
        {
            return Err(NackConfigError::Schedule);
        }
        Ok(Self {
            config,
            slots: vec![EMPTY_SLOT; usize::from(config.window)].into_boxed_slice(),
            newest: None,
            next_due_us: None,
            any_pending: false,
        })
    }

    /// Records a received packet. `keyframe` is whether it starts a video
    /// keyframe (see [`crate::rtp::codec::is_keyframe`]).
    pub fn handle_packet(&mut self, now_us: u64, seq: SeqNo, keyframe: bool) -> Arrival {
        let Some(newest) = self.newest else {
            self.reset_to(seq);
            return Arrival::First;
        };
        let ext = newest.saturating_add_signed(i64::from(seq.diff(SeqNo(newest as u16))));
        if ext > newest {
            let ahead = ext - newest;
            if ahead >= u64::from(self.config.reset_ahead) || keyframe {
                self.reset_to(seq);
                return Arrival::Reset;
            }
            let first_due = now_us
                .saturating_add(self.config.schedule_us[0])
                .saturating_add(1);
            for missing in newest + 1..ext {
                *self.slot_mut(missing) = Slot {
                    ext: missing,
                    state: SlotState::Missing,
                    missing_since_us: now_us,
                    sent: 0,
                    pending: false,
                };
                self.next_due_us = Some(self.next_due_us.map_or(first_due, |d| d.min(first_due)));
            }
            self.mark_received(ext);
            self.newest = Some(ext);
            return Arrival::InOrder;
        }
        let behind = newest - ext;
        if behind == 0 {
            return Arrival::Duplicate;
        }
        if behind > u64::from(self.config.reset_behind) {
            self.reset_to(seq);
            return Arrival::Reset;
        }
        if behind >= u64::from(self.config.window) {
            return Arrival::OutOfWindow;
        }
        let slot = *self.slot_mut(ext);
        if slot.ext != ext {
            return Arrival::OutOfWindow;
        }
        match slot.state {
            SlotState::Missing => {
                self.mark_received(ext);
                Arrival::Recovered {
                    nacked: slot.sent > 0,
                }
            }
            SlotState::Received => Arrival::Duplicate,
            SlotState::Empty => Arrival::OutOfWindow,
        }
    }

    /// Marks the missing numbers whose next NACK is due at `now_us` as
    /// pending; collect them with [`Self::poll_nack`].
    pub fn handle_timeout(&mut self, now_us: u64) {
        let Some(newest) = self.newest else {
            return;
        };
        let attempts = self.config.attempts;
        let schedule = self.config.schedule_us;
        let mut next_due: Option<u64> = None;
        for i in 0..self.slots.len() {
            let s = &mut self.slots[i];
            if s.state != SlotState::Missing || s.sent >= attempts || s.ext > newest {
                continue;
            }
            let due = s
                .missing_since_us
                .saturating_add(schedule[usize::from(s.sent)])
                .saturating_add(1);
            if due <= now_us {
                s.pending = true;
                self.any_pending = true;
                s.sent += 1;
                if s.sent < attempts {
                    let again = s
                        .missing_since_us
                        .saturating_add(schedule[usize::from(s.sent)])
                        .saturating_add(1);
                    next_due = Some(next_due.map_or(again, |d| d.min(again)));
                }
            } else {
                next_due = Some(next_due.map_or(due, |d| d.min(due)));
            }
        }
        self.next_due_us = next_due;
    }

    /// Writes the pending NACKs into `out`, oldest first, and returns how
    /// many. Call again while it fills `out` completely.
    pub fn poll_nack(&mut self, out: &mut [SeqNo]) -> usize {
        let Some(newest) = self.newest else {
            return 0;
        };
        if !self.any_pending || out.is_empty() {
            return 0;
        }
        let window = self.slots.len() as u64;
        let mut n = 0;
        let mut complete = true;
        for ext in newest.saturating_sub(window - 1)..=newest {
            if n == out.len() {
                complete = false;
                break;
            }
            let s = self.slot_mut(ext);
            if s.ext == ext && s.pending {
                s.pending = false;
                if s.state == SlotState::Missing {
                    // Truncation intended: the wire sequence number.
                    out[n] = SeqNo(ext as u16);
                    n += 1;
                }
            }
        }
        if complete {
            self.any_pending = false;
        }
        n
    }

    /// When [`Self::handle_timeout`] should run next, if anything is missing.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.next_due_us
    }

    /// Number of numbers currently missing inside the window.
    pub fn missing(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.state == SlotState::Missing)
            .count()
    }

    fn reset_to(&mut self, seq: SeqNo) {
        self.slots.fill(EMPTY_SLOT);
        let ext = EXT_BASE + u64::from(seq.0);
        self.mark_received(ext);
        self.newest = Some(ext);
        self.next_due_us = None;
        self.any_pending = false;
    }

    fn mark_received(&mut self, ext: u64) {
        *self.slot_mut(ext) = Slot {
            ext,
            state: SlotState::Received,
            ..EMPTY_SLOT
        };
    }

    fn slot_mut(&mut self, ext: u64) -> &mut Slot {
        let i = (ext % self.slots.len() as u64) as usize;
        &mut self.slots[i]
    }
}

/// Why a packet could not be stored for retransmission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum StoreDrop {
    /// Larger than the buffer's slot size.
    #[error("packet larger than the retransmission slot")]
    TooLarge,
}

/// Why a NACKed packet is not resent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ResendSkip {
    /// Never stored, or overwritten by a later packet.
    #[error("packet not in the retransmission buffer")]
    NotFound,
    /// Older than the buffer's age limit.
    #[error("packet too old to resend")]
    Expired,
    /// Resent less than its back-off ago.
    #[error("packet resent too recently")]
    BackOff,
}

/// First resend back-off (media.md §5.4).
const BACKOFF_START_US: u64 = 40_000;
/// Longest resend back-off.
const BACKOFF_MAX_US: u64 = 1_000_000;
/// Default lower bound of the keep time (`min_nack_queue`, 200 ms).
pub const DEFAULT_MIN_QUEUE_US: u64 = 200_000;
/// Upper bound of the keep time.
const MAX_QUEUE_US: u64 = 1_000_000;
/// Added to the RTT to get the keep time.
const QUEUE_MARGIN_US: u64 = 100_000;

#[derive(Debug, Clone, Copy, Default)]
struct StoredMeta {
    seq: SeqNo,
    len: usize,
    stored_at_us: u64,
    valid: bool,
    last_resent_us: Option<u64>,
    backoff_us: u64,
}

/// Recently sent packets of one outgoing stream, in fixed slots indexed by
/// sequence number (a ring: a packet overwrites the one `slots` numbers
/// before it).
///
/// The ring starts small ([`INITIAL_SLOTS`]) and doubles, up to the
/// capacity given at construction, whenever a packet would overwrite one
/// still younger than the keep time: it holds about what the stream's packet
/// rate and the keep time need (a 1 Mbit/s video stream kept 200 ms needs
/// ~20 slots, not the 512 a 10 Mbit/s stream kept one second needs), so an
/// idle or low-rate stream costs little memory. Growth allocates (at most
/// log2(capacity / INITIAL_SLOTS) times in a stream's life, while its rate
/// ramps up); storing and resending never do.
#[derive(Debug, Clone)]
pub struct RetransmitBuffer {
    slab: Box<[u8]>,
    slot_size: usize,
    meta: Box<[StoredMeta]>,
    mask: u16,
    /// Largest number of slots (a power of two, at most 32768).
    capacity: usize,
    min_queue_us: u64,
    max_age_us: u64,
}

/// Slots a [`RetransmitBuffer`] starts with.
pub const INITIAL_SLOTS: usize = 32;

impl RetransmitBuffer {
    /// A buffer of up to `capacity` slots (rounded up to a power of two, at
    /// most 32768) of `slot_size` bytes each, keeping packets for the minimum
    /// queue time until an RTT is known.
    pub fn new(
        capacity: usize,
        slot_size: usize,
        min_queue_us: u64,
    ) -> Result<Self, NackConfigError> {
        if capacity == 0 || capacity > 32_768 || slot_size == 0 {
            return Err(NackConfigError::Capacity);
        }
        let capacity = capacity.next_power_of_two();
        let slots = capacity.min(INITIAL_SLOTS);
        Ok(Self {
            slab: vec![0; slots * slot_size].into_boxed_slice(),
            slot_size,
            meta: vec![StoredMeta::default(); slots].into_boxed_slice(),
            // Invariant: slots <= capacity <= 32768, so slots - 1 fits u16.
            mask: (slots - 1) as u16,
            capacity,
            min_queue_us,
            max_age_us: min_queue_us.clamp(1, MAX_QUEUE_US),
        })
    }

    /// Slots in use now (grows with the packet rate up to the capacity).
    pub fn slots(&self) -> usize {
        self.meta.len()
    }

    /// Doubles the ring, moving every stored packet to its slot in the
    /// larger one (distinct under the old mask, so distinct under the new).
    fn grow(&mut self) {
        let slots = self.meta.len() * 2;
        let mut slab = vec![0; slots * self.slot_size].into_boxed_slice();
        let mut meta = vec![StoredMeta::default(); slots].into_boxed_slice();
        // Invariant: slots <= capacity <= 32768 (checked by the caller).
        let mask = (slots - 1) as u16;
        for (old, m) in self.meta.iter().enumerate() {
            if !m.valid {
                continue;
            }
            let new = usize::from(m.seq.0 & mask);
            let (from, to) = (old * self.slot_size, new * self.slot_size);
            slab[to..to + m.len].copy_from_slice(&self.slab[from..from + m.len]);
            meta[new] = *m;
        }
        self.slab = slab;
        self.meta = meta;
        self.mask = mask;
    }

    /// Stores a sent packet under its sequence number.
    pub fn insert(&mut self, now_us: u64, seq: SeqNo, packet: &[u8]) -> Result<(), StoreDrop> {
        if packet.len() > self.slot_size {
            return Err(StoreDrop::TooLarge);
        }
        let mut i = usize::from(seq.0 & self.mask);
        while self.meta.len() < self.capacity && {
            let m = &self.meta[i];
            m.valid && m.seq != seq && now_us.saturating_sub(m.stored_at_us) <= self.max_age_us
        } {
            self.grow();
            i = usize::from(seq.0 & self.mask);
        }
        let at = i * self.slot_size;
        self.slab[at..at + packet.len()].copy_from_slice(packet);
        self.meta[i] = StoredMeta {
            seq,
            len: packet.len(),
            stored_at_us: now_us,
            valid: true,
            last_resent_us: None,
            backoff_us: 0,
        };
        Ok(())
    }

    /// Answers a NACK for `seq`: the stored bytes, unless missing, expired or
    /// resent less than its back-off ago. A successful call counts as a resend.
    pub fn resend(&mut self, now_us: u64, seq: SeqNo) -> Result<&[u8], ResendSkip> {
        let i = self.find(now_us, seq)?;
        let m = &mut self.meta[i];
        if let Some(last) = m.last_resent_us
            && now_us.saturating_sub(last) < m.backoff_us
        {
            return Err(ResendSkip::BackOff);
        }
        m.backoff_us = if m.last_resent_us.is_none() {
            BACKOFF_START_US
        } else {
            (m.backoff_us * 2).min(BACKOFF_MAX_US)
        };
        m.last_resent_us = Some(now_us);
        let at = i * self.slot_size;
        Ok(&self.slab[at..at + m.len])
    }

    /// Updates the keep time from a new RTT sample: RTT + 100 ms clamped to
    /// [min queue, 1 s], smoothed with weight 1/4 for the new value.
    pub fn update_rtt(&mut self, rtt_us: u64) {
        let target = rtt_us
            .saturating_add(QUEUE_MARGIN_US)
            .clamp(self.min_queue_us.min(MAX_QUEUE_US), MAX_QUEUE_US);
        self.max_age_us = (self.max_age_us * 3 + target) / 4;
    }

    /// Forgets every stored packet older (wrap-aware) than `seq`: the "NACK
    /// optimization" after sending a keyframe (media.md §5.4).
    pub fn drop_older_than(&mut self, seq: SeqNo) {
        for m in self.meta.iter_mut() {
            if m.valid && seq.is_newer_than(m.seq) {
                m.valid = false;
            }
        }
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.meta.fill(StoredMeta::default());
    }

    /// The stored bytes for `seq` if kept and not expired, without counting
    /// a resend.
    pub fn get(&self, now_us: u64, seq: SeqNo) -> Option<&[u8]> {
        let i = self.find(now_us, seq).ok()?;
        let at = i * self.slot_size;
        Some(&self.slab[at..at + self.meta[i].len])
    }

    /// How long packets are currently kept.
    pub fn max_age_us(&self) -> u64 {
        self.max_age_us
    }

    fn find(&self, now_us: u64, seq: SeqNo) -> Result<usize, ResendSkip> {
        let i = usize::from(seq.0 & self.mask);
        let m = &self.meta[i];
        if !m.valid || m.seq != seq {
            return Err(ResendSkip::NotFound);
        }
        if now_us.saturating_sub(m.stored_at_us) > self.max_age_us {
            return Err(ResendSkip::Expired);
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtcp::{self, RtcpPacket};
    use crate::rtp::tests::TestRng;
    use crate::rtp::{self, Pt, RtpView, RtpViewMut, Ssrc};
    use crate::rtx;

    fn generator() -> NackGenerator {
        NackGenerator::new(NackConfig::default()).expect("default config is valid")
    }

    fn poll_all(g: &mut NackGenerator) -> Vec<SeqNo> {
        let mut out = [SeqNo(0); 16];
        let mut all = Vec::new();
        loop {
            let n = g.poll_nack(&mut out);
            all.extend_from_slice(&out[..n]);
            if n < out.len() {
                return all;
            }
        }
    }

    #[test]
    fn schedule_follows_media_spec() {
        let mut g = generator();
        assert_eq!(g.handle_packet(0, SeqNo(65534), false), Arrival::First);
        // 65535 and 0 are lost; 1 arrives at t=20 ms.
        assert_eq!(g.handle_packet(20_000, SeqNo(1), false), Arrival::InOrder);
        assert_eq!(g.missing(), 2);
        assert_eq!(g.poll_timeout(), Some(32_001));
        g.handle_timeout(32_000);
        assert!(
            poll_all(&mut g).is_empty(),
            "not missing for more than 12 ms yet"
        );
        g.handle_timeout(32_001);
        assert_eq!(poll_all(&mut g), [SeqNo(65535), SeqNo(0)]);
        assert_eq!(g.poll_timeout(), Some(175_001));
        g.handle_timeout(100_000);
        assert!(poll_all(&mut g).is_empty());
        // 0 recovered after the first NACK.
        assert_eq!(
            g.handle_packet(110_000, SeqNo(0), false),
            Arrival::Recovered { nacked: true }
        );
        assert_eq!(
            g.handle_packet(110_000, SeqNo(0), false),
            Arrival::Duplicate
        );
        g.handle_timeout(175_001);
        assert_eq!(poll_all(&mut g), [SeqNo(65535)]);
        // Given up after two attempts.
        assert_eq!(g.poll_timeout(), None);
        g.handle_timeout(10_000_000);
        assert!(poll_all(&mut g).is_empty());
        // Recovered before any NACK.
        g.handle_packet(10_000_000, SeqNo(3), false);
        assert_eq!(
            g.handle_packet(10_001_000, SeqNo(2), false),
            Arrival::Recovered { nacked: false }
        );
    }

    #[test]
    fn pending_numbers_come_out_in_turns_of_the_caller_buffer() {
        let mut g = generator();
        g.handle_packet(0, SeqNo(10), false);
        // 11..=20 lost.
        g.handle_packet(1_000, SeqNo(21), false);
        let mut out = [SeqNo(0); 4];
        assert_eq!(g.poll_nack(&mut out), 0, "nothing due yet");
        g.handle_timeout(100_000);
        let mut all = Vec::new();
        for expected in [4, 4, 2, 0] {
            let n = g.poll_nack(&mut out);
            assert_eq!(n, expected);
            all.extend_from_slice(&out[..n]);
        }
        assert_eq!(all, (11..=20).map(SeqNo).collect::<Vec<_>>());
        assert_eq!(g.poll_nack(&mut []), 0);
        // Due again at the second attempt: all of them once more.
        g.handle_timeout(1_000_000);
        assert_eq!(poll_all(&mut g).len(), 10);
    }

    #[test]
    fn resets() {
        let mut g = generator();
        g.handle_packet(0, SeqNo(100), false);
        g.handle_packet(0, SeqNo(105), false);
        assert_eq!(g.missing(), 4);
        // 160 ahead resets.
        assert_eq!(g.handle_packet(0, SeqNo(265), false), Arrival::Reset);
        assert_eq!(g.missing(), 0);
        // 159 ahead does not.
        assert_eq!(g.handle_packet(0, SeqNo(424), false), Arrival::InOrder);
        assert_eq!(g.missing(), 158);
        // Keyframe newer than everything resets.
        assert_eq!(g.handle_packet(0, SeqNo(426), true), Arrival::Reset);
        assert_eq!(g.missing(), 0);
        // 1000 behind is out of window, 1001 behind resets.
        let back = |n: u16| SeqNo(426u16.wrapping_sub(n));
        assert_eq!(g.handle_packet(0, back(1000), false), Arrival::OutOfWindow);
        assert_eq!(g.handle_packet(0, back(1001), false), Arrival::Reset);
        assert_eq!(g.handle_packet(0, back(1000), false), Arrival::InOrder);
    }

    #[test]
    fn config_validation() {
        let bad = NackConfig {
            window: 0,
            ..NackConfig::default()
        };
        assert_eq!(NackGenerator::new(bad).err(), Some(NackConfigError::Window));
        let bad = NackConfig {
            schedule_us: [10, 5, 0, 0],
            ..NackConfig::default()
        };
        assert_eq!(
            NackGenerator::new(bad).err(),
            Some(NackConfigError::Schedule)
        );
        assert!(RetransmitBuffer::new(0, 1500, DEFAULT_MIN_QUEUE_US).is_err());
    }

    #[test]
    fn window_property() {
        // Random in-order-ish streams with random loss: every number NACKed is
        // one that was really lost and is inside the window; every lost number
        // that stays inside the window long enough is NACKed exactly twice.
        let mut rng = TestRng(0x5eed_4001);
        for _ in 0..40 {
            let mut g = generator();
            let mut seq = SeqNo(rng.next_u64() as u16);
            let mut now = 0u64;
            let mut lost = std::collections::HashSet::new();
            let mut nacked = std::collections::HashMap::<u16, u32>::new();
            g.handle_packet(now, seq, false);
            for _ in 0..3000 {
                now += 1_000 + rng.below(3_000);
                seq = seq.wrapping_add(1);
                if rng.below(10) == 0 {
                    lost.insert(seq.0);
                    continue;
                }
                let a = g.handle_packet(now, seq, false);
                assert_eq!(a, Arrival::InOrder);
                if let Some(t) = g.poll_timeout()
                    && t <= now
                {
                    g.handle_timeout(now);
                    for s in poll_all(&mut g) {
                        assert!(lost.contains(&s.0), "NACKed a received packet");
                        assert!(seq.diff(s) < 160, "NACK outside the window");
                        *nacked.entry(s.0).or_default() += 1;
                    }
                }
                assert!(g.missing() <= 160);
            }
            // Lost numbers old enough (>= 155 ms and still in the window when
            // the timer ran) were NACKed twice; none more than twice.
            assert!(nacked.values().all(|&n| n <= 2));
            assert!(nacked.values().filter(|&&n| n == 2).count() > lost.len() / 2);
        }
    }

    #[test]
    fn random_sequences_keep_bounds() {
        // Arbitrary sequence numbers, keyframe flags and times: no panic, the
        // missing set never exceeds the window, NACKs stay inside it.
        let mut rng = TestRng(0x5eed_4002);
        let mut nacker = generator();
        let mut now = 0u64;
        let mut out = [SeqNo(0); 200];
        let mut seq = SeqNo(0);
        for _ in 0..50_000 {
            now += rng.below(20_000);
            seq = if rng.below(20) == 0 {
                SeqNo(rng.next_u64() as u16)
            } else {
                seq.wrapping_add(rng.below(24) as u16).wrapping_sub(4)
            };
            nacker.handle_packet(now, seq, rng.below(50) == 0);
            if rng.below(3) == 0 {
                nacker.handle_timeout(now);
                let n = nacker.poll_nack(&mut out);
                assert!(n <= 160);
            }
            assert!(nacker.missing() <= 160);
        }
    }

    #[test]
    fn retransmit_buffer_ring_age_and_backoff() {
        let mut b = RetransmitBuffer::new(100, 64, DEFAULT_MIN_QUEUE_US).expect("valid");
        b.insert(0, SeqNo(65535), &[1, 2, 3]).expect("fits");
        b.insert(0, SeqNo(0), &[4]).expect("fits");
        assert_eq!(b.insert(0, SeqNo(1), &[0; 65]), Err(StoreDrop::TooLarge));
        assert_eq!(b.resend(10_000, SeqNo(65535)), Ok(&[1u8, 2, 3][..]));
        assert_eq!(b.resend(49_999, SeqNo(65535)), Err(ResendSkip::BackOff));
        assert_eq!(b.resend(50_000, SeqNo(65535)), Ok(&[1u8, 2, 3][..]));
        // Back-off doubled to 80 ms.
        assert_eq!(b.resend(129_999, SeqNo(65535)), Err(ResendSkip::BackOff));
        assert_eq!(b.get(130_000, SeqNo(65535)), Some(&[1u8, 2, 3][..]));
        assert_eq!(b.resend(200_001, SeqNo(0)), Err(ResendSkip::Expired));
        assert_eq!(b.resend(0, SeqNo(5)), Err(ResendSkip::NotFound));
        // Capacity rounds up to 128: seq 127 overwrites 65535 (the ring grew
        // from 32 to 128 slots trying to keep both).
        assert_eq!(b.slots(), INITIAL_SLOTS);
        b.insert(0, SeqNo(127), &[9]).expect("fits");
        assert_eq!(b.slots(), 128);
        assert_eq!(b.get(0, SeqNo(65535)), None);
        b.drop_older_than(SeqNo(127));
        assert_eq!(b.get(0, SeqNo(0)), None);
        assert_eq!(b.get(0, SeqNo(127)), Some(&[9u8][..]));
        // Keep time follows RTT + 100 ms, clamped and smoothed.
        for _ in 0..50 {
            b.update_rtt(300_000);
        }
        assert!((399_000..=400_000).contains(&b.max_age_us()));
        for _ in 0..50 {
            b.update_rtt(5_000_000);
        }
        assert!(b.max_age_us() <= 1_000_000 && b.max_age_us() > 990_000);
        b.clear();
        assert_eq!(b.get(0, SeqNo(127)), None);
    }

    #[test]
    fn retransmit_buffer_grows_with_the_rate_and_keeps_what_it_holds() {
        // 100 packets/s kept 200 ms: 20 packets live at once, 32 slots do.
        let mut b = RetransmitBuffer::new(512, 100, DEFAULT_MIN_QUEUE_US).expect("valid");
        for n in 0..1000u32 {
            let seq = SeqNo(n as u16);
            b.insert(u64::from(n) * 10_000, seq, &n.to_be_bytes())
                .expect("fits");
        }
        assert_eq!(b.slots(), INITIAL_SLOTS);
        // 2,000 packets/s: 400 live at once, so the ring doubles to 512 and
        // every packet younger than the keep time stays retrievable across
        // each doubling.
        let t0 = 10_000_000;
        for n in 0..3000u32 {
            let now = t0 + u64::from(n) * 500;
            let seq = SeqNo((1000 + n) as u16);
            b.insert(now, seq, &n.to_be_bytes()).expect("fits");
            if n >= 400 {
                let back = n - 399;
                let old = SeqNo((1000 + back) as u16);
                assert_eq!(
                    b.get(now, old),
                    Some(&back.to_be_bytes()[..]),
                    "packet {back} at {n}"
                );
            }
        }
        assert_eq!(b.slots(), 512);
        // Never beyond the capacity: the oldest packets are overwritten.
        let mut small = RetransmitBuffer::new(64, 8, 1_000_000).expect("valid");
        for n in 0..200u16 {
            small.insert(0, SeqNo(n), &[n as u8]).expect("fits");
        }
        assert_eq!(small.slots(), 64);
        assert_eq!(small.get(0, SeqNo(199)), Some(&[199u8][..]));
        assert_eq!(small.get(0, SeqNo(135)), None);
    }

    /// Sender with a RetransmitBuffer, a lossy link with 30 ms latency, a
    /// receiver with a NackGenerator; NACKs travel as RTCP, answers as RTX.
    /// Every dropped packet is recovered, including one whose first
    /// retransmission is lost too (recovered by the second NACK).
    #[test]
    fn scenario_lossy_link_recovers_everything() {
        const MEDIA_SSRC: Ssrc = Ssrc(0x1234_5678);
        const RTX_SSRC: Ssrc = Ssrc(0x8765_4321);
        const RECEIVER_SSRC: Ssrc = Ssrc(1);
        const LATENCY_US: u64 = 30_000;
        const TOTAL: u16 = 600;

        struct InFlight {
            deliver_at: u64,
            bytes: Vec<u8>,
            to_receiver: bool,
        }

        let mut rng = TestRng(0x5eed_5001);
        let first_seq = 65_000u16; // wraps during the run
        let mut dropped = std::collections::BTreeSet::new();
        let mut drop_rtx_once = std::collections::BTreeSet::new();
        for i in 10..TOTAL - 10 {
            if rng.below(12) == 0 {
                let s = first_seq.wrapping_add(i);
                dropped.insert(s);
                if rng.below(4) == 0 {
                    drop_rtx_once.insert(s);
                }
            }
        }
        // A burst of 5.
        for i in 300..305 {
            dropped.insert(first_seq.wrapping_add(i));
        }
        assert!(!drop_rtx_once.is_empty());

        // With 30 ms each way, a second NACK (155 ms after detection) reaches
        // the sender about 235 ms after the original was sent: keep 500 ms.
        let mut sender_buf = RetransmitBuffer::new(512, 1500, 500_000).expect("valid");
        let mut nacker = generator();
        let mut rtx_seq = SeqNo(500);
        let mut link: Vec<InFlight> = Vec::new();
        let mut received = std::collections::BTreeSet::new();
        let mut recovered_via_rtx = 0;
        let mut now = 0u64;
        let mut next_send = 0u16;
        let end = u64::from(TOTAL) * 20_000 + 1_000_000;

        while now < end {
            // Sender: one packet every 20 ms.
            if next_send < TOTAL && now >= u64::from(next_send) * 20_000 {
                let seq = SeqNo(first_seq.wrapping_add(next_send));
                let mut pkt = [0u8; 40];
                pkt[0] = 0x80;
                pkt[12..].fill(seq.0 as u8);
                let mut v = RtpViewMut::parse(&mut pkt).expect("valid");
                v.set_pt(Pt(96));
                v.set_seq(seq);
                v.set_timestamp(u32::from(next_send) * 1800);
                v.set_ssrc(MEDIA_SSRC);
                sender_buf.insert(now, seq, &pkt).expect("fits");
                if !dropped.contains(&seq.0) {
                    link.push(InFlight {
                        deliver_at: now + LATENCY_US,
                        bytes: pkt.to_vec(),
                        to_receiver: true,
                    });
                }
                next_send += 1;
            }
            // Deliver everything due.
            let mut i = 0;
            while i < link.len() {
                if link[i].deliver_at > now {
                    i += 1;
                    continue;
                }
                let m = link.swap_remove(i);
                if m.to_receiver {
                    let mut bytes = m.bytes;
                    let v = rtp::parse(&bytes).expect("valid RTP");
                    let (seq, is_rtx) = if v.ssrc() == RTX_SSRC {
                        let (len, osn) = rtx::unwrap_in_place(&mut bytes, Pt(96), MEDIA_SSRC)
                            .expect("valid RTX");
                        bytes.truncate(len);
                        (osn, true)
                    } else {
                        (v.seq(), false)
                    };
                    let v = RtpView::parse(&bytes).expect("restored");
                    assert_eq!((v.ssrc(), v.pt(), v.seq()), (MEDIA_SSRC, Pt(96), seq));
                    assert!(
                        v.payload().iter().all(|&b| b == seq.0 as u8),
                        "payload intact"
                    );
                    let a = nacker.handle_packet(now, seq, false);
                    if is_rtx {
                        assert_eq!(a, Arrival::Recovered { nacked: true });
                        recovered_via_rtx += 1;
                    }
                    received.insert(seq.0);
                } else {
                    // Sender gets RTCP: answer each NACKed number with RTX.
                    for p in rtcp::parse(&m.bytes) {
                        let Ok(RtcpPacket::Nack(n)) = p else {
                            panic!("expected a NACK");
                        };
                        assert_eq!(n.media_ssrc(), MEDIA_SSRC);
                        for s in n.lost() {
                            let Ok(orig) = sender_buf.resend(now, s) else {
                                continue;
                            };
                            let orig = RtpView::parse(orig).expect("stored RTP");
                            let mut out = [0u8; 1500];
                            let len = rtx::wrap(&orig, Pt(97), RTX_SSRC, rtx_seq, &mut out)
                                .expect("fits");
                            rtx_seq = rtx_seq.wrapping_add(1);
                            if drop_rtx_once.remove(&s.0) {
                                continue;
                            }
                            link.push(InFlight {
                                deliver_at: now + LATENCY_US,
                                bytes: out[..len].to_vec(),
                                to_receiver: true,
                            });
                        }
                    }
                }
            }
            // Receiver timers.
            if nacker.poll_timeout().is_some_and(|t| t <= now) {
                nacker.handle_timeout(now);
                let mut seqs = [SeqNo(0); 160];
                let n = nacker.poll_nack(&mut seqs);
                if n > 0 {
                    let mut out = [0u8; 1500];
                    let len =
                        rtcp::feedback::write_nack(&mut out, RECEIVER_SSRC, MEDIA_SSRC, &seqs[..n])
                            .expect("fits");
                    link.push(InFlight {
                        deliver_at: now + LATENCY_US,
                        bytes: out[..len].to_vec(),
                        to_receiver: false,
                    });
                }
            }
            now += 1_000;
        }
        assert_eq!(received.len(), usize::from(TOTAL), "every packet arrived");
        assert_eq!(recovered_via_rtx, dropped.len());
        assert!(
            drop_rtx_once.is_empty(),
            "every doubly-lost packet was retried"
        );
    }
}
