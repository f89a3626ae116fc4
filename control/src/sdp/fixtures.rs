//! Test SDPs shared by the sdp tests.

/// The certificate fingerprint of the browser fixtures.
pub(super) const FINGERPRINT: &str = "sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08";

fn transport() -> String {
    format!(
        "a=ice-ufrag:Hc7Y\r\na=ice-pwd:8Wh6Y2Bm3U7mZ0cNQhm+XXnt\r\na=ice-options:trickle\r\na=fingerprint:{FINGERPRINT}\r\na=setup:actpass\r\n"
    )
}

/// A Chrome-like offer of Opus/RED/PCMU audio, VP8+H.264 video with RTX,
/// RED/ULPFEC and a data channel, with every transport attribute. Stripped,
/// it is the example of media.md §2.2. With `echotest_extras` the video m-line
/// also offers transport-cc, repaired-rid, goog-remb and ccm fir (the offer
/// behind the observed answer of media.md §2.4).
pub(super) fn browser_offer(echotest_extras: bool) -> String {
    let t = transport();
    let (twcc, repaired, fb) = if echotest_extras {
        (
            "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n",
            "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n",
            "a=rtcp-fb:96 goog-remb\r\na=rtcp-fb:96 transport-cc\r\na=rtcp-fb:96 ccm fir\r\n",
        )
    } else {
        ("", "", "")
    };
    format!(
        "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1 2\r\n\
a=extmap-allow-mixed\r\n\
a=msid-semantic: WMS stream1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 0\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=candidate:1467250027 1 udp 2122260223 192.168.0.196 46243 typ host generation 0\r\n\
a=candidate:435653019 1 udp 1686052607 198.51.100.7 46243 typ srflx raddr 192.168.0.196 rport 46243 generation 0\r\n\
a=end-of-candidates\r\n\
{t}\
a=mid:0\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=extmap:14 urn:ietf:params:rtp-hdrext:encrypt urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=sendrecv\r\n\
a=msid:stream1 audiotrack1\r\n\
a=rtcp-mux\r\n\
a=rtcp-rsize\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:63 red/48000/2\r\n\
a=fmtp:63 111/111\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=ssrc:1111 cname:abc\r\n\
a=ssrc:1111 msid:stream1 audiotrack1\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 108 109 114\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
{t}\
a=mid:1\r\n\
{twcc}\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n\
{repaired}\
a=sendrecv\r\n\
a=msid:stream1 videotrack1\r\n\
a=rtcp-mux\r\n\
a=rtcp-rsize\r\n\
a=rtpmap:96 VP8/90000\r\n\
{fb}\
a=rtcp-fb:96 nack\r\n\
a=rtcp-fb:96 nack pli\r\n\
a=rtpmap:97 rtx/90000\r\n\
a=fmtp:97 apt=96\r\n\
a=rtpmap:102 H264/90000\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
a=rtpmap:103 rtx/90000\r\n\
a=fmtp:103 apt=102\r\n\
a=rtpmap:108 red/90000\r\n\
a=rtpmap:109 rtx/90000\r\n\
a=fmtp:109 apt=108\r\n\
a=rtpmap:114 ulpfec/90000\r\n\
a=ssrc-group:FID 2222 3333\r\n\
a=ssrc:2222 cname:abc\r\n\
a=ssrc:3333 cname:abc\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
c=IN IP4 0.0.0.0\r\n\
a=candidate:9 1 udp 1 10.9.9.9 9 typ host\r\n\
{t}\
a=mid:2\r\n\
a=sctp-port:5000\r\n\
a=max-message-size:262144\r\n"
    )
}

/// The example of media.md §2.2, verbatim.
pub(super) const STRIPPED_OFFER: &str = "v=0
o=- 4611731400430051336 2 IN IP4 1.1.1.1
s=-
t=0 0
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 0
c=IN IP4 1.1.1.1
a=sendrecv
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=msid:stream1 audiotrack1
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:0 PCMU/8000
m=video 9 UDP/TLS/RTP/SAVPF 96 102
c=IN IP4 1.1.1.1
a=sendrecv
a=mid:1
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id
a=msid:stream1 videotrack1
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=rtpmap:102 H264/90000
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f
m=application 9 UDP/DTLS/SCTP webrtc-datachannel
c=IN IP4 1.1.1.1
a=sendrecv
a=mid:2
";

