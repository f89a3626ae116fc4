//! Two shards on loopback, peers built from jsfu-proto's client-side pieces.

mod common;

use std::time::Duration;

use common::{MID_EXT_ID, Peer, route, start_shards, wait_event};
use jsfu_proto::rtp::RtpView;
use jsfu_route::{HangupReason, MediaEvent, PluginSessionId, RouteUpdate, ShardCommand};
use jsfu_shard::DropReason;

const T: Duration = Duration::from_secs(10);

#[test]
fn stun_dtls_webrtcup_local_and_cross_shard_relay_gates_and_garbage() -> anyhow::Result<()> {
    let (set, events, cert) = start_shards(2)?;
    let shard0 = &set.shards()[0];
    let shard1 = &set.shards()[1];
    assert_ne!(shard0.local_addr(), shard1.local_addr());

    // A and B on shard 0, C on shard 1.
    let mut a = Peer::new(1, shard0.local_addr(), &cert)?;
    let mut b = Peer::new(2, shard0.local_addr(), &cert)?;
    let mut c = Peer::new(3, shard1.local_addr(), &cert)?;
    shard0
        .commands()
        .send(ShardCommand::CreatePc(a.pc_config()))?;
    shard0
        .commands()
        .send(ShardCommand::CreatePc(b.pc_config()))?;
    shard1
        .commands()
        .send(ShardCommand::CreatePc(c.pc_config()))?;

    let mut seen = Vec::new();
    for peer in [&mut a, &mut b, &mut c] {
        peer.connect(T)?;
        let session = peer.session;
        let up = wait_event(
            &events,
            &mut seen,
            T,
            |e| matches!(e, MediaEvent::WebrtcUp { session: s } if *s == session),
        );
        assert!(up.is_some(), "no WebrtcUp for {session}");
    }
    assert!(
        seen.iter().any(|e| matches!(e, MediaEvent::IcePairSelected { session, .. } if *session == PluginSessionId(1)))
    );
    let st0 = shard0.stats(T)?;
    assert!(st0.stun_answered >= 2, "{st0:?}");
    assert_eq!(st0.sessions, 2);

    // A publishes to B (same shard) and C (other shard).
    shard0.routes().send(route(1, 1, true, false, &[2, 3]))?;
    shard0.routes().send(route(2, 1, false, true, &[]))?;
    shard1.routes().send(route(3, 1, false, true, &[]))?;
    std::thread::sleep(Duration::from_millis(200));

    for _ in 0..20 {
        a.send_rtp(true, 200).map_err(anyhow::Error::msg)?;
        std::thread::sleep(Duration::from_millis(2));
    }
    let got_b = b.count_rtp(Duration::from_millis(500));
    let got_c = c.count_rtp(Duration::from_millis(500));
    assert_eq!(got_b, 20, "local relay");
    assert_eq!(got_c, 20, "cross-shard relay");

    // What B receives: B's SSRC, the mid extension, continuous numbering.
    a.send_rtp(true, 100).map_err(anyhow::Error::msg)?;
    let n = b.recv_rtp(T).expect("one more packet");
    let view = RtpView::parse(&b.rx()[..n]).expect("valid RTP");
    assert_eq!(view.ssrc().0, b.server_video_ssrc);
    assert_eq!(view.extension(MID_EXT_ID), Some(&b"1"[..]));
    assert_eq!(view.payload().len(), 100);
    let _ = c.count_rtp(Duration::from_millis(200));

    // Close B's receive gate: B gets nothing, C still does.
    shard0.routes().send(route(2, 2, false, false, &[]))?;
    // A stale epoch does not reopen it.
    shard0.routes().send(route(2, 1, false, true, &[]))?;
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..10 {
        a.send_rtp(true, 200).map_err(anyhow::Error::msg)?;
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(b.count_rtp(Duration::from_millis(400)), 0, "gate closed");
    assert_eq!(c.count_rtp(Duration::from_millis(400)), 10);
    let st0 = shard0.stats(T)?;
    assert!(
        st0.dropped(DropReason::RecipientGateClosed) >= 10,
        "{st0:?}"
    );

    // Close A's publish gate: nobody gets anything.
    shard0.routes().send(route(1, 2, false, false, &[2, 3]))?;
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..5 {
        a.send_rtp(true, 200).map_err(anyhow::Error::msg)?;
    }
    assert_eq!(
        c.count_rtp(Duration::from_millis(300)),
        0,
        "publish gate closed"
    );
    shard0.routes().send(route(1, 3, true, false, &[2, 3]))?;
    shard0.routes().send(route(2, 3, false, true, &[]))?;

    // Garbage from a stranger and from A's own address.
    let before = shard0.stats(T)?;
    let stranger = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let garbage: [&[u8]; 6] = [
        &[],
        &[0xff; 40],
        &[0x80, 96, 0, 1],
        &[0x00, 0x01, 0x00, 0x00, 1, 2, 3],
        &[22, 254, 253, 0, 0],
        &[0x90; 100],
    ];
    for g in garbage {
        stranger.send_to(g, shard0.local_addr())?;
        a.socket.send_to(g, shard0.local_addr())?;
    }
    let mut srtp_garbage = [0u8; 60];
    srtp_garbage[0] = 0x80;
    srtp_garbage[1] = 96;
    a.socket.send_to(&srtp_garbage, shard0.local_addr())?;
    std::thread::sleep(Duration::from_millis(300));
    while let Ok(ev) = events.try_recv() {
        assert!(
            !matches!(ev, MediaEvent::Hangup { .. }),
            "garbage hung a PC up: {ev:?}"
        );
        seen.push(ev);
    }
    let after = shard0.stats(T)?;
    assert!(
        after.dropped_total() >= before.dropped_total() + 12,
        "before {before:?}\nafter {after:?}"
    );
    assert!(after.dropped(DropReason::UnknownTuple) > before.dropped(DropReason::UnknownTuple));
    assert!(
        after.dropped(DropReason::SrtpAuth) > before.dropped(DropReason::SrtpAuth),
        "{after:#?}"
    );
    assert!(
        after.dropped(DropReason::UnknownFirstByte) > before.dropped(DropReason::UnknownFirstByte)
    );
    assert_eq!(after.sessions, 2);

    // The sessions are undisturbed.
    for _ in 0..10 {
        a.send_rtp(true, 200).map_err(anyhow::Error::msg)?;
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(b.count_rtp(Duration::from_millis(400)), 10);
    assert_eq!(c.count_rtp(Duration::from_millis(400)), 10);

    // closePc: a hangup with the script's reason, and the PC is gone.
    shard1.commands().send(ShardCommand::ClosePc {
        session: PluginSessionId(3),
        reason: HangupReason::ClosePc,
    })?;
    let hangup = wait_event(&events, &mut seen, T, |e| {
        matches!(e, MediaEvent::Hangup { .. })
    });
    assert_eq!(
        hangup,
        Some(MediaEvent::Hangup {
            session: PluginSessionId(3),
            reason: HangupReason::ClosePc
        })
    );
    assert_eq!(shard1.stats(T)?.sessions, 0);

    set.shutdown()?;
    Ok(())
}

#[test]
fn bad_fingerprint_hangs_up_with_dtls_alert() -> anyhow::Result<()> {
    let (set, events, cert) = start_shards(1)?;
    let shard = &set.shards()[0];
    let mut a = Peer::new(7, shard.local_addr(), &cert)?;
    let mut config = a.pc_config();
    // Pin a different certificate.
    let other = jsfu_proto::dtls::DtlsCert::generate(std::time::SystemTime::now())?;
    config.remote_fingerprint.value = other.fingerprint().to_string();
    shard.commands().send(ShardCommand::CreatePc(config))?;
    assert!(a.connect(Duration::from_secs(2)).is_err());
    let mut seen = Vec::new();
    let hangup = wait_event(&events, &mut seen, T, |e| {
        matches!(e, MediaEvent::Hangup { .. })
    });
    assert_eq!(
        hangup,
        Some(MediaEvent::Hangup {
            session: PluginSessionId(7),
            reason: HangupReason::DtlsAlert
        })
    );
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, MediaEvent::WebrtcUp { .. }))
    );
    set.shutdown()?;
    Ok(())
}

