//! The RTP feedback the shard owns, end to end on loopback: NACKs towards a
//! publisher, RTX from the publisher restored, NACKs from a subscriber
//! answered as RTX, media-state events.

mod common;

use std::time::Duration;

use common::{Peer, VIDEO_PT, route, start_shards, wait_event};
use jsfu_proto::rtp::RtpView;
use jsfu_route::{MediaEvent, RtxMapping, ShardCommand};
use jsfu_shard::DropReason;

const T: Duration = Duration::from_secs(10);
const RTX_PT: u8 = 97;
const SERVER_RTX_SSRC: u32 = 0x6000_0022;

/// Protects and sends one plaintext RTP packet from `peer`.
fn send_plain(peer: &mut Peer, plain: &[u8]) -> anyhow::Result<()> {
    let mut buf = [0u8; 1600];
    buf[..plain.len()].copy_from_slice(plain);
    let srtp = peer
        .srtp_out
        .as_mut()
        .ok_or_else(|| anyhow::anyhow!("no keys"))?;
    let n = srtp
        .protect_rtp(&mut buf, plain.len())
        .map_err(|e| anyhow::anyhow!("protect: {e:?}"))?;
    peer.socket.send_to(&buf[..n], peer.server)?;
    Ok(())
}

/// A video packet: sequence number, timestamp, SSRC and a payload naming
/// the sequence number.
fn video(pt: u8, seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 3000).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn payload_for(seq: u16) -> Vec<u8> {
    let mut v = seq.to_be_bytes().repeat(50);
    v.push(0xee);
    v
}