/// The observed merged answer of media.md §2.4, verbatim.
pub(super) const MERGED_ANSWER: &str = "v=0
o=- 4611731400430051336 2 IN IP4 203.0.113.5
s=-
t=0 0
a=group:BUNDLE 0 1 2
a=ice-options:trickle
a=fingerprint:sha-256 47:F8:09:...:91:17
a=extmap-allow-mixed
a=msid-semantic: WMS *
m=audio 9 UDP/TLS/RTP/SAVPF 111
c=IN IP4 203.0.113.5
a=sendrecv
a=mid:0
a=rtcp-mux
a=ice-ufrag:7gEW
a=ice-pwd:zLrZJlZz9cH4L2gpEn0wB6
a=ice-options:trickle
a=setup:active
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=msid:janus janus0
a=ssrc:3082545957 cname:janus
a=candidate:1 1 udp 2015363327 203.0.113.5 57012 typ host
a=end-of-candidates
m=video 9 UDP/TLS/RTP/SAVPF 96 97
c=IN IP4 203.0.113.5
a=sendrecv
a=mid:1
a=rtcp-mux
a=ice-ufrag:7gEW
a=ice-pwd:zLrZJlZz9cH4L2gpEn0wB6
a=ice-options:trickle
a=setup:active
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 goog-remb
a=rtcp-fb:96 transport-cc
a=rtcp-fb:96 ccm fir
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
a=ssrc-group:FID 776393357 4132927568
a=msid:janus janus1
a=ssrc:776393357 cname:janus
a=ssrc:4132927568 cname:janus
a=candidate:1 1 udp 2015363327 203.0.113.5 57012 typ host
a=end-of-candidates
m=application 9 UDP/DTLS/SCTP webrtc-datachannel
c=IN IP4 203.0.113.5
a=sendrecv
a=mid:2
a=sctp-port:5000
a=ice-ufrag:7gEW
a=ice-pwd:zLrZJlZz9cH4L2gpEn0wB6
a=ice-options:trickle
a=setup:active
a=candidate:1 1 udp 2015363327 203.0.113.5 57012 typ host
a=end-of-candidates
";

/// What a `janus-sdp.js`-style `generateAnswer` (default options: first
/// Opus / VP8, data on, transport-cc kept, Debian 1.1.2's extension filter)
/// produces for the stripped form of `browser_offer(true)`: copied
/// session lines, one payload type per m-line, direction, the chosen
/// `rtpmap`/`fmtp`/`rtcp-fb`, the filtered `extmap`s; no mid, no c=.
/// (Checked against Debian's janus-sdp.js under node: its line parser keeps
/// the previous line's value for value-less lines, so the video and data
/// direction lines are lost and the default `sendrecv` applies.)
pub(super) const ECHOTEST_ANSWER: &str = "v=0\r
o=- 4611731400430051336 2 IN IP4 1.1.1.1\r
s=-\r
t=0 0\r
m=audio 9 UDP/TLS/RTP/SAVPF 111\r
a=sendrecv\r
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r
a=rtpmap:111 opus/48000/2\r
a=rtcp-fb:111 transport-cc\r
a=fmtp:111 minptime=10;useinbandfec=1\r
m=video 9 UDP/TLS/RTP/SAVPF 96\r
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r
a=rtpmap:96 VP8/90000\r
a=rtcp-fb:96 goog-remb\r
a=rtcp-fb:96 transport-cc\r
a=rtcp-fb:96 ccm fir\r
a=rtcp-fb:96 nack\r
a=rtcp-fb:96 nack pli\r
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r
";

/// `browser_offer(false)` simulcasting with rids `h`, `m` (paused), `l`.
pub(super) fn simulcast_offer() -> String {
    browser_offer(false).replace(
        "a=ssrc-group:FID 2222 3333\r\na=ssrc:2222 cname:abc\r\na=ssrc:3333 cname:abc\r\n",
        "a=rid:h send\r\na=rid:m send\r\na=rid:l send\r\na=simulcast:send h;~m;l\r\na=ssrc-group:FID 5555 6666\r\na=ssrc:5555 cname:abc\r\na=ssrc:6666 cname:abc\r\n",
    )
}

/// A data-channel-only offer; `legacy` uses `DTLS/SCTP` with `a=sctpmap`.
pub(super) fn data_only_offer(legacy: bool) -> String {
    let (mline, sctp) = if legacy {
        (
            "m=application 9 DTLS/SCTP 5000",
            "a=sctpmap:5000 webrtc-datachannel 1024",
        )
    } else {
        (
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
            "a=sctp-port:5000\r\na=max-message-size:262144",
        )
    };
    format!(
        "v=0\r\no=- 123 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\na=msid-semantic: WMS\r\n{mline}\r\nc=IN IP4 0.0.0.0\r\n{}a=mid:0\r\n{sctp}\r\n",
        transport()
    )
}

/// Splits an SDP into lines (either line ending).
pub(super) fn lines(text: &str) -> Vec<&str> {
    text.split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty())
        .collect()
}

/// Compares two SDP texts line by line, reporting the first difference.
pub(super) fn assert_same_lines(actual: &str, expected: &str) {
    let (a, e) = (lines(actual), lines(expected));
    for (i, (x, y)) in a.iter().zip(e.iter()).enumerate() {
        assert_eq!(x, y, "line {i} differs\nactual:\n{actual}");
    }
    assert_eq!(a.len(), e.len(), "line count differs\nactual:\n{actual}");
}
