//! The stripped SDP handed to plugins (media.md §2.2).

use super::remote::uri;
use super::syntax::{AddrType, Connection, MediaKind, Sdp, effective_port, parse_rtpmap};

/// Session-level attributes the core handles itself.
const SESSION_TRANSPORT_ATTRIBUTES: &[&str] = &[
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "fingerprint",
    "group",
    "msid-semantic",
    "extmap-allow-mixed",
    "rtcp-rsize",
];

/// Media-level attributes the core handles itself.
const MEDIA_TRANSPORT_ATTRIBUTES: &[&str] = &[
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "crypto",
    "fingerprint",
    "setup",
    "connection",
    "group",
    "msid-semantic",
    "rid",
    "simulcast",
    "rtcp",
    "rtcp-mux",
    "rtcp-rsize",
    "candidate",
    "end-of-candidates",
    "ssrc",
    "ssrc-group",
    "sctpmap",
    "sctp-port",
    "max-message-size",
];

/// Video redundancy/repair encodings dropped from the formats (name, clock).
const DROPPED_ENCODINGS: &[&str] = &["red", "ulpfec", "flexfec-03", "rtx"];

/// Removes everything transport related (media.md §2.2): the `o=` address
/// becomes `1.1.1.1`, `c=` lines `IN IP4 1.1.1.1`; ICE/DTLS/SSRC/simulcast
/// attributes, encrypted-extension `extmap`s and the video `red`, `ulpfec`,
/// `flexfec-03` and `rtx` formats (with their `rtpmap`/`fmtp`/`rtcp-fb`)
/// go; active audio/video m-lines get port 9, the first active SCTP data
/// m-line port 9 and every other application m-line port 0.
pub fn strip(sdp: &Sdp) -> Sdp {
    let mut out = sdp.clone();
    out.origin.addr_type = AddrType::Ip4;
    out.origin.address = "1.1.1.1".to_owned();
    if out.connection.is_some() {
        out.connection = Some(Connection::placeholder());
    }
    out.attributes
        .retain(|a| !SESSION_TRANSPORT_ATTRIBUTES.iter().any(|n| a.is(n)));
    let mut data = 0;
    for (index, m) in out.media.iter_mut().enumerate() {
        let active = effective_port(index, m) > 0;
        m.port = match m.kind {
            MediaKind::Audio | MediaKind::Video if active => 9,
            MediaKind::Application if active && m.is_sctp() => {
                data += 1;
                if data == 1 { 9 } else { 0 }
            }
            _ => 0,
        };
        if m.connection.is_some() {
            m.connection = Some(Connection::placeholder());
        }
        m.attributes.retain(|a| {
            let transport = MEDIA_TRANSPORT_ATTRIBUTES.iter().any(|n| a.is(n));
            let encrypted_extension = a.is("extmap") && a.value_str().contains(uri::ENCRYPT);
            !transport && !encrypted_extension
        });
        let dropped: Vec<u8> = m
            .attributes
            .iter()
            .filter(|a| a.is("rtpmap"))
            .filter_map(|a| parse_rtpmap(a.value.as_deref()?))
            .filter(|(_, name, clock)| {
                *clock == Some(90000)
                    && DROPPED_ENCODINGS
                        .iter()
                        .any(|d| name.eq_ignore_ascii_case(d))
            })
            .map(|(pt, _, _)| pt)
            .collect();
        for pt in dropped {
            m.remove_payload_type(pt);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{self, assert_same_lines};
    use super::super::parse;
    use super::*;

    #[test]
    fn sdp_strip_matches_spec_example() {
        let offer = parse(&fixtures::browser_offer(false)).expect("parses");
        let stripped = strip(&offer).serialize();
        assert!(stripped.ends_with("\r\n") && !stripped.replace("\r\n", "").contains('\n'));
        assert_same_lines(&stripped, fixtures::STRIPPED_OFFER);
        // Stripping is idempotent.
        assert_eq!(
            strip(&parse(&stripped).expect("parses")).serialize(),
            stripped
        );
    }

    #[test]
    fn sdp_strip_ports_and_connections() {
        let text = "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\na=ice-lite\r\n\
m=audio 0 UDP/TLS/RTP/SAVPF 0\r\na=mid:a\r\n\
m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:v\r\na=rtpmap:96 VP8/90000\r\n\
m=video 0 UDP/TLS/RTP/SAVPF 97\r\na=bundle-only\r\na=mid:b\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:d1\r\n\
m=application 9 DTLS/SCTP 5000\r\na=mid:d2\r\n\
m=application 9 UDP/BFCP *\r\na=mid:x\r\n";
        let stripped = strip(&parse(text).expect("parses"));
        let ports: Vec<u16> = stripped.media.iter().map(|m| m.port).collect();
        assert_eq!(ports, vec![9, 0, 9, 9, 0, 0]);
        assert_eq!(stripped.origin.address, "1.1.1.1");
        assert_eq!(stripped.origin.addr_type, AddrType::Ip4);
        assert_eq!(stripped.connection, Some(Connection::placeholder()));
        assert!(
            stripped.attribute("ice-lite").is_some(),
            "unknown attributes stay"
        );
        let text = stripped.serialize();
        assert!(text.contains("m=video 0 UDP/TLS/RTP/SAVPF 0\r\na=sendrecv\r\na=mid:v\r\n"));
        assert!(text.contains("m=application 0 DTLS/SCTP 5000\r\na=sendrecv\r\na=mid:d2\r\n"));
    }
}