fn nack_fci(seq: u16) -> [u8; 4] {
    let b = seq.to_be_bytes();
    [b[0], b[1], 0, 0]
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Whether a compound holds a generic NACK about `media` listing `seq`.
fn has_nack(compound: &[u8], media: u32, seq: u16) -> bool {
    let mut rest = compound;
    while rest.len() >= 12 {
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        if len > rest.len() {
            return false;
        }
        let p = &rest[..len];
        if p[1] == 205 && p[0] & 0x1f == 1 && be32(p, 8) == media {
            for fci in p[12..].chunks_exact(4) {
                let pid = u16::from_be_bytes([fci[0], fci[1]]);
                let blp = u16::from_be_bytes([fci[2], fci[3]]);
                if pid == seq || (0..16).any(|i| blp & (1 << i) != 0 && pid + i + 1 == seq) {
                    return true;
                }
            }
        }
        rest = &rest[len..];
    }
    false
}

#[test]
fn nack_rtx_both_ways_and_media_events() -> anyhow::Result<()> {
    let (set, events, cert) = start_shards(1)?;
    let shard = &set.shards()[0];
    let mut a = Peer::new(21, shard.local_addr(), &cert)?;
    let mut b = Peer::new(22, shard.local_addr(), &cert)?;
    let a_rtx_ssrc = a.ssrc + 1;
    let mut a_cfg = a.pc_config();
    a_cfg.media[1].rtx = vec![RtxMapping {
        rtx_pt: RTX_PT,
        apt: VIDEO_PT,
    }];
    a_cfg.media[1].remote_ssrcs = vec![a.ssrc];
    a_cfg.media[1].remote_rtx_ssrcs = vec![a_rtx_ssrc];
    let mut b_cfg = b.pc_config();
    b_cfg.media[1].rtx = vec![RtxMapping {
        rtx_pt: RTX_PT,
        apt: VIDEO_PT,
    }];
    b_cfg.media[1].local_rtx_ssrc = Some(SERVER_RTX_SSRC);
    shard.commands().send(ShardCommand::CreatePc(a_cfg))?;
    shard.commands().send(ShardCommand::CreatePc(b_cfg))?;
    a.connect(T)?;
    b.connect(T)?;
    let mut seen = Vec::new();
    for id in [21, 22] {
        assert!(
            wait_event(&events, &mut seen, T, |e| {
                matches!(e, MediaEvent::WebrtcUp { session } if session.0 == id)
            })
            .is_some()
        );
    }
    shard.routes().send(route(21, 1, true, false, &[22]))?;
    shard.routes().send(route(22, 1, false, true, &[]))?;
    std::thread::sleep(Duration::from_millis(200));

    // A sends 100, 101, 103: B gets three packets, A a NACK for 102.
    for seq in [100u16, 101, 103] {
        let packet = video(VIDEO_PT, seq, a.ssrc, &payload_for(seq));
        send_plain(&mut a, &packet)?;
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut b_seqs = Vec::new();
    for _ in 0..3 {
        let n = b.recv_rtp(T).expect("relayed packet");
        let v = RtpView::parse(&b.rx()[..n])?;
        b_seqs.push(v.seq().0);
    }
    let a_ssrc = a.ssrc;
    assert!(
        a.wait_rtcp(T, |c| has_nack(c, a_ssrc, 102)),
        "NACK for the missing packet"
    );

    // A repairs 102 with RTX: B gets the original payload on its stream.
    let mut rtx_payload = 102u16.to_be_bytes().to_vec();
    rtx_payload.extend_from_slice(&payload_for(102));
    send_plain(&mut a, &video(RTX_PT, 7000, a_rtx_ssrc, &rtx_payload))?;
    let n = b.recv_rtp(T).expect("restored retransmission relayed");
    let v = RtpView::parse(&b.rx()[..n])?;
    assert_eq!(v.pt().0, VIDEO_PT);
    assert_eq!(v.ssrc().0, b.server_video_ssrc);
    assert_eq!(v.payload(), &payload_for(102)[..]);
    // The same repair again is useless: dropped, not relayed.
    send_plain(&mut a, &video(RTX_PT, 7001, a_rtx_ssrc, &rtx_payload))?;
    assert_eq!(b.count_rtp(Duration::from_millis(300)), 0);

    // B NACKs a fresh packet (kept 200 ms without an RTT): answered as RTX
    // (RFC 4588).
    let packet = video(VIDEO_PT, 104, a.ssrc, &payload_for(104));
    send_plain(&mut a, &packet)?;
    let n = b.recv_rtp(T).expect("relayed packet");
    let first = RtpView::parse(&b.rx()[..n])?.seq().0;
    assert_eq!(first, b_seqs[2].wrapping_add(1), "continuous");
    let mut nack = vec![0x81, 205, 0, 3];
    nack.extend_from_slice(&b.ssrc.to_be_bytes());
    nack.extend_from_slice(&b.server_video_ssrc.to_be_bytes());
    nack.extend_from_slice(&nack_fci(first));
    b.send_rtcp(&nack).map_err(anyhow::Error::msg)?;
    let n = b.recv_rtp(T).expect("RTX retransmission");
    let v = RtpView::parse(&b.rx()[..n])?;
    assert_eq!(v.pt().0, RTX_PT);
    assert_eq!(v.ssrc().0, SERVER_RTX_SSRC);
    let p = v.payload();
    assert_eq!(u16::from_be_bytes([p[0], p[1]]), first, "OSN");
    assert_eq!(&p[2..], &payload_for(104)[..]);
    // Asked again at once: the back-off holds it.
    b.send_rtcp(&nack).map_err(anyhow::Error::msg)?;
    assert_eq!(b.count_rtp(Duration::from_millis(20)), 0);

    // Media events: A's video started, then stopped after a silent second.
    let started = wait_event(
        &events,
        &mut seen,
        T,
        |e| matches!(e, MediaEvent::Receiving { session, video: true, receiving: true, mid_index: 1 } if session.0 == 21),
    );
    assert!(started.is_some(), "receiving video");
    let stopped = wait_event(
        &events,
        &mut seen,
        Duration::from_secs(4),
        |e| matches!(e, MediaEvent::Receiving { session, video: true, receiving: false, .. } if session.0 == 21),
    );
    assert!(stopped.is_some(), "no longer receiving video");
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, MediaEvent::Receiving { video: false, .. })),
        "no audio was sent: {seen:?}"
    );

    let stats = shard.stats(T)?;
    assert!(stats.nacks_sent >= 1, "{stats:?}");
    assert!(stats.retransmissions >= 1, "{stats:?}");
    assert!(stats.dropped(DropReason::RtxFromPeer) >= 1, "{stats:?}");
    set.shutdown()?;
    Ok(())
}

