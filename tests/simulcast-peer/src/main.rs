//! `jsfu-simulcast-peer`: a str0m peer (RTP mode) that publishes three rid
//! simulcast layers of VP8-like RTP through an echo script and checks which
//! layer comes back.
//!
//! ```text
//! jsfu-simulcast-peer --url http://127.0.0.1:8088/janus [--initial 0|1|2]
//! ```
//!
//! The offer has one sendrecv VP8 m-line with `a=simulcast:send f;h;q`
//! (high first). Every 33 ms the peer sends one packet per active layer: a
//! VP8 payload descriptor (15-bit PictureID, TL0PICIDX, TID; temporal pattern
//! 0,2,1,2), a VP8 payload header (a key frame every 2 s and after each
//! keyframe request) and a marker `SIM`, layer, temporal id, frame index —
//! so each echoed packet tells which layer and temporal layer it is.
//!
//! Steps (each a check in the JSON summary on stdout):
//!
//! 1. `initial`: `{"substream": N}` (when N is not 2); only layer N comes
//!    back and the script reports `substream: N` (substreamChanged).
//! 2. `switch`: the other extreme (2 or 0); the first echoed packet of the
//!    new layer is a key frame; `substream` event.
//! 3. `fallback`: on target 2, layer 2 stops: layer 1 comes back within
//!    500 ms with a `substream: 1` event; `resume`: layer 2 resumes, comes
//!    back, `substream: 2` event.
//! 4. `temporal`: `{"temporal": 0}`: only temporal id 0 comes back and a
//!    `temporal: 0` event arrives; `{"temporal": 2}` brings 1 and 2 back.
//! 5. `continuity`: echoed sequence numbers never skip or repeat and picture
//!    ids move forward by less than 8 across every switch.
//!
//! Exit status 0 when every check passed, 1 otherwise, 2 on a usage error.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value, json};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, MediaKind, Mid, Pt, Rid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

/// The rids, lowest layer first (the offer lists them high first).
const RIDS: [&str; 3] = ["q", "h", "f"];
/// Frame interval (30 fps).
const FRAME: Duration = Duration::from_micros(33_333);
/// A key frame on every layer this often (and after keyframe requests).
const KEY_EVERY: u32 = 60;
/// Offset of the `SIM` marker in the payload (6-byte descriptor, 10-byte header).
const MARK_AT: usize = 16;

struct Janus {
    base: String,
    client: reqwest::blocking::Client,
    session: u64,
    handle: u64,
    events: Receiver<Value>,
    stop: Arc<AtomicBool>,
    seen: Vec<Value>,
    counter: u64,
}

impl Janus {
    fn connect(url: &str, plugin: &str) -> Result<Self> {
        let base = url.trim_end_matches('/').to_owned();
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(40))
            .build()
            .context("building the HTTP client")?;
        let post = |url: &str, body: Value| -> Result<Value> {
            let reply: Value = client.post(url).json(&body).send()?.json()?;
            Ok(reply)
        };
        let r = post(&base, json!({"janus": "create", "transaction": "c"}))?;
        let session = r["data"]["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("create: {r}"))?;
        let r = post(
            &format!("{base}/{session}"),
            json!({"janus": "attach", "plugin": plugin, "transaction": "a"}),
        )?;
        let handle = r["data"]["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("attach: {r}"))?;
        let (tx, events) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        {
            let client = client.clone();
            let url = format!("{base}/{session}?maxev=10");
            let stop = stop.clone();
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let got = client
                        .get(&url)
                        .send()
                        .and_then(reqwest::blocking::Response::json::<Value>);
                    match got {
                        Ok(Value::Array(list)) => {
                            for ev in list {
                                if tx.send(ev).is_err() {
                                    return;
                                }
                            }
                        }
                        Ok(ev) => {
                            if tx.send(ev).is_err() {
                                return;
                            }
                        }
                        Err(_) => thread::sleep(Duration::from_millis(200)),
                    }
                }
            });
        }
        Ok(Self {
            base,
            client,
            session,
            handle,
            events,
            stop,
            seen: Vec::new(),
            counter: 0,
        })
    }

    fn message(&mut self, body: Value, jsep: Option<Value>) -> Result<Value> {
        self.counter += 1;
        let mut req = json!({"janus": "message", "body": body,
                             "transaction": format!("m{}", self.counter)});
        if let Some(jsep) = jsep {
            req["jsep"] = jsep;
        }
        let url = format!("{}/{}/{}", self.base, self.session, self.handle);
        let reply: Value = self.client.post(&url).json(&req).send()?.json()?;
        if reply["janus"] != "ack" && reply["janus"] != "success" {
            bail!("message {body}: {reply}");
        }
        Ok(reply)
    }

    fn drain(&mut self) {
        while let Ok(ev) = self.events.try_recv() {
            self.seen.push(ev);
        }
    }

    /// The index of the first event at or after `from` that is an echotest
    /// event whose `key` equals `value`.
    fn find(&self, from: usize, key: &str, value: u64) -> Option<usize> {
        (from..self.seen.len())
            .find(|&i| self.seen[i]["plugindata"]["data"][key].as_u64() == Some(value))
    }

    fn close(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let url = format!("{}/{}", self.base, self.session);
        let _ = self
            .client
            .post(&url)
            .json(&json!({"janus": "destroy", "transaction": "d"}))
            .send();
    }
}

