use std::time::{Duration, Instant};

use super::*;

/// Two associations wired back to back through a simulated link.
struct Pair {
    now: Instant,
    client: SctpAssociation,
    server: SctpAssociation,
    /// Drop every packet from the server to the client (a peer that never reads).
    blackhole_to_client: bool,
}

impl Pair {
    fn new() -> Self {
        let now = Instant::now();
        let mut p = Self {
            now,
            client: SctpAssociation::new(SctpRole::Client),
            server: SctpAssociation::new(SctpRole::Server),
            blackhole_to_client: false,
        };
        p.server.start(now);
        p.client.start(now);
        p
    }

    /// Moves packets both ways until quiet, then runs timers; `ms` of
    /// simulated time in 10 ms steps.
    fn run(&mut self, ms: u64) {
        let end = self.now + Duration::from_millis(ms);
        loop {
            let mut moved = true;
            while moved {
                moved = false;
                while let Some(p) = self.client.poll_transmit() {
                    moved = true;
                    self.server.handle_data(self.now, &p);
                }
                while let Some(p) = self.server.poll_transmit() {
                    moved = true;
                    if !self.blackhole_to_client {
                        self.client.handle_data(self.now, &p);
                    }
                }
            }
            if self.now >= end {
                break;
            }
            self.now += Duration::from_millis(10);
            for a in [&mut self.client, &mut self.server] {
                if a.poll_timeout().is_some_and(|t| t <= self.now) {
                    a.handle_timeout(self.now);
                }
            }
        }
    }
}

fn events(a: &mut SctpAssociation) -> Vec<SctpEvent> {
    std::iter::from_fn(|| a.poll_event()).collect()
}

fn messages(evs: &[SctpEvent]) -> Vec<DataMessage> {
    evs.iter()
        .filter_map(|e| match e {
            SctpEvent::Message(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn connected_pair() -> Pair {
    let mut p = Pair::new();
    p.run(100);
    assert!(p.client.is_connected(), "client connected");
    assert!(p.server.is_connected(), "server connected");
    let ce = events(&mut p.client);
    assert_eq!(ce[..2], [SctpEvent::Connected, SctpEvent::Ready]);
    let se = events(&mut p.server);
    assert_eq!(se[..2], [SctpEvent::Connected, SctpEvent::Ready]);
    p
}

#[test]
fn dcep_open_round_trips() {
    let open = DcepOpen {
        unordered: true,
        reliability: Reliability::MaxRetransmits(3),
        priority: 256,
        label: "chat".into(),
        protocol: "json".into(),
    };
    let bytes = open.encode().expect("short label");
    assert_eq!(parse_dcep(&bytes), Ok(DcepMessage::Open(open)));
    assert_eq!(parse_dcep(&[2]), Ok(DcepMessage::Ack));
    assert_eq!(parse_dcep(&[]), Err(DcepError::Empty));
    assert_eq!(parse_dcep(&[9]), Err(DcepError::UnknownType(9)));
    assert_eq!(parse_dcep(&bytes[..11]), Err(DcepError::Truncated));
    assert_eq!(
        parse_dcep(&bytes[..bytes.len() - 1]),
        Err(DcepError::Truncated)
    );
    let mut bad = bytes.clone();
    bad[1] = 0x05;
    assert_eq!(parse_dcep(&bad), Err(DcepError::UnknownChannelType(5)));
    let timed = DcepOpen {
        unordered: false,
        reliability: Reliability::MaxLifetimeMs(1500),
        priority: 0,
        label: String::new(),
        protocol: String::new(),
    };
    assert_eq!(
        parse_dcep(&timed.encode().expect("empty label")),
        Ok(DcepMessage::Open(timed))
    );
}

#[test]
fn dcep_parser_survives_garbage() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in 0..2000usize {
        let bytes: Vec<u8> = (0..len % 64)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut b = bytes.clone();
        if let Some(first) = b.first_mut() {
            *first = 3;
        }
        let _ = parse_dcep(&bytes);
        let _ = parse_dcep(&b);
    }
}

#[test]
fn server_opened_channel_carries_text_and_binary_both_ways() {
    let mut p = connected_pair();
    p.server
        .send(p.now, "", "", true, b"hello")
        .expect("queued");
    // Long enough for the delayed SACK.
    p.run(400);
    let evs = events(&mut p.client);
    assert!(evs.contains(&SctpEvent::ChannelOpened {
        stream: 1,
        label: DEFAULT_LABEL.into(),
        protocol: String::new(),
    }));
    let m = messages(&evs);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].label, DEFAULT_LABEL);
    assert!(m[0].text);
    assert_eq!(m[0].data, b"hello");
    // The server's own open is reported too, then a Ready once drained.
    let se = events(&mut p.server);
    assert!(
        se.iter()
            .any(|e| matches!(e, SctpEvent::ChannelOpened { stream: 1, .. }))
    );
    assert!(
        se.contains(&SctpEvent::Ready),
        "sender dry after the ack: {se:?}"
    );

    // The client answers on the same label: same stream, binary.
    p.client
        .send(p.now, DEFAULT_LABEL, "", false, &[0, 255, 1])
        .expect("queued");
    p.run(50);
    let m = messages(&events(&mut p.server));
    assert_eq!(m.len(), 1);
    assert!(!m[0].text);
    assert_eq!(m[0].stream, 1);
    assert_eq!(m[0].data, [0, 255, 1]);
    assert_eq!(p.client.channel_count(), 1);
}

#[test]
fn peer_opened_channel_keeps_label_and_protocol() {
    let mut p = connected_pair();
    p.client
        .send(p.now, "chat", "v1.chat", true, "héllo".as_bytes())
        .expect("queued");
    p.run(50);
    let evs = events(&mut p.server);
    assert!(evs.contains(&SctpEvent::ChannelOpened {
        stream: 0,
        label: "chat".into(),
        protocol: "v1.chat".into(),
    }));
    let m = messages(&evs);
    assert_eq!(m.len(), 1);
    assert_eq!(
        (m[0].label.as_str(), m[0].protocol.as_str()),
        ("chat", "v1.chat")
    );
    assert_eq!(m[0].data, "héllo".as_bytes());
    // Server replies by label: no second channel.
    p.server
        .send(p.now, "chat", "", true, b"ok")
        .expect("queued");
    p.run(50);
    let m = messages(&events(&mut p.client));
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].stream, 0);
    assert_eq!(p.server.channel_count(), 1);
}