/// A check that arrives before its PeerConnection is kept and answered as
/// soon as the PeerConnection is created, without the client resending it.
#[test]
fn early_check_is_answered_when_the_pc_appears() -> anyhow::Result<()> {
    let (set, _events, cert) = start_shards(1)?;
    let shard = &set.shards()[0];
    let a = Peer::new(9, shard.local_addr(), &cert)?;
    let mut out = [0u8; 256];
    let txid = [9u8; 12];
    let n = a.write_check(&mut out, txid)?;
    a.socket.send_to(&out[..n], shard.local_addr())?;
    // Nothing answers a check for an ufrag no PeerConnection has.
    let mut buf = [0u8; 1500];
    std::thread::sleep(Duration::from_millis(100));
    assert!(a.socket.recv_from(&mut buf).is_err(), "no answer yet");
    let stats = shard.stats(T)?;
    assert_eq!(stats.stun_early_kept, 1);
    assert_eq!(stats.stun_answered, 0);
    shard
        .commands()
        .send(ShardCommand::CreatePc(a.pc_config()))?;
    let deadline = std::time::Instant::now() + T;
    let answer = loop {
        if let Ok((len, _)) = a.socket.recv_from(&mut buf) {
            if buf[0] < 4 {
                break Some(len);
            }
        }
        if std::time::Instant::now() > deadline {
            break None;
        }
    };
    let len = answer.expect("the kept check is answered once the PC exists");
    let msg = jsfu_proto::stun::parse(&buf[..len]).map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(msg.transaction_id(), jsfu_proto::stun::TransactionId(txid));
    let stats = shard.stats(T)?;
    assert_eq!((stats.stun_early_replayed, stats.stun_answered), (1, 1));
    set.shutdown()?;
    Ok(())
}