/// What this peer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Publish and receive the echo (echo script).
    Echo,
    /// Publish only (fan-out script).
    Publisher,
    /// Receive only (fan-out script).
    Viewer,
}

/// One simulcast layer this peer sends.
struct Layer {
    rid: Rid,
    seq: u64,
    pid: u16,
    tl0: u8,
    active: bool,
}

/// One echoed packet.
#[derive(Debug, Clone, Copy)]
struct Echo {
    at: Instant,
    layer: u8,
    tid: u8,
    key: bool,
    seq: u16,
    pid: u16,
}

struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    buf: Vec<u8>,
    mid: Mid,
    pt: Option<Pt>,
    pending: Option<SdpPendingOffer>,
    /// Publishes (echo and publisher roles).
    sends: bool,
    layers: Vec<Layer>,
    frame: u32,
    next_frame: Instant,
    want_key: bool,
    connected: bool,
    echoes: Vec<Echo>,
    foreign: u32,
    keyframe_requests: u32,
    error: Option<String>,
}

impl Peer {
    fn offer(role: Role) -> Result<(Self, String)> {
        let socket = UdpSocket::bind("127.0.0.1:0").context("binding a UDP socket")?;
        let local = socket.local_addr()?;
        let mut rtc = RtcConfig::new()
            .clear_codecs()
            .enable_vp8(true)
            .set_rtp_mode(true)
            .build(Instant::now());
        let candidate = Candidate::host(local, "udp").map_err(|e| anyhow!("candidate: {e}"))?;
        rtc.add_local_candidate(candidate)
            .ok_or_else(|| anyhow!("str0m refused the candidate"))?;
        let mut simulcast = Simulcast::new();
        for rid in RIDS.iter().rev() {
            simulcast.add_send_layer(SimulcastLayer {
                rid: (*rid).into(),
                attributes: None,
            });
        }
        let mut api = rtc.sdp_api();
        let mid = api.add_media(
            MediaKind::Video,
            match role {
                Role::Echo => Direction::SendRecv,
                Role::Publisher => Direction::SendOnly,
                Role::Viewer => Direction::RecvOnly,
            },
            Some("sim".into()),
            Some("sim-video".into()),
            (role != Role::Viewer).then_some(simulcast),
        );
        let (offer, pending) = api.apply().ok_or_else(|| anyhow!("no offer"))?;
        let layers = RIDS
            .iter()
            .enumerate()
            .map(|(i, rid)| Layer {
                rid: (*rid).into(),
                seq: 1000 * (i as u64 + 1),
                pid: 100 * (i as u16 + 1),
                tl0: 10 * (i as u8 + 1),
                active: true,
            })
            .collect();
        let peer = Self {
            rtc,
            socket,
            local,
            buf: vec![0; 2000],
            mid,
            pt: None,
            pending: Some(pending),
            sends: role != Role::Viewer,
            layers,
            frame: 0,
            next_frame: Instant::now(),
            want_key: true,
            connected: false,
            echoes: Vec::new(),
            foreign: 0,
            keyframe_requests: 0,
            error: None,
        };
        Ok((peer, offer.to_sdp_string()))
    }

