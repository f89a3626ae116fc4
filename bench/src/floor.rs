//! `--floor`: what one core minimally spends per echoed or forwarded packet,
//! measured beside the servers in the same invocation.
//!
//! The floor server is this binary's hidden `floor-server` subcommand,
//! launched like the servers (`[nice] taskset -c CORE`). It runs one glommio
//! executor doing, per datagram, only what any SFU must and with the system
//! calls a jsfu shard uses (`jsfu_shard::io`): wait for readiness with a
//! glommio peek, drain up to 32 datagrams with `recvmmsg`, SRTP-unprotect
//! each (libsrtp through `jsfu_proto::srtp`), SRTP-protect a copy for each
//! receiver with that receiver's own context (one copy for an echo, one per
//! subscriber for a fan-out) and send the turn's copies with `sendmmsg`. It
//! does nothing else: no ICE, DTLS, RTCP, header rewriting or script.
//!
//! The generator offers the measured scenario's load over plain UDP sockets
//! with SRTP keys both sides derive from a shared seed: the same flows
//! (sessions, or publishers and subscribers), packet rates and sizes (Opus
//! 50 × 100 B/s and VP8 30 × 3 × 1,100 B/s per sender, behind a 12-byte RTP
//! header and a 12-byte header extension block), and it unprotects what comes
//! back, so a floor that produced bad SRTP would show up as loss. The floor
//! server's CPU per egress packet is read from `/proc/PID/stat` exactly as
//! for the servers.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, ErrorKind};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Child, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, ValueEnum};
use jsfu_proto::srtp::{SrtpKeys, SrtpProfile, SrtpSession};
use jsfu_shard::io::{self, RecvBatch, SendBatch};
use serde::Serialize;

use crate::media::Window;
use crate::peer::{self, Shared};
use crate::report::{MediaStep, ServerRun};
use crate::{rtc_io, server};

/// The hidden subcommand that runs the floor server.
pub(crate) const SUBCOMMAND: &str = "floor-server";

/// Registration datagram: `JFLR`, flow id (u32 BE), role (u8), feed (u32 BE).
const REGISTER: &[u8; 4] = b"JFLR";
const REGISTER_LEN: usize = 13;
/// Its acknowledgement: `JFLA`, flow id.
const ACK: &[u8; 4] = b"JFLA";
/// Copies the server queues before a `sendmmsg` flush (bounded memory for
/// wide fan-outs).
const OUT_SLOTS: usize = 256;
/// Receive batches per executor turn, as a jsfu shard does.
const BATCHES_PER_TURN: usize = 8;
/// Socket buffers, as a jsfu shard sets them (`ShardConfig` default).
const SOCKET_BUFFER: usize = 4 << 20;

/// RTP header (12 bytes) plus a one-byte-header extension block of 12 bytes,
/// the size of the mid, abs-send-time and transport-cc extensions WebRTC
/// peers send.
const HEADER_LEN: usize = 24;
const AUDIO_BYTES: usize = 100;
const VIDEO_BYTES: usize = 1100;
const VIDEO_PACKETS_PER_FRAME: u32 = 3;
const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
const VIDEO_INTERVAL: Duration = Duration::from_micros(33_333);
/// The marker and send time, after the payload's first byte.
const MAGIC: &[u8; 4] = b"JBNC";
const MARK_AT: usize = HEADER_LEN + 1;
const LATENCY_MAX_US: u64 = 10_000_000;

/// SRTP protection profile of the floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
pub(crate) enum FloorProfile {
    /// SRTP_AEAD_AES_256_GCM: what str0m and jsfu negotiate (both prefer it).
    #[value(name = "aes256-gcm")]
    #[serde(rename = "aes256-gcm")]
    Aes256Gcm,
    /// SRTP_AEAD_AES_128_GCM.
    #[value(name = "aes128-gcm")]
    #[serde(rename = "aes128-gcm")]
    Aes128Gcm,
    /// SRTP_AES128_CM_HMAC_SHA1_80.
    #[value(name = "aes128-cm-sha1-80")]
    #[serde(rename = "aes128-cm-sha1-80")]
    Aes128CmSha1_80,
}

