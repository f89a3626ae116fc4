//! RTP: the header view, header extensions in both forms, the in-place
//! writer, extension re-writing, RTX unwrapping and every codec descriptor.
#![no_main]

use jsfu_proto::rtp::codec::{self, VideoCodec};
use jsfu_proto::rtp::ext::{self, ExtForm, ONE_BYTE_PROFILE, TWO_BYTE_PROFILE};
use jsfu_proto::rtp::{self, ExtensionWriter, Pt, RtpViewMut, SeqNo, Ssrc};
use jsfu_proto::rtx;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Extension blocks on their own, both profiles.
    for profile in [ONE_BYTE_PROFILE, TWO_BYTE_PROFILE] {
        for e in ext::parse_extensions(profile, data) {
            let _ = ext::abs_send_time(e.data);
            let _ = ext::transport_cc_seq(e.data);
            let _ = ext::audio_level(e.data);
        }
    }
    // Codec payload descriptors.
    for c in VideoCodec::ALL {
        let _ = codec::parse_payload(c, data);
        let _ = codec::is_keyframe(c, data);
    }
    let _ = codec::av1_is_keyframe(data);

    let Ok(view) = rtp::parse(data) else {
        return;
    };
    let _ = (view.marker(), view.pt(), view.seq(), view.timestamp(), view.ssrc());
    let _ = (view.csrcs().count(), view.payload().len(), view.padding_len());
    let _ = (view.extension_profile(), view.extension_form());
    let mut ext_out = [0u8; 64];
    let mut w = ExtensionWriter::new(&mut ext_out, ExtForm::OneByte);
    for e in view.extensions() {
        let _ = w.push(e.id, e.data);
    }
    let _ = w.push_mid(1, b"0");
    let _ = w.push_transport_cc(2, SeqNo(7));
    let ext_len = w.finish().unwrap_or(0);
    let mut out = [0u8; 1600];
    if let Ok(n) = rtp::write_with_extensions(&view, &ext_out[..ext_len], &mut out) {
        let v = rtp::parse(&out[..n]).expect("write_with_extensions writes valid RTP");
        assert_eq!(v.payload(), view.payload());
    }
    let mut wrapped = [0u8; 1600];
    let wrapped_len = rtx::wrap(&view, Pt(97), Ssrc(1), SeqNo(2), &mut wrapped).ok();

    let mut copy = [0u8; 1600];
    let len = data.len().min(copy.len());
    copy[..len].copy_from_slice(&data[..len]);
    if let Ok(mut m) = RtpViewMut::parse(&mut copy[..len]) {
        m.set_ssrc(Ssrc(9));
        let _ = m.set_extension_id(1, 3);
        let _ = m.zero_extension(2);
        let _ = m.remove_extension(3);
        let _ = m.payload_mut().len();
    }
    let _ = rtx::unwrap_in_place(&mut copy[..len], Pt(96), Ssrc(5));
    if let Some(n) = wrapped_len {
        let (m, osn) = rtx::unwrap_in_place(&mut wrapped[..n], view.pt(), view.ssrc())
            .expect("a wrapped packet unwraps");
        assert_eq!(osn, view.seq());
        assert_eq!(m, view.as_bytes().len() - view.padding_len());
    }
});
