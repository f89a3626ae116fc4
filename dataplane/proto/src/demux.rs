//! First-byte demultiplexing of a UDP datagram (RFC 7983, RFC 5761).
//!
//! One socket carries STUN, DTLS, RTP and RTCP. [`classify`] looks at the first
//! byte (RFC 7983 §7) and, for RTP/RTCP, at the payload-type byte (RFC 5761 §4)
//! to say which protocol machine gets the datagram. It reads at most two bytes
//! and the length; it never parses further, never allocates and keeps no state.

/// Largest RTP/RTCP datagram accepted (media.md §5.1); larger ones are dropped.
pub const MAX_MEDIA_DATAGRAM: usize = 1500;

/// Smallest RTP packet: the fixed header (RFC 3550 §5.1).
pub const MIN_RTP_LEN: usize = 12;

/// Smallest RTCP packet: the common header plus the sender SSRC (RFC 3550 §6.4).
pub const MIN_RTCP_LEN: usize = 8;

/// The protocol a datagram belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// STUN (first byte 0..=3): ICE connectivity checks.
    Stun,
    /// DTLS record (first byte 20..=63): handshake, alerts, SCTP data.
    Dtls,
    /// SRTP packet (first byte 128..=191, payload type outside 64..=95).
    Rtp,
    /// SRTCP packet (first byte 128..=191, packet type 192..=223).
    Rtcp,
}

/// Why a datagram was dropped by the demultiplexer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum DemuxDrop {
    /// The datagram is empty.
    #[error("empty datagram")]
    Empty,
    /// The first byte is in no range we serve (ZRTP, TURN channels, QUIC, ...).
    #[error("first byte outside the STUN, DTLS and RTP ranges")]
    UnknownFirstByte,
    /// RTP shorter than its fixed header.
    #[error("RTP packet shorter than 12 bytes")]
    ShortRtp,
    /// RTCP shorter than its common header and SSRC.
    #[error("RTCP packet shorter than 8 bytes")]
    ShortRtcp,
    /// RTP or RTCP larger than [`MAX_MEDIA_DATAGRAM`].
    #[error("media datagram larger than 1500 bytes")]
    Oversize,
}

/// Classifies a datagram by its first byte (RFC 7983 §7) and, for RTP/RTCP, by
/// the second byte (RFC 5761 §4: packet types 192..=223 are RTCP).
///
/// This is the fuzzing entry point of the module; it accepts any input.
pub fn classify(datagram: &[u8]) -> Result<PacketKind, DemuxDrop> {
    let Some(&first) = datagram.first() else {
        return Err(DemuxDrop::Empty);
    };
    match first {
        0..=3 => Ok(PacketKind::Stun),
        20..=63 => Ok(PacketKind::Dtls),
        128..=191 => classify_media(datagram),
        _ => Err(DemuxDrop::UnknownFirstByte),
    }
}

fn classify_media(datagram: &[u8]) -> Result<PacketKind, DemuxDrop> {
    if datagram.len() > MAX_MEDIA_DATAGRAM {
        return Err(DemuxDrop::Oversize);
    }
    let second = datagram.get(1).copied().ok_or(DemuxDrop::ShortRtcp)?;
    if is_rtcp_packet_type(second) {
        if datagram.len() < MIN_RTCP_LEN {
            return Err(DemuxDrop::ShortRtcp);
        }
        Ok(PacketKind::Rtcp)
    } else {
        if datagram.len() < MIN_RTP_LEN {
            return Err(DemuxDrop::ShortRtp);
        }
        Ok(PacketKind::Rtp)
    }
}

/// True when the second byte of an RTP/RTCP datagram is an RTCP packet type:
/// 192..=223, i.e. an RTP marker bit plus payload type 64..=95 (RFC 5761 §4).
pub fn is_rtcp_packet_type(second_byte: u8) -> bool {
    (192..=223).contains(&second_byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_byte_ranges_follow_rfc7983() {
        let mut rtp = [0u8; 12];
        rtp[1] = 96;
        for first in 0..=255u8 {
            rtp[0] = first;
            let got = classify(&rtp);
            let want = match first {
                0..=3 => Ok(PacketKind::Stun),
                20..=63 => Ok(PacketKind::Dtls),
                128..=191 => Ok(PacketKind::Rtp),
                _ => Err(DemuxDrop::UnknownFirstByte),
            };
            assert_eq!(got, want, "first byte {first}");
        }
    }

    #[test]
    fn rtcp_by_packet_type_per_rfc5761() {
        // Sender report (200), receiver report (201), feedback (205, 206).
        for pt in [192u8, 200, 201, 205, 206, 223] {
            let pkt = [0x80, pt, 0, 1, 0, 0, 0, 1];
            assert_eq!(classify(&pkt), Ok(PacketKind::Rtcp), "pt {pt}");
        }
        // Payload type 96 with and without the marker bit, and the edges.
        for second in [96u8, 96 | 0x80, 191, 224, 0] {
            let mut pkt = [0u8; 12];
            pkt[0] = 0x80;
            pkt[1] = second;
            assert_eq!(classify(&pkt), Ok(PacketKind::Rtp), "second {second}");
        }
    }

    #[test]
    fn short_and_oversize_media_are_dropped() {
        assert_eq!(classify(&[]), Err(DemuxDrop::Empty));
        assert_eq!(classify(&[0x80]), Err(DemuxDrop::ShortRtcp));
        assert_eq!(classify(&[0x80, 96, 0, 0]), Err(DemuxDrop::ShortRtp));
        assert_eq!(classify(&[0x80, 200, 0, 1]), Err(DemuxDrop::ShortRtcp));
        let mut big = vec![0u8; MAX_MEDIA_DATAGRAM + 1];
        big[0] = 0x80;
        big[1] = 96;
        assert_eq!(classify(&big), Err(DemuxDrop::Oversize));
        big.truncate(MAX_MEDIA_DATAGRAM);
        assert_eq!(classify(&big), Ok(PacketKind::Rtp));
        // STUN and DTLS are not limited by the media size cap.
        let mut stun = vec![0u8; 2000];
        stun[0] = 0x01;
        assert_eq!(classify(&stun), Ok(PacketKind::Stun));
        assert_eq!(classify(&[22]), Ok(PacketKind::Dtls));
    }
}