impl FloorProfile {
    fn srtp(self) -> SrtpProfile {
        match self {
            Self::Aes256Gcm => SrtpProfile::AeadAes256Gcm,
            Self::Aes128Gcm => SrtpProfile::AeadAes128Gcm,
            Self::Aes128CmSha1_80 => SrtpProfile::Aes128CmSha1_80,
        }
    }

    fn arg(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "aes256-gcm",
            Self::Aes128Gcm => "aes128-gcm",
            Self::Aes128CmSha1_80 => "aes128-cm-sha1-80",
        }
    }
}

/// What a flow does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Sends; the server sends each packet back to it.
    Echo,
    /// Sends; the server sends a copy to each of its subscribers.
    Publisher,
    /// Receives its publisher's packets.
    Subscriber,
}

impl Role {
    fn code(self) -> u8 {
        match self {
            Self::Echo => 0,
            Self::Publisher => 1,
            Self::Subscriber => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Echo),
            1 => Some(Self::Publisher),
            2 => Some(Self::Subscriber),
            _ => None,
        }
    }
}

/// Direction of a flow's keys.
const UPSTREAM: u8 = 0;
const DOWNSTREAM: u8 = 1;

/// The SRTP keys of one direction of one flow, derived from the run's seed
/// (both processes derive the same; nothing secret is at stake).
fn flow_keys(profile: SrtpProfile, seed: u64, flow: u32, direction: u8) -> Result<SrtpKeys> {
    let mut x = seed ^ (u64::from(flow) << 8) ^ u64::from(direction);
    let mut bytes = [0u8; 48];
    for chunk in bytes.chunks_mut(8) {
        // splitmix64
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes());
    }
    SrtpKeys::new(
        profile,
        &bytes[..profile.key_len()],
        &bytes[32..32 + profile.salt_len()],
    )
    .map_err(|e| anyhow!("SRTP keys: {e}"))
}

fn registration(flow: u32, role: Role, feed: u32) -> [u8; REGISTER_LEN] {
    let mut out = [0u8; REGISTER_LEN];
    out[..4].copy_from_slice(REGISTER);
    out[4..8].copy_from_slice(&flow.to_be_bytes());
    out[8] = role.code();
    out[9..13].copy_from_slice(&feed.to_be_bytes());
    out
}

fn parse_registration(bytes: &[u8]) -> Option<(u32, Role, u32)> {
    if bytes.len() != REGISTER_LEN || &bytes[..4] != REGISTER {
        return None;
    }
    let flow = u32::from_be_bytes(bytes[4..8].try_into().ok()?);
    let role = Role::from_code(bytes[8])?;
    let feed = u32::from_be_bytes(bytes[9..13].try_into().ok()?);
    Some((flow, role, feed))
}

fn ack(flow: u32) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(ACK);
    out[4..].copy_from_slice(&flow.to_be_bytes());
    out
}

// ---------------------------------------------------------------------------
// The floor server (child process).

#[derive(Debug, Parser)]
#[command(name = "jsfu-bench floor-server")]
struct ServerArgs {
    #[arg(long, value_enum)]
    profile: FloorProfile,
    #[arg(long)]
    seed: u64,
}

/// One flow the floor server knows.
struct Flow {
    addr: SocketAddr,
    role: Role,
    inbound: SrtpSession,
    outbound: SrtpSession,
}

/// The floor server's state.
struct Floor {
    profile: SrtpProfile,
    seed: u64,
    flows: Vec<Flow>,
    by_addr: HashMap<SocketAddr, usize>,
    by_id: HashMap<u32, usize>,
    /// Receivers of each flow's packets (itself for an echo flow).
    fans: Vec<Vec<usize>>,
    out: Vec<([u8; io::SLOT_LEN], usize, SocketAddr)>,
    queued: usize,
    tx: SendBatch,
}