    fn accept_answer(&mut self, sdp: &str) -> Result<()> {
        let answer = SdpAnswer::from_sdp_string(sdp).context("parsing the answer")?;
        let pending = self.pending.take().ok_or_else(|| anyhow!("no offer"))?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .context("str0m rejected the answer")?;
        // The VP8 payload type of the answer.
        let pt = sdp.lines().find_map(|l| {
            let rest = l.strip_prefix("a=rtpmap:")?;
            let (pt, codec) = rest.split_once(' ')?;
            codec
                .to_ascii_lowercase()
                .starts_with("vp8/")
                .then(|| pt.parse::<u8>().ok())
                .flatten()
        });
        self.pt = Some(pt.ok_or_else(|| anyhow!("no VP8 in the answer"))?.into());
        // str0m 0.24 expects the answer's `a=rid` lines (the server's recv
        // rids) on what it receives too, and so drops the server's rid-less
        // stream: declare that stream (the answer's SSRC and its FID
        // partner) explicitly.
        let fid = sdp.lines().find_map(|l| {
            let mut t = l.strip_prefix("a=ssrc-group:FID ")?.split(' ');
            Some((
                t.next()?.parse::<u32>().ok()?,
                t.next()?.parse::<u32>().ok(),
            ))
        });
        let first = sdp.lines().find_map(|l| {
            let rest = l.strip_prefix("a=ssrc:")?;
            rest.split(' ').next()?.parse::<u32>().ok()
        });
        let (main, rtx) = fid
            .or(first.map(|s| (s, None)))
            .ok_or_else(|| anyhow!("no a=ssrc in the answer"))?;
        self.rtc
            .direct_api()
            .expect_stream_rx(main.into(), rtx.map(Into::into), self.mid, None);
        Ok(())
    }

    /// Drive the connection until `until`, sending frames when connected.
    fn pump(&mut self, until: Instant) {
        while Instant::now() < until && self.error.is_none() {
            if self.sends && self.connected && Instant::now() >= self.next_frame {
                self.send_frame();
                self.next_frame += FRAME;
            }
            let mut deadline = until;
            if let Some(t) = self.poll() {
                deadline = deadline.min(t);
            }
            if self.sends && self.connected {
                deadline = deadline.min(self.next_frame);
            }
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            self.read(wait);
        }
    }

    fn send_frame(&mut self) {
        let Some(pt) = self.pt else { return };
        let key = self.want_key || self.frame % KEY_EVERY == 0;
        self.want_key = false;
        let tid = if key {
            0
        } else {
            [0u8, 2, 1, 2][(self.frame % 4) as usize]
        };
        let time = self.frame.wrapping_mul(3000);
        let now = Instant::now();
        for (i, layer) in self.layers.iter_mut().enumerate() {
            if !layer.active {
                continue;
            }
            layer.pid = (layer.pid + 1) & 0x7fff;
            if tid == 0 {
                layer.tl0 = layer.tl0.wrapping_add(1);
            }
            layer.seq += 1;
            let payload = payload(i as u8, tid, key, layer.pid, layer.tl0, self.frame);
            let mut api = self.rtc.direct_api();
            let Some(stream) = api.stream_tx_by_mid(self.mid, Some(layer.rid)) else {
                self.error = Some(format!("no send stream for rid {}", layer.rid));
                return;
            };
            stream.write_rtp(
                RtpWrite::new(pt, SeqNo::from(layer.seq), time, now, payload).marker(true),
            );
        }
        self.frame += 1;
    }

