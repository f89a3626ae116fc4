//! A hand-rolled WebRTC peer made of jsfu-proto's own pieces (STUN writer,
//! DTLS endpoint, SRTP), used to drive shards over loopback.
#![allow(dead_code, unreachable_pub)]

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime};

use jsfu_proto::dtls::{DtlsCert, DtlsConfig, DtlsContext, DtlsEndpoint, DtlsEvent, DtlsRole};
use jsfu_proto::srtp::{SrtpKeys, SrtpSession};
use jsfu_proto::stun::{self, Class, Method, StunKey, StunWriter, TransactionId};
use jsfu_route::{
    DtlsRole as RouteDtlsRole, Epoch, Fingerprint, Gates, HeaderExtensionIds, MediaDescription,
    MediaEvent, Medium, PayloadType, PcConfig, PluginSessionId, RouteUpdate, SessionRoute,
};
use jsfu_shard::{ShardSet, ShardSetConfig};

pub const VIDEO_PT: u8 = 96;
pub const AUDIO_PT: u8 = 111;
pub const MID_EXT_ID: u8 = 4;

/// The server certificate's context, and a started shard set.
pub fn start_shards(
    shards: usize,
) -> anyhow::Result<(ShardSet, flume::Receiver<MediaEvent>, DtlsCert)> {
    let cert = DtlsCert::generate(SystemTime::now())?;
    let ctx = DtlsContext::new(&cert, &DtlsConfig::default())?;
    let (tx, rx) = flume::bounded(4096);
    let mut cfg = ShardSetConfig::new("127.0.0.1".parse()?, ctx, tx);
    cfg.shards = shards;
    cfg.stats_interval = Duration::ZERO;
    let set = jsfu_shard::start(cfg)?;
    Ok((set, rx, cert))
}

/// Waits for an event matching `pred`, returning it; other events are kept
/// in `seen`.
pub fn wait_event(
    rx: &flume::Receiver<MediaEvent>,
    seen: &mut Vec<MediaEvent>,
    timeout: Duration,
    pred: impl Fn(&MediaEvent) -> bool,
) -> Option<MediaEvent> {
    if let Some(i) = seen.iter().position(&pred) {
        return Some(seen.remove(i));
    }
    let deadline = Instant::now() + timeout;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(ev) if pred(&ev) => return Some(ev),
            Ok(ev) => seen.push(ev),
            Err(_) => return None,
        }
    }
    None
}

/// A route: what `session` publishes and receives, and to whom it sends.
pub fn route(
    session: u32,
    epoch: u64,
    publish: bool,
    receive: bool,
    recipients: &[u32],
) -> RouteUpdate {
    RouteUpdate::Route {
        session: PluginSessionId(session),
        route: SessionRoute {
            epoch: Epoch(epoch),
            gates: Gates {
                receive_audio: receive,
                receive_video: receive,
                receive_data: false,
                publish_audio: publish,
                publish_video: publish,
                publish_data: false,
            },
            recipients: recipients.iter().map(|&r| PluginSessionId(r)).collect(),
            ..SessionRoute::default()
        },
    }
}

pub struct Peer {
    pub session: PluginSessionId,
    pub socket: UdpSocket,
    pub server: SocketAddr,
    server_ufrag: String,
    server_pwd: String,
    ufrag: String,
    cert: DtlsCert,
    dtls: DtlsEndpoint,
    pub srtp_out: Option<SrtpSession>,
    pub srtp_in: Option<SrtpSession>,
    /// The SSRC the server sends this peer's video with.
    pub server_video_ssrc: u32,
    pub ssrc: u32,
    seq: u16,
    buf: Box<[u8; 2048]>,
    tx: Box<[u8; 2048]>,
}