impl Floor {
    fn new(profile: SrtpProfile, seed: u64) -> Self {
        let mut out = Vec::with_capacity(OUT_SLOTS);
        out.resize(
            OUT_SLOTS,
            ([0u8; io::SLOT_LEN], 0usize, SocketAddr::from(([0; 4], 0))),
        );
        Self {
            profile,
            seed,
            flows: Vec::new(),
            by_addr: HashMap::new(),
            by_id: HashMap::new(),
            fans: Vec::new(),
            out,
            queued: 0,
            tx: SendBatch::new(),
        }
    }

    fn flush(&mut self, fd: i32) {
        if self.queued > 0 {
            self.tx.send(
                fd,
                self.out[..self.queued]
                    .iter()
                    .map(|(b, l, a)| (&b[..*l], *a)),
            );
            self.queued = 0;
        }
    }

    fn queue_ack(&mut self, fd: i32, flow: u32, to: SocketAddr) {
        if self.queued == OUT_SLOTS {
            self.flush(fd);
        }
        let slot = &mut self.out[self.queued];
        slot.0[..8].copy_from_slice(&ack(flow));
        slot.1 = 8;
        slot.2 = to;
        self.queued += 1;
    }

    /// A registration from an unknown address: add the flow, or ignore it
    /// (a subscriber whose publisher is not there yet retries).
    fn register(&mut self, fd: i32, from: SocketAddr, flow: u32, role: Role, feed: u32) {
        let publisher = match role {
            Role::Subscriber => match self.by_id.get(&feed) {
                Some(&p) if self.flows[p].role == Role::Publisher => Some(p),
                _ => return,
            },
            _ => None,
        };
        let Ok(up) = flow_keys(self.profile, self.seed, flow, UPSTREAM) else {
            return;
        };
        let Ok(down) = flow_keys(self.profile, self.seed, flow, DOWNSTREAM) else {
            return;
        };
        let (Ok(inbound), Ok(outbound)) = (SrtpSession::inbound(&up), SrtpSession::outbound(&down))
        else {
            return;
        };
        let k = self.flows.len();
        self.flows.push(Flow {
            addr: from,
            role,
            inbound,
            outbound,
        });
        self.fans.push(if role == Role::Echo {
            vec![k]
        } else {
            Vec::new()
        });
        if let Some(p) = publisher {
            self.fans[p].push(k);
        }
        self.by_addr.insert(from, k);
        self.by_id.insert(flow, k);
        self.queue_ack(fd, flow, from);
    }

    /// One received datagram: unprotect once, protect and queue a copy per
    /// receiver.
    fn datagram(&mut self, fd: i32, from: SocketAddr, buf: &mut [u8]) {
        let Some(&k) = self.by_addr.get(&from) else {
            if let Some((flow, role, feed)) = parse_registration(buf) {
                self.register(fd, from, flow, role, feed);
            }
            return;
        };
        if buf.starts_with(REGISTER) {
            if let Some((flow, _, _)) = parse_registration(buf) {
                self.queue_ack(fd, flow, from);
            }
            return;
        }
        if self.flows[k].role == Role::Subscriber {
            return;
        }
        let Ok(plain) = self.flows[k].inbound.unprotect_rtp(buf) else {
            return;
        };
        for j in 0..self.fans[k].len() {
            let t = self.fans[k][j];
            if self.queued == OUT_SLOTS {
                self.flush(fd);
            }
            let slot = &mut self.out[self.queued];
            slot.0[..plain].copy_from_slice(&buf[..plain]);
            let flow = &mut self.flows[t];
            if let Ok(len) = flow.outbound.protect_rtp(&mut slot.0, plain) {
                slot.1 = len;
                slot.2 = flow.addr;
                self.queued += 1;
            }
        }
    }
}