/// Each packet of an RTCP compound: (packet type, FMT, bytes).
fn rtcp_packets(mut buf: &[u8]) -> Vec<(u8, u8, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = (usize::from(u16::from_be_bytes([buf[2], buf[3]])) + 1) * 4;
        if len > buf.len() {
            break;
        }
        out.push((buf[1], buf[0] & 0x1f, &buf[..len]));
        buf = &buf[len..];
    }
    out
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[test]
fn nack_pli_remb_and_reports() -> anyhow::Result<()> {
    let (set, events, cert) = start_shards(1)?;
    let shard = &set.shards()[0];
    let mut a = Peer::new(11, shard.local_addr(), &cert)?;
    let mut b = Peer::new(12, shard.local_addr(), &cert)?;
    shard
        .commands()
        .send(ShardCommand::CreatePc(a.pc_config()))?;
    shard
        .commands()
        .send(ShardCommand::CreatePc(b.pc_config()))?;
    a.connect(T)?;
    b.connect(T)?;
    let mut seen = Vec::new();
    for id in [11, 12] {
        assert!(
            wait_event(&events, &mut seen, T, |e| {
                matches!(e, MediaEvent::WebrtcUp { session } if session.0 == id)
            })
            .is_some()
        );
    }
    let RouteUpdate::Route {
        session,
        route: mut a_route,
    } = route(11, 1, true, false, &[12])
    else {
        unreachable!("route() builds a Route");
    };
    a_route.bitrate_cap = 256_000;
    shard.routes().send(RouteUpdate::Route {
        session,
        route: a_route,
    })?;
    shard.routes().send(route(12, 1, false, true, &[]))?;
    std::thread::sleep(Duration::from_millis(200));

    // B "loses" a packet, NACKs it and gets the same SRTP bytes again.
    a.send_rtp(true, 300).map_err(anyhow::Error::msg)?;
    let len = b.recv_raw_rtp(T).expect("relayed packet");
    let lost = b.rx()[..len].to_vec();
    let seq = u16::from_be_bytes([lost[2], lost[3]]);
    let mut nack = [0u8; 16];
    nack[0] = 0x81;
    nack[1] = 205;
    nack[3] = 3;
    nack[4..8].copy_from_slice(&b.ssrc.to_be_bytes());
    nack[8..12].copy_from_slice(&b.server_video_ssrc.to_be_bytes());
    nack[12..14].copy_from_slice(&seq.to_be_bytes());
    b.send_rtcp(&nack).map_err(anyhow::Error::msg)?;
    let len = b.recv_raw_rtp(T).expect("retransmission");
    assert_eq!(&b.rx()[..len], &lost[..]);
    assert!(b.unprotect_rx(len).is_some(), "retransmission decrypts");

    // B asks for a keyframe: A (B's current sender) gets a PLI about A's SSRC.
    let mut pli = [0u8; 12];
    pli[0] = 0x81;
    pli[1] = 206;
    pli[3] = 2;
    pli[4..8].copy_from_slice(&b.ssrc.to_be_bytes());
    pli[8..12].copy_from_slice(&b.server_video_ssrc.to_be_bytes());
    b.send_rtcp(&pli).map_err(anyhow::Error::msg)?;
    let a_ssrc = a.ssrc;
    assert!(
        a.wait_rtcp(T, |c| rtcp_packets(c)
            .iter()
            .any(|(pt, fmt, p)| *pt == 206 && *fmt == 1 && be32(p, 8) == a_ssrc)),
        "PLI forwarded to the sender"
    );

    // A's REMB is answered with A's cap.
    let mut remb = [0u8; 24];
    remb[0] = 0x8f;
    remb[1] = 206;
    remb[3] = 5;
    remb[4..8].copy_from_slice(&a.ssrc.to_be_bytes());
    remb[12..16].copy_from_slice(b"REMB");
    remb[16] = 1;
    remb[17] = 10 << 2; // 2^10 * small mantissa
    remb[19] = 100;
    b.send_rtp(true, 10).map_err(anyhow::Error::msg)?;
    a.send_rtcp(&remb).map_err(anyhow::Error::msg)?;
    assert!(
        a.wait_rtcp(T, |c| rtcp_packets(c).iter().any(|(pt, fmt, p)| {
            if *pt != 206 || *fmt != 15 || p.len() < 24 {
                return false;
            }
            let exp = u32::from(p[17] >> 2);
            let mantissa =
                (u32::from(p[17] & 3) << 16) | u32::from(u16::from_be_bytes([p[18], p[19]]));
            &p[12..16] == b"REMB" && (u64::from(mantissa) << exp) == 256_000
        })),
        "REMB answered with the cap"
    );

    // Reports: A gets an RR about its stream, B an SR from its video SSRC.
    let b_ssrc = b.server_video_ssrc;
    assert!(
        a.wait_rtcp(Duration::from_secs(3), |c| rtcp_packets(c).iter().any(
            |(pt, _, p)| *pt == 201 && p.len() >= 32 && be32(p, 8) == a_ssrc
        )),
        "RR about the peer's stream"
    );
    assert!(
        b.wait_rtcp(Duration::from_secs(3), |c| rtcp_packets(c)
            .iter()
            .any(|(pt, _, p)| *pt == 200 && be32(p, 4) == b_ssrc)),
        "SR for what B receives"
    );
    let stats = shard.stats(T)?;
    assert!(
        stats.retransmissions >= 1 && stats.plis_sent >= 1,
        "{stats:?}"
    );
    set.shutdown()?;
    Ok(())
}