    fn poll(&mut self) -> Option<Instant> {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => return Some(t),
                Ok(Output::Transmit(t)) => {
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(ev)) => self.on_event(ev),
                Err(e) => {
                    self.error = Some(format!("poll_output: {e}"));
                    return None;
                }
            }
        }
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Connected => {
                self.connected = true;
                self.next_frame = Instant::now();
            }
            Event::KeyframeRequest(_) => {
                self.keyframe_requests += 1;
                self.want_key = true;
            }
            Event::RtpPacket(p) => match parse_echo(&p.payload) {
                Some((layer, tid, key, pid)) => self.echoes.push(Echo {
                    at: Instant::now(),
                    layer,
                    tid,
                    key,
                    seq: p.header.sequence_number,
                    pid,
                }),
                None => self.foreign += 1,
            },
            _ => {}
        }
    }

    fn read(&mut self, wait: Duration) {
        if self.socket.set_read_timeout(Some(wait)).is_err() {
            return;
        }
        let input = match self.socket.recv_from(&mut self.buf) {
            Ok((n, source)) => {
                let Ok(contents) = self.buf[..n].try_into() else {
                    return;
                };
                Input::Receive(
                    Instant::now(),
                    Receive {
                        proto: Protocol::Udp,
                        source,
                        destination: self.local,
                        contents,
                    },
                )
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Input::Timeout(Instant::now())
            }
            Err(e) => {
                self.error = Some(format!("recv_from: {e}"));
                return;
            }
        };
        if let Err(e) = self.rtc.handle_input(input) {
            self.error = Some(format!("handle_input: {e}"));
        }
    }

    fn echoes_since(&self, t: Instant) -> impl Iterator<Item = &Echo> {
        self.echoes.iter().filter(move |e| e.at >= t)
    }
}

/// A VP8 RTP payload: descriptor (X, S; I with a 15-bit PictureID, L, T),
/// a 10-byte VP8 payload header, then `SIM`, layer, tid, frame index.
fn payload(layer: u8, tid: u8, key: bool, pid: u16, tl0: u8, frame: u32) -> Vec<u8> {
    let mut p = vec![
        0x90,
        0xe0,
        0x80 | (pid >> 8) as u8,
        pid as u8,
        tl0,
        (tid << 6) | if tid > 0 { 0x20 } else { 0 },
    ];
    if key {
        let (w, h) = (320u16 << layer, 180u16 << layer);
        p.extend_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a]);
        p.extend_from_slice(&w.to_le_bytes());
        p.extend_from_slice(&h.to_le_bytes());
    } else {
        p.extend_from_slice(&[0x11, 0x02, 0x00, 0, 0, 0, 0, 0, 0, 0]);
    }
    p.extend_from_slice(b"SIM");
    p.push(layer);
    p.push(tid);
    p.extend_from_slice(&frame.to_be_bytes());
    p.resize(200 + 300 * usize::from(layer), 0x55);
    p
}

/// (layer, tid, key frame, picture id) of an echoed payload.
fn parse_echo(p: &[u8]) -> Option<(u8, u8, bool, u16)> {
    if p.len() < MARK_AT + 5 || &p[MARK_AT..MARK_AT + 3] != b"SIM" || p[2] & 0x80 == 0 {
        return None;
    }
    let pid = (u16::from(p[2] & 0x7f) << 8) | u16::from(p[3]);
    let key = p[6] & 0x01 == 0 && p[9..12] == [0x9d, 0x01, 0x2a];
    Some((p[MARK_AT + 3], p[MARK_AT + 4], key, pid))
}

struct Run {
    janus: Janus,
    peer: Peer,
    offer: String,
    checks: Map<String, Value>,
    failures: Vec<String>,
}

impl Run {
    fn check(&mut self, name: &str, ok: bool, detail: Value) {
        eprintln!(
            "[simulcast] {} {name}: {detail}",
            if ok { "ok  " } else { "FAIL" }
        );
        if !ok {
            self.failures.push(format!("{name}: {detail}"));
        }
        self.checks
            .insert(name.to_owned(), json!({"ok": ok, "detail": detail}));
    }