#[test]
fn empty_and_large_messages() {
    let mut p = connected_pair();
    p.client
        .send(p.now, "x", "", true, b"")
        .expect("empty text");
    p.client
        .send(p.now, "x", "", false, b"")
        .expect("empty binary");
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    p.client.send(p.now, "x", "", false, &big).expect("large");
    p.run(2000);
    let m = messages(&events(&mut p.server));
    assert_eq!(m.len(), 3, "{m:?}");
    assert!(m[0].text && m[0].data.is_empty());
    assert!(!m[1].text && m[1].data.is_empty());
    assert_eq!(m[2].data, big);
    let too_big = vec![0; MAX_MESSAGE_SIZE + 1];
    assert_eq!(
        p.client.send(p.now, "x", "", false, &too_big),
        Err(SctpSendError::Oversized)
    );
    assert_eq!(p.client.stats().dropped_oversized, 1);
}

#[test]
fn unordered_partial_reliable_channel_from_peer() {
    let mut p = connected_pair();
    // The client opens an unordered channel with max 0 retransmits by hand.
    let open = DcepOpen {
        unordered: true,
        reliability: Reliability::MaxRetransmits(0),
        priority: 0,
        label: "fast".into(),
        protocol: String::new(),
    };
    {
        let Some((_, a)) = &mut p.client.association else {
            panic!("client association");
        };
        let mut s = a
            .open_stream(2, PayloadProtocolIdentifier::Binary)
            .expect("stream 2");
        s.write_with_ppi(
            &open.encode().expect("short"),
            PayloadProtocolIdentifier::Dcep,
        )
        .expect("open written");
        s.set_reliability_params(true, ReliabilityType::Rexmit, 0)
            .expect("params");
        p.client.channels.insert(
            2,
            Channel {
                label: "fast".into(),
                protocol: String::new(),
            },
        );
    }
    p.client.drive(p.now);
    for i in 0..20u8 {
        p.client.send(p.now, "fast", "", false, &[i]).expect("sent");
    }
    p.run(100);
    let m = messages(&events(&mut p.server));
    assert_eq!(m.len(), 20);
    let mut got: Vec<u8> = m.iter().map(|m| m.data[0]).collect();
    got.sort_unstable();
    assert_eq!(got, (0..20).collect::<Vec<u8>>());
    // The server answers on it with the channel's reliability.
    p.server
        .send(p.now, "fast", "", true, b"pong")
        .expect("sent");
    p.run(50);
    assert_eq!(messages(&events(&mut p.client)).len(), 1);
}

