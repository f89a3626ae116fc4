//! Video payload descriptors and keyframe detection (media.md §7.2, §7.3, §7.5).
//!
//! VP8 (RFC 7741 §4.2), VP9 (RFC 9628 §4.2), H.264 (RFC 6184 §5), H.265
//! (RFC 7798 §4) and AV1 (AOM "RTP Payload Format for AV1" §4). Parsers read
//! the payload in place and never allocate; the VP8 rewriters write the picture
//! id and TL0PICIDX in place.

/// Why a payload descriptor could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum CodecDrop {
    /// The payload ends inside the descriptor or NAL/OBU header.
    #[error("payload too short for its descriptor")]
    TooShort,
    /// A field has a value the format forbids.
    #[error("malformed payload descriptor")]
    Malformed,
}

/// The video codecs the relay understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// VP8.
    Vp8,
    /// VP9.
    Vp9,
    /// H.264 / AVC.
    H264,
    /// AV1.
    Av1,
    /// H.265 / HEVC.
    H265,
}

impl VideoCodec {
    /// Every codec, for iteration.
    pub const ALL: [Self; 5] = [Self::Vp8, Self::Vp9, Self::H264, Self::Av1, Self::H265];

    /// The codec for an SDP encoding name (`a=rtpmap`), case-insensitive.
    pub fn from_encoding_name(name: &str) -> Option<Self> {
        [
            ("vp8", Self::Vp8),
            ("vp9", Self::Vp9),
            ("h264", Self::H264),
            ("av1", Self::Av1),
            ("h265", Self::H265),
            ("hevc", Self::H265),
        ]
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, c)| c)
    }
}

/// What the relay needs to know about one video payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PayloadInfo {
    /// The packet starts (or carries the parameter sets of) a keyframe, as
    /// media.md §7.3 defines it per codec.
    pub keyframe: bool,
    /// Temporal layer id, when the descriptor carries one (VP8, VP9).
    pub temporal_id: Option<u8>,
    /// Spatial layer id (VP9).
    pub spatial_id: Option<u8>,
    /// Switching-up point (VP9 U bit) or layer sync (VP8 Y bit).
    pub switching_up: bool,
    /// First packet of a frame (VP8 S with partition 0, VP9 B).
    pub start_of_frame: bool,
    /// Last packet of a frame (VP9 E); `false` where unknown.
    pub end_of_frame: bool,
}

/// Parses the payload of `codec`; the fuzzing entry point of this module.
pub fn parse_payload(codec: VideoCodec, payload: &[u8]) -> Result<PayloadInfo, CodecDrop> {
    match codec {
        VideoCodec::Vp8 => {
            let d = Vp8Descriptor::parse(payload)?;
            Ok(PayloadInfo {
                keyframe: d.is_keyframe(payload),
                temporal_id: d.tid,
                spatial_id: None,
                switching_up: d.layer_sync,
                start_of_frame: d.start_of_partition && d.partition_id == 0,
                end_of_frame: false,
            })
        }
        VideoCodec::Vp9 => {
            let d = Vp9Descriptor::parse(payload)?;
            Ok(PayloadInfo {
                keyframe: d.is_keyframe(),
                temporal_id: d.tid,
                spatial_id: d.sid,
                switching_up: d.switching_up,
                start_of_frame: d.start_of_frame,
                end_of_frame: d.end_of_frame,
            })
        }
        VideoCodec::H264 => Ok(PayloadInfo {
            keyframe: H264Nals::scan(payload)?.is_keyframe(),
            ..PayloadInfo::default()
        }),
        VideoCodec::H265 => Ok(PayloadInfo {
            keyframe: H265Nals::scan(payload)?.is_keyframe(),
            ..PayloadInfo::default()
        }),
        VideoCodec::Av1 => Ok(PayloadInfo {
            keyframe: av1_is_keyframe(payload)?,
            ..PayloadInfo::default()
        }),
    }
}

/// Whether `payload` is a keyframe for `codec` (malformed payloads are not).
pub fn is_keyframe(codec: VideoCodec, payload: &[u8]) -> bool {
    parse_payload(codec, payload).is_ok_and(|i| i.keyframe)
}