    fn pump_for(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            self.peer
                .pump((Instant::now() + Duration::from_millis(20)).min(until));
            self.janus.drain();
        }
    }

    /// Pumps until an echotest event `key: value` arrives after event index
    /// `from`; returns when it arrived.
    fn wait_event(
        &mut self,
        from: usize,
        key: &str,
        value: u64,
        timeout: Duration,
    ) -> Option<Instant> {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            self.janus.drain();
            if self.janus.find(from, key, value).is_some() {
                return Some(Instant::now());
            }
            self.peer
                .pump((Instant::now() + Duration::from_millis(10)).min(until));
        }
        None
    }

    /// Pumps until an echo of `layer` arrives after `t`; returns its time.
    fn wait_layer(&mut self, t: Instant, layer: u8, timeout: Duration) -> Option<Instant> {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if let Some(e) = self.peer.echoes_since(t).find(|e| e.layer == layer) {
                return Some(e.at);
            }
            self.peer
                .pump((Instant::now() + Duration::from_millis(5)).min(until));
            self.janus.drain();
        }
        None
    }

    /// Requests `substream` and checks the switch: event, key frame first,
    /// then only that layer for one second.
    fn switch(&mut self, name: &str, substream: u8) -> Result<()> {
        let from = self.janus.seen.len();
        let t0 = Instant::now();
        self.janus.message(json!({"substream": substream}), None)?;
        let event = self.wait_event(
            from,
            "substream",
            u64::from(substream),
            Duration::from_secs(5),
        );
        let first = self.wait_layer(t0, substream, Duration::from_secs(3));
        let first_key = self
            .peer
            .echoes_since(t0)
            .find(|e| e.layer == substream)
            .map(|e| e.key);
        self.check(
            &format!("{name}_event"),
            event.is_some(),
            json!({"substream": substream, "after_ms": event.map(|t| (t - t0).as_millis())}),
        );
        self.check(
            &format!("{name}_on_keyframe"),
            first_key == Some(true),
            json!({"first_packet_keyframe": first_key,
                   "after_ms": first.map(|t| (t - t0).as_millis())}),
        );
        let settled = Instant::now() + Duration::from_millis(200);
        self.pump_for(Duration::from_millis(1200));
        let layers: HashMap<u8, usize> =
            self.peer
                .echoes_since(settled)
                .fold(HashMap::new(), |mut m, e| {
                    *m.entry(e.layer).or_default() += 1;
                    m
                });
        let only = layers.len() == 1 && layers.get(&substream).is_some_and(|n| *n >= 20);
        self.check(
            &format!("{name}_only_layer"),
            only,
            json!({"substream": substream, "echoed_by_layer": format!("{layers:?}")}),
        );
        Ok(())
    }

    /// Sends the offer with `body`, applies the answer and waits for the
    /// connection. Returns the answer.
    fn negotiate(&mut self, body: Value) -> Result<String> {
        let peer_offer = std::mem::take(&mut self.offer);
        let from = self.janus.seen.len();
        self.janus.message(
            body,
            Some(json!({"type": "offer", "sdp": peer_offer.clone()})),
        )?;
        let until = Instant::now() + Duration::from_secs(10);
        let answer = loop {
            self.janus.drain();
            if let Some(ev) = self.janus.seen[from..]
                .iter()
                .find(|e| e["jsep"]["type"] == "answer")
            {
                break ev["jsep"]["sdp"].as_str().unwrap_or_default().to_owned();
            }
            if Instant::now() > until {
                bail!("no answer; events {:?}", self.janus.seen);
            }
            thread::sleep(Duration::from_millis(20));
        };
        if std::env::var_os("SIMULCAST_PEER_DEBUG").is_some() {
            eprintln!("[simulcast] offer:\n{peer_offer}\n[simulcast] answer:\n{answer}");
        }
        self.peer.accept_answer(&answer)?;
        let until = Instant::now() + Duration::from_secs(10);
        while !self.peer.connected && Instant::now() < until {
            self.pump_for(Duration::from_millis(50));
        }
        if !self.peer.connected {
            bail!("not connected after 10 s");
        }
        Ok(answer)
    }

    fn check_answer_simulcast(&mut self, answer: &str) {
        let simulcast_lines: Vec<&str> = answer
            .lines()
            .filter(|l| l.starts_with("a=rid") || l.starts_with("a=simulcast"))
            .collect();
        self.check(
            "answer_simulcast",
            simulcast_lines
                .iter()
                .any(|l| l.starts_with("a=simulcast:recv")),
            json!(simulcast_lines),
        );
    }

    /// Publisher (fan-out script): sends the three layers for `duration`,
    /// stopping the top one for `pause.1` seconds `pause.0` seconds after
    /// the connection.
    fn flow_publisher(&mut self, duration: Duration, pause: Option<(f64, f64)>) -> Result<()> {
        let answer = self.negotiate(json!({"role": "publisher"}))?;
        self.check_answer_simulcast(&answer);
        let t0 = Instant::now();
        let (stop, resume) = match pause {
            Some((at, len)) => (
                Some(t0 + Duration::from_secs_f64(at)),
                Some(t0 + Duration::from_secs_f64(at + len)),
            ),
            None => (None, None),
        };
        while t0.elapsed() < duration {
            let now = Instant::now();
            let paused = stop.is_some_and(|t| now >= t) && resume.is_some_and(|t| now < t);
            if self.peer.layers[2].active == paused {
                self.peer.layers[2].active = !paused;
                if !paused {
                    self.peer.want_key = true;
                }
                eprintln!(
                    "[simulcast] layer 2 {}",
                    if paused { "stopped" } else { "resumed" }
                );
            }
            self.pump_for(Duration::from_millis(20));
        }
        let requests = self.peer.keyframe_requests;
        self.check("publisher_keyframe_requests", requests > 0, json!(requests));
        Ok(())
    }

    /// Viewer (fan-out script): asks for `substream`, receives for
    /// `duration` and checks what came.
    fn flow_viewer(&mut self, substream: u8, duration: Duration) -> Result<()> {
        // The layer is named with the offer, so that no packet of another
        // layer is relayed while a later request travels (the default
        // target is the top layer).
        self.negotiate(json!({"role": "viewer", "substream": substream}))?;
        self.janus.message(json!({"substream": substream}), None)?;
        self.pump_for(duration);
        // The event may come as soon as the first layer starts, while the
        // offer is still being answered: look from the start.
        let from = 0;
        let event = self
            .janus
            .find(from, "substream", u64::from(substream))
            .is_some();
        self.check("viewer_event", event, json!({"substream": substream}));
        let echoes = &self.peer.echoes;
        let start = echoes
            .iter()
            .position(|e| e.layer == substream)
            .unwrap_or(echoes.len());
        let after = &echoes[start..];
        let count = |l: u8| after.iter().filter(|e| e.layer == l).count();
        let counts = [count(0), count(1), count(2)];
        if substream == 2 {
            // Layer 2 stops once: within 500 ms the receiver leaves it, lands
            // on layer 1, then returns to 2. media.md §7.3 step 3 lets a
            // downward switch overshoot (to whichever lower layer's keyframe
            // comes first) and corrects it at the next keyframe: a few
            // layer-0 packets are allowed between leaving 2 and reaching 1,
            // nowhere else.
            let drop_at = after
                .windows(2)
                .position(|w| w[0].layer == 2 && w[1].layer < 2);
            let down = drop_at.map(|i| (after[i + 1].at - after[i].at).as_millis());
            let reached_1 = drop_at.and_then(|i| {
                after[i + 1..]
                    .iter()
                    .position(|e| e.layer == 1)
                    .map(|j| i + 1 + j)
            });
            let stray_0 = after.iter().enumerate().filter(|(k, e)| {
                e.layer == 0
                    && !matches!((drop_at, reached_1), (Some(i), Some(j)) if *k > i && *k < j)
            });
            let stray_0 = stray_0.count();
            let back = after.windows(2).any(|w| w[0].layer == 1 && w[1].layer == 2);
            let ev1 = self.janus.find(from, "substream", 1);
            let ev2 = ev1.and_then(|i| self.janus.find(i + 1, "substream", 2));
            self.check(
                "viewer_only_layer",
                stray_0 == 0 && counts[2] >= 60,
                json!({"echoed_by_layer": counts, "layer0_outside_fallback": stray_0}),
            );
            self.check(
                "viewer_fallback_within_500ms",
                down.is_some_and(|d| d <= 500) && reached_1.is_some() && ev1.is_some(),
                json!({"gap_ms": down, "reached_layer_1": reached_1.is_some(), "event": ev1.is_some()}),
            );
            self.check(
                "viewer_resume",
                back && ev2.is_some(),
                json!({"returned": back, "event": ev2.is_some()}),
            );
        } else {
            let others: usize = (0..3u8)
                .filter(|l| *l != substream)
                .map(|l| counts[usize::from(l)])
                .sum();
            self.check(
                "viewer_only_layer",
                others == 0 && counts[usize::from(substream)] >= 60,
                json!({"echoed_by_layer": counts}),
            );
        }
        self.check_continuity(if substream == 2 { 2 } else { 0 });
        Ok(())
    }

    fn flow(&mut self, initial: u8) -> Result<()> {
        let answer = self.negotiate(json!({"audio": false, "video": true}))?;
        self.check_answer_simulcast(&answer);
        // Events since the session started.
        let from = 0;
        // 1. The initial layer (the default target is 2).
        let t0 = Instant::now();
        if initial == 2 {
            let event = self.wait_event(from, "substream", 2, Duration::from_secs(5));
            self.check("initial_event", event.is_some(), json!({"substream": 2}));
            let t_ev = self.wait_event(from, "temporal", 2, Duration::from_secs(3));
            self.check(
                "initial_temporal_event",
                t_ev.is_some(),
                json!({"temporal": 2}),
            );
            self.pump_for(Duration::from_millis(1000));
            let settled = t0 + Duration::from_millis(500);
            let other = self
                .peer
                .echoes_since(settled)
                .filter(|e| e.layer != 2)
                .count();
            let mine = self
                .peer
                .echoes_since(settled)
                .filter(|e| e.layer == 2)
                .count();
            self.check(
                "initial_only_layer",
                other == 0 && mine >= 10,
                json!({"layer2": mine, "others": other}),
            );
        } else {
            self.switch("initial", initial)?;
        }
        // 2. The other extreme.
        let other = if initial == 2 { 0 } else { 2 };
        self.switch("switch", other)?;
        // 3. Fallback: on target 2, layer 2 stops.
        if other != 2 {
            self.switch("back_to_2", 2)?;
        }
        let from = self.janus.seen.len();
        let stopped = Instant::now();
        self.peer.layers[2].active = false;
        let fell_back = self.wait_layer(stopped, 1, Duration::from_secs(3));
        let event = self.wait_event(from, "substream", 1, Duration::from_secs(3));
        let delay = fell_back.map(|t| (t - stopped).as_millis());
        self.check(
            "fallback_within_500ms",
            delay.is_some_and(|d| d <= 500),
            json!({"layer1_after_ms": delay}),
        );
        self.check("fallback_event", event.is_some(), json!({"substream": 1}));
        self.pump_for(Duration::from_millis(500));
        let from = self.janus.seen.len();
        let resumed = Instant::now();
        self.peer.layers[2].active = true;
        self.peer.want_key = true;
        let back = self.wait_layer(resumed, 2, Duration::from_secs(3));
        let event = self.wait_event(from, "substream", 2, Duration::from_secs(3));
        self.check(
            "resume_returns",
            back.is_some() && event.is_some(),
            json!({"layer2_after_ms": back.map(|t| (t - resumed).as_millis()),
                   "event": event.is_some()}),
        );
        // 4. Temporal layers.
        let from = self.janus.seen.len();
        self.janus.message(json!({"temporal": 0}), None)?;
        let event = self.wait_event(from, "temporal", 0, Duration::from_secs(3));
        self.pump_for(Duration::from_millis(300));
        let t1 = Instant::now();
        self.pump_for(Duration::from_millis(1000));
        let tids: Vec<u8> = self.peer.echoes_since(t1).map(|e| e.tid).collect();
        self.check(
            "temporal_0",
            event.is_some() && !tids.is_empty() && tids.iter().all(|t| *t == 0),
            json!({"event": event.is_some(), "echoed": tids.len(),
                   "above_0": tids.iter().filter(|t| **t > 0).count()}),
        );
        let from = self.janus.seen.len();
        self.janus.message(json!({"temporal": 2}), None)?;
        let event = self.wait_event(from, "temporal", 2, Duration::from_secs(3));
        let t2 = Instant::now();
        self.pump_for(Duration::from_millis(800));
        let above: usize = self.peer.echoes_since(t2).filter(|e| e.tid > 0).count();
        self.check(
            "temporal_2",
            event.is_some() && above > 0,
            json!({"event": event.is_some(), "above_0": above}),
        );
        // 5. Continuity of what came back.
        self.check_continuity(3);
        Ok(())
    }

    /// Sequence numbers +1, picture ids forward by less than 8, and at least
    /// `min_changes` layer changes.
    fn check_continuity(&mut self, min_changes: usize) {
        let mut seq_errors = 0;
        let mut pid_errors = 0;
        for w in self.peer.echoes.windows(2) {
            if w[1].seq != w[0].seq.wrapping_add(1) {
                seq_errors += 1;
            }
            let dpid = w[1].pid.wrapping_sub(w[0].pid) & 0x7fff;
            if !(1..8).contains(&dpid) {
                pid_errors += 1;
            }
        }
        let layer_changes = self
            .peer
            .echoes
            .windows(2)
            .filter(|w| w[0].layer != w[1].layer)
            .count();
        self.check(
            "continuity",
            seq_errors == 0 && pid_errors == 0 && layer_changes >= min_changes,
            json!({"echoes": self.peer.echoes.len(), "seq_errors": seq_errors,
                   "picture_id_errors": pid_errors, "layer_changes": layer_changes,
                   "foreign": self.peer.foreign}),
        );
        if let Some(e) = self.peer.error.clone() {
            self.check("str0m_errors", false, json!(e));
        }
    }
}

