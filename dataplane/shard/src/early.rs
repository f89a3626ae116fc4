//! Connectivity checks that arrive before their PeerConnection.
//!
//! Control hands a client its answer as soon as the answer is merged, and
//! tells the shard to create the PeerConnection at the same time; a shard
//! busy relaying may read that command a few milliseconds later than the
//! client's first check arrives. jsfu is ICE-lite and never sends checks of
//! its own, so a dropped first check costs the client its retransmission
//! timeout (about 250–500 ms with common stacks) before media can start. The
//! shard keeps the latest such checks in a small fixed ring and replays them
//! when the PeerConnection with that ufrag is created. Nothing is allocated
//! per packet: the ring is allocated once per shard.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Checks kept at most (the oldest is overwritten).
pub(crate) const EARLY_SLOTS: usize = 32;
/// Largest check kept (browsers send 100–200 bytes).
pub(crate) const EARLY_BYTES: usize = 512;
/// How long a kept check may wait for its PeerConnection.
pub(crate) const EARLY_MAX_AGE: Duration = Duration::from_millis(500);
/// Longest local ufrag kept (jsfu's own are 4 characters).
const UFRAG_MAX: usize = 32;

/// One kept check; `at` is `None` for a free slot.
struct Early {
    at: Option<Instant>,
    from: SocketAddr,
    ufrag: [u8; UFRAG_MAX],
    ufrag_len: usize,
    len: usize,
    bytes: [u8; EARLY_BYTES],
}

/// A check taken back out of the ring.
pub(crate) struct Replay {
    /// Where it came from.
    pub(crate) from: SocketAddr,
    len: usize,
    bytes: [u8; EARLY_BYTES],
}

impl Replay {
    /// The STUN message as received.
    pub(crate) fn packet(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The ring of checks for unknown local ufrags.
pub(crate) struct EarlyStun {
    slots: Box<[Early]>,
    next: usize,
}

impl EarlyStun {
    pub(crate) fn new() -> Self {
        let slots = (0..EARLY_SLOTS)
            .map(|_| Early {
                at: None,
                from: SocketAddr::from(([0, 0, 0, 0], 0)),
                ufrag: [0; UFRAG_MAX],
                ufrag_len: 0,
                len: 0,
                bytes: [0; EARLY_BYTES],
            })
            .collect();
        Self { slots, next: 0 }
    }

    /// Keeps a check whose local ufrag (`ufrag`) names no PeerConnection
    /// yet; `false` when it cannot be kept (too large, ufrag too long).
    pub(crate) fn keep(
        &mut self,
        now: Instant,
        from: SocketAddr,
        ufrag: &[u8],
        packet: &[u8],
    ) -> bool {
        if packet.len() > EARLY_BYTES || ufrag.is_empty() || ufrag.len() > UFRAG_MAX {
            return false;
        }
        let slot = &mut self.slots[self.next];
        self.next = (self.next + 1) % EARLY_SLOTS;
        slot.at = Some(now);
        slot.from = from;
        slot.ufrag[..ufrag.len()].copy_from_slice(ufrag);
        slot.ufrag_len = ufrag.len();
        slot.bytes[..packet.len()].copy_from_slice(packet);
        slot.len = packet.len();
        true
    }

    /// Takes the oldest kept check for `ufrag` that is not older than
    /// [`EARLY_MAX_AGE`] at `now` (expired ones are forgotten on the way).
    pub(crate) fn take(&mut self, now: Instant, ufrag: &[u8]) -> Option<Replay> {
        let mut oldest: Option<(usize, Instant)> = None;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let Some(at) = slot.at else {
                continue;
            };
            if now.saturating_duration_since(at) > EARLY_MAX_AGE {
                slot.at = None;
                continue;
            }
            if slot.ufrag[..slot.ufrag_len] == *ufrag && oldest.is_none_or(|(_, t)| at < t) {
                oldest = Some((i, at));
            }
        }
        let (i, _) = oldest?;
        let slot = &mut self.slots[i];
        slot.at = None;
        Some(Replay {
            from: slot.from,
            len: slot.len,
            bytes: slot.bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn checks_wait_for_their_ufrag_in_order_and_expire() {
        let mut ring = EarlyStun::new();
        let t0 = Instant::now();
        assert!(ring.keep(t0, addr(1), b"abcd", b"first"));
        assert!(ring.keep(t0 + Duration::from_millis(1), addr(2), b"wxyz", b"other"));
        assert!(ring.keep(t0 + Duration::from_millis(2), addr(1), b"abcd", b"second"));
        let later = t0 + Duration::from_millis(10);
        let r = ring.take(later, b"abcd").expect("kept");
        assert_eq!((r.from, r.packet()), (addr(1), &b"first"[..]));
        let r = ring.take(later, b"abcd").expect("kept");
        assert_eq!(r.packet(), b"second");
        assert!(ring.take(later, b"abcd").is_none(), "each is replayed once");
        // Too old: forgotten.
        assert!(ring.take(t0 + EARLY_MAX_AGE * 2, b"wxyz").is_none());
        // Too large, or no ufrag: not kept.
        assert!(!ring.keep(t0, addr(3), b"abcd", &[0; EARLY_BYTES + 1]));
        assert!(!ring.keep(t0, addr(3), b"", b"x"));
        // A full ring overwrites the oldest.
        for i in 0..EARLY_SLOTS + 1 {
            let ufrag = if i == 0 { &b"gone"[..] } else { &b"kept"[..] };
            assert!(ring.keep(later, addr(4), ufrag, b"check"));
        }
        assert!(ring.take(later, b"gone").is_none());
        let mut n = 0;
        while ring.take(later, b"kept").is_some() {
            n += 1;
        }
        assert_eq!(n, EARLY_SLOTS);
    }
}