#[test]
fn messages_sent_before_connect_are_delivered_in_order() {
    let mut p = Pair::new();
    for i in 0..5u8 {
        p.server.send(p.now, "", "", false, &[i]).expect("queued");
    }
    p.run(200);
    let m = messages(&events(&mut p.client));
    assert_eq!(
        m.iter().map(|m| m.data[0]).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
}

#[test]
fn close_reports_to_the_peer() {
    let mut p = connected_pair();
    p.client.send(p.now, "a", "", true, b"1").expect("sent");
    p.run(50);
    assert_eq!(p.server.channel_count(), 1);
    let _ = events(&mut p.server);
    assert!(p.client.close_channel(p.now, "a"));
    assert!(!p.client.close_channel(p.now, "a"));
    p.run(200);
    let evs = events(&mut p.server);
    assert!(
        evs.contains(&SctpEvent::ChannelClosed {
            stream: 0,
            label: "a".into()
        }),
        "{evs:?}"
    );
    assert_eq!(p.server.channel_count(), 0);
    // A message on the closed label reopens a channel.
    p.server.send(p.now, "a", "", true, b"again").expect("sent");
    p.run(200);
    assert_eq!(messages(&events(&mut p.client)).len(), 1);
}

#[test]
fn peer_that_never_reads_bounds_the_queue() {
    let mut p = connected_pair();
    p.blackhole_to_client = true;
    let chunk = vec![7u8; 60_000];
    let mut refused = 0;
    for _ in 0..SEND_QUEUE_BYTES / chunk.len() + 20 {
        if p.server.send(p.now, "", "", false, &chunk) == Err(SctpSendError::QueueFull) {
            refused += 1;
        }
        p.run(10);
    }
    assert!(refused > 0, "some sends are refused");
    assert!(p.server.buffered_amount() <= SEND_QUEUE_BYTES);
    assert_eq!(p.server.stats().dropped_queue_full, refused);
}

#[test]
fn garbage_packets_do_not_disturb_the_association() {
    let mut p = connected_pair();
    let mut x: u32 = 12345;
    for len in 0..500usize {
        let mut pkt: Vec<u8> = (0..len % 200)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        if pkt.len() > 12 && len % 3 == 0 {
            // Zero vtag + INIT to exercise the INIT filter.
            pkt[4..8].fill(0);
            pkt[12] = 1;
        }
        p.server.handle_data(p.now, &pkt);
        p.client.handle_data(p.now, &pkt);
    }
    p.run(50);
    // DCEP for an unknown stream and data on a stream without a channel.
    {
        let Some((_, a)) = &mut p.client.association else {
            panic!("client association");
        };
        let mut s = a
            .open_stream(8, PayloadProtocolIdentifier::Binary)
            .expect("stream");
        s.write_with_ppi(&[DCEP_ACK], PayloadProtocolIdentifier::Dcep)
            .expect("ack");
        s.write_with_ppi(&[0xff, 0], PayloadProtocolIdentifier::Dcep)
            .expect("bad");
        s.write_with_ppi(b"orphan", PayloadProtocolIdentifier::String)
            .expect("orphan");
    }
    p.client.drive(p.now);
    p.run(100);
    let st = p.server.stats();
    assert_eq!(st.dcep_errors, 2, "{st:?}");
    assert_eq!(st.dropped_unknown_stream, 1, "{st:?}");
    assert!(p.server.is_connected() && p.client.is_connected());
    p.client
        .send(p.now, "still", "", true, b"alive")
        .expect("sent");
    p.run(50);
    let m = messages(&events(&mut p.server));
    assert_eq!(m.last().map(|m| m.data.clone()), Some(b"alive".to_vec()));
}

/// CRC32c (Castagnoli) as SCTP uses it (RFC 9260 appendix B).
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Rewrites the checksum of a mutated packet so it reaches the chunk parsers.
fn fix_checksum(packet: &mut [u8]) {
    packet[8..12].fill(0);
    let sum = crc32c(packet);
    packet[8..12].copy_from_slice(&sum.to_le_bytes());
}

#[test]
fn crc32c_matches_the_stack() {
    // A real packet from the stack keeps its checksum when recomputed.
    let mut client = SctpAssociation::new(SctpRole::Client);
    client.start(Instant::now());
    let init = client.poll_transmit().expect("INIT");
    let mut copy = init.to_vec();
    fix_checksum(&mut copy);
    assert_eq!(copy, init.as_ref());
}

#[test]
fn mutated_chunks_with_valid_checksums_never_panic() {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..40 {
        let mut p = connected_pair();
        // Real client traffic to mutate: DCEP OPEN, data, SACKs.
        p.client
            .send(p.now, "m", "proto", round % 2 == 0, &[7; 3000])
            .expect("sent");
        let mut samples = Vec::new();
        for _ in 0..50 {
            while let Some(pkt) = p.client.poll_transmit() {
                samples.push(pkt.to_vec());
                p.server.handle_data(p.now, &pkt);
            }
            while let Some(pkt) = p.server.poll_transmit() {
                p.client.handle_data(p.now, &pkt);
            }
            p.now += Duration::from_millis(10);
            for a in [&mut p.client, &mut p.server] {
                if a.poll_timeout().is_some_and(|t| t <= p.now) {
                    a.handle_timeout(p.now);
                }
            }
        }
        assert!(!samples.is_empty());
        for _ in 0..200 {
            let mut pkt = samples[(rand() as usize) % samples.len()].clone();
            let flips = 1 + (rand() % 4) as usize;
            for _ in 0..flips {
                // Keep the common header's ports and tag: hit the chunks.
                if pkt.len() > 12 {
                    let i = 12 + (rand() as usize) % (pkt.len() - 12);
                    pkt[i] = rand() as u8;
                }
            }
            if rand() % 5 == 0 {
                pkt.truncate(12 + (rand() as usize) % pkt.len().saturating_sub(11).max(1));
            }
            if pkt.len() >= 12 {
                fix_checksum(&mut pkt);
            }
            p.server.handle_data(p.now, &pkt);
            while p.server.poll_transmit().is_some() {}
            while p.server.poll_event().is_some() {}
        }
    }
}
