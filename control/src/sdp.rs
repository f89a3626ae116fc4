//! SDP handling (spec/media.md §2): a strict parser and canonical serializer,
//! what the core learns from a client SDP, the stripped SDP scripts see, the
//! `jsep` object passed to `handleMessage`, and the merge of a plugin's SDP
//! with the core's transport details.
//!
//! Pure code: no sockets, no clock, no randomness of its own (time and random
//! sources are passed in). Nothing here panics on any input.
//!
//! Flow for a client offer: [`parse`] → [`check_remote`] (what the core
//! learns; its errors are 465 `Error processing SDP`) → [`strip`] →
//! [`jsep_for_script`]. For the plugin's answer (or offer): [`parse`] →
//! [`merge_local`] with the [`RemoteInfo`] of the client offer and the
//! media layer's [`LocalTransport`].

mod jsep;
mod merge;
mod remote;
mod strip;
mod syntax;

#[cfg(test)]
mod fixtures;

pub use jsep::{JsepExtras, jsep_for_script, simulcast_entries, valid_svc};
pub use merge::{
    LocalMedia, LocalMediaInfo, LocalSsrcs, LocalTransport, generate_ice_credentials,
    generate_local_ssrcs, merge_local,
};
pub use remote::{
    Candidate, DataChannelInfo, DtlsRole, ExtensionIds, Fingerprint, HashFunction,
    PROCESSING_ERROR, RemoteInfo, RemoteMedia, RidOrder, SetupRole, check_remote, uri,
};
pub use strip::strip;
pub use syntax::{
    AddrType, Attribute, Bandwidth, Connection, Direction, Media, MediaKind, Origin, Sdp, Timing,
    parse,
};

/// An SDP failure; its text is what clients see in a 465 error (or what is
/// logged when a plugin's SDP is dropped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SdpError(pub String);

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn corpus() -> Vec<String> {
        let mut texts = vec![
            fixtures::browser_offer(false),
            fixtures::browser_offer(true),
            fixtures::simulcast_offer(),
            fixtures::data_only_offer(false),
            fixtures::data_only_offer(true),
            fixtures::STRIPPED_OFFER.to_owned(),
            fixtures::MERGED_ANSWER.to_owned(),
            fixtures::ECHOTEST_ANSWER.to_owned(),
            // Odd but valid shapes: no t=, session c=, rejected m-lines with
            // attributes, b= lines, unknown lines, IPv6, value-less attributes.
            "v=0\no=x 0 0 IN IP6 ::1\ns=x\nc=IN IP6 ::1\na=flag\nm=audio 0 RTP/AVP 0 8\na=mid:a\na=rtpmap:0 PCMU/8000\nb=AS:1\nm=video 0 RTP/AVPF 96\nb=TIAS:5\na=x:y:z\nm=application 0 UDP/DTLS/SCTP webrtc-datachannel\na=mid:d\n".to_owned(),
            "v=1\r\no=- 18446744073709551615 1 IN IP4 a\r\ns= \r\nt=1 2\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nb=AS:10\r\nz=ignored\r\na=inactive\r\na=sendonly\r\n".to_owned(),
        ];
        let stripped = strip(&parse(&fixtures::browser_offer(false)).expect("parses")).serialize();
        texts.push(stripped.replace("\r\n", "\n"));
        texts
    }

    #[test]
    fn sdp_parse_serialize_is_stable() {
        for text in corpus() {
            let first = parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
            let written = first.serialize();
            let second = parse(&written).unwrap_or_else(|e| panic!("{e}: {written}"));
            let rewritten = second.serialize();
            assert_eq!(
                rewritten, written,
                "serialize is not a fixed point for {text:?}"
            );
            assert_eq!(parse(&rewritten).expect("parses"), second);
            // Active m-lines survive verbatim.
            for (a, b) in first.media.iter().zip(&second.media) {
                if a.port > 0 {
                    assert_eq!(a, b);
                }
            }
        }
    }

    fn transport(setup: SetupRole) -> LocalTransport {
        LocalTransport {
            ice_ufrag: "abcd".into(),
            ice_pwd: "0123456789012345678901".into(),
            fingerprint: "AA:BB".into(),
            setup,
            address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            candidates: vec!["candidate:1 1 udp 1 192.0.2.1 4000 typ host".into()],
            half_trickle: true,
            ice_lite: true,
            ssrcs: (1..=8)
                .map(|i| LocalSsrcs {
                    ssrc: i,
                    rtx_ssrc: 100 + i,
                })
                .collect(),
            now_us: 1,
        }
    }

    /// Runs every entry point on `text`; only checks that nothing panics.
    fn exercise(text: &str) {
        let Ok(sdp) = parse(text) else { return };
        let _ = sdp.serialize();
        let _ = sdp.first_video_codec();
        let stripped = strip(&sdp);
        let stripped_text = stripped.serialize();
        let _ = parse(&stripped_text);
        for order in [RidOrder::HighToLow, RidOrder::LowToHigh] {
            if let Ok(info) = check_remote(&sdp, order) {
                let _ = jsep_for_script("offer", &stripped_text, &info, JsepExtras::default());
                let _ = merge_local(&stripped, Some(&info), &transport(SetupRole::Active));
                let _ = merge_local(&sdp, Some(&info), &transport(SetupRole::Passive));
            }
        }
        let _ = merge_local(&sdp, None, &transport(SetupRole::Actpass));
    }

    #[test]
    fn sdp_never_panics_on_truncated_or_garbled_input() {
        let offers = [
            fixtures::browser_offer(true),
            fixtures::simulcast_offer(),
            fixtures::data_only_offer(true),
        ];
        for offer in &offers {
            for cut in (0..=offer.len()).filter(|i| offer.is_char_boundary(*i)) {
                exercise(&offer[..cut]);
            }
        }
        let mut rng = StdRng::seed_from_u64(0x5d9);
        let alphabet = b"v=oscmtab: \r\n0123456789/~;-.aASsendrecvFIDSIM";
        for _ in 0..3000 {
            let offer = offers[rng.random_range(0..offers.len())].as_bytes();
            let mut bytes = offer.to_vec();
            for _ in 0..rng.random_range(1..8) {
                let at = rng.random_range(0..bytes.len());
                match rng.random_range(0..4) {
                    0 => bytes[at] = rng.random(),
                    1 => bytes[at] = alphabet[rng.random_range(0..alphabet.len())],
                    2 => {
                        bytes.remove(at);
                    }
                    _ => {
                        let len = rng.random_range(0..40).min(bytes.len() - at);
                        let chunk: Vec<u8> = bytes[at..at + len].to_vec();
                        let to = rng.random_range(0..bytes.len());
                        bytes.splice(to..to, chunk);
                    }
                }
                if bytes.is_empty() {
                    break;
                }
            }
            exercise(&String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn sdp_error_display_is_the_text() {
        let e = parse("x").expect_err("invalid");
        assert_eq!(e.to_string(), "Invalid SDP (doesn't start with v=)");
    }
}