const USAGE: &str = "usage: jsfu-simulcast-peer --url URL [--plugin PACKAGE] \
    [--role echo|publisher|viewer] [--initial 0|1|2] [--duration SECS] [--pause-top AT:FOR]";

/// Command-line options.
struct Options {
    url: String,
    plugin: String,
    role: Role,
    initial: u8,
    duration: Duration,
    pause: Option<(f64, f64)>,
}

fn parse_args() -> Result<Options, String> {
    let mut url = None;
    let mut o = Options {
        url: String::new(),
        plugin: "janus.plugin.echojs".to_owned(),
        role: Role::Echo,
        initial: 2,
        duration: Duration::from_secs(10),
        pause: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--url" => url = Some(value),
            "--plugin" => o.plugin = value,
            "--role" => {
                o.role = match value.as_str() {
                    "echo" => Role::Echo,
                    "publisher" => Role::Publisher,
                    "viewer" => Role::Viewer,
                    _ => return Err(format!("--role: echo, publisher or viewer, not {value}")),
                }
            }
            "--initial" => match value.parse() {
                Ok(n @ 0..=2) => o.initial = n,
                _ => return Err(format!("--initial: 0, 1 or 2, not {value}")),
            },
            "--duration" => {
                o.duration = value
                    .parse::<f64>()
                    .ok()
                    .and_then(|f| Duration::try_from_secs_f64(f).ok())
                    .ok_or_else(|| format!("--duration: not a number of seconds: {value}"))?;
            }
            "--pause-top" => {
                let parsed = value
                    .split_once(':')
                    .and_then(|(a, b)| Some((a.parse::<f64>().ok()?, b.parse::<f64>().ok()?)))
                    .filter(|(a, b)| *a >= 0.0 && *b >= 0.0);
                o.pause = Some(parsed.ok_or_else(|| format!("--pause-top: AT:FOR, not {value}"))?);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    o.url = url.ok_or("--url is required")?;
    Ok(o)
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("jsfu-simulcast-peer: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // str0m logs through `tracing`; off unless RUST_LOG asks for it.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .try_init();
    str0m::crypto::from_feature_flags().install_process_default();
    let started = Instant::now();
    let setup =
        Janus::connect(&opts.url, &opts.plugin).and_then(|j| Ok((j, Peer::offer(opts.role)?)));
    let (janus, (peer, offer)) = match setup {
        Ok(parts) => parts,
        Err(e) => {
            println!(
                "{}",
                json!({"ok": false, "failures": [format!("{e:#}")], "checks": {}})
            );
            return ExitCode::FAILURE;
        }
    };
    let mut run = Run {
        janus,
        peer,
        offer,
        checks: Map::new(),
        failures: Vec::new(),
    };
    let outcome = match opts.role {
        Role::Echo => run.flow(opts.initial),
        Role::Publisher => run.flow_publisher(opts.duration, opts.pause),
        Role::Viewer => run.flow_viewer(opts.initial, opts.duration),
    };
    if let Err(e) = outcome {
        run.failures.push(format!("{e:#}"));
        eprintln!("[simulcast] FAIL {e:#}");
    }
    run.janus.close();
    let ok = run.failures.is_empty();
    let summary = json!({
        "client": "str0m-simulcast",
        "role": format!("{:?}", opts.role).to_lowercase(),
        "initial": opts.initial,
        "checks": Value::Object(run.checks.clone()),
        "failures": run.failures,
        "keyframe_requests": run.peer.keyframe_requests,
        "elapsed_s": started.elapsed().as_secs_f64(),
        "ok": ok,
    });
    println!("{summary:#}");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
