//! RTCP: walk a compound with every typed view, validate it, filter it as
//! script-sent RTCP and re-map report-block SSRCs.
#![no_main]

use jsfu_proto::rtcp::{self, RtcpPacket, RtcpRaw};
use jsfu_proto::rtp::Ssrc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Framing by hand, to reach the raw accessors too.
    let mut rest = data;
    while let Ok(raw) = RtcpRaw::parse(rest) {
        let _ = (raw.pt(), raw.count(), raw.has_padding(), raw.sender_ssrc());
        let _ = raw.body().len();
        rest = &rest[raw.bytes().len()..];
        if raw.bytes().is_empty() {
            break;
        }
    }
    for packet in rtcp::parse(data) {
        match packet {
            Ok(RtcpPacket::SenderReport(sr)) => {
                let _ = sr.info();
                for b in sr.report_blocks() {
                    let _ = b.block();
                }
            }
            Ok(RtcpPacket::ReceiverReport(rr)) => {
                for b in rr.report_blocks() {
                    let _ = b.block();
                }
            }
            Ok(RtcpPacket::Sdes(s)) => {
                for chunk in s.chunks() {
                    let _ = chunk.items().count();
                }
                let _ = s.cname();
            }
            Ok(RtcpPacket::Bye(b)) => {
                let _ = (b.ssrcs().count(), b.reason());
            }
            Ok(RtcpPacket::Nack(n)) => {
                let _ = (n.media_ssrc(), n.pairs().count(), n.lost().count());
            }
            Ok(RtcpPacket::TransportCc(t)) => {
                let _ = (t.base_seq(), t.status_count(), t.reference_time());
                let _ = t.packets().take(1 << 16).count();
            }
            Ok(RtcpPacket::Pli(p)) => {
                let _ = p.media_ssrc();
            }
            Ok(RtcpPacket::Fir(f)) => {
                let _ = f.entries().count();
            }
            Ok(RtcpPacket::Remb(r)) => {
                let _ = (r.bitrate(), r.ssrcs().count());
            }
            _ => {}
        }
    }
    let _ = rtcp::validate_compound(data);
    let mut out = [0u8; 1600];
    if let Ok(n) = rtcp::filter_plugin_rtcp(data, &mut out, Ssrc(1), Ssrc(2)) {
        // What the filter keeps is itself a valid compound.
        if n > 0 {
            assert!(rtcp::validate_compound(&out[..n]).is_ok());
        }
    }
    let mut copy = [0u8; 1600];
    let len = data.len().min(copy.len());
    copy[..len].copy_from_slice(&data[..len]);
    let _ = rtcp::map_report_block_ssrcs(&mut copy[..len], |s| Ssrc(s.0 ^ 1));
});