/// The VP8 payload descriptor (RFC 7741 §4.2) with the offsets of its
/// rewritable fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Descriptor {
    /// N: non-reference frame.
    pub non_reference: bool,
    /// S: start of a VP8 partition.
    pub start_of_partition: bool,
    /// PID: partition index.
    pub partition_id: u8,
    /// PictureID (7 or 15 bits).
    pub picture_id: Option<u16>,
    /// Whether the PictureID uses 15 bits (M bit).
    pub picture_id_long: bool,
    /// TL0PICIDX.
    pub tl0picidx: Option<u8>,
    /// Temporal layer index (when T is set).
    pub tid: Option<u8>,
    /// Y: layer sync.
    pub layer_sync: bool,
    /// KEYIDX (when K is set).
    pub key_idx: Option<u8>,
    /// Length of the descriptor; the VP8 payload header follows.
    pub len: usize,
    picture_id_at: usize,
    tl0picidx_at: usize,
}

impl Vp8Descriptor {
    /// Parses the descriptor at the start of `payload`.
    pub fn parse(payload: &[u8]) -> Result<Self, CodecDrop> {
        let b = |i: usize| payload.get(i).copied().ok_or(CodecDrop::TooShort);
        let b0 = b(0)?;
        let mut d = Self {
            non_reference: b0 & 0x20 != 0,
            start_of_partition: b0 & 0x10 != 0,
            partition_id: b0 & 0x07,
            picture_id: None,
            picture_id_long: false,
            tl0picidx: None,
            tid: None,
            layer_sync: false,
            key_idx: None,
            len: 1,
            picture_id_at: 0,
            tl0picidx_at: 0,
        };
        if b0 & 0x80 == 0 {
            return Ok(d);
        }
        let x = b(1)?;
        let mut at = 2;
        if x & 0x80 != 0 {
            let p0 = b(at)?;
            d.picture_id_at = at;
            if p0 & 0x80 != 0 {
                d.picture_id_long = true;
                d.picture_id = Some((u16::from(p0 & 0x7f) << 8) | u16::from(b(at + 1)?));
                at += 2;
            } else {
                d.picture_id = Some(u16::from(p0));
                at += 1;
            }
        }
        if x & 0x40 != 0 {
            d.tl0picidx_at = at;
            d.tl0picidx = Some(b(at)?);
            at += 1;
        }
        if x & 0x30 != 0 {
            let t = b(at)?;
            if x & 0x20 != 0 {
                d.tid = Some(t >> 6);
                d.layer_sync = t & 0x20 != 0;
            }
            if x & 0x10 != 0 {
                d.key_idx = Some(t & 0x1f);
            }
            at += 1;
        }
        d.len = at;
        Ok(d)
    }

    /// Whether the payload starts a key frame: first packet of partition 0 and
    /// the VP8 payload header's P bit clear with the key frame start code
    /// (RFC 7741 §4.3, RFC 6386 §9.1).
    pub fn is_keyframe(&self, payload: &[u8]) -> bool {
        if !self.start_of_partition || self.partition_id != 0 {
            return false;
        }
        match payload.get(self.len..self.len + 6) {
            Some(h) => h[0] & 0x01 == 0 && h[3..6] == [0x9d, 0x01, 0x2a],
            None => false,
        }
    }

    /// Writes a new PictureID in place, keeping the descriptor's width
    /// (7-bit ids are taken mod 128). Does nothing without a PictureID.
    pub fn write_picture_id(&self, payload: &mut [u8], id: u16) {
        if self.picture_id.is_none() {
            return;
        }
        if self.picture_id_long {
            if let Some(p) = payload.get_mut(self.picture_id_at..self.picture_id_at + 2) {
                p[0] = 0x80 | ((id >> 8) as u8 & 0x7f);
                p[1] = id as u8;
            }
        } else if let Some(p) = payload.get_mut(self.picture_id_at) {
            *p = id as u8 & 0x7f;
        }
    }