impl Peer {
    pub fn new(session: u32, server: SocketAddr, server_cert: &DtlsCert) -> anyhow::Result<Self> {
        let cert = DtlsCert::generate(SystemTime::now())?;
        let ctx = DtlsContext::new(&cert, &DtlsConfig::default())?;
        let dtls = DtlsEndpoint::new(&ctx, DtlsRole::Server, *server_cert.fingerprint())?;
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(20)))?;
        Ok(Self {
            session: PluginSessionId(session),
            socket,
            server,
            server_ufrag: format!("sv{session:02}"),
            server_pwd: format!("serverpassword{session:08}"),
            ufrag: format!("pe{session:02}"),
            cert,
            dtls,
            srtp_out: None,
            srtp_in: None,
            server_video_ssrc: 0x5000_0000 + session,
            ssrc: 0x1000_0000 + session,
            seq: 1000,
            buf: Box::new([0; 2048]),
            tx: Box::new([0; 2048]),
        })
    }

    /// The PcConfig control would send for this peer.
    pub fn pc_config(&self) -> Box<PcConfig> {
        let fp = self.cert.fingerprint();
        Box::new(PcConfig {
            session: self.session,
            local_ufrag: self.server_ufrag.clone(),
            local_pwd: self.server_pwd.clone(),
            remote_ufrag: self.ufrag.clone(),
            remote_pwd: "peerpasswordpeerpassword".to_owned(),
            dtls_role: RouteDtlsRole::Client,
            remote_fingerprint: Fingerprint {
                algorithm: fp.algorithm().sdp_name().to_owned(),
                value: fp.to_string(),
            },
            media: vec![
                MediaDescription {
                    index: 0,
                    mid: "0".to_owned(),
                    kind: Medium::Audio,
                    send: true,
                    recv: true,
                    payload_types: vec![PayloadType {
                        pt: AUDIO_PT,
                        codec: "opus".to_owned(),
                        clock_rate: 48_000,
                    }],
                    rtx: vec![],
                    local_ssrc: 0x4000_0000 + self.session.0,
                    local_rtx_ssrc: None,
                    remote_ssrcs: vec![],
                    remote_rtx_ssrcs: vec![],
                    rids: vec![],
                    extensions: HeaderExtensionIds::default(),
                    nack: false,
                },
                MediaDescription {
                    index: 1,
                    mid: "1".to_owned(),
                    kind: Medium::Video,
                    send: true,
                    recv: true,
                    payload_types: vec![PayloadType {
                        pt: VIDEO_PT,
                        codec: "vp8".to_owned(),
                        clock_rate: 90_000,
                    }],
                    rtx: vec![],
                    local_ssrc: self.server_video_ssrc,
                    local_rtx_ssrc: None,
                    remote_ssrcs: vec![],
                    remote_rtx_ssrcs: vec![],
                    rids: vec![],
                    extensions: HeaderExtensionIds {
                        mid: Some(MID_EXT_ID),
                        ..HeaderExtensionIds::default()
                    },
                    nack: true,
                },
            ],
            data_channel: false,
            script_incoming_rtp: false,
            script_incoming_rtcp: false,
            script_incoming_text_data: false,
            script_incoming_binary_data: false,
        })
    }

    /// Writes a nominating Binding request into `out`.
    pub fn write_check(&self, out: &mut [u8], txid: [u8; 12]) -> anyhow::Result<usize> {
        let key = StunKey::short_term(self.server_pwd.as_bytes())?;
        let mut w = StunWriter::new(out, Class::Request, Method::BINDING, &TransactionId(txid))?;
        w.add_username(format!("{}:{}", self.server_ufrag, self.ufrag).as_bytes())?;
        w.add_priority(0x6e00_1eff)?;
        w.add_ice_controlling(0x1234_5678_9abc_def0)?;
        w.add_use_candidate()?;
        w.add_message_integrity(&key)?;
        w.add_fingerprint()?;
        Ok(w.finish())
    }

    /// ICE check answered, then DTLS as server until SRTP keys exist.
    pub fn connect(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut out = [0u8; 256];
        let txid = [7u8; 12];
        let n = self.write_check(&mut out, txid)?;
        self.socket.send_to(&out[..n], self.server)?;
        let mut answered = false;
        let mut last_check = Instant::now();
        while Instant::now() < deadline {
            if !answered && last_check.elapsed() > Duration::from_millis(200) {
                self.socket.send_to(&out[..n], self.server)?;
                last_check = Instant::now();
            }
            if let Some(t) = self.dtls.poll_timeout() {
                if t <= Instant::now() {
                    self.dtls.handle_timeout(Instant::now());
                }
            }
            self.flush_dtls()?;
            let len = match self.socket.recv_from(&mut self.buf[..]) {
                Ok((len, _)) => len,
                Err(_) => continue,
            };
            let first = self.buf[0];
            if first < 4 {
                let msg = stun::parse(&self.buf[..len]).map_err(|e| anyhow::anyhow!("{e}"))?;
                anyhow::ensure!(msg.class() == Class::Success, "check refused");
                anyhow::ensure!(msg.transaction_id() == TransactionId(txid));
                let key = StunKey::short_term(self.server_pwd.as_bytes())?;
                msg.verify_integrity(&key)
                    .map_err(|e| anyhow::anyhow!("response integrity: {e}"))?;
                anyhow::ensure!(
                    msg.xor_mapped_address() == Some(self.socket.local_addr()?),
                    "wrong XOR-MAPPED-ADDRESS"
                );
                answered = true;
            } else if (20..64).contains(&first) {
                let now = Instant::now();
                self.dtls.handle_datagram(now, &self.buf[..len]);
                self.flush_dtls()?;
                while let Some(ev) = self.dtls.poll_event() {
                    match ev {
                        DtlsEvent::Connected(keys) => {
                            let profile = keys.profile;
                            self.srtp_out = Some(SrtpSession::outbound(&SrtpKeys::new(
                                profile,
                                keys.local.key(),
                                keys.local.salt(),
                            )?)?);
                            self.srtp_in = Some(SrtpSession::inbound(&SrtpKeys::new(
                                profile,
                                keys.remote.key(),
                                keys.remote.salt(),
                            )?)?);
                        }
                        other => anyhow::bail!("DTLS: {other:?}"),
                    }
                }
                if answered && self.srtp_out.is_some() {
                    return Ok(());
                }
            }
        }
        anyhow::bail!("peer {} did not connect", self.session)
    }

    fn flush_dtls(&mut self) -> anyhow::Result<()> {
        while let Some(d) = self.dtls.poll_transmit() {
            self.socket.send_to(d, self.server)?;
        }
        Ok(())
    }

    /// Protects and sends one RTP packet; no allocation.
    pub fn send_rtp(&mut self, video: bool, payload_len: usize) -> Result<(), &'static str> {
        self.seq = self.seq.wrapping_add(1);
        let out = &mut self.tx[..];
        out[0] = 0x80;
        out[1] = if video { VIDEO_PT } else { AUDIO_PT };
        out[2..4].copy_from_slice(&self.seq.to_be_bytes());
        out[4..8].copy_from_slice(&(u32::from(self.seq) * 3000).to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        for (i, b) in out[12..12 + payload_len].iter_mut().enumerate() {
            *b = i as u8;
        }
        let len = 12 + payload_len;
        let srtp = self.srtp_out.as_mut().ok_or("no keys")?;
        let n = srtp.protect_rtp(out, len).map_err(|_| "protect failed")?;
        self.socket
            .send_to(&out[..n], self.server)
            .map_err(|_| "send failed")?;
        Ok(())
    }

    /// Receives until an SRTP packet decrypts or the timeout passes; returns
    /// the plaintext length (in `self.rx()`); no allocation.
    pub fn recv_rtp(&mut self, timeout: Duration) -> Option<usize> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let Ok((len, _)) = self.socket.recv_from(&mut self.buf[..]) else {
                continue;
            };
            let b1 = self.buf[1];
            if self.buf[0] >> 6 != 2 || (192..=223).contains(&b1) {
                continue;
            }
            let Some(srtp) = self.srtp_in.as_mut() else {
                continue;
            };
            if let Ok(n) = srtp.unprotect_rtp(&mut self.buf[..len]) {
                return Some(n);
            }
        }
        None
    }

    /// Drains everything that arrives within `window`, counting RTP.
    pub fn count_rtp(&mut self, window: Duration) -> usize {
        let mut n = 0;
        let deadline = Instant::now() + window;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if self.recv_rtp(left).is_some() {
                n += 1;
            }
        }
        n
    }

    /// Protects and sends one RTCP compound.
    pub fn send_rtcp(&mut self, plain: &[u8]) -> Result<(), &'static str> {
        let out = &mut self.tx[..];
        out[..plain.len()].copy_from_slice(plain);
        let srtp = self.srtp_out.as_mut().ok_or("no keys")?;
        let n = srtp
            .protect_rtcp(out, plain.len())
            .map_err(|_| "protect failed")?;
        self.socket
            .send_to(&out[..n], self.server)
            .map_err(|_| "send failed")?;
        Ok(())
    }

    /// Receives the next SRTP datagram without decrypting it (a "lost"
    /// packet); its bytes stay in `rx()`.
    pub fn recv_raw_rtp(&mut self, timeout: Duration) -> Option<usize> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let Ok((len, _)) = self.socket.recv_from(&mut self.buf[..]) else {
                continue;
            };
            if self.buf[0] >> 6 == 2 && !(192..=223).contains(&self.buf[1]) {
                return Some(len);
            }
        }
        None
    }

    /// Decrypts a datagram already in `rx()[..len]` as SRTP.
    pub fn unprotect_rx(&mut self, len: usize) -> Option<usize> {
        self.srtp_in
            .as_mut()?
            .unprotect_rtp(&mut self.buf[..len])
            .ok()
    }

    /// Receives SRTCP until a decrypted compound satisfies `pred`.
    pub fn wait_rtcp(&mut self, timeout: Duration, pred: impl Fn(&[u8]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let Ok((len, _)) = self.socket.recv_from(&mut self.buf[..]) else {
                continue;
            };
            if !(192..=223).contains(&self.buf[1]) {
                continue;
            }
            let Some(srtp) = self.srtp_in.as_mut() else {
                continue;
            };
            if let Ok(n) = srtp.unprotect_rtcp(&mut self.buf[..len]) {
                if pred(&self.buf[..n]) {
                    return true;
                }
            }
        }
        false
    }

    /// The last received plaintext.
    pub fn rx(&self) -> &[u8] {
        &self.buf[..]
    }
}