/// Entry point of `jsfu-bench floor-server --profile P --seed S`: prints
/// `port N` on stdout, then serves until killed.
pub(crate) fn server_main() -> ExitCode {
    let args = std::env::args_os().skip(2);
    let parsed = match ServerArgs::try_parse_from(
        std::iter::once(std::ffi::OsString::from(SUBCOMMAND)).chain(args),
    ) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::FAILURE;
        }
    };
    match serve(&parsed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jsfu-bench floor-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: &ServerArgs) -> Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag of this process: end
    // with the harness that launched us, should it die without stopping us.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
    }
    let socket = UdpSocket::bind("127.0.0.1:0").context("binding the floor socket")?;
    io::set_buffer_sizes(socket.as_raw_fd(), SOCKET_BUFFER);
    let port = socket
        .local_addr()
        .context("reading the floor port")?
        .port();
    println!("port {port}");
    let mut floor = Floor::new(args.profile.srtp(), args.seed);
    let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("jsfu-floor")
        .make()
        .map_err(|e| anyhow!("glommio executor: {e}"))?;
    executor.run(async move {
        let socket = glommio::net::UdpSocket::from(socket2::Socket::from(socket));
        let fd = socket.as_raw_fd();
        let mut rx = RecvBatch::new();
        let mut probe = [0u8; 1];
        loop {
            // Readiness as a shard waits for it: a peek, io_uring when idle.
            if socket.peek_from(&mut probe).await.is_err() {
                glommio::timer::sleep(Duration::from_millis(1)).await;
            }
            for _ in 0..BATCHES_PER_TURN {
                let n = rx.recv(fd).unwrap_or(0);
                if n == 0 {
                    break;
                }
                for i in 0..n {
                    let (from, truncated, len, buf) = rx.datagram(i);
                    if !truncated {
                        floor.datagram(fd, from, &mut buf[..len]);
                    }
                }
                floor.flush(fd);
                if n < io::BATCH {
                    break;
                }
            }
            glommio::yield_if_needed().await;
        }
    })
}

// ---------------------------------------------------------------------------
// The harness side.

/// A running floor server; stopped when dropped.
pub(crate) struct FloorServer {
    child: Child,
    pub(crate) pid: u32,
    pub(crate) addr: SocketAddr,
}

impl FloorServer {
    /// Launch this binary's `floor-server` on `core` (like the servers).
    pub(crate) fn launch(
        core: Option<usize>,
        nice: Option<i32>,
        profile: FloorProfile,
        seed: u64,
    ) -> Result<Self> {
        let exe = std::env::current_exe().context("locating jsfu-bench itself")?;
        let mut cmd = server::pinned(core, nice, &exe);
        cmd.arg(SUBCOMMAND)
            .args(["--profile", profile.arg(), "--seed", &seed.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().context("starting the floor server")?;
        let pid = child.id();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no stdout from the floor server"))?;
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut server = Self {
            child,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .context("the floor server did not report its port")?;
        let port: u16 = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow!("the floor server said {line:?} instead of its port"))?;
        server.addr.set_port(port);
        Ok(server)
    }
}

impl Drop for FloorServer {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.pid) {
            // SAFETY: kill(2) on our own child's pid; no memory is involved.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The load to offer the floor: the measured scenario's.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Load {
    Echo { sessions: u64 },
    Fanout { publishers: u64, subscribers: u64 },
}

/// How to run the floor.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) load: Load,
    pub(crate) profile: FloorProfile,
    pub(crate) seconds: f64,
    pub(crate) warmup: f64,
    pub(crate) server_core: Option<usize>,
    pub(crate) generator_core: Option<usize>,
    pub(crate) nice: Option<i32>,
}

/// A figure of a window, for one row of the floor's table.
type Column = fn(&MediaStep) -> f64;

/// The floor's figures, in the JSON report and the table.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FloorReport {
    /// What the floor server does per packet.
    pub(crate) work: String,
    pub(crate) profile: FloorProfile,
    /// The window, with the same fields as a server's (sessions = flows).
    pub(crate) step: MediaStep,
    /// Each server's CPU µs per egress packet over the floor's.
    pub(crate) ratio_to_floor: BTreeMap<String, f64>,
}