    /// Writes a new TL0PICIDX in place. Does nothing without one.
    pub fn write_tl0picidx(&self, payload: &mut [u8], idx: u8) {
        if self.tl0picidx.is_some()
            && let Some(p) = payload.get_mut(self.tl0picidx_at)
        {
            *p = idx;
        }
    }
}

/// The VP9 payload descriptor (RFC 9628 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp9Descriptor {
    /// P: inter-picture predicted.
    pub inter_predicted: bool,
    /// F: flexible mode.
    pub flexible: bool,
    /// B: start of a frame.
    pub start_of_frame: bool,
    /// E: end of a frame.
    pub end_of_frame: bool,
    /// Z: not a reference for upper spatial layers.
    pub not_upper_reference: bool,
    /// PictureID (7 or 15 bits).
    pub picture_id: Option<u16>,
    /// Temporal layer id (L present).
    pub tid: Option<u8>,
    /// U: switching-up point.
    pub switching_up: bool,
    /// Spatial layer id (L present).
    pub sid: Option<u8>,
    /// D: inter-layer dependency.
    pub inter_layer_dependency: bool,
    /// TL0PICIDX (non-flexible mode with L).
    pub tl0picidx: Option<u8>,
    /// V: a scalability structure is present.
    pub has_scalability_structure: bool,
    /// Length of the descriptor.
    pub len: usize,
}

impl Vp9Descriptor {
    /// Parses the descriptor at the start of `payload`.
    pub fn parse(payload: &[u8]) -> Result<Self, CodecDrop> {
        let b = |i: usize| payload.get(i).copied().ok_or(CodecDrop::TooShort);
        let b0 = b(0)?;
        let mut d = Self {
            inter_predicted: b0 & 0x40 != 0,
            flexible: b0 & 0x10 != 0,
            start_of_frame: b0 & 0x08 != 0,
            end_of_frame: b0 & 0x04 != 0,
            not_upper_reference: b0 & 0x01 != 0,
            picture_id: None,
            tid: None,
            switching_up: false,
            sid: None,
            inter_layer_dependency: false,
            tl0picidx: None,
            has_scalability_structure: b0 & 0x02 != 0,
            len: 1,
        };
        let mut at = 1;
        if b0 & 0x80 != 0 {
            let p0 = b(at)?;
            if p0 & 0x80 != 0 {
                d.picture_id = Some((u16::from(p0 & 0x7f) << 8) | u16::from(b(at + 1)?));
                at += 2;
            } else {
                d.picture_id = Some(u16::from(p0));
                at += 1;
            }
        }
        if b0 & 0x20 != 0 {
            let l = b(at)?;
            d.tid = Some(l >> 5);
            d.switching_up = l & 0x10 != 0;
            d.sid = Some((l >> 1) & 0x07);
            d.inter_layer_dependency = l & 0x01 != 0;
            at += 1;
            if !d.flexible {
                d.tl0picidx = Some(b(at)?);
                at += 1;
            }
        }
        if d.flexible && d.inter_predicted {
            // Up to three reference indices, each with a "next" bit.
            for i in 0.. {
                let r = b(at)?;
                at += 1;
                if r & 0x01 == 0 {
                    break;
                }
                if i == 2 {
                    return Err(CodecDrop::Malformed);
                }
            }
        }
        if d.has_scalability_structure {
            let ss = b(at)?;
            at += 1;
            let spatial_layers = usize::from(ss >> 5) + 1;
            if ss & 0x10 != 0 {
                at += 4 * spatial_layers;
            }
            if ss & 0x08 != 0 {
                let groups = b(at)?;
                at += 1;
                for _ in 0..groups {
                    let g = b(at)?;
                    at += 1 + usize::from((g >> 2) & 0x03);
                }
            }
            if at > payload.len() {
                return Err(CodecDrop::TooShort);
            }
        }
        d.len = at;
        Ok(d)
    }

    /// Whether this packet starts a key frame: not inter-predicted, start of
    /// frame, on the base spatial layer.
    pub fn is_keyframe(&self) -> bool {
        !self.inter_predicted && self.start_of_frame && self.sid.unwrap_or(0) == 0
    }
}