#[test]
fn slow_link_both_ways() -> anyhow::Result<()> {
    use jsfu_proto::dtls::{DtlsCert, DtlsConfig, DtlsContext};
    let cert = DtlsCert::generate(std::time::SystemTime::now())?;
    let ctx = DtlsContext::new(&cert, &DtlsConfig::default())?;
    let (tx, events) = flume::bounded(4096);
    let mut cfg = jsfu_shard::ShardSetConfig::new("127.0.0.1".parse()?, ctx, tx);
    cfg.shards = 1;
    cfg.stats_interval = Duration::ZERO;
    cfg.slowlink_threshold = 5;
    let set = jsfu_shard::start(cfg)?;
    let shard = &set.shards()[0];
    let mut a = Peer::new(31, shard.local_addr(), &cert)?;
    let mut b = Peer::new(32, shard.local_addr(), &cert)?;
    shard
        .commands()
        .send(ShardCommand::CreatePc(a.pc_config()))?;
    shard
        .commands()
        .send(ShardCommand::CreatePc(b.pc_config()))?;
    a.connect(T)?;
    b.connect(T)?;
    let mut seen = Vec::new();
    for id in [31, 32] {
        assert!(
            wait_event(&events, &mut seen, T, |e| {
                matches!(e, MediaEvent::WebrtcUp { session } if session.0 == id)
            })
            .is_some()
        );
    }
    shard.routes().send(route(31, 1, true, false, &[32]))?;
    shard.routes().send(route(32, 1, false, true, &[]))?;
    std::thread::sleep(Duration::from_millis(200));

    // Downlink: A's video skips 20 sequence numbers.
    for seq in (200u16..205).chain(225..230) {
        let packet = video(VIDEO_PT, seq, a.ssrc, &payload_for(seq));
        send_plain(&mut a, &packet)?;
    }
    let down = wait_event(
        &events,
        &mut seen,
        Duration::from_secs(3),
        |e| matches!(e, MediaEvent::SlowLink { session, uplink: false, video: true, .. } if session.0 == 31),
    );
    match down {
        Some(MediaEvent::SlowLink { lost, .. }) => assert_eq!(lost, 20),
        other => panic!("no downlink slow link: {other:?} {seen:?}"),
    }

    // Uplink: B reports 30 packets of the server's video lost.
    assert!(b.count_rtp(Duration::from_millis(100)) > 0);
    let mut rr = vec![0x81, 201, 0, 7];
    rr.extend_from_slice(&b.ssrc.to_be_bytes());
    rr.extend_from_slice(&b.server_video_ssrc.to_be_bytes());
    rr.extend_from_slice(&[10, 0, 0, 30]); // fraction, cumulative lost 30
    rr.extend_from_slice(&[0; 16]); // highest seq, jitter, LSR, DLSR
    b.send_rtcp(&rr).map_err(anyhow::Error::msg)?;
    let up = wait_event(
        &events,
        &mut seen,
        Duration::from_secs(3),
        |e| matches!(e, MediaEvent::SlowLink { session, uplink: true, video: true, .. } if session.0 == 32),
    );
    match up {
        Some(MediaEvent::SlowLink { lost, .. }) => assert_eq!(lost, 30),
        other => panic!("no uplink slow link: {other:?} {seen:?}"),
    }
    set.shutdown()?;
    Ok(())
}