impl FloorReport {
    /// The floor's table: its column beside each server's, and each
    /// server's CPU per egress packet as a multiple of the floor's.
    pub(crate) fn table(&self, runs: &[ServerRun]) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "floor: {}", self.work);
        let mut names = vec![String::from("floor")];
        let mut steps = vec![&self.step];
        for r in runs {
            if let Some(s) = r.media.first() {
                names.push(r.server.clone());
                steps.push(s);
            }
        }
        let rows: [(&str, Column); 5] = [
            ("egress packets/s", |s| s.egress_pps),
            ("loss %", |s| s.loss * 100.0),
            ("server CPU %", |s| s.server_cpu_pct),
            ("server CPU µs/egress packet", |s| {
                s.server_cpu_us_per_packet
            }),
            ("latency p50 µs", |s| s.latency_us.p50 as f64),
        ];
        let width = 28;
        let _ = write!(out, "{:width$}", "");
        for n in &names {
            let _ = write!(out, " {n:>12}");
        }
        out.push('\n');
        for (label, f) in rows {
            let _ = write!(out, "{label:width$}");
            for s in &steps {
                let _ = write!(out, " {:>12}", format!("{:.2}", f(s)));
            }
            out.push('\n');
        }
        let _ = write!(out, "{:width$}", "× floor (CPU/egress packet)");
        for n in &names {
            let r = if n == "floor" {
                Some(1.0)
            } else {
                self.ratio_to_floor.get(n).copied()
            };
            let cell = r.map_or_else(|| String::from("-"), |r| format!("{r:.2}×"));
            let _ = write!(out, " {cell:>12}");
        }
        out.push('\n');
        out
    }
}

/// One flow on the generator side.
struct Client {
    socket: UdpSocket,
    role: Role,
    flow: u32,
    feed: u32,
    outbound: SrtpSession,
    inbound: SrtpSession,
    audio_ssrc: u32,
    video_ssrc: u32,
    audio_seq: u16,
    video_seq: u16,
    audio_next: Instant,
    video_next: Instant,
    frames: u32,
    audio_packets: u32,
}