/// The NAL unit types found in one H.264 RTP payload (RFC 6184 §5.4): single
/// NAL units, STAP-A/STAP-B aggregates and starting FU-A/FU-B fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct H264Nals {
    /// A sequence parameter set (type 7).
    pub sps: bool,
    /// A picture parameter set (type 8).
    pub pps: bool,
    /// An IDR slice (type 5), or the first fragment of one.
    pub idr: bool,
}

impl H264Nals {
    /// Scans the payload's NAL units.
    pub fn scan(payload: &[u8]) -> Result<Self, CodecDrop> {
        let mut s = Self::default();
        let &h = payload.first().ok_or(CodecDrop::TooShort)?;
        match h & 0x1f {
            0 | 30 | 31 => return Err(CodecDrop::Malformed),
            24 => s.scan_aggregate(payload, 1),
            25 => s.scan_aggregate(payload, 3),
            28 | 29 => {
                let &fu = payload.get(1).ok_or(CodecDrop::TooShort)?;
                if fu & 0x80 != 0 {
                    s.note(fu & 0x1f);
                }
            }
            // MTAP16/24: interleaved mode, not used by WebRTC.
            26 | 27 => {}
            t => s.note(t),
        }
        Ok(s)
    }

    fn scan_aggregate(&mut self, payload: &[u8], mut at: usize) {
        while let Some(size) = payload.get(at..at + 2) {
            let size = usize::from(u16::from_be_bytes([size[0], size[1]]));
            match payload.get(at + 2..at + 2 + size) {
                Some(nal) if size > 0 => self.note(nal[0] & 0x1f),
                _ => break,
            }
            at += 2 + size;
        }
    }

    fn note(&mut self, t: u8) {
        match t {
            5 => self.idr = true,
            7 => self.sps = true,
            8 => self.pps = true,
            _ => {}
        }
    }

    /// media.md §7.3: an H.264 keyframe is a packet carrying an SPS (a
    /// receiver switching layers needs the parameter sets).
    pub fn is_keyframe(&self) -> bool {
        self.sps
    }

    /// Looser rule: an SPS or (the start of) an IDR slice.
    pub fn starts_idr(&self) -> bool {
        self.sps || self.idr
    }
}

/// The NAL unit types found in one H.265 RTP payload (RFC 7798 §4.4): single
/// NAL units, aggregation packets and starting fragmentation units. DONL
/// fields (sprop-max-don-diff > 0) are not used by WebRTC and not expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct H265Nals {
    /// A VPS, SPS or PPS (types 32..=34).
    pub parameter_sets: bool,
    /// An IRAP picture (types 16..=21), or the first fragment of one.
    pub irap: bool,
}

impl H265Nals {
    /// Scans the payload's NAL units.
    pub fn scan(payload: &[u8]) -> Result<Self, CodecDrop> {
        let mut s = Self::default();
        let h = payload.get(..2).ok_or(CodecDrop::TooShort)?;
        if h[0] & 0x80 != 0 {
            return Err(CodecDrop::Malformed);
        }
        match (h[0] >> 1) & 0x3f {
            48 => {
                let mut at = 2;
                while let Some(size) = payload.get(at..at + 2) {
                    let size = usize::from(u16::from_be_bytes([size[0], size[1]]));
                    match payload.get(at + 2..at + 2 + size) {
                        Some(nal) if size > 0 => s.note((nal[0] >> 1) & 0x3f),
                        _ => break,
                    }
                    at += 2 + size;
                }
            }
            49 => {
                let &fu = payload.get(2).ok_or(CodecDrop::TooShort)?;
                if fu & 0x80 != 0 {
                    s.note(fu & 0x3f);
                }
            }
            50 => {}
            t => s.note(t),
        }
        Ok(s)
    }

    fn note(&mut self, t: u8) {
        match t {
            16..=21 => self.irap = true,
            32..=34 => self.parameter_sets = true,
            _ => {}
        }
    }

    /// media.md §7.3: VPS/SPS/PPS or an IRAP NAL.
    pub fn is_keyframe(&self) -> bool {
        self.parameter_sets || self.irap
    }
}

