//! The synthetic media this peer sends, and how an echoed frame is checked.
//!
//! Every frame carries its index at a fixed offset and otherwise bytes that
//! are a function of that index, so an echoed frame can be regenerated and
//! compared byte for byte.
//!
//! * Audio ("Opus", 20 ms): an Opus TOC byte, `AUD`, the index (u32 BE),
//!   then filler; 60 to 99 bytes.
//! * Video ("VP8", 30 fps): a VP8 payload header — every 30th frame (and
//!   the one after a keyframe request) a key frame with the start code and a
//!   320x240 size, otherwise an inter frame — `VID` and the index at offset
//!   13, then filler; 1,800 to 3,600 bytes, so each frame spans several RTP
//!   packets.

use std::time::Duration;

/// Audio frame duration.
pub(crate) const AUDIO_PTIME: Duration = Duration::from_millis(20);
/// RTP clock ticks per audio frame (48 kHz).
pub(crate) const AUDIO_TICKS: u64 = 960;
/// Video frame interval (30 fps).
pub(crate) const VIDEO_INTERVAL: Duration = Duration::from_micros(33_333);
/// RTP clock ticks per video frame (90 kHz).
pub(crate) const VIDEO_TICKS: u64 = 3000;
/// Width and height written into key frames.
pub(crate) const VIDEO_SIZE: (u16, u16) = (320, 240);

const AUDIO_TAG: &[u8; 3] = b"AUD";
const VIDEO_TAG: &[u8; 3] = b"VID";
const VIDEO_INDEX_AT: usize = 13;

/// Audio frame number `index`.
pub(crate) fn audio_frame(index: u32) -> Vec<u8> {
    let len = 60 + (index % 40) as usize;
    let mut data = Vec::with_capacity(len);
    // TOC: config 31 (CELT fullband 20 ms), mono, one frame.
    data.push(0xf8);
    data.extend_from_slice(AUDIO_TAG);
    data.extend_from_slice(&index.to_be_bytes());
    fill(&mut data, len, index);
    data
}

/// Video frame number `index`; `key` makes it a key frame.
pub(crate) fn video_frame(index: u32, key: bool) -> Vec<u8> {
    let len = 1800 + (index % 7) as usize * 300;
    let mut data = Vec::with_capacity(len);
    // Frame tag (RFC 6386 §9.1): key frame flag (0 = key), version 0,
    // show_frame 1, first partition size 100.
    let tag: u32 = u32::from(!key) | (1 << 4) | (100 << 5);
    data.extend_from_slice(&tag.to_le_bytes()[..3]);
    if key {
        data.extend_from_slice(&[0x9d, 0x01, 0x2a]);
        data.extend_from_slice(&VIDEO_SIZE.0.to_le_bytes());
        data.extend_from_slice(&VIDEO_SIZE.1.to_le_bytes());
    } else {
        data.resize(VIDEO_INDEX_AT - VIDEO_TAG.len(), 0);
    }
    data.extend_from_slice(VIDEO_TAG);
    data.extend_from_slice(&index.to_be_bytes());
    fill(&mut data, len, index);
    data
}

fn fill(data: &mut Vec<u8>, len: usize, index: u32) {
    let seed = index.wrapping_mul(31);
    while data.len() < len {
        let k = data.len() as u32;
        data.push((seed.wrapping_add(k.wrapping_mul(7)) & 0xff) as u8);
    }
}

/// Whether an echoed frame is a frame this peer sent, byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Identical to sent frame number `index`.
    Match(u32),
    /// Carries an index but differs from that frame.
    Corrupt,
    /// Not recognisable at all.
    Foreign,
}

/// Check an echoed audio frame.
pub(crate) fn check_audio(data: &[u8]) -> Verdict {
    if data.len() < 8 || &data[1..4] != AUDIO_TAG {
        return Verdict::Foreign;
    }
    let index = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
    if audio_frame(index) == data {
        Verdict::Match(index)
    } else {
        Verdict::Corrupt
    }
}

/// Check an echoed video frame.
pub(crate) fn check_video(data: &[u8]) -> Verdict {
    let at = VIDEO_INDEX_AT;
    if data.len() < at + 4 || &data[at - 3..at] != VIDEO_TAG {
        return Verdict::Foreign;
    }
    let index = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
    let key = data[0] & 1 == 0;
    if video_frame(index, key) == data {
        Verdict::Match(index)
    } else {
        Verdict::Corrupt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        for i in [0, 1, 29, 30, 1000, u32::MAX] {
            assert_eq!(check_audio(&audio_frame(i)), Verdict::Match(i));
            assert_eq!(check_video(&video_frame(i, true)), Verdict::Match(i));
            assert_eq!(check_video(&video_frame(i, false)), Verdict::Match(i));
        }
    }

    #[test]
    fn damage_is_detected() {
        let mut a = audio_frame(5);
        let last = a.len() - 1;
        a[last] ^= 1;
        assert_eq!(check_audio(&a), Verdict::Corrupt);
        let mut v = video_frame(7, false);
        v.truncate(v.len() - 1);
        assert_eq!(check_video(&v), Verdict::Corrupt);
        assert_eq!(check_video(b"hello"), Verdict::Foreign);
    }

    #[test]
    fn key_frames_look_like_vp8_key_frames() {
        let k = video_frame(3, true);
        assert_eq!(k[0] & 1, 0);
        assert_eq!(&k[3..6], &[0x9d, 0x01, 0x2a]);
        assert_eq!(u16::from_le_bytes([k[6], k[7]]), 320);
        assert_eq!(video_frame(3, false)[0] & 1, 1);
    }
}