impl Client {
    fn new(profile: SrtpProfile, seed: u64, flow: u32, role: Role, feed: u32) -> Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0").context("binding a loopback UDP socket")?;
        socket
            .set_nonblocking(true)
            .context("making the UDP socket non-blocking")?;
        io::set_buffer_sizes(socket.as_raw_fd(), 1 << 20);
        let up = flow_keys(profile, seed, flow, UPSTREAM)?;
        let down = flow_keys(profile, seed, flow, DOWNSTREAM)?;
        let now = Instant::now();
        let phase = Duration::from_micros(u64::from(flow) * 7919 % 20_000);
        Ok(Self {
            socket,
            role,
            flow,
            feed,
            outbound: SrtpSession::outbound(&up).map_err(|e| anyhow!("SRTP: {e}"))?,
            inbound: SrtpSession::inbound(&down).map_err(|e| anyhow!("SRTP: {e}"))?,
            audio_ssrc: 0x1000_0000 | (flow << 1),
            video_ssrc: 0x1000_0000 | (flow << 1) | 1,
            audio_seq: (flow as u16).wrapping_mul(13),
            video_seq: (flow as u16).wrapping_mul(17),
            audio_next: now + phase,
            video_next: now + phase,
            frames: 0,
            audio_packets: 0,
        })
    }

    fn sends(&self) -> bool {
        self.role != Role::Subscriber
    }

    /// Build, protect and send one RTP packet; true when it left.
    fn send_packet(
        &mut self,
        buf: &mut [u8; 2048],
        to: SocketAddr,
        video: bool,
        marker: bool,
        timestamp: u32,
        stamp: u64,
    ) -> bool {
        let (ssrc, seq, payload, pt) = if video {
            self.video_seq = self.video_seq.wrapping_add(1);
            (self.video_ssrc, self.video_seq, VIDEO_BYTES, 96u8)
        } else {
            self.audio_seq = self.audio_seq.wrapping_add(1);
            (self.audio_ssrc, self.audio_seq, AUDIO_BYTES, 111u8)
        };
        buf[..HEADER_LEN + payload].fill(0);
        buf[0] = 0x90;
        buf[1] = pt | if marker { 0x80 } else { 0 };
        buf[2..4].copy_from_slice(&seq.to_be_bytes());
        buf[4..8].copy_from_slice(&timestamp.to_be_bytes());
        buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
        // One-byte-header extension block of two words (padding elements).
        buf[12..16].copy_from_slice(&[0xbe, 0xde, 0x00, 0x02]);
        buf[MARK_AT..MARK_AT + 4].copy_from_slice(MAGIC);
        buf[MARK_AT + 4..MARK_AT + 12].copy_from_slice(&stamp.to_be_bytes());
        match self
            .outbound
            .protect_rtp(&mut buf[..], HEADER_LEN + payload)
        {
            Ok(n) => self.socket.send_to(&buf[..n], to).is_ok(),
            Err(_) => false,
        }
    }

    /// Send every packet due by `now`; returns how many left.
    fn send_due(&mut self, now: Instant, to: SocketAddr, buf: &mut [u8; 2048]) -> u64 {
        let stamp = nanos(now);
        let mut sent = 0;
        while self.audio_next <= now {
            let ts = self.audio_packets.wrapping_mul(960);
            if self.send_packet(buf, to, false, true, ts, stamp) {
                sent += 1;
            }
            self.audio_packets = self.audio_packets.wrapping_add(1);
            self.audio_next += AUDIO_INTERVAL;
        }
        while self.video_next <= now {
            let ts = self.frames.wrapping_mul(3000);
            for part in 0..VIDEO_PACKETS_PER_FRAME {
                let last = part + 1 == VIDEO_PACKETS_PER_FRAME;
                if self.send_packet(buf, to, true, last, ts, stamp) {
                    sent += 1;
                }
            }
            self.frames = self.frames.wrapping_add(1);
            self.video_next += VIDEO_INTERVAL;
        }
        sent
    }

    /// Read everything waiting: count marked packets, record their latency.
    fn read(
        &mut self,
        buf: &mut [u8; 2048],
        shared: &Shared,
        latency: &mut hdrhistogram::Histogram<u64>,
    ) {
        loop {
            match self.socket.recv_from(&mut buf[..]) {
                Ok((n, _)) => {
                    if n < HEADER_LEN || buf.starts_with(ACK) {
                        continue;
                    }
                    let Ok(plain) = self.inbound.unprotect_rtp(&mut buf[..n]) else {
                        continue;
                    };
                    if let Some(stamp) = read_mark(&buf[..plain]) {
                        if self.role == Role::Publisher {
                            shared.stray.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        shared.received.fetch_add(1, Ordering::Relaxed);
                        if shared.measuring.load(Ordering::Relaxed) {
                            let us = (nanos(Instant::now()).saturating_sub(stamp) / 1000)
                                .clamp(1, LATENCY_MAX_US);
                            let _ = latency.record(us);
                        }
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => return,
            }
        }
    }
}

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn nanos(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}

fn read_mark(packet: &[u8]) -> Option<u64> {
    if packet.get(MARK_AT..MARK_AT + 4)? != MAGIC {
        return None;
    }
    let bytes: [u8; 8] = packet.get(MARK_AT + 4..MARK_AT + 12)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// Register every client with the floor server (publishers first).
fn register(clients: &[Client], server: SocketAddr) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut done = vec![false; clients.len()];
    let mut buf = [0u8; 64];
    for role in [Role::Echo, Role::Publisher, Role::Subscriber] {
        loop {
            let mut missing = 0;
            for (c, ok) in clients.iter().zip(done.iter_mut()) {
                if c.role != role {
                    continue;
                }
                while let Ok(n) = c.socket.recv(&mut buf) {
                    if n == 8 && buf.starts_with(ACK) {
                        *ok = true;
                    }
                }
                if !*ok {
                    missing += 1;
                    let _ = c
                        .socket
                        .send_to(&registration(c.flow, c.role, c.feed), server);
                }
            }
            if missing == 0 {
                break;
            }
            if Instant::now() > deadline {
                bail!("{missing} flows were not registered with the floor server");
            }
            thread::sleep(Duration::from_millis(30));
        }
    }
    Ok(())
}

/// Drive the clients until `shared.stop`: send on schedule, read replies.
fn drive(mut clients: Vec<Client>, server: SocketAddr, shared: &Shared, core: Option<usize>) {
    if let Some(core) = core {
        server::pin_current_thread(core);
    }
    let mut fds: Vec<libc::pollfd> = clients
        .iter()
        .map(|c| libc::pollfd {
            fd: c.socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut buf = [0u8; 2048];
    let mut latency = peer::histogram();
    let mut flushed = Instant::now();
    while !shared.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let mut next = now + Duration::from_millis(20);
        let mut sent = 0;
        for c in clients.iter_mut().filter(|c| c.sends()) {
            sent += c.send_due(now, server, &mut buf);
            next = next.min(c.audio_next).min(c.video_next);
        }
        if sent > 0 {
            shared.sent.fetch_add(sent, Ordering::Relaxed);
        }
        let wait = next.saturating_duration_since(Instant::now());
        let ms = i32::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(20);
        for fd in &mut fds {
            fd.revents = 0;
        }
        // SAFETY: `fds` is a valid, initialized slice of pollfd for the
        // duration of the call; the length matches.
        unsafe {
            libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms);
        }
        for (c, fd) in clients.iter_mut().zip(&fds) {
            if fd.revents != 0 {
                c.read(&mut buf, shared, &mut latency);
            }
        }
        if flushed.elapsed() >= Duration::from_millis(100) {
            flushed = Instant::now();
            rtc_io::flush(shared, &mut latency);
        }
    }
}

/// Run the floor at the plan's load; the report's ratios come from `runs`.
pub(crate) fn run(plan: &Plan, runs: &[ServerRun]) -> Result<FloorReport> {
    let profile = plan.profile.srtp();
    let seed = u64::from(std::process::id()) << 20 ^ nanos(Instant::now());
    let floor = FloorServer::launch(plan.server_core, plan.nice, plan.profile, seed)?;
    let rss_idle = server::rss_kib(floor.pid);
    let mut clients = Vec::new();
    let copies;
    let work;
    match plan.load {
        Load::Echo { sessions } => {
            for i in 0..sessions {
                let flow = u32::try_from(i).context("too many sessions")?;
                clients.push(Client::new(profile, seed, flow, Role::Echo, flow)?);
            }
            copies = 1.0;
            work = "recvmmsg → SRTP unprotect → SRTP protect → sendmmsg back to the sender";
        }
        Load::Fanout {
            publishers,
            subscribers,
        } => {
            let mut flow = 0u32;
            let mut feeds = Vec::new();
            for _ in 0..publishers {
                clients.push(Client::new(profile, seed, flow, Role::Publisher, flow)?);
                feeds.push(flow);
                flow += 1;
            }
            for &feed in &feeds {
                for _ in 0..subscribers {
                    clients.push(Client::new(profile, seed, flow, Role::Subscriber, feed)?);
                    flow += 1;
                }
            }
            copies = subscribers as f64;
            work = "recvmmsg → SRTP unprotect → per subscriber: copy + SRTP protect → sendmmsg";
        }
    }
    register(&clients, floor.addr)?;
    let flows = clients.len() as u64;
    let shared = Shared::new();
    let driver = {
        let shared = Arc::clone(&shared);
        let core = plan.generator_core;
        let addr = floor.addr;
        thread::spawn(move || drive(clients, addr, &shared, core))
    };
    thread::sleep(crate::data::seconds(plan.warmup.max(0.5)));
    let step = Window {
        pid: Some(floor.pid),
        seconds: plan.seconds,
        copies,
        rss_idle,
        flows: Some(flows),
        setup_errors: 0,
    }
    .measure(&shared);
    shared.stop.store(true, Ordering::Relaxed);
    let _ = driver.join();
    drop(floor);
    eprintln!(
        "[bench] floor: {} flows, {:.0} egress packets/s, loss {:.2} %, {:.2} µs CPU/packet",
        step.sessions,
        step.egress_pps,
        step.loss * 100.0,
        step.server_cpu_us_per_packet
    );
    let ratio_to_floor = runs
        .iter()
        .filter_map(|r| {
            let s = r.media.first()?;
            (step.server_cpu_us_per_packet > 0.0).then(|| {
                (
                    r.server.clone(),
                    s.server_cpu_us_per_packet / step.server_cpu_us_per_packet,
                )
            })
        })
        .collect();
    Ok(FloorReport {
        work: format!(
            "{work}; one glommio thread (jsfu_shard::io), {} ({}), core {}",
            plan.profile.arg(),
            profile.openssl_name(),
            plan.server_core
                .map_or_else(|| String::from("-"), |c| c.to_string())
        ),
        profile: plan.profile,
        step,
        ratio_to_floor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_round_trip_and_reject_junk() {
        let r = registration(7, Role::Subscriber, 3);
        assert_eq!(parse_registration(&r), Some((7, Role::Subscriber, 3)));
        assert_eq!(parse_registration(&r[..12]), None);
        let mut bad = r;
        bad[8] = 9;
        assert_eq!(parse_registration(&bad), None);
        assert_eq!(parse_registration(b"JFLA\0\0\0\x07"), None);
    }

    #[test]
    fn both_sides_derive_the_same_keys_per_flow_and_direction() {
        let profile = SrtpProfile::AeadAes256Gcm;
        let up = flow_keys(profile, 42, 1, UPSTREAM).expect("keys");
        let down = flow_keys(profile, 42, 1, DOWNSTREAM).expect("keys");
        let mut tx = SrtpSession::outbound(&up).expect("outbound");
        let mut rx_ok = SrtpSession::inbound(&flow_keys(profile, 42, 1, UPSTREAM).expect("keys"))
            .expect("inbound");
        let mut rx_wrong = SrtpSession::inbound(&down).expect("inbound");
        let mut packet = [0u8; 2048];
        packet[0] = 0x80;
        packet[1] = 96;
        packet[8..12].copy_from_slice(&5u32.to_be_bytes());
        let n = tx.protect_rtp(&mut packet, 112).expect("protect");
        let mut copy = packet;
        assert!(rx_wrong.unprotect_rtp(&mut copy[..n]).is_err());
        assert_eq!(rx_ok.unprotect_rtp(&mut packet[..n]), Ok(112));
    }

    #[test]
    fn floor_server_echoes_valid_srtp() {
        // The floor server's per-packet path, without the process around it.
        let profile = SrtpProfile::Aes128CmSha1_80;
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.set_nonblocking(true).expect("nonblocking");
        let fd = socket.as_raw_fd();
        let mut floor = Floor::new(profile, 9);
        let mut client = Client::new(profile, 9, 4, Role::Echo, 4).expect("client");
        let from = client.socket.local_addr().expect("addr");
        let mut reg = registration(4, Role::Echo, 4);
        floor.datagram(fd, from, &mut reg);
        assert_eq!(floor.queued, 1, "the registration is acknowledged");
        floor.queued = 0;
        let mut buf = [0u8; 2048];
        let to = socket.local_addr().expect("addr");
        assert!(client.send_packet(&mut buf, to, true, true, 0, 77));
        let mut rx = [0u8; 2048];
        thread::sleep(Duration::from_millis(20));
        let (n, _) = socket.recv_from(&mut rx).expect("the packet arrives");
        floor.datagram(fd, from, &mut rx[..n]);
        assert_eq!(floor.queued, 1, "one echoed copy");
        floor.flush(fd);
        thread::sleep(Duration::from_millis(20));
        let shared = Shared::new();
        let mut h = peer::histogram();
        client.read(&mut buf, &shared, &mut h);
        assert_eq!(shared.received.load(Ordering::Relaxed), 1);
    }
}