/// OBU type of a sequence header (AV1 spec §6.2.2).
const OBU_SEQUENCE_HEADER: u8 = 1;

/// AV1 keyframe: the aggregation header's N bit (first packet of a coded
/// video sequence), or a sequence header OBU starting in this packet.
pub fn av1_is_keyframe(payload: &[u8]) -> Result<bool, CodecDrop> {
    let &agg = payload.first().ok_or(CodecDrop::TooShort)?;
    if agg & 0x08 != 0 {
        return Ok(true);
    }
    let continues = agg & 0x80 != 0;
    let count = usize::from((agg >> 4) & 0x03);
    let mut at = 1;
    let mut index = 0;
    while at < payload.len() {
        // With W = count > 0, the last element has no length field.
        let len = if count != 0 && index + 1 == count {
            payload.len() - at
        } else {
            let (len, used) = leb128(&payload[at..])?;
            at += used;
            usize::try_from(len).map_err(|_| CodecDrop::Malformed)?
        };
        let element = payload
            .get(at..at.saturating_add(len))
            .ok_or(CodecDrop::TooShort)?;
        // The first element continues an OBU from the previous packet when Z is set.
        if !(index == 0 && continues)
            && let Some(&h) = element.first()
            && (h >> 3) & 0x0f == OBU_SEQUENCE_HEADER
        {
            return Ok(true);
        }
        at += len;
        index += 1;
        if count != 0 && index == count {
            break;
        }
    }
    Ok(false)
}

/// Decodes an unsigned LEB128 value (at most 8 bytes): (value, bytes used).
fn leb128(b: &[u8]) -> Result<(u64, usize), CodecDrop> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().take(8).enumerate() {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err(if b.len() < 8 {
        CodecDrop::TooShort
    } else {
        CodecDrop::Malformed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_descriptor_and_keyframe() {
        #[rustfmt::skip]
        let mut p = [
            0x90,             // X=1 S=1 PID=0
            0xe0,             // I=1 L=1 T=1 K=0
            0x81, 0x23,       // M=1 PictureID 0x0123
            0x05,             // TL0PICIDX 5
            0x40,             // TID=1 Y=0
            0x10, 0x02, 0x00, // VP8 header: P=0 (key frame)
            0x9d, 0x01, 0x2a, // start code
        ];
        let d = Vp8Descriptor::parse(&p).expect("valid");
        assert_eq!(d.picture_id, Some(0x0123));
        assert!(d.picture_id_long);
        assert_eq!(d.tl0picidx, Some(5));
        assert_eq!(d.tid, Some(1));
        assert_eq!(d.len, 6);
        assert!(d.is_keyframe(&p));
        d.write_picture_id(&mut p, 0x7ffe);
        d.write_tl0picidx(&mut p, 9);
        assert_eq!(&p[2..5], &[0xff, 0xfe, 9]);
        p[6] = 0x11; // P=1: interframe
        assert!(!is_keyframe(VideoCodec::Vp8, &p));
        // 7-bit picture id, no extension beyond.
        let short = [0x80, 0x80, 0x12, 0x00];
        let d = Vp8Descriptor::parse(&short).expect("valid");
        assert_eq!(
            (d.picture_id, d.picture_id_long, d.len),
            (Some(0x12), false, 3)
        );
        assert_eq!(
            Vp8Descriptor::parse(&[0x80, 0x80]),
            Err(CodecDrop::TooShort)
        );
    }

    #[test]
    fn vp9_descriptor() {
        // I=1 P=0 L=1 F=0 B=1 E=0 V=0 ; PID 7-bit 0x11 ; TID=2 U=1 SID=0 D=0 ; TL0 3
        let p = [0xa8, 0x11, 0x50, 0x03, 0xaa];
        let d = Vp9Descriptor::parse(&p).expect("valid");
        assert_eq!(d.picture_id, Some(0x11));
        assert_eq!((d.tid, d.sid, d.switching_up), (Some(2), Some(0), true));
        assert_eq!(d.tl0picidx, Some(3));
        assert_eq!(d.len, 4);
        assert!(d.is_keyframe());
        // Flexible, inter-predicted, three P_DIFFs with the last N bit clear.
        let f = [0xd8, 0x01, 0x03, 0x05, 0x06];
        let d = Vp9Descriptor::parse(&f).expect("valid");
        assert!(!d.is_keyframe());
        assert_eq!(d.len, 5);
        // Four P_DIFFs is malformed.
        assert_eq!(
            Vp9Descriptor::parse(&[0xd8, 0x01, 0x03, 0x05, 0x07, 0x08]),
            Err(CodecDrop::Malformed)
        );
        // Scalability structure: 2 spatial layers with sizes, 1 group with 1 ref.
        let ss = [0x0a, 0x38, 0, 1, 0, 2, 0, 3, 0, 4, 1, 0x04, 0x02, 0xff];
        let d = Vp9Descriptor::parse(&ss).expect("valid");
        assert!(d.has_scalability_structure);
        assert_eq!(d.len, 13);
        assert_eq!(Vp9Descriptor::parse(&ss[..10]), Err(CodecDrop::TooShort));
    }

    #[test]
    fn h264_nals() {
        // Single NAL SPS.
        assert!(is_keyframe(VideoCodec::H264, &[0x67, 0x42]));
        // STAP-A with SPS and PPS.
        let stap = [0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce];
        let n = H264Nals::scan(&stap).expect("valid");
        assert!(n.sps && n.pps && !n.idr);
        // FU-A start of an IDR slice: IDR but no SPS.
        let fu = [0x7c, 0x85, 0x88];
        let n = H264Nals::scan(&fu).expect("valid");
        assert!(n.idr && n.starts_idr() && !n.is_keyframe());
        // FU-A continuation: nothing.
        assert_eq!(
            H264Nals::scan(&[0x7c, 0x05]).expect("valid"),
            H264Nals::default()
        );
        // STAP-A with a size past the end stops scanning.
        let bad = [0x78, 0, 9, 0x67];
        assert!(!H264Nals::scan(&bad).expect("valid").sps);
    }

    #[test]
    fn h265_nals() {
        // Single IDR_W_RADL (19): header 0x26 0x01.
        assert!(is_keyframe(VideoCodec::H265, &[0x26, 0x01, 0xaf]));
        // AP (48) carrying a VPS (32): 0x60 0x01 | size 2 | 0x40 0x01.
        assert!(is_keyframe(
            VideoCodec::H265,
            &[0x60, 0x01, 0, 2, 0x40, 0x01]
        ));
        // FU (49) start of CRA (21), then a continuation.
        assert!(is_keyframe(VideoCodec::H265, &[0x62, 0x01, 0x95]));
        assert!(!is_keyframe(VideoCodec::H265, &[0x62, 0x01, 0x15]));
        // TRAIL_R (1): not a keyframe.
        assert!(!is_keyframe(VideoCodec::H265, &[0x02, 0x01]));
    }

    #[test]
    fn av1_keyframes() {
        assert!(is_keyframe(VideoCodec::Av1, &[0x18, 0x0a]));
        // W=0, one element with length 2 holding a sequence header OBU (0x0a).
        assert!(is_keyframe(VideoCodec::Av1, &[0x00, 0x02, 0x0a, 0x00]));
        // W=1: single element without length; a frame OBU (type 6 = 0x32).
        assert!(!is_keyframe(VideoCodec::Av1, &[0x10, 0x32, 0x00]));
        // Z=1: the first element is a continuation even if it looks like one.
        assert!(!is_keyframe(VideoCodec::Av1, &[0x90, 0x0a, 0x00]));
        assert_eq!(av1_is_keyframe(&[0x00, 0x80]), Err(CodecDrop::TooShort));
    }

    #[test]
    fn codec_names() {
        assert_eq!(VideoCodec::from_encoding_name("VP8"), Some(VideoCodec::Vp8));
        assert_eq!(
            VideoCodec::from_encoding_name("H265"),
            Some(VideoCodec::H265)
        );
        assert_eq!(VideoCodec::from_encoding_name("opus"), None);
    }
}
